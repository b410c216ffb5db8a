/**
 * Redis memory per tracked connection: N connections on one service, measured with INFO memory
 * (used_memory before/after) and MEMORY USAGE of the per-service keys that grow with them.
 */
import { expect, it } from 'vitest';
import { ManualClock } from '../../src/engine/clock.js';
import { serviceKeys } from '../../src/engine/redis/keys.js';
import { RedisEngine } from '../../src/engine/redis/redis-engine.js';
import { usePrivateRedis } from '../helpers/private-redis.js';

const N = 5000;
const redis = usePrivateRedis();

async function usedMemory(): Promise<number> {
  const info = await redis.client.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)![1]);
}

it(`measures Redis memory per connection (${N} connections)`, async () => {
  const clock = new ManualClock(1_000_000_000);
  const engine = new RedisEngine({ redis: redis.client, clock, prefix: 'mem:' });
  await engine.addService({ address: '10.0.0.1', port: 80, scheduler: 'wlc' });
  await engine.addDestination('tcp:10.0.0.1:80', { address: '10.1.0.1' });
  await engine.addDestination('tcp:10.0.0.1:80', { address: '10.1.0.2' });
  const before = await usedMemory();
  for (let i = 0; i < N; i++) {
    await engine.schedule({
      client: `192.168.${(i >> 8) & 255}.${i & 255}:${40000 + (i % 1000)}`,
      virtual: '10.0.0.1:80',
    });
  }
  const after = await usedMemory();
  const perConnection = (after - before) / N;
  const [, , , conns, tuples, , dl] = serviceKeys('mem:', 'tcp:10.0.0.1:80');
  const usage = async (key: string) => Number(await redis.client.memory('USAGE', key, 'SAMPLES', '0'));
  let wheel = 0;
  for (const key of await redis.client.keys('mem:{tcp:10.0.0.1:80}:w:*')) wheel += await usage(key);
  const keys = {
    conns: await usage(conns),
    tuples: await usage(tuples),
    deadlines: (await usage(dl)) + wheel,
  };
  const keyBytes = (keys.conns + keys.tuples + keys.deadlines) / N;
  console.log(
    `redis memory per connection: ${perConnection.toFixed(1)} B (INFO used_memory), ` +
      `${keyBytes.toFixed(1)} B (MEMORY USAGE: conns ${(keys.conns / N).toFixed(1)}, ` +
      `tuples ${(keys.tuples / N).toFixed(1)}, deadlines ${(keys.deadlines / N).toFixed(1)})`,
  );
  expect(await engine.listConnections()).toHaveLength(N);
  // The goal of the Redis engine issue: at most 200 bytes of Redis memory per tracked connection
  // (measured ~170 B: the packed record under its tuple key ~133 B + its wheel list item).
  expect(perConnection).toBeLessThanOrEqual(200);
  expect(keyBytes).toBeLessThanOrEqual(200);
  await engine.close();
});
