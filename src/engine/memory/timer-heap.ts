/**
 * The director's timers in one indexed binary min-heap, ordered by (deadline, arming order): re-arming
 * a timer moves it in O(log n) and firing the due ones never scans the whole connection table.
 */
import type { Timer } from '../../director/model.js';

export class TimerHeap<T extends Timer> {
  private readonly items: T[] = [];
  private nextSeq = 0;

  get size(): number {
    return this.items.length;
  }

  /** Arms (or re-arms) `t` to fire at `deadline`. */
  arm(t: T, deadline: number): void {
    t.deadline = deadline;
    t.seq = this.nextSeq++;
    if (t.heapIndex < 0) {
      t.heapIndex = this.items.length;
      this.items.push(t);
      this.up(t.heapIndex);
    } else {
      this.up(t.heapIndex);
      this.down(t.heapIndex);
    }
  }

  cancel(t: T): void {
    const i = t.heapIndex;
    if (i < 0) return;
    const last = this.items.pop()!;
    t.heapIndex = -1;
    if (i < this.items.length) {
      this.items[i] = last;
      last.heapIndex = i;
      this.up(i);
      this.down(i);
    }
  }

  /** The earliest timer if it is due at `now`, else undefined. It stays armed. */
  peekDue(now: number): T | undefined {
    const top = this.items[0];
    return top !== undefined && top.deadline <= now ? top : undefined;
  }

  private less(a: T, b: T): boolean {
    return a.deadline < b.deadline || (a.deadline === b.deadline && a.seq < b.seq);
  }

  private up(i: number): void {
    const items = this.items;
    const t = items[i];
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(t, items[p])) break;
      items[i] = items[p];
      items[i].heapIndex = i;
      i = p;
    }
    items[i] = t;
    t.heapIndex = i;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const t = items[i];
    while (true) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.less(items[r], items[l]) ? r : l;
      if (!this.less(items[c], t)) break;
      items[i] = items[c];
      items[i].heapIndex = i;
      i = c;
    }
    items[i] = t;
    t.heapIndex = i;
  }
}
