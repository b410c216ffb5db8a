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
import { create } from '@bufbuild/protobuf';
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
import { scheduleShapedAnswer, schedulerMethod, serveCeiling } from './ceiling-server.js';

let answered = 0;

/** An answer of the size and shape of the service's (same field values but the counter). */
const answer = (virtual: string | undefined) => scheduleShapedAnswer(virtual, String(++answered));

const app = Fastify({ logger: false });
app.post('/echo', async (request) => answer((request.body as { virtual?: string }).virtual));
/** Calls answered so far (both transports), for per-call profile figures. */
app.get('/answered', async () => ({ answered }));

const definition = {
  Schedule: schedulerMethod('Schedule', ScheduleRequestSchema, ScheduleResponseSchema, false),
  ScheduleStream: schedulerMethod(
    'ScheduleStream',
    ScheduleStreamRequestSchema,
    ScheduleStreamResponseSchema,
    true,
  ),
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

await serveCeiling(app, server, 'ECHO_READY');
