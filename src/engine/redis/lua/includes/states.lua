--[[ states: the kernel's TCP state table (normal and secure_tcp), timeouts, active states (§6.2-6.3). ]]
local TCP_STATES = { 'NONE', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT', 'TIME_WAIT', 'CLOSE',
  'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'SYNACK' }
local TCP_COL = {}
onFirstCall(function() for i, s in ipairs(TCP_STATES) do TCP_COL[s] = i end end)
local ABBREV = { NO = 'NONE', ES = 'ESTABLISHED', SS = 'SYN_SENT', SR = 'SYN_RECV', FW = 'FIN_WAIT',
  TW = 'TIME_WAIT', CL = 'CLOSE', CW = 'CLOSE_WAIT', LA = 'LAST_ACK', LI = 'LISTEN', SA = 'SYNACK' }
-- Columns: NO ES SS SR FW TW CL CW LA LI SA
local ROWS = {
  ['in'] = { syn = 'SR ES ES SR SR SR SR SR SR SR SR', fin = 'CL CW SS TW TW TW CL CW LA LI TW',
    ack = 'ES ES SS ES FW TW CL CW CL LI ES', rst = 'CL CL CL SR CL CL CL CL LA LI SR' },
  out = { syn = 'SS ES SS SR SS SS SS SS SS LI SR', fin = 'TW FW SS TW FW TW CL TW LA LI TW',
    ack = 'ES ES SS ES FW TW CL CW LA ES ES', rst = 'CL CL SS CL CL TW CL CL CL CL CL' },
  ['in-only'] = { syn = 'SR ES ES SR SR SR SR SR SR SR SR', fin = 'CL FW SS TW FW TW CL CW LA LI TW',
    ack = 'ES ES SS ES FW TW CL CW CL LI ES', rst = 'CL CL CL SR CL CL CL CL LA LI CL' },
}
local DOS_ROWS = {
  ['in'] = { syn = 'SR ES ES SR SR SR SR SR SR SR SA', fin = 'CL CW SS TW TW TW CL CW LA LI SA',
    ack = 'ES ES SS SR FW TW CL CW CL LI SA', rst = 'CL CL CL SR CL CL CL CL LA LI CL' },
  out = { syn = 'SS ES SS SA SS SS SS SS SS LI SA', fin = ROWS.out.fin, ack = ROWS.out.ack, rst = ROWS.out.rst },
  ['in-only'] = { syn = 'SA ES ES SR SA SA SA SA SA SA SA', fin = ROWS['in-only'].fin,
    ack = ROWS['in-only'].ack, rst = ROWS['in-only'].rst },
}
local function nextTcpState(state, dir, flag, secure)
  local row = (secure and DOS_ROWS or ROWS)[dir][flag]
  local col = TCP_COL[state]
  return ABBREV[string.sub(row, (col - 1) * 3 + 1, (col - 1) * 3 + 2)]
end

local TCP_TIMEOUTS = { NONE = 2, ESTABLISHED = 900, SYN_SENT = 120, SYN_RECV = 60, FIN_WAIT = 120,
  TIME_WAIT = 120, CLOSE = 10, CLOSE_WAIT = 60, LAST_ACK = 30, LISTEN = 120, SYNACK = 120 }
local SCTP_TIMEOUTS = { NONE = 2, INIT1 = 4, INIT = 61, COOKIE_SENT = 61, COOKIE_REPLIED = 61,
  COOKIE_WAIT = 61, COOKIE = 61, COOKIE_ECHOED = 61, ESTABLISHED = 900, SHUTDOWN_SENT = 61,
  SHUTDOWN_RECEIVED = 61, SHUTDOWN_ACK_SENT = 61, REJECTED = 4, CLOSED = 61 }

local function stateTimeout(proto, state)
  if proto == 'udp' then return ENV.tUdp end
  if proto == 'sctp' then return SCTP_TIMEOUTS[state] end
  if state == 'ESTABLISHED' then return ENV.tTcp end
  if state == 'FIN_WAIT' then return ENV.tFin end
  return TCP_TIMEOUTS[state]
end

local TCP_ACTIVE = { ESTABLISHED = true, SYN_SENT = true, SYN_RECV = true, SYNACK = true }
local function isActiveState(proto, state)
  if proto == 'udp' then return false end
  if proto == 'sctp' then return state == 'ESTABLISHED' end
  return TCP_ACTIVE[state] == true
end

local function sctpInitFromClient(state)
  if state == 'NONE' then return 'INIT1' end
  if state == 'INIT1' or state == 'REJECTED' or state == 'CLOSED' then return 'INIT' end
  return state
end

local function firstPacketState(proto)
  if proto == 'udp' then return 'UDP' end
  if proto == 'sctp' then return 'INIT1' end
  return 'SYN_RECV'
end
