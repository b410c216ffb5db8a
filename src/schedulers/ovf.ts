/**
 * ovf — Weighted Overflow (`ip_vs_ovf.c`, §3.13): the highest weight among dests that are not
 * overloaded, have weight > 0 and have `active <= weight` (a dest overflows once active > weight;
 * only active connections count). Strict `>`, ties to the first in KLO.
 */
import { skipOverloadedOrQuiesced, treeScheduler } from './tree-scheduler.js';

export const ovf = treeScheduler({
  name: 'ovf',
  skip: (d) =>
    skipOverloadedOrQuiesced(d) ?? (d.activeConns > d.weight ? `overflowing (active > weight)` : undefined),
  better: (a, b) => a.weight > b.weight,
  metric: (d) => `weight ${d.weight}, active ${d.activeConns}`,
});
