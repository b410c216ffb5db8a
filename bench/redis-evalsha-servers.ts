/**
 * The ceiling for bench/redis.bench.ts: the same fastify and grpc-js the service uses, each call doing
 * exactly one EVALSHA of a trivial script (`return ARGV[1]`, ARGV[1] = the request's client) through
 * one ioredis client made with the redis engine's own options (src/engine/redis/client.ts
 * `failFastOptions`), then answering a message shaped like a real ScheduleResponse.
 *
 * - HTTP (HTTP_PORT): POST /evalsha, JSON in (a ScheduleRequest), ScheduleResponse-like JSON out,
 *   logging off, no hooks; GET /healthz; GET /answered (calls answered so far and calls whose
 *   EVALSHA failed, both transports).
 * - gRPC (GRPC_PORT): ipvs.v1.Scheduler/Schedule (unary) with the service's own messages,
 *   (de)serialised by protobuf-es as the service does.
 *
 * Run as a child process: `REDIS_URL=redis://… node --import tsx bench/redis-evalsha-servers.ts`;
 * SIGTERM stops it. Prints `EVALSHA_READY <httpPort> <grpcPort> <sha>` once both listen.
 */
import { create } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { failFastOptions } from '../src/engine/redis/client.js';
import {
  ScheduleRequestSchema,
  ScheduleResponseSchema,
  type ScheduleRequest,
  type ScheduleResponse,
} from '../src/gen/ipvs/v1/scheduler_pb.js';
import { scheduleShapedAnswer, schedulerMethod, serveCeiling } from './ceiling-server.js';

/** The trivial script every call runs (bench/redis.bench.ts loads the same text for redis-benchmark). */
const TRIVIAL_SCRIPT = 'return ARGV[1]';

const redisUrl = process.env.REDIS_URL;
if (!redisUrl) throw new Error('bench/redis-evalsha-servers.ts: REDIS_URL is required');

const redis = new Redis(redisUrl, failFastOptions());
await new Promise<void>((resolve, reject) => {
  redis.once('ready', resolve);
  redis.once('error', reject);
});
const sha = String(await redis.script('LOAD', TRIVIAL_SCRIPT));

let answered = 0;
/** Calls whose EVALSHA failed (answered 500 / UNAVAILABLE). */
let failed = 0;

/** One EVALSHA, then an answer of the size and shape of the service's. */
async function answer(client: string | undefined, virtual: string | undefined) {
  let echoed: unknown;
  try {
    echoed = await redis.evalsha(sha, 0, client ?? '');
  } catch (err) {
    failed++;
    throw err;
  }
  if (echoed !== (client ?? '')) {
    failed++;
    throw new Error(`EVALSHA answered ${String(echoed)}`);
  }
  return scheduleShapedAnswer(virtual, `${(++answered).toString(36)}t`);
}

const app = Fastify({ logger: false });
app.post('/evalsha', async (request) => {
  const body = request.body as { client?: string; virtual?: string };
  return answer(body.client, body.virtual);
});
app.get('/answered', async () => ({ answered, failed }));

const schedule: grpc.handleUnaryCall<ScheduleRequest, ScheduleResponse> = (call, callback) =>
  void answer(call.request.client, call.request.virtual).then(
    (response) => callback(null, create(ScheduleResponseSchema, response)),
    (err: unknown) =>
      callback({ code: grpc.status.UNAVAILABLE, details: `redis: ${(err as Error).message}` }),
  );

const server = new grpc.Server({ 'grpc.max_receive_message_length': 4 << 20 });
server.addService(
  { Schedule: schedulerMethod('Schedule', ScheduleRequestSchema, ScheduleResponseSchema, false) },
  { Schedule: schedule },
);

await serveCeiling(app, server, 'EVALSHA_READY', { extra: sha, closed: () => redis.disconnect() });
