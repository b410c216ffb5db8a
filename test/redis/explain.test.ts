/**
 * `explain: true` on the redis engine gives the memory engine's explanation: the same lookup,
 * template and existing-entry verdicts, and the same candidates described by the scheduler
 * module's own `describe` (metric, skip reason) over the list as the decision saw it. Only the
 * free-form notes a memory-engine scheduler writes while deciding are absent (documented).
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/engine/clock.js';
import type { Engine, ScheduleRequest, ScheduleResponse } from '../../src/engine/engine.js';
import { MemoryEngine } from '../../src/engine/memory/memory-engine.js';
import { SCHEDULER_NAMES } from '../../src/schedulers/registry.js';
import { RedisEngine } from '../../src/engine/redis/redis-engine.js';
import { seededRandomInt } from '../property/ops.js';
import { usePrivateRedis } from '../helpers/private-redis.js';

const redis = usePrivateRedis();

async function both(
  n: number,
  setup: (e: Engine) => Promise<unknown>,
): Promise<{ mem: MemoryEngine; red: RedisEngine }> {
  const mem = new MemoryEngine({ clock: new ManualClock(1_000_000), randomInt: seededRandomInt(n) });
  const red = new RedisEngine({
    redis: redis.client,
    clock: new ManualClock(1_000_000),
    prefix: `explain${n}:`,
    randomInt: seededRandomInt(n),
  });
  await setup(mem);
  await setup(red);
  return { mem, red };
}

function withoutNotes(r: ScheduleResponse): unknown {
  const { explain, connection: _c, template: _t, ...rest } = r;
  expect(explain).toBeDefined();
  return { ...rest, explain: { ...explain!, notes: [] } };
}

/**
 * The same request to both engines with `explain`: equal answers and explanations (notes aside),
 * or the same error code from both (sh/mh refuse a client whose slot is quiesced): then null.
 */
async function same(mem: Engine, red: Engine, req: ScheduleRequest): Promise<ScheduleResponse | null> {
  let a: ScheduleResponse;
  try {
    a = await mem.schedule({ ...req, explain: true });
  } catch (err) {
    await expect(red.schedule({ ...req, explain: true })).rejects.toMatchObject({
      code: (err as { code: string }).code,
    });
    return null;
  }
  const b = await red.schedule({ ...req, explain: true });
  expect(withoutNotes(b)).toEqual(withoutNotes(a));
  return b;
}

async function explained(mem: Engine, red: Engine, req: ScheduleRequest): Promise<ScheduleResponse> {
  const r = await same(mem, red, req);
  expect(r).not.toBeNull();
  return r!;
}

describe('explain on the redis engine', () => {
  for (const [n, scheduler] of SCHEDULER_NAMES.entries()) {
    it(`${scheduler}: the same candidates, metrics and skip reasons as the memory engine`, async () => {
      const { mem, red } = await both(n, async (e) => {
        await e.addService({ address: '10.0.0.1', port: 80, scheduler });
        await e.addDestination('tcp:10.0.0.1:80', { address: '10.1.0.1', weight: 3 });
        await e.addDestination('tcp:10.0.0.1:80', { address: '10.1.0.2', weight: 0 });
        await e.addDestination('tcp:10.0.0.1:80', { address: '10.1.0.3', weight: 2, upperThreshold: 1 });
        await e.addDestination('tcp:10.0.0.1:80', { address: '10.1.0.4', weight: 1 });
      });
      let explained = 0;
      for (let i = 0; i < 8; i++) {
        const r = await same(mem, red, {
          client: `192.168.${i}.${i * 7}:${4000 + i}`,
          virtual: '10.0.0.1:80',
        });
        if (!r) continue;
        explained++;
        expect(r.explain!.candidates).toHaveLength(4);
        expect(r.explain!.existing).toBe('none');
      }
      expect(explained).toBeGreaterThanOrEqual(3);
      await red.close();
    });
  }

  it('existing entries (followed, rescheduled) and templates (miss, hit, invalid), lookup by key', async () => {
    const { mem, red } = await both(99, async (e) => {
      await e.addService({ address: '10.0.0.1', port: 80, scheduler: 'wlc' });
      await e.addDestination('tcp:10.0.0.1:80', { address: '10.1.0.1' });
      await e.addDestination('tcp:10.0.0.1:80', { address: '10.1.0.2' });
      await e.addService({ address: '10.0.0.1', port: 443, scheduler: 'rr', persistence: { timeout: 300 } });
      await e.addDestination('tcp:10.0.0.1:443', { address: '10.1.0.1' });
      await e.addDestination('tcp:10.0.0.1:443', { address: '10.1.0.2' });
    });
    const pkt = { client: '192.168.1.1:5000', virtual: '10.0.0.1:80' };
    expect((await explained(mem, red, pkt)).explain).toMatchObject({ existing: 'none', lookup: 'exact' });
    expect((await explained(mem, red, pkt)).explain).toMatchObject({ existing: 'followed' });
    for (const e of [mem, red]) {
      const id = (await e.listConnections({ service: 'tcp:10.0.0.1:80' }))[0].id;
      await e.updateConnection(id, { state: 'TIME_WAIT' });
    }
    expect((await explained(mem, red, pkt)).explain).toMatchObject({ existing: 'rescheduled' });
    const tls = { client: '192.168.1.1:6000', virtual: '10.0.0.1:443' };
    expect((await explained(mem, red, tls)).explain).toMatchObject({ template: 'miss' });
    const hit = await explained(mem, red, { ...tls, client: '192.168.1.1:6001' });
    expect(hit.explain).toMatchObject({ template: 'hit' });
    for (const e of [mem, red]) await e.editDestination('tcp:10.0.0.1:443', hit.destination, { weight: 0 });
    for (const e of [mem, red]) await e.setSysctl({ expire_quiescent_template: 1 });
    expect((await explained(mem, red, { ...tls, client: '192.168.1.1:6002' })).explain).toMatchObject({
      template: 'invalid',
    });
    const byKey = await explained(mem, red, { service: 'tcp:10.0.0.1:80', client: '192.168.2.2:7000' });
    expect(byKey.explain!.lookup).toBe('by key');
    await red.close();
  });
});
