--[[
  zero-stats: `ip_vs_zero_stats` for one service and its destinations (and, with ARGV[4] = "1",
  this tag's share of the director's totals).

  KEYS[1] the service's cfg key; ARGV[1] now, ARGV[2] sysctls and timeouts (includes/core.lua)
  ARGV[3] "1" when the service must exist   ARGV[4] "1" to zero the totals share

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
  loadService()
  fireDue(ENV.now)
  redis.call('DEL', PREFIX .. 'est') -- rates start again from zero with the counters
  if ARGV[A + 2] == '1' then redis.call('HSET', K.ctr, 'tsc', 0, 'tsip', 0, 'tsop', 0, 'tsib', 0, 'tsob', 0) end
  if not SVC then
    if ARGV[A + 1] == '1' then return fail('NOT_FOUND', '', 'service') end
    return ok()
  end
  redis.call('HSET', K.cfg, 'sc', 0, 'sip', 0, 'sop', 0, 'sib', 0, 'sob', 0)
  for _, d in ipairs(klo()) do
    d.sc, d.sip, d.sop, d.sib, d.sob = 0, 0, 0, 0, 0
    touchDest(d)
  end
  return ok()
end

return reply(main())
