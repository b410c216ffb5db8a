/**
 * rr — Round Robin (`ip_vs_rr.c`, §3.1). The cursor is a dest or the list head (null). A pick walks
 * KLO after the cursor to the end and, unless the cursor is the head, wraps to the start and goes up
 * to and including the cursor itself; the first dest that is not overloaded and has weight > 0
 * becomes the cursor. On delete the cursor steps back to the deleted dest's predecessor.
 */
import { skipOverloadedOrQuiesced } from './tree-scheduler.js';
import { defineScheduler, type SchedDest } from './types.js';

interface RrState {
  cursor: SchedDest | null;
}

export const rr = defineScheduler<RrState>({
  name: 'rr',
  init: () => ({ cursor: null }),
  delDest(state, svc, dest, oldPos) {
    if (state.cursor === dest) state.cursor = oldPos > 0 ? svc.dests[oldPos - 1] : null;
  },
  schedule(state, svc) {
    const dests = svc.dests;
    const cursor = state.cursor;
    const start = cursor === null ? 0 : cursor.pos + 1;
    for (let i = start; i < dests.length; i++) {
      if (skipOverloadedOrQuiesced(dests[i]) === undefined) return (state.cursor = dests[i]);
    }
    if (cursor === null) return null;
    for (let i = 0; i <= cursor.pos && i < dests.length; i++) {
      if (skipOverloadedOrQuiesced(dests[i]) === undefined) return (state.cursor = dests[i]);
    }
    return null;
  },
  describe: (state, _svc, d) => ({
    metric: state.cursor === d ? 'cursor' : undefined,
    skip: skipOverloadedOrQuiesced(d),
  }),
});
