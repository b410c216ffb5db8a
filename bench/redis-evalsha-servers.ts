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
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
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

/** The trivial script every call runs (bench/redis.bench.ts loads the same text for redis-benchmark). */
const TRIVIAL_SCRIPT = 'return ARGV[1]';

const host = process.env.HOST ?? '127.0.0.1';
const httpPort = Number(process.env.HTTP_PORT ?? 0);
const grpcPort = Number(process.env.GRPC_PORT ?? 0);
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
  const service = `tcp:${virtual ?? ''}`;
  return {
    service,
    destination: '10.1.0.3:80',
    forward: 'masq',
    connection: `${service}~${(++answered).toString(36)}t`,
    persistent: false,
    reused: false,
    state: 'SYN_RECV',
  };
}

const app = Fastify({ logger: false });
app.post('/evalsha', async (request) => {
  const body = request.body as { client?: string; virtual?: string };
  return answer(body.client, body.virtual);
});
app.get('/healthz', async () => ({ ok: true }));
app.get('/answered', async () => ({ answered, failed }));

function method<I extends DescMessage, O extends DescMessage>(
  name: string,
  input: I,
  output: O,
): grpc.MethodDefinition<MessageShape<I>, MessageShape<O>> {
  return {
    path: `/ipvs.v1.Scheduler/${name}`,
    requestStream: false,
    responseStream: false,
    requestSerialize: (msg) => Buffer.from(toBinary(input, msg)),
    requestDeserialize: (buf) => fromBinary(input, buf),
    responseSerialize: (msg) => Buffer.from(toBinary(output, msg)),
    responseDeserialize: (buf) => fromBinary(output, buf),
  };
}

const schedule: grpc.handleUnaryCall<ScheduleRequest, ScheduleResponse> = (call, callback) =>
  void answer(call.request.client, call.request.virtual).then(
    (response) => callback(null, create(ScheduleResponseSchema, response)),
    (err: unknown) =>
      callback({ code: grpc.status.UNAVAILABLE, details: `redis: ${(err as Error).message}` }),
  );

const server = new grpc.Server({ 'grpc.max_receive_message_length': 4 << 20 });
server.addService(
  { Schedule: method('Schedule', ScheduleRequestSchema, ScheduleResponseSchema) },
  { Schedule: schedule },
);

await app.listen({ host, port: httpPort });
const boundGrpc = await new Promise<number>((resolve, reject) =>
  server.bindAsync(`${host}:${grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, port) =>
    err ? reject(err) : resolve(port),
  ),
);
const boundHttp = (app.server.address() as { port: number }).port;
process.stdout.write(`EVALSHA_READY ${boundHttp} ${boundGrpc} ${sha}\n`);

const stop = () => {
  server.forceShutdown();
  void app.close().then(() => {
    redis.disconnect();
    process.exit(0);
  });
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
