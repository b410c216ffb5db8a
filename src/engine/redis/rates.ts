/**
 * Rates on a redis-engine fleet: the kernel's 2 s estimator (director/estimator.ts, the same
 * `estimate` the memory engine runs) over the counters kept in Redis. Its state (each stats
 * block's counters at the last run and its scaled rates) is one JSON value per service tag,
 * `<prefix>{<service key>}:est`, stamped with the 2 s period it was computed for
 * (floor(now / 2000): the same periods on every replica). Each replica's periodic tick advances
 * it; the write is conditional (save-rates-1.lua keeps it only when its period is newer), so
 * replicas racing for the same period apply it once. After idle periods, as in the memory engine,
 * only the first sees the traffic and the rest decay the rates (at most 200 of them).
 */
import { estimate, ESTIMATOR_INTERVAL_MS, readRates, startStats } from '../../director/estimator.js';
import { zeroCounters, type Counters, type Stats } from '../../director/model.js';
import type { StatsView } from '../engine.js';

type Block = Pick<Stats, 'last' | 'est'>;

export interface RatesState {
  /** The 2 s period these rates were computed for. */
  p: number;
  svc: Block;
  /** Per destination key (also destinations in the trash, while they count). */
  dests: Record<string, Block>;
  /** This tag's share of the director's totals. */
  total: Block;
}

export interface TagCounters {
  svc: Counters;
  dests: Record<string, Counters>;
  total: Counters;
}

const CATCH_UP_RUNS = 200;

export function periodOf(now: number): number {
  return Math.floor(now / ESTIMATOR_INTERVAL_MS);
}

function advance(block: Block | undefined, counters: Counters, runs: number): Block {
  if (!block) {
    const s = startStats(counters);
    return { last: s.last, est: s.est };
  }
  const s: Stats = { ...counters, last: block.last, est: { ...block.est } };
  for (let i = 0; i < runs; i++) estimate(s);
  return { last: s.last, est: s.est };
}

/** The state for `period` from the previous one, or undefined when there is nothing to do. */
export function advanceRates(
  prev: RatesState | undefined,
  period: number,
  now: TagCounters,
): RatesState | undefined {
  if (prev && prev.p >= period) return undefined;
  const runs = prev ? Math.min(period - prev.p, 1 + CATCH_UP_RUNS) : 0;
  // a destination added since the last run counted from zero; one that left the list (the trash)
  // keeps its block, so a re-added one goes on from its old counters without a jump
  const dests: Record<string, Block> = { ...prev?.dests };
  const fromZero = prev ? startStats(zeroCounters()) : undefined;
  for (const [key, counters] of Object.entries(now.dests)) {
    dests[key] = advance(prev?.dests[key] ?? fromZero, counters, runs);
  }
  return {
    p: period,
    svc: advance(prev?.svc, now.svc, runs),
    dests,
    total: advance(prev?.total, now.total, runs),
  };
}

export function parseRates(raw: unknown): RatesState | undefined {
  if (typeof raw !== 'string' || raw === '') return undefined;
  try {
    return JSON.parse(raw) as RatesState;
  } catch {
    return undefined;
  }
}

const NO_RATES = { cps: 0, inPps: 0, outPps: 0, inBps: 0, outBps: 0 };

/** The rates part of a StatsView for one block (zero before the first estimate). */
export function ratesOf(
  block: Block | undefined,
): Pick<StatsView, 'cps' | 'inPps' | 'outPps' | 'inBps' | 'outBps'> {
  return block ? readRates(block.est) : { ...NO_RATES };
}
