--[[
  close-connection: the caller ends a connection (a forced `ip_vs_conn_expire`); a template that
  still controls connections is refused.

  KEYS[1] the service's cfg key; ARGV[1] now, ARGV[2] sysctls and timeouts (includes/core.lua)
  ARGV[3] local entry id

  Returns JSON { ok } or { err = "NOT_FOUND" | "FAILED_PRECONDITION", msg }.
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
  return closeEntry(c, now)
end

return reply(main())
