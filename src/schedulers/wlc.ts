/**
 * wlc — Weighted Least Connection (`ip_vs_wlc.c`, §3.4), the default scheduler.
 *
 * Picks the smallest overhead/weight. As the kernel does, the division is avoided:
 * for positive weights `h1/w1 > h2/w2` ⇔ `h1*w2 > h2*w1`. Weights are ≤ 65535 and overheads stay far
 * below 2^37, so the products are exact in a double. The kernel starts from the first dest with
 * weight > 0 and never lets a weight-0 dest win (`loh*0 > doh*w` is false), which is "eligible =
 * not overloaded and weight > 0".
 */
import { skipOverloadedOrQuiesced, treeScheduler } from './tree-scheduler.js';
import { overhead, type SchedDest } from './types.js';

/** `a` has a strictly smaller overhead/weight than `b` (both weights positive). */
export function lighterByWeight(a: SchedDest, b: SchedDest): boolean {
  return overhead(b) * a.weight > overhead(a) * b.weight;
}

export const wlc = treeScheduler({
  name: 'wlc',
  skip: skipOverloadedOrQuiesced,
  better: lighterByWeight,
  metric: (d) => `overhead ${overhead(d)} / weight ${d.weight}`,
});
