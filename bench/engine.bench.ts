/**
 * `npm run bench`: in-process decisions per second of the memory engine, through the public Engine API.
 *
 * Section 1 — every scheduler at 10, 100, 1,000 and 10,000 destinations (weights 1..5). A decision is
 * one `engine.schedule()` of a new TCP connection (first packet: SYN). The engine carries a live load:
 * a sliding window of WINDOW connections — after each batch of schedules the oldest connections are
 * closed with `engine.closeConnection()`, so the connection table stays bounded. Schedule calls and
 * close calls are timed separately (per batch, so the timer itself costs next to nothing). The four
 * sizes of a scheduler are measured in interleaved slices (median slice reported), so a busy box
 * slows every size alike and the growth ratio stays meaningful.
 * lblc, lblcr and dh (which choose by destination address) run on a fwmark service with 1,000 distinct
 * virtual addresses; the others on one TCP virtual service. Client addresses and ports are all distinct
 * within the window, so no tuple collides with a live connection (a collision would reuse it).
 *
 * Section 2 — the mh lookup table (4093 slots): time to add the last destination, and a rebuild.
 *
 * Section 3 — 1,000,000 live connections in one process (wlc, 100 dests): schedule them without
 * closing, heap after a full GC, then move the manual clock past every timeout and expire them all
 * through `engine.tick()`; every counter must be back to zero.
 *
 * The clock is a ManualClock standing still during section 1: no connection timer falls due, closes
 * cancel theirs, so the timer heap never holds more than the window (checked in every cell).
 */
import { cpus, loadavg } from 'node:os';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { ManualClock } from '../src/engine/clock.js';
import type { ScheduleRequest, ServiceSpec } from '../src/engine/engine.js';
import { MemoryEngine } from '../src/engine/memory/memory-engine.js';
import { MH_TAB_SIZE } from '../src/schedulers/mh.js';
import { SCHEDULER_NAMES, type SchedulerName } from '../src/schedulers/registry.js';

const SIZES = [10, 100, 1_000, 10_000] as const;
/** Live connections kept while measuring. */
const WINDOW = 2_000;
/** Schedules per timed batch (then as many closes). */
const BATCH = 128;
/** Distinct client tuples cycled through (≫ WINDOW + BATCH, so no live tuple is ever reused). */
const POOL = 1 << 16;
/** Distinct virtual addresses for the fwmark service. */
const VIRTUALS = 1_000;
const CELL_MS = Number(process.env.BENCH_CELL_MS ?? 400);
const WARMUP_MS = Math.max(50, CELL_MS / 4);
const SLICES = 8;
/** The project's aim: cost per decision at 10,000 dests at most this many times the cost at 10. */
const GROWTH_AIM = 3;
const MILLION = 1_000_000;
/** Timed repetitions of the last destination's add and of an mh rebuild (median kept). */
const ADD_REPS = 5;

/** Schedulers that hash or cache by the packet's destination address: fed by a fwmark service. */
const BY_VADDR: ReadonlySet<SchedulerName> = new Set<SchedulerName>(['lblc', 'lblcr', 'dh']);
const VIP = '192.0.2.1';
const VPORT = 80;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const now = () => performance.now();
const weightOf = (i: number) => 1 + ((i * 3) % 5);
const destAddress = (i: number) => `172.16.${(i + 1) >> 8}.${(i + 1) & 255}`;
const clientOf = (k: number) =>
  `10.${(k >> 16) & 255}.${(k >> 8) & 255}.${k & 255}:${1024 + ((k * 7919) % 60_000)}`;
const virtualOf = (k: number) => `198.18.${(k % VIRTUALS) >> 8}.${(k % VIRTUALS) & 255}:${VPORT}`;

function requestPool(byVaddr: boolean): ScheduleRequest[] {
  const pool: ScheduleRequest[] = [];
  for (let k = 0; k < POOL; k++) {
    pool.push(
      byVaddr
        ? { protocol: 'tcp', fwmark: 1, client: clientOf(k), virtual: virtualOf(k * 7) }
        : { protocol: 'tcp', client: clientOf(k), virtual: `${VIP}:${VPORT}` },
    );
  }
  return pool;
}

const POOLS = { plain: requestPool(false), byVaddr: requestPool(true) };

/** FIFO of live connection ids. */
class Fifo {
  private items: string[] = [];
  private head = 0;

  get size(): number {
    return this.items.length - this.head;
  }

  push(id: string): void {
    this.items.push(id);
  }

  shift(): string {
    const id = this.items[this.head++];
    if (this.head > 4096) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return id;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

interface Cell {
  scheduler: SchedulerName;
  dests: number;
  window: number;
  batch: number;
  /** Median over slices of schedule() calls per second. */
  scheduleRate: number;
  closeRate: number;
  decisions: number;
  failures: number;
  /** Destinations that got at least one connection. */
  used: number;
  /** editService binding the scheduler to the first dests at once (its init). */
  bindMs: number;
  /** addDestination of the last (N-th) destination, with the scheduler bound. */
  lastAddMs: number;
  rebuildMs: number;
  maxTimers: number;
}

function serviceSpec(shape: SchedulerName, scheduler: SchedulerName | 'none' = shape): ServiceSpec {
  return BY_VADDR.has(shape)
    ? { fwmark: 1, scheduler }
    : { protocol: 'tcp', address: VIP, port: VPORT, scheduler };
}

const addDest = (engine: MemoryEngine, service: string, i: number) =>
  engine.addDestination(service, { address: destAddress(i), port: 8080, weight: weightOf(i) });

/** Median time of `reps` mh rebuilds, each forced by an edit of one destination (same weight). */
async function rebuildMs(engine: MemoryEngine, service: string, reps = ADD_REPS): Promise<number> {
  const times: number[] = [];
  const dest = `${destAddress(0)}:8080`;
  for (let r = 0; r < reps; r++) {
    const t = now();
    await engine.editDestination(service, dest, { weight: weightOf(0) });
    times.push(now() - t);
  }
  return median(times);
}

/**
 * One (scheduler, N) cell: an engine with one service and N destinations under a sliding window of
 * live connections. The first dests go in with no scheduler bound, then the scheduler is bound (one
 * init) and the rest are added one by one, the last timed — the state is the one `ipvsadm -a` one at
 * a time would leave. mh is bound at most at 4093 dests, so beyond that its adds are refused as in
 * the kernel and the table stays the one built at 4093.
 */
class CellRun {
  private readonly live = new Fifo();
  private k = 0;
  private failures = 0;
  private maxTimers = 0;
  private readonly sched: number[] = [];
  private readonly close: number[] = [];
  private decisions = 0;
  private window = WINDOW;
  private batch = BATCH;
  private bindMs = 0;
  private lastAddMs = 0;
  private readonly pool: ScheduleRequest[];

  private constructor(
    readonly scheduler: SchedulerName,
    readonly dests: number,
    private readonly engine: MemoryEngine,
    private readonly service: string,
  ) {
    this.pool = BY_VADDR.has(scheduler) ? POOLS.byVaddr : POOLS.plain;
  }

  static async create(scheduler: SchedulerName, n: number): Promise<CellRun> {
    const engine = new MemoryEngine({ clock: new ManualClock(0) });
    const { key } = await engine.addService(serviceSpec(scheduler, 'none'));
    const run = new CellRun(scheduler, n, engine, key);
    const bindAt = scheduler === 'mh' ? Math.min(n - 1, MH_TAB_SIZE - 1) : n - 1;
    let totalWeight = 0;
    for (let i = 0; i < n; i++) {
      if (i === bindAt) {
        const t = now();
        await engine.editService(key, { scheduler });
        run.bindMs = now() - t;
      }
      await addDest(engine, key, i);
      totalWeight += weightOf(i);
    }
    // The N-th add, timed: deleted and added again (from the trash) ADD_REPS times, median kept.
    const lastKey = `${destAddress(n - 1)}:8080`;
    const adds: number[] = [];
    for (let r = 0; r < ADD_REPS; r++) {
      await engine.deleteDestination(key, lastKey);
      const t = now();
      await addDest(engine, key, n - 1);
      adds.push(now() - t);
    }
    run.lastAddMs = median(adds);
    // ovf skips a dest once active > weight: keep the live load well inside the total weight.
    if (scheduler === 'ovf') {
      run.window = Math.min(WINDOW, Math.floor(totalWeight / 2));
      run.batch = Math.max(1, Math.min(BATCH, Math.floor(totalWeight / 4)));
    }
    await run.scheduleN(run.window); // the live load
    return run;
  }

  private async scheduleN(count: number): Promise<void> {
    const { engine, live, pool } = this;
    for (let i = 0; i < count; i++) {
      try {
        live.push((await engine.schedule(pool[this.k++ & (POOL - 1)])).connection);
      } catch {
        this.failures++;
      }
    }
  }

  private async closeDown(to: number): Promise<number> {
    let closed = 0;
    while (this.live.size > to) {
      await this.engine.closeConnection(this.live.shift());
      closed++;
    }
    return closed;
  }

  /** Batches for `ms` of measured time; `record` keeps the slice's rates. */
  async slice(ms: number, record = true): Promise<void> {
    let schedTime = 0;
    let closeTime = 0;
    let scheduled = 0;
    let closed = 0;
    const failuresBefore = this.failures;
    while (schedTime + closeTime < ms) {
      const t0 = now();
      await this.scheduleN(this.batch);
      const t1 = now();
      closed += await this.closeDown(this.window);
      const t2 = now();
      schedTime += t1 - t0;
      closeTime += t2 - t1;
      scheduled += this.batch;
      this.maxTimers = Math.max(this.maxTimers, this.engine.state.timers.size);
    }
    if (!record) {
      this.failures = failuresBefore;
      return;
    }
    this.sched.push((scheduled / schedTime) * 1000);
    this.close.push((closed / closeTime) * 1000);
    this.decisions += scheduled;
  }

  async finish(): Promise<Cell> {
    const { engine, service, scheduler } = this;
    const status = await engine.getService(service);
    const used = status.destinations.filter((d) => d.stats.conns > 0).length;
    const rebuild = scheduler === 'mh' ? await rebuildMs(engine, service) : 0;
    if (this.maxTimers > this.window + this.batch + 4) {
      throw new Error(
        `${scheduler}/${this.dests}: timer heap grew to ${this.maxTimers} (window ${this.window})`,
      );
    }
    await this.closeDown(0);
    await engine.close();
    return {
      scheduler,
      dests: this.dests,
      window: this.window,
      batch: this.batch,
      scheduleRate: median(this.sched),
      closeRate: median(this.close),
      decisions: this.decisions,
      failures: this.failures,
      used,
      bindMs: this.bindMs,
      lastAddMs: this.lastAddMs,
      rebuildMs: rebuild,
      maxTimers: this.maxTimers,
    };
  }
}

/** A scheduler at every size, slices interleaved across sizes so load on the box hits all alike. */
async function measureScheduler(scheduler: SchedulerName, cellMs: number): Promise<Cell[]> {
  const runs: CellRun[] = [];
  for (const n of SIZES) runs.push(await CellRun.create(scheduler, n));
  for (const r of runs) await r.slice(WARMUP_MS, false);
  for (let s = 0; s < SLICES; s++) for (const r of runs) await r.slice(cellMs / SLICES);
  const cells: Cell[] = [];
  for (const r of runs) cells.push(await r.finish());
  return cells;
}

// ---------------------------------------------------------------- output

type Align = 'l' | 'r';

function table(headers: string[], rows: string[][], align: Align[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (align[i] === 'l' ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(headers), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}

const int = (x: number) => Math.round(x).toLocaleString('en-US');
const fixed = (x: number, d: number) => x.toFixed(d);
const mb = (bytes: number) => `${fixed(bytes / 2 ** 20, 1)} MB`;
const out = (text = '') => process.stdout.write(`${text}\n`);

function heading(title: string): void {
  out();
  out(title);
  out('='.repeat(title.length));
}

// ---------------------------------------------------------------- section 1

async function warmUp(): Promise<void> {
  for (const s of SCHEDULER_NAMES) {
    const r = await CellRun.create(s, 10);
    await r.slice(WARMUP_MS / 2);
    await r.finish();
  }
}

async function decisions(): Promise<Cell[]> {
  heading('1. Decisions per second: engine.schedule() of a new TCP connection (in-process, memory engine)');
  out(
    `node ${process.version}, ${process.platform}/${process.arch}, ${cpus().length} CPUs, ` +
      `load average ${loadavg()[0].toFixed(2)} at start; ManualClock (standing still)`,
  );
  out(
    `live load: sliding window of ${int(WINDOW)} connections (ovf: half its total weight, see below); ` +
      `batches of ${BATCH} schedules, then closes of the oldest`,
  );
  out(
    `weights 1..5; lblc, lblcr, dh: fwmark service, ${int(VIRTUALS)} virtual addresses; others: tcp ${VIP}:${VPORT}`,
  );
  out(
    `each cell: warm-up ${WARMUP_MS} ms, then ${CELL_MS} ms in ${SLICES} slices interleaved across the sizes ` +
      `(median slice shown)`,
  );
  const cells: Cell[] = [];
  const t0 = now();
  await warmUp();
  for (const s of SCHEDULER_NAMES) {
    cells.push(...(await measureScheduler(s, CELL_MS)));
    process.stderr.write(`  ${s} done (${fixed((now() - t0) / 1000, 1)} s)\n`);
  }
  const cell = (s: string, n: number) => cells.find((c) => c.scheduler === s && c.dests === n)!;
  const over: string[] = [];

  out();
  out('schedule() calls per second (higher is better); growth = cost per decision at 10,000 / at 10');
  const rows = SCHEDULER_NAMES.map((s) => {
    const growth = cell(s, 10).scheduleRate / cell(s, 10_000).scheduleRate;
    if (growth > GROWTH_AIM) over.push(`${s} (${fixed(growth, 2)}x)`);
    return [
      s,
      BY_VADDR.has(s) ? `fwmark, ${int(VIRTUALS)} VIPs` : 'tcp VIP',
      ...SIZES.map((n) => int(cell(s, n).scheduleRate)),
      `${fixed(growth, 2)}x`,
      growth > GROWTH_AIM ? `EXCEEDS ${GROWTH_AIM}x` : 'ok',
    ];
  });
  out(
    table(
      ['scheduler', 'service', ...SIZES.map((n) => `${int(n)} dests`), 'growth', `aim <= ${GROWTH_AIM}x`],
      rows,
      ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'l'],
    ),
  );
  out();
  out(
    over.length === 0
      ? `Every scheduler stays within ${GROWTH_AIM}x from 10 to 10,000 destinations.`
      : `Cost per decision grows more than ${GROWTH_AIM}x from 10 to 10,000 destinations for: ${over.join(', ')}.`,
  );
  if (over.some((o) => o.startsWith('mh '))) {
    out(
      `mh: past ${MH_TAB_SIZE} dests its table is not rebuilt (section 2); the kept table's slots name dests`,
    );
    out('    whose list positions have since shifted, so each lookup falls back to a search of the list.');
  }

  out();
  out('Per cell: microseconds per schedule() and per closeConnection(), and destinations ever chosen');
  const detail = SCHEDULER_NAMES.map((s) => [
    s,
    ...SIZES.flatMap((n) => {
      const c = cell(s, n);
      return [fixed(1e6 / c.scheduleRate, 2), fixed(1e6 / c.closeRate, 2), int(c.used)];
    }),
  ]);
  out(
    table(
      ['scheduler', ...SIZES.flatMap((n) => [`us/sch@${int(n)}`, `us/cls@${int(n)}`, `used@${int(n)}`])],
      detail,
      ['l', ...SIZES.flatMap((): Align[] => ['r', 'r', 'r'])],
    ),
  );

  out();
  out(`Adding the N-th destination with the scheduler bound (addDestination, ms, median of ${ADD_REPS};`);
  out('the hooks rebuild what the scheduler keeps per destination set), and cell totals');
  out(
    table(
      [
        'scheduler',
        ...SIZES.map((n) => `add@${int(n)}`),
        'decisions timed',
        'failures',
        'window@10/100/1k/10k',
        'max timers',
      ],
      SCHEDULER_NAMES.map((s) => {
        const cs = SIZES.map((n) => cell(s, n));
        return [
          s,
          ...cs.map((c) => fixed(c.lastAddMs, 3)),
          int(cs.reduce((a, c) => a + c.decisions, 0)),
          int(cs.reduce((a, c) => a + c.failures, 0)),
          cs.map((c) => int(c.window)).join('/'),
          int(Math.max(...cs.map((c) => c.maxTimers))),
        ];
      }),
      ['l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r'],
    ),
  );
  out('(ovf skips a destination once active > weight, so its window is capped at half the total weight');
  out(' and its batches at a quarter of it, to keep every decision answerable.)');
  return cells;
}

// ---------------------------------------------------------------- section 2

async function mhBuild(cells: Cell[]): Promise<void> {
  heading(`2. mh lookup table build (${MH_TAB_SIZE} slots)`);
  const rows: string[][] = [];
  for (const n of SIZES) {
    const c = cells.find((x) => x.scheduler === 'mh' && x.dests === n)!;
    rows.push([
      int(n),
      fixed(c.lastAddMs, 3),
      fixed(c.rebuildMs, 3),
      int(c.used),
      n > MH_TAB_SIZE
        ? `REFUSED: ${int(n)} > ${MH_TAB_SIZE} slots; the table built at ${MH_TAB_SIZE} dests is kept`
        : 'built',
    ]);
  }
  // The largest table mh will build: all 4093 dests bound at once, then the last one deleted + re-added.
  const engine = new MemoryEngine({ clock: new ManualClock(0) });
  const { key } = await engine.addService(serviceSpec('mh', 'none'));
  for (let i = 0; i < MH_TAB_SIZE; i++) await addDest(engine, key, i);
  let t = now();
  await engine.editService(key, { scheduler: 'mh' });
  const initMs = now() - t;
  const last = `${destAddress(MH_TAB_SIZE - 1)}:8080`;
  const adds: number[] = [];
  for (let r = 0; r < ADD_REPS; r++) {
    await engine.deleteDestination(key, last);
    t = now();
    await addDest(engine, key, MH_TAB_SIZE - 1);
    adds.push(now() - t);
  }
  const addMs = median(adds);
  const rebuild = await rebuildMs(engine, key);
  rows.splice(3, 0, [
    int(MH_TAB_SIZE),
    fixed(addMs, 3),
    fixed(rebuild, 3),
    '-',
    `built (max; init ${fixed(initMs, 3)} ms)`,
  ]);
  await engine.close();
  out(table(['dests', 'last add ms', 'rebuild ms', 'used', 'table'], rows, ['r', 'r', 'r', 'r', 'l']));
  for (const line of [
    `last add = addDestination of the N-th dest (rebuilds the table; median of ${ADD_REPS} delete + re-add);`,
    `rebuild = median of ${ADD_REPS} editDestination calls (same weight; every edit rebuilds);`,
    'used = dests that got a connection in section 1. With weights 1..5 one round of turns fills the',
    `${MH_TAB_SIZE} slots at ~1,360 dests, so dests later in the list get no slot (as in the kernel).`,
    `Beyond ${MH_TAB_SIZE} dests mh keeps its old table: dests added since are never chosen.`,
  ])
    out(line);
}

// ---------------------------------------------------------------- section 3

async function million(): Promise<void> {
  heading(`3. ${int(MILLION)} live connections in one process (wlc, 100 destinations, ManualClock)`);
  const clock = new ManualClock(0);
  const engine = new MemoryEngine({ clock });
  const { key } = await engine.addService(serviceSpec('wlc'));
  for (let i = 0; i < 100; i++) await addDest(engine, key, i);
  const virtual = `${VIP}:${VPORT}`;
  gc();
  const heap0 = process.memoryUsage().heapUsed;
  const CHUNK = 10_000;
  let scheduleMs = 0;
  for (let base = 0; base < MILLION; base += CHUNK) {
    const reqs: ScheduleRequest[] = [];
    for (let k = base; k < base + CHUNK; k++) reqs.push({ protocol: 'tcp', client: clientOf(k), virtual });
    const t = now();
    for (const r of reqs) await engine.schedule(r);
    scheduleMs += now() - t;
  }
  gc();
  const mem1 = process.memoryUsage();
  let status = await engine.getService(key);
  const liveCount = status.destinations.reduce((a, d) => a + d.activeConns + d.inactiveConns, 0);

  const timeouts = await engine.getTimeouts();
  const advanceMs = (Math.max(timeouts.tcp, timeouts.tcpFin, timeouts.udp, 60) + 1) * 1000;
  clock.advance(advanceMs);
  const t = now();
  await engine.tick();
  const expireMs = now() - t;
  gc();
  const mem2 = process.memoryUsage();
  status = await engine.getService(key);
  const left = status.destinations.reduce(
    (a, d) => a + d.activeConns + d.inactiveConns + d.persistentConns,
    0,
  );
  const conns = (await engine.listConnections()).length;
  const timers = engine.state.timers.size;
  await engine.close();

  out(
    table(
      ['measure', 'value'],
      [
        ['schedule 1M (no closes; requests prebuilt)', `${fixed(scheduleMs / 1000, 2)} s`],
        ['decisions/s', int((MILLION / scheduleMs) * 1000)],
        ['live connections counted by dests', int(liveCount)],
        ['heap used before', mb(heap0)],
        ['heap used with 1M live (after GC)', mb(mem1.heapUsed)],
        ['heap per live connection', `${int((mem1.heapUsed - heap0) / MILLION)} bytes`],
        ['rss with 1M live', mb(mem1.rss)],
        ['clock advanced', `${int(advanceMs / 1000)} s (past every timeout)`],
        [
          'expire all via engine.tick()',
          `${fixed(expireMs / 1000, 2)} s (${int((MILLION / expireMs) * 1000)}/s)`,
        ],
        ['active+inactive+persistent left', int(left)],
        ['connections listed after', int(conns)],
        ['timers left (estimator)', int(timers)],
        ['heap used after expiry (after GC)', mb(mem2.heapUsed)],
      ],
      ['l', 'r'],
    ),
  );
  const ok = liveCount === MILLION && left === 0 && conns === 0;
  out(ok ? 'OK: 1,000,000 live, then every counter back to zero.' : 'FAILED: counters are not back to zero!');
  if (!ok) process.exitCode = 1;
}

const started = now();
const cells = await decisions();
await mhBuild(cells);
await million();
out();
out(
  `total bench time ${fixed((now() - started) / 1000, 1)} s; load average ${loadavg()[0].toFixed(2)} at end`,
);
