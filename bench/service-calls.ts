/**
 * The benches' dealings with the service under test (`node --import tsx src/main.ts`) and with their
 * ceiling servers through the APIs: start the service with the bench's wlc service and destinations
 * configured, post JSON, one gRPC Schedule, read the decision counters on /metrics and what changed
 * between two readings, and the ceiling servers' own call counts (GET /answered).
 */
import { fromBinary, toJsonString } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { ScheduleResponseSchema } from '../src/gen/ipvs/v1/scheduler_pb.js';
import { startServer, stopServer, type Server } from './child-processes.js';
import { DESTINATIONS, SERVICE, VIRTUAL } from './grpc-payload.js';

/** The bench service's key in the API (`tcp:10.0.0.1:80`). */
export const SERVICE_KEY = `${SERVICE.protocol}:${VIRTUAL}`;

/** The service's environment: warnings only, the system clock, no token, rules file, Redis or sync. */
const SERVICE_ENV: Record<string, string> = {
  LOG_LEVEL: 'warn',
  IPVS_CLOCK: 'system',
  IPVS_ADMIN_TOKEN: '',
  IPVS_RULES_FILE: '',
  REDIS_URL: '',
  REDIS_CLUSTER_NODES: '',
  SYNC_REDIS_URL: '',
};

/** POST `body` as JSON to the server's HTTP port: the status and the answer's text. */
export async function post(
  server: Server,
  path: string,
  body: unknown,
): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${server.httpPort}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, text: await res.text() };
}

async function configureService(server: Server): Promise<void> {
  const created = await post(server, '/v1/services', SERVICE);
  if (created.status !== 201)
    throw new Error(`POST /v1/services: ${created.status} ${created.text}\n${server.output().slice(-2000)}`);
  for (let i = 1; i <= DESTINATIONS; i++) {
    const dest = { address: `10.1.0.${i}`, port: 80, weight: (i % 5) + 1, forward: 'masq' };
    const added = await post(server, `/v1/services/${encodeURIComponent(SERVICE_KEY)}/destinations`, dest);
    if (added.status !== 201)
      throw new Error(`POST destination: ${added.status} ${added.text}\n${server.output().slice(-2000)}`);
  }
}

/**
 * Starts the service (SERVICE_ENV, then `env` on top, e.g. REDIS_URL) and creates the wlc TCP service
 * with its DESTINATIONS destinations through the API.
 */
export async function startService(
  name: string,
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
): Promise<Server> {
  const server = await startServer(name, 'src/main.ts', { ...SERVICE_ENV, ...env }, nodeArgs);
  try {
    await configureService(server);
  } catch (err) {
    await stopServer(server);
    throw err;
  }
  return server;
}

interface Counters {
  outcomes: Record<string, number>;
  connections: number;
}

/** The service's ipvs_decisions_total by outcome and its tracked connections (active + inactive). */
async function counters(server: Server): Promise<Counters> {
  const text = await (await fetch(`http://127.0.0.1:${server.httpPort}/metrics`)).text();
  const outcomes: Record<string, number> = {};
  for (const m of text.matchAll(/^ipvs_decisions_total\{outcome="([^"]+)"\} (\d+)/gm))
    outcomes[m[1]] = Number(m[2]);
  let connections = 0;
  for (const m of text.matchAll(/^ipvs_destination_(?:active|inactive)_connections\{[^}]*\} (\d+)/gm))
    connections += Number(m[1]);
  return { outcomes, connections };
}

/**
 * What the service counted between two readings, e.g. "scheduled 80123, reused 0"; outcomes other
 * than scheduled and reused are failures (`unexpected`).
 */
function outcomeDelta(before: Counters, after: Counters): { text: string; unexpected: number } {
  const names = new Set([...Object.keys(before.outcomes), ...Object.keys(after.outcomes)]);
  const parts: string[] = [];
  let unexpected = 0;
  for (const name of [...names].sort()) {
    const d = (after.outcomes[name] ?? 0) - (before.outcomes[name] ?? 0);
    if (d === 0) continue;
    parts.push(`${name} ${d}`);
    if (name !== 'scheduled' && name !== 'reused') unexpected += d;
  }
  return { text: parts.join(', ') || 'nothing', unexpected };
}

export interface CountedDecisions {
  /** The outcomes counted since the first reading, e.g. "scheduled 80123, reused 0" ("nothing" if none). */
  text: string;
  /** How many of them are neither scheduled nor reused: failed calls. */
  unexpected: number;
  /** All of them: the calls the service answered in between. */
  total: number;
  /** Tracked connections at the second reading, and how many more than at the first. */
  connections: number;
  connectionsAdded: number;
}

/** Reads the service's counters now; the function it resolves to reads them again and tells what changed. */
export async function countDecisions(server: Server): Promise<() => Promise<CountedDecisions>> {
  const before = await counters(server);
  return async () => {
    const after = await counters(server);
    const sum = (c: Counters) => Object.values(c.outcomes).reduce((a, b) => a + b, 0);
    return {
      ...outcomeDelta(before, after),
      total: sum(after) - sum(before),
      connections: after.connections,
      connectionsAdded: after.connections - before.connections,
    };
  };
}

/** A ceiling server's GET /answered: calls answered so far and calls that failed (both transports). */
export async function ceilingCounts(server: Server): Promise<{ answered: number; failed: number }> {
  const res = await fetch(`http://127.0.0.1:${server.httpPort}/answered`);
  const counts = (await res.json()) as { answered: number; failed?: number };
  return { answered: counts.answered, failed: counts.failed ?? 0 };
}

/** One Schedule over gRPC with the given request bytes: the answer's size and the answer as JSON. */
export function grpcScheduleOnce(
  server: Server,
  request: Uint8Array,
): Promise<{ bytes: number; json: string }> {
  const identity = (b: Buffer) => b;
  const client = new grpc.Client(`127.0.0.1:${server.grpcPort}`, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest<Buffer, Buffer>(
      '/ipvs.v1.Scheduler/Schedule',
      identity,
      identity,
      Buffer.from(request),
      (err, answer) => {
        client.close();
        if (err || !answer) reject(err ?? new Error('no answer'));
        else
          resolve({
            bytes: answer.length,
            json: toJsonString(ScheduleResponseSchema, fromBinary(ScheduleResponseSchema, answer)),
          });
      },
    );
  });
}
