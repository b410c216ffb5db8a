/**
 * mh — Maglev Hashing (`ip_vs_mh.c`, §3.11), table of M slots (M prime, 4093 by default).
 *
 * Each destination gets a permutation of the slots from two hashes of its address and port:
 * start at `offset`, step by `skip` (1..M-1; M prime, so the walk visits every slot). Slots are
 * claimed round by round in KLO, each destination claiming `turns` slots per round: its
 * last_weight / gcd, shifted right so the largest fits in MH_TAB_BITS bits (min 1 if last_weight > 0).
 * last_weight (not weight) is used, so a quiesced dest keeps its slots and only refuses at lookup.
 * Rebuilt on init, add, delete and edit; with more dests than slots the kernel keeps the old table.
 *
 * Lookup hashes the client address (+ port with mh-port). With mh-fallback, probe `off` re-hashes
 * with offset `(off + ih) mod M` — a new pseudo-random slot each time, not linear probing; an empty
 * slot ends the search.
 */
import { fold } from '../domain/address.js';
import type { Ip } from '../domain/address.js';
import { DestSlots, slotNote, hashedPort, hsiphash, sipKey } from './hash.js';
import { defineScheduler, SCHED1, SCHED2 } from './types.js';
import type { SchedDest, SchedService, SchedulerModule } from './types.js';

/** Table sizes for CONFIG_IP_VS_MH_TAB_INDEX 8..17. */
export const MH_PRIMES: readonly number[] = [251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071];
/** Kconfig default (index 12). */
export const MH_TAB_SIZE = 4093;

/** `generate_hash_secret`: fixed keys, so tables are the same on every box. */
export const MH_HASH1 = sipKey(2654435761n, 2654435761n);
export const MH_HASH2 = sipKey(2654446892n, 2654446892n);

export interface MhState {
  readonly table: DestSlots;
}

/** `ip_vs_mh_hashkey` before the modulo: hsiphash of `offset + ntohs(port) + ntohl(fold(addr))` (u32). */
export function mhHash(addr: Ip, port: number, offset: number, key = MH_HASH1): number {
  return hsiphash((offset + port + fold(addr)) >>> 0, key);
}

/** A destination's permutation in a table of `size` slots. */
export function mhPermutation(addr: Ip, port: number, size = MH_TAB_SIZE): { offset: number; skip: number } {
  return { offset: mhHash(addr, port, 0) % size, skip: (mhHash(addr, port, 0, MH_HASH2) % (size - 1)) + 1 };
}

const gcd = (a: number, b: number): number => {
  while (b) [a, b] = [b, a % b];
  return a;
};
/** Bit length (kernel fls): fls(0) = 0, fls(1) = 1, fls(64) = 7. */
const fls = (x: number): number => 32 - Math.clz32(x);

function reassign(state: MhState, svc: SchedService, bits: number): void {
  const { table } = state;
  const M = table.size;
  const dests = svc.dests;
  if (dests.length > M) return; // -EINVAL: the old table stays
  let g = 0;
  let maxW = 0;
  for (const d of dests) {
    if (d.lastWeight > 0) g = g > 0 ? gcd(d.lastWeight, g) : d.lastWeight;
    if (d.lastWeight > maxW) maxW = d.lastWeight;
  }
  table.clear();
  if (g < 1) return; // no dest with last_weight > 0: every slot empty
  const rshift = Math.max(0, fls(Math.trunc(maxW / g)) - bits);
  const n = dests.length;
  const perm = new Int32Array(n);
  const skip = new Int32Array(n);
  const turns = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const d = dests[i];
    const p = mhPermutation(d.ip, d.port, M);
    perm[i] = p.offset;
    skip[i] = p.skip;
    const lw = d.lastWeight;
    turns[i] = Math.trunc(lw / g) >> rshift || (lw !== 0 ? 1 : 0);
  }
  const filled = new Uint8Array(M);
  let filledCount = 0;
  let run = 0; // claims made by dest i in this round
  // g ≥ 1 means some dest has turns ≥ 1, so every round claims at least one slot
  for (;;) {
    for (let i = 0; i < n;) {
      if (turns[i] < 1) {
        i++;
        continue;
      }
      let c = perm[i];
      while (filled[c]) {
        c += skip[i];
        if (c >= M) c -= M;
      }
      perm[i] = c;
      filled[c] = 1;
      table.set(c, dests[i]);
      if (++filledCount === M) return;
      if (++run >= turns[i]) {
        run = 0;
        i++;
      }
    }
  }
}

/** `lookup[h(0)]`, falling back through re-hashed slots when SCHED1 is set. */
function lookup(
  state: MhState,
  svc: SchedService,
  addr: Ip,
  port: number,
  fallback: boolean,
  note?: (t: string) => void,
): SchedDest | null {
  const { table } = state;
  const M = table.size;
  const ih = mhHash(addr, port, 0) % M;
  let d = table.get(svc, ih);
  if (d === null) {
    note?.(`bucket ${ih} empty`);
    return null;
  }
  let why = refusal(d);
  note?.(slotNote(ih, d, why));
  if (!why) return d;
  if (!fallback) return null;
  for (let off = 0; off < M; off++) {
    const roff = (off + ih) % M;
    const h = mhHash(addr, port, roff) % M;
    d = table.get(svc, h);
    if (d === null) {
      note?.(`fallback offset ${roff}: bucket ${h} empty`);
      return null;
    }
    why = refusal(d);
    note?.(`fallback offset ${roff}: ${slotNote(h, d, why)}`);
    if (!why) return d;
  }
  return null;
}

/** `is_unavailable`: weight ≤ 0 or OVERLOAD (AVAILABLE is not checked). */
function refusal(d: SchedDest): string | undefined {
  if (d.weight <= 0) return 'weight 0';
  if (d.overloaded) return 'overloaded';
  return undefined;
}

/** An mh module for a kernel built with table size `size` (one of MH_PRIMES). */
export function makeMh(size: number = MH_TAB_SIZE): SchedulerModule<MhState> {
  const index = MH_PRIMES.indexOf(size);
  if (index < 0) throw new RangeError(`mh table size must be one of ${MH_PRIMES.join(', ')}`);
  const bits = (index + 8) >> 1; // IP_VS_MH_TAB_BITS = CONFIG_IP_VS_MH_TAB_INDEX / 2
  const rebuild = (state: MhState, svc: SchedService) => reassign(state, svc, bits);
  return defineScheduler<MhState>({
    name: 'mh',
    flagNames: [
      ['mh-fallback', SCHED1],
      ['mh-port', SCHED2],
    ],
    init(svc) {
      const state: MhState = { table: new DestSlots(size) };
      rebuild(state, svc);
      return state;
    },
    addDest: rebuild,
    delDest: rebuild,
    updDest: rebuild,
    schedule(state, svc, pkt, ctx) {
      const port = svc.flags & SCHED2 ? hashedPort(pkt.protocol, pkt.cport) : 0;
      return lookup(state, svc, pkt.caddr, port, (svc.flags & SCHED1) !== 0, ctx.note);
    },
    describe(state, _svc, d) {
      const metric = `buckets ${state.table.count(d.key)}`;
      const skip = refusal(d);
      return skip ? { metric, skip } : { metric };
    },
  });
}

export const mh = makeMh();
