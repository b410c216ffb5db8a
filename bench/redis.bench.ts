/**
 * `npm run bench:redis`: Schedule with the redis engine — one replica (`node --import tsx src/main.ts`,
 * REDIS_URL, LOG_LEVEL=warn, one wlc TCP service with 10 destinations created through the API) — over
 * HTTP and gRPC, next to ceilings measured in the same run on the same private redis-server:
 *
 * - bare EVALSHA route: bench/redis-evalsha-servers.ts, the same fastify / grpc-js doing one EVALSHA of
 *   `return ARGV[1]` through one ioredis client with the engine's options per call, then answering a
 *   ScheduleResponse-shaped message (the most a replica can do if a decision costs one Redis call);
 * - redis-benchmark of that EVALSHA (50 clients, pipeline 1 and 16): what Redis itself does.
 *
 * Phases (servers and load generators are separate processes; this one only orchestrates). Each phase
 * gets a new replica on an emptied Redis (FLUSHALL; the script cache stays), so it starts from an empty
 * connection table and no entry of an earlier phase expires (SYN_RECV: 60 s) inside it:
 *   1. memory: BENCH_MEMORY_SCHEDULES (20,000) Schedules over HTTP (wrk, bench/redis-wrk-count.lua; fetch
 *      without wrk), each a new connection, all still live at the end; Redis `used_memory` before/after and MEMORY
 *      USAGE of every key (by group), divided by the connections added (the service's /metrics count);
 *   2. redis-benchmark (a short run to size a ~3 s one, per pipeline depth), the replica idle;
 *   3. max: HTTP (wrk, bench/wrk-schedule.lua: keep-alive, a distinct client tuple on every request, so
 *      every call is a wlc decision on a new connection) and gRPC unary (h2load, one fixed body with
 *      initialState CLOSE: conn_reuse_mode expires the entry and schedules anew on every call), each a
 *      warm-up, then BENCH_SECONDS in BENCH_SLICES slices alternating with the bare route;
 *   4. half rate: the service paced at half its measured maximum (HTTP: bench/redis-wrk-paced.lua, wrk's
 *      delay() hook; gRPC: h2load --rps), the bare route at the same rate beside it; p50/p99 against the
 *      2 ms goal.
 *
 * Server, Redis and load-generator CPU are read from /proc over each run (100% = one core). h2load sees
 * only HTTP 200; gRPC-level failures come from the service's ipvs_decisions_total and the bare server's
 * own failure count.
 *
 * Environment: BENCH_SECONDS (measured time per max target, default 8), BENCH_WARMUP_SECONDS (default 2),
 * BENCH_SLICES (default 4), BENCH_PACED_SECONDS (default 6), BENCH_MEMORY_SCHEDULES (default 20000),
 * BENCH_HTTP_LOADER=autocannon (max runs without wrk; the paced HTTP run needs wrk).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { startRedisServer, type RedisServer } from '../test/helpers/redis-server.js';
import { hasTool, killChildren, startServer, stopServer, type Server } from './child-processes.js';
import { clientFor, grpcFrame, scheduleRequestBytes, VIRTUAL } from './grpc-payload.js';
import {
  H2_CLIENTS,
  H2_STREAMS,
  h2load,
  HTTP_CONNECTIONS,
  httpLoad,
  resultLine,
  runLoader,
  wrkFailures,
  type HttpLoader,
  type Measurement,
} from './load-generators.js';
import { floor2, fmtInt, fmtPct, fmtRate, fmtUs, formatTable } from './report-format.js';
import {
  ceilingCounts,
  countDecisions,
  grpcScheduleOnce,
  post,
  SERVICE_KEY,
  startService,
} from './service-calls.js';
import { compareInSlices, WARMUP_SECONDS, type ComparisonRow } from './sliced-compare.js';

const PACED_SECONDS = Number(process.env.BENCH_PACED_SECONDS ?? 6);
const MEMORY_SCHEDULES = Number(process.env.BENCH_MEMORY_SCHEDULES ?? 20_000);
/** Connections / requests in flight while the memory phase fills the table. */
const MEMORY_CONCURRENCY = 32;
/** redis-benchmark: clients, and the length of its measured runs. */
const RB_CLIENTS = 50;
const RB_SECONDS = 3;
/** The trivial script (bench/redis-evalsha-servers.ts loads the same text). */
const TRIVIAL_SCRIPT = 'return ARGV[1]';
/** The redis engine's default key prefix and its per-service hash tag (src/engine/redis/keys.ts). */
const TAG_PREFIX = `ipvs:{${SERVICE_KEY}}:`;

const GOAL_RATIO = 0.6;
const GOAL_P99_US = 2000;
const GOAL_BYTES = 200;

/** The memory phase's tuples (no loader run gets this many). */
const MEMORY_RUN = 63;

const work = mkdtempSync(join(tmpdir(), 'ipvs-redis-bench-'));
let redis: RedisServer | undefined;
let admin: Redis | undefined;

// ---------------------------------------------------------------------------------------------------
// The service and the bare route

/** Calls whose EVALSHA failed in the bare server so far. */
async function bareFailures(server: Server): Promise<number> {
  return (await ceilingCounts(server)).failed;
}

// ---------------------------------------------------------------------------------------------------
// Phases

/** A door at a fixed rate (NaN when none was measured). */
interface PacedRow extends ComparisonRow {
  rate: number;
}

const maxRows: ComparisonRow[] = [];
const pacedRows: PacedRow[] = [];
const notes: string[] = [];

function progress(text: string): void {
  process.stderr.write(`[bench:redis] ${text}\n`);
}

async function usedMemory(): Promise<number> {
  const info = await admin!.info('memory');
  const m = /^used_memory:(\d+)/m.exec(info);
  if (!m) throw new Error('INFO memory has no used_memory');
  return Number(m[1]);
}

/**
 * A key's group in the breakdown: the service's keys by name without their hash-tag prefix, per-item
 * keys together (`d:10.1.0.1:80` → `d:*`); other keys by their first two segments (`ipvs:x:…` → `ipvs:x:*`).
 */
function keyGroup(key: string): string {
  if (key.startsWith(TAG_PREFIX)) {
    const name = key.slice(TAG_PREFIX.length);
    const cut = name.indexOf(':');
    return cut < 0 ? name : `${name.slice(0, cut)}:*`;
  }
  const parts = key.split(':');
  return parts.length > 2 ? `${parts.slice(0, 2).join(':')}:*` : key;
}

interface KeyGroup {
  keys: number;
  bytes: number;
  /** Entries (hash fields, zset/set members, list items, string bytes) and type/encoding. */
  entries: number;
  kinds: Set<string>;
}

/** MEMORY USAGE (exact: SAMPLES 0) of every key in the (private) Redis, by group. */
async function keyUsage(): Promise<Map<string, KeyGroup>> {
  const out = new Map<string, KeyGroup>();
  let cursor = '0';
  do {
    const [next, keys] = await admin!.scan(cursor, 'COUNT', 1000);
    cursor = next;
    for (const key of keys) {
      const bytes = Number(await admin!.call('MEMORY', 'USAGE', key, 'SAMPLES', '0'));
      const type = await admin!.type(key);
      const encoding = String(await admin!.object('ENCODING', key));
      const entries =
        type === 'hash'
          ? await admin!.hlen(key)
          : type === 'zset'
            ? await admin!.zcard(key)
            : type === 'set'
              ? await admin!.scard(key)
              : type === 'list'
                ? await admin!.llen(key)
                : type === 'string'
                  ? await admin!.strlen(key)
                  : 0;
      const name = keyGroup(key);
      const group = out.get(name) ?? { keys: 0, bytes: 0, entries: 0, kinds: new Set<string>() };
      group.keys++;
      group.bytes += bytes;
      group.entries += entries;
      group.kinds.add(`${type}/${encoding}`);
      out.set(name, group);
    }
  } while (cursor !== '0');
  return out;
}

/** INFO commandstats: calls and microseconds per command (Lua time is in EVALSHA's). */
async function commandStats(): Promise<Map<string, { calls: number; usec: number }>> {
  const out = new Map<string, { calls: number; usec: number }>();
  const info = await admin!.info('commandstats');
  for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm))
    out.set(m[1], { calls: Number(m[2]), usec: Number(m[3]) });
  return out;
}

interface MemoryResult {
  /** Schedules answered (the load generator's count) and failed. */
  schedules: number;
  failed: number;
  seconds: number;
  /** Tracked connections added, as the service counts them (active + inactive). */
  added: number;
  usedDelta: number;
  keysDelta: number;
  byKey: { name: string; delta: number; keys: number; entries: number; kinds: string }[];
  /** Redis commands the replica sent during the fill (sweeps included), by command. */
  commands: { name: string; calls: number; usec: number }[];
}

/** N Schedules over HTTP with fetch, each a new client tuple (without wrk; slower). */
async function scheduleMany(server: Server, n: number): Promise<{ requests: number; failed: number }> {
  const url = `http://127.0.0.1:${server.httpPort}/v1/schedule`;
  let next = 0;
  let failed = 0;
  const worker = async () => {
    while (next < n) {
      const body = JSON.stringify({
        protocol: 'tcp',
        client: clientFor(MEMORY_RUN, next++),
        virtual: VIRTUAL,
      });
      try {
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        await res.arrayBuffer();
        if (res.status !== 200) failed++;
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: MEMORY_CONCURRENCY }, worker));
  return { requests: n, failed };
}

/** N Schedules over HTTP with wrk (bench/redis-wrk-count.lua), stopped once N are answered. */
async function wrkCount(server: Server, n: number): Promise<{ requests: number; failed: number }> {
  let stopped = false;
  const out = await runLoader(
    'wrk',
    [
      '-t1',
      `-c${MEMORY_CONCURRENCY}`,
      '-d600s',
      '--timeout',
      '5s',
      '-s',
      'bench/redis-wrk-count.lua',
      `http://127.0.0.1:${server.httpPort}`,
      '--',
      '/v1/schedule',
      String(MEMORY_RUN),
      String(n),
    ],
    { server, redisPid: redis!.pid },
    // wrk's main thread sleeps for -d whatever its threads do: SIGINT ends it once the count is in.
    (stdout, proc) => {
      if (!stopped && stdout.includes('COUNT_DONE')) stopped = proc.kill('SIGINT');
    },
  );
  const r = resultLine(out.stdout, 'WRK_RESULT');
  return { requests: r.requests, failed: wrkFailures(r) };
}

async function memoryPhase(service: Server, loader: HttpLoader): Promise<MemoryResult> {
  progress(`memory: ${MEMORY_SCHEDULES} Schedules, each a new connection`);
  const counted = await countDecisions(service);
  const keys0 = await keyUsage();
  const used0 = await usedMemory();
  const stats0 = await commandStats();
  const t0 = performance.now();
  const { requests, failed } =
    loader === 'wrk'
      ? await wrkCount(service, MEMORY_SCHEDULES)
      : await scheduleMany(service, MEMORY_SCHEDULES);
  const seconds = (performance.now() - t0) / 1000;
  // The last answers' bookkeeping (if any is asynchronous) settles.
  await sleep(200);
  const stats1 = await commandStats();
  const commands: MemoryResult['commands'] = [];
  for (const [name, after] of stats1) {
    const before = stats0.get(name) ?? { calls: 0, usec: 0 };
    // This process's own INFO between the two readings.
    const calls = after.calls - before.calls - (name === 'info' ? 1 : 0);
    if (calls > 0) commands.push({ name, calls, usec: after.usec - before.usec });
  }
  commands.sort((a, b) => b.usec - a.usec);
  const used1 = await usedMemory();
  const keys1 = await keyUsage();
  const { connectionsAdded } = await counted();
  const byKey: MemoryResult['byKey'] = [];
  let keysDelta = 0;
  for (const name of new Set([...keys0.keys(), ...keys1.keys()])) {
    const after = keys1.get(name);
    const delta = (after?.bytes ?? 0) - (keys0.get(name)?.bytes ?? 0);
    keysDelta += delta;
    if (delta === 0) continue;
    byKey.push({
      name,
      delta,
      keys: after?.keys ?? 0,
      entries: after?.entries ?? 0,
      kinds: [...(after?.kinds ?? [])].join(','),
    });
  }
  byKey.sort((a, b) => b.delta - a.delta);
  return {
    schedules: requests,
    failed,
    seconds,
    added: connectionsAdded,
    usedDelta: used1 - used0,
    keysDelta,
    byKey,
    commands,
  };
}

interface RedisBenchmark {
  pipeline: number;
  requests: number;
  rps: number;
  p50Ms: number;
  p99Ms: number;
  redisCpu: number;
  loaderCpu: number;
}

async function redisBenchmarkOnce(port: number, sha: string, pipeline: number, requests: number) {
  const out = await runLoader(
    'redis-benchmark',
    [
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-n',
      String(requests),
      '-c',
      String(RB_CLIENTS),
      '-P',
      String(pipeline),
      '--csv',
      'EVALSHA',
      sha,
      '0',
      'x',
    ],
    { redisPid: redis!.pid },
  );
  const line = out.stdout
    .trim()
    .split('\n')
    .find((l) => l.startsWith('"EVALSHA'));
  if (!line) throw new Error(`unexpected redis-benchmark output:\n${out.stdout.slice(-2000)}`);
  const cols = line.split('","').map((c) => c.replace(/"/g, ''));
  // test, rps, avg, min, p50, p95, p99, max
  return {
    pipeline,
    requests,
    rps: Number(cols[1]),
    p50Ms: Number(cols[4]),
    p99Ms: Number(cols[6]),
    redisCpu: out.cpu.redisCpu,
    loaderCpu: out.cpu.loaderCpu,
  };
}

/** A short run to size the measured one (~RB_SECONDS). */
async function redisBenchmark(port: number, sha: string, pipeline: number): Promise<RedisBenchmark> {
  const probe = await redisBenchmarkOnce(port, sha, pipeline, pipeline > 1 ? 200_000 : 30_000);
  const requests = Math.max(50_000, Math.round((probe.rps * RB_SECONDS) / 10_000) * 10_000);
  return redisBenchmarkOnce(port, sha, pipeline, requests);
}

// ---------------------------------------------------------------------------------------------------
// Report

/** CPU microseconds per answered call, from a CPU share (percent of one core) and the call rate. */
function perCall(m: Measurement, cpuPct: number): string {
  if (!Number.isFinite(cpuPct) || !(m.rps > 0)) return '-';
  const us = ((cpuPct / 100) * 1e6) / m.rps;
  return us < 10 ? us.toFixed(1) : us.toFixed(0);
}
/** A titled table. */
const table = (title: string, header: string[], rows: string[][]) => `${title}\n${formatTable(header, rows)}`;

function report(
  memory: MemoryResult | string,
  rb: RedisBenchmark[] | string,
  startedAt: number,
  loadAtStart: number[],
): void {
  const out: string[] = [];
  out.push(
    table(
      `Max throughput, one replica (ratio goal ≥ ${GOAL_RATIO} of the bare-EVALSHA route on the same door)`,
      [
        'door',
        'bare req/s',
        'ours req/s',
        'ratio',
        'p50',
        'p99',
        'bare p50',
        'bare p99',
        'server cpu',
        'redis cpu',
        'server µs/call',
        'redis µs/call',
        'loader cpu',
        'failed',
      ],
      maxRows.map((r) => {
        if (r.skipped || !r.ours || !r.ceiling) return [r.door, r.skipped ?? '-'];
        const ratio = r.ours.rps / r.ceiling.rps;
        return [
          r.door,
          fmtRate(r.ceiling),
          fmtRate(r.ours),
          `${floor2(ratio)} ${ratio >= GOAL_RATIO ? 'ok' : 'LOW'}`,
          fmtUs(r.ours.p50Us),
          fmtUs(r.ours.p99Us),
          fmtUs(r.ceiling.p50Us),
          fmtUs(r.ceiling.p99Us),
          `${fmtPct(r.ours.serverCpu)}/${fmtPct(r.ceiling.serverCpu)}`,
          `${fmtPct(r.ours.redisCpu)}/${fmtPct(r.ceiling.redisCpu)}`,
          `${perCall(r.ours, r.ours.serverCpu)}/${perCall(r.ceiling, r.ceiling.serverCpu)}`,
          `${perCall(r.ours, r.ours.redisCpu)}/${perCall(r.ceiling, r.ceiling.redisCpu)}`,
          `${fmtPct(r.ours.loaderCpu)}/${fmtPct(r.ceiling.loaderCpu)}`,
          `${r.ours.failures}/${r.ceiling.failures}`,
        ];
      }),
    ),
  );
  out.push('');
  out.push(
    table(
      `At half of the measured max (goal: p99 ≤ ${GOAL_P99_US / 1000} ms); the bare route at the same rate beside it`,
      [
        'door',
        'target/s',
        'ours req/s',
        'p50',
        'p99',
        'p99 goal',
        'bare req/s',
        'bare p50',
        'bare p99',
        'server cpu',
        'redis cpu',
        'failed',
      ],
      pacedRows.map((r) => {
        if (r.skipped || !r.ours) return [r.door, r.skipped ?? '-'];
        const c = r.ceiling;
        return [
          r.door,
          fmtInt(r.rate),
          fmtRate(r.ours),
          fmtUs(r.ours.p50Us),
          fmtUs(r.ours.p99Us),
          r.ours.p99Us <= GOAL_P99_US ? 'ok' : 'MISSED',
          fmtRate(c),
          fmtUs(c?.p50Us),
          fmtUs(c?.p99Us),
          `${fmtPct(r.ours.serverCpu)}/${fmtPct(c?.serverCpu)}`,
          `${fmtPct(r.ours.redisCpu)}/${fmtPct(c?.redisCpu)}`,
          `${r.ours.failures}/${c?.failures ?? '-'}`,
        ];
      }),
    ),
  );
  out.push('');
  if (typeof rb === 'string') out.push(`redis-benchmark: ${rb}`);
  else {
    const best = Math.max(...maxRows.map((r) => r.ours?.rps ?? 0));
    out.push(
      table(
        `Redis itself: redis-benchmark -c ${RB_CLIENTS} EVALSHA <sha of "${TRIVIAL_SCRIPT}"> 0 x`,
        ['pipeline', 'requests', 'req/s', 'p50', 'p99', 'redis cpu', 'loader cpu', 'best replica / this'],
        rb.map((b) => [
          `-P ${b.pipeline}`,
          fmtInt(b.requests),
          fmtInt(b.rps),
          fmtUs(b.p50Ms * 1000),
          fmtUs(b.p99Ms * 1000),
          fmtPct(b.redisCpu),
          fmtPct(b.loaderCpu),
          best > 0 ? (best / b.rps).toFixed(3) : '-',
        ]),
      ),
    );
  }
  out.push('');
  let bytesPerConn = NaN;
  if (typeof memory === 'string') out.push(`memory: ${memory}`);
  else {
    bytesPerConn = memory.usedDelta / memory.added;
    out.push(
      table(
        `Redis bytes per tracked connection (goal ≤ ${GOAL_BYTES} B): ${fmtInt(memory.schedules)} Schedules over HTTP ` +
          `in ${memory.seconds.toFixed(1)} s (${fmtInt(memory.schedules / memory.seconds)}/s, ${memory.failed} failed), ` +
          `${fmtInt(memory.added)} connections added`,
        ['measure', 'bytes added', 'per connection', 'goal'],
        [
          [
            'INFO memory used_memory',
            fmtInt(memory.usedDelta),
            `${bytesPerConn.toFixed(0)} B`,
            bytesPerConn <= GOAL_BYTES ? 'ok' : 'MISSED',
          ],
          [
            "MEMORY USAGE of the service's keys",
            fmtInt(memory.keysDelta),
            `${(memory.keysDelta / memory.added).toFixed(0)} B`,
            '',
          ],
          ...memory.byKey.map((k) => [
            `  ${k.name} (${k.keys === 1 ? '' : `${k.keys} keys, `}${k.kinds}, ${fmtInt(k.entries)} entries)`,
            fmtInt(k.delta),
            `${(k.delta / memory.added).toFixed(0)} B`,
            '',
          ]),
        ],
      ),
    );
    out.push(
      '  (both are jemalloc allocations, size classes included; a hash table grows in powers of two, so its ' +
        'bucket array adds 8-16 B per entry depending on where the count falls)',
    );
    out.push('');
    out.push(
      table(
        "Redis work per Schedule (INFO commandstats over the same fill, the replica's 1 s sweeps included; " +
          "the commands a script calls have rows of their own, and their time is also inside EVALSHA's)",
        ['command', 'calls', 'per Schedule', 'µs per call', 'Redis µs per Schedule'],
        memory.commands.map((c) => [
          c.name,
          fmtInt(c.calls),
          (c.calls / memory.schedules).toFixed(3),
          (c.usec / c.calls).toFixed(1),
          (c.usec / memory.schedules).toFixed(1),
        ]),
      ),
    );
  }
  out.push('');
  const verdict = (ok: boolean | undefined) => (ok === undefined ? 'n/a' : ok ? 'MET' : 'MISSED');
  const goalRows: string[][] = [];
  for (const r of maxRows) {
    const ratio = r.ours && r.ceiling ? r.ours.rps / r.ceiling.rps : undefined;
    goalRows.push([
      `${r.door}: throughput / bare EVALSHA route`,
      `≥ ${GOAL_RATIO}`,
      ratio === undefined ? (r.skipped ?? '-') : floor2(ratio),
      verdict(ratio === undefined ? undefined : ratio >= GOAL_RATIO),
    ]);
  }
  for (const r of pacedRows)
    goalRows.push([
      `${r.door}: p99 at half of max (${fmtInt(r.rate)}/s)`,
      `≤ ${GOAL_P99_US / 1000} ms`,
      r.ours ? fmtUs(r.ours.p99Us) : (r.skipped ?? '-'),
      verdict(r.ours ? r.ours.p99Us <= GOAL_P99_US && r.ours.failures === 0 : undefined),
    ]);
  goalRows.push([
    'Redis bytes per tracked connection',
    `≤ ${GOAL_BYTES} B`,
    Number.isNaN(bytesPerConn) ? '-' : `${bytesPerConn.toFixed(0)} B`,
    verdict(Number.isNaN(bytesPerConn) ? undefined : bytesPerConn <= GOAL_BYTES),
  ]);
  out.push(table('Goals', ['goal', 'target', 'measured', 'verdict'], goalRows));
  out.push('');
  out.push(
    'req/s: answers per second over the measured run; p50/p99: per-call latency seen by the load generator ' +
      '(send → answer, under the stated concurrency); server cpu: the replica / bare server process, redis ' +
      `cpu: redis-server, loader cpu: the load generator (100% = one core; the box has ${cpus().length} cores ` +
      'shared by all of them); cpu and failed columns are ours/bare.',
  );
  for (const note of notes) out.push(`\n${note}`);
  out.push(
    `\nload average ${loadAtStart.map((l) => l.toFixed(2)).join(' ')} at the start, ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at the end; total ${((performance.now() - startedAt) / 1000).toFixed(0)} s`,
  );
  process.stdout.write(`${out.join('\n')}\n`);
}

// ---------------------------------------------------------------------------------------------------

/** The replica under test; replaced by `freshService`. */
let service: Server | undefined;
/** What every replica instance wrote (warnings, errors). */
const serviceOutput: string[] = [];

/**
 * A new replica on an empty Redis (FLUSHALL keeps the script cache, so the bare server is unaffected),
 * with the wlc service configured: every phase starts from an empty connection table, and no entry
 * of an earlier phase expires (SYN_RECV: 60 s) inside a measured window.
 */
async function freshService(): Promise<Server> {
  if (service) {
    await stopServer(service);
    serviceOutput.push(service.output());
    service = undefined;
  }
  await admin!.flushall();
  service = await startService('service (redis engine)', { REDIS_URL: redis!.url });
  return service;
}

const firstLine = (err: unknown) => (err instanceof Error ? err.message : String(err)).split('\n')[0];

async function maxPhase(loader: HttpLoader, haveH2load: boolean, body: string, requestBytes: Uint8Array) {
  const svc = await freshService();
  const bare = bareServer!;
  const redisPid = redis!.pid;
  let httpMax: Measurement | undefined;
  let grpcMax: Measurement | undefined;
  const request = { protocol: 'tcp', client: '100.127.0.1:1000', virtual: VIRTUAL };
  try {
    const sample = await post(svc, '/v1/schedule', request);
    const bareSample = await post(bare, '/evalsha', request);
    if (sample.status !== 200) throw new Error(`POST /v1/schedule answered ${sample.status} ${sample.text}`);
    if (bareSample.status !== 200) throw new Error(`POST /evalsha answered ${bareSample.status}`);
    progress(`HTTP max (${loader}): POST /evalsha and POST /v1/schedule`);
    const counted = await countDecisions(svc);
    const f0 = await bareFailures(bare);
    const [ceiling, ours] = await compareInSlices([
      (seconds) => httpLoad({ loader, server: bare, path: '/evalsha', seconds, redisPid }),
      (seconds) => httpLoad({ loader, server: svc, path: '/v1/schedule', seconds, redisPid }),
    ]);
    const decisions = await counted();
    ours.failures += decisions.unexpected;
    ceiling.failures += (await bareFailures(bare)) - f0;
    httpMax = ours;
    maxRows.push({ door: 'HTTP POST /v1/schedule', ceiling, ours });
    notes.push(
      `HTTP: ${loader === 'wrk' ? 'wrk -t1' : 'autocannon'}, ${HTTP_CONNECTIONS} keep-alive connections, a new ` +
        `client tuple on every request (every call a wlc decision on a new connection; entries expire after ` +
        `60 s, after the phase, so no expiry work is in these numbers).\n` +
        `  answer ${sample.text.length} B: ${sample.text}\n  bare   ${bareSample.text.length} B: ${bareSample.text}\n` +
        `  service counted (warm-up + measured): ${decisions.text}; connection table at the end: ` +
        `${fmtInt(decisions.connections)} entries`,
    );
  } catch (err) {
    progress(`HTTP failed: ${(err as Error).stack ?? String(err)}`);
    maxRows.push({ door: 'HTTP POST /v1/schedule', skipped: `failed: ${firstLine(err)}` });
  }

  if (!haveH2load) {
    maxRows.push({ door: 'gRPC Schedule (unary)', skipped: 'skipped: h2load not installed' });
    return { httpMax, grpcMax };
  }
  try {
    const grpcSample = await grpcScheduleOnce(svc, requestBytes);
    const grpcBare = await grpcScheduleOnce(bare, requestBytes);
    progress('gRPC max (h2load): bare Schedule and Schedule');
    const counted = await countDecisions(svc);
    const f0 = await bareFailures(bare);
    const [ceiling, ours] = await compareInSlices([
      (seconds) => h2load({ server: bare, body, seconds, redisPid }),
      (seconds) => h2load({ server: svc, body, seconds, redisPid }),
    ]);
    const d = await counted();
    ours.failures += d.unexpected;
    ceiling.failures += (await bareFailures(bare)) - f0;
    grpcMax = ours;
    maxRows.push({ door: 'gRPC Schedule (unary)', ceiling, ours });
    notes.push(
      `gRPC: h2load -t1 -c${H2_CLIENTS} -m${H2_STREAMS} (${H2_CLIENTS * H2_STREAMS} calls in flight), one fixed body ` +
        `(${requestBytes.length} B protobuf + 5 B frame) with initialState CLOSE: conn_reuse_mode=1 expires the ` +
        'CLOSE entry and schedules anew on every call (a wlc decision + one expiry per call; the tuple stays ' +
        "one entry). h2load only sees HTTP 200; gRPC failures come from the service's ipvs_decisions_total " +
        "and the bare server's count.\n" +
        `  service counted (warm-up + measured): ${d.text}\n  answer ${grpcSample.bytes} B ${grpcSample.json}\n  bare   ${grpcBare.bytes} B ${grpcBare.json}`,
    );
  } catch (err) {
    progress(`gRPC failed: ${(err as Error).stack ?? String(err)}`);
    maxRows.push({ door: 'gRPC Schedule (unary)', skipped: `failed: ${firstLine(err)}` });
  }
  return { httpMax, grpcMax };
}

/** The service at `rate` after a short warm-up at that rate, then the bare route at the same rate. */
async function paced(
  door: string,
  rate: number,
  load: (server: Server, seconds: number) => Promise<Measurement>,
) {
  const svc = service!;
  const bare = bareServer!;
  try {
    await load(svc, Math.min(2, WARMUP_SECONDS));
    const counted = await countDecisions(svc);
    const f0 = await bareFailures(bare);
    const ours = await load(svc, PACED_SECONDS);
    ours.failures += (await counted()).unexpected;
    const ceiling = await load(bare, PACED_SECONDS);
    ceiling.failures += (await bareFailures(bare)) - f0;
    pacedRows.push({ door, rate, ours, ceiling });
  } catch (err) {
    progress(`${door} at ${fmtInt(rate)}/s failed: ${(err as Error).stack ?? String(err)}`);
    pacedRows.push({ door, rate, skipped: `failed: ${firstLine(err)}` });
  }
}

let bareServer: Server | undefined;

async function main(): Promise<void> {
  const startedAt = performance.now();
  const loadAtStart = loadavg();
  const [cpu] = cpus();
  console.log(
    `ipvs-scheduler redis-engine bench — node ${process.version}, ${cpus().length} × ${cpu?.model ?? '?'}`,
  );
  const haveWrk = hasTool('wrk', ['-v']);
  const haveH2load = hasTool('h2load', ['--version']);
  const haveRb = hasTool('redis-benchmark', ['--version']);
  const wantAutocannon = process.env.BENCH_HTTP_LOADER === 'autocannon';
  const loader: HttpLoader = haveWrk && !wantAutocannon ? 'wrk' : 'autocannon';
  if (!haveWrk)
    console.log('wrk not found (apt-get install wrk): HTTP max uses autocannon; no paced HTTP run');
  if (!haveH2load) console.log('h2load not found (apt-get install nghttp2-client): skipping gRPC');
  if (loadAtStart[0] > cpus().length * 0.75)
    console.log(
      `warning: load average ${loadAtStart[0].toFixed(2)} on ${cpus().length} cores before the start — ` +
        'other processes compete with the servers and load generators; expect noisy numbers',
    );
  console.log('');

  redis = await startRedisServer();
  admin = redis.admin();
  const sha = String(await admin.script('LOAD', TRIVIAL_SCRIPT));
  progress(`redis-server ${redis.url} (pid ${redis.pid}); scratch ${work}`);
  bareServer = await startServer('bare EVALSHA server', 'bench/redis-evalsha-servers.ts', {
    REDIS_URL: redis.url,
  });
  try {
    let memory: MemoryResult | string;
    try {
      memory = await memoryPhase(await freshService(), loader);
    } catch (err) {
      progress(`memory failed: ${(err as Error).stack ?? String(err)}`);
      memory = `failed: ${firstLine(err)}`;
    }

    // Redis's own ceiling, on the emptied Redis with the replica idle.
    await freshService();
    let rb: RedisBenchmark[] | string = 'skipped: redis-benchmark not installed';
    if (haveRb) {
      progress('redis-benchmark EVALSHA, pipeline 1 and 16');
      try {
        rb = [await redisBenchmark(redis.port, sha, 1), await redisBenchmark(redis.port, sha, 16)];
      } catch (err) {
        rb = `failed: ${firstLine(err)}`;
      }
    }

    const body = join(work, 'schedule-fresh.bin');
    const requestBytes = scheduleRequestBytes(clientFor(62, 1), 'CLOSE');
    writeFileSync(body, grpcFrame(requestBytes));
    const { httpMax, grpcMax } = await maxPhase(loader, haveH2load, body, requestBytes);

    await freshService();
    if (httpMax && haveWrk) {
      const rate = httpMax.rps / 2;
      progress(`HTTP at ${fmtInt(rate)}/s (half of max): service, then bare`);
      await paced('HTTP POST /v1/schedule', rate, (server, seconds) =>
        httpLoad({
          loader,
          server,
          path: server === bareServer ? '/evalsha' : '/v1/schedule',
          seconds,
          rate,
          redisPid: redis!.pid,
        }),
      );
    } else
      pacedRows.push({
        door: 'HTTP POST /v1/schedule',
        rate: NaN,
        skipped: haveWrk ? 'skipped: no max measured' : 'skipped: needs wrk',
      });
    if (grpcMax) {
      const rate = grpcMax.rps / 2;
      progress(`gRPC at ${fmtInt(rate)}/s (half of max): service, then bare`);
      await paced('gRPC Schedule (unary)', rate, (server, seconds) =>
        h2load({ server, body, seconds, rate, redisPid: redis!.pid }),
      );
    } else pacedRows.push({ door: 'gRPC Schedule (unary)', rate: NaN, skipped: 'skipped: no max measured' });
    notes.push(
      `half rate: on a new replica and emptied Redis; per door a ${Math.min(2, WARMUP_SECONDS)} s warm-up at the ` +
        `rate, then ${PACED_SECONDS} s of the service and ${PACED_SECONDS} s of the bare route at the same target. ` +
        `HTTP: wrk -t1 -c${HTTP_CONNECTIONS} with bench/redis-wrk-paced.lua (send slots at the rate, ms timers; ` +
        `latency from the write). gRPC: h2load -c${H2_CLIENTS} -m${H2_STREAMS} --rps=<rate/${H2_CLIENTS}> per connection.`,
    );
    notes.push(
      'each phase (memory, redis-benchmark, max, half rate) runs on a new replica after FLUSHALL, so it starts ' +
        'from an empty connection table and no earlier entry expires inside it.',
    );

    if (service) serviceOutput.push(service.output());
    const warnings = serviceOutput.join('').trim();
    if (warnings) notes.push(`the service wrote (warnings/errors):\n${warnings.slice(0, 2000)}`);
    const bareWarnings = bareServer
      .output()
      .split('\n')
      .filter((line) => !line.startsWith('EVALSHA_READY'))
      .join('\n')
      .trim();
    if (bareWarnings) notes.push(`the bare server wrote:\n${bareWarnings.slice(0, 2000)}`);
    report(memory, rb, startedAt, loadAtStart);
  } finally {
    await Promise.all([service && stopServer(service), stopServer(bareServer)]);
  }
}

async function cleanup(): Promise<void> {
  killChildren();
  await redis?.stop();
  redis = undefined;
  rmSync(work, { recursive: true, force: true });
}

process.on('SIGINT', () => {
  void cleanup().finally(() => process.exit(130));
});
try {
  await main();
} finally {
  await cleanup();
}
