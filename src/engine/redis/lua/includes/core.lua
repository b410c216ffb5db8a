--[[
  core: state access for ONE virtual service (one hash tag), shared by every service script.

  KEYS (every service script takes the same 12, all `<prefix>{<service key>}:<name>`):
    KEYS[1] cfg     hash: service configuration, version, service stats
    KEYS[2] klo     list: destination keys in kernel list order (LPUSH on add)
    KEYS[3] sched   hash: scheduler state (rr cur; wrr cl/cw/mw/di; lblc gc counter/seq)
    KEYS[4] conns   hash: local entry id -> packed entry (cmsgpack array, see packConn)
    KEYS[5] tuples  hash: connection tuple -> local id
    KEYS[6] tpl     hash: template key -> local id
    KEYS[7] dl      zset: deadlines (local ids, and "gc" for the lblc/lblcr collector)
    KEYS[8] trash   set : destination keys in the trash
    KEYS[9] loc     hash: lblc/lblcr table, destination address -> packed entry
    KEYS[10] ctr    hash: counters that survive a delete/re-add (nid, seq, dn, ver, totals)
    KEYS[11] dn     hash: destination number -> destination key (slot tables)
    KEYS[12] tab    string: dh/sh/mh slot table, 2 bytes (destination number) per slot
  plus one hash per destination, `<prefix>{<service key>}:d:<dest key>` (same tag, same slot).

  ARGV[1..10] (every service script): now (ms), expire_quiescent_template, expire_nodest_conn,
    conn_reuse_mode, secure_tcp, lblc_expiration, lblcr_expiration, timeouts tcp, tcpFin, udp.
  Operation arguments start at ARGV[A + 1].
]]
local K = { cfg = KEYS[1], klo = KEYS[2], sched = KEYS[3], conns = KEYS[4], tuples = KEYS[5],
  tpl = KEYS[6], dl = KEYS[7], trash = KEYS[8], loc = KEYS[9], ctr = KEYS[10], dn = KEYS[11], tab = KEYS[12] }
local PREFIX = string.sub(KEYS[1], 1, #KEYS[1] - 3)
local SVC_KEY = string.match(PREFIX, "{(.-)}")
local ENV = { now = tonumber(ARGV[1]), eqt = tonumber(ARGV[2]), enc = tonumber(ARGV[3]),
  crm = tonumber(ARGV[4]), stcp = tonumber(ARGV[5]), lblcExp = tonumber(ARGV[6]),
  lblcrExp = tonumber(ARGV[7]), tTcp = tonumber(ARGV[8]), tFin = tonumber(ARGV[9]), tUdp = tonumber(ARGV[10]) }
local A = 10

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

-- Destinations -----------------------------------------------------------------------------
local DEST, DIRTY_D, DESTS = {}, {}, nil
local D_NUM = { 'port', 'fold', 'mo', 'ms', 'w', 'lw', 'ut', 'lt', 'ac', 'ic', 'pc', 'ol', 'tr', 'n',
  'sc', 'sip', 'sop', 'sib', 'sob' }
local D_FIELDS = { 'key', 'ip', 'port', 'fold', 'mo', 'ms', 'w', 'lw', 'fwd', 'ut', 'lt', 'ac', 'ic', 'pc',
  'ol', 'tr', 'n', 'sc', 'sip', 'sop', 'sib', 'sob' }
local function destHash(key) return PREFIX .. 'd:' .. key end
local function getDest(key)
  local d = DEST[key]
  if d then return d end
  local raw = redis.call('HGETALL', destHash(key))
  if #raw == 0 then return nil end
  d = {}
  for i = 1, #raw, 2 do d[raw[i]] = raw[i + 1] end
  for _, f in ipairs(D_NUM) do d[f] = tonumber(d[f]) or 0 end
  d.pos = -1
  DEST[key] = d
  return d
end
local function touchDest(d) DIRTY_D[d.key] = d end
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
local function reloadKlo()
  for _, d in pairs(DEST) do d.pos = -1 end
  DESTS = nil
  return klo()
end

-- Entries (connections and templates) -----------------------------------------------------
local CONN, DIRTY_C = {}, {}
local function getConn(id)
  local c = CONN[id]
  if c ~= nil then return c or nil end
  local raw = redis.call('HGET', K.conns, id)
  if not raw then return nil end
  local a = cmsgpack.unpack(raw)
  c = { id = id, tpl = a[1] == 1, proto = a[2], caddr = a[3], cport = a[4], vaddr = a[5], vport = a[6],
    dport = a[7], dest = a[8], tkey = a[9], state = a[10], inactive = a[11] == 1, fwd = a[12],
    noOutput = a[13] == 1, timeout = a[14], ctl = a[15], nctl = a[16], assured = a[17] == 1,
    callId = a[18], fwmark = a[19], deadline = a[20], seq = a[21] }
  CONN[id] = c
  return c
end
local function b01(x) if x then return 1 end return 0 end
local function touchConn(c) DIRTY_C[c.id] = c end
local function packConn(c)
  return cmsgpack.pack({ b01(c.tpl), c.proto, c.caddr, c.cport, c.vaddr, c.vport, c.dport, c.dest, c.tkey,
    c.state, b01(c.inactive), c.fwd, b01(c.noOutput), c.timeout, c.ctl, c.nctl, b01(c.assured), c.callId,
    c.fwmark, c.deadline, c.seq })
end

local function commit()
  for id, c in pairs(DIRTY_C) do
    if CONN[id] then redis.call('HSET', K.conns, id, packConn(c)) end
  end
  DIRTY_C = {}
  for key, d in pairs(DIRTY_D) do
    local args = {}
    for _, f in ipairs(D_FIELDS) do
      args[#args + 1] = f
      args[#args + 1] = d[f]
    end
    redis.call('HSET', destHash(key), unpack(args))
  end
  DIRTY_D = {}
end

local DIGITS = '0123456789abcdefghijklmnopqrstuvwxyz'
local function base36(n)
  local s = ''
  repeat
    local r = n % 36
    s = string.sub(DIGITS, r + 1, r + 1) .. s
    n = (n - r) / 36
  until n == 0
  return s
end
local function nextSeq() return redis.call('HINCRBY', K.ctr, 'seq', 1) end
