/**
 * Validation of API-shaped requests (API.md; ipvsadm's rules and limits from ipvs-semantics.md §8.1,
 * §9.3): defaults, strictness (unknown and prototype-polluting keys), cross-field rules and edits.
 */
import { describe, expect, it } from 'vitest';
import { IpvsError } from '../../src/domain/errors.js';
import {
  parseConnectionUpdate,
  parseDestSpec,
  parseScheduleRequest,
  parseServiceSpec,
  parseTimeouts,
  type DestConfig,
  type ServiceConfig,
} from '../../src/engine/specs.js';
import type {
  ConnectionUpdate,
  DestinationSpec,
  ScheduleRequest,
  ServiceSpec,
} from '../../src/engine/engine.js';
import type { Timeouts } from '../../src/director/states.js';

/** Runs `fn`, expecting an INVALID_ARGUMENT IpvsError that names `field` and shows `shown`. */
function expectInvalid(fn: () => unknown, field: string, shown?: string): IpvsError {
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
  if (shown !== undefined) expect(err.message).toContain(`(got ${shown}`);
  return err;
}

// Requests arrive as untyped JSON; these casts let the tests send anything.
const svcSpec = (x: unknown) => x as ServiceSpec;
const destSpec = (x: unknown) => x as DestinationSpec;
const schedReq = (x: unknown) => x as ScheduleRequest;
const update = (x: unknown) => x as ConnectionUpdate;

// Bits of `-b` flags (include/uapi/linux/ip_vs.h IP_VS_SVC_F_SCHED1..3).
const SCHED1 = 0x08;
const SCHED2 = 0x10;
const SCHED3 = 0x20;

const WEB: ServiceSpec = { protocol: 'tcp', address: '10.0.0.1', port: 80 };

describe('parseServiceSpec: defaults', () => {
  it('a plain TCP service: wlc, no flags, not persistent, no one-packet, no PE', () => {
    const s = parseServiceSpec({ address: '10.0.0.1', port: 80 });
    expect(s.key).toBe('tcp:10.0.0.1:80');
    expect(s.family).toBe(4);
    expect(s.id).toMatchObject({ kind: 'addr', protocol: 'tcp', port: 80 });
    expect(s.scheduler).toBe('wlc');
    expect(s.schedFlags).toBe(0);
    expect(s.persistence).toBeNull();
    expect(s.onePacket).toBe(false);
    expect(s.pe).toBeNull();
  });

  it('persistence {} means 360 s and a host netmask (/32)', () => {
    const s = parseServiceSpec({ ...WEB, persistence: {} });
    expect(s.persistence).toEqual({ timeoutSec: 360, netmask: { family: 4, mask: 0xffffffff } });
  });

  it('persistence on an IPv6 service defaults to /128', () => {
    const s = parseServiceSpec({ protocol: 'udp', address: '2001:DB8::1', port: 53, persistence: {} });
    expect(s.key).toBe('udp:[2001:db8::1]:53');
    expect(s.family).toBe(6);
    expect(s.persistence).toEqual({ timeoutSec: 360, netmask: { family: 6, plen: 128 } });
  });

  it('persistence with null members also takes the defaults', () => {
    const s = parseServiceSpec(svcSpec({ ...WEB, persistence: { timeout: null, netmask: null } }));
    expect(s.persistence).toEqual({ timeoutSec: 360, netmask: { family: 4, mask: 0xffffffff } });
  });

  it('persistence null / absent / false = not persistent', () => {
    expect(parseServiceSpec({ ...WEB, persistence: null }).persistence).toBeNull();
    expect(parseServiceSpec(WEB).persistence).toBeNull();
    expect(parseServiceSpec(svcSpec({ ...WEB, persistence: false })).persistence).toBeNull();
  });

  it('explicit persistence: timeout and netmask', () => {
    const s = parseServiceSpec({ ...WEB, persistence: { timeout: 300, netmask: '255.255.255.0' } });
    expect(s.persistence).toEqual({ timeoutSec: 300, netmask: { family: 4, mask: 0xffffff00 } });
    const v6 = parseServiceSpec({ address: '2001:db8::1', port: 443, persistence: { netmask: '64' } });
    expect(v6.persistence).toEqual({ timeoutSec: 360, netmask: { family: 6, plen: 64 } });
    const v6n = parseServiceSpec({ address: '2001:db8::1', port: 443, persistence: { netmask: 48 } });
    expect(v6n.persistence?.netmask).toEqual({ family: 6, plen: 48 });
  });

  it('persistence timeout 1..2678400 (§8.1)', () => {
    expect(parseServiceSpec({ ...WEB, persistence: { timeout: 1 } }).persistence?.timeoutSec).toBe(1);
    expect(parseServiceSpec({ ...WEB, persistence: { timeout: 2678400 } }).persistence?.timeoutSec).toBe(
      2678400,
    );
  });

  it('the protocol defaults to tcp; udp and sctp are accepted', () => {
    expect(parseServiceSpec({ address: '10.0.0.1', port: 53, protocol: 'udp' }).key).toBe('udp:10.0.0.1:53');
    expect(parseServiceSpec({ address: '10.0.0.1', port: 9, protocol: 'sctp' }).key).toBe('sctp:10.0.0.1:9');
  });

  it('fwmark services: fwm:<mark> (inet) and fwm6:<mark> (inet6)', () => {
    const v4 = parseServiceSpec({ fwmark: 42 });
    expect(v4.key).toBe('fwm:42');
    expect(v4.family).toBe(4);
    const v4b = parseServiceSpec({ fwmark: 42, family: 'inet' });
    expect(v4b.key).toBe('fwm:42');
    const v6 = parseServiceSpec({ fwmark: 42, family: 'inet6', persistence: { netmask: 64 } });
    expect(v6.key).toBe('fwm6:42');
    expect(v6.family).toBe(6);
    expect(v6.persistence?.netmask).toEqual({ family: 6, plen: 64 });
    expect(parseServiceSpec({ fwmark: 4294967295 }).key).toBe('fwm:4294967295');
  });

  it('a matching family is accepted with an address', () => {
    expect(parseServiceSpec({ ...WEB, family: 'inet' }).key).toBe('tcp:10.0.0.1:80');
    expect(parseServiceSpec({ address: '::1', port: 80, family: 'inet6' }).key).toBe('tcp:[::1]:80');
  });

  it('a zero port is allowed for a persistent service', () => {
    const s = parseServiceSpec({ address: '10.0.0.1', port: 0, persistence: {} });
    expect(s.key).toBe('tcp:10.0.0.1:0');
  });

  it('onePacket is allowed for UDP and fwmark services', () => {
    expect(
      parseServiceSpec({ protocol: 'udp', address: '10.0.0.1', port: 53, onePacket: true }).onePacket,
    ).toBe(true);
    expect(parseServiceSpec({ fwmark: 7, onePacket: true }).onePacket).toBe(true);
    expect(parseServiceSpec({ ...WEB, onePacket: false }).onePacket).toBe(false);
  });

  it('pe: "sip", null or "" (none)', () => {
    expect(parseServiceSpec({ protocol: 'udp', address: '10.0.0.1', port: 5060, pe: 'sip' }).pe).toBe('sip');
    expect(parseServiceSpec({ ...WEB, pe: null }).pe).toBeNull();
    expect(parseServiceSpec({ ...WEB, pe: '' }).pe).toBeNull();
  });
});

describe('parseServiceSpec: scheduler flags only with their scheduler', () => {
  it.each([
    ['sh', ['sh-port'], SCHED2],
    ['sh', ['sh-fallback'], SCHED1],
    ['sh', ['sh-fallback', 'sh-port'], SCHED1 | SCHED2],
    ['mh', ['mh-fallback'], SCHED1],
    ['mh', ['mh-port'], SCHED2],
    ['mh', ['mh-fallback', 'mh-port'], SCHED1 | SCHED2],
    ['wlc', ['flag-1'], SCHED1],
    ['rr', ['flag-2'], SCHED2],
    ['lblc', ['flag-3'], SCHED3],
    ['sh', ['flag-1', 'flag-2', 'flag-3'], SCHED1 | SCHED2 | SCHED3],
    ['mh', ['flag-3'], SCHED3],
    ['twos', ['flag-1', 'flag-3'], SCHED1 | SCHED3],
    ['wrr', [], 0],
  ])('%s with %j → %i', (scheduler, flags, bits) => {
    const s = parseServiceSpec({ ...WEB, scheduler, schedFlags: flags });
    expect(s.scheduler).toBe(scheduler);
    expect(s.schedFlags).toBe(bits);
  });

  it('flags with the default scheduler (wlc)', () => {
    expect(parseServiceSpec({ ...WEB, schedFlags: ['flag-2'] }).schedFlags).toBe(SCHED2);
    expectInvalid(
      () => parseServiceSpec({ ...WEB, schedFlags: ['sh-port'] }),
      'service.schedFlags',
      '"sh-port"',
    );
  });

  it.each([
    ['wlc', ['sh-port'], '"sh-port"'],
    ['rr', ['sh-fallback'], '"sh-fallback"'],
    ['mh', ['sh-port'], '"sh-port"'],
    ['mh', ['sh-fallback'], '"sh-fallback"'],
    ['sh', ['mh-fallback'], '"mh-fallback"'],
    ['sh', ['mh-port'], '"mh-port"'],
    ['wlc', ['mh-port'], '"mh-port"'],
    ['dh', ['mh-fallback'], '"mh-fallback"'],
    ['sh', ['flag-4'], '"flag-4"'],
    ['sh', ['SH-PORT'], '"SH-PORT"'],
    ['sh', ['sh-port', 'bogus'], '"bogus"'],
    ['sh', [8], '8'],
    ['sh', 'sh-port', '"sh-port"'],
    ['sh', { 'sh-port': true }, '{"sh-port":true}'],
  ])('%s rejects %j', (scheduler, flags, shown) => {
    expectInvalid(
      () => parseServiceSpec(svcSpec({ ...WEB, scheduler, schedFlags: flags })),
      'service.schedFlags',
      shown,
    );
  });
});

describe('parseServiceSpec: rejections name the field and show the value', () => {
  const proto = (json: string) => svcSpec(JSON.parse(json));

  it.each([
    ['an unknown field', svcSpec({ ...WEB, weight: 1 }), 'service.weight', '"weight"'],
    ['a misspelt field', svcSpec({ ...WEB, schedular: 'rr' }), 'service.schedular', '"schedular"'],
    [
      'a __proto__ key',
      proto('{"address":"10.0.0.1","port":80,"__proto__":{"scheduler":"rr"}}'),
      'service.__proto__',
      '"__proto__"',
    ],
    [
      'a constructor key',
      proto('{"address":"10.0.0.1","port":80,"constructor":{"prototype":{}}}'),
      'service.constructor',
      '"constructor"',
    ],
    [
      'a prototype key',
      proto('{"address":"10.0.0.1","port":80,"prototype":1}'),
      'service.prototype',
      '"prototype"',
    ],
    [
      'a __proto__ key in persistence',
      proto('{"address":"10.0.0.1","port":80,"persistence":{"__proto__":{"timeout":1}}}'),
      'service.persistence.__proto__',
      '"__proto__"',
    ],
    [
      'a constructor key in persistence',
      proto('{"address":"10.0.0.1","port":80,"persistence":{"constructor":1}}'),
      'service.persistence.constructor',
      '"constructor"',
    ],
    [
      'an unknown persistence field',
      svcSpec({ ...WEB, persistence: { timout: 5 } }),
      'service.persistence.timout',
      '"timout"',
    ],
    ['a missing address', svcSpec({ port: 80 }), 'service.address', 'undefined'],
    ['a bad address', svcSpec({ address: '10.0.0.256', port: 80 }), 'service.address', '"10.0.0.256"'],
    ['a leading-zero address', svcSpec({ address: '10.0.0.01', port: 80 }), 'service.address', '"10.0.0.01"'],
    ['a bracketed address', svcSpec({ address: '[::1]', port: 80 }), 'service.address', '"[::1]"'],
    ['a missing port', svcSpec({ address: '10.0.0.1' }), 'service.port', 'undefined'],
    ['port 65536', svcSpec({ ...WEB, port: 65536 }), 'service.port', '65536'],
    ['port -1', svcSpec({ ...WEB, port: -1 }), 'service.port', '-1'],
    ['a zero port without persistence', svcSpec({ ...WEB, port: 0 }), 'service.port', '0'],
    [
      'a zero port with persistence null',
      svcSpec({ ...WEB, port: 0, persistence: null }),
      'service.port',
      '0',
    ],
    ['protocol icmp', svcSpec({ ...WEB, protocol: 'icmp' }), 'service.protocol', '"icmp"'],
    ['protocol TCP', svcSpec({ ...WEB, protocol: 'TCP' }), 'service.protocol', '"TCP"'],
    ['family inet6 for an IPv4 address', svcSpec({ ...WEB, family: 'inet6' }), 'service.family', '"inet6"'],
    [
      'family inet for an IPv6 address',
      svcSpec({ address: '::1', port: 1, family: 'inet' }),
      'service.family',
      '"inet"',
    ],
    ['fwmark with an address', svcSpec({ fwmark: 1, address: '10.0.0.1' }), 'service.address', '"10.0.0.1"'],
    ['fwmark with a port', svcSpec({ fwmark: 1, port: 80 }), 'service.port', '80'],
    ['fwmark with a protocol', svcSpec({ fwmark: 1, protocol: 'tcp' }), 'service.protocol', '"tcp"'],
    ['fwmark with a bad family', svcSpec({ fwmark: 1, family: 'ipv6' }), 'service.family', '"ipv6"'],
    ['fwmark 2^32', svcSpec({ fwmark: 4294967296 }), 'service.fwmark', '4294967296'],
    ['fwmark -1', svcSpec({ fwmark: -1 }), 'service.fwmark', '-1'],
    ['fwmark 1.5', svcSpec({ fwmark: 1.5 }), 'service.fwmark', '1.5'],
    ['an unknown scheduler', svcSpec({ ...WEB, scheduler: 'fair' }), 'service.scheduler', '"fair"'],
    ['an upper-case scheduler', svcSpec({ ...WEB, scheduler: 'WLC' }), 'service.scheduler', '"WLC"'],
    [
      'scheduler "constructor"',
      svcSpec({ ...WEB, scheduler: 'constructor' }),
      'service.scheduler',
      '"constructor"',
    ],
    [
      'scheduler "__proto__"',
      svcSpec({ ...WEB, scheduler: '__proto__' }),
      'service.scheduler',
      '"__proto__"',
    ],
    ['scheduler "toString"', svcSpec({ ...WEB, scheduler: 'toString' }), 'service.scheduler', '"toString"'],
    ['a numeric scheduler', svcSpec({ ...WEB, scheduler: 3 }), 'service.scheduler', '3'],
    ['onePacket on TCP', svcSpec({ ...WEB, onePacket: true }), 'service.onePacket', 'true'],
    [
      'onePacket on SCTP',
      svcSpec({ protocol: 'sctp', address: '10.0.0.1', port: 9, onePacket: true }),
      'service.onePacket',
      'true',
    ],
    ['onePacket "yes"', svcSpec({ ...WEB, protocol: 'udp', onePacket: 'yes' }), 'service.onePacket', '"yes"'],
    ['pe "http"', svcSpec({ ...WEB, pe: 'http' }), 'service.pe', '"http"'],
    ['persistence true', svcSpec({ ...WEB, persistence: true }), 'service.persistence', 'true'],
    [
      'persistence timeout 0',
      svcSpec({ ...WEB, persistence: { timeout: 0 } }),
      'service.persistence.timeout',
      '0',
    ],
    [
      'persistence timeout 2678401',
      svcSpec({ ...WEB, persistence: { timeout: 2678401 } }),
      'service.persistence.timeout',
      '2678401',
    ],
    [
      'persistence timeout "300"',
      svcSpec({ ...WEB, persistence: { timeout: '300' } }),
      'service.persistence.timeout',
      '"300"',
    ],
    [
      'a prefix length on an IPv4 service',
      svcSpec({ ...WEB, persistence: { netmask: '24' } }),
      'service.persistence.netmask',
      '"24"',
    ],
    [
      'a dotted mask on an IPv6 service',
      svcSpec({ address: '2001:db8::1', port: 80, persistence: { netmask: '255.255.255.0' } }),
      'service.persistence.netmask',
      '"255.255.255.0"',
    ],
    [
      'prefix length 0',
      svcSpec({ address: '2001:db8::1', port: 80, persistence: { netmask: 0 } }),
      'service.persistence.netmask',
      '0',
    ],
    [
      'prefix length 129',
      svcSpec({ address: '2001:db8::1', port: 80, persistence: { netmask: '129' } }),
      'service.persistence.netmask',
      '"129"',
    ],
  ])('%s', (_what, spec, field, shown) => {
    expectInvalid(() => parseServiceSpec(spec), field, shown);
  });

  it.each([null, [], 'tcp:10.0.0.1:80', 42, undefined])('a non-object service %j', (value) => {
    expectInvalid(() => parseServiceSpec(svcSpec(value)), 'service');
  });

  it('a __proto__ key does not pollute Object.prototype', () => {
    expect(() =>
      parseServiceSpec(svcSpec(JSON.parse('{"address":"10.0.0.1","port":80,"__proto__":{"polluted":1}}'))),
    ).toThrow(IpvsError);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('parseServiceSpec: edit (base + patch)', () => {
  const base: ServiceConfig = parseServiceSpec({
    ...WEB,
    scheduler: 'sh',
    schedFlags: ['sh-port'],
    persistence: { timeout: 600, netmask: '255.255.255.0' },
    pe: null,
  });

  it('keeps everything not given', () => {
    const s = parseServiceSpec({ scheduler: 'sh' }, 'service', base);
    expect(s).toEqual(base);
    const t = parseServiceSpec({}, 'service', base);
    expect(t).toEqual(base);
  });

  it('changes what is given', () => {
    const s = parseServiceSpec({ scheduler: 'rr', persistence: null }, 'service', base);
    expect(s.key).toBe('tcp:10.0.0.1:80');
    expect(s.scheduler).toBe('rr');
    expect(s.persistence).toBeNull();
    const p = parseServiceSpec({ persistence: { timeout: 30 } }, 'service', base);
    expect(p.persistence).toEqual({ timeoutSec: 30, netmask: { family: 4, mask: 0xffffffff } });
  });

  it('accepts the same identity, however spelt', () => {
    expect(parseServiceSpec({ protocol: 'tcp', address: '10.0.0.1', port: 80 }, 'service', base).key).toBe(
      'tcp:10.0.0.1:80',
    );
    const v6 = parseServiceSpec({ address: '2001:db8::1', port: 80 });
    expect(parseServiceSpec({ address: '2001:DB8:0:0::1' }, 'service', v6).key).toBe('tcp:[2001:db8::1]:80');
    const fw = parseServiceSpec({ fwmark: 42, family: 'inet6' });
    expect(parseServiceSpec({ fwmark: 42, family: 'inet6', scheduler: 'rr' }, 'service', fw).scheduler).toBe(
      'rr',
    );
  });

  it.each([
    [{ port: 81 }, 'service.port', '81'],
    [{ address: '10.0.0.2' }, 'service.address', '"10.0.0.2"'],
    [{ protocol: 'udp' }, 'service.protocol', '"udp"'],
    // The field named is the one that differs, not the first one given.
    [{ address: '10.0.0.1', port: 8080 }, 'service.port', '8080'],
    [{ protocol: 'tcp', port: 8080 }, 'service.port', '8080'],
  ])('cannot change the identity: %j', (patch, field, shown) => {
    const err = expectInvalid(() => parseServiceSpec(svcSpec(patch), 'service', base), field, shown);
    expect(err.message).toMatch(/identity/);
  });

  // Only `fwmark` was sent, so the error must be about `fwmark` (not about a protocol nobody sent).
  it('cannot turn an address service into a fwmark service', () => {
    expectInvalid(() => parseServiceSpec({ fwmark: 5 }, 'service', base), 'service.fwmark', '5');
  });

  it('cannot change a fwmark service mark or family', () => {
    const fw = parseServiceSpec({ fwmark: 42 });
    expectInvalid(() => parseServiceSpec({ fwmark: 43 }, 'service', fw), 'service.fwmark', '43');
    expectInvalid(() => parseServiceSpec({ family: 'inet6' }, 'service', fw), 'service.family', '"inet6"');
    expectInvalid(
      () => parseServiceSpec({ address: '10.0.0.1' }, 'service', fw),
      'service.address',
      '"10.0.0.1"',
    );
  });

  it('re-checks the cross-field rules on the result', () => {
    const zero = parseServiceSpec({ address: '10.0.0.1', port: 0, persistence: {} });
    expectInvalid(() => parseServiceSpec({ persistence: null }, 'service', zero), 'service.port', '0');
    expectInvalid(() => parseServiceSpec({ onePacket: true }, 'service', base), 'service.onePacket', 'true');
    const udp = parseServiceSpec({ protocol: 'udp', address: '10.0.0.1', port: 53, onePacket: true });
    expect(parseServiceSpec({ scheduler: 'rr' }, 'service', udp).onePacket).toBe(true);
  });

  it('checks new flags against the (new or kept) scheduler', () => {
    expectInvalid(() => parseServiceSpec({ schedFlags: ['mh-port'] }, 'service', base), 'service.schedFlags');
    expect(parseServiceSpec({ schedFlags: ['sh-fallback'] }, 'service', base).schedFlags).toBe(SCHED1);
    expect(parseServiceSpec({ scheduler: 'mh', schedFlags: ['mh-port'] }, 'service', base).schedFlags).toBe(
      SCHED2,
    );
    expectInvalid(
      () => parseServiceSpec({ scheduler: 'wlc', schedFlags: ['sh-port'] }, 'service', base),
      'service.schedFlags',
    );
  });

  it('rejects unknown and prototype keys in a patch', () => {
    expectInvalid(
      () => parseServiceSpec(svcSpec({ weight: 3 }), 'service', base),
      'service.weight',
      '"weight"',
    );
    expectInvalid(
      () => parseServiceSpec(svcSpec(JSON.parse('{"__proto__":{}}')), 'service', base),
      'service.__proto__',
      '"__proto__"',
    );
  });
});

describe('parseDestSpec', () => {
  const web = parseServiceSpec(WEB);
  const web6 = parseServiceSpec({ address: '2001:db8::1', port: 8080 });
  const fw = parseServiceSpec({ fwmark: 42 });

  it('defaults: the service port, weight 1, masq, thresholds 0', () => {
    const d = parseDestSpec({ address: '10.1.0.2' }, web);
    expect(d.key).toBe('10.1.0.2:80');
    expect(d.endpoint.port).toBe(80);
    expect(d.weight).toBe(1);
    expect(d.forward).toBe('masq');
    expect(d.upperThreshold).toBe(0);
    expect(d.lowerThreshold).toBe(0);
  });

  it('keys IPv6 destinations in brackets, canonically', () => {
    expect(parseDestSpec({ address: '2001:DB8:0:0:0:0:0:7' }, web6).key).toBe('[2001:db8::7]:8080');
    expect(parseDestSpec({ address: '2001:db8::7', port: 9 }, web6).key).toBe('[2001:db8::7]:9');
  });

  it('a fwmark service has no port: destinations default to 0', () => {
    expect(parseDestSpec({ address: '10.1.0.2' }, fw).key).toBe('10.1.0.2:0');
    expect(parseDestSpec({ address: '10.1.0.2', port: 443 }, fw).key).toBe('10.1.0.2:443');
  });

  it('explicit values within the limits', () => {
    const d = parseDestSpec(
      {
        address: '10.1.0.2',
        port: 8080,
        weight: 65535,
        forward: 'route',
        upperThreshold: 10,
        lowerThreshold: 10,
      },
      web,
    );
    expect(d).toMatchObject({
      key: '10.1.0.2:8080',
      weight: 65535,
      forward: 'route',
      upperThreshold: 10,
      lowerThreshold: 10,
    });
    expect(parseDestSpec({ address: '10.1.0.2', weight: 0 }, web).weight).toBe(0);
    expect(parseDestSpec({ address: '10.1.0.2', forward: 'tunnel' }, web).forward).toBe('tunnel');
    expect(parseDestSpec({ address: '10.1.0.2', upperThreshold: 2147483647 }, web).upperThreshold).toBe(
      2147483647,
    );
  });

  it('a destination of the other family only with tunnel forwarding', () => {
    expect(parseDestSpec({ address: '2001:db8::7', forward: 'tunnel' }, web).key).toBe('[2001:db8::7]:80');
    expect(parseDestSpec({ address: '10.1.0.2', forward: 'tunnel' }, web6).key).toBe('10.1.0.2:8080');
    expectInvalid(() => parseDestSpec({ address: '2001:db8::7' }, web), 'destination.address');
    expectInvalid(
      () => parseDestSpec({ address: '2001:db8::7', forward: 'route' }, web),
      'destination.address',
    );
    expectInvalid(() => parseDestSpec({ address: '10.1.0.2', forward: 'masq' }, web6), 'destination.address');
  });

  it.each([
    ['224.0.0.1', web],
    ['239.1.2.3', web],
    ['255.255.255.255', web],
    ['0.0.0.0', web],
    ['ff02::1', web6],
    ['ff05::2', web6],
    ['fe80::1', web6],
    ['febf::1', web6],
    ['::', web6],
  ])('refuses the non-unicast address %s', (address, service) => {
    expectInvalid(() => parseDestSpec({ address }, service), 'destination.address', JSON.stringify(address));
  });

  it.each(['127.0.0.1', '10.255.255.255', '192.168.1.255'])('accepts the unicast address %s', (address) => {
    expect(parseDestSpec({ address }, web).endpoint.ip.text).toBe(address);
  });

  it.each(['::1', 'fec0::1', '2001:db8::ffff'])('accepts the IPv6 unicast address %s', (address) => {
    expect(parseDestSpec({ address }, web6).endpoint.ip.text).toBe(address);
  });

  const proto = (json: string) => destSpec(JSON.parse(json));

  it.each([
    ['a missing address', destSpec({ weight: 1 }), 'destination.address', 'undefined'],
    ['a bad address', destSpec({ address: '10.1.0.256' }), 'destination.address', '"10.1.0.256"'],
    ['an address with a port', destSpec({ address: '10.1.0.2:80' }), 'destination.address', '"10.1.0.2:80"'],
    ['port 65536', destSpec({ address: '10.1.0.2', port: 65536 }), 'destination.port', '65536'],
    ['weight 65536', destSpec({ address: '10.1.0.2', weight: 65536 }), 'destination.weight', '65536'],
    ['weight -1', destSpec({ address: '10.1.0.2', weight: -1 }), 'destination.weight', '-1'],
    ['weight 1.5', destSpec({ address: '10.1.0.2', weight: 1.5 }), 'destination.weight', '1.5'],
    ['weight "5"', destSpec({ address: '10.1.0.2', weight: '5' }), 'destination.weight', '"5"'],
    ['forward "dr"', destSpec({ address: '10.1.0.2', forward: 'dr' }), 'destination.forward', '"dr"'],
    ['forward "MASQ"', destSpec({ address: '10.1.0.2', forward: 'MASQ' }), 'destination.forward', '"MASQ"'],
    [
      'upperThreshold 2^31',
      destSpec({ address: '10.1.0.2', upperThreshold: 2147483648 }),
      'destination.upperThreshold',
      '2147483648',
    ],
    [
      'upperThreshold -1',
      destSpec({ address: '10.1.0.2', upperThreshold: -1 }),
      'destination.upperThreshold',
      '-1',
    ],
    [
      'lowerThreshold -1',
      destSpec({ address: '10.1.0.2', lowerThreshold: -1 }),
      'destination.lowerThreshold',
      '-1',
    ],
    [
      'lowerThreshold > upperThreshold',
      destSpec({ address: '10.1.0.2', upperThreshold: 10, lowerThreshold: 11 }),
      'destination.lowerThreshold',
      '11',
    ],
    [
      'lowerThreshold without an upper threshold (the kernel requires l <= u)',
      destSpec({ address: '10.1.0.2', lowerThreshold: 5 }),
      'destination.lowerThreshold',
      '5',
    ],
    [
      'an unknown field',
      destSpec({ address: '10.1.0.2', scheduler: 'rr' }),
      'destination.scheduler',
      '"scheduler"',
    ],
    [
      'a __proto__ key',
      proto('{"address":"10.1.0.2","__proto__":{"weight":9}}'),
      'destination.__proto__',
      '"__proto__"',
    ],
    [
      'a constructor key',
      proto('{"address":"10.1.0.2","constructor":1}'),
      'destination.constructor',
      '"constructor"',
    ],
  ])('rejects %s', (_what, spec, field, shown) => {
    expectInvalid(() => parseDestSpec(spec, web), field, shown);
  });

  it.each([null, [], '10.1.0.2', 7])('rejects the non-object %j', (value) => {
    expectInvalid(() => parseDestSpec(destSpec(value), web), 'destination');
  });

  describe('edit', () => {
    const base: DestConfig = parseDestSpec(
      { address: '10.1.0.2', port: 8080, weight: 3, forward: 'route', upperThreshold: 10, lowerThreshold: 5 },
      web,
    );

    it('keeps what is not given', () => {
      expect(parseDestSpec({}, web, 'destination', base)).toEqual(base);
      const d = parseDestSpec({ weight: 7 }, web, 'destination', base);
      expect(d).toEqual({ ...base, weight: 7 });
    });

    it('accepts the same identity, however spelt', () => {
      const d = parseDestSpec({ address: '10.1.0.2', port: 8080, weight: 0 }, web, 'destination', base);
      expect(d.key).toBe('10.1.0.2:8080');
      expect(d.weight).toBe(0);
      const b6 = parseDestSpec({ address: '2001:db8::7' }, web6);
      expect(parseDestSpec({ address: '2001:DB8::0:7' }, web6, 'destination', b6).key).toBe(
        '[2001:db8::7]:8080',
      );
    });

    it.each([
      [{ address: '10.1.0.3' }, 'destination.address', '"10.1.0.3"'],
      [{ port: 8081 }, 'destination.port', '8081'],
      [{ address: '10.1.0.2', port: 80 }, 'destination.port', '80'],
    ])('cannot change the identity: %j', (patch, field, shown) => {
      const err = expectInvalid(() => parseDestSpec(patch, web, 'destination', base), field, shown);
      expect(err.message).toMatch(/identity/);
    });

    it('re-checks lowerThreshold <= upperThreshold against kept values', () => {
      expectInvalid(
        () => parseDestSpec({ upperThreshold: 4 }, web, 'destination', base),
        'destination.lowerThreshold',
        '5',
      );
      expect(parseDestSpec({ upperThreshold: 5 }, web, 'destination', base).upperThreshold).toBe(5);
      expect(parseDestSpec({ lowerThreshold: 0, upperThreshold: 0 }, web, 'destination', base)).toMatchObject(
        {
          lowerThreshold: 0,
          upperThreshold: 0,
        },
      );
    });

    it('weight > 65535 is refused on edit too', () => {
      expectInvalid(
        () => parseDestSpec({ weight: 65536 }, web, 'destination', base),
        'destination.weight',
        '65536',
      );
    });
  });
});

describe('parseScheduleRequest', () => {
  it('a minimal request', () => {
    const q = parseScheduleRequest({ protocol: 'tcp', client: '192.168.1.7:40001', virtual: '10.0.0.1:80' });
    expect(q.client.ip.text).toBe('192.168.1.7');
    expect(q.client.port).toBe(40001);
    expect(q.virtual?.ip.text).toBe('10.0.0.1');
    expect(q.virtual?.port).toBe(80);
    expect(q.protocol).toBe('tcp');
    expect(q.service).toBeUndefined();
    expect(q.fwmark).toBe(0);
    expect(q.explain).toBe(false);
    expect(q.callId).toBeUndefined();
    expect(q.requestId).toBeUndefined();
    expect(q.initialState).toBeUndefined();
  });

  it('a service key in place of the virtual endpoint; the protocol is optional', () => {
    const q = parseScheduleRequest({ client: '[2001:db8::9]:5000', service: 'udp:[2001:DB8::1]:53' });
    expect(q.virtual).toBeUndefined();
    expect(q.protocol).toBeUndefined();
    expect(q.service).toMatchObject({ kind: 'addr', protocol: 'udp', port: 53 });
    const f = parseScheduleRequest({
      client: '1.2.3.4:5',
      virtual: '10.0.0.1:80',
      service: 'fwm:42',
      fwmark: 42,
    });
    expect(f.service).toEqual({ kind: 'fwmark', family: 4, fwmark: 42 });
    expect(f.fwmark).toBe(42);
  });

  it('optional fields', () => {
    const q = parseScheduleRequest({
      client: '1.2.3.4:5',
      virtual: '10.0.0.1:5060',
      protocol: 'udp',
      callId: 'a'.repeat(255),
      requestId: 'r'.repeat(128),
      initialState: 'ESTABLISHED',
      explain: true,
      fwmark: 0,
    });
    expect(q.callId).toHaveLength(255);
    expect(q.requestId).toHaveLength(128);
    expect(q.initialState).toBe('ESTABLISHED');
    expect(q.explain).toBe(true);
    expect(q.fwmark).toBe(0);
  });

  const proto = (json: string) => schedReq(JSON.parse(json));
  const base = { client: '1.2.3.4:5', virtual: '10.0.0.1:80' };

  it.each([
    ['no client', schedReq({ virtual: '10.0.0.1:80' }), 'client', 'undefined'],
    ['a client without a port', schedReq({ ...base, client: '1.2.3.4' }), 'client', '"1.2.3.4"'],
    ['a bracketed IPv4 client', schedReq({ ...base, client: '[1.2.3.4]:5' }), 'client', '"[1.2.3.4]:5"'],
    [
      'an unbracketed IPv6 client',
      schedReq({ ...base, client: '2001:db8::9:5' }),
      'client',
      '"2001:db8::9:5"',
    ],
    ['no virtual and no service', schedReq({ client: '1.2.3.4:5' }), 'virtual', 'undefined'],
    ['a bad virtual', schedReq({ ...base, virtual: '10.0.0.1:99999' }), 'virtual', '99999'],
    ['a bad service key', schedReq({ client: '1.2.3.4:5', service: 'fwm:0' }), 'service', '"0"'],
    ['mixed families', schedReq({ ...base, client: '[2001:db8::9]:5' }), 'client', '"[2001:db8::9]:5"'],
    ['protocol icmp', schedReq({ ...base, protocol: 'icmp' }), 'protocol', '"icmp"'],
    ['fwmark -1', schedReq({ ...base, fwmark: -1 }), 'fwmark', '-1'],
    ['fwmark 2^32', schedReq({ ...base, fwmark: 4294967296 }), 'fwmark', '4294967296'],
    ['an empty callId', schedReq({ ...base, callId: '' }), 'callId', '""'],
    ['a callId of 256 bytes', schedReq({ ...base, callId: 'c'.repeat(256) }), 'callId'],
    ['a callId of 128 two-byte characters', schedReq({ ...base, callId: 'é'.repeat(128) }), 'callId'],
    ['a numeric callId', schedReq({ ...base, callId: 7 }), 'callId', '7'],
    ['an empty requestId', schedReq({ ...base, requestId: '' }), 'requestId', '""'],
    ['a requestId of 129 bytes', schedReq({ ...base, requestId: 'r'.repeat(129) }), 'requestId'],
    ['explain "yes"', schedReq({ ...base, explain: 'yes' }), 'explain', '"yes"'],
    [
      'an unknown field',
      schedReq({ ...base, destination: '10.1.0.2:80' }),
      'request.destination',
      '"destination"',
    ],
    [
      'a __proto__ key',
      proto('{"client":"1.2.3.4:5","virtual":"10.0.0.1:80","__proto__":{"explain":true}}'),
      'request.__proto__',
      '"__proto__"',
    ],
    [
      'a constructor key',
      proto('{"client":"1.2.3.4:5","virtual":"10.0.0.1:80","constructor":{}}'),
      'request.constructor',
      '"constructor"',
    ],
  ])('rejects %s', (_what, req, field, shown?: string) => {
    expectInvalid(() => parseScheduleRequest(req), field, shown);
  });

  it.each([null, [], 'x'])('rejects the non-object %j', (value) => {
    expectInvalid(() => parseScheduleRequest(schedReq(value)), 'request');
  });

  // A client of one family can never reach an address service of the other: the request is
  // rejected when it names the service by key, just as it is when it names the virtual endpoint.
  it('rejects a client of the other family than an address service given by key', () => {
    expectInvalid(
      () => parseScheduleRequest({ client: '[2001:db8::9]:5000', service: 'tcp:10.0.0.1:80' }),
      'client',
      '"[2001:db8::9]:5000"',
    );
    expectInvalid(
      () => parseScheduleRequest({ client: '192.168.1.7:5000', service: 'udp:[2001:db8::1]:53' }),
      'client',
      '"192.168.1.7:5000"',
    );
  });
});

describe('parseConnectionUpdate', () => {
  it('a state, an event, counters', () => {
    expect(parseConnectionUpdate({ state: 'ESTABLISHED' }, 'tcp')).toEqual({
      state: 'ESTABLISHED',
      event: undefined,
      inPackets: 0,
      outPackets: 0,
      inBytes: 0,
      outBytes: 0,
    });
    expect(parseConnectionUpdate({ event: { direction: 'in-only', flag: 'fin' } }, 'tcp').event).toEqual({
      direction: 'in-only',
      flag: 'fin',
    });
    const c = parseConnectionUpdate({ inPackets: 3, outPackets: 4, inBytes: 500, outBytes: 600 }, 'udp');
    expect(c).toMatchObject({ inPackets: 3, outPackets: 4, inBytes: 500, outBytes: 600, state: undefined });
    expect(parseConnectionUpdate({ state: 'UDP' }, 'udp').state).toBe('UDP');
    expect(parseConnectionUpdate({ state: 'COOKIE_ECHOED' }, 'sctp').state).toBe('COOKIE_ECHOED');
  });

  it('a UDP event has a direction and no flag', () => {
    expect(parseConnectionUpdate(update({ event: { direction: 'out' } }), 'udp').event?.direction).toBe(
      'out',
    );
  });

  it('a template (protocol ip) takes counters only', () => {
    expect(parseConnectionUpdate({ inPackets: 1 }, 'ip').inPackets).toBe(1);
    expectInvalid(() => parseConnectionUpdate({ state: 'ESTABLISHED' }, 'ip'), 'update.state');
    const err = (() => {
      try {
        parseConnectionUpdate(update({ event: { direction: 'in' } }), 'ip');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(IpvsError);
    expect((err as IpvsError).code).toBe('INVALID_ARGUMENT');
    expect((err as IpvsError).field).toMatch(/^update\./);
  });

  it.each([
    [
      'both state and event',
      update({ state: 'ESTABLISHED', event: { direction: 'in', flag: 'ack' } }),
      'tcp',
      'update.event',
    ],
    [
      'a bad direction',
      update({ event: { direction: 'up', flag: 'ack' } }),
      'tcp',
      'update.event.direction',
      '"up"',
    ],
    ['no direction', update({ event: { flag: 'ack' } }), 'tcp', 'update.event.direction', 'undefined'],
    [
      'a TCP event without a flag',
      update({ event: { direction: 'in' } }),
      'tcp',
      'update.event.flag',
      'undefined',
    ],
    ['a bad flag', update({ event: { direction: 'in', flag: 'psh' } }), 'tcp', 'update.event.flag', '"psh"'],
    [
      'an upper-case flag',
      update({ event: { direction: 'in', flag: 'SYN' } }),
      'tcp',
      'update.event.flag',
      '"SYN"',
    ],
    [
      'a flag on UDP',
      update({ event: { direction: 'in', flag: 'syn' } }),
      'udp',
      'update.event.flag',
      '"syn"',
    ],
    [
      'an unknown event field',
      update({ event: { direction: 'in', flag: 'syn', urg: 1 } }),
      'tcp',
      'update.event.urg',
    ],
    ['a TCP state on UDP', update({ state: 'ESTABLISHED' }), 'udp', 'update.state', '"ESTABLISHED"'],
    ['a lower-case state', update({ state: 'established' }), 'tcp', 'update.state', '"established"'],
    ['a UDP state on TCP', update({ state: 'UDP' }), 'tcp', 'update.state', '"UDP"'],
    ['negative packets', update({ inPackets: -1 }), 'tcp', 'update.inPackets', '-1'],
    ['fractional bytes', update({ outBytes: 1.5 }), 'tcp', 'update.outBytes', '1.5'],
    ['non-decimal string bytes', update({ inBytes: '1e3' }), 'tcp', 'update.inBytes', '"1e3"'],
    ['an unknown field', update({ close: true }), 'tcp', 'update.close', '"close"'],
    [
      'a __proto__ key',
      update(JSON.parse('{"__proto__":{"state":"CLOSE"}}')),
      'tcp',
      'update.__proto__',
      '"__proto__"',
    ],
    [
      'a __proto__ key in the event',
      update(JSON.parse('{"event":{"direction":"in","flag":"syn","__proto__":{}}}')),
      'tcp',
      'update.event.__proto__',
      '"__proto__"',
    ],
  ] as [string, ConnectionUpdate, 'tcp' | 'udp', string, string?][])(
    'rejects %s',
    (_what, u, protocol, field, shown) => {
      expectInvalid(() => parseConnectionUpdate(u, protocol), field, shown);
    },
  );
});

describe('parseTimeouts: ipvsadm --set (0 keeps the current value)', () => {
  const current: Timeouts = { tcp: 900, tcpFin: 120, udp: 300 };

  it('0 and absent keep the current value', () => {
    expect(parseTimeouts({ tcp: 0, tcpFin: 0, udp: 0 }, current)).toEqual(current);
    expect(parseTimeouts({}, current)).toEqual(current);
    expect(parseTimeouts({ udp: 0 }, { tcp: 1, tcpFin: 2, udp: 3 })).toEqual({ tcp: 1, tcpFin: 2, udp: 3 });
  });

  it('sets what is given, 1..2678400', () => {
    expect(parseTimeouts({ tcp: 1 }, current)).toEqual({ tcp: 1, tcpFin: 120, udp: 300 });
    expect(parseTimeouts({ tcpFin: 2678400, udp: 5 }, current)).toEqual({
      tcp: 900,
      tcpFin: 2678400,
      udp: 5,
    });
    expect(parseTimeouts({ tcp: 0, udp: 7 }, current)).toEqual({ tcp: 900, tcpFin: 120, udp: 7 });
  });

  it('does not modify the current object', () => {
    const cur = { ...current };
    parseTimeouts({ tcp: 5 }, cur);
    expect(cur).toEqual(current);
  });

  it.each([
    [{ tcp: 2678401 }, 'timeouts.tcp', '2678401'],
    [{ tcpFin: -1 }, 'timeouts.tcpFin', '-1'],
    [{ udp: 1.5 }, 'timeouts.udp', '1.5'],
    [{ udp: '300' }, 'timeouts.udp', '"300"'],
    [{ tcpfin: 5 }, 'timeouts.tcpfin', '"tcpfin"'],
    [{ sctp: 5 }, 'timeouts.sctp', '"sctp"'],
    [JSON.parse('{"__proto__":{"tcp":1}}'), 'timeouts.__proto__', '"__proto__"'],
    [JSON.parse('{"constructor":1}'), 'timeouts.constructor', '"constructor"'],
  ])('rejects %j', (raw, field, shown) => {
    expectInvalid(() => parseTimeouts(raw as Partial<Timeouts>, current), field, shown);
  });

  it('rejects a non-object', () => {
    expectInvalid(() => parseTimeouts(null as unknown as Partial<Timeouts>, current), 'timeouts');
  });
});
