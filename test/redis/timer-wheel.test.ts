/**
 * The redis engine's timers: a connection waits in the wheel list of its deadline's second and is
 * moved to the exact near zset when that second comes; a deadline that moves later leaves it
 * where it is, one that moves earlier queues it again (the old item goes stale and is dropped).
 * Counters move exactly at each deadline, and nothing of the wheel is left once all expired.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/engine/clock.js';
import { scriptKeys } from '../../src/engine/redis/keys.js';
import { RedisEngine } from '../../src/engine/redis/redis-engine.js';
import { usePrivateRedis } from '../helpers/private-redis.js';

const redis = usePrivateRedis();

const SERVICE = 'tcp:10.0.0.1:80';

async function setup(prefix: string): Promise<{ engine: RedisEngine; clock: ManualClock }> {
  const clock = new ManualClock(5_000_000_250);
  const engine = new RedisEngine({ redis: redis.client, clock, prefix });
  await engine.addService({ address: '10.0.0.1', port: 80, scheduler: 'wlc' });
  await engine.addDestination(SERVICE, { address: '10.1.0.1' });
  return { engine, clock };
}

async function wheelItems(prefix: string): Promise<number> {
  let n = 0;
  for (const key of await redis.client.keys(`${prefix}{${SERVICE}}:w:*`)) n += await redis.client.llen(key);
  return n;
}

async function counters(engine: RedisEngine): Promise<[number, number]> {
  const d = (await engine.getService(SERVICE)).destinations[0];
  return [d.activeConns, d.inactiveConns];
}

describe('the timer wheel of the redis engine', () => {
  it('fires at the exact millisecond, also for a deadline that moved earlier', async () => {
    const { engine, clock } = await setup('tw1:');
    const a = await engine.schedule({ client: '192.168.0.1:4000', virtual: '10.0.0.1:80' });
    await engine.updateConnection(a.connection, { state: 'ESTABLISHED' }); // 900 s
    clock.advance(100_000);
    await engine.updateConnection(a.connection, { state: 'CLOSE' }); // now 10 s
    expect(await wheelItems('tw1:')).toBe(2); // the 900 s item went stale; a new one for 10 s
    clock.advance(9_999);
    await engine.tick();
    expect(await counters(engine)).toEqual([0, 1]);
    clock.advance(1);
    await engine.tick();
    expect(await counters(engine)).toEqual([0, 0]);
    expect(await engine.listConnections()).toEqual([]);
    clock.advance(900_000);
    await engine.tick();
    expect(await wheelItems('tw1:')).toBe(0); // the stale item was dropped at its promotion
    expect(await redis.client.zcard(`tw1:{${SERVICE}}:wheel`)).toBe(0);
    await engine.close();
  });

  it('a deadline that keeps moving later is queued once, not once per packet', async () => {
    const { engine, clock } = await setup('tw2:');
    const a = await engine.schedule({ client: '192.168.0.1:4000', virtual: '10.0.0.1:80' });
    await engine.updateConnection(a.connection, { state: 'ESTABLISHED' });
    for (let i = 0; i < 30; i++) {
      clock.advance(100_000);
      await engine.updateConnection(a.connection, { event: { direction: 'in', flag: 'ack' } });
      expect(await wheelItems('tw2:')).toBeLessThanOrEqual(2);
    }
    clock.advance(899_999);
    await engine.tick();
    expect(await counters(engine)).toEqual([1, 0]);
    clock.advance(1);
    await engine.tick();
    expect(await counters(engine)).toEqual([0, 0]);
    expect(await wheelItems('tw2:')).toBe(0);
    await engine.close();
  });

  it('promotion is bounded per call: a sweep of a crowded second takes several calls, counts exactly', async () => {
    const { engine, clock } = await setup('tw3:');
    const N = 2500;
    for (let i = 0; i < N; i++) {
      await engine.schedule({ client: `192.168.${i >> 8}.${i & 255}:5000`, virtual: '10.0.0.1:80' });
    }
    expect(await counters(engine)).toEqual([N, 0]); // SYN_RECV counts as active
    expect(await wheelItems('tw3:')).toBe(N);
    clock.advance(60_000); // SYN_RECV: 60 s
    const keys = scriptKeys('tw3:', SERVICE);
    let calls = 0;
    for (;;) {
      // now, sysctls (eqt, enc, crm, secure_tcp, lblc/lblcr expiration), timeouts, budget 1000
      const argv = [clock.now(), '0 0 1 0 1800 86400 900 120 300', 1000];
      const r = JSON.parse(String(await engine.scripts.run('sweep', keys, argv))) as { done: boolean };
      calls++;
      if (r.done) break;
    }
    expect(calls).toBeGreaterThanOrEqual(Math.ceil((2 * N) / 1000)); // promote N, then fire N
    expect(await counters(engine)).toEqual([0, 0]);
    expect(await engine.listConnections()).toEqual([]);
    expect(await wheelItems('tw3:')).toBe(0);
    await engine.close();
  });
});
