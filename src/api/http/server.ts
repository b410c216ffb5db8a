/**
 * The HTTP/JSON door (fastify): every route of API.md, thin over the shared handlers. One error
 * handler maps domain errors to statuses; framework errors (bad JSON, wrong content type, oversized
 * bodies) become 4xx in the same error shape.
 */
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyReply,
  type FastifyInstance,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import { IpvsError } from '../../domain/errors.js';
import type { AdminToken } from '../auth.js';
import { errorBody, HTTP_STATUS } from '../errors.js';
import type { Handlers } from '../handlers.js';
import { registerObservability } from './observability-routes.js';
import { registerRoutes } from './routes.js';

export interface HttpOptions {
  handlers: Handlers;
  token: AdminToken;
  logger: Logger;
  bodyLimit: number;
}

const READ_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export function buildHttpServer(options: HttpOptions): FastifyInstance {
  let nextId = 0;
  const app: FastifyInstance = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    // No per-request child logger: request lines are off, and errors are logged with the request id.
    childLoggerFactory: (logger) => logger,
    bodyLimit: options.bodyLimit,
    logController: new LogController({ disableRequestLogging: true }),
    requestIdHeader: 'x-request-id',
    genReqId: () => `h${(++nextId).toString(36)}`,
    return503OnClosing: true,
    // Errors fastify raises before routing (a malformed URL, a bad content-type header) keep the API shape.
    frameworkErrors: (err, _request, reply) => {
      void (reply as unknown as FastifyReply)
        .code(400)
        .send({ error: { code: 'INVALID_ARGUMENT', message: `request: ${err.message}` } });
    },
  });

  // Plain JSON.parse: every body is read through strict validators that refuse unknown keys
  // (`__proto__` and `constructor` included), so the prototype-poisoning scan of fastify's default
  // parser would only repeat that work on the hot path.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    if (body === '') return done(null, undefined);
    try {
      done(null, JSON.parse(body as string));
    } catch (err) {
      done(
        Object.assign(new Error(`not valid JSON: ${(err as Error).message}`), { statusCode: 400 }),
        undefined,
      );
    }
  });

  // A request id given by the caller is echoed back for tracing; ours is in every log line.
  app.addHook('onRequest', (request: FastifyRequest, reply, done) => {
    if (request.headers['x-request-id'] !== undefined) reply.header('x-request-id', request.id);
    if (!options.token.enabled || READ_METHODS.has(request.method)) return done();
    try {
      options.token.check(request.headers.authorization);
      done();
    } catch (err) {
      done(err as Error);
    }
  });

  // Per-request lines only when asked for (debug); failures are logged by the error handler.
  if (options.logger.isLevelEnabled('debug')) {
    app.addHook('onResponse', (request, reply, done) => {
      request.log.debug({ method: request.method, url: request.url, status: reply.statusCode }, 'request');
      done();
    });
  }

  app.setErrorHandler((err: FastifyError | IpvsError, request, reply) => {
    if (err instanceof IpvsError) return reply.status(HTTP_STATUS[err.code]).send(errorBody(err));
    const status = (err as FastifyError).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      const message =
        (err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE'
          ? `body: larger than ${options.bodyLimit} bytes`
          : `body: ${err.message}`;
      return reply.status(status).send({ error: { code: 'INVALID_ARGUMENT', message } });
    }
    request.log.error({ err, reqId: request.id, url: request.url }, 'internal error');
    return reply.status(500).send({ error: { code: 'INTERNAL', message: 'internal error' } });
  });

  app.setNotFoundHandler((request, reply) =>
    reply
      .status(404)
      .send({ error: { code: 'NOT_FOUND', message: `route: no route ${request.method} ${request.url}` } }),
  );

  registerRoutes(app, options.handlers);
  registerObservability(app, options.handlers);
  return app;
}
