--[[ views: entries, destinations and the service as plain tables for the caller (JSON). ]]
local function connRecord(c)
  local d = getDest(c.dest)
  return { id = c.id, tpl = c.tpl, proto = c.proto, caddr = c.caddr, cport = c.cport, vaddr = c.vaddr,
    vport = c.vport, dport = c.dport, dest = c.dest, destIp = d and d.ip or '', state = c.state,
    deadline = c.deadline, ctl = c.ctl, nctl = c.nctl, callId = c.callId, assured = c.assured }
end

local function serviceRecord()
  local dests = {}
  for i, d in ipairs(klo()) do dests[i] = d end
  return { svc = SVC, dests = dests }
end

local function ok(extra)
  local r = extra or {}
  r.ok = true
  return r
end

-- How every operation ends: its changes written back, its answer as JSON.
local function reply(result)
  commit()
  return cjson.encode(result)
end
