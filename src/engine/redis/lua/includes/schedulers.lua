--[[
  schedulers: every scheduler of §3 over the service's KLO — the kernel's answers (the first
  strictly-better dest wins, so ties go to the earliest in KLO), read from indexes instead of a scan
  where the memory engine does not scan either (see "best", the twos tree, the lblc count) — their
  state hooks (init/add/del/upd) and the lblc/lblcr collector. dh/sh/mh slot tables are rebuilt here
  in the same atomic call that changes the destination set; request hashes come in as ARGV.
]]
local SCHED1, SCHED2 = 8, 16
local MH_SIZE, MH_BITS = 4093, 6 -- IP_VS_MH_TAB_BITS = CONFIG_IP_VS_MH_TAB_INDEX (12) / 2

local function eligible(d) return d.ol == 0 and d.w > 0 end
local function overhead(d) return d.ac * 256 + d.ic end
local OK = { ovf = function(d) return eligible(d) and d.ac <= d.w end }

-- The "best" index of lc, wlc, sed, nq, fo, ovf and the lblc/lblcr fallback: a zset of the
-- eligible destinations, score = the scheduler's measure (lower is better), member = the KLO
-- place (fixed width, head first) followed by the key, so among equal scores the earliest in KLO
-- comes first — the kernel's "first strictly better wins" scan without the scan. The wlc and sed
-- ratios are doubles, and that orders exactly like the kernel's cross-multiplied comparison: two
-- different ratios a/b, c/d (int overheads a, c < 2^31; weights b, d < 2^16) differ by at least
-- 1/(bd), while rounding moves each by at most its value * 2^-53; landing on one double would need
-- a*d + c*b >= 2^53, but both are below 2^47. Rounding never reverses an order.
local ORD_BASE = 9000000000
local BEST_SCORE = {
  lc = function(d) return overhead(d) end,
  wlc = function(d) return overhead(d) / d.w end,
  sed = function(d) return (d.ac + 1) / d.w end,
  nq = function(d) if d.ac == 0 then return -1 end return (d.ac + 1) / d.w end,
  fo = function(d) return -d.w end,
  ovf = function(d) return -d.w end,
}
BEST_SCORE.lblc, BEST_SCORE.lblcr = BEST_SCORE.wlc, BEST_SCORE.wlc
local function bestMember(d) return string.format('%010d', ORD_BASE - d.ord) .. d.key end

local function best()
  flushIndexes()
  local first = redis.call('ZRANGE', BEST_KEY, 0, 0)
  if #first == 0 then return nil end
  return getDest(string.sub(first[1], 11))
end

-- twos: a Fenwick tree over the destinations' places (`ord`, larger = nearer the head) holding
-- each eligible destination's weight, in the hash `fw` (`k<ord>` names the destination).
local FW_LEVELS = 32
local function lowbit(j)
  local p = 1
  while j % (p * 2) == 0 do p = p * 2 end
  return p
end
local function fwAdd(j, delta)
  local size = 2 ^ FW_LEVELS
  while j <= size do
    redis.call('HINCRBY', FW_KEY, j, delta)
    j = j + lowbit(j)
  end
end
-- The largest place k with (sum of weights at places <= k) <= x.
local function fwFloor(x)
  local k = 0
  for level = FW_LEVELS - 1, 0, -1 do
    local step = 2 ^ level
    local v = tonumber(redis.call('HGET', FW_KEY, k + step)) or 0
    if v <= x then k = k + step; x = x - v end
  end
  return k
end

-- Keeps the scheduler's indexes in step with destination `d` (called by commit for each changed one).
INDEX_DEST = function(d)
  local name = SVC and SVC.sched
  local live = SVC ~= nil and d.tr == 0 and d.ord > 0
  if BEST_SCORE[name] then
    if live and (OK[name] or eligible)(d) then
      redis.call('ZADD', BEST_KEY, string.format('%.17g', BEST_SCORE[name](d)), bestMember(d))
    else
      redis.call('ZREM', BEST_KEY, bestMember(d))
    end
  end
  local tw = 0
  if name == 'twos' and live and eligible(d) then tw = d.w end
  if tw ~= d.tw then
    fwAdd(d.ord, tw - d.tw)
    redis.call('HINCRBY', K.sched, 'twt', tw - d.tw)
    if tw > 0 then redis.call('HSET', FW_KEY, 'k' .. d.ord, d.key) end
    d.tw = tw
  end
  local hi = 0
  if (name == 'lblc' or name == 'lblcr') and live and d.ac * 2 < d.w then hi = 1 end
  if hi ~= d.hi then
    redis.call('HINCRBY', K.sched, 'hic', hi - d.hi)
    d.hi = hi
  end
end

-- Drops the indexes and indexes every destination of the list again (scheduler bound or unbound).
local function resetIndexes()
  redis.call('DEL', BEST_KEY, FW_KEY)
  klo()
  for _, d in pairs(DEST) do d.tw, d.hi = 0, 0 end
  for _, d in ipairs(klo()) do touchDest(d) end
  flushIndexes()
end

local function schedGet(field) return redis.call('HGET', K.sched, field) end

-- rr ----------------------------------------------------------------------------------------
local function rrPick()
  local n = kloLen()
  local key = schedGet('cur')
  local cur = nil
  if key and key ~= '' then cur = kloPos(key) end
  local function take(d) redis.call('HSET', K.sched, 'cur', d.key); return d end
  local start = cur and cur + 1 or 0
  for i = start, n - 1 do
    local d = kloAt(i)
    if eligible(d) then return take(d) end
  end
  if not cur then return nil end
  for i = 0, math.min(cur, n - 1) do
    local d = kloAt(i)
    if eligible(d) then return take(d) end
  end
  return nil
end

-- wrr ---------------------------------------------------------------------------------------
local function gcd(a, b)
  while b ~= 0 do a, b = b, a % b end
  return a
end
local function wrrWeights()
  local di, mx = 0, 0
  for _, d in ipairs(klo()) do
    if d.w > 0 then if di == 0 then di = d.w else di = gcd(di, d.w) end end
    if d.w > mx then mx = d.w end
  end
  if di == 0 then di = 1 end
  return di, mx
end
local function wrrInit()
  local di, mx = wrrWeights()
  local mw = mx - (di - 1)
  redis.call('HSET', K.sched, 'cl', '', 'di', di, 'mw', mw, 'cw', mw)
end
local function wrrChanged()
  local cw = tonumber(schedGet('cw')) or 0
  local di, mx = wrrWeights()
  local mw = mx - (di - 1)
  if cw > mw or cw == 0 then cw = mw elseif di > 1 then cw = math.floor(cw / di) * di + 1 end
  redis.call('HSET', K.sched, 'cl', '', 'di', di, 'mw', mw, 'cw', cw)
end
local function wrrPick()
  local st = redis.call('HMGET', K.sched, 'cl', 'cw', 'mw', 'di')
  local cl, cw, mw, di = st[1] or '', tonumber(st[2]) or 0, tonumber(st[3]) or 0, tonumber(st[4]) or 1
  if mw == 0 then return nil end
  local n = kloLen()
  local last, lastPos = nil, nil
  if cl ~= '' then
    lastPos = kloPos(cl)
    if lastPos then last = getDest(cl) end
  end
  local function save(key) redis.call('HSET', K.sched, 'cl', key, 'cw', cw) end
  local stop, lastPass, restarted = nil, false, false
  local start = lastPos and lastPos + 1 or 0
  while true do
    for i = start, n - 1 do
      local d = kloAt(i)
      if d.ol == 0 and d.w >= cw then save(d.key); return d end
      if stop and d.key == stop.key then save(d.key); return nil end
    end
    start = 0
    cw = cw - di
    if cw <= 0 then
      cw = mw
      if lastPass or last == nil then save(''); return nil end
      restarted = true
    end
    lastPass = cw <= di
    if lastPass and restarted and last ~= nil then stop = last end
  end
end

-- twos: random numbers come from the caller (ARGV); without them the call asks for them.
local function twosPick(r1, r2)
  flushIndexes()
  local total = tonumber(schedGet('twt')) or 0
  if total <= 0 then return nil end
  r1, r2 = tonumber(r1), tonumber(r2)
  if r1 == nil or r2 == nil or r1 > total or r2 > total then
    NEED_RANDOM = total + 1
    return nil
  end
  -- the first eligible destination in KLO whose running weight reaches `target` (>= 1): the
  -- place after the largest one whose weights from the tail up to it stay <= total - target
  local function find(target)
    local place = fwFloor(total - target) + 1
    return getDest(redis.call('HGET', FW_KEY, 'k' .. place))
  end
  local first, second = find(math.max(r1, 1)), find(math.max(r2, 1))
  if not first or not second then return nil end
  -- the kernel compares in 32-bit ints: w2*o1 > w1*o2
  if bit.tobit(second.w * overhead(first)) > bit.tobit(first.w * overhead(second)) then return second end
  return first
end

-- slot tables (dh, sh, mh) --------------------------------------------------------------------
local function enc2(n) return string.char(math.floor(n / 256), n % 256) end
local function writeTable(slots, size)
  local parts = {}
  for i = 0, size - 1 do parts[i + 1] = enc2(slots[i] or 0) end
  redis.call('SET', K.tab, table.concat(parts))
end
local function slotDest(s)
  local two = redis.call('GETRANGE', K.tab, s * 2, s * 2 + 1)
  if #two < 2 then return nil end
  local n = string.byte(two, 1) * 256 + string.byte(two, 2)
  if n == 0 then return nil end
  local key = redis.call('HGET', K.dn, n)
  if not key then return nil end
  local d = getDest(key)
  if not d or d.tr == 1 then return nil end
  return d
end
local function fls(x)
  local n = 0
  while x > 0 do x = math.floor(x / 2); n = n + 1 end
  return n
end
local function mhReassign(dests)
  local n = #dests
  if n > MH_SIZE then return end -- -EINVAL: the old table stays
  local g, maxW = 0, 0
  for _, d in ipairs(dests) do
    if d.lw > 0 then if g > 0 then g = gcd(d.lw, g) else g = d.lw end end
    if d.lw > maxW then maxW = d.lw end
  end
  local slots = {}
  if g < 1 then writeTable(slots, MH_SIZE); return end
  local rshift = math.max(0, fls(math.floor(maxW / g)) - MH_BITS)
  local perm, skip, turns = {}, {}, {}
  for i, d in ipairs(dests) do
    perm[i] = d.mo
    skip[i] = d.ms
    local t = math.floor(math.floor(d.lw / g) / (2 ^ rshift))
    if t == 0 and d.lw ~= 0 then t = 1 end
    turns[i] = t
  end
  local filled, filledCount, run = {}, 0, 0
  while true do
    local i = 1
    while i <= n do
      if turns[i] < 1 then
        i = i + 1
      else
        local c = perm[i]
        while filled[c] do
          c = c + skip[i]
          if c >= MH_SIZE then c = c - MH_SIZE end
        end
        perm[i] = c
        filled[c] = true
        slots[c] = dests[i].n
        filledCount = filledCount + 1
        if filledCount == MH_SIZE then writeTable(slots, MH_SIZE); return end
        run = run + 1
        if run >= turns[i] then run = 0; i = i + 1 end
      end
    end
  end
end
local function rebuildTable()
  local name = SVC.sched
  local dests = klo()
  local n = #dests
  local slots = {}
  if name == 'dh' then
    if n > 0 then for i = 0, 255 do slots[i] = dests[(i % n) + 1].n end end
    writeTable(slots, 256)
  elseif name == 'sh' then
    if n > 0 then
      local p, count = 0, 0
      for i = 0, 255 do
        slots[i] = dests[p + 1].n
        count = count + 1
        if count >= dests[p + 1].w then p = (p + 1) % n; count = 0 end
      end
    end
    writeTable(slots, 256)
  elseif name == 'mh' then
    mhReassign(dests)
  end
end
local function hashRefused(d) return d.w <= 0 or d.ol == 1 end

local function dhPick(bucket)
  local d = slotDest(bucket)
  if not d or hashRefused(d) then return nil end
  return d
end
local function shPick(ih)
  local d = slotDest(ih)
  if not d then return nil end
  if not hashRefused(d) then return d end
  if bit.band(SVC.sf, SCHED1) == 0 then return nil end
  for off = 0, 255 do
    local roff = (off + ih) % 256
    d = slotDest((roff + ih) % 256)
    if not d then return nil end
    if not hashRefused(d) then return d end
  end
  return nil
end
local function mhPick(ih, base)
  local d = slotDest(ih)
  if not d then return nil end
  if not hashRefused(d) then return d end
  if bit.band(SVC.sf, SCHED1) == 0 then return nil end
  for off = 0, MH_SIZE - 1 do
    local roff = (off + ih) % MH_SIZE
    d = slotDest(hsiphash((roff + base) % 4294967296, MH_KEY1) % MH_SIZE)
    if not d then return nil end
    if not hashRefused(d) then return d end
  end
  return nil
end

-- lblc / lblcr --------------------------------------------------------------------------------
-- `is_overloaded`: busier than its weight while some destination is under half of its weight
-- (the count of those is kept by INDEX_DEST).
local function lblcOverloaded(d)
  if d.ac <= d.w then return false end
  flushIndexes()
  return (tonumber(schedGet('hic')) or 0) > 0
end
local function lblcPick(vaddr, now)
  local raw = redis.call('HGET', K.loc, vaddr)
  local entry = raw and cmsgpack.unpack(raw)
  if entry then
    entry[1] = now
    redis.call('HSET', K.loc, vaddr, cmsgpack.pack(entry))
    local d = getDest(entry[2])
    if d and d.tr == 0 and d.w > 0 and not lblcOverloaded(d) then return d end
  end
  local d = best()
  if not d then return nil end
  if not entry or entry[2] ~= d.key then redis.call('HSET', K.loc, vaddr, cmsgpack.pack({ now, d.key })) end
  return d
end
local function setMin(set)
  local least = nil
  for _, key in ipairs(set) do
    local m = getDest(key)
    if m then
      if least == nil then
        if m.ol == 0 and m.w > 0 and m.tr == 0 then least = m end
      elseif m.ol == 0 and overhead(least) * m.w > overhead(m) * least.w and m.tr == 0 then
        least = m
      end
    end
  end
  return least
end
local function setMax(set)
  local most = nil
  for _, key in ipairs(set) do
    local m = getDest(key)
    if m and m.w > 0 and (most == nil or overhead(most) * m.w < overhead(m) * most.w) then most = m end
  end
  return most
end
local function lblcrPick(vaddr, now)
  local raw = redis.call('HGET', K.loc, vaddr)
  if raw then
    local entry = cmsgpack.unpack(raw)
    local lastmod = entry[2]
    local set = {}
    for i = 3, #entry do set[#set + 1] = entry[i] end
    local min = setMin(set)
    if #set > 1 and now > lastmod + ENV.lblcrExp * 1000 then
      local max = setMax(set)
      if max then
        for i, key in ipairs(set) do if key == max.key then table.remove(set, i); break end end
        lastmod = now
      end
    end
    local function save() redis.call('HSET', K.loc, vaddr, cmsgpack.pack({ now, lastmod, unpack(set) })) end
    save()
    if min and not lblcOverloaded(min) then return min end
    local d = best()
    if not d then return nil end
    local member = false
    for _, key in ipairs(set) do if key == d.key then member = true end end
    if not member then
      table.insert(set, 1, d.key)
      lastmod = now
      save()
    end
    return d
  end
  local d = best()
  if not d then return nil end
  redis.call('HSET', K.loc, vaddr, cmsgpack.pack({ now, now, d.key }))
  return d
end

-- `ip_vs_lblc(r)_check_expire`, one run at `now`.
local function gcRun(now)
  local exp = (SVC and SVC.sched == 'lblcr') and ENV.lblcrExp or ENV.lblcExp
  local counter = tonumber(schedGet('gcc')) or 1
  local function sweep(idle, goal)
    local raw = redis.call('HGETALL', K.loc)
    for i = 1, #raw, 2 do
      local e = cmsgpack.unpack(raw[i + 1])
      if now >= e[1] + idle then
        redis.call('HDEL', K.loc, raw[i])
        goal = goal - 1
        if goal <= 0 then return end
      end
    end
  end
  if counter % 30 == 0 then
    sweep(exp * 1000, math.huge)
    counter = 1
  else
    local size = redis.call('HLEN', K.loc)
    if size <= 16384 then
      counter = counter + 1
    else
      sweep(360000, math.min(math.floor((size - 16384) * 4 / 3), 8192))
    end
  end
  redis.call('HSET', K.sched, 'gcc', counter)
end

-- The scheduler's hooks -----------------------------------------------------------------------
local function bindScheduler(now)
  redis.call('DEL', K.sched, K.tab, K.loc)
  redis.call('ZREM', K.dl, 'gc')
  resetIndexes()
  local name = SVC.sched
  if name == 'wrr' then wrrInit() end
  if name == 'dh' or name == 'sh' or name == 'mh' then rebuildTable() end
  if name == 'lblc' or name == 'lblcr' then
    redis.call('HSET', K.sched, 'gcc', 1, 'gcseq', nextSeq())
    armNear(now + GC_INTERVAL, 'gc')
  end
end
local function unbindScheduler()
  redis.call('DEL', K.sched, K.tab, K.loc)
  redis.call('ZREM', K.dl, 'gc')
  resetIndexes()
end
local function onAddDest()
  local name = SVC.sched
  if name == 'wrr' then wrrChanged() end
  if name == 'dh' or name == 'sh' or name == 'mh' then rebuildTable() end
end
local function onUpdDest()
  local name = SVC.sched
  if name == 'wrr' then wrrChanged() end
  if name == 'sh' or name == 'mh' then rebuildTable() end
end
local function onDelDest(key, oldPos)
  local name = SVC.sched
  if name == 'rr' and schedGet('cur') == key then
    local dests = klo()
    redis.call('HSET', K.sched, 'cur', oldPos > 0 and dests[oldPos].key or '')
  end
  if name == 'wrr' then wrrChanged() end
  if name == 'dh' or name == 'sh' or name == 'mh' then rebuildTable() end
end

-- The decision: hashes h1/h2 (dh bucket, sh/mh index and mh base), vaddr, twos randoms.
local function pick(a)
  local name = SVC.sched
  if name == 'rr' then return rrPick() end
  if name == 'wrr' then return wrrPick() end
  if name == 'lblc' then return lblcPick(a.vaddr, ENV.now) end
  if name == 'lblcr' then return lblcrPick(a.vaddr, ENV.now) end
  if BEST_SCORE[name] then return best() end
  if name == 'twos' then return twosPick(a.r1, a.r2) end
  if name == 'dh' then return dhPick(a.h1) end
  if name == 'sh' then return shPick(a.h1) end
  if name == 'mh' then return mhPick(a.h1, a.h2) end
  return nil
end

-- Moves the wheel's buckets up to now's into the near zset (at most `budget` list items).
-- Returns the budget left, and whether every bucket up to now's was promoted.
local function promote(now, budget)
  local target = math.floor(now / WHEEL_MS)
  local horizon = wheelHorizon()
  if target <= horizon then return budget, true end
  while true do
    local first = redis.call('ZRANGE', K.wheel, 0, 0)
    local bucket = first[1] and tonumber(first[1])
    if bucket == nil or bucket > target then break end
    local list = PREFIX .. 'w:' .. bucket
    while true do
      if budget <= 0 then
        setHorizon(math.max(horizon, bucket - 1))
        return 0, false
      end
      local id = redis.call('LPOP', list)
      if not id then break end
      budget = budget - 1
      local c = getConn(id)
      if c and c.qb == bucket then
        c.qb = WHEEL_NONE
        placeTimer(c, target)
        touchConn(c)
      end
    end
    redis.call('ZREM', K.wheel, first[1])
  end
  setHorizon(target)
  return budget, true
end

-- Fires this service's due timers in (deadline, arming order); at most `budget` of them (wheel
-- promotion counts too). Returns true when nothing due is left.
local function fireDue(now, budget)
  local promoted
  budget, promoted = promote(now, budget or 1000)
  if not promoted then return false end
  local nd = counters().nd
  if nd ~= nil and now < nd then return true end
  while budget > 0 do
    local first = redis.call('ZRANGE', K.dl, 0, 0, 'WITHSCORES')
    if #first == 0 then
      setCounter('nd', NEVER)
      return true
    end
    local at = tonumber(first[2])
    if at > now then
      setCounter('nd', at)
      return true
    end
    local chosen, chosenSeq = nil, nil
    for _, m in ipairs(redis.call('ZRANGEBYSCORE', K.dl, at, at)) do
      local s
      if m == 'gc' then
        s = tonumber(schedGet('gcseq')) or 0
      else
        local c = getConn(m)
        s = c and c.seq or 0
      end
      if chosen == nil or s < chosenSeq then chosen, chosenSeq = m, s end
    end
    if chosen == 'gc' then
      gcRun(at)
      redis.call('HSET', K.sched, 'gcseq', nextSeq())
      armNear(at + GC_INTERVAL, 'gc')
    else
      local c = getConn(chosen)
      if c and c.qb == WHEEL_NEAR then expireEntry(c, at, false) else redis.call('ZREM', K.dl, chosen) end
    end
    budget = budget - 1
  end
  return false
end
