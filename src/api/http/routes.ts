/** The API routes of API.md, each a one-line call of a shared handler. */
import type { FastifyInstance } from 'fastify';
import { invalid } from '../../domain/errors.js';
import type { ConnectionFilter } from '../../engine/engine.js';
import type { Handlers } from '../handlers.js';

type Params = Record<string, string>;
type Query = Record<string, string | undefined>;

function templatesFilter(value: string | undefined): boolean | undefined {
  if (value === undefined || value === '') return undefined;
  if (value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw invalid('templates', value, 'must be true or false');
}

/** The ScheduleResponse, so the hot route's answer is written by a compiled serializer. */
const SCHEDULE_RESPONSE = {
  type: 'object',
  properties: {
    service: { type: 'string' },
    destination: { type: 'string' },
    forward: { type: 'string' },
    connection: { type: 'string' },
    persistent: { type: 'boolean' },
    template: { type: 'string' },
    reused: { type: 'boolean' },
    state: { type: 'string' },
    explain: { type: 'object', additionalProperties: true },
  },
} as const;

export function registerRoutes(app: FastifyInstance, h: Handlers): void {
  app.post('/v1/services', async (req, reply) => reply.status(201).send(await h.createService(req.body)));
  app.get('/v1/services', () => h.listServices());
  app.delete('/v1/services', async (_req, reply) => {
    await h.clearServices();
    return reply.status(204).send();
  });
  app.get<{ Params: Params }>('/v1/services/:svc', (req) => h.getService(req.params.svc));
  app.patch<{ Params: Params }>('/v1/services/:svc', (req) => h.updateService(req.params.svc, req.body));
  app.delete<{ Params: Params }>('/v1/services/:svc', async (req, reply) => {
    await h.deleteService(req.params.svc);
    return reply.status(204).send();
  });

  app.post<{ Params: Params }>('/v1/services/:svc/destinations', async (req, reply) =>
    reply.status(201).send(await h.createDestination(req.params.svc, req.body)),
  );
  app.patch<{ Params: Params }>('/v1/services/:svc/destinations/:dest', (req) =>
    h.updateDestination(req.params.svc, req.params.dest, req.body),
  );
  app.delete<{ Params: Params }>('/v1/services/:svc/destinations/:dest', async (req, reply) => {
    await h.deleteDestination(req.params.svc, req.params.dest);
    return reply.status(204).send();
  });

  app.post('/v1/schedule', { schema: { response: { 200: SCHEDULE_RESPONSE } } }, (req) =>
    h.schedule(req.body),
  );

  app.post('/v1/connections/batch', (req) => h.reportConnections(req.body));
  app.get<{ Querystring: Query }>('/v1/connections', (req) => {
    const filter: ConnectionFilter = {};
    if (req.query.service) filter.service = req.query.service;
    if (req.query.destination) filter.destination = req.query.destination;
    const templates = templatesFilter(req.query.templates);
    if (templates !== undefined) filter.templates = templates;
    return h.listConnections(filter);
  });
  app.patch<{ Params: Params }>('/v1/connections/:conn', (req) =>
    h.updateConnection(req.params.conn, req.body),
  );
  app.delete<{ Params: Params }>('/v1/connections/:conn', async (req, reply) => {
    await h.closeConnection(req.params.conn);
    return reply.status(204).send();
  });

  app.get('/v1/timeouts', () => h.getTimeouts());
  app.put('/v1/timeouts', (req) => h.setTimeouts(req.body));
  app.get('/v1/sysctl', () => h.getSysctl());
  app.patch('/v1/sysctl', (req) => h.updateSysctl(req.body));

  app.get('/v1/rules', async (_req, reply) =>
    reply.type('text/plain; charset=utf-8').send((await h.getRules()).text),
  );
  app.put('/v1/rules', (req) => h.replaceRules(req.body));

  app.get('/v1/sync', () => h.listSyncDaemons());
  app.put('/v1/sync', async (req, reply) => reply.status(201).send(await h.startSyncDaemon(req.body)));
  app.delete<{ Params: Params }>('/v1/sync/:role', async (req, reply) => {
    await h.stopSyncDaemon(req.params.role);
    return reply.status(204).send();
  });

  app.get('/v1/stats', () => h.getStats());
  app.post<{ Querystring: Query }>('/v1/stats/zero', async (req, reply) => {
    await h.zeroStats(req.query.service || undefined);
    return reply.status(204).send();
  });

  app.get('/v1/clock', () => h.getClock());
  app.post('/v1/clock/advance', (req) => h.advanceClock(req.body));
}
