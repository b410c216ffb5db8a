/**
 * twos — weighted random "power of two choices" (`ip_vs_twos.c`, §3.14). Two independent random
 * numbers r in [0, Σw] (T = Σw + 1) each pick the first eligible dest in KLO at which the running
 * remainder r − Σw drops to ≤ 0 (r = 0 picks the first one: the head is favoured by one part in T);
 * of the two, the one with the smaller overhead/weight wins, compared as the kernel does in 32-bit
 * ints (`w2*o1 > w1*o2`), ties to the first choice. Prefix sums make each pick O(log n).
 */
import { WeightSums } from './klo-tree.js';
import { skipOverloadedOrQuiesced } from './tree-scheduler.js';
import { defineScheduler, overhead, type SchedDest } from './types.js';

export const twos = defineScheduler<WeightSums<SchedDest>>({
  name: 'twos',
  init(svc) {
    const sums = new WeightSums<SchedDest>((d) => (skipOverloadedOrQuiesced(d) === undefined ? d.weight : 0));
    sums.rebuild(svc.dests);
    return sums;
  },
  addDest: (sums, svc) => sums.rebuild(svc.dests),
  delDest: (sums, svc) => sums.rebuild(svc.dests),
  updDest: (sums, _svc, d) => sums.update(d.pos),
  countersChanged: (sums, _svc, d) => sums.update(d.pos),
  schedule(sums, _svc, _pkt, ctx) {
    if (sums.total === 0) return null;
    const range = sums.total + 1;
    const r1 = ctx.randomInt(range);
    const r2 = ctx.randomInt(range);
    const first = sums.find(Math.max(r1, 1));
    const second = sums.find(Math.max(r2, 1));
    if (!first || !second) return null;
    ctx.note?.(`random ${r1} → ${first.key}, random ${r2} → ${second.key}`);
    return Math.imul(second.weight, overhead(first)) > Math.imul(first.weight, overhead(second))
      ? second
      : first;
  },
  describe: (_sums, _svc, d) => ({
    metric: `overhead ${overhead(d)} / weight ${d.weight}`,
    skip: skipOverloadedOrQuiesced(d),
  }),
});
