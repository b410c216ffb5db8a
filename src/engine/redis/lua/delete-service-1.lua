--[[
  delete-service: every destination goes to the trash (still referenced by entries, §6.6), the
  scheduler's state is dropped; with expire_nodest_conn the orphaned entries go at once.

  KEYS[1] the service's cfg key; ARGV[1] now, ARGV[2] sysctls and timeouts (includes/core.lua)

  Returns JSON { ok } or { err = "NOT_FOUND" }.
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
  fireDue(ENV.now)
  for _, d in ipairs(klo()) do
    d.tr = 1
    d.pos = -1
    touchDest(d)
    redis.call('SADD', K.trash, d.key)
  end
  redis.call('DEL', K.klo)
  DESTS = {}
  unbindScheduler()
  redis.call('DEL', K.cfg)
  if ENV.enc == 1 then flushNoDest(ENV.now) end
  return ok()
end

return reply(main())
