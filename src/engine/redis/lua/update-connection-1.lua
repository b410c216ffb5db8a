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
begin(KEYS, ARGV)

local function main()
  local now = ENV.now
  loadServiceCore()
  fireDue(now)
  local c = getConn(ARGV[A + 1])
  if not c then return fail('NOT_FOUND', '', 'connection') end
  if ARGV[A + 9] == '1' then return ok() end
  local state, dir, flag = ARGV[A + 2], ARGV[A + 3], ARGV[A + 4]
  if flag == '' then flag = nil end
  local inP, outP = tonumber(ARGV[A + 5]), tonumber(ARGV[A + 6])
  local inB, outB = tonumber(ARGV[A + 7]), tonumber(ARGV[A + 8])
  local d = getDest(c.dest)
  if dir ~= '' and dir ~= 'out' and d.tr == 1 then
    if ENV.enc == 1 then expireEntry(c, now, false) end
    return ok({ conn = connRecord(c), dropped = true })
  end
  if state ~= '' then enterState(c, state) elseif dir ~= '' then packetEvent(c, dir, flag) end
  local inPkts, outPkts = inP, outP
  if inPkts == 0 and dir ~= '' and dir ~= 'out' then inPkts = 1 end
  if outPkts == 0 and dir == 'out' then outPkts = 1 end
  if d.tr == 0 then
    d.sip = d.sip + inPkts; d.sop = d.sop + outPkts; d.sib = d.sib + inB; d.sob = d.sob + outB
    touchDest(d)
    if SVC then
      redis.call('HINCRBY', K.cfg, 'sip', inPkts)
      redis.call('HINCRBY', K.cfg, 'sop', outPkts)
      redis.call('HINCRBY', K.cfg, 'sib', inB)
      redis.call('HINCRBY', K.cfg, 'sob', outB)
    end
    redis.call('HINCRBY', K.ctr, 'tsip', inPkts)
    redis.call('HINCRBY', K.ctr, 'tsop', outPkts)
    redis.call('HINCRBY', K.ctr, 'tsib', inB)
    redis.call('HINCRBY', K.ctr, 'tsob', outB)
  end
  if not c.tpl then rearm(c, now) end
  return ok({ conn = connRecord(c) })
end

local result = main()
commit()
return cjson.encode(result)
