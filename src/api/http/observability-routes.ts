/** Liveness, readiness, Prometheus metrics and the dashboard page. */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { renderMetrics } from '../../observability/metrics.js';
import type { Handlers } from '../handlers.js';

const dashboard = readFileSync(new URL('../../observability/dashboard.html', import.meta.url), 'utf8');

export function registerObservability(app: FastifyInstance, h: Handlers): void {
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const ready = await h.engine.ready();
    return reply.status(ready ? 200 : 503).send({ ready });
  });
  app.get('/metrics', async (_req, reply) =>
    reply
      .type('text/plain; version=0.0.4')
      .send(await renderMetrics(h.engine, h.decisions, (await h.listSyncDaemons()).daemons)),
  );
  app.get('/', async (_req, reply) => reply.type('text/html; charset=utf-8').send(dashboard));
}
