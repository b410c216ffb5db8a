/**
 * IPVS_CLOCK=manual on a redis-engine fleet: the clock is one key in Redis. Replicas (here: two
 * engines with their own Handlers on one redis-server) read the same now, an advance through either
 * moves it for both and fires the due timers, and concurrent advances add up.
 */
import { describe, expect, it } from 'vitest';
import { Handlers } from '../../src/api/handlers.js';
import { RedisEngine } from '../../src/engine/redis/redis-engine.js';
import { usePrivateRedis } from '../helpers/private-redis.js';

const redis = usePrivateRedis();

function replica(prefix: string): { engine: RedisEngine; handlers: Handlers } {
  const engine = new RedisEngine({ redis: redis.client, clock: 'redis', prefix });
  return { engine, handlers: new Handlers(engine, engine.redisClock) };
}

describe('the manual clock in Redis', () => {
  it('starts at the real time when absent and is one clock for every replica', async () => {
    const a = replica('clk1:');
    const b = replica('clk1:');
    const before = Date.now();
    const { nowMs } = await a.handlers.getClock();
    expect(nowMs).toBeGreaterThanOrEqual(before - 1);
    expect(nowMs).toBeLessThanOrEqual(Date.now() + 1);
    expect(await redis.client.get('clk1:clock')).toBe(String(nowMs));
    expect(await b.handlers.getClock()).toEqual({ nowMs });
    expect(await b.handlers.advanceClock({ seconds: 2.5 })).toEqual({ nowMs: nowMs + 2500 });
    expect(await a.handlers.getClock()).toEqual({ nowMs: nowMs + 2500 });
    await Promise.all([
      a.handlers.advanceClock({ seconds: 1 }),
      b.handlers.advanceClock({ seconds: 1 }),
      a.handlers.advanceClock({ seconds: 1 }),
    ]);
    expect(await b.handlers.getClock()).toEqual({ nowMs: nowMs + 5500 });
    await expect(a.handlers.advanceClock({ seconds: -1 })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });

  it('an advance on one replica fires the timers every replica sees (connection expiry)', async () => {
    const a = replica('clk2:');
    const b = replica('clk2:');
    await a.handlers.createService({ address: '10.0.0.1', port: 80, scheduler: 'wlc' });
    await a.handlers.createDestination('tcp:10.0.0.1:80', { address: '10.1.0.1' });
    const r = await b.handlers.schedule({ client: '192.168.0.1:4000', virtual: '10.0.0.1:80' });
    const t0 = (await a.handlers.getClock()).nowMs;
    const listed = (await a.handlers.listConnections({})).connections;
    expect(listed.map((c) => c.id)).toEqual([r.connection]);
    const ttl = listed[0].expiresInMs;
    expect(ttl).toBeGreaterThan(0);
    await a.handlers.advanceClock({ seconds: (ttl - 1000) / 1000 });
    expect((await b.handlers.listConnections({})).connections).toHaveLength(1);
    expect((await b.handlers.listConnections({})).connections[0].expiresInMs).toBe(1000);
    await b.handlers.advanceClock({ seconds: 1 });
    expect((await a.handlers.listConnections({})).connections).toHaveLength(0);
    const dest = (await a.handlers.getService('tcp:10.0.0.1:80')).destinations[0];
    expect(dest.activeConns + dest.inactiveConns).toBe(0);
    expect((await b.handlers.getClock()).nowMs).toBe(t0 + ttl);
  });
});
