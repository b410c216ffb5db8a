/**
 * Persistence granularity (ipvs-semantics.md §5.2): IPv4 masks are dotted and applied bitwise
 * (non-contiguous masks work); IPv6 netmasks are prefix lengths 1..128.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ipFromWords, parseIp } from '../../src/domain/address.js';
import { IpvsError } from '../../src/domain/errors.js';
import {
  applyNetmask,
  formatNetmask,
  hostMask,
  isHostMask,
  parseNetmask,
  type Netmask,
} from '../../src/domain/netmask.js';

function expectInvalid(fn: () => unknown, field: string, shown: string): IpvsError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, 'expected a rejection').toBeInstanceOf(IpvsError);
  const err = caught as IpvsError;
  expect(err.code).toBe('INVALID_ARGUMENT');
  expect(err.field).toBe(field);
  expect(err.message.startsWith(`${field}: `), err.message).toBe(true);
  expect(err.message).toContain(shown);
  return err;
}

const ip = (t: string) => parseIp(t, 'ip');

describe('parseNetmask, IPv4 services: a dotted mask', () => {
  it.each([
    ['255.255.255.255', 0xffffffff],
    ['255.255.255.0', 0xffffff00],
    ['255.255.0.0', 0xffff0000],
    ['255.255.255.128', 0xffffff80],
    ['128.0.0.0', 0x80000000],
    ['0.0.0.0', 0],
    // Non-contiguous masks are accepted as they are (§5.2).
    ['255.0.255.0', 0xff00ff00],
    ['0.255.0.255', 0x00ff00ff],
    ['255.255.0.255', 0xffff00ff],
    ['170.85.170.85', 0xaa55aa55],
  ])('%s', (text, mask) => {
    const nm = parseNetmask(text, 4, 'service.persistence.netmask');
    expect(nm).toEqual({ family: 4, mask });
    expect(formatNetmask(nm)).toBe(text);
  });

  it.each([
    ['255.255.255.00', '"255.255.255.00"'],
    ['255.255.255.256', '"255.255.255.256"'],
    ['255.255.255', '"255.255.255"'],
    ['/24', '"/24"'],
    ['24', '"24"'],
    ['ffff:ffff::', '"ffff:ffff::"'],
    ['', '""'],
    [24, '24'],
    [0xffffff00, String(0xffffff00)],
    [null, 'null'],
    [true, 'true'],
  ])('rejects %j', (value, shown) => {
    expectInvalid(
      () => parseNetmask(value, 4, 'service.persistence.netmask'),
      'service.persistence.netmask',
      shown,
    );
  });
});

describe('parseNetmask, IPv6 services: a prefix length 1..128', () => {
  it.each([
    [1, 1],
    [64, 64],
    [127, 127],
    [128, 128],
    ['1', 1],
    ['48', 48],
    ['64', 64],
    ['128', 128],
  ])('%j', (value, plen) => {
    const nm = parseNetmask(value, 6, 'p.netmask');
    expect(nm).toEqual({ family: 6, plen });
    expect(formatNetmask(nm)).toBe(String(plen));
  });

  it.each([
    [0, '0'],
    ['0', '"0"'],
    [129, '129'],
    ['129', '"129"'],
    [200, '200'],
    [-1, '-1'],
    [64.5, '64.5'],
    ['64.0', '"64.0"'],
    ['064', '"064"'],
    ['/64', '"/64"'],
    [' 64', '" 64"'],
    ['', '""'],
    ['ffff:ffff:ffff:ffff::', '"ffff:ffff:ffff:ffff::"'],
    ['255.255.255.0', '"255.255.255.0"'],
    [null, 'null'],
    [true, 'true'],
  ])('rejects %j', (value, shown) => {
    expectInvalid(() => parseNetmask(value, 6, 'p.netmask'), 'p.netmask', shown);
  });

  it('accepts exactly 1..128', () => {
    for (let n = -2; n <= 131; n++) {
      if (n >= 1 && n <= 128) expect(parseNetmask(n, 6, 'm')).toEqual({ family: 6, plen: n });
      else expectInvalid(() => parseNetmask(n, 6, 'm'), 'm', String(n));
    }
  });
});

describe('host masks', () => {
  it('default to /32 and /128', () => {
    expect(hostMask(4)).toEqual({ family: 4, mask: 0xffffffff });
    expect(hostMask(6)).toEqual({ family: 6, plen: 128 });
    expect(formatNetmask(hostMask(4))).toBe('255.255.255.255');
    expect(formatNetmask(hostMask(6))).toBe('128');
    expect(isHostMask(hostMask(4))).toBe(true);
    expect(isHostMask(hostMask(6))).toBe(true);
    expect(isHostMask({ family: 4, mask: 0xfffffffe })).toBe(false);
    expect(isHostMask({ family: 6, plen: 127 })).toBe(false);
  });
});

describe('applyNetmask, IPv4: snet = saddr AND mask', () => {
  it.each([
    ['192.168.1.7', '255.255.255.0', '192.168.1.0'],
    ['192.168.1.7', '255.255.255.255', '192.168.1.7'],
    ['192.168.1.7', '0.0.0.0', '0.0.0.0'],
    ['10.20.30.40', '255.0.255.0', '10.0.30.0'],
    ['10.20.30.40', '0.255.0.255', '0.20.0.40'],
    ['255.255.255.255', '170.85.170.85', '170.85.170.85'],
    ['203.0.113.77', '255.255.255.192', '203.0.113.64'],
    ['203.0.113.77', '255.255.0.255', '203.0.0.77'],
  ])('%s & %s = %s', (addr, mask, snet) => {
    expect(applyNetmask(ip(addr), parseNetmask(mask, 4, 'm')).text).toBe(snet);
  });

  it('equals a byte-by-byte AND for any address and any mask', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }),
        fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }),
        (addr, mask) => {
          const nm = parseNetmask(mask.join('.'), 4, 'm');
          const out = applyNetmask(ip(addr.join('.')), nm);
          expect(out.family).toBe(4);
          expect(out.text).toBe(addr.map((b, i) => b & mask[i]).join('.'));
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('applyNetmask, IPv6: the first plen bits', () => {
  it.each([
    ['2001:db8:1:2:3:4:5:6', 64, '2001:db8:1:2::'],
    ['2001:db8:1:2:3:4:5:6', 128, '2001:db8:1:2:3:4:5:6'],
    ['2001:db8:1:2:3:4:5:6', 48, '2001:db8:1::'],
    ['2001:db8:1:2:3:4:5:6', 32, '2001:db8::'],
    ['2001:db8:1:2:3:4:5:6', 96, '2001:db8:1:2:3:4::'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 1, '8000::'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 31, 'ffff:fffe::'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 33, 'ffff:ffff:8000::'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 63, 'ffff:ffff:ffff:fffe::'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 65, 'ffff:ffff:ffff:ffff:8000::'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 97, 'ffff:ffff:ffff:ffff:ffff:ffff:8000:0'],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', 127, 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe'],
    ['2001:db8:abcd:ef01:2345:6789:abcd:ef01', 56, '2001:db8:abcd:ef00::'],
    ['2001:db8:abcd:ef01:2345:6789:abcd:ef01', 60, '2001:db8:abcd:ef00::'],
    ['2001:db8:abcd:ef01:2345:6789:abcd:ef01', 100, '2001:db8:abcd:ef01:2345:6789:a000:0'],
    ['2001:db8:abcd:ef01:2345:6789:abcd:ef01', 3, '2000::'],
  ])('%s/%i → %s', (addr, plen, snet) => {
    expect(applyNetmask(ip(addr), parseNetmask(plen, 6, 'm')).text).toBe(snet);
  });

  const bigOf = (words: readonly number[]) => words.reduce((acc, w) => (acc << 32n) | BigInt(w >>> 0), 0n);

  it('equals a 128-bit shift for any address and prefix length', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 0xffffffff }), { minLength: 4, maxLength: 4 }),
        fc.integer({ min: 1, max: 128 }),
        (words, plen) => {
          const nm: Netmask = parseNetmask(plen, 6, 'm');
          const out = applyNetmask(ipFromWords(6, words), nm);
          const drop = BigInt(128 - plen);
          expect(out.family).toBe(6);
          expect(bigOf(out.words)).toBe((bigOf(words) >> drop) << drop);
          expect(out.text).toBe(ipFromWords(6, out.words).text);
        },
      ),
      { numRuns: 1000 },
    );
  });
});
