--[[
  schedule: one scheduling decision (§2, §5, §6.8) — existing-entry rules, `ip_vs_schedule` or
  `ip_vs_sched_persist`, connection creation and binding — after this service's due timers fired.

  KEYS[1]  the service's cfg key (includes/core.lua)
  ARGV[1]  now; ARGV[2] the sysctls/timeouts (includes/core.lua)
  ARGV[3] cfg version the caller resolved with   ARGV[4] protocol   ARGV[5] client address
  ARGV[6] client port  ARGV[7] virtual address  ARGV[8] virtual port  ARGV[9] tuple key
  ARGV[10] initial state or ""  ARGV[11] one-packet 0/1
  ARGV[12] error code the caller found for a new decision ("" none)   ARGV[13] its message
  ARGV[14] persistent 0/1  ARGV[15] template key  ARGV[16] template protocol  ARGV[17] template caddr
  ARGV[18] template vaddr  ARGV[19] template vport  ARGV[20] template keeps dest port 0/1
  ARGV[21] has Call-ID 0/1  ARGV[22] Call-ID  ARGV[23] fwmark of the entries
  ARGV[24] h1 (dh bucket / sh,mh index)  ARGV[25] h2 (mh hash base)  ARGV[26] r1  ARGV[27] r2
  ARGV[28] requestId ("" none)  ARGV[29] how long its answer is kept (ms)  ARGV[30] explain 0/1
  ARGV[31] "1": only the existing entry of this tuple here (§2.1: the connection table is global; the
    caller found the packet's entry in this service although the packet resolves to another):
    follow it, drop the packet, or unbind it for a new decision elsewhere ({ ok, gone = true })

  A request id's first successful answer is kept in `<prefix>{<service key>}:rq:<id>` (the only
  key with a Redis TTL: it moves no counter); a retry with that id, from any replica, gets that
  answer back and changes nothing.

  Returns JSON: { ok, service, destination, forward, connection, persistent, template?, reused, state,
    explain? = { dests = the list before the decision, sched = scheduler state, existing, template } }
    (explain: the caller builds candidates with the scheduler module's own `describe`)
    or { err = "STALE" } (configuration changed: resolve again), { err = "NEED_RANDOM", range = n }
    (twos needs two random numbers below n), or { err = code, msg, field }.
]]
--- @include "includes/core"
--- @include "includes/accounting"
--- @include "includes/states"
--- @include "includes/siphash"
--- @include "includes/lifecycle"
--- @include "includes/schedulers"
--- @include "includes/views"
begin(KEYS, ARGV)

-- explain (ARGV[A + 28] = 1): what the decision saw, taken just before it (O(n), on request only)
local EXPLAIN = nil
local function observe()
  if ARGV[A + 28] ~= '1' or EXPLAIN.dests then return end
  flushIndexes()
  local dests = {}
  for i, d in ipairs(klo()) do
    dests[i] = { key = d.key, ip = d.ip, port = d.port, w = d.w, lw = d.lw, ac = d.ac, ic = d.ic, ol = d.ol,
      tr = d.tr }
  end
  EXPLAIN.dests = dests
  EXPLAIN.sched = redis.call('HGETALL', K.sched)
end

local function respond(c, reused)
  local d = getDest(c.dest)
  local r = { service = SVC_KEY, destination = d.key, forward = d.fwd, connection = fullId(c.id),
    persistent = c.ctl ~= '', reused = reused, state = c.state }
  if c.ctl ~= '' then r.template = fullId(c.ctl) end
  if ARGV[A + 28] == '1' then
    observe()
    r.explain = EXPLAIN
  end
  return ok(r)
end

local function reschedules(c, d, proto)
  if proto == 'udp' then return false end
  if ENV.enc == 1 and d.w == 0 then return true end
  local mode = ENV.crm
  if mode == 0 or c.ctl ~= '' then return false end
  if proto == 'sctp' then return c.state == 'CLOSED' end
  return c.state == 'TIME_WAIT' or c.state == 'CLOSE'
    or (bit.band(mode, 2) ~= 0 and c.state == 'FIN_WAIT' and c.noOutput)
end

local function main()
  local now = ENV.now
  EXPLAIN = { existing = 'none', template = 'none' }
  local existingOnly = ARGV[A + 29] == '1'
  -- (an entry may outlive its service: the existing-entry rules need none)
  if not loadServiceCore() and not existingOnly then return { err = 'STALE' } end
  if not existingOnly and SVC.ver ~= tonumber(ARGV[A + 1]) then return { err = 'STALE' } end
  fireDue(now)
  local proto, caddr, cport = ARGV[A + 2], ARGV[A + 3], tonumber(ARGV[A + 4])
  local vaddr, vport, tuple = ARGV[A + 5], tonumber(ARGV[A + 6]), ARGV[A + 7]
  local initialState, onePacket = ARGV[A + 8], ARGV[A + 9] == '1'
  local fwmark = tonumber(ARGV[A + 21])
  local args = { h1 = tonumber(ARGV[A + 22]), h2 = tonumber(ARGV[A + 23]), r1 = ARGV[A + 24],
    r2 = ARGV[A + 25], vaddr = vaddr }

  local discard = nil
  local existing = getConnByKey(K.tuples, tuple)
  if existing then
    local ed = getDest(existing.dest)
    if reschedules(existing, ed, proto) then
      discard = existing
      EXPLAIN.existing = 'rescheduled'
    elseif ed.tr == 1 then
      if ENV.enc == 0 then
        return fail('NO_DESTINATION', 'connection ' .. fullId(existing.id) .. ' belongs to deleted destination '
          .. ed.key .. ': packet dropped (expire_nodest_conn=0)', 'service')
      end
      discard = existing
      EXPLAIN.existing = 'rescheduled'
    else
      -- §6.8 rule 3: the packet follows the existing entry
      EXPLAIN.existing = 'followed'
      if proto == 'tcp' then packetEvent(existing, 'in', 'syn')
      elseif proto == 'udp' then packetEvent(existing, 'in', nil)
      else enterState(existing, sctpInitFromClient(existing.state)) end
      rearm(existing, now)
      return respond(existing, true)
    end
  end

  -- The old entry is unbound after the new decision and its bind (§6.8).
  local function finish(r)
    if discard and discard.nctl == 0 and CONN[discard.id] then expireEntry(discard, now, false) end
    return r
  end
  if existingOnly then return finish(ok({ gone = true })) end
  if ARGV[A + 10] ~= '' then return finish(fail(ARGV[A + 10], ARGV[A + 11], 'service')) end
  local function noDest()
    if NEED_RANDOM then return { err = 'NEED_RANDOM', range = NEED_RANDOM } end
    return finish(fail('NO_DESTINATION', 'service ' .. SVC.key .. ': no destination available (scheduler '
      .. SVC.sched .. ')', 'service'))
  end

  local c
  if ARGV[A + 12] == '1' then
    local tkey = ARGV[A + 13]
    local callId = false
    if ARGV[A + 19] == '1' then callId = ARGV[A + 20] end
    local ct = getConnByKey(K.tpl, tkey)
    EXPLAIN.template = ct and 'hit' or 'miss'
    if ct then
      local td = getDest(ct.dest)
      if not (td.tr == 0 and not (ENV.eqt == 1 and td.w == 0)) then
        invalidateTemplate(ct)
        ct = nil
        EXPLAIN.template = 'invalid'
      end
    end
    observe()
    local dest
    if ct then
      dest = getDest(ct.dest)
    else
      dest = pick(args)
      if not dest then return noDest() end
      local dport = 0
      if ARGV[A + 18] == '1' then dport = dest.port end
      ct = createEntry(dest, { tpl = true, proto = ARGV[A + 14], caddr = ARGV[A + 15], cport = 0,
        vaddr = ARGV[A + 16], vport = tonumber(ARGV[A + 17]), dport = dport, key = tkey, hashed = true,
        callId = callId, fwmark = fwmark })
      ct.timeout = SVC.pt * 1000
    end
    local dport = vport
    if vport == SVC.port and dest.port ~= 0 then dport = dest.port end
    c = createEntry(dest, { tpl = false, proto = proto, caddr = caddr, cport = cport, vaddr = vaddr,
      vport = vport, dport = dport, key = tuple, hashed = not onePacket, fwmark = fwmark })
    c.ctl = ct.id
    ct.nctl = ct.nctl + 1
    rearm(ct, now)
  else
    observe()
    local dest = pick(args)
    if not dest then return noDest() end
    local dport = vport
    if dest.port ~= 0 then dport = dest.port end
    c = createEntry(dest, { tpl = false, proto = proto, caddr = caddr, cport = cport, vaddr = vaddr,
      vport = vport, dport = dport, key = tuple, hashed = not onePacket, fwmark = fwmark })
  end
  if initialState ~= '' then enterState(c, initialState)
  elseif proto == 'tcp' then packetEvent(c, 'in', 'syn')
  else enterState(c, firstPacketState(proto)) end
  rearm(c, now)
  local d = getDest(c.dest)
  d.sc = d.sc + 1
  touchDest(d)
  redis.call('HINCRBY', K.cfg, 'sc', 1)
  nextCounter('tsc')
  local response = respond(c, false)
  if onePacket then expireEntry(c, now, false) end
  return finish(response)
end

local requestKey = nil
if ARGV[A + 26] ~= '' then
  requestKey = PREFIX .. 'rq:' .. ARGV[A + 26]
  local previous = redis.call('GET', requestKey)
  if previous then return previous end
end
local result = main()
local answer = reply(result)
if requestKey and result.ok and not result.gone then redis.call('SET', requestKey, answer, 'PX', tonumber(ARGV[A + 27])) end
return answer
