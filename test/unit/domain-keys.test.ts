/**
 * Names of things (API.md "Names"): protocols, ports, firewall marks, endpoints (IPv6 in brackets,
 * IPv4 without) and virtual service keys, parsed strictly and written canonically.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatV4, formatV6, ipFromWords } from '../../src/domain/address.js';
import { IpvsError } from '../../src/domain/errors.js';
import {
  formatEndpoint,
  parseEndpoint,
  parseFwmark,
  parsePort,
  parseProtocol,
  parseServiceKey,
  serviceFamily,
  serviceKeyOf,
  type ServiceId,
} from '../../src/domain/keys.js';

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

describe('parseProtocol', () => {
  it.each(['tcp', 'udp', 'sctp'])('accepts %s', (p) => {
    expect(parseProtocol(p, 'protocol')).toBe(p);
  });

  it.each([
    ['TCP', '"TCP"'],
    ['icmp', '"icmp"'],
    ['', '""'],
    [' tcp', '" tcp"'],
    [6, '6'],
    [null, 'null'],
    [undefined, 'undefined'],
  ])('rejects %j', (value, shown) => {
    expectInvalid(() => parseProtocol(value, 'service.protocol'), 'service.protocol', shown);
  });
});

describe('parsePort: 0..65535', () => {
  it.each([
    [0, 0],
    [1, 1],
    [80, 80],
    [65535, 65535],
    ['443', 443],
    ['0', 0],
    ['65535', 65535],
  ])('accepts %j', (value, port) => {
    expect(parsePort(value, 'port')).toBe(port);
  });

  it.each([
    [-1, '-1'],
    [65536, '65536'],
    [70000, '70000'],
    [1.5, '1.5'],
    [Number.NaN, '(got '],
    [Number.POSITIVE_INFINITY, '(got '],
    ['65536', '"65536"'],
    ['-1', '"-1"'],
    ['', '""'],
    [' 80', '" 80"'],
    ['80 ', '"80 "'],
    ['0x50', '"0x50"'],
    ['1e2', '"1e2"'],
    ['8o', '"8o"'],
    ['123456', '"123456"'],
    [null, 'null'],
    [undefined, 'undefined'],
    [true, 'true'],
    [[80], '[80]'],
  ])('rejects %j', (value, shown) => {
    expectInvalid(() => parsePort(value, 'service.port'), 'service.port', shown);
  });

  it('accepts exactly the integers 0..65535', () => {
    fc.assert(
      fc.property(fc.integer({ min: -100000, max: 200000 }), (n) => {
        if (n >= 0 && n <= 65535) expect(parsePort(n, 'p')).toBe(n);
        else expectInvalid(() => parsePort(n, 'p'), 'p', String(n));
      }),
      { numRuns: 500 },
    );
  });
});

describe('parseFwmark: 1..4294967295', () => {
  it.each([
    [1, 1],
    [42, 42],
    [4294967295, 4294967295],
    ['42', 42],
    ['4294967295', 4294967295],
  ])('accepts %j', (value, mark) => {
    expect(parseFwmark(value, 'fwmark')).toBe(mark);
  });

  it.each([
    [0, '0'],
    [-1, '-1'],
    [4294967296, '4294967296'],
    [2 ** 53, String(2 ** 53)],
    [1.5, '1.5'],
    ['0', '"0"'],
    ['4294967296', '"4294967296"'],
    ['99999999999', '"99999999999"'],
    ['', '""'],
    ['abc', '"abc"'],
    ['-1', '"-1"'],
    ['0x2a', '"0x2a"'],
    [null, 'null'],
    [undefined, 'undefined'],
    [false, 'false'],
  ])('rejects %j', (value, shown) => {
    expectInvalid(() => parseFwmark(value, 'service.fwmark'), 'service.fwmark', shown);
  });
});

describe('parseEndpoint: addr:port, IPv6 in brackets', () => {
  it.each([
    ['10.0.0.1:80', '10.0.0.1', 80, '10.0.0.1:80'],
    ['192.168.1.7:40001', '192.168.1.7', 40001, '192.168.1.7:40001'],
    ['0.0.0.0:0', '0.0.0.0', 0, '0.0.0.0:0'],
    ['255.255.255.255:65535', '255.255.255.255', 65535, '255.255.255.255:65535'],
    ['[2001:db8::1]:80', '2001:db8::1', 80, '[2001:db8::1]:80'],
    ['[2001:DB8:0:0:0:0:0:1]:53', '2001:db8::1', 53, '[2001:db8::1]:53'],
    ['[::1]:65535', '::1', 65535, '[::1]:65535'],
    ['[::]:0', '::', 0, '[::]:0'],
    ['[::ffff:1.2.3.4]:8080', '::ffff:1.2.3.4', 8080, '[::ffff:1.2.3.4]:8080'],
  ])('%s', (text, addr, port, canonical) => {
    const ep = parseEndpoint(text, 'client');
    expect(ep.ip.text).toBe(addr);
    expect(ep.port).toBe(port);
    expect(formatEndpoint(ep.ip, ep.port)).toBe(canonical);
  });

  it.each([
    ['[10.0.0.1]:80', '"[10.0.0.1]:80"', 'IPv4 in brackets'],
    ['2001:db8::1:80', '"2001:db8::1:80"', 'IPv6 without brackets'],
    ['::1:80', '"::1:80"', 'IPv6 without brackets'],
    ['10.0.0.1', '"10.0.0.1"', 'no port'],
    ['[2001:db8::1]', '"[2001:db8::1]"', 'no port'],
    ['10.0.0.1:', '"10.0.0.1:"', 'empty port'],
    ['[::1]:', '"[::1]:"', 'empty port'],
    ['[::1]80', '"[::1]80"', 'no colon after the bracket'],
    ['[::1:80', '"[::1:80"', 'unclosed bracket'],
    ['::1]:80', '"::1]:80"', 'no opening bracket'],
    ['[[::1]]:80', '"[[::1]]:80"', 'double brackets'],
    ['10.0.0.1:65536', '65536', 'port 65536'],
    ['[::1]:65536', '65536', 'port 65536'],
    ['10.0.0.1:-1', '"10.0.0.1:-1"', 'negative port'],
    ['10.0.0.1:1e2', '"10.0.0.1:1e2"', 'exponent port'],
    ['10.0.0.1:80:81', '"10.0.0.1:80:81"', 'two ports'],
    ['[::1]:80:81', '"[::1]:80:81"', 'two ports'],
    ['10.0.0.01:80', '"10.0.0.01"', 'leading zero octet'],
    ['256.0.0.1:80', '"256.0.0.1"', 'octet 256'],
    ['[fe80::1%eth0]:80', '"fe80::1%eth0"', 'zone index'],
    ['[1::2::3]:80', '"1::2::3"', 'two "::"'],
    ['', '""', 'empty'],
    [':80', '""', 'no address'],
    ['host.example:80', '"host.example"', 'host name'],
    [8080, '8080', 'a number'],
    [null, 'null', 'null'],
  ] as [unknown, string, string][])('rejects %j (got %s: %s)', (value, shown) => {
    expectInvalid(() => parseEndpoint(value, 'virtual'), 'virtual', shown);
  });
});

describe('parseServiceKey / serviceKeyOf', () => {
  it.each([
    ['tcp:10.0.0.1:80', 'tcp:10.0.0.1:80', 4],
    ['udp:[2001:db8::1]:53', 'udp:[2001:db8::1]:53', 6],
    ['udp:[2001:DB8:0:0:0:0:0:1]:53', 'udp:[2001:db8::1]:53', 6],
    ['sctp:192.0.2.1:3868', 'sctp:192.0.2.1:3868', 4],
    ['tcp:10.0.0.1:0', 'tcp:10.0.0.1:0', 4],
    ['fwm:42', 'fwm:42', 4],
    ['fwm6:42', 'fwm6:42', 6],
    ['fwm:1', 'fwm:1', 4],
    ['fwm:4294967295', 'fwm:4294967295', 4],
    ['fwm6:4294967295', 'fwm6:4294967295', 6],
  ])('%s → %s', (text, canonical, family) => {
    const id = parseServiceKey(text, 'service');
    expect(serviceKeyOf(id)).toBe(canonical);
    expect(serviceFamily(id)).toBe(family);
  });

  it('fwm:42 and fwm6:42 are different fwmark services', () => {
    expect(parseServiceKey('fwm:42', 's')).toEqual({ kind: 'fwmark', family: 4, fwmark: 42 });
    expect(parseServiceKey('fwm6:42', 's')).toEqual({ kind: 'fwmark', family: 6, fwmark: 42 });
  });

  it.each([
    ['tcp:2001:db8::1:80', 'IPv6 without brackets'],
    ['tcp:[10.0.0.1]:80', 'IPv4 in brackets'],
    ['TCP:10.0.0.1:80', 'upper-case protocol'],
    ['icmp:10.0.0.1:80', 'unknown protocol'],
    ['tcp:10.0.0.1', 'no port'],
    ['tcp:10.0.0.1:65536', 'port 65536'],
    ['tcp:010.0.0.1:80', 'leading zero octet'],
    ['tcp', 'protocol only'],
    ['tcp:', 'empty endpoint'],
    ['10.0.0.1:80', 'no protocol'],
    ['fwm:0', 'fwmark 0'],
    ['fwm6:0', 'fwmark 0'],
    ['fwm:4294967296', 'fwmark too big'],
    ['fwm:', 'empty fwmark'],
    ['fwm', 'no fwmark'],
    ['fwm:-1', 'negative fwmark'],
    ['fwm:+1', 'signed fwmark'],
    ['fwm:0x2a', 'hex fwmark'],
    ['fwm: 42', 'space'],
    ['FWM:42', 'upper case'],
    ['fwm4:42', 'fwm4'],
    ['', 'empty'],
  ])('rejects %j (%s)', (text) => {
    let caught: unknown;
    try {
      parseServiceKey(text, 'service');
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(IpvsError);
    const err = caught as IpvsError;
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.field).toBe('service');
    expect(err.message.startsWith('service: ')).toBe(true);
    expect(err.message).toMatch(/\(got .*\)$/);
  });

  it.each([42, null, undefined, { key: 'fwm:1' }])('rejects the non-string %j', (value) => {
    expectInvalid(() => parseServiceKey(value, 'service'), 'service', String(JSON.stringify(value)));
  });

  const idArb: fc.Arbitrary<ServiceId> = fc.oneof(
    fc.record({
      kind: fc.constant('addr' as const),
      protocol: fc.constantFrom('tcp' as const, 'udp' as const, 'sctp' as const),
      ip: fc.oneof(
        fc.integer({ min: 0, max: 0xffffffff }).map((w) => ipFromWords(4, [w])),
        fc
          .array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffffffff })), {
            minLength: 4,
            maxLength: 4,
          })
          .map((ws) => ipFromWords(6, ws)),
      ),
      port: fc.integer({ min: 0, max: 65535 }),
    }),
    fc.record({
      kind: fc.constant('fwmark' as const),
      family: fc.constantFrom(4 as const, 6 as const),
      fwmark: fc.integer({ min: 1, max: 0xffffffff }),
    }),
  );

  it('every service id round-trips through its key', () => {
    fc.assert(
      fc.property(idArb, (id) => {
        const key = serviceKeyOf(id);
        if (id.kind === 'addr') {
          const host = id.ip.family === 4 ? formatV4(id.ip.words[0]) : `[${formatV6(id.ip.words)}]`;
          expect(key).toBe(`${id.protocol}:${host}:${id.port}`);
        } else {
          expect(key).toBe(`${id.family === 6 ? 'fwm6' : 'fwm'}:${id.fwmark}`);
        }
        const back = parseServiceKey(key, 'service');
        expect(serviceKeyOf(back)).toBe(key);
        expect(serviceFamily(back)).toBe(serviceFamily(id));
      }),
      { numRuns: 500 },
    );
  });
});
