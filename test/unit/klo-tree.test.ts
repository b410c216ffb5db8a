/**
 * BestTree and WeightSums give the same answer as the kernel's O(n) scans in kernel list order
 * (ipvs-semantics.md §0.3, §3.3–3.5, §3.14), checked on random destination sets and random
 * counter / weight / overload changes, adds and deletes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseIp, type Ip } from '../../src/domain/address.js';
import { BestTree, WeightSums } from '../../src/schedulers/klo-tree.js';
import { twos } from '../../src/schedulers/twos.js';
import type { SchedContext, SchedDest, SchedPacket, SchedService } from '../../src/schedulers/types.js';
import { wlc } from '../../src/schedulers/wlc.js';

interface D extends SchedDest {
  key: string;
  weight: number;
  lastWeight: number;
  activeConns: number;
  inactiveConns: number;
  overloaded: boolean;
  available: boolean;
  pos: number;
}

const IP: Ip = parseIp('10.1.0.1', 'ip');
let serial = 0;

const destArb = fc.record({
  weight: fc.oneof(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 65535 })),
  activeConns: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 100000 })),
  inactiveConns: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 100000 })),
  overloaded: fc.boolean(),
});
type DestFields = { weight: number; activeConns: number; inactiveConns: number; overloaded: boolean };

function makeDest(f: DestFields): D {
  serial++;
  return {
    key: `d${serial}`,
    ip: IP,
    port: serial,
    lastWeight: f.weight,
    available: true,
    pos: -1,
    ...f,
  };
}

type Op =
  | { kind: 'set'; at: number; fields: Partial<DestFields> }
  | { kind: 'add'; fields: DestFields }
  | { kind: 'del'; at: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      at: fc.nat(),
      fields: fc.oneof(
        fc.record({ activeConns: destArb.map((d) => d.activeConns) }),
        fc.record({ inactiveConns: destArb.map((d) => d.inactiveConns) }),
        fc.record({ weight: destArb.map((d) => d.weight) }),
        fc.record({ overloaded: fc.boolean() }),
        destArb,
      ),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('add' as const), fields: destArb }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('del' as const), at: fc.nat() }) },
);

const overhead = (d: SchedDest) => BigInt(d.activeConns) * 256n + BigInt(d.inactiveConns);

/** §3.4, word for word: wlc in KLO with 64-bit products and a strict `>`. */
function kernelWlc(dests: readonly SchedDest[]): SchedDest | null {
  let start = -1;
  for (let i = 0; i < dests.length; i++) {
    if (!dests[i].overloaded && dests[i].weight > 0) {
      start = i;
      break;
    }
  }
  if (start < 0) return null;
  let least = dests[start];
  let loh = overhead(least);
  for (let i = start + 1; i < dests.length; i++) {
    const d = dests[i];
    if (d.overloaded) continue;
    const doh = overhead(d);
    if (loh * BigInt(d.weight) > doh * BigInt(least.weight)) {
      least = d;
      loh = doh;
    }
  }
  return least;
}

/** §3.3: lc — eligible `!OVERLOAD && weight != 0`, smallest overhead, strict `<`. */
function kernelLc(dests: readonly SchedDest[]): SchedDest | null {
  let least: SchedDest | null = null;
  for (const d of dests) {
    if (d.overloaded || d.weight === 0) continue;
    if (least === null || overhead(d) < overhead(least)) least = d;
  }
  return least;
}

/** §3.5: sed — like wlc with overhead = active + 1. */
function kernelSed(dests: readonly SchedDest[]): SchedDest | null {
  const oh = (d: SchedDest) => BigInt(d.activeConns) + 1n;
  let least: SchedDest | null = null;
  for (const d of dests) {
    if (d.overloaded || d.weight <= 0) continue;
    if (least === null || oh(least) * BigInt(d.weight) > oh(d) * BigInt(least.weight)) least = d;
  }
  return least;
}

/** Applies `op` to the KLO array (new dests at the head); returns which index changed, if any. */
function apply(
  dests: D[],
  op: Op,
): { changed?: number; rebuilt?: boolean; removed?: { dest: D; pos: number } } {
  if (op.kind === 'add') {
    dests.unshift(makeDest(op.fields));
    dests.forEach((d, i) => (d.pos = i));
    return { rebuilt: true };
  }
  if (dests.length === 0) return {};
  const at = op.at % dests.length;
  if (op.kind === 'del') {
    const [gone] = dests.splice(at, 1);
    gone.pos = -1;
    dests.forEach((d, i) => (d.pos = i));
    return { rebuilt: true, removed: { dest: gone, pos: at } };
  }
  Object.assign(dests[at], op.fields);
  if (op.fields.weight !== undefined && op.fields.weight > 0) dests[at].lastWeight = op.fields.weight;
  return { changed: at };
}

const initialArb = fc.array(destArb, { maxLength: 40 });

describe('BestTree: the leftmost best eligible dest, as the kernel scan finds it', () => {
  const rules: [
    string,
    (d: D) => boolean,
    (a: D, b: D) => boolean,
    (ds: readonly SchedDest[]) => SchedDest | null,
  ][] = [
    [
      'wlc (overhead / weight)',
      (d) => !d.overloaded && d.weight > 0,
      (a, b) => overhead(b) * BigInt(a.weight) > overhead(a) * BigInt(b.weight),
      kernelWlc,
    ],
    ['lc (overhead)', (d) => !d.overloaded && d.weight !== 0, (a, b) => overhead(a) < overhead(b), kernelLc],
    [
      'sed ((active + 1) / weight)',
      (d) => !d.overloaded && d.weight > 0,
      (a, b) =>
        (BigInt(b.activeConns) + 1n) * BigInt(a.weight) > (BigInt(a.activeConns) + 1n) * BigInt(b.weight),
      kernelSed,
    ],
  ];

  it.each(rules)('%s', (_name, eligible, better, scan) => {
    fc.assert(
      fc.property(initialArb, fc.array(opArb, { maxLength: 60 }), (initial, ops) => {
        const dests = initial.map(makeDest);
        dests.forEach((d, i) => (d.pos = i));
        const tree = new BestTree<D>(eligible, better);
        tree.rebuild(dests);
        expect(tree.best()).toBe(scan(dests));
        for (const op of ops) {
          const r = apply(dests, op);
          if (r.rebuilt) tree.rebuild(dests);
          if (r.changed !== undefined) tree.update(r.changed);
          expect(tree.best()).toBe(scan(dests));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('ties go to the lowest index (the earliest in KLO)', () => {
    const dests = [0, 1, 2, 3, 4].map(() =>
      makeDest({ weight: 2, activeConns: 1, inactiveConns: 0, overloaded: false }),
    );
    const tree = new BestTree<D>(
      (d) => !d.overloaded && d.weight > 0,
      (a, b) => overhead(b) * BigInt(a.weight) > overhead(a) * BigInt(b.weight),
    );
    tree.rebuild(dests);
    expect(tree.best()).toBe(dests[0]);
    dests[0].overloaded = true;
    tree.update(0);
    expect(tree.best()).toBe(dests[1]);
    dests[3].activeConns = 0;
    tree.update(3);
    expect(tree.best()).toBe(dests[3]);
    // Same ratio (2/4 = 1/2) later in KLO does not win.
    dests[4].activeConns = 0;
    tree.update(4);
    expect(tree.best()).toBe(dests[3]);
  });

  it('§3.4 example: A(w1, 1 active, 10 inactive) vs B(w2, 1 active, 200 inactive) → B', () => {
    const a = makeDest({ weight: 1, activeConns: 1, inactiveConns: 10, overloaded: false });
    const b = makeDest({ weight: 2, activeConns: 1, inactiveConns: 200, overloaded: false });
    const tree = new BestTree<D>(
      (d) => !d.overloaded && d.weight > 0,
      (x, y) => overhead(y) * BigInt(x.weight) > overhead(x) * BigInt(y.weight),
    );
    tree.rebuild([a, b]);
    expect(tree.best()).toBe(b);
  });

  it('empty, single and all-ineligible sets', () => {
    const tree = new BestTree<D>(
      (d) => d.weight > 0,
      () => false,
    );
    tree.rebuild([]);
    expect(tree.best()).toBeNull();
    tree.update(0);
    expect(tree.best()).toBeNull();
    const one = makeDest({ weight: 1, activeConns: 0, inactiveConns: 0, overloaded: false });
    tree.rebuild([one]);
    expect(tree.best()).toBe(one);
    one.weight = 0;
    tree.update(0);
    expect(tree.best()).toBeNull();
    one.weight = 3;
    tree.update(0);
    expect(tree.best()).toBe(one);
    tree.update(5);
    tree.update(-1);
    expect(tree.best()).toBe(one);
  });
});

const PKT = {} as SchedPacket;
const ctxWith = (randomInt: (n: number) => number): SchedContext => ({
  now: 0,
  randomInt,
  sysctl: { lblc_expiration: 86400, lblcr_expiration: 86400 },
});

describe('the wlc scheduler module agrees with §3.4 through its hooks', () => {
  it('random sets and changes', () => {
    fc.assert(
      fc.property(initialArb, fc.array(opArb, { maxLength: 60 }), (initial, ops) => {
        const dests = initial.map(makeDest);
        dests.forEach((d, i) => (d.pos = i));
        const svc: SchedService<D> = { dests, flags: 0 };
        const state = wlc.init(svc);
        const ctx = ctxWith(() => 0);
        expect(wlc.schedule(state, svc, PKT, ctx)).toBe(kernelWlc(dests));
        for (const op of ops) {
          const r = apply(dests, op);
          if (op.kind === 'add') wlc.addDest!(state, svc, dests[0]);
          if (r.removed) wlc.delDest!(state, svc, r.removed.dest, r.removed.pos);
          if (r.changed !== undefined) {
            if (op.kind === 'set' && op.fields.weight !== undefined)
              wlc.updDest!(state, svc, dests[r.changed]);
            else wlc.countersChanged!(state, svc, dests[r.changed]);
          }
          expect(wlc.schedule(state, svc, PKT, ctx)).toBe(kernelWlc(dests));
        }
      }),
      { numRuns: 200 },
    );
  });
});

/** The twos walk (§3.14): the first eligible dest at which `r − Σw` drops to ≤ 0. */
function walk(dests: readonly SchedDest[], r: number): SchedDest | null {
  let rest = r;
  for (const d of dests) {
    if (d.overloaded || d.weight <= 0) continue;
    rest -= d.weight;
    if (rest <= 0) return d;
  }
  return null;
}

describe('WeightSums: the first dest whose prefix sum of weights reaches the target', () => {
  const weightOf = (d: D) => (!d.overloaded && d.weight > 0 ? d.weight : 0);

  function check(sums: WeightSums<D>, dests: readonly D[]) {
    const total = dests.reduce((s, d) => s + weightOf(d), 0);
    expect(sums.total).toBe(total);
    // Every target in 1..total when small; otherwise a sample including the edges.
    const targets =
      total <= 300
        ? Array.from({ length: total }, (_, i) => i + 1)
        : [
            1,
            2,
            total - 1,
            total,
            ...Array.from({ length: 50 }, (_, i) => 1 + Math.floor((i * (total - 1)) / 49)),
          ];
    for (const t of targets) expect(sums.find(t)).toBe(walk(dests, t));
    expect(sums.find(total + 1)).toBeNull();
  }

  it('random sets and changes', () => {
    fc.assert(
      fc.property(initialArb, fc.array(opArb, { maxLength: 40 }), (initial, ops) => {
        const dests = initial.map(makeDest);
        const sums = new WeightSums<D>(weightOf);
        sums.rebuild(dests);
        check(sums, dests);
        for (const op of ops) {
          const r = apply(dests, op);
          if (r.rebuilt) sums.rebuild(dests);
          if (r.changed !== undefined) sums.update(r.changed);
          check(sums, dests);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('skips zero weights and handles the empty set', () => {
    const w = (weight: number) => makeDest({ weight, activeConns: 0, inactiveConns: 0, overloaded: false });
    const dests = [w(0), w(2), w(0), w(0), w(3), w(0)];
    const sums = new WeightSums<D>(weightOf);
    sums.rebuild(dests);
    expect(sums.total).toBe(5);
    expect([1, 2, 3, 4, 5].map((t) => sums.find(t))).toEqual([
      dests[1],
      dests[1],
      dests[4],
      dests[4],
      dests[4],
    ]);
    expect(sums.find(6)).toBeNull();
    sums.rebuild([]);
    expect(sums.total).toBe(0);
    expect(sums.find(1)).toBeNull();
  });
});

/** §3.14 in full, with the RNG injected: the kernel's twos pick. */
function kernelTwos(dests: readonly SchedDest[], rand: (n: number) => number): SchedDest | null {
  const eligible = dests.filter((d) => !d.overloaded && d.weight > 0);
  if (eligible.length === 0) return null;
  const T = eligible.reduce((s, d) => s + d.weight, 0) + 1;
  const r1 = rand(T);
  const r2 = rand(T);
  const c1 = walk(dests, r1)!;
  const c2 = walk(dests, r2)!;
  const o = (d: SchedDest) => d.activeConns * 256 + d.inactiveConns;
  // 32-bit int products, strict `>`, ties to the first choice.
  return Math.imul(c2.weight, o(c1)) > Math.imul(c1.weight, o(c2)) ? c2 : c1;
}

describe('the twos scheduler module agrees with §3.14 given the same random numbers', () => {
  it('random sets, changes and random draws', () => {
    fc.assert(
      fc.property(
        initialArb,
        fc.array(
          fc.tuple(opArb, fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 0, max: 0xffffffff })),
          {
            maxLength: 40,
          },
        ),
        (initial, steps) => {
          const dests = initial.map(makeDest);
          dests.forEach((d, i) => (d.pos = i));
          const svc: SchedService<D> = { dests, flags: 0 };
          const state = twos.init(svc);
          for (const [op, a, b] of steps) {
            const r = apply(dests, op);
            if (op.kind === 'add') twos.addDest!(state, svc, dests[0]);
            if (r.removed) twos.delDest!(state, svc, r.removed.dest, r.removed.pos);
            if (r.changed !== undefined) twos.countersChanged!(state, svc, dests[r.changed]);
            const draws = (): ((n: number) => number) => {
              const raw = [a, b];
              let i = 0;
              return (n) => raw[i++ % 2] % n;
            };
            expect(twos.schedule(state, svc, PKT, ctxWith(draws()))).toBe(kernelTwos(dests, draws()));
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('r = 0 picks the first eligible dest', () => {
    const w = (weight: number, overloaded = false) =>
      makeDest({ weight, activeConns: 0, inactiveConns: 0, overloaded });
    const dests = [w(0), w(5, true), w(3), w(4)];
    dests.forEach((d, i) => (d.pos = i));
    const svc: SchedService<D> = { dests, flags: 0 };
    const state = twos.init(svc);
    expect(
      twos.schedule(
        state,
        svc,
        PKT,
        ctxWith(() => 0),
      ),
    ).toBe(dests[2]);
    expect(
      twos.schedule(
        state,
        svc,
        PKT,
        ctxWith((n) => n - 1),
      ),
    ).toBe(dests[3]);
  });
});
