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
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fromBinary, toJsonString } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { ScheduleResponseSchema } from '../src/gen/ipvs/v1/scheduler_pb.js';
import { analyseProfile, compareOwners, mainProfile, summariseProfile } from './cpuprofile-summary.js';
import {
  checkHandEncoding,
  clientFor,
  DESTINATIONS,
  grpcFrame,
  scheduleRequestBytes,
  SERVICE,
  VIRTUAL,
} from './grpc-payload.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const PROFILE = process.env.BENCH_CPU_PROF === '1';
/** Keep-alive connections of the HTTP load generator. */
const HTTP_CONNECTIONS = 32;
/** h2load: connections × concurrent streams per connection. */
const H2_CLIENTS = 4;
const H2_STREAMS = 32;
/** Requests in flight on the one ScheduleStream. */
const STREAM_WINDOW = 128;
/** Seconds each stream client process runs before its measured window. */
const STREAM_CLIENT_WARMUP = 0.5;
const SLICES = Number(process.env.BENCH_SLICES ?? 4);
const GOAL = 0.7;
const CLK_TCK = 100;

const work = mkdtempSync(join(tmpdir(), 'ipvs-api-bench-'));
const live = new Set<ChildProcess>();
let nextRun = 0;

// ---------------------------------------------------------------------------------------------------
// Child processes

function hasTool(command: string, args: string[]): boolean {
  const r = spawnSync(command, args, { stdio: 'ignore' });
  return r.error === undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

interface Server {
  name: string;
  proc: ChildProcess;
  httpPort: number;
  grpcPort: number;
  profileDir?: string;
  stderr: string[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitUntil(what: string, proc: ChildProcess, probe: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${what} exited with code ${proc.exitCode}`);
    if (await probe().catch(() => false)) return;
    await sleep(50);
  }
  throw new Error(`${what} not ready after 20 s`);
}

const tcpOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

async function startServer(name: string, script: string, env: Record<string, string>): Promise<Server> {
  const httpPort = await freePort();
  let grpcPort = await freePort();
  while (grpcPort === httpPort) grpcPort = await freePort();
  const nodeArgs: string[] = [];
  let profileDir: string | undefined;
  if (PROFILE) {
    profileDir = join(work, `prof-${name.replace(/\W+/g, '-')}`);
    nodeArgs.push('--cpu-prof', `--cpu-prof-dir=${profileDir}`);
  }
  const proc = spawn(process.execPath, [...nodeArgs, '--import', 'tsx', script], {
    cwd: ROOT,
    env: {
      ...process.env,
      ...env,
      HOST: '127.0.0.1',
      HTTP_PORT: String(httpPort),
      GRPC_PORT: String(grpcPort),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  live.add(proc);
  proc.on('exit', () => live.delete(proc));
  const stderr: string[] = [];
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => stderr.push(chunk));
  proc.stdout!.resume();
  try {
    await waitUntil(name, proc, async () => {
      const res = await fetch(`http://127.0.0.1:${httpPort}/healthz`);
      return res.ok && (await tcpOpen(grpcPort));
    });
  } catch (err) {
    proc.kill('SIGKILL');
    throw new Error(`${(err as Error).message}\n${stderr.join('').slice(-2000)}`);
  }
  return { name, proc, httpPort, grpcPort, profileDir, stderr };
}

async function stopServer(server: Server): Promise<void> {
  const { proc } = server;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** A process's CPU time so far, in seconds (all threads), or NaN without /proc. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

interface LoaderOutput {
  stdout: string;
  /** Server CPU over the measured part, percent of one core. */
  serverCpu: number;
  /** The load generator's own CPU over its life (polled), percent of one core. */
  loaderCpu: number;
}

/**
 * Runs a load generator to completion, reading the server's CPU time around it — or, if the loader
 * prints MEASURE_START / MEASURE_END lines, around those.
 */
function runLoader(command: string, args: string[], server: Server): Promise<LoaderOutput> {
  return new Promise((resolve, reject) => {
    const pid = server.proc.pid;
    let cpu0 = cpuSeconds(pid);
    let t0 = performance.now();
    let cpu1 = NaN;
    let t1 = 0;
    const proc = spawn(command, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(proc);
    const started = performance.now();
    let loaderCpu = NaN;
    const poll = setInterval(() => {
      const used = cpuSeconds(proc.pid);
      if (!Number.isNaN(used)) loaderCpu = (used / ((performance.now() - started) / 1000)) * 100;
    }, 100);
    let stdout = '';
    let stderr = '';
    proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (chunk.includes('MEASURE_START')) {
        cpu0 = cpuSeconds(pid);
        t0 = performance.now();
      }
      if (chunk.includes('MEASURE_END')) {
        cpu1 = cpuSeconds(pid);
        t1 = performance.now();
      }
    });
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    proc.on('error', reject);
    proc.on('exit', (code) => {
      live.delete(proc);
      clearInterval(poll);
      if (Number.isNaN(cpu1)) {
        cpu1 = cpuSeconds(pid);
        t1 = performance.now();
      }
      if (code !== 0) {
        reject(new Error(`${command} exited with ${code}: ${stderr.trim().slice(-2000)}`));
        return;
      }
      resolve({ stdout, serverCpu: ((cpu1 - cpu0) / ((t1 - t0) / 1000)) * 100, loaderCpu });
    });
  });
}

// ---------------------------------------------------------------------------------------------------
// Measurements

interface Measurement {
  rps: number;
  p50Us: number;
  p99Us: number;
  /** Answers counted in the measured run, and its length. */
  count: number;
  seconds: number;
  /** Failed calls seen by the load generator (non-2xx, socket errors, gRPC error answers). */
  failures: number;
  serverCpu: number;
  loaderCpu: number;
}

function resultLine(stdout: string, marker: string): Record<string, number> {
  const line = stdout.split('\n').find((l) => l.startsWith(`${marker} `));
  if (!line) throw new Error(`load generator printed no ${marker} line:\n${stdout.slice(-2000)}`);
  return JSON.parse(line.slice(marker.length + 1)) as Record<string, number>;
}

type HttpLoader = 'wrk' | 'autocannon';

async function httpLoad(
  loader: HttpLoader,
  server: Server,
  path: string,
  seconds: number,
): Promise<Measurement> {
  const url = `http://127.0.0.1:${server.httpPort}`;
  const run = nextRun++;
  const [command, args] =
    loader === 'wrk'
      ? [
          'wrk',
          [
            '-t1',
            `-c${HTTP_CONNECTIONS}`,
            `-d${seconds}s`,
            '--timeout',
            '5s',
            '-s',
            'bench/wrk-schedule.lua',
            url,
            '--',
            path,
            String(run),
          ],
        ]
      : [
          process.execPath,
          [
            '--import',
            'tsx',
            'bench/http-load.ts',
            url,
            path,
            String(run),
            String(seconds),
            String(HTTP_CONNECTIONS),
          ],
        ];
  const out = await runLoader(command, args, server);
  const r = resultLine(out.stdout, 'WRK_RESULT');
  return {
    rps: r.requests / (r.durationUs / 1e6),
    p50Us: r.p50Us,
    p99Us: r.p99Us,
    count: r.requests,
    seconds: r.durationUs / 1e6,
    failures: r.non2xx + r.connectErrors + r.readErrors + r.writeErrors + r.timeouts,
    serverCpu: out.serverCpu,
    loaderCpu: out.loaderCpu,
  };
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

async function h2load(server: Server, body: string, seconds: number): Promise<Measurement> {
  const log = join(work, `h2load-${nextRun++}.log`);
  const out = await runLoader(
    'h2load',
    [
      '-D',
      String(seconds),
      '-t1',
      `-c${H2_CLIENTS}`,
      `-m${H2_STREAMS}`,
      '-H',
      'content-type: application/grpc',
      '-H',
      'te: trailers',
      '-d',
      body,
      `--log-file=${log}`,
      `http://127.0.0.1:${server.grpcPort}/ipvs.v1.Scheduler/Schedule`,
    ],
    server,
  );
  const finished = /finished in ([\d.]+)s, ([\d.]+) req\/s/.exec(out.stdout);
  const requests =
    /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      out.stdout,
    );
  if (!finished || !requests) throw new Error(`unexpected h2load output:\n${out.stdout.slice(-2000)}`);
  const lines = readFileSync(log, 'utf8').split('\n');
  const durations = new Float64Array(lines.length);
  let n = 0;
  for (const line of lines) {
    const cols = line.split('\t');
    if (cols.length >= 3) durations[n++] = Number(cols[2]);
  }
  const sorted = durations.subarray(0, n).sort();
  rmSync(log, { force: true });
  return {
    rps: Number(finished[2]),
    p50Us: percentile(sorted, 0.5),
    p99Us: percentile(sorted, 0.99),
    count: Number(requests[1]),
    seconds: Number(finished[1]),
    failures: Number(requests[2]) + Number(requests[3]) + Number(requests[4]),
    serverCpu: out.serverCpu,
    loaderCpu: out.loaderCpu,
  };
}

async function streamLoad(server: Server, warmupSeconds: number, seconds: number): Promise<Measurement> {
  const out = await runLoader(
    process.execPath,
    [
      '--import',
      'tsx',
      'bench/stream-client.ts',
      String(server.grpcPort),
      String(warmupSeconds * 1000),
      String(seconds * 1000),
      String(STREAM_WINDOW),
      String(nextRun++),
    ],
    server,
  );
  const r = resultLine(out.stdout, 'STREAM_RESULT');
  return {
    rps: r.answers / (r.durationMs / 1000),
    p50Us: r.p50Us,
    p99Us: r.p99Us,
    count: r.answers,
    seconds: r.durationMs / 1000,
    failures: r.failed,
    serverCpu: out.serverCpu,
    // The client measures itself over the measured window only.
    loaderCpu: r.cpuPct,
  };
}

type Load = (seconds: number) => Promise<Measurement>;

/**
 * Measures several targets under the same load: one warm-up run each (discarded), then SLICES rounds
 * of SECONDS / SLICES each, the targets in turn (order reversed every other round), so background
 * noise on a shared box hits every target alike. Rates add up over the slices; latency percentiles
 * and CPU are the mean of the slices'. `measuring` is called once the warm-ups are done.
 */
async function compare(loads: Load[], measuring: () => Promise<void>): Promise<Measurement[]> {
  for (const load of loads) await load(WARMUP_SECONDS);
  await measuring();
  const slices: Measurement[][] = loads.map(() => []);
  for (let round = 0; round < SLICES; round++) {
    const order = loads.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) slices[i].push(await loads[i](SECONDS / SLICES));
  }
  const mean = (ms: Measurement[], f: (m: Measurement) => number) =>
    ms.reduce((sum, m) => sum + f(m), 0) / ms.length;
  return slices.map((ms) => {
    const count = ms.reduce((sum, m) => sum + m.count, 0);
    const seconds = ms.reduce((sum, m) => sum + m.seconds, 0);
    return {
      rps: count / seconds,
      p50Us: mean(ms, (m) => m.p50Us),
      p99Us: mean(ms, (m) => m.p99Us),
      count,
      seconds,
      failures: ms.reduce((sum, m) => sum + m.failures, 0),
      serverCpu: mean(ms, (m) => m.serverCpu),
      loaderCpu: mean(ms, (m) => m.loaderCpu),
    };
  });
}

// ---------------------------------------------------------------------------------------------------
// The service under test

const SERVICE_ENV: Record<string, string> = {
  LOG_LEVEL: 'warn',
  IPVS_CLOCK: 'system',
  IPVS_ADMIN_TOKEN: '',
  IPVS_RULES_FILE: '',
  REDIS_URL: '',
  REDIS_CLUSTER_NODES: '',
  SYNC_REDIS_URL: '',
};

async function post(server: Server, path: string, body: unknown): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${server.httpPort}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

async function startService(door: string): Promise<Server> {
  const server = await startServer(`service (${door})`, 'src/main.ts', SERVICE_ENV);
  const created = await post(server, '/v1/services', SERVICE);
  if (created.status !== 201) throw new Error(`POST /v1/services: ${created.status} ${created.text}`);
  const key = `${SERVICE.protocol}:${VIRTUAL}`;
  for (let i = 1; i <= DESTINATIONS; i++) {
    const dest = { address: `10.1.0.${i}`, port: 80, weight: (i % 5) + 1, forward: 'masq' };
    const added = await post(server, `/v1/services/${encodeURIComponent(key)}/destinations`, dest);
    if (added.status !== 201) throw new Error(`POST destination: ${added.status} ${added.text}`);
  }
  return server;
}

const startEcho = (door: string) => startServer(`echo (${door})`, 'bench/echo-servers.ts', {});

interface Counters {
  outcomes: Record<string, number>;
  connections: number;
}

async function counters(server: Server): Promise<Counters> {
  const text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
  const outcomes: Record<string, number> = {};
  for (const m of text.matchAll(/^ipvs_decisions_total\{outcome="([^"]+)"\} (\d+)/gm))
    outcomes[m[1]] = Number(m[2]);
  let connections = 0;
  for (const m of text.matchAll(/^ipvs_destination_(?:active|inactive)_connections\{[^}]*\} (\d+)/gm))
    connections += Number(m[1]);
  return { outcomes, connections };
}

/** What the service counted between two readings, e.g. "scheduled 80123, reused 0". */
function outcomeDelta(before: Counters, after: Counters): { text: string; unexpected: number } {
  const names = new Set([...Object.keys(before.outcomes), ...Object.keys(after.outcomes)]);
  const parts: string[] = [];
  let unexpected = 0;
  for (const name of [...names].sort()) {
    const d = (after.outcomes[name] ?? 0) - (before.outcomes[name] ?? 0);
    if (d === 0) continue;
    parts.push(`${name} ${d}`);
    if (name !== 'scheduled' && name !== 'reused') unexpected += d;
  }
  return { text: parts.join(', ') || 'nothing', unexpected };
}

/** One Schedule over gRPC with the given request bytes; the answer as JSON. */
function grpcScheduleOnce(server: Server, request: Uint8Array): Promise<string> {
  const identity = (b: Buffer) => b;
  const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  return new Promise<string>((resolve, reject) => {
    client.makeUnaryRequest<Buffer, Buffer>(
      '/ipvs.v1.Scheduler/Schedule',
      identity,
      identity,
      Buffer.from(request),
      (err, answer) => {
        client.close();
        if (err || !answer) reject(err ?? new Error('no answer'));
        else
          resolve(
            `${answer.length} bytes ${toJsonString(ScheduleResponseSchema, fromBinary(ScheduleResponseSchema, answer))}`,
          );
      },
    );
  });
}

// ---------------------------------------------------------------------------------------------------
// Doors

interface Row {
  door: string;
  ceiling?: Measurement;
  ours?: Measurement;
  /** Shown instead of numbers when the door was skipped or failed. */
  skipped?: string;
}

const rows: Row[] = [];
const notes: string[] = [];
const profiles: string[] = [];

/** Calls a server answered so far: the service's decision counters, the echo's own count. */
async function answered(server: Server, isService: boolean): Promise<number> {
  if (isService) return Object.values((await counters(server)).outcomes).reduce((a, b) => a + b, 0);
  const res = await fetch(`http://127.0.0.1:${server.httpPort}/answered`);
  return ((await res.json()) as { answered: number }).answered;
}

/** Marks the end of the warm-ups: profiles are cut there and calls counted from there. */
type Measuring = () => Promise<void>;

async function withServers(
  door: string,
  body: (service: Server, echo: Server, measuring: Measuring) => Promise<void>,
): Promise<void> {
  const [service, echo] = await Promise.all([startService(door), startEcho(door)]);
  let fromUs = 0;
  let before: [number, number] = [0, 0];
  let calls: [number, number] | undefined;
  const measuring: Measuring = async () => {
    if (!PROFILE) return;
    fromUs = Number(process.hrtime.bigint() / 1000n);
    before = [await answered(service, true), await answered(echo, false)];
  };
  try {
    await body(service, echo, measuring);
    if (PROFILE)
      calls = [(await answered(service, true)) - before[0], (await answered(echo, false)) - before[1]];
  } finally {
    await Promise.all([stopServer(service), stopServer(echo)]);
    const warnings = service.stderr.join('').trim();
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
    const before = await counters(service);
    const [ceiling, ours] = await compare(
      [(s) => httpLoad(loader, echo, '/echo', s), (s) => httpLoad(loader, service, '/v1/schedule', s)],
      measuring,
    );
    const after = await counters(service);
    rows.push({ door: 'HTTP POST /v1/schedule', ceiling, ours });
    notes.push(
      `HTTP: ${loader === 'wrk' ? 'wrk -t1' : 'autocannon'}, ${HTTP_CONNECTIONS} keep-alive connections; a new client tuple on every request ` +
        `(every call a wlc decision on a new connection).\n` +
        `  answer ${sample.text.length} B: ${sample.text}\n  echo   ${echoed.text.length} B: ${echoed.text}\n` +
        `  service counted (warm-up + measured): ${outcomeDelta(before, after).text}; ` +
        `connection table at the end: ${after.connections} entries (SYN_RECV, 60 s timeout; it grows during the run)`,
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
    const c0 = await counters(service);
    const [ceiling, oursFresh, oursReused] = await compare(
      [(s) => h2load(echo, echoBody, s), (s) => h2load(service, fresh, s), (s) => h2load(service, reused, s)],
      measuring,
    );
    const c1 = await counters(service);
    const d = outcomeDelta(c0, c1);
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
        `  answer ${sampleFresh}\n  echo   ${sampleEcho}`,
    );
  });
}

async function grpcStreamDoor(): Promise<void> {
  await withServers('gRPC stream', async (service, echo, measuring) => {
    progress('gRPC stream: echo and ScheduleStream');
    const before = await counters(service);
    const [ceiling, ours] = await compare(
      [(s) => streamLoad(echo, STREAM_CLIENT_WARMUP, s), (s) => streamLoad(service, STREAM_CLIENT_WARMUP, s)],
      measuring,
    );
    const after = await counters(service);
    rows.push({ door: 'gRPC ScheduleStream', ceiling, ours });
    notes.push(
      `gRPC stream: bench/stream-client.ts, one bidi stream, ${STREAM_WINDOW} requests in flight, a new client ` +
        `tuple per request (every answer a wlc decision on a new connection); each client process warms up ` +
        `${STREAM_CLIENT_WARMUP} s on its stream before its slice.\n` +
        `  service counted (warm-up + measured): ${outcomeDelta(before, after).text}; connection table at the end: ` +
        `${after.connections} entries`,
    );
  });
}

// ---------------------------------------------------------------------------------------------------
// Report

const fmtRate = (m?: Measurement) => (m ? Math.round(m.rps).toLocaleString('en-US') : '-');
function fmtUs(us: number | undefined): string {
  if (us === undefined || Number.isNaN(us)) return '-';
  return us >= 10_000 ? `${(us / 1000).toFixed(1)} ms` : `${(us / 1000).toFixed(2)} ms`;
}
const fmtPct = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '-' : `${Math.round(v)}%`);

/** The ratio of answers per server CPU-second: what each call costs, less sensitive to a busy box. */
function perCpuRatio(ours: Measurement, ceiling: Measurement): number {
  return ours.rps / ours.serverCpu / (ceiling.rps / ceiling.serverCpu);
}

/** Two decimals, rounded down (so 0.697 never shows as a passing 0.70). */
const floor2 = (v: number) => (Math.floor(v * 100) / 100).toFixed(2);

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
  const measured = body.filter((row) => row.length === header.length);
  const widths = header.map((h, i) =>
    Math.max(h.length, ...(i === 0 ? body : measured).map((row) => row[i].length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 || cells.length < header.length ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ');
  console.log(line(header));
  console.log(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const row of body) console.log(line(row));
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
  for (const proc of live) proc.kill('SIGKILL');
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
