--[[
  delete-dest: `__ip_vs_unlink_dest` + `__ip_vs_del_dest`: out of KLO into the trash, the
  scheduler's del_dest hook runs; with expire_nodest_conn its entries go at once.

  KEYS[1] the service's cfg key; ARGV[1] now, ARGV[2] sysctls and timeouts (includes/core.lua)
  ARGV[3] dest key

  Returns JSON { ok } or { err = "NOT_FOUND", field }.
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
  klo()
  local key = ARGV[A + 1]
  local d = getDest(key)
  if not d or d.pos < 0 then return fail('NOT_FOUND', '', 'destination') end
  local oldPos = d.pos
  redis.call('LREM', K.klo, 1, key)
  d.tr = 1
  touchDest(d)
  redis.call('SADD', K.trash, key)
  reloadKlo()
  onDelDest(key, oldPos)
  if ENV.enc == 1 then flushNoDest(ENV.now) end
  return ok()
end

return reply(main())
