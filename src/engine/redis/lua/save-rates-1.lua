--[[
  save-rates: stores the service's rate estimator state (rates.ts) unless a newer period is stored
  already: replicas that computed the same 2 s period race safely, the first write wins.

  KEYS[1] the service's cfg key; ARGV[1] now, ARGV[2] sysctls and timeouts (includes/core.lua)
  ARGV[3] the period the state is for  ARGV[4] the state (JSON, with that period as `p`)

  Returns JSON { ok, saved = true|false }.
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
  local key = PREFIX .. 'est'
  local stored = redis.call('GET', key)
  if stored and (cjson.decode(stored).p or 0) >= tonumber(ARGV[A + 1]) then return ok({ saved = false }) end
  redis.call('SET', key, ARGV[A + 2])
  return ok({ saved = true })
end

return reply(main())
