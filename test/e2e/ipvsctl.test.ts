/**
 * ipvsctl end to end: the real CLI (`node bin/ipvsctl.js`) against the real service binary
 * (`node --import tsx src/main.ts`) on free ports. Outputs are compared byte for byte with
 * test/golden/ipvsctl (UPDATE_GOLDEN=1 rewrites them; check every rewrite against
 * ipvs-semantics.md §8.4 and test/golden/ipvsadm before keeping it). The service runs with
 * IPVS_CLOCK=manual, so connection expiry columns and rates do not depend on timing.
 *
 * One service per describe block, cleared with `ipvsctl -C` before each case.
 */
import { promises as dns } from 'node:dns';
import { createServer } from 'node:net';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  runProcess,
  startServiceProcess,
  stopAll,
  type RunResult,
  type ServiceProcess,
} from './service-process.js';

const GOLDEN_DIR = fileURLToPath(new URL('../golden/ipvsctl/', import.meta.url));

/** Compares with test/golden/ipvsctl/<name> byte for byte (UPDATE_GOLDEN=1 rewrites it). */
function golden(name: string, actual: string): void {
  const path = `${GOLDEN_DIR}${name}`;
  if (process.env.UPDATE_GOLDEN) {
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(path, actual);
  }
  if (!existsSync(path)) throw new Error(`missing golden file ${path} (run with UPDATE_GOLDEN=1 once)`);
  expect(actual).toBe(readFileSync(path, 'utf8'));
}

/** The `ipvsadm -S -n` example of ipvs-semantics.md §8.2. */
const SPEC_8_2 = `-A -t 10.0.0.1:80 -s wlc -p 360
-a -t 10.0.0.1:80 -r 192.168.1.11:80 -g -w 1
-a -t 10.0.0.1:80 -r 192.168.1.12:8080 -m -w 3
-A -u 10.0.0.1:53 -s sh -b sh-fallback,sh-port
-a -u 10.0.0.1:53 -r 192.168.1.21:53 -g -w 2
-A -t [2001:db8::10]:443 -s mh -b mh-fallback,mh-port
-a -t [2001:db8::10]:443 -r [2001:db8::20]:443 -m -w 1
-A -f 7 -s rr -p 600 -M 255.255.255.0
-a -f 7 -r 192.168.1.31:0 -g -w 1
`;

/**
 * The §8.2 configuration as a user would type it: another order (ipvsadm sorts), defaults left
 * out (`-p` = 360, `-g`, `-w 1`, `-r` without a port copies the service port), long options and
 * service names.
 */
const BUILD_8_2: readonly string[][] = [
  ['-A', '-f', '7', '-s', 'rr', '-p', '600', '-M', '255.255.255.0'],
  ['-A', '--tcp-service', '[2001:db8::10]:https', '-s', 'mh', '-b', 'mh-fallback,mh-port'],
  ['-A', '-u', '10.0.0.1:domain', '--scheduler=sh', '-b', 'sh-fallback,sh-port'],
  ['-A', '-t', '10.0.0.1:80', '-p'],
  ['-a', '-f', '7', '-r', '192.168.1.31'],
  ['-a', '-t', '10.0.0.1:80', '-r', '192.168.1.12:8080', '-m', '-w', '3'],
  ['-a', '-t', '10.0.0.1:80', '-r', '192.168.1.11'],
  ['--add-server', '-u', '10.0.0.1:53', '-r', '192.168.1.21', '-g', '--weight', '2'],
  ['-a', '-t', '[2001:db8::10]:443', '-r', '[2001:db8::20]:443', '--masquerading'],
];

/** A wider rule set for the save/restore round trip. */
const RICH_RULES = `-A -t 10.0.0.2:443 -s sh -b sh-port
-a -t 10.0.0.2:443 -r 192.168.1.50:8443 -m -w 10
-a -t 10.0.0.2:443 -r 192.168.1.51:443 -i -w 1 --tun-type ipip
-A -u 10.0.0.1:5060 -s rr -p 1800 -M 255.255.0.0 --pe sip -o
-a -u 10.0.0.1:5060 -r 192.168.1.40:5060 -g -w 0
-a -u 10.0.0.1:5060 -r 192.168.1.41:5060 -g -w 65535
-A --sctp-service [2001:db8::1]:3868 -s lblcr -p 60
-a --sctp-service [2001:db8::1]:3868 -r [2001:db8::2]:3868 -m -w 1
-A -f 9 -6 -s wrr -p 300 -M 64 -b flag-1,flag-3
-a -f 9 -6 -r [2001:db8::7]:0 -g -w 2
-A -t 10.0.0.3:8080 -s lc
`;

const TOKEN = 'e2e-admin-token-7f3a';

/** The environment of a CLI run: no inherited server or token. */
function cliEnv(extra: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  return { ...process.env, IPVS_ADMIN_TOKEN: undefined, IPVSCTL_SERVER: undefined, ...extra };
}

function ipvsctl(
  svc: ServiceProcess | string,
  args: readonly string[],
  options: { stdin?: string; env?: Record<string, string | undefined> } = {},
): Promise<RunResult> {
  const server = typeof svc === 'string' ? svc : svc.url;
  return runProcess(process.execPath, ['bin/ipvsctl.js', '--server', server, ...args], {
    stdin: options.stdin,
    env: cliEnv(options.env),
  });
}

/** Runs and expects success with nothing on stderr; returns stdout. */
async function ok(svc: ServiceProcess, args: readonly string[], stdin?: string): Promise<string> {
  const r = await ipvsctl(svc, args, { stdin });
  expect({ args, code: r.code, stderr: r.stderr }).toEqual({ args, code: 0, stderr: '' });
  return r.stdout;
}

/** POST with a JSON body; the parsed answer. */
async function post(svc: ServiceProcess, path: string, body: unknown): Promise<unknown> {
  const text = await call(svc, 'POST', path, JSON.stringify(body), 'application/json');
  return JSON.parse(text) as unknown;
}

/** An HTTP call to the service (setup and checks that are not what a case is about). */
async function call(
  svc: ServiceProcess,
  method: string,
  path: string,
  body?: string,
  type = 'text/plain',
): Promise<string> {
  const res = await fetch(`${svc.url}${path}`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': type }, body }),
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${text}`);
  return text;
}

/** The configuration as `ipvsadm -S -n` text, read over HTTP (GET /v1/rules). */
const rules = (svc: ServiceProcess) => call(svc, 'GET', '/v1/rules');

/** A local port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

afterAll(async () => {
  await stopAll();
});

/** The service of the token block, started early (alongside the first block's) to save time. */
let tokenService: Promise<ServiceProcess> | undefined;
const startTokenService = () => (tokenService ??= startServiceProcess({ env: { IPVS_ADMIN_TOKEN: TOKEN } }));

describe('ipvsctl against a running service', () => {
  let svc: ServiceProcess;

  beforeAll(async () => {
    [svc] = await Promise.all([startServiceProcess({ env: { IPVS_CLOCK: 'manual' } }), startTokenService()]);
  });

  afterAll(async () => {
    await svc?.stop();
  });

  beforeEach(async () => {
    await call(svc, 'DELETE', '/v1/services');
  });

  it('builds the §8.2 example with -A/-a; -S -n prints §8.2', async () => {
    // services first, then their real servers; within each group the order does not matter
    const isService = (args: readonly string[]) => args[0] === '-A';
    await Promise.all(BUILD_8_2.filter(isService).map((args) => ok(svc, args)));
    await Promise.all(BUILD_8_2.filter((args) => !isService(args)).map((args) => ok(svc, args)));
    const saved = await ok(svc, ['-S', '-n']);
    expect(saved).toBe(SPEC_8_2);
    golden('save-8.2.txt', saved);
    expect(readFileSync(`${GOLDEN_DIR}save-8.2.txt`, 'utf8')).toBe(SPEC_8_2);
    expect(await rules(svc)).toBe(SPEC_8_2);
  });

  it('prints every listing variant byte for byte', async () => {
    await ok(
      svc,
      ['-R'],
      SPEC_8_2 +
        '-A -u 10.0.0.2:5060 -s rr -p 1800 -M 255.255.0.0 --pe sip\n' +
        '-a -u 10.0.0.2:5060 -r 192.168.1.41\n' +
        // thresholds (-e is a full replacement: forward and weight given again)
        '-e -t 10.0.0.1:80 -r 192.168.1.12:8080 -m -w 3 -x 100 -y 50\n',
    );
    for (const body of [
      { protocol: 'tcp', client: '192.168.5.1:50000', virtual: '10.0.0.1:80' },
      { protocol: 'udp', client: '192.168.5.9:5353', virtual: '10.0.0.1:53' },
      { protocol: 'tcp', client: '192.168.5.7:40000', virtual: '10.9.9.9:8080', fwmark: 7 },
      { protocol: 'tcp', client: '[2001:db8::99]:40000', virtual: '[2001:db8::10]:443' },
      {
        protocol: 'udp',
        client: '192.168.5.7:5060',
        virtual: '10.0.0.2:5060',
        callId: 'a84b4c76e66710@pc33.atlanta.example.com',
      },
    ])
      await post(svc, '/v1/schedule', body);

    const cases: [string, string[]][] = [
      ['list.txt', ['-L', '-n']],
      ['list-stats.txt', ['-L', '-n', '--stats']],
      ['list-stats-exact.txt', ['-l', '-n', '--stats', '--exact']],
      ['list-rate.txt', ['-L', '-n', '--rate']],
      ['list-thresholds.txt', ['-L', '-n', '--thresholds']],
      ['list-persistent-conn.txt', ['-L', '-n', '--persistent-conn']],
      ['list-nosort.txt', ['-Ln', '--nosort']],
      ['list-service.txt', ['-L', '-n', '-t', '10.0.0.1:80']],
      ['list-service-fwmark.txt', ['--list', '--numeric', '-f', '7', '--thresholds']],
      ['conn.txt', ['-L', '-c', '-n']],
      ['conn-persistent.txt', ['-L', '-c', '-n', '--persistent-conn']],
      ['timeout.txt', ['-L', '--timeout']],
    ];
    const outputs = await Promise.all(cases.map(([, args]) => ok(svc, args)));
    cases.forEach(([name], i) => golden(name, outputs[i]));
  });

  it('-S -n | -C | -R gives the same -S text', async () => {
    await ok(svc, ['-R'], RICH_RULES);
    const before = await ok(svc, ['-S', '-n']);
    golden('save-rich.txt', before);
    await ok(svc, ['-C']);
    expect(await rules(svc)).toBe('');
    await ok(svc, ['-R'], before);
    expect(await ok(svc, ['-S', '-n'])).toBe(before);
  });

  it('-R stops at the first bad line, names it, and keeps the lines before', async () => {
    const input = [
      '-A -t 10.0.0.5:80 -s rr',
      'ipvsadm -a -t 10.0.0.5:80 -r 192.168.2.1:80 -m',
      '',
      '-a -t 10.0.0.5:80 -r 192.168.2.2:80 -m -w 70000',
      '-A -t 10.0.0.6:80 -s rr',
      '',
    ].join('\n');
    const r = await ipvsctl(svc, ['-R'], { stdin: input });
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      'illegal weight specified\n' +
        'ipvsctl: -R stopped at line 4: -a -t 10.0.0.5:80 -r 192.168.2.2:80 -m -w 70000' +
        ' (the 2 commands before it stay applied)\n',
    );
    const applied = '-A -t 10.0.0.5:80 -s rr\n-a -t 10.0.0.5:80 -r 192.168.2.1:80 -m -w 1\n';
    expect(await rules(svc)).toBe(applied);

    // a refusal by the service: ipvsadm's text, exit status 255
    const again = await ipvsctl(svc, ['-R'], { stdin: '-A -t 10.0.0.7:80\n-A -t 10.0.0.5:80 -s wlc' });
    expect(again.code).toBe(255);
    expect(again.stderr).toBe(
      'Service already exists\n' +
        'ipvsctl: -R stopped at line 2: -A -t 10.0.0.5:80 -s wlc (the command before it stays applied)\n',
    );
    expect(await rules(svc)).toBe(`${applied}-A -t 10.0.0.7:80 -s wlc\n`);
  });

  it('-E, -e, -d, -D and -Z change the service', async () => {
    await call(svc, 'PUT', '/v1/rules', SPEC_8_2);
    const [edit] = await Promise.all([
      // -e is a full replacement: without -m/-i the server is -g, whose port is the service's
      ipvsctl(svc, ['-e', '-t', '10.0.0.1:80', '-r', '192.168.1.12:8080', '-w', '5']),
      ok(svc, ['-E', '-t', '10.0.0.1:80', '-s', 'rr']), // full replacement: no longer persistent
      ok(svc, ['-e', '-t', '10.0.0.1:80', '-r', '192.168.1.11', '-m', '-w', '4']),
      ok(svc, ['-D', '-f', '7']),
      ok(svc, ['-Z', '-u', '10.0.0.1:53']),
      ok(svc, ['-Z']),
    ]);
    expect([edit.code, edit.stderr]).toEqual([255, 'No such destination\n']);
    await ok(svc, ['-d', '-t', '10.0.0.1:80', '-r', '192.168.1.12:8080']);
    expect(await rules(svc)).toBe(
      '-A -t 10.0.0.1:80 -s rr\n' +
        '-a -t 10.0.0.1:80 -r 192.168.1.11:80 -m -w 4\n' +
        '-A -u 10.0.0.1:53 -s sh -b sh-fallback,sh-port\n' +
        '-a -u 10.0.0.1:53 -r 192.168.1.21:53 -g -w 2\n' +
        '-A -t [2001:db8::10]:443 -s mh -b mh-fallback,mh-port\n' +
        '-a -t [2001:db8::10]:443 -r [2001:db8::20]:443 -m -w 1\n',
    );
  });

  it("reports ipvsadm's messages and exit statuses", async () => {
    await call(svc, 'PUT', '/v1/rules', '-A -t 10.0.0.1:80 -s rr\n');
    const cases: [string[], number, string][] = [
      [['-A', '-t', '10.0.0.1:80'], 255, 'Service already exists\n'],
      [['-d', '-t', '10.0.0.1:80', '-r', '192.168.9.9:80'], 255, 'No such destination\n'],
      [['-e', '-t', '10.0.0.1:80', '-r', '192.168.9.9:80'], 255, 'No such destination\n'],
      [['-a', '-t', '10.0.0.9:80', '-r', '192.168.9.9'], 255, 'Service not defined\n'],
      [['-D', '-t', '10.0.0.9:80'], 255, 'No such service\n'],
      [['-Z', '-t', '10.0.0.9:80'], 255, 'No such service\n'],
      [['-A', '-t', '10.0.0.2:80', '-s', 'nosuch'], 255, 'Scheduler or persistence engine not found\n'],
      [['-a', '-t', '10.0.0.1:80', '-r', '192.168.9.9', '-w', '70000'], 2, 'illegal weight specified\n'],
      [['-A', '-t', '10.0.0.2:0'], 2, 'Zero port specified for non-persistent service\n'],
      [['-A', '-t', '10.0.0.2:80', '-w', '2'], 2, "Illegal 'weight' option with the 'add-service' command\n"],
      [['-L', '-n', '-t', '10.0.0.9:80'], 1, 'No such service\n'],
      [['-Q'], 255, "Try `ipvsctl -h' or 'ipvsctl --help' for more information.\n"],
    ];
    const results = await Promise.all(cases.map(([args]) => ipvsctl(svc, args)));
    results.forEach((r, i) => {
      const [args, code, stderr] = cases[i];
      expect({ args, code: r.code, stderr: r.stderr, stdout: r.stdout }).toEqual({
        args,
        code,
        stderr,
        stdout: '',
      });
    });
    // nothing changed
    expect(await rules(svc)).toBe('-A -t 10.0.0.1:80 -s rr\n');
  });

  // With SYNC_REDIS_URL the daemons run: test/e2e/sync-failover.test.ts drives them with ipvsctl.
  it('sync daemons without SYNC_REDIS_URL: --daemon lists none; --start-daemon/--stop-daemon fail naming it', async () => {
    const [daemons, start, stop] = await Promise.all([
      ok(svc, ['-L', '--daemon']),
      ipvsctl(svc, ['--start-daemon', 'master', '--syncid', '5']),
      ipvsctl(svc, ['--stop-daemon', 'backup']),
    ]);
    expect(daemons).toBe('');
    for (const r of [start, stop]) {
      expect(r.code).toBe(255);
      expect(r.stderr.split('\n')[0]).toMatch(/^SYNC_REDIS_URL: /);
    }
  });

  it('--set changes the timeouts (0 keeps a value)', async () => {
    try {
      await ok(svc, ['--set', '1000', '0', '200']);
      const [listed, bad] = await Promise.all([
        ok(svc, ['-L', '--timeout']),
        ipvsctl(svc, ['--set', '1', '2']),
      ]);
      expect(listed).toBe('Timeout (tcp tcpfin udp): 1000 120 200\n');
      expect([bad.code, bad.stderr]).toEqual([2, '--set option requires 3 timeout values\n']);
    } finally {
      await call(
        svc,
        'PUT',
        '/v1/timeouts',
        JSON.stringify({ tcp: 900, tcpFin: 120, udp: 300 }),
        'application/json',
      );
    }
  });

  it('names without -n: getnameinfo for output, gethostbyname for input', async () => {
    await ok(svc, ['-A', '-t', '127.0.0.1:80', '-s', 'rr']);
    await ok(svc, ['-a', '-t', 'localhost:http', '-r', '127.0.0.1:8080', '-m']);
    const vip = await dns.lookupService('127.0.0.1', 80);
    const rip = await dns.lookupService('127.0.0.1', 8080);
    const host = vip.hostname;
    const [saved, listed] = await Promise.all([ok(svc, ['-S']), ok(svc, ['-L', '-t', 'localhost:http'])]);
    expect(saved).toBe(
      `-A -t ${host}:${vip.service} -s rr\n-a -t ${host}:${vip.service} -r ${host}:${rip.service} -m -w 1\n`,
    );
    const name = `TCP  ${host}:${vip.service}`.slice(0, 33);
    expect(listed.split('\n').slice(0, 3)).toEqual([
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
      `${name} rr`,
    ]);
  });

  it('-h, -v, and a service that cannot be reached', async () => {
    const port = await closedPort();
    const [help, version, down, downChange] = await Promise.all([
      ipvsctl(svc, ['-h']),
      ipvsctl(svc, ['--version']),
      ipvsctl(`http://127.0.0.1:${port}`, ['-L', '-n']),
      ipvsctl(`127.0.0.1:${port}`, ['-A', '-t', '10.0.0.1:80']),
    ]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(
      /^ipvsadm v1\.31 2019\/12\/24 \(compiled with popt and IPVS v1\.2\.1\)\nUsage:\n/,
    );
    expect(help.stdout).toContain('  ipvsctl -A|E virtual-service');
    expect(help.stdout).toContain('--server URL');
    expect(version.code).toBe(0);
    expect(version.stdout.split('\n')[0]).toBe(
      'ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)',
    );
    for (const r of [down, downChange]) {
      expect(r.code).toBe(1);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`cannot reach the ipvs-scheduler service at http://127.0.0.1:${port}`);
    }
  });
});

describe('ipvsctl with IPVS_ADMIN_TOKEN set on the service', () => {
  let svc: ServiceProcess;

  beforeAll(async () => {
    svc = await startTokenService();
  });

  afterAll(async () => {
    await svc?.stop();
  });

  it('changes need the token; listings do not', async () => {
    const [without, wrong, restore] = await Promise.all([
      ipvsctl(svc, ['-A', '-t', '10.0.0.1:80']),
      ipvsctl(svc, ['--token', 'not-the-token', '-A', '-t', '10.0.0.1:80']),
      ipvsctl(svc, ['-R'], { stdin: '-A -t 10.0.0.3:80\n' }),
    ]);
    expect(without.code).toBe(255);
    const [first, second] = without.stderr.split('\n');
    expect(first).toBe('Permission denied (you must be root)');
    expect(second).toMatch(/^ipvsctl: the service refused the change .*--token or IPVS_ADMIN_TOKEN$/);
    expect(wrong.code).toBe(255);
    expect(wrong.stderr.split('\n')[0]).toBe('Permission denied (you must be root)');
    expect(restore.code).toBe(255);
    expect(restore.stderr.split('\n')[0]).toBe('Permission denied (you must be root)');

    const [withFlag, fromEnv] = await Promise.all([
      ipvsctl(svc, ['--token', TOKEN, '-A', '-t', '10.0.0.1:80']),
      ipvsctl(svc, ['-A', '-u', '10.0.0.1:53'], { env: { IPVS_ADMIN_TOKEN: TOKEN } }),
    ]);
    expect([withFlag.code, withFlag.stderr]).toEqual([0, '']);
    expect([fromEnv.code, fromEnv.stderr]).toEqual([0, '']);
    const added = await ipvsctl(svc, [`--token=${TOKEN}`, '-a', '-t', '10.0.0.1:80', '-r', '10.1.0.1']);
    expect([added.code, added.stderr]).toEqual([0, '']);

    const [saved, listed] = await Promise.all([ipvsctl(svc, ['-S', '-n']), ipvsctl(svc, ['-L', '-n'])]);
    expect([saved.code, saved.stderr]).toEqual([0, '']);
    expect(saved.stdout).toBe(
      '-A -t 10.0.0.1:80 -s wlc\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -g -w 1\n-A -u 10.0.0.1:53 -s wlc\n',
    );
    expect([listed.code, listed.stderr]).toEqual([0, '']);
    expect(listed.stdout).toContain('TCP  10.0.0.1:80 wlc\n  -> 10.1.0.1:80');
  });
});
