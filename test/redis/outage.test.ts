/**
 * Redis goes away under load: the REAL service process (REDIS_URL to a redis-server of this test,
 * append-only file in a temp dir so the state survives its restart) keeps answering — fast 503
 * UNAVAILABLE naming Redis (gRPC UNAVAILABLE), never a 500 — /readyz turns 503, the process stays up,
 * and once redis-server is back on the same port the replica recovers by itself: /readyz 200 and
 * Schedule works again, with counters that still agree with the connections.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Scheduler } from '../../src/gen/ipvs/v1/scheduler_pb.js';
import { startServiceProcess, stopAll, type ServiceProcess } from '../e2e/service-process.js';
import { fetchJson, grpcClient, unary } from '../helpers/api.js';
import { startRedisServer, stopAllRedis, type RedisServer } from '../helpers/redis-server.js';

const SERVICE = 'tcp:10.0.0.1:80';
const dir = mkdtempSync(join(tmpdir(), 'ipvs-outage-'));
let redis: RedisServer;
let svc: ServiceProcess;

beforeAll(async () => {
  redis = await startRedisServer({ appendonly: true, dir });
  svc = await startServiceProcess({ env: { REDIS_URL: redis.url } });
}, 30_000);

afterAll(async () => {
  await stopAll();
  await stopAllRedis();
  rmSync(dir, { recursive: true, force: true });
});

interface Outcome {
  status: number;
  ms: number;
  code?: string;
  message?: string;
}

let clientPort = 10_000;

async function scheduleOnce(): Promise<Outcome> {
  const started = performance.now();
  const r = await fetchJson(svc.url, 'POST', '/v1/schedule', {
    client: `192.168.0.1:${clientPort++}`,
    virtual: '10.0.0.1:80',
  });
  return {
    status: r.status,
    ms: performance.now() - started,
    code: r.body?.error?.code,
    message: r.body?.error?.message,
  };
}

/** `workers` concurrent loops of Schedule calls until `stop()` says so. */
function load(workers: number) {
  const outcomes: Outcome[] = [];
  let running = true;
  const loops = Array.from({ length: workers }, async () => {
    while (running) outcomes.push(await scheduleOnce());
  });
  return {
    outcomes,
    async stop() {
      running = false;
      await Promise.all(loops);
      return outcomes;
    },
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor(what: string, ms: number, check: () => Promise<boolean>): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < ms) {
    if (await check()) return Date.now() - started;
    await sleep(50);
  }
  throw new Error(`${what}: not within ${ms} ms\n${svc.output().slice(-3000)}`);
}

/** Counters agree with the live connections: active + inactive per destination = its connections. */
async function countersAgree(): Promise<void> {
  const service = (await fetchJson(svc.url, 'GET', `/v1/services/${encodeURIComponent(SERVICE)}`)).body;
  const conns = (await fetchJson(svc.url, 'GET', '/v1/connections')).body.connections as {
    destination: string;
    template: boolean;
  }[];
  for (const d of service.destinations as { key: string; activeConns: number; inactiveConns: number }[]) {
    const bound = conns.filter((c) => !c.template && c.destination === d.key).length;
    expect(d.activeConns + d.inactiveConns, d.key).toBe(bound);
  }
}

it('Redis killed under load: fast 503 UNAVAILABLE, /readyz 503, process up; recovers without a restart', async () => {
  expect((await fetchJson(svc.url, 'GET', '/readyz')).status).toBe(200);
  expect((await fetchJson(svc.url, 'POST', '/v1/services', { address: '10.0.0.1', port: 80 })).status).toBe(
    201,
  );
  for (const address of ['10.1.0.1', '10.1.0.2'])
    expect(
      (await fetchJson(svc.url, 'POST', `/v1/services/${SERVICE}/destinations`, { address })).status,
    ).toBe(201);

  // Load before the outage: every call decided.
  const before = load(8);
  await sleep(500);
  const ok = await before.stop();
  expect(ok.length).toBeGreaterThan(20);
  expect(ok.filter((o) => o.status !== 200)).toEqual([]);
  const decided = ok.length;

  // Outage under load.
  const during = load(8);
  await sleep(200);
  await redis.kill('SIGKILL');
  const killedAt = during.outcomes.length;
  await sleep(1500);
  const outcomes = await during.stop();
  const afterKill = outcomes.slice(killedAt);
  expect(afterKill.length).toBeGreaterThan(20);
  for (const o of afterKill) {
    expect([200, 503], JSON.stringify(o)).toContain(o.status);
    expect(o.ms, JSON.stringify(o)).toBeLessThan(1000);
  }
  const failed = outcomes.filter((o) => o.status !== 200);
  expect(failed.length).toBeGreaterThan(20);
  for (const o of failed) {
    expect(o.status, JSON.stringify(o)).toBe(503);
    expect(o.code).toBe('UNAVAILABLE');
    expect(o.message).toMatch(/^redis: /);
  }
  // the calls answered after the kill are all 503 once the connection is known to be gone
  expect(afterKill.slice(-10).every((o) => o.status === 503)).toBe(true);

  const ready = await fetchJson(svc.url, 'GET', '/readyz');
  expect(ready.status).toBe(503);
  expect(ready.body).toEqual({ ready: false });

  const scheduler = grpcClient(Scheduler, `127.0.0.1:${svc.grpcPort}`);
  try {
    const started = performance.now();
    const g = await unary(scheduler, Scheduler.method.schedule, {
      client: '192.168.9.9:4000',
      virtual: '10.0.0.1:80',
    });
    expect(g.ok).toBe(false);
    if (!g.ok) {
      expect(g.code).toBe(grpc.status.UNAVAILABLE);
      expect(g.details).toMatch(/^redis: /);
    }
    expect(performance.now() - started).toBeLessThan(1000);
  } finally {
    scheduler.close();
  }

  // a batch answers per item: each update that met the outage says UNAVAILABLE (none applied)
  const batch = await fetchJson(svc.url, 'POST', '/v1/connections/batch', {
    updates: [{ connection: `${SERVICE}~1t.t|192.168.0.1:4000|`, event: { direction: 'in', flag: 'ack' } }],
  });
  expect(batch.status).toBe(200);
  expect(batch.body.results[0]).toMatchObject({ ok: false, error: { code: 'UNAVAILABLE' } });

  // still the same process, still serving
  expect(() => process.kill(svc.pid, 0)).not.toThrow();
  expect((await fetchJson(svc.url, 'GET', '/healthz')).status).toBe(200);

  // Redis back on the same port, with its append-only file: the replica recovers by itself.
  redis = await startRedisServer({ port: redis.port, appendonly: true, dir });
  await waitFor('/readyz 200 after Redis returned', 10_000, async () => {
    return (await fetchJson(svc.url, 'GET', '/readyz')).status === 200;
  });
  const again = await scheduleOnce();
  expect(again, JSON.stringify(again)).toMatchObject({ status: 200 });
  const after = load(4);
  await sleep(300);
  const recovered = await after.stop();
  expect(recovered.filter((o) => o.status !== 200)).toEqual([]);

  // the state survived (AOF) and no call was half-applied: counters agree with the connections
  const conns = (await fetchJson(svc.url, 'GET', '/v1/connections')).body.connections as unknown[];
  expect(conns.length).toBeGreaterThanOrEqual(decided + 1 + recovered.length);
  await countersAgree();
  expect(() => process.kill(svc.pid, 0)).not.toThrow();
}, 60_000);
