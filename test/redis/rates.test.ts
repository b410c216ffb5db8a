/**
 * Rates on the redis engine: the kernel's 2 s estimator over the counters in Redis, advanced by
 * every replica's tick once per period (a conditional write: replicas racing apply it once), give
 * the memory engine's figures — for the service, each destination and the director's totals,
 * through busy periods, idle ones (catch-up decay) and a zeroing.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/engine/clock.js';
import type { Engine } from '../../src/engine/engine.js';
import { MemoryEngine } from '../../src/engine/memory/memory-engine.js';
import { RedisEngine } from '../../src/engine/redis/redis-engine.js';
import { usePrivateRedis } from '../helpers/private-redis.js';

const redis = usePrivateRedis();

const SERVICE = 'tcp:10.0.0.1:80';
const T0 = 2_000_000_000; // a multiple of the 2 s period: both engines' estimator runs coincide

async function rates(e: Engine): Promise<unknown> {
  const s = await e.getStats();
  const pick = (x: { cps: number; inPps: number; outPps: number; inBps: number; outBps: number }) => [
    x.cps,
    x.inPps,
    x.outPps,
    x.inBps,
    x.outBps,
  ];
  return {
    total: pick(s.total),
    services: s.services.map((v) => [
      v.key,
      pick(v.stats),
      v.destinations.map((d) => [d.key, pick(d.stats)]),
    ]),
  };
}

describe('rates on the redis engine', () => {
  it('follow the memory engine period by period (busy, idle, zeroed), with three replicas ticking', async () => {
    const memClock = new ManualClock(T0);
    const redisClock = new ManualClock(T0);
    const mem = new MemoryEngine({ clock: memClock });
    const replicas = [0, 1, 2].map(
      () => new RedisEngine({ redis: redis.client, clock: redisClock, prefix: 'rates:' }),
    );
    const red = replicas[0];
    for (const e of [mem, red] as Engine[]) {
      await e.addService({ address: '10.0.0.1', port: 80, scheduler: 'rr' });
      await e.addDestination(SERVICE, { address: '10.1.0.1' });
      await e.addDestination(SERVICE, { address: '10.1.0.2' });
    }
    let next = 0;
    const traffic = async (n: number) => {
      for (const e of [mem, red] as Engine[]) {
        for (let i = 0; i < n; i++) {
          const r = await e.schedule({
            client: `192.168.${(next + i) >> 8}.${(next + i) & 255}:5000`,
            virtual: '10.0.0.1:80',
          });
          await e.updateConnection(r.connection, { event: { direction: 'in', flag: 'ack' }, inBytes: 1500 });
        }
      }
      next += n;
    };
    const advance = async (ms: number) => {
      memClock.advance(ms);
      redisClock.advance(ms);
      await mem.tick();
      await Promise.all(replicas.map((r) => r.tick())); // three replicas race for each period
    };
    let sawTraffic = false;
    for (const [n, ms] of [
      [400, 2000],
      [100, 2000],
      [0, 2000],
      [250, 4000],
      [0, 60_000],
      [30, 2000],
    ] as const) {
      await traffic(n);
      await advance(ms);
      const expected = await rates(mem);
      expect(await rates(red)).toEqual(expected);
      if ((expected as { total: number[] }).total[0] > 0) sawTraffic = true;
    }
    expect(sawTraffic).toBe(true);
    for (const e of [mem, red] as Engine[]) await e.zeroStats();
    await advance(2000);
    expect(await rates(red)).toEqual(await rates(mem));
    for (const r of replicas) await r.close();
  });
});
