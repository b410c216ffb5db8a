/**
 * `ipvsadm -R` and command application (§8.3, §8.1): line splitting, no comments, apply in order,
 * stop at the first failing line (1-based) with earlier lines kept, ipvsadm's messages for engine
 * errors, full-replacement edits, and `-S | -R` giving the same `-S` text.
 */
import { describe, expect, it } from 'vitest';
import { IpvsError } from '../../src/domain/errors.js';
import { ManualClock } from '../../src/engine/clock.js';
import type { DestinationSpec, ServiceSpec } from '../../src/engine/engine.js';
import { MemoryEngine } from '../../src/engine/memory/memory-engine.js';
import {
  applyCommand,
  formatSave,
  IpvsadmError,
  ipvsadmMessage,
  parseCommand,
  parseRules,
  RestoreError,
  restoreRules,
  tokenizeRuleLine,
  type RulesTarget,
} from '../../src/ipvsadm/index.js';

const engine = () => new MemoryEngine({ clock: new ManualClock(0) });

/** Records every call; fails the calls named in `failures`. */
class FakeTarget implements RulesTarget {
  calls: unknown[][] = [];
  constructor(private readonly failures: Record<string, IpvsError> = {}) {}
  private record(name: string, ...args: unknown[]): Promise<void> {
    this.calls.push([name, ...args]);
    const err = this.failures[name];
    return err ? Promise.reject(err) : Promise.resolve();
  }
  addService(spec: ServiceSpec) {
    return this.record('addService', spec);
  }
  editService(key: string, patch: ServiceSpec) {
    return this.record('editService', key, patch);
  }
  deleteService(key: string) {
    return this.record('deleteService', key);
  }
  clear() {
    return this.record('clear');
  }
  addDestination(service: string, spec: DestinationSpec) {
    return this.record('addDestination', service, spec);
  }
  editDestination(service: string, dest: string, patch: DestinationSpec) {
    return this.record('editDestination', service, dest, patch);
  }
  deleteDestination(service: string, dest: string) {
    return this.record('deleteDestination', service, dest);
  }
  zeroStats(service?: string) {
    return this.record('zeroStats', service);
  }
  setTimeouts(t: object) {
    return this.record('setTimeouts', t);
  }
}

async function restoreError(text: string, target: RulesTarget): Promise<RestoreError> {
  try {
    await restoreRules(text, target);
  } catch (err) {
    expect(err).toBeInstanceOf(RestoreError);
    return err as RestoreError;
  }
  throw new Error('restore succeeded');
}

async function applyError(argv: string[], target: RulesTarget): Promise<IpvsadmError> {
  try {
    await applyCommand(parseCommand(argv), target);
  } catch (err) {
    expect(err).toBeInstanceOf(IpvsadmError);
    return err as IpvsadmError;
  }
  throw new Error('applied');
}

describe('the -R tokenizer', () => {
  it('splits on spaces, tabs and CRs and drops every "ipvsadm" word', () => {
    expect(tokenizeRuleLine('ipvsadm -A\t-t  10.0.0.1:80 -s rr\r')).toEqual([
      '-A',
      '-t',
      '10.0.0.1:80',
      '-s',
      'rr',
    ]);
    expect(tokenizeRuleLine('-a ipvsadm -t 10.0.0.1:80')).toEqual(['-a', '-t', '10.0.0.1:80']);
    expect(tokenizeRuleLine(' \t\r')).toEqual([]);
    expect(tokenizeRuleLine('ipvsadm')).toEqual([]);
  });
});

describe('restoreRules', () => {
  it('applies lines in order: blank lines, CRLF, "ipvsadm" prefixes, no final newline', async () => {
    const target = new FakeTarget();
    const text =
      'ipvsadm -A -t 10.0.0.1:80 -s rr\r\n\n   \n-a -t 10.0.0.1:80 -r 192.168.1.2 -m -w 3\r\n-C\n--set 900 0 300';
    const result = await restoreRules(text, target);
    expect(result).toEqual({ applied: 4, commands: 4, errors: [] });
    expect(target.calls).toEqual([
      [
        'addService',
        {
          protocol: 'tcp',
          address: '10.0.0.1',
          port: 80,
          scheduler: 'rr',
          schedFlags: [],
          persistence: null,
          onePacket: false,
          pe: null,
        },
      ],
      [
        'addDestination',
        'tcp:10.0.0.1:80',
        {
          address: '192.168.1.2',
          port: 80,
          weight: 3,
          forward: 'masq',
          upperThreshold: 0,
          lowerThreshold: 0,
        },
      ],
      ['clear'],
      ['setTimeouts', { tcp: 900, tcpFin: 0, udp: 300 }],
    ]);
  });

  it('stops at the first engine error, names the line, keeps earlier lines', async () => {
    const e = engine();
    const text = [
      '-A -t 10.0.0.1:80 -s rr',
      '-a -t 10.0.0.1:80 -r 192.168.1.2:80 -m',
      '',
      '-A -t 10.0.0.1:80 -s wlc',
      '-a -t 10.0.0.1:80 -r 192.168.1.3:80 -m',
    ].join('\n');
    const err = await restoreError(text, e);
    expect(err.line).toBe(4);
    expect(err.reason).toBe('Service already exists');
    expect(err.message).toBe('line 4: Service already exists');
    expect(err.exitStatus).toBe(255);
    expect(err.applied).toBe(2);
    expect(err.detail).toMatch(/already exists/);
    const [svc] = await e.listServices();
    expect(svc.scheduler).toBe('rr');
    expect(svc.destinations.map((d) => d.key)).toEqual(['192.168.1.2:80']);
  });

  it('stops at the first option error (exit status 2)', async () => {
    const e = engine();
    const err = await restoreError('-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.0.0.2 -w 70000\n-C\n', e);
    expect([err.line, err.reason, err.exitStatus, err.applied]).toEqual([
      2,
      'illegal weight specified',
      2,
      1,
    ]);
    expect(await e.listServices()).toHaveLength(1);
  });

  it('has no # comments: a comment line is an error, like the real tokenizer', async () => {
    const target = new FakeTarget();
    let err = await restoreError('-A -t 10.0.0.1:80\n# saved rules\n-A -t 10.0.0.2:80\n', target);
    expect([err.line, err.reason, err.exitStatus]).toEqual([
      2,
      "Try `ipvsadm -h' or 'ipvsadm --help' for more information.",
      255,
    ]);
    expect(target.calls).toHaveLength(1);
    err = await restoreError('-A -t 10.0.0.1:80 # web\n', new FakeTarget());
    expect([err.line, err.reason]).toEqual([1, 'unexpected argument #']);
  });

  it('refuses -R inside -R; skips listing and saving lines', async () => {
    const err = await restoreError('-C\n-R\n', new FakeTarget());
    expect([err.line, err.exitStatus]).toEqual([2, 255]);
    const target = new FakeTarget();
    expect(await restoreRules('-L -n\n-S -n\n-C\n', target)).toEqual({ applied: 1, commands: 3, errors: [] });
  });

  it('continueOnEngineError goes on after engine errors, as ipvsadm 1.31 itself does', async () => {
    const e = engine();
    const text = '-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80\n-d -t 10.0.0.1:80 -r 10.0.0.9\n-A -t 10.0.0.2:80\n';
    const result = await restoreRules(text, e, { continueOnEngineError: true });
    expect(result.applied).toBe(2);
    expect(result.errors.map((x) => [x.line, x.reason])).toEqual([
      [2, 'Service already exists'],
      [3, 'No such destination'],
    ]);
    expect((await e.listServices()).map((s) => s.key).sort()).toEqual(['tcp:10.0.0.1:80', 'tcp:10.0.0.2:80']);
  });

  it('parseRules validates everything without applying', () => {
    const rules = parseRules('-A -t 10.0.0.1:80\n\n-a -t 10.0.0.1:80 -r 10.0.0.2\n');
    expect(rules.map((r) => [r.line, r.command.kind])).toEqual([
      [1, 'add-service'],
      [3, 'add-server'],
    ]);
    expect(() => parseRules('-A -t 10.0.0.1:80\n-A -t 10.0.0.1\n')).toThrow(
      'line 2: Zero port specified for non-persistent service',
    );
  });
});

describe('applyCommand: engine errors with ipvsadm messages', () => {
  it.each<[string[][], string[], string]>([
    [[], ['-E', '-t', '10.0.0.1:80', '-s', 'rr'], 'No such service'],
    [[], ['-D', '-t', '10.0.0.1:80'], 'No such service'],
    [[], ['-Z', '-t', '10.0.0.1:80'], 'No such service'],
    [[], ['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2'], 'Service not defined'],
    [[], ['-e', '-t', '10.0.0.1:80', '-r', '10.0.0.2'], 'Service not defined'],
    [[], ['-d', '-t', '10.0.0.1:80', '-r', '10.0.0.2'], 'Service not defined'],
    [[['-A', '-t', '10.0.0.1:80']], ['-A', '-t', '10.0.0.1:80'], 'Service already exists'],
    [[], ['-A', '-t', '10.0.0.1:80', '-s', 'nosuch'], 'Scheduler or persistence engine not found'],
    [
      [['-A', '-t', '10.0.0.1:80']],
      ['-E', '-t', '10.0.0.1:80', '-s', 'nosuch'],
      'Scheduler or persistence engine not found',
    ],
    [
      [
        ['-A', '-t', '10.0.0.1:80'],
        ['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2'],
      ],
      ['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2'],
      'Destination already exists',
    ],
    [[['-A', '-t', '10.0.0.1:80']], ['-e', '-t', '10.0.0.1:80', '-r', '10.0.0.2'], 'No such destination'],
    [[['-A', '-t', '10.0.0.1:80']], ['-d', '-t', '10.0.0.1:80', '-r', '10.0.0.2'], 'No such destination'],
    [
      [['-A', '-t', '10.0.0.1:80']],
      ['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-x', '10', '-y', '20'],
      'Numerical result out of range',
    ],
    [
      [['-A', '-t', '10.0.0.1:80']],
      ['-a', '-t', '10.0.0.1:80', '-r', '224.0.0.1'],
      'Invalid operation.  Possibly wrong module version, address not unicast, ...',
    ],
  ])('%j then %j → %s', async (setup, argv, message) => {
    const e = engine();
    for (const line of setup) await applyCommand(parseCommand(line), e);
    const err = await applyError(argv, e);
    expect(err.message).toBe(message);
    expect(err.exitStatus).toBe(255);
    expect(err.detail).toBeTruthy();
  });

  it('daemon commands need a target that has them', async () => {
    const err = await applyError(['--start-daemon', 'master'], new FakeTarget());
    expect(err.message).toBe('Protocol not available');
    const calls: unknown[] = [];
    const target = Object.assign(new FakeTarget(), {
      startDaemon: async (d: unknown) => void calls.push(d),
    });
    await applyCommand(parseCommand(['--start-daemon', 'master', '--syncid', '9']), target);
    expect(calls).toEqual([{ role: 'master', syncid: 9, mcastInterface: 'eth0' }]);
  });

  it('maps daemon errors', () => {
    expect(ipvsadmMessage('start-daemon', new IpvsError('ALREADY_EXISTS', 'x'))).toBe(
      'Daemon has already run',
    );
    expect(ipvsadmMessage('stop-daemon', new IpvsError('NOT_FOUND', 'x'))).toBe('No daemon is running');
    expect(ipvsadmMessage('clear', new IpvsError('UNAVAILABLE', 'x'))).toBeUndefined();
  });

  it('an unmapped engine error keeps the engine message', async () => {
    const target = new FakeTarget({ clear: new IpvsError('UNAVAILABLE', 'state store unreachable') });
    const err = await applyError(['-C'], target);
    expect([err.message, err.exitStatus]).toEqual(['state store unreachable', 255]);
  });

  it('refuses non-configuration commands', async () => {
    await expect(applyCommand(parseCommand(['-L', '-n']), new FakeTarget())).rejects.toThrow(TypeError);
  });

  it('refuses tunnel types the engine cannot represent', async () => {
    const err = await applyError(
      ['-a', '-t', '10.0.0.1:80', '-r', '10.0.0.2', '-i', '--tun-type', 'gue', '--tun-port', '6080'],
      new FakeTarget(),
    );
    expect(err.message).toBe('Tunnel type gue is not supported');
  });
});

describe('-E / -e are full replacements (§8.1)', () => {
  it('-E without -p makes a persistent service non-persistent and drops its flags', async () => {
    const e = engine();
    await applyCommand(
      parseCommand(['-A', '-u', '10.0.0.1:53', '-s', 'sh', '-b', 'sh-port', '-p', '600', '-o']),
      e,
    );
    await applyCommand(parseCommand(['-E', '-u', '10.0.0.1:53', '-s', 'sh']), e);
    const [svc] = await e.listServices();
    expect([svc.scheduler, svc.schedFlags, svc.persistence, svc.onePacket, svc.pe]).toEqual([
      'sh',
      [],
      null,
      false,
      null,
    ]);
  });

  it('-e with only -w switches a NAT server to DR and clears its thresholds', async () => {
    const e = engine();
    await applyCommand(parseCommand(['-A', '-f', '7', '-s', 'rr']), e);
    await applyCommand(
      parseCommand(['-a', '-f', '7', '-r', '10.0.0.2:8080', '-m', '-x', '100', '-y', '10']),
      e,
    );
    await applyCommand(parseCommand(['-e', '-f', '7', '-r', '10.0.0.2:8080', '-w', '5']), e);
    const [svc] = await e.listServices();
    expect(svc.destinations[0]).toMatchObject({
      key: '10.0.0.2:8080',
      weight: 5,
      forward: 'route',
      upperThreshold: 0,
      lowerThreshold: 0,
    });
  });
});

describe('-S | -R round trip', () => {
  const RULES = [
    '-A -t 10.0.0.1:80 -s wlc -p 360',
    '-a -t 10.0.0.1:80 -r 192.168.1.11:80 -g -w 1',
    '-a -t 10.0.0.1:80 -r 192.168.1.12:8080 -m -w 3 -x 500 -y 100',
    '-A -t 192.168.1.1:443 -s wrr -b flag-2',
    '-a -t 192.168.1.1:443 -r 10.0.0.5:443 -i -w 0',
    '-a -t 192.168.1.1:443 -r 192.168.9.5 -m -w 65535',
    '-A -u 10.0.0.1:53 -s sh -b sh-fallback,sh-port -o',
    '-a -u 10.0.0.1:53 -r 192.168.1.21:53 -g -w 2',
    '-A -u 10.0.0.1:5060 -s rr -p 1800 -M 255.255.0.0 --pe sip',
    '-a -u 10.0.0.1:5060 -r 192.168.1.40 -g',
    '-A -t [2001:db8::10]:443 -s mh -b mh-fallback,mh-port',
    '-a -t [2001:db8::10]:443 -r [2001:db8::20]:443 -m -w 1',
    '-a -t [2001:db8::10]:443 -r 10.1.1.1 -i',
    '-A --sctp-service [2001:db8::1]:3868 -s lblcr -p 60 -M 64',
    '-a --sctp-service [2001:db8::1]:3868 -r [2001:db8::2]:3869 -m',
    '-A -t 10.0.0.3:0 -s lc -p',
    '-A -f 7 -s rr -p 600 -M 255.255.255.0',
    '-a -f 7 -r 192.168.1.31:0 -g -w 1',
    '-A -f 8 -6 -s dh -o',
    '-a -f 8 -6 -r [2001:db8::30]:0 -g -w 4',
  ].join('\n');

  it('restoring saved rules gives the same -S text', async () => {
    const first = engine();
    await restoreRules(RULES, first);
    const saved = formatSave(await first.listServices());
    expect(saved).toContain('-a -t 192.168.1.1:443 -r 10.0.0.5:443 -i -w 0 --tun-type ipip\n');
    expect(saved).not.toContain('-x');

    const second = engine();
    const result = await restoreRules(saved, second);
    expect(result.errors).toEqual([]);
    expect(formatSave(await second.listServices())).toBe(saved);
  });

  it('restoring into a populated engine fails at the first existing service', async () => {
    const e = engine();
    await restoreRules(RULES, e);
    const err = await restoreError(formatSave(await e.listServices()), e);
    expect([err.line, err.reason, err.applied]).toEqual([1, 'Service already exists', 0]);
  });
});
