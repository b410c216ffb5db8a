/**
 * The rate estimator (§1.4): every 2 s, rate += (Δ·2^k − rate)/4 in scaled integers, read back
 * rounded. Checked through the engine's stats with a manual clock.
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/engine/clock.js';
import { MemoryEngine } from '../../src/engine/memory/memory-engine.js';

async function engineWithTraffic(connections: number) {
  const clock = new ManualClock(1_000_000);
  const engine = new MemoryEngine({ clock });
  await engine.addService({ protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler: 'rr' });
  await engine.addDestination('tcp:10.0.0.1:80', { address: '10.1.0.1', port: 80 });
  for (let i = 0; i < connections; i++) {
    const r = await engine.schedule({
      protocol: 'tcp',
      client: `192.168.0.1:${10000 + i}`,
      virtual: '10.0.0.1:80',
    });
    await engine.updateConnection(r.connection, { inPackets: 10, inBytes: 1000 });
  }
  return { clock, engine };
}

describe('rate estimator', () => {
  it('moves a quarter of the way to the last period each 2 s, scaled as the kernel scales it', async () => {
    const { clock, engine } = await engineWithTraffic(100);
    clock.advance(2000);
    let stats = (await engine.getStats()).total;
    // est_cps = (100 << 9) / 4 = 12800 → (12800 + 511) >> 10 = 12 connections per second
    expect(stats.cps).toBe(12);
    // est_inpps = (1000 << 9) / 4 = 128000 → 125; est_inbps = (100000 << 4) / 4 = 400000 → (400000 + 15) >> 5 = 12500
    expect(stats.inPps).toBe(125);
    expect(stats.inBps).toBe(12500);
    clock.advance(2000); // an idle period: est_cps = 12800 + floor(-12800 / 4) = 9600 → 9
    stats = (await engine.getStats()).total;
    expect(stats.cps).toBe(9);
    const svc = (await engine.getStats()).services[0];
    expect(svc.stats.cps).toBe(9);
    expect(svc.destinations[0].stats.cps).toBe(9);
  });

  it('decays to exactly zero after the clock jumps a year (15.7 million idle periods)', async () => {
    const { clock, engine } = await engineWithTraffic(50);
    clock.advance(2000);
    expect((await engine.getStats()).total.cps).toBeGreaterThan(0);
    clock.advance(365 * 86400 * 1000);
    const stats = (await engine.getStats()).total;
    expect([stats.cps, stats.inPps, stats.inBps]).toEqual([0, 0, 0]);
    expect(stats.conns).toBe(50);
  });

  it('zeroing (ipvsadm -Z) resets counters and rates', async () => {
    const { clock, engine } = await engineWithTraffic(20);
    clock.advance(2000);
    await engine.zeroStats();
    const stats = (await engine.getStats()).total;
    expect([stats.conns, stats.inPkts, stats.inBytes, stats.cps]).toEqual([0, 0, 0, 0]);
  });
});
