--[[
  lifecycle: entries over their life (§6): creation and binding, state changes with their counter
  moves and timeouts, re-arming in the deadline zset, `ip_vs_conn_expire` with "expire later" for
  controllers, template invalidation (§5.4), the expire_nodest_conn flush and the per-call sweep.
]]
local NEW_ENTRY_TIMEOUT = 3000
local EXPIRE_LATER = 60000
local GC_INTERVAL = 60000
local WHEEL_MS, WHEEL_NEAR, WHEEL_NONE = 1000, -1, -2
local NEVER = 9e15 -- a deadline no clock reaches (ms; exact in a double and in Redis's text)

local function fullId(id) return SVC_KEY .. '~' .. id end

-- `ip_vs_conn_new` + `ip_vs_bind_dest`. `e.key` is the entry's tuple (connection) or template key;
-- `e.hashed` false for a one-packet connection, which no later packet may find.
local function createEntry(dest, e)
  local nid = nextCounter('nid')
  local kind = e.tpl and 'i' or string.sub(e.proto, 1, 1)
  local inactive = not e.tpl
  if e.inactive ~= nil then inactive = e.inactive end
  local c = { id = localId(nid, kind, e.key), nid = nid, tpl = e.tpl, proto = e.proto, caddr = e.caddr,
    cport = e.cport, vaddr = e.vaddr, vport = e.vport, dport = e.dport, dest = dest.key,
    tkey = e.hashed and e.key or '', state = 'NONE', inactive = inactive, fwd = dest.fwd,
    noOutput = dest.fwd ~= 'masq', timeout = NEW_ENTRY_TIMEOUT, ctl = '', nctl = 0, assured = false,
    callId = e.callId or false, fwmark = e.fwmark, deadline = 0, seq = 0, qb = WHEEL_NONE }
  CONN[c.id] = c
  bindDest(c)
  touchConn(c)
  return c
end

-- Timers: an entry due within the promoted horizon (buckets up to `wp`, kept in ctr) sits in the
-- near zset `dl` by exact deadline; a later one sits once in the wheel list of its bucket. A
-- deadline that moves later leaves the entry where it is (it is moved on when its bucket is
-- promoted); one that moves earlier queues it again (the older list item is then stale: its
-- record's `qb` no longer names that bucket, and promotion drops it).
local function wheelHorizon() return counters().wp end
local function queue(c, bucket)
  if redis.call('RPUSH', PREFIX .. 'w:' .. bucket, c.id) == 1 then redis.call('ZADD', K.wheel, bucket, bucket) end
  c.qb = bucket
end
local function placeTimer(c, horizon)
  local bucket = math.floor(c.deadline / WHEEL_MS)
  if bucket <= horizon then
    armNear(c.deadline, c.id)
    c.qb = WHEEL_NEAR
  else
    if c.qb == WHEEL_NEAR then redis.call('ZREM', K.dl, c.id) end
    if c.qb < 0 or c.qb > bucket then queue(c, bucket) end
  end
end

local function rearm(c, now)
  c.deadline = now + c.timeout
  c.seq = nextSeq()
  placeTimer(c, wheelHorizon())
  touchConn(c)
end

local function assure(c)
  if c.ctl ~= '' then
    local ct = getConn(c.ctl)
    if ct and ct.tpl then ct.assured = true; touchConn(ct) end
  end
end

local function enterState(c, nxt)
  c.state = nxt
  setActive(c, isActiveState(c.proto, nxt))
  c.timeout = stateTimeout(c.proto, nxt) * 1000
  if nxt == 'ESTABLISHED' then assure(c) end
  touchConn(c)
end

local function packetEvent(c, dir, flag)
  if dir == 'out' then
    c.noOutput = false
    if c.proto == 'udp' then assure(c) end
  end
  if c.proto == 'tcp' and flag then
    local tbl = dir
    if dir == 'in' and c.noOutput then tbl = 'in-only' end
    enterState(c, nextTcpState(c.state, tbl, flag, ENV.stcp == 3))
  elseif c.proto == 'udp' then
    enterState(c, 'UDP')
  end
  touchConn(c)
end

local function unlink(c)
  if c.tkey ~= '' then
    local h = c.tpl and K.tpl or K.tuples
    local stored = getConnByKey(h, c.tkey)
    if stored and stored.id == c.id then redis.call('HDEL', h, c.tkey) end
  end
  redis.call('HDEL', K.conns, c.id)
  if c.qb == WHEEL_NEAR then redis.call('ZREM', K.dl, c.id) end
  CONN[c.id] = false
  DIRTY_C[c.id] = nil
end

local expireEntry
-- `ip_vs_conn_expire` at `now`; `forced` is a deletion (close).
expireEntry = function(c, now, forced)
  if c.nctl > 0 then
    c.timeout = EXPIRE_LATER
    rearm(c, now)
    return
  end
  unlink(c)
  local ct = nil
  if c.ctl ~= '' then
    ct = getConn(c.ctl)
    if ct then ct.nctl = ct.nctl - 1; touchConn(ct) end
    c.ctl = ''
  end
  unbindDest(c)
  if ct and forced and ct.nctl == 0 and ((not ct.tpl) or (not ct.assured)) then expireEntry(ct, now, false) end
end

-- `ip_vs_check_template` on an invalid template: re-keyed so it never matches again.
local function invalidateTemplate(ct)
  if ct.tkey ~= '' then
    local stored = getConnByKey(K.tpl, ct.tkey)
    if stored and stored.id == ct.id then redis.call('HDEL', K.tpl, ct.tkey) end
  end
  ct.tkey = ''
  ct.cport = 0
  ct.vport = 65535
  ct.dport = 65535
  touchConn(ct)
end

-- `ip_vs_expire_nodest_conn_flush` for this service's entries.
local function flushNoDest(now)
  local gone = {}
  for _, c in ipairs(allEntries()) do
    local d = getDest(c.dest)
    if d == nil or d.tr == 1 then gone[#gone + 1] = c end
  end
  for _, c in ipairs(gone) do
    if not c.tpl and c.nctl == 0 then expireEntry(c, now, false) end
  end
  for _, c in ipairs(gone) do
    if c.tpl and c.nctl == 0 and CONN[c.id] then expireEntry(c, now, false) end
  end
end
