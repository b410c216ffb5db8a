--[[
  read: the service as the API shows it, after its due timers fired (so views never show an entry
  past its deadline).

  KEYS[1] the service's cfg key; ARGV[1] now, ARGV[2] sysctls and timeouts (includes/core.lua)
  ARGV[3] "1" to include the service (cfg + destinations in KLO)
  ARGV[4] "1" to include the trash   ARGV[5] "1" to include every entry   ARGV[6] "1" totals

  Returns JSON { ok, service? = { svc, dests }, trash? = [dest], conns? = [entry], totals?,
    rates? = the rate estimator state (JSON text, rates.ts) with the service or the totals }.
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
  local r = ok()
  if ARGV[A + 1] == '1' and SVC then r.service = serviceRecord() end
  if ARGV[A + 1] == '1' or ARGV[A + 4] == '1' then r.rates = redis.call('GET', PREFIX .. 'est') or '' end
  if ARGV[A + 2] == '1' then
    r.trash = {}
    for _, key in ipairs(redis.call('SMEMBERS', K.trash)) do r.trash[#r.trash + 1] = getDest(key) end
  end
  if ARGV[A + 3] == '1' then
    r.conns = {}
    for _, c in ipairs(allEntries()) do r.conns[#r.conns + 1] = connRecord(c) end
  end
  if ARGV[A + 4] == '1' then
    local t = redis.call('HMGET', K.ctr, 'tsc', 'tsip', 'tsop', 'tsib', 'tsob')
    r.totals = { tonumber(t[1]) or 0, tonumber(t[2]) or 0, tonumber(t[3]) or 0, tonumber(t[4]) or 0,
      tonumber(t[5]) or 0 }
  end
  return r
end

return reply(main())
