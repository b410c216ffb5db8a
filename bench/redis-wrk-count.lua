-- wrk script for bench/redis.bench.ts's memory phase: bench/wrk-schedule.lua's requests (a distinct client
-- endpoint on every request, the same WRK_RESULT line), as fast as possible, until <count> answers.
--
--   wrk -t1 -c32 -d60s -s bench/redis-wrk-count.lua http://127.0.0.1:PORT -- <path> <run> <count>
--
-- The thread stops after <count> responses; the requests still in flight then (at most one per
-- connection) may or may not have been served, so the caller counts what the server holds itself.

dofile("bench/wrk-schedule.lua")

local schedule_init = init
local limit = 0
local answered = 0

function init(args)
  schedule_init(args)
  limit = tonumber(args[3] or "0")
end

function response()
  answered = answered + 1
  if answered == limit then
    wrk.thread:stop()
    -- wrk's main thread sleeps for -d regardless: the caller sends SIGINT on this line.
    io.write("COUNT_DONE\n")
    io.flush()
  end
end
