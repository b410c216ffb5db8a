/**
 * fo — Weighted Fail Over (`ip_vs_fo.c`, §3.12): the highest weight among dests that are not
 * overloaded and have weight > 0; strict `>`, so ties go to the first in KLO. No load metric.
 */
import { skipOverloadedOrQuiesced, treeScheduler } from './tree-scheduler.js';

export const fo = treeScheduler({
  name: 'fo',
  skip: skipOverloadedOrQuiesced,
  better: (a, b) => a.weight > b.weight,
  metric: (d) => `weight ${d.weight}`,
});
