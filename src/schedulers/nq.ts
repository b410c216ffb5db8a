/**
 * nq — Never Queue (`ip_vs_nq.c`, §3.6): the first idle dest (no active connection) in KLO wins at
 * once; when none is idle, the sed rule (smallest (active+1)/weight, ties to the first). Ordering
 * "idle before busy, then sed" and taking the leftmost best gives exactly the kernel's scan.
 */
import { shorterDelay } from './sed.js';
import { skipOverloadedOrQuiesced, treeScheduler } from './tree-scheduler.js';

export const nq = treeScheduler({
  name: 'nq',
  skip: skipOverloadedOrQuiesced,
  better: (a, b) => {
    const aIdle = a.activeConns === 0;
    const bIdle = b.activeConns === 0;
    if (aIdle || bIdle) return aIdle && !bIdle;
    return shorterDelay(a, b);
  },
  metric: (d) => (d.activeConns === 0 ? 'idle' : `(active ${d.activeConns} + 1) / weight ${d.weight}`),
});
