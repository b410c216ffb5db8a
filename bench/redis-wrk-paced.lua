-- wrk script for bench/redis.bench.ts: bench/wrk-schedule.lua's requests (a distinct client endpoint on
-- every request, the same WRK_RESULT line) sent at a fixed overall rate instead of as fast as possible.
--
--   wrk -t1 -c32 -d6s -s bench/redis-wrk-paced.lua http://127.0.0.1:PORT -- <path> <run> <rate per thread>
--
-- Pacing uses wrk's delay() hook: the thread hands out send slots t0 + k / rate (a monotonic clock via
-- LuaJIT's ffi); a connection that is ready waits for the next free slot (ms resolution, wrk's timers).
-- When every connection is busy, slots are claimed late and sent at once, but never more than 50 ms
-- of them (no catch-up burst after a stall). wrk times each request from its write, so the latency is
-- the service time at that rate (the wait for a slot is not counted).

dofile("bench/wrk-schedule.lua")

local ffi = require("ffi")
ffi.cdef([[
  typedef struct { long tv_sec; long tv_nsec; } redis_bench_timespec;
  int clock_gettime(int clk_id, redis_bench_timespec *tp);
]])
local CLOCK_MONOTONIC = 1
local ts = ffi.new("redis_bench_timespec")

local function now_ms()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1000 + tonumber(ts.tv_nsec) / 1000000
end

local schedule_init = init
local period_ms = 1
local next_at = nil

function init(args)
  schedule_init(args)
  period_ms = 1000 / tonumber(args[3] or "1000")
end

function delay()
  local now = now_ms()
  if next_at == nil or next_at < now - 50 then
    next_at = next_at == nil and now or now - 50
  end
  local wait = next_at - now
  next_at = next_at + period_ms
  if wait <= 0 then
    return 0
  end
  return math.floor(wait + 0.5)
end
