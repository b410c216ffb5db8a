--[[ accounting: counters and the OVERLOAD rules of §4 (`ip_vs_bind_dest` / `ip_vs_unbind_dest`). ]]
local function bindDest(c)
  local d = getDest(c.dest)
  if c.tpl then d.pc = d.pc + 1 elseif c.inactive then d.ic = d.ic + 1 else d.ac = d.ac + 1 end
  if d.ut ~= 0 and d.ac + d.ic >= d.ut then d.ol = 1 end
  touchDest(d)
end

local function unbindDest(c)
  local d = getDest(c.dest)
  if c.tpl then d.pc = d.pc - 1 elseif c.inactive then d.ic = d.ic - 1 else d.ac = d.ac - 1 end
  local total = d.ac + d.ic
  if d.lt ~= 0 then
    if total < d.lt then d.ol = 0 end
  elseif d.ut ~= 0 then
    if total * 4 < d.ut * 3 then d.ol = 0 end
  else
    d.ol = 0
  end
  touchDest(d)
end

-- A state change crossing active <-> inactive moves one count (`set_tcp_state`).
local function setActive(c, active)
  if c.tpl or active == (not c.inactive) then return end
  local d = getDest(c.dest)
  if active then d.ic = d.ic - 1; d.ac = d.ac + 1 else d.ac = d.ac - 1; d.ic = d.ic + 1 end
  c.inactive = not active
  touchDest(d)
  touchConn(c)
end

-- `__ip_vs_update_dest`: OVERLOAD cleared when u_threshold becomes 0 or grows.
local function applyDestConfig(d, w, fwd, ut, lt, adding)
  local previousUpper = d.ut
  d.w = w
  if adding or w ~= 0 then d.lw = w end
  d.fwd = fwd
  d.ut = ut
  d.lt = lt
  if d.ut == 0 or d.ut > previousUpper then d.ol = 0 end
  touchDest(d)
end
