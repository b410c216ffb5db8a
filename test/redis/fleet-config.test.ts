/**
 * Two replicas (two redis engines on one redis-server) share configuration and request ids:
 * each caches the service lookup, sysctls and timeouts, and drops the cache when the other
 * announces a change (pub/sub), when a script answers STALE, or when a lookup misses. A retried
 * Schedule with the same requestId gets the first answer from either replica and counts once.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/engine/clock.js';
import { RedisEngine } from '../../src/engine/redis/redis-engine.js';
import { usePrivateRedis } from '../helpers/private-redis.js';

const engines: RedisEngine[] = [];
const redis = usePrivateRedis();

afterAll(async () => {
  for (const e of engines) await e.close();
});

function pair(prefix: string, options: { listen?: boolean } = {}): [RedisEngine, RedisEngine] {
  const clock = new ManualClock(1_000_000);
  const make = () =>
    new RedisEngine({ redis: redis.client, clock, prefix, configMaxAgeMs: 60_000, ...options });
  const made: [RedisEngine, RedisEngine] = [make(), make()];
  engines.push(...made);
  return made;
}

const SERVICE = 'tcp:10.0.0.1:80';
const packet = (port: number) => ({ client: `192.168.0.1:${port}`, virtual: '10.0.0.1:80' });

async function activeOf(e: RedisEngine): Promise<number[]> {
  return (await e.getService(SERVICE)).destinations.map((d) => d.activeConns + d.inactiveConns);
}

describe('configuration shared by replicas', () => {
  it('a service added on one replica is scheduled at once by the other (cached lookup refreshed)', async () => {
    const [a, b] = pair('fc1:');
    await b.listServices(); // b caches an empty configuration
    await a.addService({ address: '10.0.0.1', port: 80, scheduler: 'rr' });
    await a.addDestination(SERVICE, { address: '10.1.0.1' });
    await a.addDestination(SERVICE, { address: '10.1.0.2' });
    expect((await b.schedule(packet(1000))).destination).toBe('10.1.0.2:80');
    expect((await a.schedule(packet(1001))).destination).toBe('10.1.0.1:80');
  });

  it('a scheduler change on one replica is used by the other from the next decision', async () => {
    const [a, b] = pair('fc2:', { listen: false }); // no pub/sub: the version check must catch it
    await a.addService({ address: '10.0.0.1', port: 80, scheduler: 'rr' });
    await a.addDestination(SERVICE, { address: '10.1.0.1' });
    await a.addDestination(SERVICE, { address: '10.1.0.2', weight: 3 });
    await b.schedule(packet(1000)); // b caches rr at version 1
    await a.editService(SERVICE, { scheduler: 'sh' });
    const decisions = await Promise.all([2000, 2001, 2002].map((p) => b.schedule(packet(p))));
    // sh hashes the client address only: one client, one destination, whatever the port
    expect(new Set(decisions.map((d) => d.destination)).size).toBe(1);
    expect((await b.getService(SERVICE)).scheduler).toBe('sh');
  });

  it('timeouts and sysctls set on one replica are read by the other (announcement)', async () => {
    const [a, b] = pair('fc3:');
    expect((await b.getTimeouts()).udp).toBe(300);
    await a.setTimeouts({ udp: 42 });
    await new Promise((r) => setTimeout(r, 50));
    expect((await b.getTimeouts()).udp).toBe(42);
    expect((await b.getSysctl()).expire_nodest_conn).toBe(0);
    await a.setSysctl({ expire_nodest_conn: 1 });
    await new Promise((r) => setTimeout(r, 50));
    expect((await b.getSysctl()).expire_nodest_conn).toBe(1);
  });

  it('a deleted service is refused by the other replica', async () => {
    const [a, b] = pair('fc4:', { listen: false });
    await a.addService({ address: '10.0.0.1', port: 80 });
    await a.addDestination(SERVICE, { address: '10.1.0.1' });
    await b.schedule(packet(1000));
    await a.deleteService(SERVICE);
    await expect(b.schedule(packet(1001))).rejects.toMatchObject({ code: 'NO_SERVICE' });
  });
});

describe('requestId idempotency across replicas', () => {
  it('a retry through another replica gets the first answer and counts once', async () => {
    const [a, b] = pair('fc5:');
    await a.addService({ address: '10.0.0.1', port: 80, scheduler: 'wlc' });
    await a.addDestination(SERVICE, { address: '10.1.0.1' });
    await a.addDestination(SERVICE, { address: '10.1.0.2' });
    const first = await a.schedule({ ...packet(1000), requestId: 'req-1' });
    const retries = await Promise.all([
      b.schedule({ ...packet(1000), requestId: 'req-1' }),
      a.schedule({ ...packet(1000), requestId: 'req-1' }),
      b.schedule({ ...packet(1000), requestId: 'req-1' }),
    ]);
    for (const r of retries) expect(r).toEqual(first);
    expect(await activeOf(b)).toEqual(first.destination === '10.1.0.2:80' ? [1, 0] : [0, 1]);
    const other = await b.schedule({ ...packet(1001), requestId: 'req-2' });
    expect(other.connection).not.toBe(first.connection);
    expect(await activeOf(a)).toEqual([1, 1]);
    expect((await a.listConnections({})).length).toBe(2);
  });
});
