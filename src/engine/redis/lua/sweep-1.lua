--[[
  sweep: fires this service's due timers (entry expiry, lblc/lblcr collector) at now, at most
  ARGV[3] of them; the periodic tick calls it for every service tag until done.

  KEYS[1] the service's cfg key; ARGV[1] now, ARGV[2] sysctls and timeouts (includes/core.lua)
  ARGV[3] budget  ARGV[4] "1": also flush entries whose destination is gone (a deletion in another
  service with expire_nodest_conn = 1: the kernel's flush walks the whole connection table)

  Returns JSON { ok, done = true when nothing due is left }.
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
  loadServiceCore()
  local done = fireDue(ENV.now, tonumber(ARGV[A + 1]))
  if ARGV[A + 2] == '1' then flushNoDest(ENV.now) end
  return ok({ done = done })
end

return reply(main())
