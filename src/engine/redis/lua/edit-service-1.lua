--[[
  edit-service: `ip_vs_edit_service`: flags, persistence, pe; a different scheduler is bound anew
  (its state lost), the same one keeps it.

  KEYS[1] the service's cfg key; ARGV[1] now, ARGV[2] sysctls and timeouts (includes/core.lua)
  ARGV[3] cfg version the edit was computed from  ARGV[4] scheduler  ARGV[5] SCHED flag bits
  ARGV[6] persistence timeout s (0: none)  ARGV[7] one-packet 0/1  ARGV[8] pe  ARGV[9] JSON

  Returns JSON { ok, service } or { err = "NOT_FOUND" | "STALE" }.
]]
--- @include "includes/core"
--- @include "includes/accounting"
--- @include "includes/states"
--- @include "includes/siphash"
--- @include "includes/lifecycle"
--- @include "includes/schedulers"
--- @include "includes/views"
begin(KEYS, ARGV)

local function main()
  if not loadService() then return fail('NOT_FOUND', '', 'service') end
  if SVC.ver ~= tonumber(ARGV[A + 1]) then return { err = 'STALE' } end
  fireDue(ENV.now)
  local old = SVC.sched
  local ver = redis.call('HINCRBY', K.ctr, 'ver', 1)
  redis.call('HSET', K.cfg, 'sched', ARGV[A + 2], 'sf', ARGV[A + 3], 'pt', ARGV[A + 4], 'op', ARGV[A + 5],
    'pe', ARGV[A + 6], 'json', ARGV[A + 7], 'ver', ver)
  loadService()
  if SVC.sched ~= old then
    unbindScheduler()
    bindScheduler(ENV.now)
  end
  return ok({ service = serviceRecord() })
end

return reply(main())
