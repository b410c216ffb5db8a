/**
 * Failover end to end: two REAL service processes (`node --import tsx src/main.ts`) with the same
 * persistent service (IPVS_RULES_FILE) and SYNC_REDIS_URL on a redis-server of this test. A runs
 * the master sync daemon, B the backup (started over HTTP); clients are scheduled on A; once B
 * holds every persistence template, A is killed (SIGKILL) and every client scheduled again on B
 * keeps its real server. Then ipvsctl drives B's daemons as ipvsadm would (promotion).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRedisServer, stopAllRedis, type RedisServer } from '../helpers/redis-server.js';
import {
  runProcess,
  startServiceProcess,
  stopAll,
  type RunResult,
  type ServiceProcess,
} from './service-process.js';

const VIP = '10.0.0.1:80';
/** rr: without the templates, B's own choices would differ for most clients. */
const RULES = `-A -t ${VIP} -s rr -p 300
-a -t ${VIP} -r 10.1.0.1:80 -m -w 1
-a -t ${VIP} -r 10.1.0.2:80 -m -w 1
-a -t ${VIP} -r 10.1.0.3:80 -m -w 1
`;
const CLIENTS = 200;
/** Each client in its own /24 (the default persistence netmask is /32 anyway): one template each. */
const clientIp = (i: number) => `10.${100 + (i >> 8)}.${i & 255}.7`;

const dir = mkdtempSync(join(tmpdir(), 'ipvs-sync-e2e-'));
let redis: RedisServer;
let a: ServiceProcess;
let b: ServiceProcess;

async function http(svc: ServiceProcess, method: string, path: string, body?: unknown) {
  const res = await fetch(svc.url + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text), text };
}

function ipvsctl(svc: ServiceProcess, args: readonly string[]): Promise<RunResult> {
  return runProcess(process.execPath, ['bin/ipvsctl.js', '--server', svc.url, ...args], {
    env: { ...process.env, IPVS_ADMIN_TOKEN: undefined, IPVSCTL_SERVER: undefined },
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  redis = await startRedisServer();
  const rulesFile = join(dir, 'rules');
  writeFileSync(rulesFile, RULES);
  const env = (id: string) => ({
    SYNC_REDIS_URL: redis.url,
    IPVS_RULES_FILE: rulesFile,
    IPVS_DIRECTOR_ID: id,
  });
  [a, b] = await Promise.all([
    startServiceProcess({ env: env('director-a') }),
    startServiceProcess({ env: env('director-b') }),
  ]);
});

afterAll(async () => {
  await stopAll();
  await redis?.stop();
  await stopAllRedis();
  rmSync(dir, { recursive: true, force: true });
});

describe('master on A, backup on B, A killed', () => {
  it('every persistent client keeps its real server on B', async () => {
    const master = await http(a, 'PUT', '/v1/sync', { role: 'master', syncid: 9 });
    expect(master.status, master.text).toBe(201);
    expect(master.body).toMatchObject({
      role: 'master',
      syncid: 9,
      state: 'running',
      directorId: 'director-a',
    });
    const backup = await http(b, 'PUT', '/v1/sync', { role: 'backup', syncid: 9 });
    expect(backup.status, backup.text).toBe(201);

    const chosen = new Map<string, string>();
    for (let start = 0; start < CLIENTS; start += 50) {
      const answers = await Promise.all(
        Array.from({ length: 50 }, (_, k) => start + k).map(async (i) => {
          const res = await http(a, 'POST', '/v1/schedule', { client: `${clientIp(i)}:40000`, virtual: VIP });
          expect(res.status, res.text).toBe(200);
          return [clientIp(i), res.body.destination as string] as const;
        }),
      );
      for (const [ip, destination] of answers) chosen.set(ip, destination);
    }
    expect(new Set(chosen.values()).size).toBe(3);

    const templatesOnB = async () =>
      (await http(b, 'GET', '/v1/connections?templates=true')).body.connections as {
        client: string;
        destination: string;
        origin: string;
      }[];
    await waitFor('B to hold every template', async () => (await templatesOnB()).length === CLIENTS);
    for (const t of await templatesOnB()) {
      expect(t.origin).toBe('sync');
      expect(t.destination, t.client).toBe(chosen.get(t.client.replace(/:0$/, '')));
    }
    const health = (await http(b, 'GET', '/v1/sync')).body.daemons[0];
    expect(health).toMatchObject({ role: 'backup', syncid: 9, state: 'running', directorId: 'director-b' });
    expect(health.health).toMatchObject({ gaps: 0, entriesReceived: expect.any(Number) });
    expect(health.health.entriesApplied).toBeGreaterThanOrEqual(CLIENTS);
    expect(health.health.directors).toEqual([
      expect.objectContaining({ directorId: 'director-a', syncid: 9 }),
    ]);

    process.kill(a.pid, 'SIGKILL');
    await a.stop();

    const moved: string[] = [];
    for (const [ip, destination] of chosen) {
      const res = await http(b, 'POST', '/v1/schedule', { client: `${ip}:40001`, virtual: VIP });
      expect(res.status, res.text).toBe(200);
      if (res.body.destination !== destination) moved.push(`${ip}: ${destination} → ${res.body.destination}`);
    }
    expect(moved).toEqual([]);
  });

  it('ipvsctl on B: --stop-daemon backup, --start-daemon master, -L --daemon as ipvsadm prints it, --stats adds health', async () => {
    const stop = await ipvsctl(b, ['--stop-daemon', 'backup']);
    expect([stop.code, stop.stderr]).toEqual([0, '']);
    const again = await ipvsctl(b, ['--stop-daemon', 'backup']);
    expect([again.code, again.stderr.split('\n')[0]]).toEqual([255, 'No daemon is running']);

    const start = await ipvsctl(b, ['--start-daemon', 'master', '--syncid', '5']);
    expect([start.code, start.stderr]).toEqual([0, '']);
    const twice = await ipvsctl(b, ['--start-daemon', 'master', '--syncid', '5']);
    expect([twice.code, twice.stderr]).toEqual([255, 'Daemon has already run\n']);

    const listed = await ipvsctl(b, ['-L', '--daemon']);
    expect([listed.code, listed.stderr]).toEqual([0, '']);
    expect(listed.stdout).toBe(
      'master sync daemon (mcast=eth0, syncid=5, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n',
    );

    const backup = await ipvsctl(b, [
      '--start-daemon',
      'backup',
      '--syncid',
      '0',
      '--mcast-interface',
      'eth1',
    ]);
    expect([backup.code, backup.stderr]).toEqual([0, '']);
    const both = await ipvsctl(b, ['-L', '--daemon']);
    expect(both.stdout).toBe(
      'master sync daemon (mcast=eth0, syncid=5, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n' +
        'backup sync daemon (mcast=eth1, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n',
    );

    const stats = await ipvsctl(b, ['-L', '--daemon', '--stats']);
    expect([stats.code, stats.stderr]).toEqual([0, '']);
    const lines = stats.stdout.split('\n');
    expect(lines[0]).toBe(
      'master sync daemon (mcast=eth0, syncid=5, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)',
    );
    expect(lines[1]).toBe('  state running, director director-b, channel ipvs:sync:5, reconnects 0');
    expect(lines[2]).toMatch(/^ {2}sent \d+ messages, \d+ entries, last sequence \d+, /);
    const backupAt = lines.indexOf(
      'backup sync daemon (mcast=eth1, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)',
    );
    expect(backupAt).toBeGreaterThan(2);
    expect(lines[backupAt + 1]).toBe(
      '  state running, director director-b, channel ipvs:sync:*, reconnects 0',
    );
    expect(lines[backupAt + 2]).toMatch(/^ {2}received \d+ messages, \d+ entries: \d+ applied, /);
    expect(lines[backupAt + 3]).toMatch(/^ {2}gaps 0, resyncs requested \d+, snapshots applied \d+$/);

    for (const role of ['master', 'backup']) {
      const r = await ipvsctl(b, ['--stop-daemon', role]);
      expect([r.code, r.stderr]).toEqual([0, '']);
    }
    expect((await ipvsctl(b, ['-L', '--daemon'])).stdout).toBe('');
  });
});
