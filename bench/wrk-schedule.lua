-- wrk script for bench/api.bench.ts: POST a ScheduleRequest JSON whose client endpoint differs on every
-- request, so no request lands on a live connection of an earlier one.
--
--   wrk -t1 -c32 -d8s -s bench/wrk-schedule.lua http://127.0.0.1:PORT -- <path> <run>
--
-- Client endpoints are the n-th of `clientFor(run, n)` in bench/grpc-payload.ts:
-- 100.<64+run>.a.b:port. Each wrk thread starts its counter at thread * 10^8.
-- done() prints one line: WRK_RESULT {json}; latencies are microseconds.

local path = "/v1/schedule"
local run = 0
local counter = 0
local next_thread = 0
local headers = { ["Content-Type"] = "application/json" }

function setup(thread)
  thread:set("thread_index", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  path = args[1] or path
  run = tonumber(args[2] or "0") % 64
  counter = (thread_index or 0) * 100000000
end

function request()
  local n = counter
  counter = counter + 1
  local host = math.floor(n / 64000)
  local client = string.format(
    "100.%d.%d.%d:%d",
    64 + run,
    math.floor(host / 250) % 250 + 1,
    host % 250 + 1,
    1024 + n % 64000
  )
  local body = '{"protocol":"tcp","client":"' .. client .. '","virtual":"10.0.0.1:80"}'
  return wrk.format("POST", path, headers, body)
end

function done(summary, latency, requests)
  io.write(string.format(
    'WRK_RESULT {"requests":%d,"durationUs":%d,"non2xx":%d,"connectErrors":%d,"readErrors":%d,' ..
      '"writeErrors":%d,"timeouts":%d,"p50Us":%d,"p99Us":%d}\n',
    summary.requests,
    summary.duration,
    summary.errors.status,
    summary.errors.connect,
    summary.errors.read,
    summary.errors.write,
    summary.errors.timeout,
    latency:percentile(50),
    latency:percentile(99)
  ))
end
