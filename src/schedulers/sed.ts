/**
 * sed — Shortest Expected Delay (`ip_vs_sed.c`, §3.5): wlc with overhead = active + 1 (inactive
 * ignored). Smallest (active+1)/weight, compared as `(a1+1)*w2 < (a2+1)*w1`; ties keep the first.
 */
import { skipOverloadedOrQuiesced, treeScheduler } from './tree-scheduler.js';
import type { SchedDest } from './types.js';

/** (active+1)/weight of `a` strictly below that of `b`. */
export function shorterDelay(a: SchedDest, b: SchedDest): boolean {
  return (b.activeConns + 1) * a.weight > (a.activeConns + 1) * b.weight;
}

export const sed = treeScheduler({
  name: 'sed',
  skip: skipOverloadedOrQuiesced,
  better: shorterDelay,
  metric: (d) => `(active ${d.activeConns} + 1) / weight ${d.weight}`,
});
