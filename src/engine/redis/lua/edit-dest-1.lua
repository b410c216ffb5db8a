--[[
  edit-dest: `ip_vs_edit_dest`: keeps the KLO position; the scheduler's upd_dest hook runs.

  KEYS[1] the service's cfg key; ARGV[1] now, ARGV[2] sysctls and timeouts (includes/core.lua)
  ARGV[3] dest key  ARGV[4] weight  ARGV[5] forward  ARGV[6] upper threshold  ARGV[7] lower threshold

  Returns JSON { ok, dest } or { err = "NOT_FOUND", field }.
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
  local d = getDest(ARGV[A + 1])
  if not d or d.pos < 0 then return fail('NOT_FOUND', '', 'destination') end
  applyDestConfig(d, tonumber(ARGV[A + 2]), ARGV[A + 3], tonumber(ARGV[A + 4]), tonumber(ARGV[A + 5]), false)
  onUpdDest()
  return ok({ dest = d })
end

return reply(main())
