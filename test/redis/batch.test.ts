/**
 * POST /v1/connections/batch on the redis engine: the items of one service go in one atomic call,
 * applied in order; a batch over two services makes two calls; results come back in request
 * order and equal the memory engine's item by item (ids aside): reports, closes, a close refused
 * for a template that still controls a connection, unknown ids and invalid items.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/engine/clock.js';
import type { BatchResult, BatchUpdate, Engine } from '../../src/engine/engine.js';
import { MemoryEngine } from '../../src/engine/memory/memory-engine.js';
import { RedisEngine } from '../../src/engine/redis/redis-engine.js';
import { usePrivateRedis } from '../helpers/private-redis.js';

const redis = usePrivateRedis();

async function setup(e: Engine): Promise<{ web: string[]; tls: string[]; template: string }> {
  await e.addService({ address: '10.0.0.1', port: 80, scheduler: 'wlc' });
  await e.addDestination('tcp:10.0.0.1:80', { address: '10.1.0.1' });
  await e.addDestination('tcp:10.0.0.1:80', { address: '10.1.0.2' });
  await e.addService({ address: '10.0.0.1', port: 443, scheduler: 'rr', persistence: { timeout: 300 } });
  await e.addDestination('tcp:10.0.0.1:443', { address: '10.1.0.1' });
  const web: string[] = [];
  for (let i = 0; i < 3; i++) {
    web.push((await e.schedule({ client: `192.168.0.${i}:4000`, virtual: '10.0.0.1:80' })).connection);
  }
  const t = await e.schedule({ client: '192.168.1.1:5000', virtual: '10.0.0.1:443' });
  return { web, tls: [t.connection], template: t.template! };
}

/** The request as ids of each engine: W0.. web connections, T0 tls, TPL the template. */
function batchOf(ids: { web: string[]; tls: string[]; template: string }, service80: string): BatchUpdate[] {
  return [
    { connection: ids.web[0], event: { direction: 'in', flag: 'ack' }, inBytes: 100 },
    { connection: ids.tls[0], state: 'ESTABLISHED' },
    { connection: ids.web[0], event: { direction: 'in', flag: 'fin' } },
    { connection: ids.template, close: true }, // refused: it controls the tls connection
    { connection: ids.web[1], close: true },
    { connection: ids.web[1], state: 'ESTABLISHED' }, // closed by the item before: NOT_FOUND
    { connection: `${service80}~9zt.t|192.168.9.9:1|`, state: 'CLOSE' }, // never existed
    { connection: ids.web[2], state: 'NOT_A_STATE' }, // invalid
    { connection: ids.tls[0], close: true },
    { connection: ids.template, close: true }, // now it may go
  ];
}

function comparable(r: BatchResult[]): unknown {
  return r.map((x) =>
    x.ok
      ? { ok: true, state: x.result?.state, destination: x.result?.destination, dropped: x.result?.dropped }
      : { ok: false, code: x.error.code },
  );
}

const codeOf = (x: BatchResult) => (x.ok ? undefined : x.error.code);

describe('batch on the redis engine', () => {
  it('applies each service group in order and answers as the memory engine, item by item', async () => {
    const mem = new MemoryEngine({ clock: new ManualClock(1_000_000) });
    const red = new RedisEngine({ redis: redis.client, clock: new ManualClock(1_000_000), prefix: 'batch:' });
    const memIds = await setup(mem);
    const redIds = await setup(red);
    await redis.client.config('RESETSTAT');
    const a = await mem.batch(batchOf(memIds, 'tcp:10.0.0.1:80'));
    const b = await red.batch(batchOf(redIds, 'tcp:10.0.0.1:80'));
    expect(comparable(b)).toEqual(comparable(a));
    expect(b.map((x) => x.connection)).toEqual(batchOf(redIds, 'tcp:10.0.0.1:80').map((x) => x.connection));
    expect(comparable(b)).toContainEqual({ ok: false, code: 'FAILED_PRECONDITION' });
    expect(codeOf(b[5])).toBe('NOT_FOUND');
    expect(codeOf(b[7])).toBe('INVALID_ARGUMENT');
    // one call per service for the items (the invalid item's existence probe is one more)
    const calls = /cmdstat_fcall:calls=(\d+)/.exec(await redis.client.info('commandstats'))?.[1];
    expect(Number(calls)).toBe(3);
    const view = async (e: Engine) =>
      (await e.listServices())
        .map((s) => [
          s.key,
          s.destinations.map((d) => [d.key, d.activeConns, d.inactiveConns, d.persistentConns]),
        ])
        .sort();
    expect(await view(red)).toEqual(await view(mem));
    expect((await red.listConnections()).length).toBe((await mem.listConnections()).length);
    await red.close();
  });
});
