/**
 * IPVS_ADMIN_TOKEN (API.md "Running"): with it set, every mutating call needs
 * `Authorization: Bearer <token>` (gRPC metadata `authorization`): none is 401 UNAUTHENTICATED /
 * gRPC UNAUTHENTICATED, a wrong one 403 PERMISSION_DENIED / gRPC PERMISSION_DENIED. Reads stay open.
 */
import { fromJson, toJson, type DescMethod, type JsonValue } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Admin } from '../../src/gen/ipvs/v1/admin_pb.js';
import {
  Scheduler,
  ScheduleStreamRequestSchema,
  ScheduleStreamResponseSchema,
} from '../../src/gen/ipvs/v1/scheduler_pb.js';
import { Stats } from '../../src/gen/ipvs/v1/stats_pb.js';
import {
  bearer,
  bidiStream,
  grpcClient,
  makeApp,
  send,
  serverStream,
  startTestService,
  unary,
  type Json,
  type TestApp,
  type TestService,
} from '../helpers/api.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

const TOKEN = 'test-admin-token-0123';

/** The sync routes and methods succeed only with a sync channel: a redis-server of this file. */
let redis: RedisServer;
beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await redis?.stop();
});
const SVC = 'tcp:10.0.0.1:80';
const CLIENT = '192.168.1.7:40001';

// ---------------------------------------------------------------------------------------------
// HTTP

interface Ctx {
  conn: string;
}

interface Mutation {
  /** The route as fastify knows it. */
  route: string;
  method: string;
  url: (ctx: Ctx) => string;
  body?: unknown;
  raw?: string;
  status: number;
  after?: (body: Json, ctx: Ctx) => void;
}

/** Every mutating route, in an order in which each succeeds with the right token. */
const MUTATIONS: Mutation[] = [
  {
    route: '/v1/services',
    method: 'POST',
    url: () => '/v1/services',
    body: { protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler: 'rr' },
    status: 201,
  },
  {
    route: '/v1/services/:svc',
    method: 'PATCH',
    url: () => `/v1/services/${SVC}`,
    body: { scheduler: 'wrr' },
    status: 200,
  },
  {
    route: '/v1/services/:svc/destinations',
    method: 'POST',
    url: () => `/v1/services/${SVC}/destinations`,
    body: { address: '10.1.0.2' },
    status: 201,
  },
  {
    route: '/v1/services/:svc/destinations/:dest',
    method: 'PATCH',
    url: () => `/v1/services/${SVC}/destinations/10.1.0.2:80`,
    body: { weight: 2 },
    status: 200,
  },
  {
    route: '/v1/schedule',
    method: 'POST',
    url: () => '/v1/schedule',
    body: { protocol: 'tcp', client: CLIENT, virtual: '10.0.0.1:80' },
    status: 200,
    after: (body, ctx) => {
      ctx.conn = body.connection;
    },
  },
  {
    route: '/v1/connections/:conn',
    method: 'PATCH',
    url: (c) => `/v1/connections/${encodeURIComponent(c.conn)}`,
    body: { state: 'ESTABLISHED' },
    status: 200,
  },
  {
    route: '/v1/connections/batch',
    method: 'POST',
    url: () => '/v1/connections/batch',
    body: { updates: [] },
    status: 200,
  },
  {
    route: '/v1/connections/:conn',
    method: 'DELETE',
    url: (c) => `/v1/connections/${encodeURIComponent(c.conn)}`,
    status: 204,
  },
  { route: '/v1/timeouts', method: 'PUT', url: () => '/v1/timeouts', body: { tcp: 100 }, status: 200 },
  { route: '/v1/sysctl', method: 'PATCH', url: () => '/v1/sysctl', body: { sloppy_tcp: 1 }, status: 200 },
  { route: '/v1/stats/zero', method: 'POST', url: () => '/v1/stats/zero', status: 204 },
  {
    route: '/v1/clock/advance',
    method: 'POST',
    url: () => '/v1/clock/advance',
    body: { seconds: 1 },
    status: 200,
  },
  {
    route: '/v1/services/:svc/destinations/:dest',
    method: 'DELETE',
    url: () => `/v1/services/${SVC}/destinations/10.1.0.2:80`,
    status: 204,
  },
  { route: '/v1/services/:svc', method: 'DELETE', url: () => `/v1/services/${SVC}`, status: 204 },
  {
    route: '/v1/rules',
    method: 'PUT',
    url: () => '/v1/rules',
    raw: '-A -t 10.0.0.9:80 -s rr\n',
    status: 200,
  },
  { route: '/v1/services', method: 'DELETE', url: () => '/v1/services', status: 204 },
  {
    route: '/v1/sync',
    method: 'PUT',
    url: () => '/v1/sync',
    body: { role: 'master', syncid: 5 },
    status: 201,
  },
  { route: '/v1/sync/:role', method: 'DELETE', url: () => '/v1/sync/master', status: 204 },
];

const READS = [
  '/v1/services',
  `/v1/services/${SVC}`,
  '/v1/connections',
  '/v1/connections?templates=false',
  '/v1/timeouts',
  '/v1/sysctl',
  '/v1/rules',
  '/v1/stats',
  '/v1/clock',
  '/v1/sync',
  '/metrics',
  '/healthz',
  '/readyz',
  '/',
];

/** `method route` for every route fastify serves, from `printRoutes()`. */
function servedRoutes(tree: string): string[] {
  const out: string[] = [];
  const stack: { depth: number; path: string }[] = [];
  for (const line of tree.split('\n')) {
    const m = /^(.*?)(?:├── |└── )(\S+) \(([A-Z, ]+)\)$/.exec(line);
    if (!m) continue;
    const depth = m[1].length;
    while (stack.length && stack[stack.length - 1].depth >= depth) stack.pop();
    const parent = stack.length ? stack[stack.length - 1].path : '';
    const path = (parent.endsWith('/') || m[2].startsWith('/') ? parent : `${parent}/`) + m[2];
    stack.push({ depth, path });
    for (const method of m[3].split(', ')) out.push(`${method} ${path}`);
  }
  return out;
}

describe('HTTP with IPVS_ADMIN_TOKEN', () => {
  let t: TestApp;
  const ctx: Ctx = { conn: '' };
  const state = async () => ({
    rules: (await send(t.app, 'GET', '/v1/rules')).text,
    connections: (await send(t.app, 'GET', '/v1/connections')).body,
    timeouts: (await send(t.app, 'GET', '/v1/timeouts')).body,
    sysctl: (await send(t.app, 'GET', '/v1/sysctl')).body,
    clock: (await send(t.app, 'GET', '/v1/clock')).body,
    sync: (await send(t.app, 'GET', '/v1/sync')).body.daemons.map((d: Json) => `${d.role} ${d.syncid}`),
  });

  beforeAll(async () => {
    t = makeApp({ token: TOKEN, manualClock: true, syncRedisUrl: redis.url });
    await t.app.ready();
  });
  afterAll(async () => {
    await t?.sync?.close();
  });

  it('the table holds every mutating route the server has', () => {
    const served = servedRoutes(t.app.printRoutes({ commonPrefix: false }));
    expect(served).toContain('GET /v1/services/:svc');
    const mutating = served.filter((r) => !/^(GET|HEAD|OPTIONS) /.test(r)).sort();
    expect([...new Set(MUTATIONS.map((m) => `${m.method} ${m.route}`))].sort()).toEqual(mutating);
  });

  for (const m of MUTATIONS) {
    it(`${m.method} ${m.route}: 401 without a token, 403 with a wrong one, ${m.status} with the right one`, async () => {
      const go = (headers: Record<string, string>) =>
        send(t.app, m.method, m.url(ctx), m.body, {
          headers,
          raw: m.raw,
          contentType: m.raw !== undefined ? 'text/plain' : undefined,
        });
      const before = await state();
      const missing: Record<string, string>[] = [
        {},
        { authorization: `Basic ${TOKEN}` },
        { authorization: 'Bearer' },
        { authorization: TOKEN },
      ];
      for (const headers of missing) {
        const res = await go(headers);
        expect(res.status, JSON.stringify(headers)).toBe(401);
        expect(res.body).toEqual({
          error: {
            code: 'UNAUTHENTICATED',
            message: expect.stringContaining('authorization'),
            field: 'authorization',
          },
        });
      }
      for (const wrong of [`${TOKEN}x`, TOKEN.slice(1), 'x']) {
        const res = await go({ authorization: `Bearer ${wrong}` });
        expect(res.status).toBe(403);
        expect(res.body).toEqual({
          error: {
            code: 'PERMISSION_DENIED',
            message: expect.stringContaining('authorization'),
            field: 'authorization',
          },
        });
      }
      expect(await state(), 'refused calls change nothing').toEqual(before);
      const res = await go({ authorization: `Bearer ${TOKEN}` });
      expect(res.status, res.text).toBe(m.status);
      m.after?.(res.body, ctx);
    });
  }

  it('the scheme is case-insensitive', async () => {
    const res = await send(
      t.app,
      'POST',
      '/v1/services',
      { fwmark: 9 },
      { headers: { authorization: `bearer ${TOKEN}` } },
    );
    expect(res.status, res.text).toBe(201);
  });

  it('reads need no token', async () => {
    await send(
      t.app,
      'POST',
      '/v1/services',
      { address: '10.0.0.1', port: 80 },
      { headers: { authorization: `Bearer ${TOKEN}` } },
    );
    for (const url of READS) {
      const res = await send(t.app, 'GET', url);
      expect(res.status, `${url}: ${res.text}`).toBe(200);
    }
  });
});

describe('HTTP without IPVS_ADMIN_TOKEN', () => {
  it('mutations need no token, and a stray one is ignored', async () => {
    const t = makeApp();
    expect((await send(t.app, 'POST', '/v1/services', { fwmark: 1 })).status).toBe(201);
    const res = await send(t.app, 'DELETE', '/v1/services/fwm:1', undefined, {
      headers: { authorization: 'Bearer whatever' },
    });
    expect(res.status).toBe(204);
  });
});

// ---------------------------------------------------------------------------------------------
// gRPC

const A = Admin.method;
const S = Scheduler.method;

interface GrpcMutation {
  method: DescMethod;
  request: (ctx: Ctx) => JsonValue;
  after?: (answer: Json, ctx: Ctx) => void;
}

const GRPC_MUTATIONS: GrpcMutation[] = [
  {
    method: A.createService,
    request: () => ({ service: { protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler: 'rr' } }),
  },
  { method: A.updateService, request: () => ({ key: SVC, patch: { scheduler: 'wrr' } }) },
  { method: A.createDestination, request: () => ({ service: SVC, destination: { address: '10.1.0.2' } }) },
  {
    method: A.updateDestination,
    request: () => ({ service: SVC, destination: '10.1.0.2:80', patch: { weight: 2 } }),
  },
  {
    method: S.schedule,
    request: () => ({ protocol: 'tcp', client: CLIENT, virtual: '10.0.0.1:80' }),
    after: (answer, ctx) => {
      ctx.conn = answer.connection;
    },
  },
  { method: S.updateConnection, request: (c) => ({ connection: c.conn, update: { state: 'ESTABLISHED' } }) },
  { method: S.reportConnections, request: (c) => ({ updates: [{ connection: c.conn, state: 'FIN_WAIT' }] }) },
  { method: S.closeConnection, request: (c) => ({ connection: c.conn }) },
  { method: A.setTimeouts, request: () => ({ timeouts: { tcp: 100 } }) },
  { method: A.updateSysctl, request: () => ({ patch: { sloppy_tcp: 1 } }) },
  { method: A.zeroStats, request: () => ({}) },
  { method: A.advanceClock, request: () => ({ seconds: 1 }) },
  { method: A.deleteDestination, request: () => ({ service: SVC, destination: '10.1.0.2:80' }) },
  { method: A.deleteService, request: () => ({ key: SVC }) },
  { method: A.replaceRules, request: () => ({ text: '-A -t 10.0.0.9:80 -s rr\n' }) },
  { method: A.clearServices, request: () => ({}) },
  { method: A.startSyncDaemon, request: () => ({ daemon: { role: 'backup', syncid: 7 } }) },
  { method: A.stopSyncDaemon, request: () => ({ role: 'backup' }) },
];

const GRPC_READS: [DescMethod, JsonValue][] = [
  [A.listServices, {}],
  [A.getService, { key: SVC }],
  [A.listConnections, {}],
  [A.getTimeouts, {}],
  [A.getSysctl, {}],
  [A.getRules, {}],
  [A.getClock, {}],
  [A.listSyncDaemons, {}],
  [Stats.method.getStats, {}],
];

describe('gRPC with IPVS_ADMIN_TOKEN', () => {
  let svc: TestService;
  let clients: Record<string, grpc.Client>;
  const ctx: Ctx = { conn: '' };
  const clientOf = (m: DescMethod) => clients[m.parent.typeName];

  beforeAll(async () => {
    svc = await startTestService({
      IPVS_ADMIN_TOKEN: TOKEN,
      IPVS_CLOCK: 'manual',
      SYNC_REDIS_URL: redis.url,
    });
    clients = Object.fromEntries(
      [Admin, Scheduler, Stats].map((d) => [d.typeName, grpcClient(d, svc.grpcAddress)]),
    );
  });

  afterAll(async () => {
    for (const c of Object.values(clients ?? {})) c.close();
    await svc?.stop();
  });

  it('the tables hold every method: mutations are all but Get*, List* and Watch*', () => {
    const all = [Scheduler, Admin, Stats].flatMap((d) => d.methods);
    const reads = all.filter((m) => /^(Get|List|Watch)/.test(m.name)).map((m) => m.name);
    const mutations = all.filter((m) => !/^(Get|List|Watch)/.test(m.name)).map((m) => m.name);
    expect([...GRPC_MUTATIONS.map((m) => m.method.name), 'ScheduleStream'].sort()).toEqual(mutations.sort());
    expect([...GRPC_READS.map(([m]) => m.name), 'WatchStats'].sort()).toEqual(reads.sort());
  });

  for (const m of GRPC_MUTATIONS) {
    it(`${m.method.parent.name}.${m.method.name}: UNAUTHENTICATED without, PERMISSION_DENIED with a wrong token, OK with the right one`, async () => {
      const request = m.request(ctx);
      const none = await unary(clientOf(m.method), m.method, request);
      expect(none.ok ? 'OK' : grpc.status[none.code]).toBe('UNAUTHENTICATED');
      expect(none.ok ? '' : none.details).toBe('authorization: a bearer token is required for changes');
      const bad = new grpc.Metadata();
      bad.set('authorization', `Basic ${TOKEN}`);
      const basic = await unary(clientOf(m.method), m.method, request, bad);
      expect(basic.ok ? 'OK' : grpc.status[basic.code]).toBe('UNAUTHENTICATED');
      const wrong = await unary(clientOf(m.method), m.method, request, bearer(`${TOKEN}x`));
      expect(wrong.ok ? 'OK' : grpc.status[wrong.code]).toBe('PERMISSION_DENIED');
      expect(wrong.ok ? '' : wrong.details).toBe('authorization: the token is not valid');
      const right = await unary(clientOf(m.method), m.method, request, bearer(TOKEN));
      expect(right.ok ? 'OK' : `${grpc.status[right.code]} ${right.details}`).toBe('OK');
      if (right.ok) m.after?.(right.json, ctx);
    });
  }

  it('Scheduler.ScheduleStream: refused without or with a wrong token, served with the right one', async () => {
    await unary(
      clientOf(A.createService),
      A.createService,
      { service: { address: '10.0.0.1', port: 80 } },
      bearer(TOKEN),
    );
    await unary(
      clientOf(A.createDestination),
      A.createDestination,
      { service: SVC, destination: { address: '10.1.0.2' } },
      bearer(TOKEN),
    );
    const run = (metadata: grpc.Metadata) =>
      new Promise<{ code: grpc.status; details: string; answers: Json[] }>((resolve) => {
        const stream = bidiStream(clientOf(S.scheduleStream), S.scheduleStream, metadata);
        const answers: Json[] = [];
        stream.on('data', (m: unknown) => answers.push(toJson(ScheduleStreamResponseSchema, m as never)));
        stream.on('error', () => undefined);
        stream.on('status', (s: grpc.StatusObject) => resolve({ code: s.code, details: s.details, answers }));
        stream.write(
          fromJson(ScheduleStreamRequestSchema, {
            tag: 'x',
            request: { client: CLIENT, virtual: '10.0.0.1:80' },
          }),
        );
        stream.end();
      });
    const none = await run(new grpc.Metadata());
    expect(grpc.status[none.code]).toBe('UNAUTHENTICATED');
    expect(none.answers).toEqual([]);
    const wrong = await run(bearer('nope-nope-nope'));
    expect(grpc.status[wrong.code]).toBe('PERMISSION_DENIED');
    expect(wrong.answers).toEqual([]);
    const right = await run(bearer(TOKEN));
    expect(grpc.status[right.code]).toBe('OK');
    expect(right.answers).toEqual([{ tag: 'x', response: expect.objectContaining({ service: SVC }) }]);
  });

  it('reads need no token: Get*, List*, WatchStats', async () => {
    for (const [method, request] of GRPC_READS) {
      const result = await unary(clientOf(method), method, request);
      expect(result.ok ? 'OK' : `${grpc.status[result.code]} ${result.details}`, method.name).toBe('OK');
    }
    const stream = serverStream(clientOf(Stats.method.watchStats), Stats.method.watchStats, {
      intervalMs: 100,
    });
    const first = await new Promise<unknown>((resolve, reject) => {
      stream.once('data', resolve);
      stream.once('error', reject);
    });
    expect(first).toBeTruthy();
    stream.cancel();
    stream.on('error', () => undefined);
  });
});
