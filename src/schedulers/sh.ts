/**
 * sh — Source Hashing (`ip_vs_sh.c`, §3.10).
 *
 * 256 buckets filled in KLO, each destination taking `weight` consecutive buckets per round (a
 * weight ≤ 0 still takes one), rebuilt on init, add, delete and edit. The client address (plus its
 * port with sh-port) picks the bucket. AVAILABLE is not checked: deleted dests leave the table.
 *
 * With sh-fallback the probe for offset `off` hashes with `roff = (off + ih) mod 256`, and the
 * hashkey adds its offset to the hash again, so probe `off` lands on `(off + 2*ih) mod 256`: the
 * kernel's doubled-ih walk, linear from 2*ih. An empty bucket ends the search.
 */
import { fold } from '../domain/address.js';
import type { Ip } from '../domain/address.js';
import { DestSlots, slotNote, hash32, hashedPort } from './hash.js';
import { defineScheduler, SCHED1, SCHED2 } from './types.js';
import type { SchedDest, SchedService } from './types.js';

export const SH_TAB_BITS = 8;
export const SH_TAB_SIZE = 1 << SH_TAB_BITS;
const SH_TAB_MASK = SH_TAB_SIZE - 1;

export interface ShState {
  readonly table: DestSlots;
}

/** `(offset + hash_32(ntohs(port) + ntohl(fold(addr)), 8)) & 255`, the sum wrapping at 2^32. */
export function shHashKey(addr: Ip, port: number, offset: number): number {
  return (offset + hash32((port + fold(addr)) >>> 0, SH_TAB_BITS)) & SH_TAB_MASK;
}

/** `is_unavailable`: weight ≤ 0 or OVERLOAD. */
function refusal(d: SchedDest): string | undefined {
  if (d.weight <= 0) return 'weight 0';
  if (d.overloaded) return 'overloaded';
  return undefined;
}

function reassign(state: ShState, svc: SchedService): void {
  const { table } = state;
  table.clear();
  const dests = svc.dests;
  if (dests.length === 0) return;
  let p = 0;
  let count = 0;
  for (let i = 0; i < SH_TAB_SIZE; i++) {
    table.set(i, dests[p]);
    // stay on this dest until it holds `weight` buckets in this round
    if (++count >= dests[p].weight) {
      p = (p + 1) % dests.length;
      count = 0;
    }
  }
}

export const sh = defineScheduler<ShState>({
  name: 'sh',
  flagNames: [
    ['sh-fallback', SCHED1],
    ['sh-port', SCHED2],
  ],
  init(svc) {
    const state: ShState = { table: new DestSlots(SH_TAB_SIZE) };
    reassign(state, svc);
    return state;
  },
  addDest: (state, svc) => reassign(state, svc),
  delDest: (state, svc) => reassign(state, svc),
  updDest: (state, svc) => reassign(state, svc),
  schedule(state, svc, pkt, ctx) {
    const port = svc.flags & SCHED2 ? hashedPort(pkt.protocol, pkt.cport) : 0;
    const ih = shHashKey(pkt.caddr, port, 0);
    let d = state.table.get(svc, ih);
    if (d === null) {
      ctx.note?.(`bucket ${ih} empty`);
      return null;
    }
    let why = refusal(d);
    ctx.note?.(slotNote(ih, d, why));
    if (!why) return d;
    if (!(svc.flags & SCHED1)) return null;
    for (let off = 0; off < SH_TAB_SIZE; off++) {
      const roff = (off + ih) % SH_TAB_SIZE;
      const h = shHashKey(pkt.caddr, port, roff);
      d = state.table.get(svc, h);
      if (d === null) {
        ctx.note?.(`fallback offset ${roff}: bucket ${h} empty`);
        return null;
      }
      why = refusal(d);
      ctx.note?.(`fallback offset ${roff}: ${slotNote(h, d, why)}`);
      if (!why) return d;
    }
    return null;
  },
  describe(state, _svc, d) {
    const metric = `buckets ${state.table.count(d.key)}`;
    const skip = refusal(d);
    return skip ? { metric, skip } : { metric };
  },
});
