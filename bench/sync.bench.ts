/**
 * `npm run bench:sync`: conn-sync master → backup throughput and lag, with a raw Redis pub/sub ceiling
 * measured in the same run.
 *
 * Processes (this file plays every part, chosen by argv[2]; the orchestrator only coordinates):
 *   redis-server   private, on a free loopback port (test/helpers/redis-server.ts)
 *   master         MemoryEngine + SyncManager (role master): runs the Schedule load in-process (direct
 *                  engine calls, so the API doors are not what is measured) and sends what §7.2 says
 *   backup         MemoryEngine + SyncManager (role backup): applies what it receives
 *   pub / sub      the ceiling: a publish loop of same-size messages / a subscriber counting them
 *
 * Workload: a persistent TCP service (rr, -p 300, 3 masq destinations). Each client has its own
 * address (so its own template) and goes through 4 packets: Schedule (SYN_RECV, template sent),
 * ESTABLISHED (template), an ACK = 3rd packet (connection sent, template), FIN_WAIT (closing
 * transition: connection sent, template) — 6 entries per client, in 4 engine calls.
 *
 * Phases: "max" (the master as fast as it goes, for throughput), then "paced" (the master held at the
 * goal rate, for lag), each after a warm-up; then the ceiling: raw PUBLISH of messages of the mean
 * size the master sent, as fast as it goes, then at the paced phase's message rate (for latency).
 *
 * Lag is end to end: from the wall-clock time the master's Schedule call starts (the one that creates
 * the client's template) to the time the backup's `applySync` holding that template has returned (the
 * entry is in the backup's table); both processes read `performance.timeOrigin + performance.now()`.
 * It includes the master's send delay (IPVS_SYNC_SEND_DELAY, 20 ms, unless a buffer fills first). The
 * sync health window (sent_at_ms → received, ms resolution, last 1024 messages) is shown beside it.
 *
 * Also shown: CPU of each process (/proc, process.cpuUsage), GC pauses in master and backup (a
 * PerformanceObserver), table sizes, and whether the backup saw a gap, asked for a resync or lost
 * its subscription.
 *
 * Environment: BENCH_SECONDS (measured time of each sync phase, default 10), BENCH_WARMUP_SECONDS
 * (default 2), BENCH_PACED_RATE (entries/s of the paced phase, default the 20,000 goal),
 * BENCH_CPU_PROF=1 (master and backup run under --cpu-prof; a summary of where their time went is
 * printed; rates are then NOT comparable with normal runs), BENCH_NODE_ARGS (extra node flags for
 * master and backup, e.g. --trace-gc), BENCH_KEEP=1 (keep the scratch directory with the per-client
 * times).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PerformanceObserver, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { systemClock } from '../src/engine/clock.js';
import type { SyncEntry } from '../src/engine/engine.js';
import { MemoryEngine } from '../src/engine/memory/memory-engine.js';
import { restoreRules } from '../src/ipvsadm/apply.js';
import { SyncManager } from '../src/sync/daemon.js';
import type { SyncHealthView } from '../src/sync/health.js';
import { analyseProfile, mainProfile, summariseProfile } from './cpuprofile-summary.js';
import { startRedisServer, type RedisServer } from '../test/helpers/redis-server.js';

const SELF = fileURLToPath(import.meta.url);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
const GOAL_ENTRIES_PER_S = 20_000;
const GOAL_P99_LAG_MS = 50;
const PACED_RATE = Number(process.env.BENCH_PACED_RATE ?? GOAL_ENTRIES_PER_S);
const PROFILE = process.env.BENCH_CPU_PROF === '1';
const CEILING_SECONDS = 4;
const CEILING_WARMUP_SECONDS = 1;
const SYNCID = 7;
const RAW_CHANNEL = 'bench:raw';
const CLK_TCK = 100;

const VIRTUAL = '10.0.0.2:80';
const RULES = `-A -t ${VIRTUAL} -s rr -p 300
-a -t ${VIRTUAL} -r 10.1.0.1:80 -m -w 1
-a -t ${VIRTUAL} -r 10.1.0.2:80 -m -w 1
-a -t ${VIRTUAL} -r 10.1.0.3:80 -m -w 1
`;
/** Entries the master sends per client (see the header). */
const ENTRIES_PER_CLIENT = 6;
/** Clients get 100.64.0.0 + i; the backup maps a template's address back to i. */
const MAX_CLIENTS = 1 << 21;
/** Clients driven between two yields to the event loop in the "max" phase. */
const CHUNK = 32;
/** PUBLISH commands in flight at most in the ceiling's publisher. */
const RAW_WINDOW = 4096;

type Msg = { type: string } & Record<string, unknown>;

const wallNow = (): number => performance.timeOrigin + performance.now();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const yieldLoop = () => new Promise((resolve) => setImmediate(resolve));

function send(msg: Msg): void {
  process.send?.(msg);
}

interface GcStats {
  count: number;
  totalMs: number;
  maxMs: number;
}

/** Records this process's GC pauses; the result sums those that started in [from, to). */
function watchGc(): (from: number, to: number) => GcStats {
  const log: number[] = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) log.push(performance.timeOrigin + e.startTime, e.duration);
  }).observe({ entryTypes: ['gc'] });
  return (from, to) => {
    const out: GcStats = { count: 0, totalMs: 0, maxMs: 0 };
    for (let i = 0; i < log.length; i += 2) {
      if (log[i] < from || log[i] >= to) continue;
      out.count++;
      out.totalMs += log[i + 1];
      out.maxMs = Math.max(out.maxMs, log[i + 1]);
    }
    return out;
  };
}

/** Entries in the engine's table and the heap, at the end of a phase. */
function footprint(engine: MemoryEngine): { entries: number; heapMb: number } {
  return { entries: engine.state.byId.size, heapMb: process.memoryUsage().heapUsed / 2 ** 20 };
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

// ---------------------------------------------------------------------------------------------------
// master

const clientIp = (i: number): string => `100.${64 + (i >>> 16)}.${(i >>> 8) & 255}.${i & 255}`;

function clientIndex(ip: string): number {
  const p = ip.split('.');
  if (p.length !== 4 || p[0] !== '100') return -1;
  return ((Number(p[1]) - 64) << 16) | (Number(p[2]) << 8) | Number(p[3]);
}

async function director(role: 'master' | 'backup', onPublish?: (bytes: number) => void) {
  const engine = new MemoryEngine({ clock: systemClock });
  await restoreRules(RULES, engine);
  const sync = new SyncManager({
    engine,
    redisUrl: process.env.BENCH_REDIS_URL as string,
    directorId: `bench-${role}`,
    resyncRetryMs: 200,
    ...(onPublish
      ? {
          channel: {
            dropOnPublish: (payload: Uint8Array) => {
              onPublish(payload.byteLength);
              return false;
            },
          },
        }
      : {}),
  });
  await sync.start({ role, syncid: SYNCID });
  const health = (): SyncHealthView => sync.list()[0].health;
  return { engine, sync, health };
}

async function masterMain(): Promise<void> {
  let bytes = 0;
  const { engine, sync, health } = await director('master', (n) => (bytes += n));
  const gcIn = watchGc();
  const scheduledAt = new Float64Array(MAX_CLIENTS);
  let next = 0;

  async function oneClient(i: number): Promise<void> {
    scheduledAt[i] = wallNow();
    const r = await engine.schedule({ client: `${clientIp(i)}:${10_000 + (i % 50_000)}`, virtual: VIRTUAL });
    await engine.updateConnection(r.connection, { state: 'ESTABLISHED' });
    await engine.updateConnection(r.connection, { event: { direction: 'in', flag: 'ack' } });
    await engine.updateConnection(r.connection, { state: 'FIN_WAIT' });
  }

  const snapshot = () => {
    const h = health();
    return {
      t: wallNow(),
      client: next,
      entriesSent: h.entriesSent ?? 0,
      messagesSent: h.messagesSent ?? 0,
      publishErrors: h.publishErrors ?? 0,
      lastSequence: h.lastSequence ?? 0,
      bytes,
      cpuMs: cpuMs(),
    };
  };

  /** `rate`: clients per second, 0 for as fast as it goes. */
  async function run(rate: number, warmupS: number, seconds: number, file: string): Promise<void> {
    const start = wallNow();
    let started = 0;
    let first: ReturnType<typeof snapshot> | undefined;
    while (true) {
      const elapsed = (wallNow() - start) / 1000;
      if (!first && elapsed >= warmupS) {
        first = snapshot();
        send({ type: 'edge', edge: 'start' });
      }
      if (elapsed >= warmupS + seconds) break;
      let budget = CHUNK;
      if (rate > 0) {
        // A stall (GC, a busy machine) is not made up for with a burst beyond 50 ms' worth.
        started = Math.max(started, Math.floor((elapsed - 0.05) * rate));
        budget = Math.min(Math.floor(elapsed * rate) - started, CHUNK * 4);
        if (budget <= 0) {
          await sleep(1);
          continue;
        }
      }
      if (next + budget > MAX_CLIENTS) throw new Error('bench: out of client addresses');
      for (let k = 0; k < budget; k++) await oneClient(next++);
      started += budget;
      await yieldLoop();
    }
    const last = snapshot();
    send({ type: 'edge', edge: 'end' });
    // What is still buffered goes out within the send delay.
    await sleep(100);
    const done = snapshot();
    writeFileSync(file, scheduledAt.subarray(first?.client ?? last.client, last.client));
    const from = first ?? last;
    send({ type: 'ran', first: from, last, done, gc: gcIn(from.t, last.t), ...footprint(engine) });
  }

  process.on('message', (m: Msg) => {
    if (m.type === 'run') {
      run(m.rate as number, m.warmup as number, m.seconds as number, m.file as string).catch(fail);
    } else if (m.type === 'exit') {
      void sync.close().then(() => engine.close().then(() => process.exit(0)));
    }
  });
  send({ type: 'ready' });
}

// ---------------------------------------------------------------------------------------------------
// backup

async function backupMain(): Promise<void> {
  const { engine, sync, health } = await director('backup');
  const gcIn = watchGc();
  /** When each client's template was first in the backup's table. */
  const visibleAt = new Float64Array(MAX_CLIENTS);
  const apply = engine.applySync.bind(engine);
  engine.applySync = async (entries: SyncEntry[]) => {
    const result = await apply(entries);
    const t = wallNow();
    for (const e of entries) {
      if (!e.template) continue;
      const i = clientIndex(e.clientAddress);
      if (i >= 0 && i < MAX_CLIENTS && visibleAt[i] === 0) visibleAt[i] = t;
    }
    return result;
  };

  process.on('message', (m: Msg) => {
    if (m.type === 'stats') {
      send({ type: 'stats', t: wallNow(), cpuMs: cpuMs(), health: health() });
    } else if (m.type === 'dump') {
      writeFileSync(m.file as string, visibleAt.subarray(m.from as number, m.to as number));
      send({ type: 'dumped', gc: gcIn(m.fromT as number, m.toT as number), ...footprint(engine) });
    } else if (m.type === 'exit') {
      void sync.close().then(() => engine.close().then(() => process.exit(0)));
    }
  });
  send({ type: 'ready' });
}

// ---------------------------------------------------------------------------------------------------
// ceiling: raw pub/sub

async function pubMain(): Promise<void> {
  const pub = new Redis(process.env.BENCH_REDIS_URL as string, { enableOfflineQueue: false });
  await new Promise((resolve) => pub.once('ready', resolve));
  let published = 0;
  let errors = 0;

  /** `rate`: messages per second, 0 for as fast as it goes. */
  async function run(size: number, rate: number, warmupS: number, seconds: number): Promise<void> {
    let inflight = 0;
    const start = wallNow();
    let started = 0;
    let first: { t: number; published: number; cpuMs: number } | undefined;
    const done = () => inflight--;
    const failed = () => {
      inflight--;
      errors++;
    };
    while (true) {
      const elapsed = (wallNow() - start) / 1000;
      if (!first && elapsed >= warmupS) {
        first = { t: wallNow(), published, cpuMs: cpuMs() };
        send({ type: 'edge', edge: 'start' });
      }
      if (elapsed >= warmupS + seconds) break;
      let budget = 256;
      if (rate > 0) {
        started = Math.max(started, Math.floor((elapsed - 0.05) * rate));
        budget = Math.min(Math.floor(elapsed * rate) - started, 256);
        if (budget <= 0) {
          await sleep(1);
          continue;
        }
      }
      for (let k = 0; k < budget && inflight < RAW_WINDOW; k++) {
        const payload = Buffer.alloc(size);
        payload.writeDoubleLE(wallNow(), 0);
        inflight++;
        published++;
        started++;
        pub.publish(RAW_CHANNEL, payload).then(done, failed);
      }
      await yieldLoop();
    }
    const last = { t: wallNow(), published, cpuMs: cpuMs() };
    send({ type: 'edge', edge: 'end' });
    send({ type: 'ran', first: first ?? last, last, errors });
  }

  process.on('message', (m: Msg) => {
    if (m.type === 'run') {
      run(m.size as number, m.rate as number, m.warmup as number, m.seconds as number).catch(fail);
    } else if (m.type === 'exit') {
      pub.disconnect();
      process.exit(0);
    }
  });
  send({ type: 'ready' });
}

async function subMain(): Promise<void> {
  const sub = new Redis(process.env.BENCH_REDIS_URL as string);
  let received = 0;
  let bytes = 0;
  // Per message: when it was published and how long it took to arrive.
  let sentAt = new Float64Array(1 << 20);
  let latency = new Float64Array(1 << 20);
  sub.on('messageBuffer', (_channel: Buffer, message: Buffer) => {
    const now = wallNow();
    if (received === sentAt.length) {
      const grow = (a: Float64Array) => {
        const b = new Float64Array(a.length * 2);
        b.set(a);
        return b;
      };
      sentAt = grow(sentAt);
      latency = grow(latency);
    }
    const at = message.readDoubleLE(0);
    sentAt[received] = at;
    latency[received] = now - at;
    received++;
    bytes += message.length;
  });
  await sub.subscribe(RAW_CHANNEL);
  process.on('message', (m: Msg) => {
    if (m.type === 'stats') {
      send({ type: 'stats', t: wallNow(), received, bytes, cpuMs: cpuMs() });
    } else if (m.type === 'latency') {
      const from = m.from as number;
      const to = m.to as number;
      const picked: number[] = [];
      for (let i = 0; i < received; i++) if (sentAt[i] >= from && sentAt[i] < to) picked.push(latency[i]);
      send({ type: 'latency', ...percentiles(picked) });
    } else if (m.type === 'exit') {
      sub.disconnect();
      process.exit(0);
    }
  });
  send({ type: 'ready' });
}

// ---------------------------------------------------------------------------------------------------
// orchestrator

interface Percentiles {
  n: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

function percentiles(values: ArrayLike<number>): Percentiles {
  const sorted = Float64Array.from(values).sort();
  const at = (p: number) =>
    sorted.length ? sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)] : NaN;
  return { n: sorted.length, p50: at(50), p90: at(90), p99: at(99), max: at(100) };
}

/** The orchestrator's scratch directory (times dumped by master and backup, profiles). */
let work = '';
const children = new Set<ChildProcess>();
let redis: RedisServer | undefined;

function fail(err: unknown): void {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  void cleanup().finally(() => process.exit(1));
}

class Child {
  readonly proc: ChildProcess;
  private readonly listeners = new Set<(m: Msg) => void>();
  private exiting = false;
  readonly profileDir: string | undefined;

  constructor(
    readonly role: string,
    redisUrl: string,
  ) {
    const args = ['--import', 'tsx', ...(process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)];
    if (PROFILE && (role === 'master' || role === 'backup')) {
      this.profileDir = join(work, `prof-${role}`);
      mkdirSync(this.profileDir);
      args.push('--cpu-prof', `--cpu-prof-dir=${this.profileDir}`);
    }
    this.proc = spawn(process.execPath, [...args, SELF, role], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: { ...process.env, BENCH_REDIS_URL: redisUrl },
    });
    children.add(this.proc);
    this.proc.on('message', (m: Msg) => {
      for (const l of [...this.listeners]) l(m);
    });
    this.proc.on('exit', (code, signal) => {
      children.delete(this.proc);
      if (!this.exiting) fail(new Error(`bench: the ${role} process ended (code ${code}, signal ${signal})`));
    });
  }

  on(listener: (m: Msg) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  next(type: string, timeoutMs = 120_000): Promise<Msg> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        off();
        reject(new Error(`bench: no "${type}" from the ${this.role} process within ${timeoutMs} ms`));
      }, timeoutMs);
      const off = this.on((m) => {
        if (m.type !== type) return;
        clearTimeout(timer);
        off();
        resolve(m);
      });
    });
  }

  request(msg: Msg, reply: string): Promise<Msg> {
    const answer = this.next(reply);
    this.proc.send(msg);
    return answer;
  }

  async exit(): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.exiting = true;
    const gone = new Promise((resolve) => this.proc.once('exit', resolve));
    this.proc.send({ type: 'exit' });
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }
}

async function startChild(role: string, redisUrl: string): Promise<Child> {
  const child = new Child(role, redisUrl);
  await child.next('ready', 30_000);
  return child;
}

/** CPU seconds of a process so far (/proc/<pid>/stat: utime + stime). */
function procCpuMs(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1000;
  } catch {
    return NaN;
  }
}

interface MasterSnapshot {
  t: number;
  client: number;
  entriesSent: number;
  messagesSent: number;
  publishErrors: number;
  lastSequence: number;
  bytes: number;
  cpuMs: number;
}

interface BackupStats {
  t: number;
  cpuMs: number;
  health: SyncHealthView;
}

interface SyncPhase {
  name: string;
  load: string;
  seconds: number;
  clients: number;
  entriesSent: number;
  messagesSent: number;
  bytes: number;
  publishErrors: number;
  backupSeconds: number;
  entriesApplied: number;
  entriesReceived: number;
  masterCpu: number;
  backupCpu: number;
  redisCpu: number;
  lag: Percentiles;
  missing: number;
  healthLag: { p50?: number; p99?: number };
  gaps: number;
  resyncs: number;
  snapshots: number;
  reconnects: number;
  unboundOrIgnored: number;
  drainMs: number;
  caughtUp: boolean;
  masterGc: GcStats;
  backupGc: GcStats;
  masterTable: number;
  backupTable: number;
  masterHeapMb: number;
  backupHeapMb: number;
}

/** Backup counters that say something went wrong (or a resync happened). */
const trouble = (h: SyncHealthView) => ({
  gaps: h.gaps ?? 0,
  resyncs: h.resyncsRequested ?? 0,
  snapshots: h.snapshotsApplied ?? 0,
  reconnects: h.reconnects,
  unboundOrIgnored: (h.entriesUnbound ?? 0) + (h.entriesIgnored ?? 0),
});

async function syncPhase(
  master: Child,
  backup: Child,
  redisPid: number,
  name: string,
  entriesPerSecond: number,
  warmup: number,
  seconds: number,
): Promise<SyncPhase> {
  const edges: Promise<[BackupStats, number]>[] = [];
  const off = master.on((m) => {
    if (m.type !== 'edge') return;
    const redisCpu = procCpuMs(redisPid);
    edges.push(
      backup.request({ type: 'stats' }, 'stats').then((s) => [s as unknown as BackupStats, redisCpu]),
    );
  });
  const masterFile = join(work, `${name}-master.bin`);
  const ran = await master.request(
    { type: 'run', rate: entriesPerSecond / ENTRIES_PER_CLIENT, warmup, seconds, file: masterFile },
    'ran',
  );
  off();
  const [[b0, redis0], [b1, redis1]] = await Promise.all(edges);
  const first = ran.first as MasterSnapshot;
  const last = ran.last as MasterSnapshot;
  const done = ran.done as MasterSnapshot;

  // Drain: until the backup has seen the master's last message (and so applied it: it applies
  // received messages before it answers).
  const drainStart = wallNow();
  let caughtUp = false;
  let final = b1;
  while (wallNow() - drainStart < 20_000) {
    final = (await backup.request({ type: 'stats' }, 'stats')) as unknown as BackupStats;
    const peer = final.health.directors?.find((d) => d.directorId === 'bench-master');
    if (peer && peer.lastSequence >= done.lastSequence) {
      caughtUp = true;
      break;
    }
    await sleep(20);
  }
  const drainMs = wallNow() - drainStart;

  const backupFile = join(work, `${name}-backup.bin`);
  const dumped = await backup.request(
    { type: 'dump', file: backupFile, from: first.client, to: last.client, fromT: first.t, toT: last.t },
    'dumped',
  );
  const at = (file: string) => {
    const b = readFileSync(file);
    return new Float64Array(b.buffer, b.byteOffset, b.byteLength / 8);
  };
  const scheduled = at(masterFile);
  const visible = at(backupFile);
  const lags: number[] = [];
  let missing = 0;
  for (let i = 0; i < scheduled.length; i++) {
    if (visible[i] === 0) missing++;
    else lags.push(visible[i] - scheduled[i]);
  }
  const mSeconds = (last.t - first.t) / 1000;
  const bSeconds = (b1.t - b0.t) / 1000;
  const h0 = b0.health;
  const h1 = b1.health;
  const t0 = trouble(h0);
  const t2 = trouble(final.health);
  return {
    name,
    load: entriesPerSecond > 0 ? `paced ${fmtInt(entriesPerSecond)}/s` : 'max',
    seconds: mSeconds,
    clients: last.client - first.client,
    entriesSent: last.entriesSent - first.entriesSent,
    messagesSent: last.messagesSent - first.messagesSent,
    bytes: last.bytes - first.bytes,
    publishErrors: done.publishErrors,
    backupSeconds: bSeconds,
    entriesApplied: (h1.entriesApplied ?? 0) - (h0.entriesApplied ?? 0),
    entriesReceived: (h1.entriesReceived ?? 0) - (h0.entriesReceived ?? 0),
    masterCpu: (last.cpuMs - first.cpuMs) / (last.t - first.t),
    backupCpu: (b1.cpuMs - b0.cpuMs) / (b1.t - b0.t),
    redisCpu: (redis1 - redis0) / (b1.t - b0.t),
    lag: percentiles(lags),
    missing,
    healthLag: { p50: final.health.lagP50Ms, p99: final.health.lagP99Ms },
    gaps: t2.gaps - t0.gaps,
    resyncs: t2.resyncs - t0.resyncs,
    snapshots: t2.snapshots - t0.snapshots,
    reconnects: t2.reconnects - t0.reconnects,
    unboundOrIgnored: t2.unboundOrIgnored - t0.unboundOrIgnored,
    drainMs,
    caughtUp,
    masterGc: ran.gc as GcStats,
    backupGc: dumped.gc as GcStats,
    masterTable: ran.entries as number,
    backupTable: dumped.entries as number,
    masterHeapMb: ran.heapMb as number,
    backupHeapMb: dumped.heapMb as number,
  };
}

interface CeilingPhase {
  name: string;
  load: string;
  seconds: number;
  published: number;
  received: number;
  bytes: number;
  errors: number;
  pubCpu: number;
  subCpu: number;
  redisCpu: number;
  latency: Percentiles;
}

async function ceilingPhase(
  pub: Child,
  sub: Child,
  redisPid: number,
  name: string,
  size: number,
  rate: number,
  warmup: number,
  seconds: number,
): Promise<CeilingPhase> {
  const edges: Promise<[Msg, number]>[] = [];
  const off = pub.on((m) => {
    if (m.type !== 'edge') return;
    const redisCpu = procCpuMs(redisPid);
    edges.push(sub.request({ type: 'stats' }, 'stats').then((s) => [s, redisCpu]));
  });
  const ran = await pub.request({ type: 'run', size, rate, warmup, seconds }, 'ran');
  off();
  const [[s0, redis0], [s1, redis1]] = await Promise.all(edges);
  const first = ran.first as { t: number; published: number; cpuMs: number };
  const last = ran.last as { t: number; published: number; cpuMs: number };
  await sleep(200);
  const latency = (await sub.request(
    { type: 'latency', from: first.t, to: last.t },
    'latency',
  )) as unknown as Percentiles;
  const st = (s: Msg, k: string) => s[k] as number;
  return {
    name,
    load: rate > 0 ? `paced ${fmtInt(rate)} msg/s` : 'max',
    seconds: (last.t - first.t) / 1000,
    published: last.published - first.published,
    received: st(s1, 'received') - st(s0, 'received'),
    bytes: st(s1, 'bytes') - st(s0, 'bytes'),
    errors: ran.errors as number,
    pubCpu: (last.cpuMs - first.cpuMs) / (last.t - first.t),
    subCpu: (st(s1, 'cpuMs') - st(s0, 'cpuMs')) / (st(s1, 't') - st(s0, 't')),
    redisCpu: (redis1 - redis0) / (st(s1, 't') - st(s0, 't')),
    latency,
  };
}

// ---------------------------------------------------------------------------------------------------
// output

function fmtInt(n: number): string {
  if (!Number.isFinite(n)) return '–';
  return Math.round(n).toLocaleString('en-US');
}
const fmtMs = (n: number | undefined, digits = 1) =>
  n === undefined || !Number.isFinite(n) ? '–' : `${n.toFixed(digits)} ms`;
const fmtPct = (n: number) => (Number.isFinite(n) ? `${Math.round(n * 100)}%` : '–');

function table(title: string, header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
  const rule = widths.map((w) => '─'.repeat(w)).join('  ');
  return [title, line(header), rule, ...rows.map(line)].join('\n');
}

function progress(text: string): void {
  process.stderr.write(`· ${text}\n`);
}

async function cleanup(): Promise<void> {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await redis?.stop();
  redis = undefined;
  if (work !== '' && !process.env.BENCH_KEEP) rmSync(work, { recursive: true, force: true });
}

async function orchestrate(): Promise<void> {
  process.on('SIGINT', () => void cleanup().finally(() => process.exit(130)));
  const started = wallNow();
  const loadAtStart = loadavg();
  work = mkdtempSync(join(tmpdir(), 'ipvs-sync-bench-'));
  redis = await startRedisServer();
  progress(`redis-server ${redis.url} (pid ${redis.pid}), scratch ${work}`);
  const master = await startChild('master', redis.url);
  const backup = await startChild('backup', redis.url);
  // The backup's start resync is answered by a (still empty) snapshot.
  const until = wallNow() + 10_000;
  while (true) {
    const s = (await backup.request({ type: 'stats' }, 'stats')) as unknown as BackupStats;
    if ((s.health.snapshotsApplied ?? 0) >= 1) break;
    if (wallNow() > until) throw new Error('bench: the backup got no start snapshot within 10 s');
    await sleep(20);
  }

  progress(`sync "max": ${WARMUP_SECONDS} s warm-up + ${SECONDS} s`);
  const max = await syncPhase(master, backup, redis.pid, 'max', 0, WARMUP_SECONDS, SECONDS);
  progress(
    `sync "paced" at ${fmtInt(PACED_RATE)} entries/s: ${Math.min(1, WARMUP_SECONDS)} s warm-up + ${SECONDS} s`,
  );
  const paced = await syncPhase(
    master,
    backup,
    redis.pid,
    'paced',
    PACED_RATE,
    Math.min(1, WARMUP_SECONDS),
    SECONDS,
  );
  await Promise.all([master.exit(), backup.exit()]);

  const size = Math.round(max.bytes / Math.max(1, max.messagesSent));
  const pacedMsgRate = paced.messagesSent / paced.seconds;
  const sub = await startChild('sub', redis.url);
  const pub = await startChild('pub', redis.url);
  progress(`ceiling: raw PUBLISH of ${size}-byte messages, max then paced at ${fmtInt(pacedMsgRate)} msg/s`);
  const rawMax = await ceilingPhase(
    pub,
    sub,
    redis.pid,
    'max',
    size,
    0,
    CEILING_WARMUP_SECONDS,
    CEILING_SECONDS,
  );
  const rawPaced = await ceilingPhase(
    pub,
    sub,
    redis.pid,
    'paced',
    size,
    pacedMsgRate,
    CEILING_WARMUP_SECONDS,
    CEILING_SECONDS,
  );
  await Promise.all([pub.exit(), sub.exit()]);

  // ------------------------------------------------------------------------------------------------
  const entriesPerMsg = max.entriesSent / Math.max(1, max.messagesSent);
  const out: string[] = [];
  out.push(
    `conn-sync master → backup over Redis pub/sub (redis-server ${redis.url}), ${cpus().length} CPUs, ` +
      `load average ${loadAtStart[0].toFixed(2)} at the start, ${loadavg()[0].toFixed(2)} at the end ` +
      '(other work on the machine competes with these processes)',
  );
  out.push(
    `workload: persistent TCP service (rr -p 300, 3 dests); per client 4 engine calls → ${ENTRIES_PER_CLIENT} entries ` +
      `(template on each of 4 packets; connection on its 3rd packet and at FIN_WAIT)`,
  );
  if (PROFILE) out.push('BENCH_CPU_PROF=1: master and backup run under --cpu-prof; rates are NOT comparable');
  out.push('');
  const syncRows = [max, paced].map((p) => [
    p.name,
    p.load,
    `${p.seconds.toFixed(1)} s`,
    fmtInt((p.clients * 4) / p.seconds),
    fmtInt(p.entriesSent / p.seconds),
    fmtInt(p.entriesApplied / p.backupSeconds),
    fmtInt(p.messagesSent / p.seconds),
    fmtInt(p.bytes / Math.max(1, p.messagesSent)),
    (p.entriesSent / Math.max(1, p.messagesSent)).toFixed(1),
  ]);
  out.push(
    table(
      'Throughput (measured window; "applied/s" counted on the backup over the same window)',
      [
        'phase',
        'master load',
        'window',
        'engine calls/s',
        'entries/s sent',
        'entries/s applied',
        'msgs/s',
        'bytes/msg',
        'entries/msg',
      ],
      syncRows,
    ),
  );
  out.push('');
  const gcText = (g: GcStats) => `${g.count} / ${g.totalMs.toFixed(0)} ms / ${g.maxMs.toFixed(0)} ms`;
  out.push(
    table(
      'Processes over the window (CPU: share of one core; GC: pauses count / total / longest; table and heap at the end)',
      [
        'phase',
        'master CPU',
        'backup CPU',
        'redis CPU',
        'master GC',
        'backup GC',
        'master table',
        'backup table',
        'master heap',
        'backup heap',
      ],
      [max, paced].map((p) => [
        p.name,
        fmtPct(p.masterCpu),
        fmtPct(p.backupCpu),
        fmtPct(p.redisCpu),
        gcText(p.masterGc),
        gcText(p.backupGc),
        fmtInt(p.masterTable),
        fmtInt(p.backupTable),
        `${p.masterHeapMb.toFixed(0)} MB`,
        `${p.backupHeapMb.toFixed(0)} MB`,
      ]),
    ),
  );
  out.push('');
  const lagRows = [max, paced].map((p) => [
    p.name,
    fmtInt(p.lag.n),
    fmtMs(p.lag.p50),
    fmtMs(p.lag.p90),
    fmtMs(p.lag.p99),
    fmtMs(p.lag.max),
    fmtInt(p.missing),
    `${fmtMs(p.healthLag.p50, 0)} / ${fmtMs(p.healthLag.p99, 0)}`,
    p.caughtUp ? fmtMs(p.drainMs, 0) : `not in ${fmtMs(p.drainMs, 0)}`,
  ]);
  out.push(
    table(
      'Lag, end to end: master Schedule call → the template in the backup table (clients of the window)',
      ['phase', 'clients', 'p50', 'p90', 'p99', 'max', 'missing', 'health p50/p99*', 'catch-up after end'],
      lagRows,
    ),
  );
  out.push(
    '  * sync health lag window: sent_at_ms → received, ms resolution, last 1024 messages at the end of the phase',
  );
  out.push('');
  const integrityRows = [max, paced].map((p) => [
    p.name,
    fmtInt(p.entriesSent),
    fmtInt(p.entriesReceived),
    fmtInt(p.entriesApplied),
    String(p.gaps),
    String(p.resyncs),
    String(p.snapshots),
    String(p.reconnects),
    String(p.publishErrors),
    String(p.unboundOrIgnored),
  ]);
  out.push(
    table(
      'Integrity (deltas over the phase, through catch-up)',
      [
        'phase',
        'entries sent',
        'received (window)',
        'applied (window)',
        'gaps',
        'resync requests',
        'snapshots applied',
        'reconnects',
        'publish errors',
        'unbound+ignored',
      ],
      integrityRows,
    ),
  );
  out.push('');
  const rawRows = [rawMax, rawPaced].map((r) => [
    r.name,
    r.load,
    `${r.seconds.toFixed(1)} s`,
    fmtInt(r.published / r.seconds),
    fmtInt(r.received / r.seconds),
    (r.bytes / Math.max(1, r.received)).toFixed(0),
    `${((r.bytes / r.seconds) * 8e-6).toFixed(0)} Mbit/s`,
    fmtInt((r.received / r.seconds) * entriesPerMsg),
    `${fmtMs(r.latency.p50, 2)} / ${fmtMs(r.latency.p99, 2)}`,
    fmtPct(r.pubCpu),
    fmtPct(r.subCpu),
    fmtPct(r.redisCpu),
  ]);
  out.push(
    table(
      `Ceiling: raw Redis pub/sub of ${size}-byte messages between two processes (publisher → subscriber)`,
      [
        'phase',
        'load',
        'window',
        'msgs/s published',
        'msgs/s received',
        'bytes/msg',
        'payload',
        `≙ entries/s (×${entriesPerMsg.toFixed(1)})`,
        'latency p50/p99',
        'pub CPU',
        'sub CPU',
        'redis CPU',
      ],
      rawRows,
    ),
  );
  out.push('');
  const ceilingEntries = (rawMax.received / rawMax.seconds) * entriesPerMsg;
  const applied = max.entriesApplied / max.backupSeconds;
  const sustained = paced.entriesApplied / paced.backupSeconds;
  const pacedOk = paced.caughtUp && paced.missing === 0 && sustained >= 0.95 * PACED_RATE;
  const verdict = (ok: boolean) => (ok ? 'MET' : 'MISSED');
  out.push(
    table(
      'Goals',
      ['goal', 'target', 'measured', 'verdict'],
      [
        [
          'replication throughput (max phase, applied on the backup)',
          `≥ ${fmtInt(GOAL_ENTRIES_PER_S)} entries/s`,
          `${fmtInt(applied)} entries/s (${fmtPct(applied / ceilingEntries)} of the pub/sub ceiling)`,
          verdict(applied >= GOAL_ENTRIES_PER_S),
        ],
        [
          `sustained at ${fmtInt(PACED_RATE)} entries/s (paced phase)`,
          'applied ≥ 95% of offered, caught up',
          `${fmtInt(sustained)} entries/s applied, ${paced.missing} missing`,
          verdict(pacedOk),
        ],
        [
          `lag p99 at ${fmtInt(PACED_RATE)} entries/s (end to end)`,
          `≤ ${GOAL_P99_LAG_MS} ms`,
          fmtMs(paced.lag.p99),
          verdict(paced.lag.p99 <= GOAL_P99_LAG_MS && paced.missing === 0),
        ],
        [
          'no gap / resync during the run',
          '0',
          `${max.gaps + paced.gaps} gaps, ${max.resyncs + paced.resyncs} resync requests`,
          verdict(max.gaps + paced.gaps + max.resyncs + paced.resyncs === 0),
        ],
      ],
    ),
  );
  out.push('');
  out.push(`total ${((wallNow() - started) / 1000).toFixed(1)} s`);
  process.stdout.write(`${out.join('\n')}\n`);

  if (PROFILE) {
    for (const child of [master, backup]) {
      const file = child.profileDir && mainProfile(child.profileDir);
      if (!file) continue;
      process.stdout.write(`\n── ${child.role} ──\n${summariseProfile(analyseProfile(file), 20)}\n`);
    }
  }
}

// ---------------------------------------------------------------------------------------------------

const role = process.argv[2];
const mains: Record<string, () => Promise<void>> = {
  master: masterMain,
  backup: backupMain,
  pub: pubMain,
  sub: subMain,
};
if (role !== undefined && mains[role]) {
  process.on('disconnect', () => process.exit(0));
  mains[role]().catch(fail);
} else {
  orchestrate().then(cleanup, fail);
}
