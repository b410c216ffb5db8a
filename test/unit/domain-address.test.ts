/**
 * Strict IPv4 / IPv6 parsing, RFC 5952 canonical output and the unicast checks a real server
 * address must pass (ipvs-semantics.md §1.2: `ip_vs_new_dest`).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  compareIp,
  formatV4,
  formatV6,
  ipFromWords,
  isUnspecified,
  parseIp,
  unicastProblem,
} from '../../src/domain/address.js';
import { IpvsError } from '../../src/domain/errors.js';

/** Runs `fn`, expecting an INVALID_ARGUMENT IpvsError that names `field` and shows `shown`. */
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

const hexWords = (words: readonly number[]) => words.map((w) => w.toString(16).padStart(8, '0')).join(' ');

describe('parseIp: IPv4 dotted quads', () => {
  it.each([
    ['0.0.0.0', 0x00000000],
    ['10.0.0.1', 0x0a000001],
    ['1.2.3.4', 0x01020304],
    ['192.168.1.10', 0xc0a8010a],
    ['255.255.255.255', 0xffffffff],
    ['100.64.0.0', 0x64400000],
    ['199.0.99.9', 0xc7006309],
  ])('%s → 0x%s', (text, word) => {
    const ip = parseIp(text, 'address');
    expect(ip.family).toBe(4);
    expect(ip.words).toEqual([word]);
    expect(ip.text).toBe(text);
  });

  it.each([
    ['01.2.3.4', 'leading zero in the first octet'],
    ['1.2.3.04', 'leading zero in the last octet'],
    ['10.0.00.1', 'double zero octet'],
    ['010.0.0.1', 'octal-looking octet'],
    ['256.0.0.1', 'octet 256'],
    ['1.2.3.256', 'last octet 256'],
    ['1.2.999.4', 'octet 999'],
    ['1000.0.0.1', 'four-digit octet'],
    ['1.2.3', 'three octets'],
    ['1.2.3.4.5', 'five octets'],
    ['1..2.3', 'empty octet'],
    ['.1.2.3', 'leading dot'],
    ['1.2.3.4.', 'trailing dot'],
    ['', 'empty string'],
    [' 1.2.3.4', 'leading space'],
    ['1.2.3.4 ', 'trailing space'],
    ['+1.2.3.4', 'plus sign'],
    ['1.2.3.-4', 'minus sign'],
    ['0x1.2.3.4', 'hex octet'],
    ['1e2.0.0.1', 'exponent'],
    ['1.2.3.4/32', 'prefix suffix'],
    ['1.2.3.4:80', 'port suffix'],
    ['[1.2.3.4]', 'brackets'],
    ['167772161', 'a bare integer'],
    ['localhost', 'a host name'],
    ['١.٢.٣.٤', 'non-ASCII digits'],
  ])('rejects %j (%s)', (text) => {
    expectInvalid(() => parseIp(text, 'service.address'), 'service.address', JSON.stringify(text));
  });

  it.each([
    [167772161, '167772161'],
    [null, 'null'],
    [undefined, 'undefined'],
    [true, 'true'],
    [['10.0.0.1'], '["10.0.0.1"]'],
    [{ ip: '10.0.0.1' }, '{"ip":"10.0.0.1"}'],
  ])('rejects the non-string %j', (value, shown) => {
    expectInvalid(() => parseIp(value, 'client'), 'client', shown);
  });

  it('every 32-bit word formats and parses back to itself', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (word) => {
        const text = formatV4(word);
        expect(text).toBe([word >>> 24, (word >>> 16) & 255, (word >>> 8) & 255, word & 255].join('.'));
        const ip = parseIp(text, 'x');
        expect(ip.family).toBe(4);
        expect(ip.words).toEqual([word]);
        expect(ip.text).toBe(text);
      }),
      { numRuns: 500 },
    );
  });

  it('rejects any octet above 255 and any octet with a leading zero', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 4, maxLength: 4 }),
        fc.integer({ min: 0, max: 3 }),
        fc.oneof(
          fc.integer({ min: 256, max: 999 }).map(String),
          fc.integer({ min: 0, max: 99 }).map((n) => '0' + String(n)),
        ),
        (octets, at, bad) => {
          const parts = octets.map(String);
          parts[at] = bad;
          const text = parts.join('.');
          expectInvalid(() => parseIp(text, 'addr'), 'addr', JSON.stringify(text));
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('parseIp: IPv6', () => {
  it.each([
    ['::', '::', [0, 0, 0, 0]],
    ['::1', '::1', [0, 0, 0, 1]],
    ['1::', '1::', [0x00010000, 0, 0, 0]],
    ['2001:db8::1', '2001:db8::1', [0x20010db8, 0, 0, 1]],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1', [0x20010db8, 0, 0, 1]],
    ['2001:0db8:0000:0000:0000:0000:0000:0001', '2001:db8::1', [0x20010db8, 0, 0, 1]],
    ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1', [0x20010db8, 0, 0x00010000, 1]],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1', [0x20010000, 0x00000001, 0, 1]],
    ['1:0:0:2:0:0:0:3', '1:0:0:2::3', [0x00010000, 0x00000002, 0, 3]],
    ['2001:db8::0:1', '2001:db8::1', [0x20010db8, 0, 0, 1]],
    ['1::2:3:4:5:6:7', '1:0:2:3:4:5:6:7', [0x00010000, 0x00020003, 0x00040005, 0x00060007]],
    ['1:2:3:4:5:6:7::', '1:2:3:4:5:6:7:0', [0x00010002, 0x00030004, 0x00050006, 0x00070000]],
    ['::2:3:4:5:6:7:8', '0:2:3:4:5:6:7:8', [0x00000002, 0x00030004, 0x00050006, 0x00070008]],
    ['1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7:8', [0x00010002, 0x00030004, 0x00050006, 0x00070008]],
    ['FE80::ABCD', 'fe80::abcd', [0xfe800000, 0, 0, 0x0000abcd]],
    ['ff02::1', 'ff02::1', [0xff020000, 0, 0, 1]],
    ['2001:db8:0:1:1:1:1:1', '2001:db8:0:1:1:1:1:1', [0x20010db8, 0x00000001, 0x00010001, 0x00010001]],
    ['0:0:1:0:0:1:0:0', '::1:0:0:1:0:0', [0, 0x00010000, 0x00000001, 0]],
    ['1:0:0:0:1:0:0:0', '1::1:0:0:0', [0x00010000, 0, 0x00010000, 0]],
    [
      'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
      [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff],
    ],
    // Embedded IPv4 in the last 32 bits.
    ['::ffff:1.2.3.4', undefined, [0, 0, 0x0000ffff, 0x01020304]],
    ['::ffff:192.0.2.128', undefined, [0, 0, 0x0000ffff, 0xc0000280]],
    ['64:ff9b::192.0.2.33', undefined, [0x0064ff9b, 0, 0, 0xc0000221]],
    ['1:2:3:4:5:6:1.2.3.4', '1:2:3:4:5:6:102:304', [0x00010002, 0x00030004, 0x00050006, 0x01020304]],
    ['1:2::3:4:1.2.3.4', '1:2::3:4:102:304', [0x00010002, 0, 0x00030004, 0x01020304]],
    ['0000:0000:0000:0000:0000:ffff:255.255.255.255', undefined, [0, 0, 0x0000ffff, 0xffffffff]],
  ])('%s → %s', (input, canonical, words) => {
    const ip = parseIp(input, 'address');
    expect(ip.family).toBe(6);
    expect(hexWords(ip.words)).toBe(hexWords(words as number[]));
    if (canonical !== undefined) expect(ip.text).toBe(canonical);
  });

  it.each([
    ['1::2::3', 'two "::"'],
    [':::', 'three colons'],
    ['::::', 'four colons'],
    [':1:2:3:4:5:6:7', 'single leading colon'],
    ['1:2:3:4:5:6:7:', 'single trailing colon'],
    [':1::', 'single colon then "::"'],
    ['1:2:3:4:5:6:7:8:9', 'nine groups'],
    ['1:2:3:4:5:6:7', 'seven groups without "::"'],
    ['1:2:3:4:5:6:7:8::', '"::" after eight groups'],
    ['::1:2:3:4:5:6:7:8', '"::" before eight groups'],
    ['1::2:3:4:5:6:7:8', '"::" standing for no group'],
    ['12345::', 'five hex digits'],
    ['00000::', 'five zero digits'],
    ['::g', 'non-hex digit'],
    ['2001:db8::1%eth0', 'zone index'],
    ['fe80::1%1', 'numeric zone index'],
    ['[2001:db8::1]', 'brackets'],
    ['[::1]', 'brackets around ::1'],
    ['2001:db8::1/64', 'prefix length'],
    [' ::1', 'leading space'],
    ['::1 ', 'trailing space'],
    ['2001:db8:::1', 'triple colon inside'],
    ['::ffff:1.2.3', 'short embedded IPv4'],
    ['::ffff:1.2.3.4.5', 'long embedded IPv4'],
    ['::ffff:1.2.3.04', 'leading zero in embedded IPv4'],
    ['::ffff:256.2.3.4', 'embedded IPv4 octet 256'],
    ['::1.2.3.4.', 'trailing dot'],
    ['1.2.3.4::', 'IPv4 before "::"'],
    ['1.2.3.4::1', 'IPv4 at the front'],
    ['2001:db8::1.2.3.4:1', 'IPv4 not last'],
    ['1:2:3:4:5:6:7:1.2.3.4', 'embedded IPv4 making nine groups'],
    ['1:2:3:4:5:6::1.2.3.4', 'embedded IPv4, "::" standing for no group'],
    ['::1:2:3:4:5:6:1.2.3.4', '"::" plus eight groups with IPv4'],
    ['::ffff:0x1.2.3.4', 'hex in embedded IPv4'],
    ['0:0:0:0:0:0:0:0:0', 'nine zero groups'],
    ['-1::', 'sign'],
    ['0x1::', 'hex prefix'],
  ])('rejects %j (%s)', (text) => {
    expectInvalid(() => parseIp(text, 'virtual'), 'virtual', JSON.stringify(text));
  });

  // An independent oracle: the WHATWG URL serializer writes IPv6 hosts by RFC 5952 section 4
  // (lowercase, no leading zeros, the first longest run of two or more zero groups as "::").
  // glibc's inet_ntop (what ipvsadm prints) differs in one way: IPv4-mapped (::ffff:a.b.c.d) and
  // IPv4-compatible (::a.b.c.d) addresses keep a dotted tail.
  const viaUrl = (groups: readonly number[]) => {
    const zeros = (n: number) => groups.slice(0, n).every((g) => g === 0);
    const dotted = `${groups[6] >> 8}.${groups[6] & 255}.${groups[7] >> 8}.${groups[7] & 255}`;
    if (zeros(6) && groups[6] !== 0) return `::${dotted}`;
    if (zeros(5) && groups[5] === 0xffff) return `::ffff:${dotted}`;
    return new URL(`http://[${groups.map((g) => g.toString(16)).join(':')}]/`).hostname.slice(1, -1);
  };
  const groupArb = fc.oneof(
    { weight: 3, arbitrary: fc.constant(0) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 0xf }) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
  );
  const groupsArb = fc.array(groupArb, { minLength: 8, maxLength: 8 });
  const toWords = (g: readonly number[]) => [0, 1, 2, 3].map((i) => ((g[2 * i] << 16) | g[2 * i + 1]) >>> 0);

  it('formats like RFC 5952 (checked against the WHATWG URL serializer) and parses back', () => {
    fc.assert(
      fc.property(groupsArb, (groups) => {
        const words = toWords(groups);
        const text = formatV6(words);
        expect(text).toBe(viaUrl(groups));
        const ip = parseIp(text, 'x');
        expect(ip.family).toBe(6);
        expect(ip.words).toEqual(words);
        expect(ip.text).toBe(text);
        expect(ipFromWords(6, words).text).toBe(text);
      }),
      { numRuns: 1000 },
    );
  });

  it('accepts every legal spelling of an address (case, leading zeros, any "::", embedded IPv4)', () => {
    const spellingArb = fc.record({
      groups: groupsArb,
      pads: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: 8, maxLength: 8 }),
      upper: fc.array(fc.boolean(), { minLength: 8, maxLength: 8 }),
      v4Tail: fc.boolean(),
      squeeze: fc.nat(),
    });
    fc.assert(
      fc.property(spellingArb, ({ groups, pads, upper, v4Tail, squeeze }) => {
        const hexCount = v4Tail ? 6 : 8;
        const items = groups.slice(0, hexCount).map((g, i) => {
          const h = g.toString(16);
          const padded = h.padStart(Math.min(4, h.length + pads[i]), '0');
          return upper[i] ? padded.toUpperCase() : padded;
        });
        if (v4Tail) {
          const w = ((groups[6] << 16) | groups[7]) >>> 0;
          items.push(formatV4(w));
        }
        // Every run of zero groups among the hex items may be written as "::" (at most once).
        const runs: [number, number][] = [];
        for (let s = 0; s < hexCount; s++) {
          for (let e = s + 1; e <= hexCount && groups[e - 1] === 0; e++) runs.push([s, e]);
        }
        let text = items.join(':');
        if (runs.length > 0 && squeeze % 3 !== 0) {
          const [s, e] = runs[squeeze % runs.length];
          text = `${items.slice(0, s).join(':')}::${items.slice(e).join(':')}`;
        }
        const ip = parseIp(text, 'x');
        expect(ip.family).toBe(6);
        expect(hexWords(ip.words)).toBe(hexWords(toWords(groups)));
        expect(ip.text).toBe(viaUrl(groups));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('formatV6: RFC 5952 section 4', () => {
  it.each([
    [[0x20010db8, 0, 0, 1], '2001:db8::1'],
    // First of two equally long runs.
    [[0x20010db8, 0, 0x00010000, 1], '2001:db8::1:0:0:1'],
    // The longer run wins even when it is second.
    [[0x00010000, 0x00000002, 0, 3], '1:0:0:2::3'],
    // A single zero group is never "::".
    [[0x20010db8, 0x00000001, 0x00010001, 0x00010001], '2001:db8:0:1:1:1:1:1'],
    [[0x00010000, 0x00020003, 0x00040005, 0x00060007], '1:0:2:3:4:5:6:7'],
    [[0, 0, 0, 0], '::'],
    [[0, 0, 0, 1], '::1'],
    [[0x00010000, 0, 0, 0], '1::'],
    [[0xabcd0000, 0, 0, 0x0000ef01], 'abcd::ef01'],
    [[0x00000000, 0x00010000, 0x00000001, 0x00000000], '::1:0:0:1:0:0'],
    [[0x0a0b0c0d, 0x0e0f0000, 0, 0], 'a0b:c0d:e0f::'],
  ])('%j → %s', (words, text) => {
    expect(formatV6(words)).toBe(text);
  });
});

describe('unicastProblem: what may be a real server (ip_vs_new_dest)', () => {
  const ip = (t: string) => parseIp(t, 'ip');

  it.each([
    '10.1.0.2',
    '1.2.3.4',
    '127.0.0.1',
    '223.255.255.255',
    '255.255.255.254',
    '192.168.1.255',
    '2001:db8::7',
    '::1',
    'fec0::1',
    'fe00::1',
    'fec0::',
    'fe7f:ffff::1',
    'feff::1',
    'fc00::1',
  ])('%s is acceptable', (t) => {
    expect(unicastProblem(ip(t))).toBeUndefined();
  });

  it.each([
    ['0.0.0.0', /unspecified/],
    ['224.0.0.1', /multicast/],
    ['224.0.0.0', /multicast/],
    ['239.255.255.255', /multicast/],
    ['230.1.2.3', /multicast/],
    ['255.255.255.255', /broadcast/],
    ['::', /unspecified/],
    ['ff02::1', /multicast/],
    ['ff00::', /multicast/],
    ['ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff', /multicast/],
    ['fe80::1', /link-local/],
    ['fe80::', /link-local/],
    ['fe9f::1', /link-local/],
    ['febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff', /link-local/],
  ])('%s is refused (%s)', (t, why) => {
    expect(unicastProblem(ip(t))).toMatch(why);
  });

  it('isUnspecified is true only for the all-zero address of each family', () => {
    expect(isUnspecified(ip('0.0.0.0'))).toBe(true);
    expect(isUnspecified(ip('::'))).toBe(true);
    expect(isUnspecified(ip('0.0.0.1'))).toBe(false);
    expect(isUnspecified(ip('::1'))).toBe(false);
  });
});

describe('compareIp', () => {
  it('orders by family, then unsigned words', () => {
    const ip = (t: string) => parseIp(t, 'ip');
    expect(compareIp(ip('10.0.0.1'), ip('10.0.0.2'))).toBeLessThan(0);
    expect(compareIp(ip('200.0.0.1'), ip('10.0.0.2'))).toBeGreaterThan(0);
    expect(compareIp(ip('255.0.0.0'), ip('1.0.0.0'))).toBeGreaterThan(0);
    expect(compareIp(ip('10.0.0.1'), ip('::1'))).toBeLessThan(0);
    expect(compareIp(ip('ffff::'), ip('::ffff'))).toBeGreaterThan(0);
    expect(compareIp(ip('2001:db8::1'), ip('2001:DB8:0::1'))).toBe(0);
  });
});
