/**
 * lc — Least Connection (`ip_vs_lc.c`, §3.3). Smallest overhead = active*256 + inactive among
 * dests that are not overloaded and have a non-zero weight (the weight value is otherwise ignored).
 * Strict `<`: ties go to the first in KLO.
 */
import { skipOverloadedOrQuiesced, treeScheduler } from './tree-scheduler.js';
import { overhead } from './types.js';

export const lc = treeScheduler({
  name: 'lc',
  skip: skipOverloadedOrQuiesced,
  better: (a, b) => overhead(a) < overhead(b),
  metric: (d) => `overhead ${overhead(d)}`,
});
