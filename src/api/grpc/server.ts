/**
 * The gRPC door: ipvs.v1.Scheduler, ipvs.v1.Admin and ipvs.v1.Stats over the shared handlers, plus
 * grpc.health.v1.Health and server reflection (grpcurl works without proto files).
 */
import { fileURLToPath } from 'node:url';
import type { DescMethod, DescService } from '@bufbuild/protobuf';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation } from 'grpc-health-check';
import type { Logger } from 'pino';
import { IpvsError } from '../../domain/errors.js';
import { Admin } from '../../gen/ipvs/v1/admin_pb.js';
import { Scheduler } from '../../gen/ipvs/v1/scheduler_pb.js';
import { Stats } from '../../gen/ipvs/v1/stats_pb.js';
import type { AdminToken } from '../auth.js';
import { GRPC_STATUS } from '../errors.js';
import type { Handlers } from '../handlers.js';
import { requestJson, responseMessage, serviceDefinition } from './codec.js';
import { unaryHandlers, type UnaryHandler } from './methods.js';

export interface GrpcOptions {
  handlers: Handlers;
  token: AdminToken;
  logger: Logger;
}

const PROTO_ROOT = fileURLToPath(new URL('../../../proto', import.meta.url));
export const SERVICE_NAMES = [Scheduler.typeName, Admin.typeName, Stats.typeName];

/** Reads change nothing and need no token. */
const isRead = (method: DescMethod) => /^(Get|List|Watch)/.test(method.name);

export function toServiceError(err: unknown, logger: Logger): grpc.ServiceError {
  if (err instanceof IpvsError) {
    return Object.assign(new Error(err.message), {
      code: GRPC_STATUS[err.code],
      details: err.message,
      metadata: new grpc.Metadata(),
    });
  }
  logger.error({ err }, 'internal error');
  return Object.assign(new Error('internal error'), {
    code: grpc.status.INTERNAL,
    details: 'internal error',
    metadata: new grpc.Metadata(),
  });
}

export class GrpcServer {
  readonly server = new grpc.Server({ 'grpc.max_receive_message_length': 4 << 20 });
  readonly health = new HealthImplementation({ '': 'SERVING' });

  constructor(private readonly options: GrpcOptions) {
    const unary = unaryHandlers(options.handlers);
    for (const desc of [Scheduler, Admin, Stats] as DescService[]) {
      const impl: grpc.UntypedServiceImplementation = {};
      for (const method of desc.methods) {
        if (method.methodKind === 'unary') impl[method.name] = this.unary(method, unary[method.name]);
      }
      impl.ScheduleStream ??= this.scheduleStream();
      impl.WatchStats ??= this.watchStats();
      this.server.addService(serviceDefinition(desc), impl);
      this.health.setStatus(desc.typeName, 'SERVING');
    }
    this.health.addToServer(this.server);
    const definitions = loadSync(['ipvs/v1/scheduler.proto', 'ipvs/v1/admin.proto', 'ipvs/v1/stats.proto'], {
      includeDirs: [PROTO_ROOT],
    });
    new ReflectionService(definitions).addToServer(this.server);
  }

  private authorise(method: DescMethod, metadata: grpc.Metadata): void {
    if (isRead(method)) return;
    const values = metadata.get('authorization');
    this.options.token.check(values.length > 0 ? String(values[0]) : undefined);
  }

  private unary(
    method: DescMethod,
    handler: UnaryHandler | undefined,
  ): grpc.handleUnaryCall<unknown, unknown> {
    if (!handler) throw new Error(`no handler for ${method.name}`);
    return (call, callback) => {
      const fail = (err: unknown) => callback(toServiceError(err, this.options.logger));
      try {
        this.authorise(method, call.metadata);
        handler(requestJson(method, call.request)).then((answer) => {
          let message: unknown;
          try {
            message = responseMessage(method.output, answer ?? {});
          } catch (err) {
            return fail(err);
          }
          callback(null, message);
        }, fail);
      } catch (err) {
        fail(err);
      }
    };
  }

  private scheduleStream(): grpc.handleBidiStreamingCall<unknown, unknown> {
    const method = Scheduler.method.scheduleStream;
    return (call) => {
      try {
        this.authorise(method, call.metadata);
      } catch (err) {
        call.emit('error', toServiceError(err, this.options.logger));
        return;
      }
      call.on('data', (message: unknown) => {
        const json = requestJson(method, message) as { tag?: string; request?: unknown };
        const tag = json.tag ?? '';
        this.options.handlers.schedule(json.request ?? {}).then(
          (response) => call.write(responseMessage(method.output, { tag, response })),
          (err) => {
            if (!(err instanceof IpvsError)) this.options.logger.error({ err }, 'internal error');
            const error =
              err instanceof IpvsError
                ? { code: err.code, message: err.message }
                : { code: 'INTERNAL', message: 'internal error' };
            call.write(responseMessage(method.output, { tag, error }));
          },
        );
      });
      call.on('end', () => call.end());
    };
  }

  private watchStats(): grpc.handleServerStreamingCall<unknown, unknown> {
    const method = Stats.method.watchStats;
    return (call) => {
      const json = requestJson(method, call.request) as { intervalMs?: number };
      const interval = Math.max(100, json.intervalMs ?? 2000);
      const send = () =>
        this.options.handlers.getStats().then(
          (stats) => call.write(responseMessage(method.output, { stats })),
          (err) => call.destroy(toServiceError(err, this.options.logger)),
        );
      void send();
      const timer = setInterval(send, interval);
      call.on('cancelled', () => clearInterval(timer));
      call.on('close', () => clearInterval(timer));
    };
  }

  listen(host: string, port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
      this.server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, bound) =>
        err ? reject(err) : resolve(bound),
      );
    });
  }

  /** Stops taking calls and lets in-flight ones finish (forced after `graceMs`). */
  close(graceMs = 5000): Promise<void> {
    for (const name of ['', ...SERVICE_NAMES]) this.health.setStatus(name, 'NOT_SERVING');
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
}
