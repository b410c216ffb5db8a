/**
 * What the benches' ceiling servers (bench/echo-servers.ts, bench/redis-evalsha-servers.ts) have in
 * common: the ipvs.v1.Scheduler method definitions with the service's own messages, (de)serialised by
 * protobuf-es as the service does; an answer of the size and shape of a real ScheduleResponse; and
 * serving fastify + grpc-js on HOST / HTTP_PORT / GRPC_PORT until SIGTERM or SIGINT.
 */
import { fromBinary, toBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import type { FastifyInstance } from 'fastify';

/** One ipvs.v1.Scheduler method (`stream`: bidi streaming, else unary). */
export function schedulerMethod<I extends DescMessage, O extends DescMessage>(
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

/** An answer of the size and shape of the service's for `virtual` (the connection id varies). */
export function scheduleShapedAnswer(virtual: string | undefined, connectionId: string) {
  const service = `tcp:${virtual ?? ''}`;
  return {
    service,
    destination: '10.1.0.3:80',
    forward: 'masq',
    connection: `${service}~${connectionId}`,
    persistent: false,
    reused: false,
    state: 'SYN_RECV',
  };
}

/**
 * Adds GET /healthz to `app`, listens on HOST:HTTP_PORT (fastify) and HOST:GRPC_PORT (grpc-js), then
 * prints `<readyWord> <httpPort> <grpcPort>[ <extra>]`. SIGTERM / SIGINT close both, call `closed`
 * and exit.
 */
export async function serveCeiling(
  app: FastifyInstance,
  server: grpc.Server,
  readyWord: string,
  { extra, closed }: { extra?: string; closed?: () => void } = {},
): Promise<void> {
  const host = process.env.HOST ?? '127.0.0.1';
  const httpPort = Number(process.env.HTTP_PORT ?? 0);
  const grpcPort = Number(process.env.GRPC_PORT ?? 0);
  app.get('/healthz', async () => ({ ok: true }));
  await app.listen({ host, port: httpPort });
  const boundGrpc = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
  const boundHttp = (app.server.address() as { port: number }).port;
  process.stdout.write(`${[readyWord, boundHttp, boundGrpc, ...(extra ? [extra] : [])].join(' ')}\n`);

  const stop = () => {
    server.forceShutdown();
    void app.close().then(() => {
      closed?.();
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
