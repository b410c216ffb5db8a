/**
 * A fleet of three REAL service processes (`node --import tsx src/main.ts`) on one redis-server of
 * this test (REDIS_URL, IPVS_CLOCK=manual: the clock is the fleet's key in Redis and moves only when
 * told), driven over HTTP only:
 *
 *  1. The fleet behaves as one director: a few hundred Schedule calls in flight at once, spread
 *     round-robin over the three replicas, then concurrent closes and state changes, then more
 *     concurrent Schedule calls. wlc with only new connections makes every decision the same
 *     function of the counters, so whatever order Redis ran the calls in, the final counters must
 *     be those of the same operations run one by one through an in-process MemoryEngine (the
 *     reference). Each replica must report exactly them.
 *  2. One replica is SIGKILLed under mixed load (schedules on a plain and a persistent service,
 *     TCP events, explicit states, closes): only calls to that replica fail; on the survivors every
 *     counter agrees with the connection table (active/inactive by TCP state, persistent = live
 *     templates, templates control what they claim), every connection whose answer we hold is there
 *     in the state it was last given, and after the clock is moved past every timeout nothing is
 *     left and every counter is 0.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/engine/clock.js';
import type {
  Connection,
  ConnectionUpdate,
  DestinationStatus,
  ServiceStatus,
} from '../../src/engine/engine.js';
import { MemoryEngine } from '../../src/engine/memory/memory-engine.js';
import { fetchJson, type HttpAnswer } from '../helpers/api.js';
import { startRedisServer, stopAllRedis, type RedisServer } from '../helpers/redis-server.js';
import { startServiceProcess, stopAll, type ServiceProcess } from './service-process.js';

/** TCP states counted in activeConns (ipvs-semantics.md §6.2); every other state is inactive. */
const ACTIVE_STATES = new Set(['ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'SYNACK']);

let redis: RedisServer;
let replicas: ServiceProcess[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
  replicas = await Promise.all(
    [0, 1, 2].map(() => startServiceProcess({ env: { REDIS_URL: redis.url, IPVS_CLOCK: 'manual' } })),
  );
}, 60_000);

afterAll(async () => {
  await stopAll();
  await stopAllRedis();
});

const enc = encodeURIComponent;

/** One HTTP call; a network failure (a killed replica) rejects. */
function call(replica: ServiceProcess, method: string, path: string, body?: unknown): Promise<HttpAnswer> {
  return fetchJson(replica.url, method, path, body);
}

/** The call must answer `status`; the message carries the request and the answer. */
async function must(
  replica: ServiceProcess,
  method: string,
  path: string,
  body: unknown,
  status: number,
): Promise<HttpAnswer> {
  const r = await call(replica, method, path, body);
  if (r.status !== status)
    throw new Error(
      `${method} ${path} ${JSON.stringify(body)} on ${replica.url}: expected ${status}, got ${r.status} ${r.text}`,
    );
  return r;
}

async function getService(replica: ServiceProcess, key: string): Promise<ServiceStatus> {
  return (await must(replica, 'GET', `/v1/services/${enc(key)}`, undefined, 200)).body as ServiceStatus;
}

async function listServices(replica: ServiceProcess): Promise<ServiceStatus[]> {
  return (await must(replica, 'GET', '/v1/services', undefined, 200)).body.services as ServiceStatus[];
}

async function listConnections(replica: ServiceProcess, query = ''): Promise<Connection[]> {
  return (await must(replica, 'GET', `/v1/connections${query}`, undefined, 200)).body
    .connections as Connection[];
}

interface Counters {
  activeConns: number;
  inactiveConns: number;
  persistentConns: number;
  conns: number;
}

/** Per destination key (in kernel list order): the connection counters and the total scheduled. */
function countersOf(service: ServiceStatus): Record<string, Counters> {
  const out: Record<string, Counters> = {};
  for (const d of service.destinations as DestinationStatus[]) {
    out[d.key] = {
      activeConns: d.activeConns,
      inactiveConns: d.inactiveConns,
      persistentConns: d.persistentConns,
      conns: Number(d.stats.conns),
    };
  }
  return out;
}

function histogram(keys: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const k of [...keys].sort()) out[k] = (out[k] ?? 0) + 1;
  return out;
}

/** Small deterministic PRNG (mulberry32) so a failing run can be reproduced. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

async function createService(
  replica: ServiceProcess,
  spec: Record<string, unknown>,
  dests: { address: string; port: number; weight: number }[],
): Promise<string> {
  const created = await must(replica, 'POST', '/v1/services', spec, 201);
  const key = created.body.key as string;
  for (const d of dests) await must(replica, 'POST', `/v1/services/${enc(key)}/destinations`, d, 201);
  return key;
}

describe('a Redis fleet of three replicas', () => {
  it('three replicas behave as one director (wlc exact across the fleet)', async () => {
    const VIP = { protocol: 'tcp', address: '10.0.1.1', port: 80, scheduler: 'wlc' };
    const DESTS = [1, 3, 2, 5, 4].map((weight, i) => ({ address: `10.1.1.${i + 1}`, port: 80, weight }));
    const key = await createService(replicas[0], VIP, DESTS);

    // The reference: one in-process director, the same configuration, operations one by one.
    const ref = new MemoryEngine({ clock: new ManualClock(1_700_000_000_000) });
    await ref.addService(VIP);
    for (const d of DESTS) await ref.addDestination(key, d);

    // Every replica sees the configuration, in the same kernel list order.
    const order = (await ref.getService(key)).destinations.map((d) => d.key);
    for (const r of replicas)
      expect((await getService(r, key)).destinations.map((d) => d.key)).toEqual(order);

    const expectSameCounters = async (phase: string) => {
      const expected = countersOf(await ref.getService(key));
      for (const [i, r] of replicas.entries()) {
        const service = await getService(r, key);
        expect(
          service.destinations.map((d) => d.key),
          `${phase}, replica ${i}`,
        ).toEqual(order);
        expect(countersOf(service), `${phase}, replica ${i}`).toEqual(expected);
        for (const d of service.destinations) {
          const conns = await listConnections(r, `?service=${enc(key)}&destination=${enc(d.key)}`);
          expect(conns.length, `${phase}, replica ${i}, ${d.key}: listed = active + inactive`).toBe(
            d.activeConns + d.inactiveConns,
          );
          expect(conns.filter((c) => ACTIVE_STATES.has(c.state)).length, `${phase} ${d.key}`).toBe(
            d.activeConns,
          );
        }
        const all = await listConnections(r, `?service=${enc(key)}`);
        const total = service.destinations.reduce((n, d) => n + d.activeConns + d.inactiveConns, 0);
        expect(all.length, `${phase}, replica ${i}: connections listed`).toBe(total);
        expect(all.filter((c) => c.template)).toEqual([]);
      }
    };

    // Phase A: 300 new connections, all in flight at once, round-robin over the replicas.
    const A = 300;
    const clientA = (i: number) => `172.16.${i >> 8}.${i & 255}:${20_000 + i}`;
    const fleetA = await Promise.all(
      Array.from({ length: A }, (_, i) =>
        must(
          replicas[i % 3],
          'POST',
          '/v1/schedule',
          { protocol: 'tcp', client: clientA(i), virtual: '10.0.1.1:80' },
          200,
        ),
      ),
    );
    const conns = fleetA.map((r) => ({
      id: r.body.connection as string,
      destination: r.body.destination as string,
      state: r.body.state as string,
    }));
    expect(new Set(conns.map((c) => c.id)).size).toBe(A);
    for (const c of conns) expect(c.state).toBe('SYN_RECV');
    const refA: { id: string; destination: string }[] = [];
    for (let i = 0; i < A; i++) {
      const r = await ref.schedule({ protocol: 'tcp', client: clientA(i), virtual: '10.0.1.1:80' });
      refA.push({ id: r.connection, destination: r.destination });
    }
    expect(histogram(conns.map((c) => c.destination))).toEqual(histogram(refA.map((c) => c.destination)));
    await expectSameCounters('after 300 concurrent schedules');

    // Phase B: closes and state changes on distinct connections, all at once, each sent to another
    // replica than the one that scheduled it. On distinct connections they commute; the reference
    // applies the same operation to one of its own connections bound to the same destination.
    const opFor = (i: number): ConnectionUpdate | 'close' | undefined =>
      [
        'close' as const,
        { event: { direction: 'in' as const, flag: 'fin' as const } }, // SYN_RECV -> TIME_WAIT
        { event: { direction: 'in' as const, flag: 'ack' as const } }, // SYN_RECV -> ESTABLISHED
        { state: 'FIN_WAIT' },
        { event: { direction: 'out' as const, flag: 'rst' as const } }, // SYN_RECV -> CLOSE
        undefined,
      ][i % 6];
    const fleetB = await Promise.all(
      conns.map(async (c, i) => {
        const op = opFor(i);
        const replica = replicas[(i + 1) % 3];
        if (op === undefined) return undefined;
        if (op === 'close') {
          await must(replica, 'DELETE', `/v1/connections/${enc(c.id)}`, undefined, 204);
          return undefined;
        }
        const r = await must(replica, 'PATCH', `/v1/connections/${enc(c.id)}`, op, 200);
        expect(r.body.destination, c.id).toBe(c.destination);
        return r.body.state as string;
      }),
    );
    const spare = new Map<string, string[]>();
    for (const c of refA) spare.set(c.destination, [...(spare.get(c.destination) ?? []), c.id]);
    for (const [i, c] of conns.entries()) {
      const op = opFor(i);
      if (op === undefined) continue;
      const id = spare.get(c.destination)!.shift()!;
      if (op === 'close') await ref.closeConnection(id);
      else
        expect(fleetB[i], `${c.id} ${JSON.stringify(op)}`).toBe((await ref.updateConnection(id, op)).state);
    }
    await expectSameCounters('after concurrent closes and updates');
    // Not trivially balanced: some destinations now hold inactive connections too.
    const mid = await getService(replicas[0], key);
    expect(mid.destinations.some((d) => d.inactiveConns > 0 && d.activeConns > 0)).toBe(true);

    // Phase C: 150 more new connections, all at once, on counters that mix active and inactive.
    const C = 150;
    const clientC = (i: number) => `172.17.${i >> 8}.${i & 255}:${30_000 + i}`;
    const fleetC = await Promise.all(
      Array.from({ length: C }, (_, i) =>
        must(
          replicas[(i + 2) % 3],
          'POST',
          '/v1/schedule',
          { protocol: 'tcp', client: clientC(i), virtual: '10.0.1.1:80' },
          200,
        ),
      ),
    );
    const refC: string[] = [];
    for (let i = 0; i < C; i++)
      refC.push(
        (await ref.schedule({ protocol: 'tcp', client: clientC(i), virtual: '10.0.1.1:80' })).destination,
      );
    expect(histogram(fleetC.map((r) => r.body.destination as string))).toEqual(histogram(refC));
    await expectSameCounters('after 150 more concurrent schedules');

    const final = countersOf(await getService(replicas[2], key));
    expect(Object.values(final).reduce((n, c) => n + c.conns, 0)).toBe(A + C);
    expect(Object.values(final).reduce((n, c) => n + c.activeConns + c.inactiveConns, 0)).toBe(A + C - A / 6);
  });

  it('SIGKILL a replica in the middle of load keeps the invariants', async () => {
    const plain = await createService(
      replicas[0],
      { protocol: 'tcp', address: '10.0.2.1', port: 80, scheduler: 'wlc' },
      [1, 2, 3, 4].map((weight, i) => ({ address: `10.1.2.${i + 1}`, port: 80, weight })),
    );
    const sticky = await createService(
      replicas[2],
      {
        protocol: 'tcp',
        address: '10.0.3.1',
        port: 443,
        scheduler: 'wlc',
        persistence: { timeout: 300 },
      },
      [1, 1, 2].map((weight, i) => ({ address: `10.1.3.${i + 1}`, port: 443, weight })),
    );
    const STICKY_CLIENTS = 30;

    const VICTIM = 1;
    const victim = replicas[VICTIM];
    const WORKERS = 16;
    const OPS = 100;
    const KILL_AT = 400;

    type Tracked = { service: string; destination: string; state: string };
    interface Failure {
      replica: number;
      afterKill: boolean;
      what: string;
      error: string;
    }
    const failures: Failure[] = [];
    const unexpected: string[] = [];
    const alive = new Map<string, Tracked>(); // answers we hold, last state we were told
    const closed = new Set<string>();
    let done = 0;
    let killed = false;
    let nextReplica = 0;
    let nextPort = 1024;
    let schedules = 0;

    const EVENTS: ConnectionUpdate[] = [
      { event: { direction: 'in', flag: 'ack' } },
      { event: { direction: 'in', flag: 'fin' } },
      { event: { direction: 'out', flag: 'fin' } },
      { event: { direction: 'out', flag: 'ack' } },
      { event: { direction: 'in', flag: 'rst' } },
      { event: { direction: 'in', flag: 'syn' } },
      { state: 'ESTABLISHED' },
      { state: 'CLOSE_WAIT' },
    ];

    const worker = async (w: number) => {
      const rnd = prng(1000 + w);
      const mine: string[] = [];
      for (let n = 0; n < OPS; n++) {
        const index = nextReplica++ % 3;
        const replica = replicas[index];
        const afterKill = killed;
        const roll = rnd();
        let what = '';
        let touches: string | undefined;
        try {
          if (mine.length === 0 || roll < 0.45) {
            const service = rnd() < 0.5 ? plain : sticky;
            const port = nextPort++;
            const client =
              service === plain
                ? `172.20.${w}.${(n % 250) + 1}:${port}`
                : `10.9.0.${1 + Math.floor(rnd() * STICKY_CLIENTS)}:${port}`;
            what = `schedule ${client} on ${service}`;
            const r = await call(replica, 'POST', '/v1/schedule', { protocol: 'tcp', client, service });
            schedules++;
            if (r.status !== 200) unexpected.push(`${what} on replica ${index}: ${r.status} ${r.text}`);
            else {
              alive.set(r.body.connection, {
                service,
                destination: r.body.destination,
                state: r.body.state,
              });
              mine.push(r.body.connection);
            }
          } else {
            const at = Math.floor(rnd() * mine.length);
            const id = mine[at];
            touches = id;
            if (roll < 0.8) {
              const update = EVENTS[Math.floor(rnd() * EVENTS.length)];
              what = `update ${id} ${JSON.stringify(update)}`;
              const r = await call(replica, 'PATCH', `/v1/connections/${enc(id)}`, update);
              if (r.status !== 200) unexpected.push(`${what} on replica ${index}: ${r.status} ${r.text}`);
              else {
                const known = alive.get(id)!;
                if (r.body.destination !== known.destination)
                  unexpected.push(
                    `${what}: destination ${r.body.destination}, scheduled to ${known.destination}`,
                  );
                known.state = r.body.state;
              }
            } else {
              what = `close ${id}`;
              mine.splice(at, 1);
              const r = await call(replica, 'DELETE', `/v1/connections/${enc(id)}`);
              if (r.status !== 204) unexpected.push(`${what} on replica ${index}: ${r.status} ${r.text}`);
              alive.delete(id);
              closed.add(id);
            }
          }
        } catch (err) {
          // The call may or may not have reached Redis: its connection's state is unknown now.
          failures.push({ replica: index, afterKill, what, error: String(err) });
          if (touches !== undefined) {
            alive.delete(touches);
            const at = mine.indexOf(touches);
            if (at >= 0) mine.splice(at, 1);
          }
        }
        done++;
        if (!killed && done >= KILL_AT) {
          killed = true;
          process.kill(victim.pid, 'SIGKILL');
        }
      }
    };
    await Promise.all(Array.from({ length: WORKERS }, (_, w) => worker(w)));

    expect(killed).toBe(true);
    expect(unexpected).toEqual([]);
    // Only the killed replica failed, and calls sent to it after the kill all did.
    expect(failures.filter((f) => f.replica !== VICTIM)).toEqual([]);
    const sentToVictimAfterKill = failures.filter((f) => f.afterKill).length;
    expect(sentToVictimAfterKill).toBeGreaterThan(100);
    expect(schedules).toBeGreaterThan(300);
    const survivors = replicas.filter((_, i) => i !== VICTIM);

    // The survivors see one and the same state.
    const views = await Promise.all(
      survivors.map(async (r) => ({
        services: await listServices(r),
        connections: (await listConnections(r)).sort((a, b) => a.id.localeCompare(b.id)),
      })),
    );
    expect(views[1]).toEqual(views[0]);
    const { services, connections } = views[0];
    expect(services.map((s) => s.key).sort()).toEqual(['tcp:10.0.1.1:80', plain, sticky].sort());

    const byId = new Map(connections.map((c) => [c.id, c]));
    for (const s of services) {
      const destKeys = new Set(s.destinations.map((d) => d.key));
      const mineS = connections.filter((c) => c.service === s.key);
      for (const c of mineS)
        expect(destKeys.has(c.destination), `${c.id} bound to ${c.destination}`).toBe(true);
      for (const d of s.destinations) {
        const bound = mineS.filter((c) => c.destination === d.key);
        const live = bound.filter((c) => !c.template);
        const where = `${s.key} ${d.key}`;
        expect(d.activeConns, where).toBeGreaterThanOrEqual(0);
        expect(d.inactiveConns, where).toBeGreaterThanOrEqual(0);
        expect(d.persistentConns, where).toBeGreaterThanOrEqual(0);
        expect(d.activeConns + d.inactiveConns, `${where}: active + inactive = live connections`).toBe(
          live.length,
        );
        expect(d.activeConns, `${where}: active = connections in an active state`).toBe(
          live.filter((c) => ACTIVE_STATES.has(c.state)).length,
        );
        expect(d.persistentConns, `${where}: persistent = live templates`).toBe(
          bound.filter((c) => c.template).length,
        );
      }
    }

    // Persistence: every sticky connection is controlled by a live template of its client, bound to
    // the same destination, and every template's count of controlled connections is right.
    const stickyConns = connections.filter((c) => c.service === sticky && !c.template);
    const templates = connections.filter((c) => c.service === sticky && c.template);
    expect(stickyConns.length).toBeGreaterThan(20);
    expect(templates.length).toBeGreaterThan(0);
    expect(templates.length).toBeLessThanOrEqual(STICKY_CLIENTS);
    expect(new Set(templates.map((t) => t.client)).size).toBe(templates.length);
    for (const c of stickyConns) {
      const t = byId.get(c.controlledBy ?? '');
      expect(t, `${c.id} controlled by ${c.controlledBy}`).toBeDefined();
      expect(t!.template).toBe(true);
      expect(t!.destination, c.id).toBe(c.destination);
      expect(t!.client, c.id).toBe(`${c.client.split(':')[0]}:0`);
    }
    for (const t of templates)
      expect(t.controls ?? 0, t.id).toBe(stickyConns.filter((c) => c.controlledBy === t.id).length);
    for (const c of connections.filter((c) => c.service !== sticky)) {
      expect(c.template, c.id).toBe(false);
      expect(c.controlledBy, c.id).toBeUndefined();
    }

    // Every connection whose last answer we hold is there, as we last left it; closed ones are gone.
    expect(alive.size).toBeGreaterThan(50);
    for (const [id, t] of alive) {
      const c = byId.get(id);
      expect(c, `${id} (${JSON.stringify(t)}) is listed`).toBeDefined();
      expect({ service: c!.service, destination: c!.destination, state: c!.state }, id).toEqual(t);
    }
    for (const id of closed) expect(byId.has(id), `${id} was closed`).toBe(false);

    // Far past every timeout (TCP 900 s at most, templates 300 s + 60 s re-arms): nothing left.
    const before = (await must(survivors[0], 'GET', '/v1/clock', undefined, 200)).body.nowMs as number;
    const advanced = await must(survivors[0], 'POST', '/v1/clock/advance', { seconds: 86_400 }, 200);
    expect(advanced.body.nowMs).toBe(before + 86_400_000);
    for (const r of survivors) {
      expect((await must(r, 'GET', '/v1/clock', undefined, 200)).body.nowMs).toBe(before + 86_400_000);
      expect(await listConnections(r)).toEqual([]);
      for (const s of await listServices(r))
        for (const d of s.destinations)
          expect(
            { active: d.activeConns, inactive: d.inactiveConns, persistent: d.persistentConns },
            `${s.key} ${d.key}`,
          ).toEqual({ active: 0, inactive: 0, persistent: 0 });
    }
  });
});
