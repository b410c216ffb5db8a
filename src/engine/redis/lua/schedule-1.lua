--[[
  schedule: one scheduling decision (§2, §5, §6.8) — existing-entry rules, `ip_vs_schedule` or
  `ip_vs_sched_persist`, connection creation and binding — after this service's due timers fired.

  KEYS[1]  the service's cfg key (includes/core.lua)
  ARGV[1]  now; ARGV[2] the sysctls/timeouts (includes/core.lua)
  ARGV[3]  the operation's arguments P[1..29], joined by the unit separator (\31) into one text (one
           argument for the client to encode instead of 29):
  P[1] cfg version the caller resolved with   P[2] protocol   P[3] client address
  P[4] client port  P[5] virtual address  P[6] virtual port  P[7] tuple key
  P[8] initial state or ""  P[9] one-packet 0/1
  P[10] error code the caller found for a new decision ("" none)   P[11] its message
  P[12] persistent 0/1  P[13] template key  P[14] template protocol  P[15] template caddr
  P[16] template vaddr  P[17] template vport  P[18] template keeps dest port 0/1
  P[19] has Call-ID 0/1  P[20] Call-ID  P[21] fwmark of the entries
  P[22] h1 (dh bucket / sh,mh index)  P[23] h2 (mh hash base)  P[24] r1  P[25] r2
  P[26] requestId ("" none)  P[27] how long its answer is kept (ms)  P[28] explain 0/1
  P[29] "1": only the existing entry of this tuple here (§2.1: the connection table is global; the
    caller found the packet's entry in this service although the packet resolves to another):
    follow it, drop the packet, or unbind it for a new decision elsewhere ({ ok, gone = true })

  A request id's first successful answer is kept in `<prefix>{<service key>}:rq:<id>` (the only
  key with a Redis TTL: it moves no counter); a retry with that id, from any replica, gets that
  answer back and changes nothing.

  Returns, for a decision without explain, the flat list { service, destination, forward, connection,
  persistent 0/1, reused 0/1, state, template or "" }; otherwise
  JSON: { ok, service, destination, forward, connection, persistent, template?, reused, state,
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
local P = splitArgs(ARGV[A + 1])

-- explain (P[28] = 1): what the decision saw, taken just before it (O(n), on request only)
local EXPLAIN = nil
local function observe()
  if P[28] ~= '1' or EXPLAIN.dests then return end
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
  if P[28] == '1' then
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
  local existingOnly = P[29] == '1'
  -- (an entry may outlive its service: the existing-entry rules need none)
  if not loadServiceCore() and not existingOnly then return { err = 'STALE' } end
  if not existingOnly and SVC.ver ~= tonumber(P[1]) then return { err = 'STALE' } end
  fireDue(now)
  local proto, caddr, cport = P[2], P[3], tonumber(P[4])
  local vaddr, vport, tuple = P[5], tonumber(P[6]), P[7]
  local initialState, onePacket = P[8], P[9] == '1'
  local fwmark = tonumber(P[21])
  local args = { h1 = tonumber(P[22]), h2 = tonumber(P[23]), r1 = P[24],
    r2 = P[25], vaddr = vaddr }

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
  if P[10] ~= '' then return finish(fail(P[10], P[11], 'service')) end
  local function noDest()
    if NEED_RANDOM then return { err = 'NEED_RANDOM', range = NEED_RANDOM } end
    return finish(fail('NO_DESTINATION', 'service ' .. SVC.key .. ': no destination available (scheduler '
      .. SVC.sched .. ')', 'service'))
  end

  local c
  if P[12] == '1' then
    local tkey = P[13]
    local callId = false
    if P[19] == '1' then callId = P[20] end
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
      if P[18] == '1' then dport = dest.port end
      ct = createEntry(dest, { tpl = true, proto = P[14], caddr = P[15], cport = 0,
        vaddr = P[16], vport = tonumber(P[17]), dport = dport, key = tkey, hashed = true,
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
if P[26] ~= '' then
  requestKey = PREFIX .. 'rq:' .. P[26]
  local previous = redis.call('GET', requestKey)
  if previous then return previous end
end
local result = main()
commit()
local answer = nil
if requestKey and result.ok and not result.gone then
  answer = cjson.encode(result)
  redis.call('SET', requestKey, answer, 'PX', tonumber(P[27]))
end
if result.ok and not result.gone and not result.explain then
  -- the usual answer as a flat list (no JSON to write here or to parse in the replica):
  -- service, destination, forward, connection, persistent 0/1, reused 0/1, state, template or ""
  return { result.service, result.destination, result.forward, result.connection, result.persistent and '1' or '0',
    result.reused and '1' or '0', result.state, result.template or '' }
end
return answer or cjson.encode(result)
