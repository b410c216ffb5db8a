/**
 * `npm run bench`: in-process decisions per second of the memory engine, through the public Engine API.
 *
 * Section 1 — every scheduler at 10, 100, 1,000 and 10,000 destinations (weights 1..5). A decision is
 * one `engine.schedule()` of a new TCP connection (first packet: SYN). The engine carries a live load:
 * a sliding window of WINDOW connections — after each batch of schedules the oldest connections are
 * closed with `engine.closeConnection()`, so the connection table stays bounded. Schedule calls and
 * close calls are timed separately (per batch, so the timer itself costs next to nothing).
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
  setupMs: number;
  lastAddMs: number;
  rebuildMs: number;
  maxTimers: number;
}

interface Rig {
  engine: MemoryEngine;
  service: string;
  setupMs: number;
  lastAddMs: number;
  totalWeight: number;
}

function serviceSpec(scheduler: SchedulerName | 'none'): ServiceSpec {
  return scheduler !== 'none' && BY_VADDR.has(scheduler)
    ? { fwmark: 1, scheduler }
    : { protocol: 'tcp', address: VIP, port: VPORT, scheduler };
}

/** A fresh engine with one service and `n` destinations added one by one (like `ipvsadm -a`). */
async function rig(scheduler: SchedulerName, n: number): Promise<Rig> {
  const engine = new MemoryEngine({ clock: new ManualClock(0) });
  const { key } = await engine.addService(serviceSpec(scheduler));
  let totalWeight = 0;
  let lastAddMs = 0;
  const t0 = now();
  for (let i = 0; i < n; i++) {
    const t = now();
    await engine.addDestination(key, { address: destAddress(i), port: 8080, weight: weightOf(i) });
    lastAddMs = now() - t;
    totalWeight += weightOf(i);
  }
  return { engine, service: key, setupMs: now() - t0, lastAddMs, totalWeight };
}

/** Median time of `reps` mh rebuilds, each forced by an edit of one destination (same weight). */
async function rebuildMs(engine: MemoryEngine, service: string, reps = 5): Promise<number> {
  const times: number[] = [];
  const dest = `${destAddress(0)}:8080`;
  for (let r = 0; r < reps; r++) {
    const t = now();
    await engine.editDestination(service, dest, { weight: weightOf(0) });
    times.push(now() - t);
  }
  return median(times);
}

async function runCell(scheduler: SchedulerName, n: number, cellMs: number): Promise<Cell> {
  const { engine, service, setupMs, lastAddMs, totalWeight } = await rig(scheduler, n);
  // ovf skips a dest once active > weight: keep the live load well inside the total weight.
  const window = scheduler === 'ovf' ? Math.min(WINDOW, Math.floor(totalWeight / 2)) : WINDOW;
  const batch = scheduler === 'ovf' ? Math.max(1, Math.min(BATCH, Math.floor(totalWeight / 4))) : BATCH;
  const pool = BY_VADDR.has(scheduler) ? POOLS.byVaddr : POOLS.plain;
  const live = new Fifo();
  let k = 0;
  let failures = 0;
  let maxTimers = 0;

  const scheduleN = async (count: number) => {
    for (let i = 0; i < count; i++) {
      try {
        live.push((await engine.schedule(pool[k++ & (POOL - 1)])).connection);
      } catch {
        failures++;
      }
    }
  };
  const closeDown = async (to: number) => {
    let closed = 0;
    while (live.size > to) {
      await engine.closeConnection(live.shift());
      closed++;
    }
    return closed;
  };
  /** Runs batches for `ms` of measured time; returns per-slice rates. */
  const run = async (ms: number, slices: number) => {
    const sched: number[] = [];
    const close: number[] = [];
    let decisions = 0;
    for (let s = 0; s < slices; s++) {
      let schedTime = 0;
      let closeTime = 0;
      let scheduled = 0;
      let closed = 0;
      while (schedTime + closeTime < ms / slices) {
        const t0 = now();
        await scheduleN(batch);
        const t1 = now();
        closed += await closeDown(window);
        const t2 = now();
        schedTime += t1 - t0;
        closeTime += t2 - t1;
        scheduled += batch;
        maxTimers = Math.max(maxTimers, engine.state.timers.size);
      }
      sched.push((scheduled / schedTime) * 1000);
      close.push((closed / closeTime) * 1000);
      decisions += scheduled;
    }
    return { sched, close, decisions };
  };

  await scheduleN(window); // the live load
  await run(WARMUP_MS, 1);
  failures = 0;
  const measured = await run(cellMs, SLICES);
  const status = await engine.getService(service);
  const used = status.destinations.filter((d) => d.stats.conns > 0).length;
  const rebuild = scheduler === 'mh' ? await rebuildMs(engine, service) : 0;
  if (maxTimers > window + batch + 4) {
    throw new Error(`${scheduler}/${n}: timer heap grew to ${maxTimers} entries (window ${window})`);
  }
  await closeDown(0);
  await engine.close();
  return {
    scheduler,
    dests: n,
    window,
    batch,
    scheduleRate: median(measured.sched),
    closeRate: median(measured.close),
    decisions: measured.decisions,
    failures,
    used,
    setupMs,
    lastAddMs,
    rebuildMs: rebuild,
    maxTimers,
  };
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
  for (const s of SCHEDULER_NAMES) await runCell(s, 10, 20);
}

async function decisions(): Promise<Cell[]> {
  heading('1. Decisions per second: engine.schedule() of a new TCP connection (in-process, memory engine)');
  out(`node ${process.version}, ${process.platform}/${process.arch}; ManualClock (standing still)`);
  out(
    `live load: sliding window of ${int(WINDOW)} connections (ovf: half its total weight, see below); ` +
      `batches of ${BATCH} schedules, then closes of the oldest`,
  );
  out(
    `weights 1..5; lblc, lblcr, dh: fwmark service, ${int(VIRTUALS)} virtual addresses; others: tcp ${VIP}:${VPORT}`,
  );
  out(
    `each cell: warm-up ${WARMUP_MS} ms, then ${CELL_MS} ms measured in ${SLICES} slices (median slice shown)`,
  );
  const cells: Cell[] = [];
  const t0 = now();
  await warmUp();
  for (const s of SCHEDULER_NAMES) {
    for (const n of SIZES) cells.push(await runCell(s, n, CELL_MS));
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
  out('Setup: adding the N destinations one by one through addDestination (ms), and cell totals');
  out(
    table(
      [
        'scheduler',
        ...SIZES.map((n) => `setup@${int(n)}`),
        'decisions timed',
        'failures',
        'window@10/100/1k/10k',
        'max timers',
      ],
      SCHEDULER_NAMES.map((s) => {
        const cs = SIZES.map((n) => cell(s, n));
        return [
          s,
          ...cs.map((c) => fixed(c.setupMs, 0)),
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
  // The largest table mh will build: all 4093 dests bound at once, then one delete + re-add.
  const engine = new MemoryEngine({ clock: new ManualClock(0) });
  const { key } = await engine.addService(serviceSpec('none'));
  for (let i = 0; i < MH_TAB_SIZE; i++) {
    await engine.addDestination(key, { address: destAddress(i), port: 8080, weight: weightOf(i) });
  }
  let t = now();
  await engine.editService(key, { scheduler: 'mh' });
  const initMs = now() - t;
  const last = `${destAddress(MH_TAB_SIZE - 1)}:8080`;
  await engine.deleteDestination(key, last);
  t = now();
  await engine.addDestination(key, { address: destAddress(MH_TAB_SIZE - 1), port: 8080, weight: 1 });
  const addMs = now() - t;
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
  out(
    'last add = addDestination of the N-th dest (rebuilds the table); rebuild = median of 5 editDestination',
  );
  out('calls (same weight; every edit rebuilds). used = dests that got a connection in section 1. With');
  out('weights 1..5 a full round of turns exceeds 4093 slots beyond ~1,360 dests, so dests late in the');
  out('list get no slot (as in the kernel). Beyond 4093 dests mh keeps the old table and new dests are');
  out('never chosen.');
}

// ---------------------------------------------------------------- section 3

async function million(): Promise<void> {
  heading(`3. ${int(MILLION)} live connections in one process (wlc, 100 destinations, ManualClock)`);
  const clock = new ManualClock(0);
  const engine = new MemoryEngine({ clock });
  const { key } = await engine.addService(serviceSpec('wlc'));
  for (let i = 0; i < 100; i++) {
    await engine.addDestination(key, { address: destAddress(i), port: 8080, weight: weightOf(i) });
  }
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
        ['schedule 1M (no closes)', `${fixed(scheduleMs / 1000, 2)} s`],
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
out(`total bench time ${fixed((now() - started) / 1000, 1)} s`);
