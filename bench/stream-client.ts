/**
 * Load generator for ipvs.v1.Scheduler/ScheduleStream, run as a child process by bench/api.bench.ts:
 *
 *   node --import tsx bench/stream-client.ts <port> <warmupMs> <measureMs> <window> <run>
 *
 * One bidi stream; requests are tagged with a counter and carry distinct client tuples; at most
 * <window> requests are in flight. After the warm-up, answers are counted for <measureMs> and the
 * latency of every request sent inside that window is recorded (send → answer). Prints MEASURE_START and
 * MEASURE_END when the window opens and closes, then one line:
 * `STREAM_RESULT {"answers","ok","failed","durationMs","p50Us","p99Us","cpuPct"}`.
 */
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { clientFor, encodeStreamRequest, parseStreamResponse } from './grpc-payload.js';

const [port, warmupMs, measureMs, window, run] = process.argv.slice(2).map(Number);
if (![port, warmupMs, measureMs, window, run].every(Number.isFinite)) {
  process.stderr.write('usage: stream-client.ts <port> <warmupMs> <measureMs> <window> <run>\n');
  process.exit(2);
}

const RING = 1 << 22;
const sentAt = new Float64Array(RING);
const identity = (b: Buffer) => b;
const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
const call = client.makeBidiStreamRequest<Buffer, Buffer>(
  '/ipvs.v1.Scheduler/ScheduleStream',
  identity,
  identity,
);

let sent = 0;
let inFlight = 0;
let sending = true;
/** First request number sent inside the measured window; -1 before it opens. */
let firstMeasured = -1;
let measuring = false;
let answers = 0;
let ok = 0;
let failed = 0;
const latencies: number[] = [];
let windowStart = 0;
let windowEnd = 0;
let cpuStart = process.cpuUsage();
let cpuUsed = { user: 0, system: 0 };

function pump(): void {
  while (sending && inFlight < window) {
    const n = sent++;
    sentAt[n % RING] = performance.now();
    inFlight++;
    call.write(encodeStreamRequest(String(n), clientFor(run, n)));
  }
}

call.on('data', (buf: Buffer) => {
  const now = performance.now();
  const answer = parseStreamResponse(buf);
  const n = Number(answer.tag);
  inFlight--;
  if (measuring) {
    answers++;
    if (answer.ok) ok++;
    else failed++;
    if (n >= firstMeasured) latencies.push((now - sentAt[n % RING]) * 1000);
  }
  if (sending) pump();
  else if (inFlight === 0) call.end();
});

call.on('error', (err: Error) => {
  process.stderr.write(`stream client: ${err.message}\n`);
  process.exit(1);
});

call.on('end', () => {
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies.length === 0 ? 0 : latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))];
  const cpu = cpuUsed;
  const durationMs = windowEnd - windowStart;
  process.stdout.write(
    `STREAM_RESULT ${JSON.stringify({
      answers,
      ok,
      failed,
      durationMs,
      p50Us: pct(0.5),
      p99Us: pct(0.99),
      cpuPct: ((cpu.user + cpu.system) / 1000 / durationMs) * 100,
    })}\n`,
  );
  client.close();
});

pump();
setTimeout(() => {
  measuring = true;
  firstMeasured = sent;
  windowStart = performance.now();
  cpuStart = process.cpuUsage();
  process.stdout.write('MEASURE_START\n');
  setTimeout(() => {
    measuring = false;
    sending = false;
    windowEnd = performance.now();
    cpuUsed = process.cpuUsage(cpuStart);
    process.stdout.write('MEASURE_END\n');
    if (inFlight === 0) call.end();
  }, measureMs);
}, warmupMs);
