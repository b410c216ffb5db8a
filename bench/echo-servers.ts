/**
 * The ceiling for bench/api.bench.ts: the same fastify and grpc-js the service uses, doing nothing but
 * decode the request and answer a message shaped like a real ScheduleResponse.
 *
 * - HTTP (HTTP_PORT): POST /echo, JSON in, a ScheduleResponse-like JSON out, logging off, no hooks.
 * - gRPC (GRPC_PORT): ipvs.v1.Scheduler/Schedule (unary) and ipvs.v1.Scheduler/ScheduleStream (bidi)
 *   with the service's own messages, (de)serialised by protobuf-es `fromBinary`/`toBinary` as the
 *   service does.
 *
 * Run as a child process: `node --import tsx bench/echo-servers.ts`; SIGTERM stops it.
 */
import { create, fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import Fastify from 'fastify';
import {
  ScheduleRequestSchema,
  ScheduleResponseSchema,
  ScheduleStreamRequestSchema,
  ScheduleStreamResponseSchema,
  type ScheduleRequest,
  type ScheduleResponse,
  type ScheduleStreamRequest,
  type ScheduleStreamResponse,
} from '../src/gen/ipvs/v1/scheduler_pb.js';

const host = process.env.HOST ?? '127.0.0.1';
const httpPort = Number(process.env.HTTP_PORT ?? 0);
const grpcPort = Number(process.env.GRPC_PORT ?? 0);

let answered = 0;

/** An answer of the size and shape of the service's (same field values but the counter). */
function answer(virtual: string | undefined): {
  service: string;
  destination: string;
  forward: string;
  connection: string;
  persistent: boolean;
  reused: boolean;
  state: string;
} {
  const service = `tcp:${virtual ?? ''}`;
  return {
    service,
    destination: '10.1.0.3:80',
    forward: 'masq',
    connection: `${service}~${++answered}`,
    persistent: false,
    reused: false,
    state: 'SYN_RECV',
  };
}

const app = Fastify({ logger: false });
app.post('/echo', async (request) => answer((request.body as { virtual?: string }).virtual));
app.get('/healthz', async () => ({ ok: true }));
/** Calls answered so far (both transports), for per-call profile figures. */
app.get('/answered', async () => ({ answered }));

function method<I extends DescMessage, O extends DescMessage>(
  name: string,
  input: I,
  output: O,
  stream: boolean,
): grpc.MethodDefinition<MessageShape<I>, MessageShape<O>> {
  return {
    path: `/ipvs.v1.Scheduler/${name}`,
    requestStream: stream,
    responseStream: stream,
    requestSerialize: (msg) => Buffer.from(toBinary(input, msg)),
    requestDeserialize: (buf) => fromBinary(input, buf),
    responseSerialize: (msg) => Buffer.from(toBinary(output, msg)),
    responseDeserialize: (buf) => fromBinary(output, buf),
  };
}

const definition = {
  Schedule: method('Schedule', ScheduleRequestSchema, ScheduleResponseSchema, false),
  ScheduleStream: method('ScheduleStream', ScheduleStreamRequestSchema, ScheduleStreamResponseSchema, true),
};

/**
 * Answered in a microtask, as an async handler would: for grpc-js unary calls under h2load that costs
 * ~5-10% less server CPU per call than calling back inside the message callback (measured), so it is
 * the higher ceiling. The bidi echo answers synchronously (no measurable difference there).
 */
const schedule: grpc.handleUnaryCall<ScheduleRequest, ScheduleResponse> = (call, callback) =>
  void Promise.resolve(call.request).then((request) =>
    callback(null, create(ScheduleResponseSchema, answer(request.virtual))),
  );

const scheduleStream: grpc.handleBidiStreamingCall<ScheduleStreamRequest, ScheduleStreamResponse> = (
  call,
) => {
  call.on('data', (message: ScheduleStreamRequest) =>
    call.write(
      create(ScheduleStreamResponseSchema, {
        tag: message.tag,
        response: answer(message.request?.virtual),
      }),
    ),
  );
  call.on('end', () => call.end());
};

const server = new grpc.Server({ 'grpc.max_receive_message_length': 4 << 20 });
server.addService(definition, { Schedule: schedule, ScheduleStream: scheduleStream });

await app.listen({ host, port: httpPort });
const boundGrpc = await new Promise<number>((resolve, reject) =>
  server.bindAsync(`${host}:${grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, port) =>
    err ? reject(err) : resolve(port),
  ),
);
const boundHttp = (app.server.address() as { port: number }).port;
process.stdout.write(`ECHO_READY ${boundHttp} ${boundGrpc}\n`);

const stop = () => {
  server.forceShutdown();
  void app.close().then(() => process.exit(0));
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
