/**
 * The redis engine picks without scanning the destination list: lc/wlc/sed/nq/fo/ovf and the
 * lblc/lblcr fallback read a zset ordered by the scheduler's measure then KLO place, twos walks a
 * Fenwick tree of weights, lblc/lblcr keep a count of "under half weight" destinations, rr/wrr
 * load only the destinations they step over. These tests drive many destinations through both
 * engines (the memory engine is the reference) with churn — a switch of scheduler over live
 * connections, new connections, state changes, weight edits, thresholds, deletes and re-adds from
 * the trash — and compare every decision.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/engine/clock.js';
import type { Engine } from '../../src/engine/engine.js';
import { MemoryEngine } from '../../src/engine/memory/memory-engine.js';
import { RedisEngine } from '../../src/engine/redis/redis-engine.js';
import { seededRandomInt } from '../property/ops.js';
import { usePrivateRedis } from '../helpers/private-redis.js';

const redis = usePrivateRedis();

const SERVICE = 'tcp:10.0.0.1:80';
const DESTS = 120;
const STEPS = 500;

type Step = (e: Engine) => Promise<unknown>;

/** A reproducible churn scenario for one scheduler (the same list of steps for both engines). */
function scenario(scheduler: string, seed: number): Step[] {
  const rnd = seededRandomInt(seed);
  const steps: Step[] = [];
  const dest = (i: number) => `10.1.${i >> 8}.${i & 255}:80`;
  // the service starts on another scheduler and is switched once it has connections, so the
  // indexes are also rebuilt over live destinations (a rebind), not only grown from empty
  const first = scheduler === 'rr' ? 'wlc' : 'rr';
  steps.push((e) => e.addService({ address: '10.0.0.1', port: 80, scheduler: first }));
  for (let i = 0; i < DESTS; i++) {
    const weight = rnd(4) === 0 ? 0 : 1 + rnd(5);
    const upper = rnd(10) === 0 ? 2 + rnd(3) : 0;
    steps.push((e) =>
      e.addDestination(SERVICE, { address: dest(i).slice(0, -3), weight, upperThreshold: upper }),
    );
  }
  const deleted = new Set<number>();
  const conns: number[] = [];
  for (let s = 0; s < STEPS; s++) {
    if (s === 40) steps.push((e) => e.editService(SERVICE, { scheduler }));
    const kind = rnd(20);
    if (kind < 11 || conns.length === 0) {
      const c = s;
      conns.push(c);
      steps.push((e) =>
        e.schedule({ client: `192.168.${c >> 8}.${c & 255}:${1024 + c}`, virtual: '10.0.0.1:80' }),
      );
    } else if (kind < 15) {
      const c = conns[rnd(conns.length)];
      const state = ['ESTABLISHED', 'FIN_WAIT', 'CLOSE', 'SYN_RECV'][rnd(4)];
      steps.push((e) => updateByClient(e, c, state));
    } else if (kind < 17) {
      const i = rnd(DESTS);
      const weight = rnd(3) === 0 ? 0 : 1 + rnd(6);
      if (!deleted.has(i)) steps.push((e) => e.editDestination(SERVICE, dest(i), { weight }));
    } else if (kind < 18) {
      const i = rnd(DESTS);
      if (deleted.has(i)) {
        deleted.delete(i);
        steps.push((e) => e.addDestination(SERVICE, { address: dest(i).slice(0, -3), weight: 1 + rnd(5) }));
      } else {
        deleted.add(i);
        steps.push((e) => e.deleteDestination(SERVICE, dest(i)));
      }
    } else {
      steps.push(async (e) => {
        (e as unknown as { clock: ManualClock }).clock.advance(1000 * (1 + rnd(30)));
        await e.tick();
      });
    }
  }
  return steps;
}

async function updateByClient(e: Engine, c: number, state: string): Promise<unknown> {
  const client = `192.168.${c >> 8}.${c & 255}:${1024 + c}`;
  const conn = (await e.listConnections({ service: SERVICE })).find((x) => x.client === client);
  if (!conn) return 'gone';
  return e.updateConnection(conn.id, { state });
}

async function outcome(p: Promise<unknown>): Promise<unknown> {
  try {
    const r = (await p) as Record<string, unknown> | undefined;
    if (r && typeof r === 'object' && 'destination' in r && 'reused' in r) return r.destination;
    return 'ok';
  } catch (err) {
    return (err as { code?: string }).code ?? String(err);
  }
}

const SCHEDULERS = ['lc', 'wlc', 'sed', 'nq', 'fo', 'ovf', 'twos', 'rr', 'wrr', 'lblc', 'lblcr'];

describe('redis scheduler indexes agree with the memory engine over many destinations', () => {
  for (const [n, scheduler] of SCHEDULERS.entries()) {
    it(`${scheduler}: ${DESTS} destinations, ${STEPS} steps of churn, every decision equal`, async () => {
      const seed = 1000 + n;
      const memClock = new ManualClock(2_000_000_000);
      const redisClock = new ManualClock(2_000_000_000);
      const mem = new MemoryEngine({ clock: memClock, randomInt: seededRandomInt(seed) });
      const red = new RedisEngine({
        redis: redis.client,
        clock: redisClock,
        prefix: `six${n}:`,
        randomInt: seededRandomInt(seed),
      });
      Object.assign(mem, { clock: memClock });
      Object.assign(red, { clock: redisClock });
      const a = scenario(scheduler, seed);
      const b = scenario(scheduler, seed);
      let decisions = 0;
      for (let i = 0; i < a.length; i++) {
        const [x, y] = [await outcome(a[i](mem)), await outcome(b[i](red))];
        expect(y, `step ${i}`).toEqual(x);
        if (typeof x === 'string' && x.startsWith('10.1.')) decisions++;
      }
      expect(decisions).toBeGreaterThan(STEPS / 4);
      const [ms, rs] = [await mem.getService(SERVICE), await red.getService(SERVICE)];
      const counters = (s: typeof ms) =>
        s.destinations.map((d) => [d.key, d.weight, d.activeConns, d.inactiveConns, d.overloaded]);
      expect(counters(rs)).toEqual(counters(ms));
      await red.close();
    }, 60_000);
  }
});

describe('a decision reads a few destinations, not all of them', () => {
  // Commands run inside scripts count in INFO commandstats: HGETALL is how a script loads a
  // destination, so per decision it must stay small with 400 destinations.
  async function destLoads(): Promise<number> {
    const info = await redis.client.info('commandstats');
    const m = /cmdstat_hgetall:calls=(\d+)/.exec(info);
    return m ? Number(m[1]) : 0;
  }

  for (const scheduler of ['lc', 'wlc', 'sed', 'nq', 'fo', 'twos', 'rr', 'wrr', 'lblc', 'lblcr']) {
    it(`${scheduler} with 400 destinations`, async () => {
      const engine = new RedisEngine({
        redis: redis.client,
        clock: new ManualClock(5_000_000),
        prefix: `few-${scheduler}:`,
      });
      await engine.addService({ address: '10.0.0.1', port: 80, scheduler });
      for (let i = 0; i < 400; i++) {
        await engine.addDestination(SERVICE, { address: `10.2.${i >> 8}.${i & 255}`, weight: 1 + (i % 7) });
      }
      await engine.schedule({ client: '192.168.9.9:9999', virtual: '10.0.0.1:80' });
      await redis.client.config('RESETSTAT');
      const N = 50;
      for (let c = 0; c < N; c++) {
        await engine.schedule({ client: `192.168.${c}.1:${2000 + c}`, virtual: '10.0.0.1:80' });
      }
      const perDecision = (await destLoads()) / N;
      expect(perDecision).toBeLessThan(8);
      await engine.close();
    }, 60_000);
  }
});
