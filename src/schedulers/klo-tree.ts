/**
 * Indexes over a service's destinations in kernel list order, so a least-connection style pick
 * costs O(1) and a counter change O(log n) instead of the kernel's O(n) list scan — with the same
 * answer. The kernel scans KLO keeping the first dest that is strictly better than all before it;
 * for a total preorder that is the leftmost best dest, which is what a segment tree whose parent
 * keeps "right child if strictly better, else left child" computes at its root.
 */
import type { SchedDest } from './types.js';

export class BestTree<D extends SchedDest> {
  private dests: readonly D[] = [];
  private leaves = 1;
  private nodes = new Int32Array(2).fill(-1);

  constructor(
    private readonly eligible: (d: D) => boolean,
    /** Strictly better: `a` would replace `b` in the kernel's scan. */
    private readonly better: (a: D, b: D) => boolean,
  ) {}

  /** Rebuilds from the KLO array (on add/delete: O(n)). */
  rebuild(dests: readonly D[]): void {
    this.dests = dests;
    let leaves = 1;
    while (leaves < dests.length) leaves *= 2;
    this.leaves = leaves;
    this.nodes = new Int32Array(2 * leaves).fill(-1);
    for (let i = 0; i < dests.length; i++) this.nodes[leaves + i] = this.eligible(dests[i]) ? i : -1;
    for (let n = leaves - 1; n >= 1; n--) this.nodes[n] = this.pick(this.nodes[2 * n], this.nodes[2 * n + 1]);
  }

  /** Re-evaluates the dest at KLO index `pos` after its counters, flags or weight changed. */
  update(pos: number): void {
    if (pos < 0 || pos >= this.dests.length) return;
    let n = this.leaves + pos;
    this.nodes[n] = this.eligible(this.dests[pos]) ? pos : -1;
    for (n >>= 1; n >= 1; n >>= 1) this.nodes[n] = this.pick(this.nodes[2 * n], this.nodes[2 * n + 1]);
  }

  best(): D | null {
    const i = this.nodes[1];
    return i < 0 ? null : this.dests[i];
  }

  private pick(left: number, right: number): number {
    if (left < 0) return right;
    if (right < 0) return left;
    return this.better(this.dests[right], this.dests[left]) ? right : left;
  }
}

/**
 * Prefix sums of eligible weights in KLO (a Fenwick tree), for twos' weighted random walk:
 * "subtract weights in KLO until the remainder is <= 0" is "the first index whose prefix sum
 * reaches the target".
 */
export class WeightSums<D extends SchedDest> {
  private dests: readonly D[] = [];
  private tree = new Float64Array(1);
  private values = new Float64Array(0);
  total = 0;

  constructor(private readonly weightOf: (d: D) => number) {}

  rebuild(dests: readonly D[]): void {
    this.dests = dests;
    this.tree = new Float64Array(dests.length + 1);
    this.values = new Float64Array(dests.length);
    this.total = 0;
    for (let i = 0; i < dests.length; i++) this.set(i, this.weightOf(dests[i]));
  }

  update(pos: number): void {
    if (pos >= 0 && pos < this.dests.length) this.set(pos, this.weightOf(this.dests[pos]));
  }

  /** The first dest (in KLO) whose prefix sum is >= target (target >= 1, <= total). */
  find(target: number): D | null {
    let pos = 0;
    let remaining = target;
    let step = 1;
    while (step * 2 <= this.dests.length) step *= 2;
    for (; step > 0; step >>= 1) {
      const next = pos + step;
      if (next <= this.dests.length && this.tree[next] < remaining) {
        pos = next;
        remaining -= this.tree[next];
      }
    }
    return pos < this.dests.length ? this.dests[pos] : null;
  }

  private set(pos: number, value: number): void {
    const delta = value - this.values[pos];
    if (delta === 0) return;
    this.values[pos] = value;
    this.total += delta;
    for (let i = pos + 1; i <= this.dests.length; i += i & -i) this.tree[i] += delta;
  }
}
