/**
 * Hash helpers of the hashing schedulers (§3.15, §3.11) and the slot table dh/sh/mh share.
 *
 * SipHash works on 64-bit words; here each word is two u32 halves held in plain numbers (hi, lo),
 * so no BigInt is touched per hash. Additions carry from lo into hi; rotations by n < 32 exchange
 * bits between the halves and a rotation by 32 swaps them.
 */
import type { SchedDest, SchedService } from './types.js';

/** `include/linux/hash.h` hash_32 (generic): top `bits` (1..32) bits of `x * GOLDEN_RATIO_32 mod 2^32`. */
export function hash32(x: number, bits: number): number {
  return (Math.imul(x, 0x61c88647) >>> 0) >>> (32 - bits);
}

/** A 128-bit SipHash key: two 64-bit words k0, k1 split into u32 halves. */
export interface SipKey {
  readonly k0hi: number;
  readonly k0lo: number;
  readonly k1hi: number;
  readonly k1lo: number;
}

const U32 = 0x1_0000_0000n;

/** Builds a key from its two 64-bit words (`hsiphash_key_t.key[0..1]` on 64-bit kernels). */
export function sipKey(k0: bigint, k1: bigint): SipKey {
  const a = BigInt.asUintN(64, k0);
  const b = BigInt.asUintN(64, k1);
  return { k0hi: Number(a / U32), k0lo: Number(a % U32), k1hi: Number(b / U32), k1lo: Number(b % U32) };
}

// The SipHash state v0..v3, as hi/lo halves. Module-level so the round is a plain call, no allocation.
// prettier-ignore
let v0h = 0, v0l = 0, v1h = 0, v1l = 0, v2h = 0, v2l = 0, v3h = 0, v3l = 0;

/** SIPROUND: v0 += v1; v1 = rol(v1,13) ^ v0; v0 = rol(v0,32); v2 += v3; v3 = rol(v3,16) ^ v2;
 *  v0 += v3; v3 = rol(v3,21) ^ v0; v2 += v1; v1 = rol(v1,17) ^ v2; v2 = rol(v2,32). */
function sipRound(): void {
  let s: number, h: number, l: number;
  // v0 += v1
  s = v0l + v1l;
  v0h = (v0h + v1h + (s > 0xffffffff ? 1 : 0)) >>> 0;
  v0l = s >>> 0;
  // v1 = rol(v1, 13) ^ v0
  h = v1h;
  l = v1l;
  v1h = (((h << 13) | (l >>> 19)) ^ v0h) >>> 0;
  v1l = (((l << 13) | (h >>> 19)) ^ v0l) >>> 0;
  // v0 = rol(v0, 32)
  h = v0h;
  v0h = v0l;
  v0l = h;
  // v2 += v3
  s = v2l + v3l;
  v2h = (v2h + v3h + (s > 0xffffffff ? 1 : 0)) >>> 0;
  v2l = s >>> 0;
  // v3 = rol(v3, 16) ^ v2
  h = v3h;
  l = v3l;
  v3h = (((h << 16) | (l >>> 16)) ^ v2h) >>> 0;
  v3l = (((l << 16) | (h >>> 16)) ^ v2l) >>> 0;
  // v0 += v3
  s = v0l + v3l;
  v0h = (v0h + v3h + (s > 0xffffffff ? 1 : 0)) >>> 0;
  v0l = s >>> 0;
  // v3 = rol(v3, 21) ^ v0
  h = v3h;
  l = v3l;
  v3h = (((h << 21) | (l >>> 11)) ^ v0h) >>> 0;
  v3l = (((l << 21) | (h >>> 11)) ^ v0l) >>> 0;
  // v2 += v1
  s = v2l + v1l;
  v2h = (v2h + v1h + (s > 0xffffffff ? 1 : 0)) >>> 0;
  v2l = s >>> 0;
  // v1 = rol(v1, 17) ^ v2
  h = v1h;
  l = v1l;
  v1h = (((h << 17) | (l >>> 15)) ^ v2h) >>> 0;
  v1l = (((l << 17) | (h >>> 15)) ^ v2l) >>> 0;
  // v2 = rol(v2, 32)
  h = v2h;
  v2h = v2l;
  v2l = h;
}

/** Initial state: the "somepseudorandomlygeneratedbytes" constants XOR the key. */
function sipInit(key: SipKey): void {
  v0h = (0x736f6d65 ^ key.k0hi) >>> 0;
  v0l = (0x70736575 ^ key.k0lo) >>> 0;
  v1h = (0x646f7261 ^ key.k1hi) >>> 0;
  v1l = (0x6e646f6d ^ key.k1lo) >>> 0;
  v2h = (0x6c796765 ^ key.k0hi) >>> 0;
  v2l = (0x6e657261 ^ key.k0lo) >>> 0;
  v3h = (0x74656462 ^ key.k1hi) >>> 0;
  v3l = (0x79746573 ^ key.k1lo) >>> 0;
}

/** Absorbs one 64-bit message word m = (mh, ml) with `c` compression rounds. */
function sipAbsorb(mh: number, ml: number, c: number): void {
  v3h = (v3h ^ mh) >>> 0;
  v3l = (v3l ^ ml) >>> 0;
  for (let i = 0; i < c; i++) sipRound();
  v0h = (v0h ^ mh) >>> 0;
  v0l = (v0l ^ ml) >>> 0;
}

/** Final word b (length << 56 | tail bytes) absorbed, then `d` finalization rounds; state left in v*. */
function sipFinish(bh: number, bl: number, c: number, d: number): void {
  sipAbsorb(bh, bl, c);
  v2l = (v2l ^ 0xff) >>> 0;
  for (let i = 0; i < d; i++) sipRound();
}

const le32 = (m: Uint8Array, i: number): number =>
  (m[i] | (m[i + 1] << 8) | (m[i + 2] << 16) | (m[i + 3] << 24)) >>> 0;

/**
 * SipHash-c-d of `msg`, the whole 64-bit result. c=2, d=4 is SipHash-2-4 (kernel `siphash`);
 * c=1, d=3 is what 64-bit kernels run as `hsiphash` (before truncation to 32 bits).
 */
export function siphash(msg: Uint8Array, key: SipKey, c = 2, d = 4): bigint {
  sipInit(key);
  const full = msg.length - (msg.length % 8);
  for (let i = 0; i < full; i += 8) sipAbsorb(le32(msg, i + 4), le32(msg, i), c);
  // b = len << 56 | the remaining (< 8) bytes little-endian
  let bh = (msg.length & 0xff) << 24;
  let bl = 0;
  for (let i = full; i < msg.length; i++) {
    const sh = (i - full) * 8;
    if (sh < 32) bl |= msg[i] << sh;
    else bh |= msg[i] << (sh - 32);
  }
  sipFinish(bh >>> 0, bl >>> 0, c, d);
  const hi = (v0h ^ v1h ^ v2h ^ v3h) >>> 0;
  const lo = (v0l ^ v1l ^ v2l ^ v3l) >>> 0;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

/**
 * `hsiphash(&v, 4, key)` on a 64-bit kernel: SipHash-1-3 over the 4-byte little-endian u32 `v`
 * (no full block, so b = 4 << 56 | v), truncated to its low 32 bits. Same as `siphash(le(v), key, 1, 3)`.
 */
export function hsiphash(v: number, key: SipKey): number {
  sipInit(key);
  sipFinish(0x04000000, v >>> 0, 1, 3);
  return (v0l ^ v1l ^ v2l ^ v3l) >>> 0;
}

/** Ports hashed by sh/mh with the -port flag: TCP/UDP/SCTP (`ip_vs_*_get_port`); others hash port 0. */
export function hashedPort(protocol: string, cport: number): number {
  return protocol === 'tcp' || protocol === 'udp' || protocol === 'sctp' ? cport : 0;
}

/** An explain note for one table lookup: `bucket 248 -> 10.0.0.1:80 refused (weight 0)`. */
export function slotNote(bucket: number, d: SchedDest, why: string | undefined): string {
  return `bucket ${bucket} -> ${d.key}${why ? ` refused (${why})` : ''}`;
}

/**
 * A bucket/slot table of destinations (dh, sh, mh), with a per-dest slot count for explain. Slots
 * hold the dest objects themselves, so weight and OVERLOAD changes are seen without a rebuild, as
 * through the kernel's pointers. A dest that has left the list (pos -1) reads as an empty slot:
 * only mh's kept table (more dests than slots, §3.11) can still name one.
 */
export class DestSlots {
  private readonly slots: (SchedDest | null)[];
  private readonly counts = new Map<string, number>();

  constructor(readonly size: number) {
    this.slots = new Array<SchedDest | null>(size).fill(null);
  }

  /** Every slot empty. */
  clear(): void {
    this.slots.fill(null);
    this.counts.clear();
  }

  set(slot: number, d: SchedDest): void {
    const old = this.slots[slot];
    if (old !== null) this.counts.set(old.key, (this.counts.get(old.key) ?? 1) - 1);
    this.slots[slot] = d;
    this.counts.set(d.key, (this.counts.get(d.key) ?? 0) + 1);
  }

  get(_svc: SchedService, slot: number): SchedDest | null {
    const d = this.slots[slot];
    return d !== null && d.pos >= 0 ? d : null;
  }

  /** The key each slot names (null when empty): for tests and inspection, not the lookup path. */
  get keys(): (string | null)[] {
    return this.slots.map((d) => d?.key ?? null);
  }

  /** How many slots name the destination with this key. */
  count(key: string): number {
    return this.counts.get(key) ?? 0;
  }
}
