/**
 * The WHOLE conformance suite against the redis engine on a 3-master Redis Cluster started by this
 * file (test/helpers/redis-cluster.ts), through the same fail-fast ioredis Cluster client the service
 * uses with REDIS_CLUSTER_NODES. Every script call touches one slot (the service's hash tag); the
 * global keys (service index, tags, sysctl, timeouts) sit in slots of their own. Each vector gets a
 * fresh key prefix, so vectors share nothing and their services spread over the three masters.
 */
import { join } from 'node:path';
import type { Cluster } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/engine/clock.js';
import { createRedisClient } from '../../src/engine/redis/client.js';
import { RedisEngine } from '../../src/engine/redis/redis-engine.js';
import { startRedisCluster, type RedisCluster } from '../helpers/redis-cluster.js';
import { loadVectors, runVector, type EngineFactory } from './runner.js';

const vectors = loadVectors(join(import.meta.dirname, 'vectors'));

let cluster: RedisCluster;
let client: Cluster;
let counter = 0;

beforeAll(async () => {
  cluster = await startRedisCluster(3);
  client = createRedisClient({ nodes: cluster.nodes }) as Cluster;
  const probe = new RedisEngine({ redis: client, clock: new ManualClock(0), prefix: 'probe:' });
  expect(await probe.waitReady(10_000)).toBe(true);
}, 60_000);

afterAll(async () => {
  client?.disconnect();
  await cluster?.stop();
});

const factory: EngineFactory = async ({ startMs, randomInt }) => {
  const clock = new ManualClock(startMs);
  const engine = new RedisEngine({ redis: client, clock, randomInt, prefix: `c${++counter}:` });
  return { engine, advance: async (ms) => clock.advance(ms), close: () => engine.close() };
};

describe('conformance vectors on the redis engine on Redis Cluster', () => {
  for (const { file, vector } of vectors) {
    const name = `${file}: ${vector.name}`;
    it(name, () => runVector(factory, vector));
  }
});

describe('the cluster after the suite', () => {
  it('three masters each hold part of the state (services spread over the shards)', async () => {
    expect(client.nodes('master')).toHaveLength(3);
    const sizes = await Promise.all(cluster.servers.map((s) => s.admin().dbsize()));
    for (const size of sizes) expect(size).toBeGreaterThan(0);
    // the global keys of one prefix hash to slots of their own
    const slots = await Promise.all(
      ['c1:services', 'c1:tags', 'c1:sysctl', 'c1:timeouts', 'c1:clock'].map((k) =>
        client.cluster('KEYSLOT', k),
      ),
    );
    expect(new Set(slots).size).toBeGreaterThan(1);
  });
});
