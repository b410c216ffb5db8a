/**
 * `npm run bench:api`: what the API doors cost on top of their frameworks, in one run.
 *
 * Each door is measured twice under the same load generator and settings: against the real service
 * (`node --import tsx src/main.ts`, memory engine, one wlc TCP service with 10 destinations, LOG_LEVEL=warn)
 * and against bench/echo-servers.ts, the same fastify / grpc-js doing nothing but decode the request and
 * answer a message of the ScheduleResponse's shape and size (the ceiling). Servers and load generators
 * are separate child processes; this process only orchestrates (it is idle while a load runs).
 *
 * - HTTP   wrk (bench/wrk-schedule.lua; autocannon in a child process if wrk is missing), keep-alive,
 *          POST /v1/schedule vs POST /echo, a distinct client tuple on every request, so every call
 *          is a new connection and a real wlc decision; the connection table grows during the run.
 * - gRPC unary  h2load with a fixed gRPC-framed ScheduleRequest body (h2load sends one body), so the
 *          tuple is the same on every call. Measured twice against the service:
 *            "fresh":  initialState CLOSE — the kernel's conn_reuse_mode rule expires the CLOSE entry and
 *                      schedules anew, so every call is a real decision (plus the expiry of the last);
 *            "reused": default initialState — after the first call every answer follows the live entry
 *                      (lookup + SYN state event + timer re-arm, no scheduler run).
 *          h2load sees only HTTP status 200; the gRPC status is checked by reading the service's
 *          decision counters (/metrics) before and after.
 * - gRPC stream  bench/stream-client.ts keeps one ScheduleStream open, pushes tagged requests with
 *          distinct tuples (a fixed window in flight), and times each answer.
 *
 * Each target gets a warm-up run (distinct tuples), then its measured time is cut in BENCH_SLICES slices
 * that alternate with the targets it is compared to, so a noisy neighbour on the box hurts both sides.
 * Server CPU is read from /proc/<pid>/stat over each slice: ~100% means the server is the bottleneck;
 * the load generator's CPU is shown too (near 100% means the loader, not the server, is the cap).
 *
 * Environment: BENCH_SECONDS (measured time per target, default 8), BENCH_WARMUP_SECONDS (default 2),
 * BENCH_SLICES (default 4),
 * BENCH_HTTP_LOADER=autocannon (skip wrk), BENCH_CPU_PROF=1 (run the servers under --cpu-prof and print
 * where their time went; throughput under the profiler is lower and not comparable).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { hasTool, killChildren, startServer, stopServer, type Server } from './child-processes.js';
import { analyseProfile, compareOwners, mainProfile, summariseProfile } from './cpuprofile-summary.js';
import { checkHandEncoding, clientFor, grpcFrame, scheduleRequestBytes, VIRTUAL } from './grpc-payload.js';
import {
  H2_CLIENTS,
  H2_STREAMS,
  h2load,
  HTTP_CONNECTIONS,
  httpLoad,
  STREAM_WINDOW,
  streamLoad,
  type HttpLoader,
  type Measurement,
} from './load-generators.js';
import { floor2, fmtPct, fmtRate, fmtUs, formatTable } from './report-format.js';
import { ceilingCounts, countDecisions, grpcScheduleOnce, post, startService } from './service-calls.js';
import { compareInSlices, SECONDS, SLICES, WARMUP_SECONDS, type ComparisonRow } from './sliced-compare.js';

const PROFILE = process.env.BENCH_CPU_PROF === '1';
/** Seconds each stream client process runs before its measured window. */
const STREAM_CLIENT_WARMUP = 0.5;
const GOAL = 0.7;

const work = mkdtempSync(join(tmpdir(), 'ipvs-api-bench-'));

// ---------------------------------------------------------------------------------------------------
// Servers and loads

/** A server, and where its CPU profile goes under BENCH_CPU_PROF=1. */
interface ProfiledServer extends Server {
  profileDir?: string;
}

/** Node flags that write a CPU profile of server `name` under BENCH_CPU_PROF=1 (none otherwise). */
function profiling(name: string): { nodeArgs: string[]; profileDir?: string } {
  if (!PROFILE) return { nodeArgs: [] };
  const profileDir = join(work, `prof-${name.replace(/\W+/g, '-')}`);
  return { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`], profileDir };
}

async function startProfiledService(door: string): Promise<ProfiledServer> {
  const name = `service (${door})`;
  const { nodeArgs, profileDir } = profiling(name);
  return { ...(await startService(name, {}, nodeArgs)), profileDir };
}

async function startEcho(door: string): Promise<ProfiledServer> {
  const name = `echo (${door})`;
  const { nodeArgs, profileDir } = profiling(name);
  return { ...(await startServer(name, 'bench/echo-servers.ts', {}, nodeArgs)), profileDir };
}

// ---------------------------------------------------------------------------------------------------
// Doors

const rows: ComparisonRow[] = [];
const notes: string[] = [];
const profiles: string[] = [];

/** Calls the echo answered so far (the service's are its decision counters). */
const echoAnswered = async (echo: Server) => (await ceilingCounts(echo)).answered;

/** Marks the end of the warm-ups: profiles are cut there and calls counted from there. */
type Measuring = () => Promise<void>;

async function withServers(
  door: string,
  body: (service: Server, echo: Server, measuring: Measuring) => Promise<void>,
): Promise<void> {
  const [service, echo] = await Promise.all([startProfiledService(door), startEcho(door)]);
  let fromUs = 0;
  /** Calls answered by the service and by the echo since the warm-ups ended. */
  let callsSince: (() => Promise<[number, number]>) | undefined;
  let calls: [number, number] | undefined;
  const measuring: Measuring = async () => {
    if (!PROFILE) return;
    fromUs = Number(process.hrtime.bigint() / 1000n);
    const serviceCounted = await countDecisions(service);
    const echoBefore = await echoAnswered(echo);
    callsSince = async () => [(await serviceCounted()).total, (await echoAnswered(echo)) - echoBefore];
  };
  try {
    await body(service, echo, measuring);
    if (callsSince) calls = await callsSince();
  } finally {
    await Promise.all([stopServer(service), stopServer(echo)]);
    const warnings = service.stderr().trim();
    if (warnings) notes.push(`${door}: the service wrote to stderr:\n${warnings.slice(0, 2000)}`);
  }
  if (!calls || !service.profileDir || !echo.profileDir) return;
  const [serviceFile, echoFile] = [mainProfile(service.profileDir), mainProfile(echo.profileDir)];
  if (!serviceFile || !echoFile) return;
  // V8 profile timestamps and process.hrtime share the monotonic clock: keep only the measured slices.
  const ours = analyseProfile(serviceFile, fromUs);
  const ceiling = analyseProfile(echoFile, fromUs);
  profiles.push(
    `══ ${door}: server CPU per answered call, service vs echo (measured slices only; ` +
      `${calls[0]} / ${calls[1]} calls) ══\n` +
      compareOwners(
        { name: 'service', costs: ours, calls: calls[0] },
        { name: 'echo', costs: ceiling, calls: calls[1] },
      ) +
      `\n\n── service (${door}) ──\n${summariseProfile(ours, 20, calls[0])}`,
  );
}

function progress(text: string): void {
  process.stderr.write(`[bench:api] ${text}\n`);
}

async function httpDoor(loader: HttpLoader): Promise<void> {
  await withServers('HTTP', async (service, echo, measuring) => {
    const sample = await post(service, '/v1/schedule', {
      protocol: 'tcp',
      client: '100.127.0.1:1000',
      virtual: VIRTUAL,
    });
    const echoed = await post(echo, '/echo', {
      protocol: 'tcp',
      client: '100.127.0.1:1000',
      virtual: VIRTUAL,
    });
    if (sample.status !== 200) throw new Error(`POST /v1/schedule answered ${sample.status} ${sample.text}`);
    progress(`HTTP: POST /echo and POST /v1/schedule (${loader})`);
    const counted = await countDecisions(service);
    const [ceiling, ours] = await compareInSlices(
      [
        (seconds) => httpLoad({ loader, server: echo, path: '/echo', seconds }),
        (seconds) => httpLoad({ loader, server: service, path: '/v1/schedule', seconds }),
      ],
      measuring,
    );
    const decisions = await counted();
    rows.push({ door: 'HTTP POST /v1/schedule', ceiling, ours });
    notes.push(
      `HTTP: ${loader === 'wrk' ? 'wrk -t1' : 'autocannon'}, ${HTTP_CONNECTIONS} keep-alive connections; a new client tuple on every request ` +
        `(every call a wlc decision on a new connection).\n` +
        `  answer ${sample.text.length} B: ${sample.text}\n  echo   ${echoed.text.length} B: ${echoed.text}\n` +
        `  service counted (warm-up + measured): ${decisions.text}; ` +
        `connection table at the end: ${decisions.connections} entries (SYN_RECV, 60 s timeout; it grows during the run)`,
    );
  });
}

async function grpcUnaryDoor(): Promise<void> {
  const fresh = join(work, 'schedule-fresh.bin');
  const reused = join(work, 'schedule-reused.bin');
  const echoBody = join(work, 'schedule-echo.bin');
  const freshBytes = scheduleRequestBytes(clientFor(62, 1), 'CLOSE');
  const reusedBytes = scheduleRequestBytes(clientFor(62, 2));
  writeFileSync(fresh, grpcFrame(freshBytes));
  writeFileSync(reused, grpcFrame(reusedBytes));
  writeFileSync(echoBody, grpcFrame(reusedBytes));
  await withServers('gRPC unary', async (service, echo, measuring) => {
    const sampleFresh = await grpcScheduleOnce(service, freshBytes);
    const sampleEcho = await grpcScheduleOnce(echo, reusedBytes);
    progress('gRPC unary: echo, Schedule fresh, Schedule reused');
    // The two service loads are told apart in the counters: fresh calls count as "scheduled",
    // reused ones as "reused" (plus the one first "scheduled" of the reused tuple).
    const counted = await countDecisions(service);
    const [ceiling, oursFresh, oursReused] = await compareInSlices(
      [
        (seconds) => h2load({ server: echo, body: echoBody, seconds }),
        (seconds) => h2load({ server: service, body: fresh, seconds }),
        (seconds) => h2load({ server: service, body: reused, seconds }),
      ],
      measuring,
    );
    const d = await counted();
    // h2load counts HTTP 200 as success; a gRPC error also comes with 200. The counters tell (not
    // which variant, so both rows show them).
    oursFresh.failures += d.unexpected;
    oursReused.failures += d.unexpected;
    rows.push({ door: 'gRPC Schedule (fresh decision)', ceiling, ours: oursFresh });
    rows.push({ door: 'gRPC Schedule (reused answer)', ceiling, ours: oursReused });
    notes.push(
      `gRPC unary: h2load -t1 -c${H2_CLIENTS} -m${H2_STREAMS} (${H2_CLIENTS * H2_STREAMS} calls in flight), one fixed ` +
        `body per run (${freshBytes.length}/${reusedBytes.length} B protobuf + 5 B frame), so one client tuple per run.\n` +
        `  fresh:  initialState CLOSE; conn_reuse_mode=1 expires the CLOSE entry and schedules anew on every call ` +
        `(a real wlc decision + one expiry per call; the table stays at 1 entry).\n` +
        `  reused: default initialState (SYN_RECV); after the first call every answer follows the live entry ` +
        `(lookup, SYN state event, timer re-arm; no scheduler run) — the cheapest Schedule there is.\n` +
        `  service counted (both, warm-up + measured): ${d.text}\n` +
        `  h2load only sees HTTP 200; gRPC-level failures are taken from the service's ipvs_decisions_total.\n` +
        `  answer ${sampleFresh.bytes} bytes ${sampleFresh.json}\n  echo   ${sampleEcho.bytes} bytes ${sampleEcho.json}`,
    );
  });
}

async function grpcStreamDoor(): Promise<void> {
  await withServers('gRPC stream', async (service, echo, measuring) => {
    progress('gRPC stream: echo and ScheduleStream');
    const counted = await countDecisions(service);
    const [ceiling, ours] = await compareInSlices(
      [(s) => streamLoad(echo, STREAM_CLIENT_WARMUP, s), (s) => streamLoad(service, STREAM_CLIENT_WARMUP, s)],
      measuring,
    );
    const decisions = await counted();
    rows.push({ door: 'gRPC ScheduleStream', ceiling, ours });
    notes.push(
      `gRPC stream: bench/stream-client.ts, one bidi stream, ${STREAM_WINDOW} requests in flight, a new client ` +
        `tuple per request (every answer a wlc decision on a new connection); each client process warms up ` +
        `${STREAM_CLIENT_WARMUP} s on its stream before its slice.\n` +
        `  service counted (warm-up + measured): ${decisions.text}; connection table at the end: ` +
        `${decisions.connections} entries`,
    );
  });
}

// ---------------------------------------------------------------------------------------------------
// Report

/** The ratio of answers per server CPU-second: what each call costs, less sensitive to a busy box. */
function perCpuRatio(ours: Measurement, ceiling: Measurement): number {
  return ours.rps / ours.serverCpu / (ceiling.rps / ceiling.serverCpu);
}

function printTable(): void {
  const header = [
    'door',
    'ceiling req/s',
    'ours req/s',
    'ratio',
    'ratio/cpu',
    'p50',
    'p99',
    'ceiling p50',
    'ceiling p99',
    'server cpu',
    'loader cpu',
    'failed',
  ];
  const body = rows.map((r) => {
    if (r.skipped) return [r.door, r.skipped];
    const ratio = r.ceiling && r.ours ? r.ours.rps / r.ceiling.rps : NaN;
    const perCpu = r.ceiling && r.ours ? perCpuRatio(r.ours, r.ceiling) : NaN;
    return [
      r.door,
      fmtRate(r.ceiling),
      fmtRate(r.ours),
      Number.isNaN(ratio) ? '-' : `${floor2(ratio)} ${ratio >= GOAL ? 'ok' : 'LOW'}`,
      Number.isNaN(perCpu) ? '-' : floor2(perCpu),
      fmtUs(r.ours?.p50Us),
      fmtUs(r.ours?.p99Us),
      fmtUs(r.ceiling?.p50Us),
      fmtUs(r.ceiling?.p99Us),
      `${fmtPct(r.ours?.serverCpu)}/${fmtPct(r.ceiling?.serverCpu)}`,
      `${fmtPct(r.ours?.loaderCpu)}/${fmtPct(r.ceiling?.loaderCpu)}`,
      `${r.ours?.failures ?? 0}/${r.ceiling?.failures ?? 0}`,
    ];
  });
  console.log(formatTable(header, body));
}

async function main(): Promise<void> {
  checkHandEncoding();
  const [cpu] = cpus();
  console.log(
    `ipvs-scheduler API bench — node ${process.version}, ${cpus().length} × ${cpu?.model ?? '?'}, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    `each target: ${WARMUP_SECONDS} s warm-up, then ${SECONDS} s measured in ${SLICES} slices alternating with ` +
      `its comparison; ceiling = bench/echo-servers.ts ` +
      `(same fastify / grpc-js, decode + fixed-shape answer); goal: ours/ceiling ≥ ${GOAL}` +
      (PROFILE
        ? '\nBENCH_CPU_PROF=1: servers run under --cpu-prof; rates are NOT comparable to normal runs'
        : ''),
  );
  const busy = loadavg()[0];
  if (busy > cpus().length * 0.75)
    console.log(
      `warning: load average ${busy.toFixed(2)} on ${cpus().length} cores before the start — other processes ` +
        'compete with the servers and load generators; expect noisy numbers (see the cpu columns)',
    );
  console.log('');

  const wantAutocannon = process.env.BENCH_HTTP_LOADER === 'autocannon';
  const loader: HttpLoader = !wantAutocannon && hasTool('wrk', ['-v']) ? 'wrk' : 'autocannon';
  if (loader === 'autocannon' && !wantAutocannon)
    console.log('wrk not found: the HTTP door uses autocannon (in a child process) instead\n');

  const doors: [string, () => Promise<void>][] = [['HTTP POST /v1/schedule', () => httpDoor(loader)]];
  if (hasTool('h2load', ['--version'])) doors.push(['gRPC Schedule', grpcUnaryDoor]);
  else {
    console.log('h2load not found (apt-get install nghttp2-client): skipping the gRPC unary door\n');
    doors.push([
      'gRPC Schedule',
      async () => void rows.push({ door: 'gRPC Schedule', skipped: 'skipped: h2load not installed' }),
    ]);
  }
  doors.push(['gRPC ScheduleStream', grpcStreamDoor]);

  for (const [door, run] of doors) {
    try {
      await run();
    } catch (err) {
      progress(`${door} failed: ${(err as Error).stack ?? String(err)}`);
      rows.push({ door, skipped: `failed: ${(err as Error).message.split('\n')[0]}` });
    }
  }

  printTable();
  console.log(
    '\nreq/s: answers per second in the measured run; p50/p99: per-call latency seen by the load generator ' +
      '(send → answer, under the stated concurrency); cpu: server process CPU over the measured run ' +
      '(100% = one core; the box has ' +
      `${cpus().length} cores shared by server and load generator); loader cpu: the load generator's own CPU ` +
      '(near 100% means the number is capped by the load generator, not the server); ratio/cpu: the same ' +
      "ratio per server CPU-second (the cost of a call against the ceiling's; steadier than req/s when other " +
      'processes take CPU from the server, but not a throughput); cpu and failed columns are ours/ceiling.',
  );
  for (const note of notes) console.log(`\n${note}`);
  const low = rows.filter((r) => r.ceiling && r.ours && r.ours.rps / r.ceiling.rps < GOAL);
  if (low.length > 0)
    console.log(
      `\nbelow the ${GOAL} goal: ${low.map((r) => r.door).join('; ')}` +
        (PROFILE ? '' : ' — BENCH_CPU_PROF=1 npm run bench:api shows where the service spends its time'),
    );
  console.log(
    `\nload average at the end: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  for (const p of profiles) console.log(`\n${p}`);
}

function cleanup(): void {
  killChildren();
  rmSync(work, { recursive: true, force: true });
}

process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});
try {
  await main();
} finally {
  cleanup();
}
