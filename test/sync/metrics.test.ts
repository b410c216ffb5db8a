/** Sync health is exported to Prometheus: one labelled series per daemon role and syncid. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeApp, type TestApp } from '../helpers/api.js';
import { startRedisServer, stopAllRedis, type RedisServer } from '../helpers/redis-server.js';

let redis: RedisServer;
let t: TestApp;

beforeAll(async () => {
  redis = await startRedisServer();
  t = makeApp({ syncRedisUrl: redis.url });
});

afterAll(async () => {
  await t.sync?.close();
  await stopAllRedis();
});

describe('/metrics with sync daemons', () => {
  it('has no sync series while no daemon runs', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.body).not.toContain('ipvs_sync_messages_sent_total');
  });

  it('exports master and backup health with role and syncid labels', async () => {
    for (const role of ['master', 'backup']) {
      const res = await t.app.inject({ method: 'PUT', url: '/v1/sync', payload: { role, syncid: 5 } });
      expect(res.statusCode, res.body).toBe(201);
    }
    const res = await t.app.inject({ method: 'GET', url: '/metrics' });
    expect(res.body).toMatch(/^ipvs_sync_daemon_running\{role="master",syncid="5"\} [01]$/m);
    expect(res.body).toMatch(/^ipvs_sync_daemon_running\{role="backup",syncid="5"\} [01]$/m);
    expect(res.body).toMatch(/^ipvs_sync_messages_sent_total\{role="master",syncid="5"\} \d+$/m);
    expect(res.body).toMatch(/^ipvs_sync_gaps_total\{role="backup",syncid="5"\} 0$/m);
    expect(res.body).toContain('# TYPE ipvs_sync_entries_applied_total counter');
  });
});
