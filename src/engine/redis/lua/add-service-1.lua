--[[
  add-service: creates the service and binds its scheduler (`init_service`).

  KEYS[1] the service's cfg key; ARGV[1] now, ARGV[2] sysctls and timeouts (includes/core.lua)
  ARGV[3] service key  ARGV[4] kind (addr|fwmark)  ARGV[5] protocol  ARGV[6] port  ARGV[7] fwmark
  ARGV[8] scheduler  ARGV[9] SCHED flag bits  ARGV[10] persistence timeout s (0: none)
  ARGV[11] one-packet 0/1  ARGV[12] pe ("" or sip)  ARGV[13] configuration JSON (for the caller)

  Returns JSON { ok, service = { svc, dests } } or { err = "ALREADY_EXISTS" }.
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
  fireDue(ENV.now)
  if redis.call('EXISTS', K.cfg) == 1 then return fail('ALREADY_EXISTS', '', 'service') end
  local ver = redis.call('HINCRBY', K.ctr, 'ver', 1)
  redis.call('HSET', K.cfg, 'key', ARGV[A + 1], 'kind', ARGV[A + 2], 'proto', ARGV[A + 3], 'port', ARGV[A + 4],
    'fwmark', ARGV[A + 5], 'sched', ARGV[A + 6], 'sf', ARGV[A + 7], 'pt', ARGV[A + 8], 'op', ARGV[A + 9],
    'pe', ARGV[A + 10], 'json', ARGV[A + 11], 'ver', ver, 'sc', 0, 'sip', 0, 'sop', 0, 'sib', 0, 'sob', 0)
  redis.call('DEL', K.klo)
  loadService()
  bindScheduler(ENV.now)
  return ok({ service = serviceRecord() })
end

return reply(main())
