--[[
  core: state access for ONE virtual service (one hash tag), shared by every service script.

  KEYS[1] of every service script is `<prefix>{<service key>}:cfg`; the service's other keys are named
  from it, `<prefix>{<service key>}:<name>` (same hash tag, so the same slot; K.<name> below):
    cfg     hash: service configuration, version, service stats
    klo     list: destination keys in kernel list order (LPUSH on add)
    sched   hash: scheduler state (rr cur; wrr cl/cw/mw/di; lblc gc counter/seq; twos total `twt`,
            lblc/lblcr "under half weight" count `hic`)
    conns   hash: local id -> packed entry, for entries not hashed (one-packet, invalidated)
    tuples  hash: connection tuple key -> packed connection (see packConn)
    tpl     hash: template key -> packed template
    dl      zset: the near timers: entries due within the wheel's promoted horizon, by deadline,
            and "gc" (the lblc/lblcr collector); later ones wait in the wheel
    wheel   zset: bucket numbers (deadline // WHEEL_MS) that have a list `w:<bucket>` of local ids
            (see includes/lifecycle.lua)
    trash   set : destination keys in the trash
    loc     hash: lblc/lblcr table, destination address -> packed entry
    ctr     hash: counters that survive a delete/re-add (nid, seq, wp, dn, ordc, ver, totals)
    dn      hash: destination number -> destination key (slot tables, packed entries)
    tab     string: dh/sh/mh slot table, 2 bytes (destination number) per slot
    best    zset: the scheduler's measure index; fw hash: the twos weight tree (schedulers.lua)
    d:<dest key>  hash: one per destination
    rq:<request id>  string: a Schedule's answer kept for retries (schedule-1.lua)

  ARGV[1] (every service script): now (ms); ARGV[2]: the sysctls and timeouts the scripts read, as
    one space-separated text (the replica caches it): expire_quiescent_template expire_nodest_conn
    conn_reuse_mode secure_tcp lblc_expiration lblcr_expiration, timeouts tcp tcpFin udp.
  Operation arguments start at ARGV[A + 1].
]]
-- Per call (set by `begin`, which every operation runs first): the keys, the key prefix of the
-- service's tag, the service key, now and the sysctls/timeouts. Loaded as a Redis Functions
-- library, this file's top level runs once; everything a call changes is reset by `begin`.
local K, PREFIX, SVC_KEY, ENV
local KEY_NAMES = { 'klo', 'sched', 'conns', 'tuples', 'tpl', 'dl', 'trash', 'loc', 'ctr', 'dn', 'tab', 'wheel' }
local A = 2
-- Set-up that needs the standard library (a Functions library's top level may not touch any
-- global while it loads): each include registers it here; the first `begin` runs it.
local FIRST_CALL = {}
local function onFirstCall(f) FIRST_CALL[#FIRST_CALL + 1] = f end
-- Per-call state of schedulers.lua, declared here so `begin` can reset it.
local NEED_RANDOM, BEST_KEY, FW_KEY

local function fail(code, msg, field) return { err = code, msg = msg or '', field = field or '' } end

-- The service ------------------------------------------------------------------------------
local SVC = nil
local SVC_NUM = { 'port', 'fwmark', 'sf', 'pt', 'op', 'ver', 'sc', 'sip', 'sop', 'sib', 'sob' }
local function loadService()
  local raw = redis.call('HGETALL', K.cfg)
  if #raw == 0 then SVC = nil; return nil end
  local s = {}
  for i = 1, #raw, 2 do s[raw[i]] = raw[i + 1] end
  for _, f in ipairs(SVC_NUM) do s[f] = tonumber(s[f]) or 0 end
  SVC = s
  return s
end

-- What the decision and connection scripts read of the service (the views read it all).
local SVC_CORE = { 'key', 'port', 'pt', 'sched', 'sf', 'ver' }
local function loadServiceCore()
  local v = redis.call('HMGET', K.cfg, unpack(SVC_CORE))
  if not v[1] then SVC = nil; return nil end
  SVC = { key = v[1], port = tonumber(v[2]) or 0, pt = tonumber(v[3]) or 0, sched = v[4],
    sf = tonumber(v[5]) or 0, ver = tonumber(v[6]) or 0 }
  return SVC
end

-- Destinations -----------------------------------------------------------------------------
-- DEST_LOADED: each destination's record as read, so commit writes back only what changed
local DEST, DIRTY_D, DESTS, DEST_LOADED
-- A destination is one string, `<prefix>{<service key>}:d:<dest key>`: its D_FIELDS packed with
-- cmsgpack in this order (one GET and one unpack per call that needs it).
-- ord: place in KLO (a larger ord is nearer the head); tw, hi: what the destination adds to the
-- scheduler's indexes now (twos weight tree, lblc/lblcr "half idle" count; see schedulers.lua)
local D_FIELDS = { 'key', 'ip', 'port', 'fold', 'mo', 'ms', 'w', 'lw', 'fwd', 'ut', 'lt', 'ac', 'ic', 'pc',
  'ol', 'tr', 'n', 'sc', 'sip', 'sop', 'sib', 'sob', 'ord', 'tw', 'hi' }
local function destKey(key) return PREFIX .. 'd:' .. key end
local function getDest(key)
  local d = DEST[key]
  if d then return d end
  local raw = redis.call('GET', destKey(key))
  if not raw then return nil end
  local values = { cmsgpack.unpack(raw) }
  d = { pos = -1 }
  for i, f in ipairs(D_FIELDS) do d[f] = values[i] end
  DEST_LOADED[key] = raw
  DEST[key] = d
  return d
end
local function packDest(d)
  local values = {}
  for i, f in ipairs(D_FIELDS) do values[i] = d[f] end
  return cmsgpack.pack(unpack(values))
end
-- Set by schedulers.lua: keeps the scheduler's indexes in step with a changed destination.
local INDEX_DEST = nil
-- Every change of a destination goes through here: written back at commit, re-indexed before the
-- next read of an index (`flushIndexes`, so a decision later in the same call sees it) or at commit.
local INDEX_PENDING
local function touchDest(d)
  DIRTY_D[d.key] = d
  INDEX_PENDING[d.key] = d
end
local function flushIndexes()
  if not INDEX_DEST or next(INDEX_PENDING) == nil then return end
  for _, d in pairs(INDEX_PENDING) do INDEX_DEST(d) end
  INDEX_PENDING = {}
end
-- The service's destinations in KLO, each with its 0-based `pos`.
local function klo()
  if DESTS then return DESTS end
  DESTS = {}
  for i, key in ipairs(redis.call('LRANGE', K.klo, 0, -1)) do
    local d = getDest(key)
    d.pos = i - 1
    DESTS[i] = d
  end
  return DESTS
end
-- Lazy KLO access for walks that usually stop early (rr, wrr): keys are read in chunks and only
-- the destinations visited are loaded.
local KLO_KEYS, KLO_LEN
local function kloLen()
  if DESTS then return #DESTS end
  KLO_LEN = KLO_LEN or redis.call('LLEN', K.klo)
  return KLO_LEN
end
local function kloAt(i)
  if DESTS then return DESTS[i + 1] end
  local key = KLO_KEYS[i]
  if key == nil then
    for j, k in ipairs(redis.call('LRANGE', K.klo, i, i + 31)) do KLO_KEYS[i + j - 1] = k end
    key = KLO_KEYS[i]
    if key == nil then return nil end
  end
  local d = getDest(key)
  d.pos = i
  return d
end
-- 0-based KLO position of a destination key, or nil when it is not in the list.
local function kloPos(key)
  if DESTS then
    local d = DEST[key]
    if d and d.pos >= 0 then return d.pos end
    return nil
  end
  return redis.call('LPOS', K.klo, key)
end
local function reloadKlo()
  for _, d in pairs(DEST) do d.pos = -1 end
  DESTS, KLO_KEYS, KLO_LEN = nil, {}, nil
  return klo()
end

-- Entries (connections and templates) -----------------------------------------------------
-- Where an entry lives: a hashed connection in `tuples` under its tuple key, a hashed template in
-- `tpl` under its template key; an entry that is not (or no longer) hashed (a one-packet
-- connection, an invalidated template) in `conns` under its local id. A local id is
-- `<base36 nid><kind t|u|s|i>.<the key it was created with>`: the nid tells an entry from a later
-- one with the same key, and a connection's protocol and addresses are read back from its tuple
-- key (`<t|u|s>|<client host:port>|<virtual host:port>`, virtual empty when it is the address of
-- the service, read back from the service key), so its record holds only what changes.
-- Records are packed with `struct` (see ENTRY_HEAD); a template also keeps its own tuple.
local CONN, DIRTY_C
local STATE_NAMES = { 'NONE', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT', 'TIME_WAIT', 'CLOSE',
  'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'SYNACK', 'UDP', 'INIT1', 'INIT', 'COOKIE_SENT', 'COOKIE_REPLIED',
  'COOKIE_WAIT', 'COOKIE', 'COOKIE_ECHOED', 'SHUTDOWN_SENT', 'SHUTDOWN_RECEIVED', 'SHUTDOWN_ACK_SENT',
  'REJECTED', 'CLOSED' }
local FWD_NAMES = { 'masq', 'route', 'tunnel' }
local PROTO_OF = { t = 'tcp', u = 'udp', s = 'sctp' }
local function numbering(names)
  local out = {}
  for i, name in ipairs(names) do out[name] = i end
  return out
end
local STATE_NUM, FWD_NUM
onFirstCall(function() STATE_NUM, FWD_NUM = numbering(STATE_NAMES), numbering(FWD_NAMES) end)
-- flags, state, forward, destination number, dport, timeout (ms), deadline (ms), arming sequence,
-- controlled count, fwmark, wheel bucket (-1 near zset, -2 none), nid, controller id
local ENTRY_HEAD = '>BBBI4HI4ddI4I4i4dHc0'
local F_TPL, F_INACTIVE, F_NO_OUTPUT, F_ASSURED, F_CALL_ID = 1, 2, 4, 8, 16

local function b01(x) if x then return 1 end return 0 end
local function touchConn(c) DIRTY_C[c.id] = c end

local DN
local function destKeyOf(n)
  local key = DN[n]
  if key == nil then key = redis.call('HGET', K.dn, n) or ''; DN[n] = key end
  return key
end

local function hostPort(text)
  local host, port = string.match(text, '^(.*):(%d+)$')
  return (string.gsub(host, '^%[(.*)%]$', '%1')), tonumber(port)
end

local function splitLocalId(id)
  local dot = string.find(id, '.', 1, true)
  if not dot then return nil end
  return string.sub(id, 1, dot - 2), string.sub(id, dot - 1, dot - 1), string.sub(id, dot + 1)
end

local function packConn(c)
  local flags = b01(c.tpl) * F_TPL + b01(c.inactive) * F_INACTIVE + b01(c.noOutput) * F_NO_OUTPUT
    + b01(c.assured) * F_ASSURED + b01(c.callId) * F_CALL_ID
  local d = DEST[c.dest]
  local n = (d or getDest(c.dest)).n
  local head = struct.pack(ENTRY_HEAD, flags, STATE_NUM[c.state], FWD_NUM[c.fwd], n, c.dport, c.timeout,
    c.deadline, c.seq, c.nctl, c.fwmark, c.qb, c.nid, #c.ctl, c.ctl)
  if not c.tpl then return head end
  return head .. struct.pack('>Hc0Hc0HHc0HHc0', #c.proto, c.proto, #c.caddr, c.caddr, c.cport, #c.vaddr,
    c.vaddr, c.vport, #(c.callId or ''), c.callId or '')
end

-- The entry `id` from its packed record (nil when the record is a later entry's).
local function unpackConn(id, raw, tkey)
  local flags, state, fwd, n, dport, timeout, deadline, seq, nctl, fwmark, qb, nid, ctl, pos =
    struct.unpack(ENTRY_HEAD, raw)
  local nid36, kind, key = splitLocalId(id)
  if tonumber(nid36, 36) ~= nid then return nil end
  local c = { id = id, tpl = bit.band(flags, F_TPL) ~= 0, inactive = bit.band(flags, F_INACTIVE) ~= 0,
    noOutput = bit.band(flags, F_NO_OUTPUT) ~= 0, assured = bit.band(flags, F_ASSURED) ~= 0,
    state = STATE_NAMES[state], fwd = FWD_NAMES[fwd], dest = destKeyOf(n), dport = dport, timeout = timeout,
    deadline = deadline, seq = seq, nctl = nctl, fwmark = fwmark, qb = qb, nid = nid, ctl = ctl, tkey = tkey,
    callId = false }
  if c.tpl then
    local callId
    c.proto, c.caddr, c.cport, c.vaddr, c.vport, callId = struct.unpack('>Hc0Hc0HHc0HHc0', raw, pos)
    if bit.band(flags, F_CALL_ID) ~= 0 then c.callId = callId end
  else
    local letter, client, virtual = string.match(key, '^(%a)|([^|]+)|([^|]*)$')
    c.proto = PROTO_OF[letter]
    c.caddr, c.cport = hostPort(client)
    if virtual == '' then virtual = string.match(SVC_KEY, '^%a+:(.*)$') end
    c.vaddr, c.vport = hostPort(virtual)
  end
  return c
end

local function base36(n)
  local digits, s = '0123456789abcdefghijklmnopqrstuvwxyz', ''
  repeat
    local r = n % 36
    s = string.sub(digits, r + 1, r + 1) .. s
    n = (n - r) / 36
  until n == 0
  return s
end

local function localId(nid, kind, key) return base36(nid) .. kind .. '.' .. key end

-- The entry stored under `key` in the index hash `h` (K.tuples or K.tpl), or nil.
local function getConnByKey(h, key)
  local raw = redis.call('HGET', h, key)
  if not raw then return nil end
  local nid = select(12, struct.unpack(ENTRY_HEAD, raw))
  local kind = h == K.tpl and 'i' or string.sub(key, 1, 1)
  local id = localId(nid, kind, key)
  local c = CONN[id]
  if c ~= nil then return c or nil end
  c = unpackConn(id, raw, key)
  CONN[id] = c
  return c
end

local function getConn(id)
  local c = CONN[id]
  if c ~= nil then return c or nil end
  local _, kind, key = splitLocalId(id)
  if not key then return nil end
  local raw = redis.call('HGET', K.conns, id)
  if raw then
    c = unpackConn(id, raw, '')
  else
    local h = kind == 'i' and K.tpl or K.tuples
    raw = redis.call('HGET', h, key)
    c = raw and unpackConn(id, raw, key)
  end
  CONN[id] = c or false
  return c
end

-- Every live entry of the service (views, the expire_nodest_conn flush).
local function allEntries()
  local out = {}
  for _, h in ipairs({ K.tuples, K.tpl }) do
    local raw = redis.call('HGETALL', h)
    for i = 1, #raw, 2 do
      local nid = select(12, struct.unpack(ENTRY_HEAD, raw[i + 1]))
      local id = localId(nid, h == K.tpl and 'i' or string.sub(raw[i], 1, 1), raw[i])
      local c = CONN[id]
      if c == nil then c = unpackConn(id, raw[i + 1], raw[i]); CONN[id] = c end
      if c then out[#out + 1] = c end
    end
  end
  for _, id in ipairs(redis.call('HKEYS', K.conns)) do
    local c = getConn(id)
    if c then out[#out + 1] = c end
  end
  return out
end

local function storeConn(c)
  if c.tkey ~= '' then redis.call('HSET', c.tpl and K.tpl or K.tuples, c.tkey, packConn(c))
  else redis.call('HSET', K.conns, c.id, packConn(c)) end
end

-- The service's running counters read once per call and written back at commit (only those that
-- changed): entry ids, arming sequence, wheel horizon, the earliest near deadline (a lower bound,
-- so a call skips the near zset when nothing can be due), its share of the director's connections.
local CTR, CTR_DIRTY
local CTR_FIELDS = { 'nid', 'seq', 'wp', 'nd', 'tsc' }
local function counters()
  if not CTR then
    local v = redis.call('HMGET', K.ctr, unpack(CTR_FIELDS))
    CTR = { nid = tonumber(v[1]) or 0, seq = tonumber(v[2]) or 0, wp = tonumber(v[3]) or -1, nd = tonumber(v[4]),
      tsc = tonumber(v[5]) or 0 }
  end
  return CTR
end
local function setCounter(name, value)
  counters()[name] = value
  CTR_DIRTY[name] = true
end
local function nextCounter(name)
  local value = counters()[name] + 1
  setCounter(name, value)
  return value
end
local function nextSeq() return nextCounter('seq') end
local function setHorizon(wp) setCounter('wp', wp) end
-- Every timer placed in the near zset goes through here.
local function armNear(deadline, member)
  redis.call('ZADD', K.dl, deadline, member)
  local nd = counters().nd
  if nd == nil or deadline < nd then setCounter('nd', deadline) end
end

local function commit()
  flushIndexes()
  if next(CTR_DIRTY) ~= nil then
    local args = {}
    for name in pairs(CTR_DIRTY) do
      args[#args + 1] = name
      args[#args + 1] = CTR[name]
    end
    redis.call('HSET', K.ctr, unpack(args))
    CTR_DIRTY = {}
  end
  for id, c in pairs(DIRTY_C) do
    if CONN[id] then storeConn(c) end
  end
  DIRTY_C = {}
  for key, d in pairs(DIRTY_D) do
    local packed = packDest(d)
    if packed ~= DEST_LOADED[key] then
      redis.call('SET', destKey(key), packed)
      DEST_LOADED[key] = packed
    end
  end
  DIRTY_D = {}
end

-- Derived once per service key and per sysctl text, not per call (in a Functions library these
-- tables outlive the call; they hold only what the key or the text determines).
local KEY_CACHE, ENV_CACHE, CACHED = {}, {}, 0
local function keysFor(cfgKey)
  local k = KEY_CACHE[cfgKey]
  if k then return k end
  local prefix = string.sub(cfgKey, 1, #cfgKey - 3)
  k = { cfg = cfgKey, prefix = prefix, svc = string.match(prefix, "{(.-)}") }
  for _, name in ipairs(KEY_NAMES) do k[name] = prefix .. name end
  k.best, k.fw = prefix .. 'best', prefix .. 'fw'
  if CACHED > 10000 then KEY_CACHE, ENV_CACHE, CACHED = {}, {}, 0 end
  KEY_CACHE[cfgKey], CACHED = k, CACHED + 1
  return k
end
local function envFor(text)
  local env = ENV_CACHE[text]
  if env then return env end
  local e = {}
  for word in string.gmatch(text, '%S+') do e[#e + 1] = tonumber(word) end
  env = { eqt = e[1], enc = e[2], crm = e[3], stcp = e[4], lblcExp = e[5], lblcrExp = e[6], tTcp = e[7],
    tFin = e[8], tUdp = e[9] }
  ENV_CACHE[text], CACHED = env, CACHED + 1
  return env
end

-- An operation's arguments packed into one text, separated by the unit separator (\31).
local function splitArgs(text)
  local out, n, from = {}, 0, 1
  while true do
    local at = string.find(text, '\31', from, true)
    n = n + 1
    if not at then
      out[n] = string.sub(text, from)
      return out
    end
    out[n] = string.sub(text, from, at - 1)
    from = at + 1
  end
end

-- Every operation starts here: this call's keys and arguments, and fresh per-call state.
local function begin(keys, argv)
  if FIRST_CALL then
    for _, f in ipairs(FIRST_CALL) do f() end
    FIRST_CALL = nil
  end
  K = keysFor(keys[1])
  PREFIX, SVC_KEY = K.prefix, K.svc
  ENV = envFor(argv[2])
  ENV.now = tonumber(argv[1])
  SVC, DEST, DIRTY_D, DESTS, DEST_LOADED, KLO_KEYS, KLO_LEN = nil, {}, {}, nil, {}, {}, nil
  CONN, DIRTY_C, DN, CTR, CTR_DIRTY, INDEX_PENDING = {}, {}, {}, nil, {}, {}
  NEED_RANDOM, BEST_KEY, FW_KEY = nil, K.best, K.fw
end
