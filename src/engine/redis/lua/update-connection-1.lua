--[[
  update-connection: one report about a connection or template (§6): a state or a packet event,
  packet/byte counts; a client packet for a deleted destination is dropped (§6.6).

  KEYS[1] the service's cfg key; ARGV[1] now, ARGV[2] sysctls and timeouts (includes/core.lua)
  ARGV[3] local entry id  ARGV[4] state or ""  ARGV[5] event direction or ""  ARGV[6] TCP flag or ""
  ARGV[7] inPackets  ARGV[8] outPackets  ARGV[9] inBytes  ARGV[10] outBytes
  ARGV[11] "1": only say whether the entry exists ({ ok } or NOT_FOUND), change nothing

  Returns JSON { ok, conn = entry record, dropped? } or { err = "NOT_FOUND" }.
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
  local c = namedEntry(ARGV[A + 1])
  if not c then return fail('NOT_FOUND', '', 'connection') end
  if ARGV[A + 9] == '1' then return ok() end
  local flag = ARGV[A + 4]
  if flag == '' then flag = nil end
  return reportEntry(c, now, ARGV[A + 2], ARGV[A + 3], flag, tonumber(ARGV[A + 5]), tonumber(ARGV[A + 6]),
    tonumber(ARGV[A + 7]), tonumber(ARGV[A + 8]))
end

return reply(main())
