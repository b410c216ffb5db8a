/**
 * Every conformance vector against a RedisEngine on a private redis-server (never the machine's
 * own Redis). Each vector gets a fresh key prefix, so vectors share nothing; the manual clock is
 * the scripts' time. The vectors run twice: with the scripts as one Functions library (what a
 * replica uses on Redis >= 7) and as EVALSHA scripts (the fallback), from the same sources.
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

const factory =
  (scripts: 'functions' | 'evalsha'): EngineFactory =>
  async ({ startMs, randomInt }) => {
    const clock = new ManualClock(startMs);
    const prefix = `v${++counter}:`;
    const engine = new RedisEngine({ redis: redis.client, clock, randomInt, prefix, scripts });
    return { engine, advance: async (ms) => clock.advance(ms), close: () => engine.close() };
  };

for (const scripts of ['functions', 'evalsha'] as const) {
  describe(`conformance vectors on the redis engine (${scripts})`, () => {
    for (const { file, vector } of vectors) {
      const name = `${file}: ${vector.name}`;
      it(name, () => runVector(factory(scripts), vector));
    }
  });
}
