/**
 * Comparing targets under the same load on a shared box: a warm-up run each, then the measured time
 * cut in slices that alternate between the targets, so a noisy neighbour hurts every side alike.
 *
 * Environment: BENCH_SECONDS (measured time per target, default 8), BENCH_WARMUP_SECONDS (default 2),
 * BENCH_SLICES (default 4).
 */
import type { Measurement } from './load-generators.js';

export const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
export const WARMUP_SECONDS = Number(process.env.BENCH_WARMUP_SECONDS ?? 2);
export const SLICES = Number(process.env.BENCH_SLICES ?? 4);

/** A table row: one door's measurement against its ceiling's, or why there is none. */
export interface ComparisonRow {
  door: string;
  ceiling?: Measurement;
  ours?: Measurement;
  /** Shown instead of numbers when the door was skipped or failed. */
  skipped?: string;
}

/** One run of a target's load for the given seconds. */
export type Load = (seconds: number) => Promise<Measurement>;

/**
 * Measures several targets under the same load: one warm-up run each (discarded), then SLICES rounds
 * of SECONDS / SLICES each, the targets in turn (order reversed every other round), so background
 * noise on a shared box hits every target alike. Rates add up over the slices; latency percentiles
 * and CPU are the mean of the slices'. `measuring` is called once the warm-ups are done.
 */
export async function compareInSlices(
  loads: Load[],
  measuring?: () => Promise<void>,
): Promise<Measurement[]> {
  for (const load of loads) await load(WARMUP_SECONDS);
  await measuring?.();
  const slices: Measurement[][] = loads.map(() => []);
  for (let round = 0; round < SLICES; round++) {
    const order = loads.map((_, i) => i);
    if (round % 2 === 1) order.reverse();
    for (const i of order) slices[i].push(await loads[i](SECONDS / SLICES));
  }
  const mean = (ms: Measurement[], f: (m: Measurement) => number) =>
    ms.reduce((sum, m) => sum + f(m), 0) / ms.length;
  return slices.map((ms) => {
    const count = ms.reduce((sum, m) => sum + m.count, 0);
    const seconds = ms.reduce((sum, m) => sum + m.seconds, 0);
    return {
      rps: count / seconds,
      p50Us: mean(ms, (m) => m.p50Us),
      p99Us: mean(ms, (m) => m.p99Us),
      count,
      seconds,
      failures: ms.reduce((sum, m) => sum + m.failures, 0),
      serverCpu: mean(ms, (m) => m.serverCpu),
      redisCpu: mean(ms, (m) => m.redisCpu),
      loaderCpu: mean(ms, (m) => m.loaderCpu),
    };
  });
}
