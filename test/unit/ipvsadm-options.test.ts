/**
 * ipvsadm command lines (§8.1): valid lines → typed commands with the Engine's DTOs, invalid lines →
 * ipvsadm 1.31's exact messages and exit statuses (2 for option errors, 255 for popt / "Try …").
 */
import { describe, expect, it } from 'vitest';
import {
  COMMANDS_V_OPTIONS,
  IpvsadmError,
  parseCommand,
  usageText,
  versionText,
  type IpvsadmCommand,
} from '../../src/ipvsadm/index.js';

const TRY = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.";

function parseError(argv: string[], options = {}): IpvsadmError {
  try {
    parseCommand(argv, options);
  } catch (err) {
    expect(err).toBeInstanceOf(IpvsadmError);
    return err as IpvsadmError;
  }
  throw new Error(`accepted: ${argv.join(' ')}`);
}

/** The command without its parsed ServiceId objects (they are checked through the keys). */
function plain(cmd: IpvsadmCommand): Record<string, unknown> {
  const { service: _service, ...rest } = cmd as IpvsadmCommand & { service?: unknown };
  return rest;
}

const NOT_PERSISTENT = { scheduler: 'wlc', schedFlags: [], persistence: null, onePacket: false, pe: null };

describe('valid command lines', () => {
  it.each<[string, string[], Record<string, unknown>]>([
    [
      'add with every default',
      ['-A', '-t', '10.0.0.1:80'],
      {
        kind: 'add-service',
        serviceKey: 'tcp:10.0.0.1:80',
        spec: { protocol: 'tcp', address: '10.0.0.1', port: 80, ...NOT_PERSISTENT },
      },
    ],
    [
      '-p without a value is 360 s, mask /32',
      ['-A', '-t', '10.0.0.1:80', '-p'],
      {
        kind: 'add-service',
        spec: {
          protocol: 'tcp',
          address: '10.0.0.1',
          port: 80,
          scheduler: 'wlc',
          schedFlags: [],
          persistence: { timeout: 360, netmask: '255.255.255.255' },
          onePacket: false,
          pe: null,
        },
      },
    ],
    [
      '-p does not take a following option as its value',
      ['-A', '-t', '10.0.0.1:80', '-p', '-s', 'rr'],
      {
        spec: expect.objectContaining({
          scheduler: 'rr',
          persistence: { timeout: 360, netmask: '255.255.255.255' },
        }),
      },
    ],
    [
      'port 0 is fine for a persistent service; -p takes a value; -M dotted',
      ['-A', '-t', '10.0.0.1', '-p', '600', '-M', '255.255.255.0'],
      {
        serviceKey: 'tcp:10.0.0.1:0',
        spec: expect.objectContaining({ port: 0, persistence: { timeout: 600, netmask: '255.255.255.0' } }),
      },
    ],
    [
      'long options, --opt=value and clusters',
      [
        '--add-service',
        '--udp-service=10.0.0.1:53',
        '--scheduler',
        'sh',
        '--sched-flags=sh-port,sh-fallback',
        '-op900',
      ],
      {
        serviceKey: 'udp:10.0.0.1:53',
        spec: {
          protocol: 'udp',
          address: '10.0.0.1',
          port: 53,
          scheduler: 'sh',
          schedFlags: ['sh-fallback', 'sh-port'],
          persistence: { timeout: 900, netmask: '255.255.255.255' },
          onePacket: true,
          pe: null,
        },
      },
    ],
    [
      'fwmark IPv6 with a prefix netmask',
      ['-A', '-f', '7', '-6', '-p', '-M', '64', '-s', 'rr'],
      {
        serviceKey: 'fwm6:7',
        spec: {
          fwmark: 7,
          family: 'inet6',
          scheduler: 'rr',
          schedFlags: [],
          persistence: { timeout: 360, netmask: '64' },
          onePacket: false,
          pe: null,
        },
      },
    ],
    [
      '-6 resets a mask given before it to 128',
      ['-A', '-f', '7', '-p', '-M', '255.255.0.0', '-6'],
      {
        serviceKey: 'fwm6:7',
        spec: expect.objectContaining({ persistence: { timeout: 360, netmask: '128' } }),
      },
    ],
    [
      'fwmark with -o, --pe, raw flags',
      ['-A', '-f', '4294967295', '-o', '--pe', 'sip', '-p', '-b', 'flag-2,flag-1'],
      {
        serviceKey: 'fwm:4294967295',
        spec: expect.objectContaining({ schedFlags: ['flag-1', 'flag-2'], onePacket: true, pe: 'sip' }),
      },
    ],
    [
      'SCTP and IPv6 service; names of services and inet_aton short forms',
      ['-A', '--sctp-service', '[2001:db8::1]:3868'],
      { serviceKey: 'sctp:[2001:db8::1]:3868' },
    ],
    ['service names', ['-A', '-t', '10.1:http'], { serviceKey: 'tcp:10.0.0.1:80' }],
    [
      '"[v4]:port" loses its port, as parse_service does',
      ['-A', '-t', '[1.2.3.4]:80', '-p'],
      { serviceKey: 'tcp:1.2.3.4:0' },
    ],
    [
      '-E is a full replacement',
      ['-E', '-t', '10.0.0.1:80', '-s', 'rr'],
      { kind: 'edit-service', serviceKey: 'tcp:10.0.0.1:80', patch: { ...NOT_PERSISTENT, scheduler: 'rr' } },
    ],
    ['-D', ['-D', '-u', '10.0.0.1:53'], { kind: 'delete-service', serviceKey: 'udp:10.0.0.1:53' }],
    ['-C', ['-C'], { kind: 'clear' }],
    [
      '-a defaults to -g: the real-server port becomes the service port',
      ['-a', '-t', '10.0.0.1:80', '-r', '192.168.1.2:8080'],
      {
        kind: 'add-server',
        serviceKey: 'tcp:10.0.0.1:80',
        destKey: '192.168.1.2:80',
        spec: {
          address: '192.168.1.2',
          port: 80,
          weight: 1,
          forward: 'route',
          upperThreshold: 0,
          lowerThreshold: 0,
        },
      },
    ],
    [
      '-m keeps the port; weight and thresholds',
      ['-a', '-t', '10.0.0.1:80', '-r', '192.168.1.2:8080', '-m', '-w', '5', '-x', '100', '-y', '50'],
      {
        destKey: '192.168.1.2:8080',
        spec: {
          address: '192.168.1.2',
          port: 8080,
          weight: 5,
          forward: 'masq',
          upperThreshold: 100,
          lowerThreshold: 50,
        },
      },
    ],
    [
      '-r without a port copies the service port',
      ['-a', '-t', '10.0.0.1:80', '-r', '192.168.1.2', '-m', '-w', '0'],
      { destKey: '192.168.1.2:80', spec: expect.objectContaining({ port: 80, weight: 0 }) },
    ],
    [
      '... the service port seen so far (-r before -t gets port 0)',
      ['-a', '-r', '192.168.1.2', '-t', '10.0.0.1:80', '-m'],
      { destKey: '192.168.1.2:0' },
    ],
    [
      '-i forces the service port too',
      ['-a', '-t', '10.0.0.1:80', '-r', '192.168.1.2:8080', '-i'],
      {
        destKey: '192.168.1.2:80',
        spec: expect.objectContaining({ forward: 'tunnel' }),
        tunnel: { type: 'ipip', port: 0, csum: 'nocsum' },
      },
    ],
    [
      'fwmark services keep the real-server port',
      ['-a', '-f', '7', '-r', '192.168.1.2:8080'],
      { destKey: '192.168.1.2:8080' },
    ],
    [
      'tunnels may cross address families',
      ['-a', '-t', '[2001:db8::1]:80', '-r', '10.0.0.2', '-i'],
      { destKey: '10.0.0.2:80', spec: expect.objectContaining({ forward: 'tunnel' }) },
    ],
    [
      'GUE tunnel options',
      [
        '-a',
        '-t',
        '10.0.0.1:80',
        '-r',
        '10.0.0.2',
        '-i',
        '--tun-type',
        'gue',
        '--tun-port',
        '6080',
        '--tun-csum',
      ],
      { tunnel: { type: 'gue', port: 6080, csum: 'csum' } },
    ],
    [
      '-e is a full replacement',
      ['-e', '-t', '10.0.0.1:80', '-r', '192.168.1.2', '-w', '5'],
      {
        kind: 'edit-server',
        destKey: '192.168.1.2:80',
        patch: { weight: 5, forward: 'route', upperThreshold: 0, lowerThreshold: 0 },
      },
    ],
    [
      '-d does not force ports',
      ['-d', '-t', '10.0.0.1:80', '-r', '192.168.1.2:8080'],
      { kind: 'delete-server', serviceKey: 'tcp:10.0.0.1:80', destKey: '192.168.1.2:8080' },
    ],
    ['-Z all', ['-Z'], { kind: 'zero' }],
    ['-Z one', ['--zero', '-t', '10.0.0.1:80'], { kind: 'zero', serviceKey: 'tcp:10.0.0.1:80' }],
    ['-Z 0.0.0.0:0 is all (libipvs sends no service)', ['-Z', '-t', '0.0.0.0:0'], { kind: 'zero' }],
    [
      '--set',
      ['--set', '900', '0', '300'],
      { kind: 'set-timeouts', timeouts: { tcp: 900, tcpFin: 0, udp: 300 } },
    ],
    [
      '--start-daemon with options',
      [
        '--start-daemon',
        'master',
        '--mcast-interface',
        'eth1',
        '--syncid',
        '5',
        '--mcast-group',
        '224.0.0.82',
        '--mcast-port',
        '8849',
        '--mcast-ttl',
        '2',
        '--sync-maxlen',
        '1400',
      ],
      {
        kind: 'start-daemon',
        daemon: {
          role: 'master',
          syncid: 5,
          mcastInterface: 'eth1',
          mcastGroup: '224.0.0.82',
          mcastPort: 8849,
          mcastTtl: 2,
          syncMaxlen: 1400,
        },
      },
    ],
    [
      '--start-daemon defaults',
      ['--start-daemon', 'backup'],
      { daemon: { role: 'backup', syncid: 0, mcastInterface: 'eth0' } },
    ],
    [
      '--stop-daemon',
      ['--stop-daemon', 'backup', '--syncid', '3'],
      { kind: 'stop-daemon', daemon: { role: 'backup', syncid: 3, mcastInterface: '' } },
    ],
    ['-S -n', ['-S', '-n'], { kind: 'save', numeric: true }],
    ['-S', ['--save'], { kind: 'save', numeric: false }],
    ['-R', ['-R'], { kind: 'restore' }],
    ['-h', ['-h', '--bogus'], { kind: 'help' }],
    ['-v', ['--version'], { kind: 'version' }],
  ])('%s', (_name, argv, expected) => {
    expect(plain(parseCommand(argv))).toMatchObject(expected);
  });

  it('IPv6 real server without a port: only the bare form, which gets the service port', () => {
    for (const r of ['[2001:db8::2]', '[2001:db8::2]:']) {
      expect(parseError(['-a', '-t', '[2001:db8::1]:80', '-r', r, '-m']).message).toBe(
        'illegal real server address[:port] specified',
      );
    }
    expect(plain(parseCommand(['-a', '-t', '[2001:db8::1]:80', '-r', '2001:db8::2', '-m']))).toMatchObject({
      destKey: '[2001:db8::2]:80',
    });
  });

  it.each<[string[], Record<string, unknown>]>([
    [[], { view: 'services', format: { numeric: false, stats: false, nosort: false } }],
    [['-Ln'], { view: 'services', format: { numeric: true } }],
    [
      ['-l', '-n', '--stats', '--exact'],
      { view: 'services', format: { numeric: true, stats: true, exact: true } },
    ],
    [['-L', '--rate', '--nosort'], { format: { rate: true, nosort: true, numeric: false } }],
    [
      ['-L', '--thresholds', '--persistent-conn', '--tun-info'],
      { format: { thresholds: true, persistentConn: true, tunInfo: true } },
    ],
    [['-L', '-n', '-t', '10.0.0.1:80'], { view: 'services', serviceKey: 'tcp:10.0.0.1:80' }],
    [['-L', '-f', '7', '-6'], { view: 'services', serviceKey: 'fwm6:7' }],
    [['-L', '-c', '-n'], { view: 'connections', format: { numeric: true } }],
    [['-L', '-c', '--persistent-conn'], { view: 'connections', format: { persistentConn: true } }],
    [['-L', '--timeout'], { view: 'timeout' }],
    [['--list', '--daemon'], { view: 'daemon' }],
  ])('list %j', (argv, expected) => {
    expect(parseCommand(argv)).toMatchObject({ kind: 'list', ...expected });
  });
});

describe('invalid command lines: ipvsadm messages', () => {
  it.each<[string[], string]>([
    [['-A', '-t', '10.0.0.1:80', '-w', '5'], "Illegal 'weight' option with the 'add-service' command"],
    [['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-w', '65536'], 'illegal weight specified'],
    [['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-w', '-1'], 'illegal weight specified'],
    [['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-w', '1x'], 'illegal weight specified'],
    [['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-x', '2147483648'], 'illegal u_threshold specified'],
    [['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-y', ''], 'illegal l_threshold specified'],
    [['-A', '-t', '10.0.0.1', '-s', 'rr'], 'Zero port specified for non-persistent service'],
    [['-E', '-t', '10.0.0.1:0'], 'Zero port specified for non-persistent service'],
    [['-A', '-t', '10.0.0.1:80', '-o'], 'One-Packet Scheduling is only for UDP virtual services'],
    [['-A', '-t', '10.0.0.1:80', '-s', 'rr', '-b', 'sh-port'], "incompatible scheduler flag `sh-port'"],
    [['-A', '-t', '10.0.0.1:80', '-b', 'mh-fallback'], "incompatible scheduler flag `mh-fallback'"],
    [['-A', '-t', '10.0.0.1:80', '-b', 'flag-1,bogus'], "invalid scheduler flag `bogus'"],
    [['-A', '-t', '10.0.0.1:80', '-p', '0'], "invalid timeout value `0' specified"],
    [['-A', '-t', '10.0.0.1:80', '-p', '2678401'], "invalid timeout value `2678401' specified"],
    [['-A', '-t', '10.0.0.1:80', '-p', 'abc'], "invalid timeout value `abc' specified"],
    [['--set', '900', '120'], '--set option requires 3 timeout values'],
    [['--set', '900', '120', '2678401'], "invalid timeout value `2678401' specified"],
    [['--set', '900', '120', '300', '5'], 'unexpected argument 5'],
    [['-A', '-f', '0'], "invalid fwmark value `0' specified"],
    [['-A', '-f', '4294967296'], "invalid fwmark value `4294967296' specified"],
    [['-A', '-6', '-f', '1'], '-6 used before -f'],
    [['-A', '-t', '10.0.0.1:80', '-t', '10.0.0.2:80'], "multiple 'service-address' options specified"],
    [
      ['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-g', '-m'],
      "multiple 'forwarding-method' options specified",
    ],
    [['-a', '-t', '10.0.0.1:80'], "You need to supply the 'real-server' option for the 'add-server' command"],
    [['-A', '-s', 'rr'], "You need to supply the 'service-address' option for the 'add-service' command"],
    [['-A', '-t', '10.0.0.1:80', '-n'], "Illegal 'numeric' option with the 'add-service' command"],
    [['-Z', '-s', 'rr'], "Illegal 'scheduler' option with the 'zero' command"],
    [['-C', '-t', '10.0.0.1:80'], "Illegal 'service-address' option with the 'flush' command"],
    [
      ['-d', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-w', '3'],
      "Illegal 'weight' option with the 'delete-server' command",
    ],
    [['-S', '-c'], "Illegal 'connection' option with the 'save' command"],
    [
      ['-L', '-c', '-t', '10.0.0.1:80'],
      "The option 'service-address' conflicts with the 'connection' option in the 'list' command",
    ],
    [
      ['-L', '--timeout', '--daemon'],
      "The option 'daemon' conflicts with the 'timeout' option in the 'list' command",
    ],
    [['-L', '-c', '--stats'], 'options conflicts in the list command'],
    [['-L', '--daemon', '--persistent-conn'], 'options conflicts in the list command'],
    [['-A', '-t', '10.0.0.1:80', 'extra'], 'unexpected argument extra'],
    [['-A', '-t', '10.0.0.1:80', '#', 'comment'], 'unexpected argument #'],
    [['-A', '-D', '-t', '10.0.0.1:80'], "invalid option `-D'"],
    [['-L', '-h'], "invalid option `-h'"],
    [['-Ln', '--start-daemon', 'master'], "invalid option `master'"],
    [
      ['-a', '-t', '10.0.0.1:80', '-r', '[2001:db8::2]:80'],
      'Different address family is allowed only for tunneling servers',
    ],
    [['-A', '-t', '10.0.0.1:99999'], 'illegal virtual server address[:port] specified'],
    [['-A', '-t', '80'], 'illegal virtual server address[:port] specified'],
    [['-A', '-t', 'no-such-host:80'], 'illegal virtual server address[:port] specified'],
    [['-A', '-t', '10.0.0.1:nosuchservice'], 'illegal virtual server address[:port] specified'],
    [['-a', '-t', '10.0.0.1:80', '-r', '256.0.0.1'], 'illegal real server address[:port] specified'],
    [
      ['-A', '-t', '10.0.0.1:80', '-p', '-M', '255.255.255.256'],
      'illegal virtual server persistent mask specified',
    ],
    [['-A', '-t', '[2001:db8::1]:80', '-p', '-M', '129'], 'illegal ipv6 netmask specified'],
    [['-A', '-t', '[2001:db8::1]:80', '-p', '-M', '255.255.255.0'], 'illegal ipv6 netmask specified'],
    [['--start-daemon', 'primary'], 'illegal start-daemon parameter specified'],
    [['--stop-daemon', 'x'], 'illegal start_daemon specified'],
    [['--start-daemon', 'master', '--syncid', '256'], 'illegal syncid specified'],
    [['--start-daemon', 'master', '--mcast-group', '10.0.0.1'], "invalid IPv4 mcast-group `10.0.0.1'"],
    [['--start-daemon', 'master', '--mcast-group', '2001:db8::1'], "invalid IPv6 mcast-group `2001:db8::1'"],
    [['--start-daemon', 'master', '--mcast-port', '0'], 'illegal mcast-port specified'],
    [['--start-daemon', 'master', '--mcast-ttl', '256'], 'illegal mcast-ttl specified'],
    [['--start-daemon', 'master', '--sync-maxlen', '65508'], 'illegal sync-maxlen specified'],
    [
      ['--stop-daemon', 'master', '--mcast-interface', 'eth0'],
      "Illegal 'mcast-interface' option with the 'stop-daemon' command",
    ],
    [
      ['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '--tun-type', 'gue'],
      'Tunnel options conflict with forward method',
    ],
    [
      ['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-i', '--tun-type', 'vxlan'],
      'illegal tunnel type specified',
    ],
    [
      ['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-i', '--tun-type', 'gue'],
      "You need to supply the 'tun-port' option for the 'gue' tunnel type",
    ],
    [
      ['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-i', '--tun-port', '5555'],
      "Illegal 'tun-port' option with the 'ipip' tunnel type",
    ],
    [
      ['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-i', '--tun-type', 'gre', '--tun-csum', '--tun-nocsum'],
      "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gre' tunnel type",
    ],
  ])('%j → %s', (argv, message) => {
    const err = parseError(argv);
    expect(err.message).toBe(message);
    expect(err.exitStatus).toBe(2);
  });

  it.each<[string[], string]>([
    [['-t', '10.0.0.1:80', '-A'], TRY],
    [['-nL'], TRY],
    [['#', 'a', 'comment'], TRY],
    [['--bogus'], TRY],
    [['-A', '--bogus'], '--bogus: unknown option'],
    [['-A', '-t'], '-t: missing argument'],
    [['-Lq'], '-Lq: unknown option'],
    [['-L', '--numeric=1'], '--numeric=1: option does not take an argument'],
  ])('popt-level %j → %s (exit 255)', (argv, message) => {
    const err = parseError(argv);
    expect(err.message).toBe(message);
    expect(err.exitStatus).toBe(255);
  });

  it('-R while restoring is refused like ipvsadm (tryhelp)', () => {
    const err = parseError(['-R'], { restoring: true });
    expect([err.message, err.exitStatus]).toEqual([TRY, 255]);
  });

  it('names the program given', () => {
    expect(parseError(['-x'], { program: 'ipvsctl' }).message).toBe(
      "Try `ipvsctl -h' or 'ipvsctl --help' for more information.",
    );
  });
});

describe('ranges and limits', () => {
  const weight = (w: string) => parseCommand(['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-w', w]);
  it('weight 0..65535', () => {
    expect(weight('0')).toMatchObject({ spec: { weight: 0 } });
    expect(weight('65535')).toMatchObject({ spec: { weight: 65535 } });
    expect(weight('+7')).toMatchObject({ spec: { weight: 7 } });
  });

  it('thresholds 0..INT_MAX', () => {
    expect(
      parseCommand(['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-x', '2147483647', '-y', '0']),
    ).toMatchObject({ spec: { upperThreshold: 2147483647, lowerThreshold: 0 } });
  });

  it('timeouts 1..2678400 for -p, 0..2678400 for --set', () => {
    expect(parseCommand(['-A', '-t', '10.0.0.1:80', '-p', '2678400'])).toMatchObject({
      spec: { persistence: { timeout: 2678400 } },
    });
    expect(parseCommand(['--set', '0', '2678400', '1'])).toMatchObject({
      timeouts: { tcp: 0, tcpFin: 2678400, udp: 1 },
    });
  });

  it('syncid 0..255, fwmark 1..UINT_MAX', () => {
    expect(parseCommand(['--start-daemon', 'master', '--syncid', '255'])).toMatchObject({
      daemon: { syncid: 255 },
    });
    expect(parseCommand(['-D', '-f', '1'])).toMatchObject({ serviceKey: 'fwm:1' });
  });

  it('the scheduler name is passed on (truncated to 15 characters)', () => {
    expect(parseCommand(['-A', '-t', '10.0.0.1:80', '-s', 'a-very-long-scheduler-name'])).toMatchObject({
      spec: { scheduler: 'a-very-long-sch' },
    });
  });

  it('resolvers for host and service names', () => {
    const cmd = parseCommand(['-A', '-t', 'www:web'], {
      resolveHost: (n) => (n === 'www' ? '10.9.8.7' : undefined),
      resolveService: (n, p) => (n === 'web' && p === 'tcp' ? 8000 : undefined),
    });
    expect(cmd).toMatchObject({ serviceKey: 'tcp:10.9.8.7:8000' });
  });

  it('the commands × options table has one column per option', () => {
    for (const row of Object.values(COMMANDS_V_OPTIONS)) expect(row).toHaveLength(34);
  });

  it('help and version texts', () => {
    expect(versionText()).toBe('ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n');
    expect(usageText('ipvsctl')).toContain('  ipvsctl -A|E virtual-service [-s scheduler]');
  });
});
