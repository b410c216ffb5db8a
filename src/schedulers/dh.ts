/**
 * dh — Destination Hashing (`ip_vs_dh.c`, §3.9).
 *
 * 256 buckets; bucket i names KLO[i mod n] (weights play no part), rebuilt on init, add and delete
 * but NOT on an edit: the kernel has no upd_dest hook for dh. The packet's destination address (the
 * VIP, or any marked address for fwmark services) picks the bucket; there is no fallback.
 */
import { fold } from '../domain/address.js';
import type { Ip } from '../domain/address.js';
import { DestSlots, slotNote, hash32 } from './hash.js';
import { defineScheduler } from './types.js';
import type { SchedDest, SchedService } from './types.js';

export const DH_TAB_BITS = 8;
export const DH_TAB_SIZE = 1 << DH_TAB_BITS;

export interface DhState {
  readonly table: DestSlots;
}

/** Bucket of a destination address: `hash_32(ntohl(fold(addr)), 8)`. */
export function dhHashKey(addr: Ip): number {
  return hash32(fold(addr), DH_TAB_BITS);
}

/** Why dh refuses `d`, in the kernel's order of checks; undefined when it may be chosen. */
function refusal(d: SchedDest): string | undefined {
  if (!d.available) return 'unavailable';
  if (d.weight <= 0) return 'weight 0';
  if (d.overloaded) return 'overloaded';
  return undefined;
}

function reassign(state: DhState, svc: SchedService): void {
  const { table } = state;
  table.clear();
  const n = svc.dests.length;
  if (n === 0) return;
  for (let i = 0; i < DH_TAB_SIZE; i++) table.set(i, svc.dests[i % n]);
}

export const dh = defineScheduler<DhState>({
  name: 'dh',
  init(svc) {
    const state: DhState = { table: new DestSlots(DH_TAB_SIZE) };
    reassign(state, svc);
    return state;
  },
  addDest: (state, svc) => reassign(state, svc),
  delDest: (state, svc) => reassign(state, svc),
  schedule(state, svc, pkt, ctx) {
    const bucket = dhHashKey(pkt.vaddr);
    const d = state.table.get(svc, bucket);
    if (d === null) {
      ctx.note?.(`bucket ${bucket} empty`);
      return null;
    }
    const why = refusal(d);
    ctx.note?.(slotNote(bucket, d, why));
    return why ? null : d;
  },
  describe(state, _svc, d) {
    const metric = `buckets ${state.table.count(d.key)}`;
    const skip = refusal(d);
    return skip ? { metric, skip } : { metric };
  },
});
