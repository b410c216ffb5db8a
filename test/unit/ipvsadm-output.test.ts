/**
 * ipvsadm output (§8.2, §8.4, §8.5): every listing format and the save format, byte for byte
 * against test/golden/ipvsadm (trailing printf padding included), the spec's own examples, the
 * wrapped-int32 sort comparator, and print_largenum.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { Connection, DestinationStatus, ServiceStatus, StatsView } from '../../src/engine/engine.js';
import {
  compareDests,
  compareServices,
  expireText,
  formatConnections,
  formatDaemons,
  formatList,
  formatListing,
  formatSave,
  formatServiceListing,
  formatTimeouts,
  glibcQsort,
  largenum,
  nameResolver,
  parseCommand,
  sortServices,
  wrappedDiff,
} from '../../src/ipvsadm/index.js';

const GOLDEN_DIR = fileURLToPath(new URL('../golden/ipvsadm/', import.meta.url));

/** Compares with test/golden/ipvsadm/<name> byte for byte (UPDATE_GOLDEN=1 rewrites it). */
function expectGolden(name: string, actual: string): void {
  const path = GOLDEN_DIR + name;
  if (process.env.UPDATE_GOLDEN) writeFileSync(path, actual);
  expect(actual).toBe(readFileSync(path, 'utf8'));
}

/** Lines without trailing blanks (the form in which the spec's examples are written). */
function trimLines(text: string): string {
  return text
    .split('\n')
    .map((l) => l.replace(/ +$/, ''))
    .join('\n');
}

function stats(s: Partial<StatsView> = {}): StatsView {
  return {
    conns: 0,
    inPkts: 0,
    outPkts: 0,
    inBytes: 0,
    outBytes: 0,
    cps: 0,
    inPps: 0,
    outPps: 0,
    inBps: 0,
    outBps: 0,
    ...s,
  };
}

function dest(
  endpoint: string,
  d: Partial<Omit<DestinationStatus, 'key' | 'address' | 'port'>> = {},
): DestinationStatus {
  const m = /^\[(.+)\]:(\d+)$/.exec(endpoint) ?? /^(.+):(\d+)$/.exec(endpoint);
  if (!m) throw new Error(`bad endpoint ${endpoint}`);
  return {
    key: endpoint,
    address: m[1],
    port: Number(m[2]),
    weight: 1,
    forward: 'route',
    upperThreshold: 0,
    lowerThreshold: 0,
    activeConns: 0,
    inactiveConns: 0,
    persistentConns: 0,
    overloaded: false,
    available: true,
    ...d,
    stats: d.stats ?? stats(),
  };
}

type ServiceExtras = Partial<
  Pick<ServiceStatus, 'scheduler' | 'schedFlags' | 'persistence' | 'onePacket' | 'pe' | 'stats'>
>;

/** `tcp:10.0.0.1:80`, `udp:[2001:db8::1]:53`, `fwm:7`, `fwm6:7`. */
function service(key: string, destinations: DestinationStatus[] = [], x: ServiceExtras = {}): ServiceStatus {
  const base = {
    key,
    scheduler: 'wlc',
    schedFlags: [] as string[],
    persistence: null,
    onePacket: false,
    pe: null,
    destinations,
    ...x,
    stats: x.stats ?? stats(),
  };
  const fwm = /^fwm(6?):(\d+)$/.exec(key);
  if (fwm) return { ...base, fwmark: Number(fwm[2]), family: fwm[1] ? 'inet6' : 'inet' };
  const m = /^(tcp|udp|sctp):(?:\[(.+)\]|([^:]+)):(\d+)$/.exec(key);
  if (!m) throw new Error(`bad service key ${key}`);
  return {
    ...base,
    protocol: m[1],
    address: m[2] ?? m[3],
    port: Number(m[4]),
    family: m[2] ? 'inet6' : 'inet',
  };
}

function conn(
  protocol: string,
  expiresInMs: number,
  state: string,
  client: string,
  virtual: string,
  destination: string,
  x: Partial<Connection> = {},
): Connection {
  return {
    id: `${protocol}|${client}|${virtual}`,
    protocol,
    client,
    virtual,
    destination,
    state,
    expiresInMs,
    template: protocol === 'ip' || state === 'NONE' || state === 'ASSURED',
    service: 'tcp:10.0.0.1:80',
    ...x,
  };
}

/** The §8.2 / §8.4 example configuration; destinations in kernel list order (newest first). */
function exampleServices(): ServiceStatus[] {
  return [
    service('fwm:7', [dest('192.168.1.31:0')], {
      scheduler: 'rr',
      persistence: { timeout: 600, netmask: '255.255.255.0' },
    }),
    service('udp:10.0.0.1:53', [dest('192.168.1.21:53', { weight: 2, inactiveConns: 7 })], {
      scheduler: 'sh',
      schedFlags: ['sh-fallback', 'sh-port'],
    }),
    service(
      'tcp:10.0.0.1:80',
      [
        dest('192.168.1.12:8080', { forward: 'masq', weight: 3, activeConns: 12, inactiveConns: 40 }),
        dest('192.168.1.11:80'),
      ],
      { persistence: { timeout: 360, netmask: '255.255.255.255' } },
    ),
    service('tcp:[2001:db8::10]:443', [dest('[2001:db8::20]:443', { forward: 'masq' })], {
      scheduler: 'mh',
      schedFlags: ['mh-fallback', 'mh-port'],
    }),
  ];
}

// The spec's examples, as written there (without the trailing blanks printf leaves).
const SAVE_EXAMPLE = `-A -t 10.0.0.1:80 -s wlc -p 360
-a -t 10.0.0.1:80 -r 192.168.1.11:80 -g -w 1
-a -t 10.0.0.1:80 -r 192.168.1.12:8080 -m -w 3
-A -u 10.0.0.1:53 -s sh -b sh-fallback,sh-port
-a -u 10.0.0.1:53 -r 192.168.1.21:53 -g -w 2
-A -t [2001:db8::10]:443 -s mh -b mh-fallback,mh-port
-a -t [2001:db8::10]:443 -r [2001:db8::20]:443 -m -w 1
-A -f 7 -s rr -p 600 -M 255.255.255.0
-a -f 7 -r 192.168.1.31:0 -g -w 1
`;

const LIST_EXAMPLE = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.1:80 wlc persistent 360
  -> 192.168.1.11:80              Route   1      0          0
  -> 192.168.1.12:8080            Masq    3      12         40
UDP  10.0.0.1:53 sh (sh-fallback,sh-port)
  -> 192.168.1.21:53              Route   2      0          7
FWM  7 rr persistent 600 mask 255.255.255.0
  -> 192.168.1.31:0               Route   1      0          0
`;

const STATS_EXAMPLE = `Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes
  -> RemoteAddress:Port
TCP  10.0.0.1:80                      1234    56789        0  4567890        0
  -> 192.168.1.11:80                   600    27000        0  2100000        0
TCP  10.0.0.1:80                      123G        5        0 99999999  100000K
`;

const CONN_EXAMPLE = `IPVS connection entries
pro expire state       source             virtual            destination
TCP 14:58  ESTABLISHED 192.168.5.1:50000  10.0.0.1:80        192.168.1.11:80
TCP 05:59  NONE        192.168.5.1:0      10.0.0.1:80        192.168.1.11:80
UDP 04:57  UDP         192.168.5.9:5353   10.0.0.1:53        192.168.1.21:53
IP  09:59  ASSURED     192.168.5.0:0      0.0.0.7:0          192.168.1.31:0
`;

/** The §8.4 default example has no IPv6 service. */
function listExampleServices(): ServiceStatus[] {
  return exampleServices().filter((s) => s.family === 'inet');
}

function statsExampleServices(): ServiceStatus[] {
  return [
    service(
      'tcp:10.0.0.1:80',
      [dest('192.168.1.11:80', { stats: stats({ conns: 600, inPkts: 27000, inBytes: 2100000 }) })],
      { stats: stats({ conns: 1234, inPkts: 56789, inBytes: 4567890 }) },
    ),
    service('tcp:10.0.0.1:80', [], {
      stats: stats({ conns: 123456789012, inPkts: 5, inBytes: 99999999, outBytes: 100000000 }),
    }),
  ];
}

function exampleConnections(): Connection[] {
  return [
    conn('tcp', 898_400, 'ESTABLISHED', '192.168.5.1:50000', '10.0.0.1:80', '192.168.1.11:80'),
    conn('tcp', 359_999, 'NONE', '192.168.5.1:0', '10.0.0.1:80', '192.168.1.11:80'),
    conn('udp', 297_000, 'UDP', '192.168.5.9:5353', '10.0.0.1:53', '192.168.1.21:53'),
    conn('ip', 599_500, 'ASSURED', '192.168.5.0:0', '0.0.0.7:0', '192.168.1.31:0'),
  ];
}

/** A richer configuration for the other formats. */
function richServices(): ServiceStatus[] {
  return [
    service(
      'udp:10.0.0.1:5060',
      [
        dest('192.168.1.40:5060', { weight: 0, persistentConns: 3, inactiveConns: 2 }),
        dest('192.168.1.41:5060', { weight: 65535, upperThreshold: 100, lowerThreshold: 74 }),
      ],
      {
        scheduler: 'rr',
        persistence: { timeout: 1800, netmask: '255.255.0.0' },
        onePacket: true,
        pe: 'sip',
        stats: stats({ conns: 5, inPkts: 10, inBytes: 1000, cps: 1, inPps: 3, inBps: 123456789012 }),
      },
    ),
    service(
      'tcp:10.0.0.2:443',
      [
        dest('192.168.1.51:443', {
          forward: 'tunnel',
          activeConns: 7,
          stats: stats({ cps: 2, inPps: 40, outPps: 0, inBps: 900000000, outBps: 12 }),
        }),
        dest('192.168.1.50:8443', { forward: 'masq', weight: 10, activeConns: 1234567890 }),
      ],
      { scheduler: 'sh', schedFlags: ['flag-3'] },
    ),
    service('fwm6:4294967295', [dest('[2001:db8::7]:0', { weight: 2 })], {
      scheduler: 'wrr',
      schedFlags: ['flag-1', 'flag-3'],
      persistence: { timeout: 300, netmask: '64' },
    }),
    service('sctp:[2001:db8::1]:3868', [dest('[2001:db8::2]:3868', { forward: 'masq' })], {
      scheduler: 'lblcr',
      persistence: { timeout: 60, netmask: '128' },
    }),
  ];
}

describe('ipvsadm -S (§8.2)', () => {
  it('reproduces the spec example exactly (sorted from kernel order)', () => {
    const text = formatSave(exampleServices());
    expect(text).toBe(SAVE_EXAMPLE);
    expectGolden('save-example.txt', text);
  });

  it('saves ops, pe, masks, IPv6 prefixes, -f N -6, tunnel servers; not thresholds', () => {
    const text = formatSave(richServices());
    expectGolden('save-rich.txt', text);
    expect(text).not.toMatch(/-x|-y/);
    // fwmark 4294967295 is printed with %d, as ipvsadm does.
    expect(text).toContain('-A -f -1 -6 -s wrr -p 300 -M 64 -b flag-1,flag-3\n');
    // sh with only SCHED3 set: " -b " with no name after it.
    expect(text).toContain('-A -t 10.0.0.2:443 -s sh -b \n');
    expect(text).toContain('-a -t 10.0.0.2:443 -r 192.168.1.51:443 -i -w 1 --tun-type ipip\n');
  });

  it('is empty without services', () => {
    expect(formatSave([])).toBe('');
  });

  it('prints names through a resolver without -n', () => {
    const resolve = nameResolver(
      (ip) => ({ '10.0.0.1': 'vip.example', '2001:db8::10': 'v6.example' })[ip],
      (port, proto) => (port === 80 && proto === 'tcp' ? 'http' : undefined),
    );
    expectGolden('save-names.txt', formatSave(exampleServices(), false, resolve));
  });
});

const SERVICE_NAMES: Record<string, string | undefined> = {
  '80/tcp': 'http',
  '53/udp': 'domain',
  '443/tcp': 'https',
};

describe('ipvsadm -L (§8.4)', () => {
  it('default -L -n: the spec example, with printf padding', () => {
    const text = formatList(listExampleServices());
    expectGolden('list-default.txt', text);
    expect(trimLines(text)).toBe(LIST_EXAMPLE);
    for (const line of text.split('\n').filter((l) => l.startsWith('  -> 192'))) {
      expect(line).toHaveLength(5 + 28 + 1 + 7 + 1 + 6 + 1 + 10 + 1 + 10);
    }
  });

  it('lists IPv6, sched flags, persistence, pe and ops', () => {
    expectGolden('list-rich.txt', formatList(richServices(), { connTableSize: 65536 }));
  });

  it('single service: title and that service, no version line', () => {
    const svc = listExampleServices().find((s) => s.key === 'tcp:10.0.0.1:80') as ServiceStatus;
    const text = formatServiceListing(svc);
    expectGolden('list-service.txt', text);
    expect(trimLines(text)).toBe(LIST_EXAMPLE.split('\n').slice(1, 6).join('\n') + '\n');
  });

  it('--stats: the spec example, largenum abbreviations', () => {
    const text = formatList(statsExampleServices(), { stats: true });
    expectGolden('list-stats.txt', text);
    expect(text).toBe('IP Virtual Server version 1.2.1 (size=4096)\n' + STATS_EXAMPLE);
  });

  it('--stats --exact', () => {
    expectGolden('list-stats-exact.txt', formatList(statsExampleServices(), { stats: true, exact: true }));
  });

  it('--rate: service largenums, dest %8llu ×3 then largenums', () => {
    expectGolden('list-rate.txt', formatList(richServices(), { rate: true }));
  });

  it('--thresholds', () => {
    expectGolden('list-thresholds.txt', formatList(richServices(), { thresholds: true }));
  });

  it('--persistent-conn', () => {
    expectGolden('list-persistent-conn.txt', formatList(richServices(), { persistentConn: true }));
  });

  it('--tun-info', () => {
    expectGolden('list-tun-info.txt', formatList(richServices(), { tunInfo: true }));
  });

  it('--nosort: services and destinations in the order given (kernel list order)', () => {
    const text = formatList(exampleServices(), { nosort: true });
    expectGolden('list-nosort.txt', text);
    expect(text.indexOf('192.168.1.12:8080')).toBeLessThan(text.indexOf('192.168.1.11:80'));
    expect(text.indexOf('FWM  7')).toBeLessThan(text.indexOf('UDP  10.0.0.1:53'));
  });

  it('--sort is the default', () => {
    const cmd = parseCommand(['-L', '-n', '--sort']);
    expect(cmd).toMatchObject({ kind: 'list', format: { nosort: false } });
  });

  it('without -n prints names from the resolver, IPv4 names cut at 33/28 characters', () => {
    const resolve = nameResolver(
      (ip) =>
        ({
          '10.0.0.1': 'a-very-long-virtual-server-name.example.com',
          '192.168.1.11': 'a-very-long-real-server-name.example.com',
          '2001:db8::20': 'v6-real.example',
        })[ip],
      (port, proto) => SERVICE_NAMES[`${port}/${proto}`],
    );
    const text = formatList(exampleServices(), { numeric: false, resolve });
    expectGolden('list-names.txt', text);
    expect(text).toContain('TCP  a-very-long-virtual-server-n wlc persistent 360\n');
    expect(text).toContain('  -> a-very-long-real-server-name Route');
  });

  it('-c: the spec example (expire = remaining whole seconds, MM:SS)', () => {
    const text = formatConnections(exampleConnections());
    expectGolden('conn.txt', text);
    expect(text).toBe(CONN_EXAMPLE);
  });

  it('-c --persistent-conn: pe name and data for SIP templates', () => {
    const conns = [
      conn('udp', 1_800_000, 'ASSURED', '192.168.5.0:0', '10.0.0.1:5060', '192.168.1.41:5060', {
        template: true,
        callId: 'a84b4c76e66710@pc33.atlanta.example.com',
      }),
      conn('udp', 299_000, 'UDP', '192.168.5.7:5060', '10.0.0.1:5060', '192.168.1.41:5060'),
      conn(
        'tcp',
        86_400_000,
        'ESTABLISHED',
        '[2001:db8::99]:40000',
        '[2001:db8::1]:3868',
        '[2001:db8::2]:3868',
      ),
    ];
    const text = formatConnections(conns, { persistentConn: true });
    expectGolden('conn-persistent.txt', text);
    expect(text).toContain('1440:00');
    expect(formatConnections(conns)).not.toContain('sip');
  });

  it('expire text rounds the remaining time down to whole seconds', () => {
    expect(expireText(0)).toBe('00:00');
    expect(expireText(999)).toBe('00:00');
    expect(expireText(60_000)).toBe('01:00');
    expect(expireText(898_999)).toBe('14:58');
    expect(expireText(6_000_000)).toBe('100:00');
  });

  it('--timeout', () => {
    const text = formatTimeouts({ tcp: 900, tcpFin: 120, udp: 300 });
    expect(text).toBe('Timeout (tcp tcpfin udp): 900 120 300\n');
    expectGolden('timeout.txt', text);
  });

  it('--daemon: master first, optional parts only when known', () => {
    const text = formatDaemons([
      { role: 'backup', syncid: 2 },
      {
        role: 'master',
        syncid: 1,
        mcastInterface: 'eth0',
        syncMaxlen: 1472,
        mcastGroup: '224.0.0.81',
        mcastPort: 8848,
        mcastTtl: 1,
      },
    ]);
    expect(text.split('\n')[0]).toBe(
      'master sync daemon (mcast=eth0, syncid=1, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)',
    );
    expectGolden('daemon.txt', text);
    expect(formatDaemons([])).toBe('');
  });

  it('formatListing dispatches a parsed -L command', () => {
    const services = listExampleServices();
    const list = (argv: string[]) => {
      const cmd = parseCommand(argv);
      if (cmd.kind !== 'list') throw new Error('not a list command');
      return cmd;
    };
    expect(formatListing(list(['-L', '-n']), { services })).toBe(formatList(services));
    expect(formatListing(list(['-Ln', '--stats']), { services })).toBe(formatList(services, { stats: true }));
    expect(formatListing(list(['-L', '-n', '-t', '10.0.0.1:80']), { service: services[2] })).toBe(
      formatServiceListing(services[2]),
    );
    expect(formatListing(list(['-L', '-c', '-n']), { connections: exampleConnections() })).toBe(CONN_EXAMPLE);
    expect(formatListing(list(['-L', '--timeout']), { timeouts: { tcp: 1, tcpFin: 2, udp: 3 } })).toBe(
      'Timeout (tcp tcpfin udp): 1 2 3\n',
    );
    expect(formatListing(list(['-L', '--daemon']), { daemons: [{ role: 'master', syncid: 0 }] })).toBe(
      'master sync daemon (mcast=eth0, syncid=0)\n',
    );
  });
});

describe('sorting (§8.5)', () => {
  it('10.0.0.1 sorts after 192.168.1.1 (wrapped int32 difference)', () => {
    expect(wrappedDiff(0x0a000001, 0xc0a80101)).toBeGreaterThan(0);
    const a = service('tcp:10.0.0.1:80', [dest('10.0.0.1:80'), dest('192.168.1.1:80')]);
    const b = service('tcp:192.168.1.1:80');
    expect(compareServices(a, b)).toBeGreaterThan(0);
    expect(compareDests(a.destinations[0], a.destinations[1])).toBeGreaterThan(0);
    const text = formatSave([a, b]);
    expectGolden('save-sort-quirk.txt', text);
    expect(text.split('\n').filter(Boolean)).toEqual([
      '-A -t 192.168.1.1:80 -s wlc',
      '-A -t 10.0.0.1:80 -s wlc',
      '-a -t 10.0.0.1:80 -r 192.168.1.1:80 -g -w 1',
      '-a -t 10.0.0.1:80 -r 10.0.0.1:80 -g -w 1',
    ]);
  });

  it('addresses less than 2^31 apart, ports, protocols and families compare normally', () => {
    const order = sortServices([
      service('udp:10.0.0.1:53'),
      service('tcp:[2001:db8::1]:80'),
      service('tcp:10.0.0.2:80'),
      service('tcp:10.0.0.1:443'),
      service('sctp:10.0.0.1:80'),
      service('tcp:10.0.0.1:80'),
      service('fwm6:3'),
      service('fwm:3'),
      service('fwm:1'),
    ]).map((s) => s.key);
    expect(order).toEqual([
      'tcp:10.0.0.1:80',
      'tcp:10.0.0.1:443',
      'tcp:10.0.0.2:80',
      'udp:10.0.0.1:53',
      'sctp:10.0.0.1:80',
      'tcp:[2001:db8::1]:80',
      'fwm:1',
      'fwm:3',
      'fwm6:3',
    ]);
  });

  it('fwmarks wrap too: fwmark 0x80000001 sorts before the non-fwmark services', () => {
    const order = sortServices([service('tcp:10.0.0.1:80'), service('fwm:2147483649')]).map((s) => s.key);
    expect(order).toEqual(['fwm:2147483649', 'tcp:10.0.0.1:80']);
  });

  it('the non-transitive comparator gives glibc merge-sort results, which depend on input order', () => {
    const A = 0x0a000001; // 10.0.0.1
    const B = 0xc0a80101; // 192.168.1.1
    const C = 0x64000001; // 100.0.0.1: A < C < B < A
    const cmp = (x: number, y: number) => wrappedDiff(x, y);
    expect(glibcQsort([A, B, C], cmp)).toEqual([A, C, B]);
    expect(glibcQsort([B, C, A], cmp)).toEqual([B, A, C]);
    expect(glibcQsort([3, 1, 2, 1], (x, y) => x - y)).toEqual([1, 1, 2, 3]);
  });
});

describe('print_largenum', () => {
  it.each([
    [0, '        0'],
    [99_999_999, ' 99999999'],
    [100_000_000, '  100000K'],
    [999_999_999, '  999999K'],
    [1_000_000_000, '    1000M'],
    [99_999_999_999, '   99999M'],
    [100_000_000_000, '     100G'],
    [123_456_789_012, '     123G'],
    [99_999_999_999_999, '   99999G'],
    [100_000_000_000_000, '     100T'],
    [9_007_199_254_740_991, '    9007T'],
  ])('%d → %j', (n, text) => {
    expect(largenum(n)).toBe(text);
  });

  it.each([
    [0, '        0'],
    [12_345_678, ' 12345678'],
    [123_456_789, ' 123456789'],
    [123_456_789_012, ' 123456789012'],
  ])('--exact %d → %j', (n, text) => {
    expect(largenum(n, true)).toBe(text);
  });
});
