/**
 * The manual clock of a redis-engine fleet (IPVS_CLOCK=manual): one global key, `<prefix>clock`,
 * holds nowMs; every replica reads it as its engine's clock, and `POST /v1/clock/advance` on any
 * replica moves it (INCRBY: atomic, so concurrent advances add up). Absent, it is initialised to the
 * real time (SET NX: the first replica to look wins). The key lives in its own slot and is only read
 * and written outside the per-service scripts, which take `now` as an argument.
 */
import type { SharedClock } from '../clock.js';
import { guarded, type RedisClient } from './client.js';

export class RedisClock implements SharedClock {
  constructor(
    private readonly redis: RedisClient,
    readonly key: string,
    private readonly realNow: () => number = Date.now,
  ) {}

  now(): Promise<number> {
    return guarded(async () => {
      const value = await this.redis.get(this.key);
      if (value !== null) return Number(value);
      await this.redis.set(this.key, String(Math.floor(this.realNow())), 'NX');
      return Number(await this.redis.get(this.key));
    });
  }

  async advance(ms: number): Promise<void> {
    if (!(ms >= 0)) throw new RangeError(`clock can only move forward (got ${ms} ms)`);
    await this.now();
    await guarded(() => this.redis.incrby(this.key, Math.round(ms)));
  }
}
