--[[
  batch: several reports and closes for entries of ONE service, applied in order in one atomic
  call (the caller groups a batch by service: one call per service tag, results in request order).

  KEYS[1] the service's cfg key; ARGV[1] now, ARGV[2] sysctls and timeouts (includes/core.lua)
  ARGV[3] number of items n, then 9 arguments per item:
    kind ("u" report | "c" close), local entry id, state or "", event direction or "",
    TCP flag or "", inPackets, outPackets, inBytes, outBytes

  Returns JSON { ok, results = [ { ok, conn?, dropped? } | { err, msg, field } ] } in item order.
]]
--- @include "includes/core"
--- @include "includes/accounting"
--- @include "includes/states"
--- @include "includes/siphash"
--- @include "includes/lifecycle"
--- @include "includes/schedulers"
--- @include "includes/views"
--- @include "includes/connections"
begin(KEYS, ARGV)

local function main()
  local now = ENV.now
  loadServiceCore()
  fireDue(now)
  local results = {}
  for i = 1, tonumber(ARGV[A + 1]) do
    local at = A + 1 + (i - 1) * 9
    local c = getConn(ARGV[at + 2])
    if not c then
      results[i] = fail('NOT_FOUND', '', 'connection')
    elseif ARGV[at + 1] == 'c' then
      results[i] = closeEntry(c, now)
    else
      local flag = ARGV[at + 5]
      if flag == '' then flag = nil end
      results[i] = reportEntry(c, now, ARGV[at + 3], ARGV[at + 4], flag, tonumber(ARGV[at + 6]),
        tonumber(ARGV[at + 7]), tonumber(ARGV[at + 8]), tonumber(ARGV[at + 9]))
    end
  end
  return ok({ results = results })
end

return reply(main())
