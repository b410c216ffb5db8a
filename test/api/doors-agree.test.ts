/**
 * Both doors give the same answers for the same state (API.md: "HTTP bodies carry the same protobuf
 * messages as gRPC, in JSON"). One sequence of calls runs over HTTP against one fresh service and
 * over gRPC against another; every answer is compared after normalisation (proto3 JSON writes
 * uint64 as strings and leaves out defaults). Every HTTP body also parses, strictly, as its message.
 */
import { fromJson, type DescMessage, type DescMethod, type JsonValue } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GRPC_STATUS } from '../../src/api/errors.js';
import type { ErrorCode } from '../../src/domain/errors.js';
import {
  Admin,
  AdvanceClockResponseSchema,
  GetClockResponseSchema,
  ListConnectionsResponseSchema,
  ListServicesResponseSchema,
  ListSyncDaemonsResponseSchema,
  ReplaceRulesResponseSchema,
  SysctlSchema,
  TimeoutsSchema,
} from '../../src/gen/ipvs/v1/admin_pb.js';
import {
  ReportConnectionsResponseSchema,
  Scheduler,
  ScheduleResponseSchema,
} from '../../src/gen/ipvs/v1/scheduler_pb.js';
import { GetStatsResponseSchema, Stats } from '../../src/gen/ipvs/v1/stats_pb.js';
import {
  ConnectionSchema,
  DestinationStatusSchema,
  ServiceStatusSchema,
} from '../../src/gen/ipvs/v1/types_pb.js';
import {
  fetchJson,
  grpcClient,
  grpcFull,
  normalise,
  startTestService,
  unary,
  type Json,
  type TestService,
} from '../helpers/api.js';

const A = Admin.method;
const S = Scheduler.method;

let viaHttp: TestService;
let viaGrpc: TestService;
let clients: Record<string, grpc.Client>;

beforeAll(async () => {
  [viaHttp, viaGrpc] = await Promise.all([
    startTestService({ IPVS_CLOCK: 'manual' }),
    startTestService({ IPVS_CLOCK: 'manual' }),
  ]);
  clients = {
    [Admin.typeName]: grpcClient(Admin, viaGrpc.grpcAddress),
    [Scheduler.typeName]: grpcClient(Scheduler, viaGrpc.grpcAddress),
    [Stats.typeName]: grpcClient(Stats, viaGrpc.grpcAddress),
  };
});

afterAll(async () => {
  for (const c of Object.values(clients ?? {})) c.close();
  await Promise.all([viaHttp?.stop(), viaGrpc?.stop()]);
});

interface Step {
  http: [method: string, path: string, body?: unknown];
  grpc: [method: DescMethod, request: JsonValue];
  /** The message the HTTP body is; absent for 204 answers and text. */
  schema?: DescMessage;
  /** Where that message sits in the gRPC answer (`service` in CreateServiceResponse, ...). */
  field?: string;
}

const mismatches: string[] = [];

/**
 * Runs one step through both doors and compares: the same success or the same error (HTTP status
 * and code ↔ gRPC status, same message); for answers, the same message. Returns the HTTP body.
 */
async function both(step: Step): Promise<Json> {
  const [method, path, body] = step.http;
  const http =
    typeof body === 'string'
      ? await fetchJson(viaHttp.httpBase, method, path, undefined, { raw: body, contentType: 'text/plain' })
      : await fetchJson(viaHttp.httpBase, method, path, body);
  const [m, request] = step.grpc;
  const rpc = await unary(clients[m.parent.typeName], m, request);
  const label = `${method} ${path} ↔ ${m.parent.name}.${m.name}`;

  if (http.status >= 400) {
    expect(rpc.ok, `${label}: HTTP failed (${http.text}) but gRPC did not`).toBe(false);
    if (rpc.ok) return http.body;
    const code = http.body.error.code as ErrorCode;
    expect(grpc.status[rpc.code], label).toBe(grpc.status[GRPC_STATUS[code]]);
    expect(rpc.details, label).toBe(http.body.error.message);
    return http.body;
  }
  expect(rpc.ok, `${label}: gRPC failed: ${rpc.ok ? '' : rpc.details}`).toBe(true);
  if (!rpc.ok) return http.body;
  if (step.schema) {
    // The HTTP JSON is the protobuf message's JSON form: a strict parse succeeds.
    expect(
      () => fromJson(step.schema!, http.body as JsonValue),
      `${label}: HTTP body as ${step.schema.typeName}`,
    ).not.toThrow();
    const grpcAnswer = step.field ? (rpc.json[step.field] ?? {}) : rpc.json;
    const fromHttp = normalise(http.body);
    const fromGrpc = grpcFull(step.schema, grpcAnswer);
    if (JSON.stringify(sortKeys(fromHttp)) !== JSON.stringify(sortKeys(fromGrpc))) mismatches.push(label);
    expect(fromHttp, label).toEqual(fromGrpc);
  }
  return http.body;
}

function sortKeys(v: Json): Json {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object')
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys(v[k])]),
    );
  return v;
}

const svcUrl = (key: string) => `/v1/services/${encodeURIComponent(key)}`;
const connUrl = (id: string) => `/v1/connections/${encodeURIComponent(id)}`;

const createService = (service: Json): Step => ({
  http: ['POST', '/v1/services', service],
  grpc: [A.createService, { service }],
  schema: ServiceStatusSchema,
  field: 'service',
});
const createDest = (key: string, destination: Json): Step => ({
  http: ['POST', `${svcUrl(key)}/destinations`, destination],
  grpc: [A.createDestination, { service: key, destination }],
  schema: DestinationStatusSchema,
  field: 'destination',
});
const schedule = (request: Json): Step => ({
  http: ['POST', '/v1/schedule', request],
  grpc: [S.schedule, request],
  schema: ScheduleResponseSchema,
});
const listServices: Step = {
  http: ['GET', '/v1/services'],
  grpc: [A.listServices, {}],
  schema: ListServicesResponseSchema,
};
const listConnections = (query: Record<string, string> = {}): Step => {
  const request: Json = { ...query };
  if (query.templates !== undefined) request.templates = query.templates === 'true';
  const qs = new URLSearchParams(query).toString();
  return {
    http: ['GET', `/v1/connections${qs ? `?${qs}` : ''}`],
    grpc: [A.listConnections, request],
    schema: ListConnectionsResponseSchema,
  };
};
const update = (id: string, u: Json): Step => ({
  http: ['PATCH', connUrl(id), u],
  grpc: [S.updateConnection, { connection: id, update: u }],
  schema: ConnectionSchema,
  field: 'connection',
});

describe('the same sequence over HTTP and over gRPC', () => {
  it('services and destinations', async () => {
    await both(createService({ protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler: 'rr' }));
    await both(
      createService({ protocol: 'udp', address: '2001:db8::1', port: 53, persistence: { netmask: '64' } }),
    );
    await both(createService({ fwmark: 42, scheduler: 'sh', schedFlags: ['sh-port'] }));
    await both(createService({ fwmark: 43, family: 'inet6', scheduler: 'mh', onePacket: true }));
    await both(
      createService({
        protocol: 'tcp',
        address: '10.0.0.5',
        port: 443,
        scheduler: 'wlc',
        persistence: { timeout: 120, netmask: '255.255.255.0' },
      }),
    );
    await both(createService({ protocol: 'tcp', address: '10.0.0.6', port: 80, scheduler: 'lc' }));
    await both(createService({ protocol: 'sctp', address: '10.0.0.7', port: 3868, scheduler: 'lblc' }));
    await both(createService({ protocol: 'tcp', address: '10.0.0.1', port: 80 }));
    await both(createService({ protocol: 'tcp', address: '10.0.0.8', port: 70000 }));

    await both(createDest('tcp:10.0.0.1:80', { address: '10.1.0.2' }));
    await both(createDest('tcp:10.0.0.1:80', { address: '10.1.0.3', weight: 2, forward: 'route' }));
    await both(createDest('tcp:10.0.0.1:80', { address: '2001:db8::7', port: 8080, forward: 'tunnel' }));
    await both(createDest('udp:[2001:db8::1]:53', { address: '2001:db8::a' }));
    await both(
      createDest('udp:[2001:db8::1]:53', { address: '2001:db8::b', upperThreshold: 100, lowerThreshold: 10 }),
    );
    await both(createDest('fwm:42', { address: '10.2.0.1', port: 80 }));
    await both(createDest('fwm:42', { address: '10.2.0.2', port: 80 }));
    await both(createDest('tcp:10.0.0.5:443', { address: '10.3.0.1' }));
    await both(createDest('tcp:10.0.0.5:443', { address: '10.3.0.2' }));
    await both(createDest('sctp:10.0.0.7:3868', { address: '10.4.0.1' }));
    await both(createDest('tcp:10.0.0.1:80', { address: '10.1.0.2' }));
    await both(createDest('tcp:10.0.0.1:80', { address: '10.1.0.4', weight: 70000 }));

    await both({
      http: ['PATCH', `${svcUrl('tcp:10.0.0.1:80')}/destinations/10.1.0.3:80`, { weight: 3 }],
      grpc: [
        A.updateDestination,
        { service: 'tcp:10.0.0.1:80', destination: '10.1.0.3:80', patch: { weight: 3 } },
      ],
      schema: DestinationStatusSchema,
      field: 'destination',
    });
    await both({
      http: ['PATCH', svcUrl('tcp:10.0.0.6:80'), { scheduler: 'wrr', persistence: { timeout: 30 } }],
      grpc: [
        A.updateService,
        { key: 'tcp:10.0.0.6:80', patch: { scheduler: 'wrr', persistence: { timeout: 30 } } },
      ],
      schema: ServiceStatusSchema,
      field: 'service',
    });
    await both({
      http: ['PATCH', svcUrl('tcp:10.0.0.9:80'), { scheduler: 'wrr' }],
      grpc: [A.updateService, { key: 'tcp:10.0.0.9:80', patch: { scheduler: 'wrr' } }],
    });
    await both(listServices);
    for (const key of ['tcp:10.0.0.1:80', 'udp:[2001:db8::1]:53', 'fwm:42', 'fwm6:43']) {
      await both({
        http: ['GET', svcUrl(key)],
        grpc: [A.getService, { key }],
        schema: ServiceStatusSchema,
        field: 'service',
      });
    }
  });

  it('schedule answers, errors included', async () => {
    for (let i = 1; i <= 4; i++) {
      await both(schedule({ protocol: 'tcp', client: `192.168.1.${i}:4000${i}`, virtual: '10.0.0.1:80' }));
    }
    await both(schedule({ client: '192.168.1.9:1', service: 'tcp:10.0.0.1:80', explain: true }));
    await both(
      schedule({ protocol: 'tcp', client: '192.168.1.10:1', virtual: '10.0.0.1:80', requestId: 'r-1' }),
    );
    await both(
      schedule({ protocol: 'tcp', client: '192.168.1.10:1', virtual: '10.0.0.1:80', requestId: 'r-1' }),
    );
    await both(
      schedule({ protocol: 'tcp', client: '192.168.1.1:40001', virtual: '10.0.0.1:80', explain: true }),
    );
    await both(
      schedule({
        protocol: 'udp',
        client: '[2001:db8::99]:5353',
        virtual: '[2001:db8::1]:53',
        explain: true,
      }),
    );
    await both(schedule({ protocol: 'udp', client: '[2001:db8::98]:5353', virtual: '[2001:db8::1]:53' }));
    await both(
      schedule({ protocol: 'tcp', client: '192.168.2.1:1000', virtual: '10.0.0.5:443', explain: true }),
    );
    await both(schedule({ protocol: 'tcp', client: '192.168.2.2:1000', virtual: '10.0.0.5:443' }));
    await both(schedule({ protocol: 'tcp', client: '192.168.3.1:1000', virtual: '10.9.9.9:80', fwmark: 42 }));
    await both(schedule({ protocol: 'sctp', client: '192.168.4.1:1000', virtual: '10.0.0.7:3868' }));
    await both(schedule({ protocol: 'tcp', client: '192.168.1.1:1', virtual: '10.0.0.99:80' }));
    await both(schedule({ protocol: 'tcp', client: '192.168.1.1:1', virtual: '10.0.0.6:80' }));
    await both(schedule({ protocol: 'tcp', client: 'nope', virtual: '10.0.0.1:80' }));
    await both(
      schedule({ protocol: 'tcp', client: '192.168.1.1:1', virtual: '10.0.0.1:80', initialState: 'BOGUS' }),
    );
    await both(
      schedule({
        protocol: 'tcp',
        client: '192.168.1.50:1',
        virtual: '10.0.0.1:80',
        initialState: 'ESTABLISHED',
      }),
    );
    await both(listServices);
  });

  it('connections: listing, updates, batch, close', async () => {
    const all = await both(listConnections());
    expect(all.connections.length).toBeGreaterThan(5);
    await both(listConnections({ service: 'tcp:10.0.0.1:80' }));
    await both(listConnections({ destination: '10.3.0.1:443' }));
    await both(listConnections({ templates: 'true' }));
    await both(listConnections({ templates: 'false', service: 'tcp:10.0.0.5:443' }));

    const tcp = all.connections
      .filter((c: Json) => c.protocol === 'tcp' && !c.template)
      .map((c: Json) => c.id);
    const [first, second, third] = tcp;
    await both(update(first, { state: 'ESTABLISHED' }));
    await both(update(second, { event: { direction: 'in', flag: 'ack' } }));
    await both(update(second, { event: { direction: 'out', flag: 'fin' } }));
    await both(update(third, { state: 'BOGUS' }));
    await both(update('nope', { state: 'ESTABLISHED' }));
    const template = all.connections.find((c: Json) => c.template).id;
    await both(update(template, { state: 'ESTABLISHED' }));
    const udp = all.connections.find((c: Json) => c.protocol === 'udp' && !c.template).id;
    await both(update(udp, { event: { direction: 'in' } }));

    const updates: JsonValue = [
      { connection: first, state: 'CLOSE_WAIT' },
      { connection: third, close: true },
      { connection: 'nope', close: true },
      { connection: template, close: true },
      { connection: second, event: { direction: 'sideways' } },
    ];
    await both({
      http: ['POST', '/v1/connections/batch', { updates }],
      grpc: [S.reportConnections, { updates }],
      schema: ReportConnectionsResponseSchema,
    });
    await both({ http: ['DELETE', connUrl(first)], grpc: [S.closeConnection, { connection: first }] });
    await both({ http: ['DELETE', connUrl(first)], grpc: [S.closeConnection, { connection: first }] });
    await both({ http: ['DELETE', connUrl(template)], grpc: [S.closeConnection, { connection: template }] });
    await both(listConnections());
    await both(listServices);
  });

  it('timeouts, sysctl, stats, rules', async () => {
    const timeouts = (http: [string, string, unknown?], m: DescMethod, request: Json): Step => ({
      http: http as Step['http'],
      grpc: [m, request],
      schema: TimeoutsSchema,
      field: 'timeouts',
    });
    await both(timeouts(['GET', '/v1/timeouts'], A.getTimeouts, {}));
    await both(
      timeouts(['PUT', '/v1/timeouts', { tcp: 600, udp: 60 }], A.setTimeouts, {
        timeouts: { tcp: 600, udp: 60 },
      }),
    );
    await both(
      timeouts(['PUT', '/v1/timeouts', { tcp: 3_000_000 }], A.setTimeouts, { timeouts: { tcp: 3_000_000 } }),
    );

    const sysctl = (http: [string, string, unknown?], m: DescMethod, request: Json): Step => ({
      http: http as Step['http'],
      grpc: [m, request],
      schema: SysctlSchema,
      field: 'sysctl',
    });
    await both(sysctl(['GET', '/v1/sysctl'], A.getSysctl, {}));
    const patch = { expire_quiescent_template: 1, sync_threshold: [2, 40] };
    await both(sysctl(['PATCH', '/v1/sysctl', patch], A.updateSysctl, { patch }));
    await both(
      sysctl(['PATCH', '/v1/sysctl', { secure_tcp: 7 }], A.updateSysctl, { patch: { secure_tcp: 7 } }),
    );

    await both({
      http: ['GET', '/v1/stats'],
      grpc: [Stats.method.getStats, {}],
      schema: GetStatsResponseSchema,
    });

    const rulesHttp = await fetchJson(viaHttp.httpBase, 'GET', '/v1/rules');
    const rulesGrpc = await unary(clients[Admin.typeName], A.getRules, {});
    expect(rulesGrpc.ok && rulesGrpc.json.text).toBe(rulesHttp.text);

    await both({
      http: ['DELETE', `${svcUrl('tcp:10.0.0.1:80')}/destinations/10.1.0.2:80`],
      grpc: [A.deleteDestination, { service: 'tcp:10.0.0.1:80', destination: '10.1.0.2:80' }],
    });
    await both({ http: ['DELETE', svcUrl('fwm:42')], grpc: [A.deleteService, { key: 'fwm:42' }] });
    await both(listServices);
    await both(listConnections());
    await both({ http: ['POST', '/v1/stats/zero'], grpc: [A.zeroStats, {}] });
    await both({
      http: ['GET', '/v1/stats'],
      grpc: [Stats.method.getStats, {}],
      schema: GetStatsResponseSchema,
    });

    const text = '-A -t 10.0.0.9:80 -s rr\n-a -t 10.0.0.9:80 -r 10.1.0.9:80 -m -w 1\n-A -f 7 -s wlc -p 60\n';
    await both({
      http: ['PUT', '/v1/rules', text],
      grpc: [A.replaceRules, { text }],
      schema: ReplaceRulesResponseSchema,
    });
    await both({
      http: ['PUT', '/v1/rules', '-A -t 10.0.0.9:80 -x\n'],
      grpc: [A.replaceRules, { text: '-A -t 10.0.0.9:80 -x\n' }],
    });
    await both(listServices);
    await both({ http: ['DELETE', '/v1/services'], grpc: [A.clearServices, {}] });
    await both(listServices);
  });

  it('sync daemons without SYNC_REDIS_URL: the empty list and the same refusals', async () => {
    await both({
      http: ['GET', '/v1/sync'],
      grpc: [A.listSyncDaemons, {}],
      schema: ListSyncDaemonsResponseSchema,
    });
    const start = (daemon: Json) =>
      both({ http: ['PUT', '/v1/sync', daemon], grpc: [A.startSyncDaemon, { daemon }] });
    const stop = (role: string) =>
      both({ http: ['DELETE', `/v1/sync/${role}`], grpc: [A.stopSyncDaemon, { role }] });
    expect((await start({ role: 'master', syncid: 5 })).error.code).toBe('FAILED_PRECONDITION');
    expect((await start({ role: 'backup', syncid: 0, mcastInterface: 'eth1' })).error.code).toBe(
      'FAILED_PRECONDITION',
    );
    expect((await start({ role: 'primary', syncid: 5 })).error.code).toBe('INVALID_ARGUMENT');
    expect((await start({ role: 'master', syncid: 300 })).error.code).toBe('INVALID_ARGUMENT');
    expect((await start({ role: 'master', mcastGroup: '10.1.1.1' })).error.code).toBe('INVALID_ARGUMENT');
    expect((await stop('backup')).error.code).toBe('FAILED_PRECONDITION');
    expect((await stop('primary')).error.code).toBe('INVALID_ARGUMENT');
  });

  it('compared every answer (a summary of what differed, if anything)', () => {
    expect(mismatches).toEqual([]);
  });
});

describe('edits that clear a setting', () => {
  // Over gRPC an empty list or an absent message cannot say "clear"; UpdateServiceRequest.clear names
  // the fields that an HTTP PATCH clears with null.
  it('PATCH { schedFlags: [], persistence: null } and UpdateService with clear agree', async () => {
    const key = 'tcp:10.0.0.20:80';
    const service = {
      address: '10.0.0.20',
      port: 80,
      scheduler: 'sh',
      schedFlags: ['sh-port'],
      persistence: { timeout: 60 },
    };
    await both(createService(service));
    const patch = { schedFlags: [], persistence: null };
    const edited = await both({
      http: ['PATCH', svcUrl(key), patch],
      grpc: [A.updateService, { key, patch: {}, clear: ['sched_flags', 'persistence'] }],
      schema: ServiceStatusSchema,
      field: 'service',
    });
    expect(edited).toMatchObject({ schedFlags: [], persistence: null });
  });
});

describe('every HTTP answer of the main routes is its protobuf message in proto3 JSON', () => {
  let base: string;
  const get = async (method: string, path: string, body?: unknown) => {
    const res = await fetchJson(base, method, path, body);
    expect(res.status, `${method} ${path}: ${res.text}`).toBeLessThan(300);
    return res.body;
  };
  const parses = (schema: DescMessage, body: Json, what: string) =>
    expect(() => fromJson(schema, body as JsonValue), `${what} as ${schema.typeName}`).not.toThrow();

  beforeAll(() => {
    base = viaHttp.httpBase;
  });

  it('services, destinations, schedule, connections, batch, timeouts, sysctl, stats, rules, clock, sync', async () => {
    await get('DELETE', '/v1/services');
    parses(
      ServiceStatusSchema,
      await get('POST', '/v1/services', { address: '10.0.0.1', port: 80, persistence: { timeout: 10 } }),
      'POST /v1/services',
    );
    parses(
      ServiceStatusSchema,
      await get('POST', '/v1/services', { protocol: 'udp', address: '10.0.0.1', port: 53, pe: 'sip' }),
      'POST /v1/services (sip)',
    );
    parses(
      DestinationStatusSchema,
      await get('POST', '/v1/services/tcp:10.0.0.1:80/destinations', { address: '10.1.0.1' }),
      'POST destinations',
    );
    parses(
      DestinationStatusSchema,
      await get('PATCH', '/v1/services/tcp:10.0.0.1:80/destinations/10.1.0.1:80', { weight: 2 }),
      'PATCH destination',
    );
    parses(
      ServiceStatusSchema,
      await get('PATCH', '/v1/services/tcp:10.0.0.1:80', { scheduler: 'rr' }),
      'PATCH service',
    );
    parses(ServiceStatusSchema, await get('GET', '/v1/services/tcp:10.0.0.1:80'), 'GET service');
    parses(ListServicesResponseSchema, await get('GET', '/v1/services'), 'GET /v1/services');
    const answer = await get('POST', '/v1/schedule', {
      client: '192.168.1.1:1',
      virtual: '10.0.0.1:80',
      explain: true,
    });
    parses(ScheduleResponseSchema, answer, 'POST /v1/schedule');
    parses(
      ConnectionSchema,
      await get('PATCH', connUrl(answer.connection), { state: 'ESTABLISHED', inBytes: 10 }),
      'PATCH connection',
    );
    parses(
      ReportConnectionsResponseSchema,
      await get('POST', '/v1/connections/batch', {
        updates: [
          { connection: answer.connection, outBytes: 5 },
          { connection: 'nope', close: true },
        ],
      }),
      'POST batch',
    );
    parses(ListConnectionsResponseSchema, await get('GET', '/v1/connections'), 'GET /v1/connections');
    parses(TimeoutsSchema, await get('GET', '/v1/timeouts'), 'GET /v1/timeouts');
    parses(TimeoutsSchema, await get('PUT', '/v1/timeouts', { udp: 30 }), 'PUT /v1/timeouts');
    parses(SysctlSchema, await get('GET', '/v1/sysctl'), 'GET /v1/sysctl');
    parses(SysctlSchema, await get('PATCH', '/v1/sysctl', { sloppy_tcp: 1 }), 'PATCH /v1/sysctl');
    parses(GetStatsResponseSchema, await get('GET', '/v1/stats'), 'GET /v1/stats');
    parses(GetClockResponseSchema, await get('GET', '/v1/clock'), 'GET /v1/clock');
    parses(ListSyncDaemonsResponseSchema, await get('GET', '/v1/sync'), 'GET /v1/sync');
    parses(
      AdvanceClockResponseSchema,
      await get('POST', '/v1/clock/advance', { seconds: 1.5 }),
      'POST /v1/clock/advance',
    );
    const put = await fetchJson(base, 'PUT', '/v1/rules', undefined, {
      raw: '-A -t 10.0.0.9:80 -s rr\n',
      contentType: 'text/plain',
    });
    parses(ReplaceRulesResponseSchema, put.body, 'PUT /v1/rules');
  });
});
