/**
 * Every conformance vector against a RedisEngine on a private redis-server (never the machine's
 * own Redis). Each vector gets a fresh key prefix, so vectors share nothing; the manual clock is
 * the scripts' time.
 */
import { join } from 'node:path';
import { describe, it } from 'vitest';
import { ManualClock } from '../../src/engine/clock.js';
import { RedisEngine } from '../../src/engine/redis/redis-engine.js';
import { usePrivateRedis } from '../helpers/private-redis.js';
import { loadVectors, runVector, type EngineFactory } from './runner.js';

const vectors = loadVectors(join(import.meta.dirname, 'vectors'));

const redis = usePrivateRedis();
let counter = 0;

const factory: EngineFactory = async ({ startMs, randomInt }) => {
  const clock = new ManualClock(startMs);
  const engine = new RedisEngine({ redis: redis.client, clock, randomInt, prefix: `v${++counter}:` });
  return { engine, advance: async (ms) => clock.advance(ms), close: () => engine.close() };
};

describe('conformance vectors on the redis engine', () => {
  for (const { file, vector } of vectors) {
    const name = `${file}: ${vector.name}`;
    it(name, () => runVector(factory, vector));
  }
});
