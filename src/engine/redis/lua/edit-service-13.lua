--[[
  edit-service: `ip_vs_edit_service`: flags, persistence, pe; a different scheduler is bound anew
  (its state lost), the same one keeps it.

  KEYS[1..13] the service's keys; ARGV[1..10] now, sysctls, timeouts (includes/core.lua)
  ARGV[11] cfg version the edit was computed from  ARGV[12] scheduler  ARGV[13] SCHED flag bits
  ARGV[14] persistence timeout s (0: none)  ARGV[15] one-packet 0/1  ARGV[16] pe  ARGV[17] JSON

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

local result = main()
commit()
return cjson.encode(result)
