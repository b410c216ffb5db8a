/**
 * The director's timer heap: ordered by deadline, then by arming order; re-arming moves a timer
 * (and makes it the latest among equal deadlines); cancel removes it. Checked against a sorted array.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Timer } from '../../src/director/model.js';
import { TimerHeap } from '../../src/engine/memory/timer-heap.js';

interface T extends Timer {
  name: string;
}

const timer = (name: string): T => ({ name, deadline: 0, seq: 0, heapIndex: -1 });

/** Fires everything due at `now`, in order (peek, then cancel, as the director does). */
function drain(heap: TimerHeap<T>, now = Number.POSITIVE_INFINITY): string[] {
  const out: string[] = [];
  for (let t = heap.peekDue(now); t; t = heap.peekDue(now)) {
    out.push(t.name);
    heap.cancel(t);
  }
  return out;
}

describe('TimerHeap', () => {
  it('an empty heap has nothing due', () => {
    const heap = new TimerHeap<T>();
    expect(heap.size).toBe(0);
    expect(heap.peekDue(Number.POSITIVE_INFINITY)).toBeUndefined();
  });

  it('orders by deadline', () => {
    const heap = new TimerHeap<T>();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(timer);
    heap.arm(a, 30);
    heap.arm(b, 10);
    heap.arm(c, 40);
    heap.arm(d, 20);
    expect(heap.size).toBe(4);
    expect(drain(heap)).toEqual(['b', 'd', 'a', 'c']);
    expect(heap.size).toBe(0);
  });

  it('equal deadlines fire in arming order', () => {
    const heap = new TimerHeap<T>();
    const ts = ['a', 'b', 'c', 'd', 'e', 'f'].map(timer);
    for (const t of ts) heap.arm(t, 100);
    expect(drain(heap)).toEqual(['a', 'b', 'c', 'd', 'e', 'f']);
  });

  it('peekDue only returns a timer whose deadline has come, and leaves it armed', () => {
    const heap = new TimerHeap<T>();
    const a = timer('a');
    heap.arm(a, 100);
    expect(heap.peekDue(99)).toBeUndefined();
    expect(heap.peekDue(100)).toBe(a);
    expect(heap.peekDue(100)).toBe(a);
    expect(heap.size).toBe(1);
    expect(a.heapIndex).toBeGreaterThanOrEqual(0);
  });

  it('drains only what is due', () => {
    const heap = new TimerHeap<T>();
    const ts = ['a', 'b', 'c'].map(timer);
    heap.arm(ts[0], 5);
    heap.arm(ts[1], 15);
    heap.arm(ts[2], 10);
    expect(drain(heap, 10)).toEqual(['a', 'c']);
    expect(heap.size).toBe(1);
    expect(drain(heap, 14)).toEqual([]);
    expect(drain(heap, 15)).toEqual(['b']);
  });

  it('re-arming moves a timer, later or earlier', () => {
    const heap = new TimerHeap<T>();
    const [a, b, c] = ['a', 'b', 'c'].map(timer);
    heap.arm(a, 10);
    heap.arm(b, 20);
    heap.arm(c, 30);
    heap.arm(a, 40);
    expect(heap.size).toBe(3);
    heap.arm(c, 5);
    expect(drain(heap)).toEqual(['c', 'b', 'a']);
  });

  it('re-arming to the same deadline puts the timer after the others with that deadline', () => {
    const heap = new TimerHeap<T>();
    const [a, b, c] = ['a', 'b', 'c'].map(timer);
    heap.arm(a, 10);
    heap.arm(b, 10);
    heap.arm(c, 10);
    heap.arm(a, 10);
    expect(drain(heap)).toEqual(['b', 'c', 'a']);
  });

  it('cancel removes a timer; cancelling twice or an unarmed timer is harmless; it can be armed again', () => {
    const heap = new TimerHeap<T>();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map(timer);
    heap.arm(a, 10);
    heap.arm(b, 20);
    heap.arm(c, 30);
    heap.cancel(b);
    expect(b.heapIndex).toBe(-1);
    expect(heap.size).toBe(2);
    heap.cancel(b);
    heap.cancel(d);
    expect(heap.size).toBe(2);
    heap.arm(b, 25);
    expect(drain(heap)).toEqual(['a', 'b', 'c']);
  });

  it('cancelling the last element in the array and the root both work', () => {
    const heap = new TimerHeap<T>();
    const ts = ['a', 'b', 'c', 'd', 'e'].map(timer);
    ts.forEach((t, i) => heap.arm(t, i));
    heap.cancel(ts[4]);
    heap.cancel(ts[0]);
    expect(drain(heap)).toEqual(['b', 'c', 'd']);
  });

  it('matches a sorted array under random arm / re-arm / cancel / fire', () => {
    const N = 12;
    const opArb = fc.oneof(
      fc.record({
        kind: fc.constant('arm' as const),
        id: fc.nat(N - 1),
        deadline: fc.integer({ min: 0, max: 50 }),
      }),
      fc.record({ kind: fc.constant('cancel' as const), id: fc.nat(N - 1) }),
      fc.record({ kind: fc.constant('fire' as const), now: fc.integer({ min: 0, max: 50 }) }),
    );
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 200 }), (ops) => {
        const heap = new TimerHeap<T>();
        const timers = Array.from({ length: N }, (_, i) => timer(`t${i}`));
        // Model: armed timers as { id, deadline, order } where order increases with each arm.
        let model: { id: number; deadline: number; order: number }[] = [];
        let order = 0;
        const sorted = () =>
          [...model].sort((x, y) => x.deadline - y.deadline || x.order - y.order).map((m) => `t${m.id}`);
        for (const op of ops) {
          if (op.kind === 'arm') {
            heap.arm(timers[op.id], op.deadline);
            model = model.filter((m) => m.id !== op.id);
            model.push({ id: op.id, deadline: op.deadline, order: order++ });
          } else if (op.kind === 'cancel') {
            heap.cancel(timers[op.id]);
            model = model.filter((m) => m.id !== op.id);
          } else {
            const expected = sorted().filter(
              (name) => model.find((m) => `t${m.id}` === name)!.deadline <= op.now,
            );
            expect(drain(heap, op.now)).toEqual(expected);
            model = model.filter((m) => m.deadline > op.now);
          }
          expect(heap.size).toBe(model.length);
          for (let i = 0; i < N; i++) {
            expect(timers[i].heapIndex >= 0, `t${i} armed`).toBe(model.some((m) => m.id === i));
          }
        }
        expect(drain(heap)).toEqual(sorted());
        expect(heap.size).toBe(0);
      }),
      { numRuns: 300 },
    );
  });

  it('a large heap drains in (deadline, arming order) order', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 500 }),
        (deadlines) => {
          const heap = new TimerHeap<T>();
          const timers = deadlines.map((_, i) => timer(String(i)));
          timers.forEach((t, i) => heap.arm(t, deadlines[i]));
          const expected = deadlines
            .map((d, i) => ({ d, i }))
            .sort((x, y) => x.d - y.d || x.i - y.i)
            .map(({ i }) => String(i));
          expect(drain(heap)).toEqual(expected);
        },
      ),
      { numRuns: 100 },
    );
  });
});
