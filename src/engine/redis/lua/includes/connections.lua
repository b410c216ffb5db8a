--[[
  connections: what a report about an entry does (§6: a state or a packet event, packet/byte counts;
  a client packet for a deleted destination is dropped, §6.6) and its close — shared by
  update-connection, close-connection and batch.
]]
-- The entry `id`, after the service was read and its due timers fired; nil if none.
local function namedEntry(id)
  loadServiceCore()
  fireDue(ENV.now)
  return getConn(id)
end

local function reportEntry(c, now, state, dir, flag, inP, outP, inB, outB)
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

local function closeEntry(c, now)
  if c.nctl > 0 then
    return fail('FAILED_PRECONDITION', 'connection: template ' .. fullId(c.id) .. ' still controls '
      .. c.nctl .. ' connection(s); close those first', 'connection')
  end
  expireEntry(c, now, true)
  return ok()
end
