--[[
  siphash: `hsiphash(&v, 4, key)` of a 64-bit kernel (SipHash-1-3 over one u32, low 32 bits of the
  result) in 32-bit halves with the `bit` library. Lua numbers are doubles: halves are kept as
  unsigned integers below 2^32, sums carry by hand, and every bit.* result is made unsigned again.
]]
local U32 = 4294967296
local function u32(x) return x % U32 end
local bxor, bor, lshift, rshift
onFirstCall(function() bxor, bor, lshift, rshift = bit.bxor, bit.bor, bit.lshift, bit.rshift end)
local v0h, v0l, v1h, v1l, v2h, v2l, v3h, v3l = 0, 0, 0, 0, 0, 0, 0, 0

local function add(ah, al, bh, bl)
  local l = al + bl
  local c = 0
  if l >= U32 then l = l - U32; c = 1 end
  return (ah + bh + c) % U32, l
end
local function rol(h, l, n)
  return u32(bor(lshift(h, n), rshift(l, 32 - n))), u32(bor(lshift(l, n), rshift(h, 32 - n)))
end

local function sipRound()
  local h, l
  v0h, v0l = add(v0h, v0l, v1h, v1l)
  h, l = rol(v1h, v1l, 13)
  v1h, v1l = u32(bxor(h, v0h)), u32(bxor(l, v0l))
  v0h, v0l = v0l, v0h
  v2h, v2l = add(v2h, v2l, v3h, v3l)
  h, l = rol(v3h, v3l, 16)
  v3h, v3l = u32(bxor(h, v2h)), u32(bxor(l, v2l))
  v0h, v0l = add(v0h, v0l, v3h, v3l)
  h, l = rol(v3h, v3l, 21)
  v3h, v3l = u32(bxor(h, v0h)), u32(bxor(l, v0l))
  v2h, v2l = add(v2h, v2l, v1h, v1l)
  h, l = rol(v1h, v1l, 17)
  v1h, v1l = u32(bxor(h, v2h)), u32(bxor(l, v2l))
  v2h, v2l = v2l, v2h
end

-- key = { k0hi, k0lo, k1hi, k1lo }
local function hsiphash(v, key)
  v0h, v0l = u32(bxor(0x736f6d65, key[1])), u32(bxor(0x70736575, key[2]))
  v1h, v1l = u32(bxor(0x646f7261, key[3])), u32(bxor(0x6e646f6d, key[4]))
  v2h, v2l = u32(bxor(0x6c796765, key[1])), u32(bxor(0x6e657261, key[2]))
  v3h, v3l = u32(bxor(0x74656462, key[3])), u32(bxor(0x79746573, key[4]))
  -- b = 4 << 56 | v, one compression round, then three finalisation rounds
  local mh, ml = 0x04000000, v
  v3h, v3l = u32(bxor(v3h, mh)), u32(bxor(v3l, ml))
  sipRound()
  v0h, v0l = u32(bxor(v0h, mh)), u32(bxor(v0l, ml))
  v2l = u32(bxor(v2l, 0xff))
  sipRound()
  sipRound()
  sipRound()
  return u32(bxor(bxor(v0l, v1l), bxor(v2l, v3l)))
end

-- `generate_hash_secret` of ip_vs_mh.c: both words 2654435761 (hi 0, lo 0x9E3779B1).
local MH_KEY1 = { 0, 2654435761, 0, 2654435761 }
