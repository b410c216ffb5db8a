/**
 * `requestId` idempotency cache: a retry within the TTL gets the first answer; entries are bounded
 * in time and number, the oldest dropped first.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  IDEMPOTENCY_MAX_ENTRIES,
  IDEMPOTENCY_TTL_MS,
  IdempotencyCache,
} from '../../src/engine/idempotency.js';

describe('IdempotencyCache', () => {
  it('defaults: five minutes, 100 000 entries', () => {
    expect(IDEMPOTENCY_TTL_MS).toBe(300_000);
    expect(IDEMPOTENCY_MAX_ENTRIES).toBe(100_000);
    const c = new IdempotencyCache<string>();
    c.put('a', 'A', 0);
    expect(c.get('a', IDEMPOTENCY_TTL_MS - 1)).toBe('A');
    expect(c.get('a', IDEMPOTENCY_TTL_MS)).toBeUndefined();
  });

  it('answers within the TTL and forgets at it', () => {
    const c = new IdempotencyCache<number>(1000, 10);
    c.put('r1', 1, 5000);
    expect(c.get('r1', 5000)).toBe(1);
    expect(c.get('r1', 5999)).toBe(1);
    expect(c.get('r1', 6000)).toBeUndefined();
    expect(c.get('r1', 9999)).toBeUndefined();
    expect(c.get('other', 5000)).toBeUndefined();
  });

  it('a put replaces the answer and restarts the TTL', () => {
    const c = new IdempotencyCache<string>(1000, 10);
    c.put('r', 'first', 0);
    c.put('r', 'second', 800);
    expect(c.get('r', 1500)).toBe('second');
    expect(c.get('r', 1800)).toBeUndefined();
  });

  it('keeps at most maxEntries, dropping the oldest first', () => {
    const c = new IdempotencyCache<number>(1_000_000, 3);
    for (let i = 0; i < 5; i++) c.put(`r${i}`, i, i);
    expect(c.get('r0', 10)).toBeUndefined();
    expect(c.get('r1', 10)).toBeUndefined();
    expect(c.get('r2', 10)).toBe(2);
    expect(c.get('r3', 10)).toBe(3);
    expect(c.get('r4', 10)).toBe(4);
  });

  it('a re-put makes an entry the newest', () => {
    const c = new IdempotencyCache<string>(1_000_000, 3);
    c.put('a', 'A', 0);
    c.put('b', 'B', 1);
    c.put('c', 'C', 2);
    c.put('a', 'A2', 3);
    c.put('d', 'D', 4);
    expect(c.get('b', 5)).toBeUndefined();
    expect(c.get('a', 5)).toBe('A2');
    expect(c.get('c', 5)).toBe('C');
    expect(c.get('d', 5)).toBe('D');
  });

  it('expired entries are dropped on put (size stays bounded by the live ones)', () => {
    const c = new IdempotencyCache<number>(100, 1000);
    for (let i = 0; i < 50; i++) c.put(`old${i}`, i, 0);
    c.put('new', 1, 100);
    const size = (c as unknown as { entries: Map<string, unknown> }).entries.size;
    expect(size).toBe(1);
    expect(c.get('new', 150)).toBe(1);
  });

  it('behaves like a model: last put wins, TTL, and the newest maxEntries survive', () => {
    const op = fc.record({
      id: fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g'),
      dt: fc.integer({ min: 0, max: 40 }),
      put: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100 }),
        fc.integer({ min: 1, max: 5 }),
        fc.array(op, { maxLength: 60 }),
        (ttl, max, ops) => {
          const cache = new IdempotencyCache<number>(ttl, max);
          // Model: insertion-ordered list of [id, value, expiresAt]; re-put moves to the end.
          let model: [string, number, number][] = [];
          let now = 0;
          let value = 0;
          for (const { id, dt, put } of ops) {
            now += dt;
            if (put) {
              value++;
              cache.put(id, value, now);
              model = model.filter(([k]) => k !== id);
              model.push([id, value, now + ttl]);
              model = model.filter(([, , exp]) => exp > now);
              if (model.length > max) model = model.slice(model.length - max);
            } else {
              const hit = model.find(([k]) => k === id);
              const expected = hit && hit[2] > now ? hit[1] : undefined;
              expect(cache.get(id, now)).toBe(expected);
            }
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
