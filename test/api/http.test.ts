/**
 * The HTTP door (API.md "HTTP"): every route, its happy path and its errors, mostly in process with
 * fastify `inject()`, and a few over a real listening socket.
 */
import { fromJson } from '@bufbuild/protobuf';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ListSyncDaemonsResponseSchema, SyncDaemonSchema } from '../../src/gen/ipvs/v1/admin_pb.js';
import {
  fetchJson,
  makeApp,
  send,
  startTestService,
  type TestApp,
  type TestService,
  errorShape,
} from '../helpers/api.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

const SVC = 'tcp:10.0.0.1:80';
const V6 = 'udp:[2001:db8::1]:53';
const V6_URL = '/v1/services/udp:%5B2001:db8::1%5D:53';
const CLIENT = '192.168.1.7:40001';

let t: TestApp;
const call = (method: string, url: string, body?: unknown) => send(t.app, method, url, body);

async function addService(body: Record<string, unknown>) {
  const res = await call('POST', '/v1/services', body);
  expect(res.status, res.text).toBe(201);
  return res.body;
}

async function addDest(svc: string, body: Record<string, unknown>) {
  const res = await call('POST', `/v1/services/${encodeURIComponent(svc)}/destinations`, body);
  expect(res.status, res.text).toBe(201);
  return res.body;
}

/** tcp:10.0.0.1:80 rr with two real servers. */
async function rrService() {
  await addService({ protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler: 'rr' });
  await addDest(SVC, { address: '10.1.0.2', port: 80 });
  await addDest(SVC, { address: '10.1.0.3', port: 80 });
}

async function schedule(body: Record<string, unknown>) {
  const res = await call('POST', '/v1/schedule', body);
  expect(res.status, res.text).toBe(200);
  return res.body;
}

/** Counters and rates of something nothing has gone through yet. */
const ZERO_STATS = {
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
};

function expectError(res: { status: number; body: unknown; text: string }, status: number, code: string) {
  expect(res.status, res.text).toBe(status);
  expect(res.body).toEqual({ error: errorShape(code) });
}

beforeEach(() => {
  t = makeApp();
});

describe('services', () => {
  it('POST /v1/services creates a service and answers 201 ServiceStatus', async () => {
    const res = await call('POST', '/v1/services', {
      protocol: 'tcp',
      address: '10.0.0.1',
      port: 80,
      scheduler: 'rr',
    });
    expect(res.status).toBe(201);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.body).toMatchObject({
      key: SVC,
      protocol: 'tcp',
      address: '10.0.0.1',
      port: 80,
      family: 'inet',
      scheduler: 'rr',
      schedFlags: [],
      onePacket: false,
      destinations: [],
      stats: { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0, cps: 0 },
    });
    expect(res.body.persistence ?? null).toBeNull();
  });

  it('defaults: protocol tcp, scheduler wlc; persistence with a default timeout and host netmask', async () => {
    const body = await addService({ address: '10.0.0.2', port: 443, persistence: {} });
    expect(body).toMatchObject({
      key: 'tcp:10.0.0.2:443',
      scheduler: 'wlc',
      persistence: { timeout: 360, netmask: '255.255.255.255' },
    });
  });

  it('POST of an existing service is 409 ALREADY_EXISTS naming it', async () => {
    await addService({ protocol: 'tcp', address: '10.0.0.1', port: 80 });
    const res = await call('POST', '/v1/services', { protocol: 'tcp', address: '10.0.0.1', port: 80 });
    expectError(res, 409, 'ALREADY_EXISTS');
    expect(res.body.error.message).toContain(SVC);
  });

  it('GET /v1/services lists every service with destinations and counters', async () => {
    await rrService();
    await addService({ fwmark: 42, scheduler: 'sh' });
    const res = await call('GET', '/v1/services');
    expect(res.status).toBe(200);
    expect(res.body.services.map((s: { key: string }) => s.key).sort()).toEqual(['fwm:42', SVC]);
    const rr = res.body.services.find((s: { key: string }) => s.key === SVC);
    expect(rr.destinations).toHaveLength(2);
    expect(rr.stats).toMatchObject({ conns: 0 });
  });

  it('GET /v1/services is empty at start', async () => {
    expect((await call('GET', '/v1/services')).body).toEqual({ services: [] });
  });

  it('GET /v1/services/{svc} answers ServiceStatus; 404 NOT_FOUND for an unknown one', async () => {
    await rrService();
    const res = await call('GET', `/v1/services/${SVC}`);
    expect(res.status).toBe(200);
    expect(res.body.key).toBe(SVC);
    expectError(await call('GET', '/v1/services/tcp:10.9.9.9:80'), 404, 'NOT_FOUND');
  });

  it('fwmark services: fwm:<mark> and fwm6:<mark> keys', async () => {
    expect((await addService({ fwmark: 42 })).key).toBe('fwm:42');
    expect((await addService({ fwmark: 42, family: 'inet6' })).key).toBe('fwm6:42');
    expect((await call('GET', '/v1/services/fwm:42')).body.family).toBe('inet');
    expect((await call('GET', '/v1/services/fwm6:42')).body.family).toBe('inet6');
  });

  it('PATCH /v1/services/{svc} changes only the given fields (ipvsadm -E)', async () => {
    await addService({
      protocol: 'tcp',
      address: '10.0.0.1',
      port: 80,
      scheduler: 'wlc',
      persistence: { timeout: 120 },
    });
    await addDest(SVC, { address: '10.1.0.2' });
    const res = await call('PATCH', `/v1/services/${SVC}`, { scheduler: 'rr' });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      key: SVC,
      scheduler: 'rr',
      persistence: { timeout: 120, netmask: '255.255.255.255' },
    });
    expect(res.body.destinations.map((d: { key: string }) => d.key)).toEqual(['10.1.0.2:80']);

    const again = await call('PATCH', `/v1/services/${SVC}`, { persistence: null });
    expect(again.body.scheduler).toBe('rr');
    expect(again.body.persistence ?? null).toBeNull();
    expect((await call('GET', `/v1/services/${SVC}`)).body.scheduler).toBe('rr');
  });

  it('PATCH may repeat but not change the identity; 404 for an unknown service', async () => {
    await addService({ protocol: 'tcp', address: '10.0.0.1', port: 80 });
    expect((await call('PATCH', `/v1/services/${SVC}`, { port: 80, scheduler: 'lc' })).status).toBe(200);
    const res = await call('PATCH', `/v1/services/${SVC}`, { port: 81 });
    expectError(res, 400, 'INVALID_ARGUMENT');
    expect(res.body.error.message).toContain('service.port');
    expectError(await call('PATCH', '/v1/services/tcp:10.9.9.9:80', { scheduler: 'rr' }), 404, 'NOT_FOUND');
  });

  it('DELETE /v1/services/{svc} answers 204 and the service is gone; 404 the second time', async () => {
    await rrService();
    const res = await call('DELETE', `/v1/services/${SVC}`);
    expect(res.status).toBe(204);
    expect(res.text).toBe('');
    expectError(await call('GET', `/v1/services/${SVC}`), 404, 'NOT_FOUND');
    expectError(await call('DELETE', `/v1/services/${SVC}`), 404, 'NOT_FOUND');
  });

  it('DELETE /v1/services removes everything (ipvsadm -C)', async () => {
    await rrService();
    await addService({ fwmark: 7 });
    await schedule({ protocol: 'tcp', client: CLIENT, virtual: '10.0.0.1:80' });
    const res = await call('DELETE', '/v1/services');
    expect(res.status).toBe(204);
    expect((await call('GET', '/v1/services')).body).toEqual({ services: [] });
    expect((await call('DELETE', '/v1/services')).status).toBe(204);
  });

  it('IPv6 service keys are one percent-encoded path segment', async () => {
    const created = await addService({ protocol: 'udp', address: '2001:db8::1', port: 53 });
    expect(created.key).toBe(V6);
    expect(created.family).toBe('inet6');
    for (const url of [V6_URL, `/v1/services/${encodeURIComponent(V6)}`]) {
      const res = await call('GET', url);
      expect(res.status, url).toBe(200);
      expect(res.body.key).toBe(V6);
    }
    const dest = await call('POST', `${V6_URL}/destinations`, { address: '2001:db8::7', port: 5353 });
    expect(dest.status, dest.text).toBe(201);
    expect(dest.body.key).toBe('[2001:db8::7]:5353');
    const destUrl = `${V6_URL}/destinations/%5B2001:db8::7%5D:5353`;
    const edited = await call('PATCH', destUrl, { weight: 3 });
    expect(edited.status, edited.text).toBe(200);
    expect(edited.body.weight).toBe(3);
    expect((await call('PATCH', V6_URL, { scheduler: 'sh' })).body.scheduler).toBe('sh');
    const answer = await schedule({ protocol: 'udp', client: '[2001:db8::99]:4000', service: V6 });
    expect(answer).toMatchObject({ service: V6, destination: '[2001:db8::7]:5353', state: 'UDP' });
    expect((await call('DELETE', destUrl)).status).toBe(204);
    expect((await call('DELETE', V6_URL)).status).toBe(204);
    expectError(await call('GET', V6_URL), 404, 'NOT_FOUND');
  });
});

describe('destinations', () => {
  beforeEach(async () => {
    await addService({ protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler: 'wrr' });
  });

  it('POST answers 201 DestinationStatus with defaults (port of the service, weight 1, masq)', async () => {
    const res = await call('POST', `/v1/services/${SVC}/destinations`, { address: '10.1.0.2' });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({
      key: '10.1.0.2:80',
      address: '10.1.0.2',
      port: 80,
      weight: 1,
      forward: 'masq',
      upperThreshold: 0,
      lowerThreshold: 0,
      activeConns: 0,
      inactiveConns: 0,
      persistentConns: 0,
      overloaded: false,
      available: true,
      stats: ZERO_STATS,
    });
  });

  it('keeps kernel list order: most recently added first', async () => {
    await addDest(SVC, { address: '10.1.0.2', port: 8080, weight: 2, forward: 'route' });
    await addDest(SVC, { address: '10.1.0.3', port: 8080, forward: 'tunnel' });
    const svc = (await call('GET', `/v1/services/${SVC}`)).body;
    expect(svc.destinations.map((d: { key: string; forward: string }) => [d.key, d.forward])).toEqual([
      ['10.1.0.3:8080', 'tunnel'],
      ['10.1.0.2:8080', 'route'],
    ]);
  });

  it('POST of an existing destination is 409; to an unknown service 404', async () => {
    await addDest(SVC, { address: '10.1.0.2', port: 80 });
    const dup = await call('POST', `/v1/services/${SVC}/destinations`, { address: '10.1.0.2', port: 80 });
    expectError(dup, 409, 'ALREADY_EXISTS');
    expect(dup.body.error.message).toContain('10.1.0.2:80');
    expectError(
      await call('POST', '/v1/services/tcp:10.9.9.9:80/destinations', { address: '10.1.0.2' }),
      404,
      'NOT_FOUND',
    );
  });

  it('PATCH changes only the given fields (ipvsadm -e); 404 for unknown ones', async () => {
    await addDest(SVC, { address: '10.1.0.2', port: 80, weight: 4, forward: 'route' });
    const res = await call('PATCH', `/v1/services/${SVC}/destinations/10.1.0.2:80`, {
      weight: 0,
      upperThreshold: 10,
      lowerThreshold: 5,
    });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({
      key: '10.1.0.2:80',
      weight: 0,
      forward: 'route',
      upperThreshold: 10,
      lowerThreshold: 5,
    });
    expectError(
      await call('PATCH', `/v1/services/${SVC}/destinations/10.1.0.9:80`, { weight: 1 }),
      404,
      'NOT_FOUND',
    );
    expectError(
      await call('PATCH', '/v1/services/tcp:10.9.9.9:80/destinations/10.1.0.2:80', { weight: 1 }),
      404,
      'NOT_FOUND',
    );
  });

  it('DELETE answers 204 (ipvsadm -d); 404 when absent', async () => {
    await addDest(SVC, { address: '10.1.0.2', port: 80 });
    expect((await call('DELETE', `/v1/services/${SVC}/destinations/10.1.0.2:80`)).status).toBe(204);
    expect((await call('GET', `/v1/services/${SVC}`)).body.destinations).toEqual([]);
    expectError(await call('DELETE', `/v1/services/${SVC}/destinations/10.1.0.2:80`), 404, 'NOT_FOUND');
  });
});

describe('POST /v1/schedule', () => {
  beforeEach(rrService);

  it('schedules by virtual endpoint: 200 ScheduleResponse, a new TCP entry in SYN_RECV', async () => {
    const res = await call('POST', '/v1/schedule', {
      protocol: 'tcp',
      client: CLIENT,
      virtual: '10.0.0.1:80',
    });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      service: SVC,
      destination: expect.stringMatching(/^10\.1\.0\.[23]:80$/),
      forward: 'masq',
      connection: expect.any(String),
      persistent: false,
      reused: false,
      state: 'SYN_RECV',
    });
    const conns = (await call('GET', '/v1/connections')).body.connections;
    expect(conns).toEqual([
      expect.objectContaining({
        id: res.body.connection,
        protocol: 'tcp',
        client: CLIENT,
        virtual: '10.0.0.1:80',
        destination: res.body.destination,
        state: 'SYN_RECV',
        template: false,
      }),
    ]);
  });

  it('schedules by service key; rr alternates between the two real servers', async () => {
    const picks = [];
    for (let i = 0; i < 4; i++) {
      picks.push((await schedule({ client: `192.168.1.${i + 1}:1000`, service: SVC })).destination);
    }
    expect(new Set(picks).size).toBe(2);
    expect(picks[0]).toBe(picks[2]);
    expect(picks[1]).toBe(picks[3]);
  });

  it('requestId: a retry returns the same answer and counts once', async () => {
    const body = { protocol: 'tcp', client: CLIENT, virtual: '10.0.0.1:80', requestId: 'req-1' };
    const first = await schedule(body);
    const second = await schedule(body);
    expect(second).toEqual(first);
    expect((await call('GET', '/v1/connections')).body.connections).toHaveLength(1);
    expect((await call('GET', '/v1/stats')).body.total.conns).toBe(1);
    const other = await schedule({ ...body, client: '192.168.1.8:40001', requestId: 'req-2' });
    expect(other.connection).not.toBe(first.connection);
  });

  it('explain: true adds how the decision was made', async () => {
    const answer = await schedule({ protocol: 'tcp', client: CLIENT, virtual: '10.0.0.1:80', explain: true });
    expect(answer.explain).toMatchObject({
      scheduler: 'rr',
      lookup: 'exact',
      template: 'none',
      existing: 'none',
      chosen: answer.destination,
    });
    expect(answer.explain.candidates.map((c: { destination: string }) => c.destination).sort()).toEqual([
      '10.1.0.2:80',
      '10.1.0.3:80',
    ]);
    expect(Array.isArray(answer.explain.notes)).toBe(true);
  });

  it('a live tuple is followed: the same connection, reused: true', async () => {
    const body = { protocol: 'tcp', client: CLIENT, virtual: '10.0.0.1:80' };
    const first = await schedule(body);
    await call('PATCH', `/v1/connections/${encodeURIComponent(first.connection)}`, { state: 'ESTABLISHED' });
    const again = await schedule(body);
    expect(again).toMatchObject({
      connection: first.connection,
      destination: first.destination,
      reused: true,
    });
  });

  it('persistent services answer the template', async () => {
    await addService({
      protocol: 'tcp',
      address: '10.0.0.5',
      port: 443,
      scheduler: 'rr',
      persistence: { timeout: 60 },
    });
    await addDest('tcp:10.0.0.5:443', { address: '10.1.0.2' });
    const answer = await schedule({ protocol: 'tcp', client: CLIENT, virtual: '10.0.0.5:443' });
    expect(answer).toMatchObject({ persistent: true, template: expect.any(String) });
    const templates = (await call('GET', '/v1/connections?templates=true')).body.connections;
    expect(templates.map((c: { id: string }) => c.id)).toEqual([answer.template]);
  });

  it('NO_SERVICE is 404 naming the virtual endpoint', async () => {
    const res = await call('POST', '/v1/schedule', {
      protocol: 'tcp',
      client: CLIENT,
      virtual: '10.0.0.99:80',
    });
    expectError(res, 404, 'NO_SERVICE');
    expect(res.body.error.message).toContain('10.0.0.99:80');
    expectError(
      await call('POST', '/v1/schedule', { client: CLIENT, service: 'tcp:10.0.0.99:80' }),
      404,
      'NO_SERVICE',
    );
  });

  it('NO_DESTINATION is 503 when no real server can take it', async () => {
    await addService({ protocol: 'tcp', address: '10.0.0.6', port: 80 });
    const res = await call('POST', '/v1/schedule', {
      protocol: 'tcp',
      client: CLIENT,
      virtual: '10.0.0.6:80',
    });
    expectError(res, 503, 'NO_DESTINATION');
    await addDest('tcp:10.0.0.6:80', { address: '10.1.0.2', weight: 0 });
    expectError(
      await call('POST', '/v1/schedule', { protocol: 'tcp', client: CLIENT, virtual: '10.0.0.6:80' }),
      503,
      'NO_DESTINATION',
    );
  });

  it('UDP connections start in the UDP state with the UDP timeout', async () => {
    await addService({ protocol: 'udp', address: '10.0.0.1', port: 53 });
    await addDest('udp:10.0.0.1:53', { address: '10.1.0.2' });
    const answer = await schedule({ protocol: 'udp', client: CLIENT, virtual: '10.0.0.1:53' });
    expect(answer.state).toBe('UDP');
    const [conn] = (await call('GET', '/v1/connections?service=udp:10.0.0.1:53')).body.connections;
    expect(conn.expiresInMs).toBeGreaterThan(299_000);
    expect(conn.expiresInMs).toBeLessThanOrEqual(300_000);
  });
});

describe('connections', () => {
  let conn: string;
  const connUrl = () => `/v1/connections/${encodeURIComponent(conn)}`;

  beforeEach(async () => {
    await rrService();
    conn = (await schedule({ protocol: 'tcp', client: CLIENT, virtual: '10.0.0.1:80' })).connection;
  });

  it('PATCH with a state moves the connection and answers Connection', async () => {
    const res = await call('PATCH', connUrl(), { state: 'ESTABLISHED' });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toMatchObject({ id: conn, state: 'ESTABLISHED', template: false, client: CLIENT });
    expect(res.body.expiresInMs).toBeGreaterThan(899_000);
    expect(res.body.expiresInMs).toBeLessThanOrEqual(900_000);
  });

  it('PATCH with an event: the kernel TCP state table decides', async () => {
    const ack = await call('PATCH', connUrl(), { event: { direction: 'in', flag: 'ack' } });
    expect(ack.status, ack.text).toBe(200);
    expect(ack.body.state).toBe('ESTABLISHED');
    const rst = await call('PATCH', connUrl(), { event: { direction: 'out', flag: 'rst' } });
    expect(rst.body.state).toBe('CLOSE');
  });

  it('PATCH carries byte and packet counts into the stats', async () => {
    const res = await call('PATCH', connUrl(), {
      state: 'ESTABLISHED',
      inPackets: 3,
      outPackets: 4,
      inBytes: 300,
      outBytes: 4000,
    });
    expect(res.status, res.text).toBe(200);
    const stats = (await call('GET', '/v1/stats')).body;
    expect(stats.total).toMatchObject({ conns: 1, inPkts: 3, outPkts: 4, inBytes: 300, outBytes: 4000 });
    expect(stats.services[0].stats).toMatchObject({ inBytes: 300, outBytes: 4000 });
  });

  it('PATCH of an unknown connection is 404', async () => {
    expectError(await call('PATCH', '/v1/connections/nope', { state: 'ESTABLISHED' }), 404, 'NOT_FOUND');
  });

  it('DELETE answers 204: the connection is gone and its counters move at once', async () => {
    const before = (await call('GET', `/v1/services/${SVC}`)).body.destinations;
    expect(before.reduce((n: number, d: { activeConns: number }) => n + d.activeConns, 0)).toBe(1);
    expect((await call('DELETE', connUrl())).status).toBe(204);
    expect((await call('GET', '/v1/connections')).body.connections).toEqual([]);
    const after = (await call('GET', `/v1/services/${SVC}`)).body.destinations;
    expect(
      after.every(
        (d: { activeConns: number; inactiveConns: number }) => d.activeConns + d.inactiveConns === 0,
      ),
    ).toBe(true);
    expectError(await call('DELETE', connUrl()), 404, 'NOT_FOUND');
  });

  it('POST /v1/connections/batch answers per-item results', async () => {
    const other = (await schedule({ protocol: 'tcp', client: '192.168.1.8:1', virtual: '10.0.0.1:80' }))
      .connection;
    const res = await call('POST', '/v1/connections/batch', {
      updates: [
        { connection: conn, state: 'ESTABLISHED' },
        { connection: other, close: true },
        { connection: 'nope', state: 'ESTABLISHED' },
        { connection: conn, state: 'BOGUS' },
      ],
    });
    expect(res.status, res.text).toBe(200);
    const [a, b, c, d] = res.body.results;
    expect(a).toMatchObject({ connection: conn, ok: true, result: { id: conn, state: 'ESTABLISHED' } });
    expect(b).toMatchObject({ connection: other, ok: true });
    expect(c).toMatchObject({ connection: 'nope', ok: false, error: { code: 'NOT_FOUND' } });
    expect(c.error.message).toContain('updates[2]');
    expect(d).toMatchObject({ ok: false, error: { code: 'INVALID_ARGUMENT' } });
    expect(d.error.message).toContain('state');
    const ids = (await call('GET', '/v1/connections')).body.connections.map((x: { id: string }) => x.id);
    expect(ids).toEqual([conn]);
  });

  it('GET /v1/connections filters by service, destination and templates', async () => {
    await addService({ protocol: 'tcp', address: '10.0.0.5', port: 443, persistence: { timeout: 60 } });
    await addDest('tcp:10.0.0.5:443', { address: '10.1.0.9' });
    const p = await schedule({ protocol: 'tcp', client: CLIENT, virtual: '10.0.0.5:443' });
    const list = async (query: string) =>
      (await call('GET', `/v1/connections${query}`)).body.connections.map((c: { id: string }) => c.id).sort();
    expect(await list('')).toEqual([conn, p.connection, p.template].sort());
    expect(await list(`?service=${SVC}`)).toEqual([conn]);
    expect(await list('?service=tcp:10.0.0.5:443')).toEqual([p.connection, p.template].sort());
    expect(await list('?destination=10.1.0.9:443')).toEqual([p.connection, p.template].sort());
    expect(await list('?templates=true')).toEqual([p.template]);
    expect(await list('?templates=false')).toEqual([conn, p.connection].sort());
    expect(await list('?service=tcp:10.0.0.5:443&templates=false')).toEqual([p.connection]);
    expectError(await call('GET', '/v1/connections?templates=maybe'), 400, 'INVALID_ARGUMENT');
    const [template] = (await call('GET', '/v1/connections?templates=true')).body.connections;
    expect(template).toMatchObject({ template: true, controls: 1 });
    const [controlled] = (await call('GET', '/v1/connections?service=tcp:10.0.0.5:443&templates=false')).body
      .connections;
    expect(controlled.controlledBy).toBe(p.template);
  });
});

describe('timeouts and sysctl', () => {
  it('GET /v1/timeouts answers the defaults; PUT sets them, 0 keeps a value (ipvsadm --set)', async () => {
    expect((await call('GET', '/v1/timeouts')).body).toEqual({ tcp: 900, tcpFin: 120, udp: 300 });
    const res = await call('PUT', '/v1/timeouts', { tcp: 100, tcpFin: 0, udp: 30 });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ tcp: 100, tcpFin: 120, udp: 30 });
    expect((await call('GET', '/v1/timeouts')).body).toEqual({ tcp: 100, tcpFin: 120, udp: 30 });
  });

  it('new timeouts apply to connections', async () => {
    await rrService();
    await call('PUT', '/v1/timeouts', { tcp: 100 });
    const { connection } = await schedule({ protocol: 'tcp', client: CLIENT, virtual: '10.0.0.1:80' });
    const res = await call('PATCH', `/v1/connections/${encodeURIComponent(connection)}`, {
      state: 'ESTABLISHED',
    });
    expect(res.body.expiresInMs).toBeLessThanOrEqual(100_000);
    expect(res.body.expiresInMs).toBeGreaterThan(99_000);
  });

  it('GET /v1/sysctl answers the kernel names and defaults; PATCH changes only what is given', async () => {
    const res = await call('GET', '/v1/sysctl');
    expect(res.body).toMatchObject({
      expire_quiescent_template: 0,
      expire_nodest_conn: 0,
      conn_reuse_mode: 1,
      lblc_expiration: 86400,
      lblcr_expiration: 86400,
      sloppy_tcp: 0,
      sync_threshold: [3, 50],
    });
    const patched = await call('PATCH', '/v1/sysctl', { expire_nodest_conn: 1, sync_threshold: [4, 60] });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.body).toEqual({ ...res.body, expire_nodest_conn: 1, sync_threshold: [4, 60] });
    expect((await call('GET', '/v1/sysctl')).body).toEqual(patched.body);
  });
});

describe('rules (ipvsadm-save / ipvsadm-restore)', () => {
  const RULES = [
    '-A -t 10.0.0.9:80 -s rr',
    '-a -t 10.0.0.9:80 -r 10.1.0.9:80 -m -w 1',
    '-a -t 10.0.0.9:80 -r 10.1.0.8:80 -g -w 3',
    '-A -u 10.0.0.9:53 -s wlc -p 300',
    '',
  ].join('\n');

  it('GET /v1/rules answers text/plain in ipvsadm-save -n format', async () => {
    await rrService();
    const res = await call('GET', '/v1/rules');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    expect(res.text).toBe(
      [
        '-A -t 10.0.0.1:80 -s rr',
        '-a -t 10.0.0.1:80 -r 10.1.0.2:80 -m -w 1',
        '-a -t 10.0.0.1:80 -r 10.1.0.3:80 -m -w 1',
        '',
      ].join('\n'),
    );
  });

  it('PUT /v1/rules replaces the configuration', async () => {
    await rrService();
    const res = await send(t.app, 'PUT', '/v1/rules', undefined, { raw: RULES, contentType: 'text/plain' });
    expect(res.status, res.text).toBe(200);
    expect(res.body).toEqual({ linesApplied: 4 });
    const keys = (await call('GET', '/v1/services')).body.services.map((s: { key: string }) => s.key).sort();
    expect(keys).toEqual(['tcp:10.0.0.9:80', 'udp:10.0.0.9:53']);
    const tcp = (await call('GET', '/v1/services/tcp:10.0.0.9:80')).body;
    expect(
      tcp.destinations.map((d: { key: string; forward: string; weight: number }) => [
        d.key,
        d.forward,
        d.weight,
      ]),
    ).toEqual(
      expect.arrayContaining([
        ['10.1.0.9:80', 'masq', 1],
        ['10.1.0.8:80', 'route', 3],
      ]),
    );
    expect((await call('GET', '/v1/services/udp:10.0.0.9:53')).body.persistence).toMatchObject({
      timeout: 300,
    });
  });

  it('a bad line is 400 naming the line, and the configuration is unchanged', async () => {
    await rrService();
    const before = (await call('GET', '/v1/rules')).text;
    const services = (await call('GET', '/v1/services')).body;
    const bad = ['-A -t 10.0.0.9:80 -s rr', '-a -t 10.0.0.9:80 -r 10.1.0.9:80 -w 99999999', ''].join('\n');
    const res = await send(t.app, 'PUT', '/v1/rules', undefined, { raw: bad, contentType: 'text/plain' });
    expectError(res, 400, 'INVALID_ARGUMENT');
    expect(res.body.error.message).toMatch(/^rules: line 2\b/);
    const unknownSched = await send(t.app, 'PUT', '/v1/rules', undefined, {
      raw: '-A -t 10.0.0.9:80 -s rr\n-A -t 10.0.0.8:80 -s bogus\n',
      contentType: 'text/plain',
    });
    expectError(unknownSched, 400, 'INVALID_ARGUMENT');
    expect(unknownSched.body.error.message).toContain('line 2');
    expect((await call('GET', '/v1/rules')).text).toBe(before);
    expect((await call('GET', '/v1/services')).body).toEqual(services);
  });

  it('the rules round-trip: GET then PUT of the same text changes nothing', async () => {
    await send(t.app, 'PUT', '/v1/rules', undefined, { raw: RULES, contentType: 'text/plain' });
    const text = (await call('GET', '/v1/rules')).text;
    await send(t.app, 'PUT', '/v1/rules', undefined, { raw: text, contentType: 'text/plain' });
    expect((await call('GET', '/v1/rules')).text).toBe(text);
  });
});

describe('stats and observability', () => {
  it('GET /v1/stats answers counters and rates per service and destination', async () => {
    await rrService();
    await schedule({ protocol: 'tcp', client: CLIENT, virtual: '10.0.0.1:80' });
    const res = await call('GET', '/v1/stats');
    expect(res.status).toBe(200);
    const zero = ZERO_STATS;
    expect(Object.keys(res.body.total).sort()).toEqual(Object.keys(zero).sort());
    expect(res.body.total.conns).toBe(1);
    expect(res.body.services).toHaveLength(1);
    expect(res.body.services[0]).toMatchObject({ key: SVC, stats: { conns: 1 } });
    expect(res.body.services[0].destinations.map((d: { key: string }) => d.key).sort()).toEqual([
      '10.1.0.2:80',
      '10.1.0.3:80',
    ]);
  });

  it('POST /v1/stats/zero zeroes the counters', async () => {
    await rrService();
    await schedule({ protocol: 'tcp', client: CLIENT, virtual: '10.0.0.1:80' });
    expect((await call('POST', '/v1/stats/zero')).status).toBe(204);
    expect((await call('GET', '/v1/stats')).body.total.conns).toBe(0);
    expectError(await call('POST', '/v1/stats/zero?service=tcp:10.9.9.9:80'), 404, 'NOT_FOUND');
  });

  it('GET /metrics answers Prometheus text', async () => {
    await rrService();
    await schedule({ protocol: 'tcp', client: CLIENT, virtual: '10.0.0.1:80' });
    await call('POST', '/v1/schedule', { protocol: 'tcp', client: CLIENT, virtual: '10.0.0.99:80' });
    const res = await call('GET', '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    const lines = res.text.split('\n');
    expect(lines.pop()).toBe('');
    const sample =
      /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"(,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*\})? -?[0-9.e+-]+$/;
    for (const line of lines) {
      if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
      expect(line, 'a Prometheus sample line').toMatch(sample);
    }
    expect(res.text).toContain('# TYPE ipvs_service_connections_total counter');
    expect(res.text).toContain(`ipvs_service_connections_total{service="${SVC}"} 1`);
    expect(res.text).toMatch(
      /ipvs_destination_active_connections\{service="tcp:10\.0\.0\.1:80",destination="10\.1\.0\.[23]:80"\} 1/,
    );
    expect(res.text).toContain('ipvs_decisions_total{outcome="scheduled"} 1');
    expect(res.text).toContain('ipvs_decisions_total{outcome="NO_SERVICE"} 1');
    expect(res.text).toContain('ipvs_ready 1');
  });

  it('GET /healthz and GET /readyz', async () => {
    const health = await call('GET', '/healthz');
    expect(health.status).toBe(200);
    expect(health.body).toEqual({ status: 'ok' });
    const ready = await call('GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ ready: true });
  });

  it('GET / answers the dashboard page', async () => {
    const res = await call('GET', '/');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.text).toMatch(/^<!doctype html>/i);
    expect(res.text).toContain('</html>');
  });

  it("a caller's x-request-id is echoed back; without one no header is added", async () => {
    const traced = await t.app.inject({
      method: 'GET',
      url: '/healthz',
      headers: { 'x-request-id': 'trace-42' },
    });
    expect(traced.headers['x-request-id']).toBe('trace-42');
    const plain = await call('GET', '/healthz');
    expect(plain.headers['x-request-id']).toBeUndefined();
  });

  it('an unknown route is 404 NOT_FOUND in the error shape', async () => {
    const res = await call('GET', '/v1/nope');
    expectError(res, 404, 'NOT_FOUND');
    expectError(await call('PUT', '/v1/services', {}), 404, 'NOT_FOUND');
  });
});

describe('clock routes', () => {
  it('answer 404 without IPVS_CLOCK=manual', async () => {
    const get = await call('GET', '/v1/clock');
    expectError(get, 404, 'NOT_FOUND');
    expect(get.body.error.message).toContain('IPVS_CLOCK=manual');
    expectError(await call('POST', '/v1/clock/advance', { seconds: 1 }), 404, 'NOT_FOUND');
  });

  it('with a manual clock, POST /v1/clock/advance fires the timers that fall due', async () => {
    t = makeApp({ manualClock: true });
    const start = (await call('GET', '/v1/clock')).body.nowMs;
    expect(start).toBe(1_700_000_000_000);
    await rrService();
    const { connection } = await schedule({ protocol: 'tcp', client: CLIENT, virtual: '10.0.0.1:80' });
    const [conn] = (await call('GET', '/v1/connections')).body.connections;
    expect(conn).toMatchObject({ id: connection, state: 'SYN_RECV', expiresInMs: 60_000 });

    const early = await call('POST', '/v1/clock/advance', { seconds: 59.5 });
    expect(early.status, early.text).toBe(200);
    expect(early.body).toEqual({ nowMs: start + 59_500 });
    expect((await call('GET', '/v1/connections')).body.connections).toEqual([
      expect.objectContaining({ id: connection, expiresInMs: 500 }),
    ]);

    const late = await call('POST', '/v1/clock/advance', { seconds: 1 });
    expect(late.body).toEqual({ nowMs: start + 60_500 });
    expect((await call('GET', '/v1/connections')).body.connections).toEqual([]);
    const dests = (await call('GET', `/v1/services/${SVC}`)).body.destinations;
    expect(
      dests.every(
        (d: { activeConns: number; inactiveConns: number }) => d.activeConns + d.inactiveConns === 0,
      ),
    ).toBe(true);
    expect((await call('GET', '/v1/clock')).body).toEqual({ nowMs: start + 60_500 });
  });

  it('persistence templates expire on the manual clock too', async () => {
    t = makeApp({ manualClock: true });
    await addService({ protocol: 'udp', address: '10.0.0.5', port: 53, persistence: { timeout: 30 } });
    await addDest('udp:10.0.0.5:53', { address: '10.1.0.2' });
    const answer = await schedule({ protocol: 'udp', client: CLIENT, virtual: '10.0.0.5:53' });
    await call('PATCH', `/v1/connections/${encodeURIComponent(answer.connection)}`, { inPackets: 1 });
    expect((await call('GET', '/v1/connections?templates=true')).body.connections).toHaveLength(1);
    await call('POST', '/v1/clock/advance', { seconds: 301 });
    await call('POST', '/v1/clock/advance', { seconds: 31 });
    expect((await call('GET', '/v1/connections')).body.connections).toEqual([]);
  });
});

describe('GET/PUT /v1/sync and DELETE /v1/sync/{role} (sync daemons)', () => {
  describe('without SYNC_REDIS_URL', () => {
    it('GET lists none; PUT and DELETE are 400 FAILED_PRECONDITION naming SYNC_REDIS_URL', async () => {
      expect(await call('GET', '/v1/sync')).toMatchObject({ status: 200, body: { daemons: [] } });
      for (const res of [
        await call('PUT', '/v1/sync', { role: 'master', syncid: 5 }),
        await call('DELETE', '/v1/sync/master'),
      ]) {
        expectError(res, 400, 'FAILED_PRECONDITION');
        expect(res.body.error.field).toBe('SYNC_REDIS_URL');
        expect(res.body.error.message).toContain('SYNC_REDIS_URL');
      }
    });

    it('bad input is 400 INVALID_ARGUMENT naming the field, before anything else', async () => {
      const cases: [string, string, unknown, string][] = [
        ['PUT', '/v1/sync', { role: 'primary', syncid: 1 }, 'role'],
        ['PUT', '/v1/sync', { syncid: 1 }, 'role'],
        ['PUT', '/v1/sync', { role: 'master', syncid: 256 }, 'syncid'],
        ['PUT', '/v1/sync', { role: 'master', syncid: -1 }, 'syncid'],
        ['PUT', '/v1/sync', { role: 'master', syncMaxlen: 70000 }, 'syncMaxlen'],
        ['PUT', '/v1/sync', { role: 'master', mcastGroup: '10.0.0.1' }, 'mcastGroup'],
        ['PUT', '/v1/sync', { role: 'master', mcastPort: 0 }, 'mcastPort'],
        ['PUT', '/v1/sync', { role: 'master', mcastTtl: 256 }, 'mcastTtl'],
        ['PUT', '/v1/sync', { role: 'master', interval: 1 }, 'body.interval'],
        ['PUT', '/v1/sync', [], 'body'],
        ['DELETE', '/v1/sync/primary', undefined, 'role'],
      ];
      for (const [method, url, body, field] of cases) {
        const res = await call(method, url, body);
        expectError(res, 400, 'INVALID_ARGUMENT');
        expect(res.body.error.field, JSON.stringify(body)).toBe(field);
      }
    });
  });

  describe('with SYNC_REDIS_URL (a redis-server of this test)', () => {
    let redis: RedisServer;
    let svc: TestService;
    const http = (method: string, path: string, body?: unknown) =>
      fetchJson(svc.httpBase, method, path, body);

    beforeAll(async () => {
      redis = await startRedisServer();
      svc = await startTestService({ SYNC_REDIS_URL: redis.url });
    });
    afterAll(async () => {
      await svc?.stop();
      await redis?.stop();
    });

    it('PUT starts a daemon (201, the daemon), GET lists master then backup with health, DELETE stops (204)', async () => {
      const master = await http('PUT', '/v1/sync', { role: 'master', syncid: 5 });
      expect(master.status, master.text).toBe(201);
      expect(master.body).toEqual({
        role: 'master',
        syncid: 5,
        state: 'running',
        directorId: expect.any(String),
        channel: 'ipvs:sync:5',
        mcastInterface: 'eth0',
        syncMaxlen: 1472,
        mcastGroup: '224.0.0.81',
        mcastPort: 8848,
        mcastTtl: 1,
        startedAtMs: expect.any(Number),
        health: {
          reconnects: 0,
          messagesSent: 0,
          entriesSent: 0,
          lastSequence: 0,
          snapshotsSent: 0,
          resyncRequestsServed: 0,
          publishErrors: 0,
        },
      });
      expect(() => fromJson(SyncDaemonSchema, master.body)).not.toThrow();

      const again = await http('PUT', '/v1/sync', { role: 'master', syncid: 6 });
      expectError(again, 409, 'ALREADY_EXISTS');
      expect(again.body.error.message).toContain('Daemon has already run');

      const backup = await http('PUT', '/v1/sync', {
        role: 'backup',
        syncid: 0,
        mcastInterface: 'eth1',
        syncMaxlen: 2000,
        mcastGroup: '224.0.0.82',
        mcastPort: 9000,
        mcastTtl: 2,
      });
      expect(backup.status, backup.text).toBe(201);
      expect(backup.body).toMatchObject({
        role: 'backup',
        syncid: 0,
        channel: 'ipvs:sync:*',
        directorId: master.body.directorId,
        mcastInterface: 'eth1',
        syncMaxlen: 2000,
        mcastGroup: '224.0.0.82',
        mcastPort: 9000,
        mcastTtl: 2,
        health: { messagesReceived: 0, gaps: 0, snapshotsApplied: 0, directors: [] },
      });

      const listed = await http('GET', '/v1/sync');
      expect(listed.status).toBe(200);
      expect(listed.body.daemons.map((d: { role: string }) => d.role)).toEqual(['master', 'backup']);
      expect(() => fromJson(ListSyncDaemonsResponseSchema, listed.body)).not.toThrow();

      expect((await http('DELETE', '/v1/sync/master')).status).toBe(204);
      const gone = await http('DELETE', '/v1/sync/master');
      expectError(gone, 404, 'NOT_FOUND');
      expect(gone.body.error.message).toContain('No daemon is running');
      expect((await http('DELETE', '/v1/sync/backup')).status).toBe(204);
      expect((await http('GET', '/v1/sync')).body).toEqual({ daemons: [] });
    });
  });
});

describe('over a real listening server', () => {
  let svc: TestService;
  const http = (method: string, path: string, body?: unknown) => fetchJson(svc.httpBase, method, path, body);

  beforeAll(async () => {
    svc = await startTestService();
  });
  afterAll(async () => {
    await svc.stop();
  });

  it('listens on 127.0.0.1 with an ephemeral port', () => {
    expect(svc.httpPort).toBeGreaterThan(0);
    expect(svc.httpBase).toBe(`http://127.0.0.1:${svc.httpPort}`);
  });

  it('services CRUD with 409 and 404, destinations, schedule, connections', async () => {
    const created = await http('POST', '/v1/services', {
      protocol: 'tcp',
      address: '10.0.0.1',
      port: 80,
      scheduler: 'rr',
    });
    expect(created.status).toBe(201);
    expect(created.body.key).toBe(SVC);
    expectError(
      await http('POST', '/v1/services', { protocol: 'tcp', address: '10.0.0.1', port: 80 }),
      409,
      'ALREADY_EXISTS',
    );
    expect((await http('PATCH', `/v1/services/${SVC}`, { scheduler: 'wrr' })).body.scheduler).toBe('wrr');
    expect((await http('POST', `/v1/services/${SVC}/destinations`, { address: '10.1.0.2' })).status).toBe(
      201,
    );
    const answer = await http('POST', '/v1/schedule', {
      protocol: 'tcp',
      client: CLIENT,
      virtual: '10.0.0.1:80',
    });
    expect(answer.status).toBe(200);
    expect(answer.body.destination).toBe('10.1.0.2:80');
    const conn = `/v1/connections/${encodeURIComponent(answer.body.connection)}`;
    expect((await http('PATCH', conn, { event: { direction: 'in', flag: 'ack' } })).body.state).toBe(
      'ESTABLISHED',
    );
    expect((await http('GET', '/v1/connections')).body.connections).toHaveLength(1);
    expect((await http('DELETE', conn)).status).toBe(204);
    expect((await http('GET', '/v1/connections')).body.connections).toHaveLength(0);
    expect((await http('DELETE', `/v1/services/${SVC}/destinations/10.1.0.2:80`)).status).toBe(204);
    expect((await http('DELETE', `/v1/services/${SVC}`)).status).toBe(204);
    expectError(await http('GET', `/v1/services/${SVC}`), 404, 'NOT_FOUND');
    expectError(await http('DELETE', `/v1/services/${SVC}`), 404, 'NOT_FOUND');
  });

  it('IPv6 keys percent-encoded over the wire', async () => {
    expect(
      (await http('POST', '/v1/services', { protocol: 'udp', address: '2001:db8::1', port: 53 })).status,
    ).toBe(201);
    expect((await http('GET', V6_URL)).body.key).toBe(V6);
    expect((await http('DELETE', V6_URL)).status).toBe(204);
  });

  it('DELETE /v1/services, rules, health, metrics and the dashboard', async () => {
    await http('POST', '/v1/services', { fwmark: 1 });
    expect((await http('DELETE', '/v1/services')).status).toBe(204);
    expect((await http('GET', '/v1/services')).body).toEqual({ services: [] });
    const put = await fetchJson(svc.httpBase, 'PUT', '/v1/rules', undefined, {
      raw: '-A -t 10.0.0.9:80 -s rr\n',
      contentType: 'text/plain; charset=utf-8',
    });
    expect(put.body).toEqual({ linesApplied: 1 });
    expect((await http('GET', '/v1/rules')).text).toBe('-A -t 10.0.0.9:80 -s rr\n');
    expect((await http('GET', '/healthz')).status).toBe(200);
    expect((await http('GET', '/readyz')).body).toEqual({ ready: true });
    expect((await http('GET', '/metrics')).text).toContain('ipvs_ready 1');
    expect((await http('GET', '/')).headers['content-type']).toMatch(/^text\/html/);
    expectError(await http('GET', '/v1/clock'), 404, 'NOT_FOUND');
  });
});

describe('a real server with IPVS_CLOCK=manual', () => {
  it('moves time only through POST /v1/clock/advance', async () => {
    const svc = await startTestService({ IPVS_CLOCK: 'manual' });
    try {
      const http = (method: string, path: string, body?: unknown) =>
        fetchJson(svc.httpBase, method, path, body);
      const { nowMs } = (await http('GET', '/v1/clock')).body;
      expect(Math.abs(nowMs - Date.now())).toBeLessThan(60_000);
      await http('POST', '/v1/services', { protocol: 'udp', address: '10.0.0.1', port: 53 });
      await http('POST', '/v1/services/udp:10.0.0.1:53/destinations', { address: '10.1.0.2' });
      await http('POST', '/v1/schedule', { protocol: 'udp', client: CLIENT, virtual: '10.0.0.1:53' });
      expect((await http('GET', '/v1/clock')).body.nowMs).toBe(nowMs);
      expect((await http('POST', '/v1/clock/advance', { seconds: 300 })).body.nowMs).toBe(nowMs + 300_000);
      expect((await http('GET', '/v1/connections')).body.connections).toEqual([]);
    } finally {
      await svc.stop();
    }
  });
});
