--[[
  add-dest: `ip_vs_add_dest`: a new or trash-resurrected destination goes to the head of KLO; the
  scheduler's add_dest hook runs (wrr restarts, dh/sh/mh tables are rebuilt) in this same call.

  KEYS[1] the service's cfg key; ARGV[1] now, ARGV[2] sysctls and timeouts (includes/core.lua)
  ARGV[3] dest key  ARGV[4] address  ARGV[5] port  ARGV[6] fold(address)  ARGV[7] mh offset
  ARGV[8] mh skip  ARGV[9] weight  ARGV[10] forward  ARGV[11] upper threshold  ARGV[12] lower threshold

  Returns JSON { ok, dest } or { err = "NOT_FOUND" | "ALREADY_EXISTS" }.
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
  local key = ARGV[A + 1]
  if redis.call('LPOS', K.klo, key) then return fail('ALREADY_EXISTS', '', 'destination') end
  local d = getDest(key)
  if d then
    redis.call('SREM', K.trash, key)
  else
    local n = redis.call('HINCRBY', K.ctr, 'dn', 1)
    redis.call('HSET', K.dn, n, key)
    d = { key = key, ip = ARGV[A + 2], port = tonumber(ARGV[A + 3]), fold = tonumber(ARGV[A + 4]),
      mo = tonumber(ARGV[A + 5]), ms = tonumber(ARGV[A + 6]), w = 1, lw = 1, fwd = 'masq', ut = 0, lt = 0,
      ac = 0, ic = 0, pc = 0, ol = 0, tr = 0, n = n, sc = 0, sip = 0, sop = 0, sib = 0, sob = 0, ord = 0,
      tw = 0, hi = 0, pos = -1 }
    DEST[key] = d
  end
  applyDestConfig(d, tonumber(ARGV[A + 7]), ARGV[A + 8], tonumber(ARGV[A + 9]), tonumber(ARGV[A + 10]), true)
  d.tr = 0
  d.ord = redis.call('HINCRBY', K.ctr, 'ordc', 1)
  touchDest(d)
  redis.call('LPUSH', K.klo, key)
  reloadKlo()
  onAddDest()
  return ok({ dest = d })
end

return reply(main())
