import { describe, expect, it } from 'vitest';
import { fold, parseIp } from '../../src/domain/address.js';
import { DestSlots, hash32, hashedPort, hsiphash, siphash, sipKey } from '../../src/schedulers/hash.js';
import type { SchedDest } from '../../src/schedulers/types.js';

const ip = (text: string) => parseIp(text, 'ip');

describe('hash32 (§3.15)', () => {
  it.each([
    ['10.0.0.1', 39, 159],
    ['192.168.1.10', 248, 995],
    ['172.16.5.4', 138, 552],
    ['203.0.113.7', 124, 499],
  ])('%s → %i (8 bits) / %i (10 bits)', (addr, b8, b10) => {
    expect(hash32(fold(ip(addr)), 8)).toBe(b8);
    expect(hash32(fold(ip(addr)), 10)).toBe(b10);
  });

  it('B1: lblc/lblcr 10-bit buckets 10.0.0.1 / 192.168.1.10 = 159 / 995', () => {
    expect([hash32(0x0a000001, 10), hash32(0xc0a8010a, 10)]).toEqual([159, 995]);
  });

  it('H1: fold(2001:db8::1) = 0x20010DB9, 8-bit bucket 63', () => {
    const f = fold(ip('2001:db8::1'));
    expect(f).toBe(0x20010db9);
    expect(hash32(f, 8)).toBe(63);
  });

  it('wraps the product modulo 2^32 and returns an unsigned value', () => {
    expect(hash32(0xffffffff, 32)).toBe((0x100000000 - 0x61c88647) >>> 0);
    expect(hash32(0xffffffff, 1)).toBe(1);
  });
});

// Key 00 01 .. 0f, message 00 01 .. (len-1): the reference SipHash vectors (veorq/SipHash), as the
// kernel's lib/test_siphash.c lists them (64-bit little-endian words).
const TEST_KEY = sipKey(0x0706050403020100n, 0x0f0e0d0c0b0a0908n);
const SIPHASH24: Record<number, bigint> = {
  0: 0x726fdb47dd0e0e31n,
  1: 0x74f839c593dc67fdn,
  2: 0x0d6c8009d9a94f5an,
  3: 0x85676696d7fb7e2dn,
  4: 0xcf2794e0277187b7n,
  5: 0x18765564cd99a68dn,
  6: 0xcbc9466e58fee3cen,
  7: 0xab0200f58b01d137n,
  8: 0x93f5f5799a932462n,
  9: 0x9e0082df0ba9e4b0n,
  15: 0xa129ca6149be45e5n,
  16: 0x3f2acc7f57c29bdbn,
  17: 0x699ae9f52cbe4794n,
  63: 0x958a324ceb064572n,
};
// 64-bit kernels' hsiphash (SipHash-1-3 truncated to 32 bits), same key and messages.
const HSIPHASH64: Record<number, number> = {
  0: 0x050fc4dc,
  1: 0x7d57ca93,
  2: 0x4dc7d44d,
  3: 0xe7ddf7fb,
  4: 0x88d38328,
  5: 0x49533b67,
  7: 0x9bb11140,
  8: 0x8d299a8e,
  15: 0x2a519956,
  16: 0x7d908b66,
  63: 0xb7bbb3a8,
};
const bytes = (n: number) => Uint8Array.from({ length: n }, (_, i) => i);
const le = (v: number) => Uint8Array.of(v & 255, (v >>> 8) & 255, (v >>> 16) & 255, v >>> 24);

describe('SipHash core', () => {
  it.each(Object.entries(SIPHASH24))('SipHash-2-4 official vector, length %s', (len, want) => {
    expect(siphash(bytes(Number(len)), TEST_KEY)).toBe(want);
  });

  it.each(Object.entries(HSIPHASH64))(
    'SipHash-1-3 (kernel hsiphash, 64-bit) vector, length %s',
    (len, want) => {
      expect(Number(siphash(bytes(Number(len)), TEST_KEY, 1, 3) & 0xffffffffn)).toBe(want);
    },
  );

  it('hsiphash(v) is hsiphash_1u32: the 4-byte vector with v = 0x03020100', () => {
    expect(hsiphash(0x03020100, TEST_KEY)).toBe(HSIPHASH64[4]);
  });

  it('hsiphash(v) agrees with the generic SipHash-1-3 over le32(v), truncated', () => {
    const k = sipKey(0xfedcba9876543210n, 0x0123456789abcdefn);
    for (let i = 0, v = 1; i < 200; i++, v = (Math.imul(v, 1103515245) + 12345) >>> 0) {
      expect(hsiphash(v, k)).toBe(Number(siphash(le(v), k, 1, 3) & 0xffffffffn));
    }
  });

  it('M1/M4: mh keys hash1 = {2654435761, 2654435761}', () => {
    const hash1 = sipKey(2654435761n, 2654435761n);
    expect(hsiphash(0x0a000051, hash1)).toBe(1134300350);
    expect(hsiphash(0xc0a8010a, hash1)).toBe(3588839862);
  });
});

describe('helpers', () => {
  it('hashedPort keeps the port of tcp/udp/sctp only', () => {
    expect([
      hashedPort('tcp', 5),
      hashedPort('udp', 6),
      hashedPort('sctp', 7),
      hashedPort('icmp', 8),
    ]).toEqual([5, 6, 7, 0]);
  });
});

describe('DestSlots', () => {
  const mk = (key: string, pos: number): SchedDest => ({
    key,
    ip: ip('10.0.0.1'),
    port: 80,
    weight: 1,
    lastWeight: 1,
    activeConns: 0,
    inactiveConns: 0,
    overloaded: false,
    available: true,
    pos,
  });

  it('slots hold the live dest objects and count slots per key', () => {
    const a = mk('a', 0);
    const b = mk('b', 1);
    const t = new DestSlots(4);
    t.set(0, a);
    t.set(1, b);
    t.set(2, a);
    const svc = { dests: [a, b], flags: 0 };
    (a as { weight: number }).weight = 9; // edits are seen without a rebuild
    expect(t.get(svc, 2)).toBe(a);
    expect(t.get(svc, 2)?.weight).toBe(9);
    expect(t.get(svc, 3)).toBeNull();
    expect([t.count('a'), t.count('b'), t.count('c')]).toEqual([2, 1, 0]);
    t.set(2, b);
    expect([t.count('a'), t.count('b')]).toEqual([1, 2]);
    t.clear();
    expect(t.keys).toEqual([null, null, null, null]);
    expect(t.count('a')).toBe(0);
  });

  it('reads a dest that has left the list (pos -1) as an empty slot', () => {
    const a = mk('a', 0);
    const t = new DestSlots(1);
    t.set(0, a);
    expect(t.get({ dests: [a], flags: 0 }, 0)).toBe(a);
    (a as { pos: number }).pos = -1;
    expect(t.get({ dests: [], flags: 0 }, 0)).toBeNull();
  });
});
