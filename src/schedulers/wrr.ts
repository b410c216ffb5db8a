/**
 * wrr — Weighted Round Robin (`ip_vs_wrr.c`, §3.2).
 *
 * Passes over KLO with a falling threshold cw = mw, mw−di, …: a dest is picked in every pass whose
 * cw ≤ its weight. di is the gcd of the positive weights and mw = max weight − (di − 1), which makes
 * the last pass of each cycle run at cw = 1 so a dest whose weight dropped below di stays reachable.
 * Any destination change restarts the walk from the head (`ip_vs_wrr_dest_changed`).
 */
import { defineScheduler, type SchedDest, type SchedService } from './types.js';

interface WrrState {
  /** The cursor: the last dest picked, or null for the list head. */
  cl: SchedDest | null;
  cw: number;
  mw: number;
  di: number;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

function weights(svc: SchedService): { di: number; max: number } {
  let di = 0;
  let max = 0;
  for (const d of svc.dests) {
    if (d.weight > 0) di = di === 0 ? d.weight : gcd(di, d.weight);
    if (d.weight > max) max = d.weight;
  }
  return { di: di || 1, max };
}

function destChanged(state: WrrState, svc: SchedService): void {
  const { di, max } = weights(svc);
  state.cl = null;
  state.di = di;
  state.mw = max - (di - 1);
  if (state.cw > state.mw || state.cw === 0) state.cw = state.mw;
  else if (di > 1) state.cw = Math.floor(state.cw / di) * di + 1;
}

export const wrr = defineScheduler<WrrState>({
  name: 'wrr',
  init(svc) {
    const { di, max } = weights(svc);
    const mw = max - (di - 1);
    return { cl: null, di, mw, cw: mw };
  },
  addDest: destChanged,
  delDest: destChanged,
  updDest: destChanged,
  schedule(state, svc) {
    if (state.mw === 0) return null;
    const dests = svc.dests;
    const last = state.cl;
    let stop: SchedDest | null = null;
    let lastPass = false;
    let restarted = false;
    let start = last === null ? 0 : last.pos + 1;
    while (true) {
      for (let i = start; i < dests.length; i++) {
        const d = dests[i];
        if (!d.overloaded && d.weight >= state.cw) return (state.cl = d);
        if (d === stop) {
          state.cl = d;
          return null;
        }
      }
      start = 0;
      state.cw -= state.di;
      if (state.cw <= 0) {
        state.cw = state.mw;
        if (lastPass || last === null) {
          state.cl = null;
          return null;
        }
        restarted = true;
      }
      lastPass = state.cw <= state.di;
      if (lastPass && restarted && last !== null) stop = last;
    }
  },
  describe: (state, _svc, d) => ({
    metric: `weight ${d.weight} (pass cw ${state.cw})`,
    skip: d.overloaded ? 'overloaded' : d.weight <= 0 ? 'weight 0' : undefined,
  }),
});
