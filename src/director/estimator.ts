/**
 * The rate estimator (`ip_vs_est.c`, §1.4): every 2 s each stats block's rates move a quarter of the
 * way toward the last interval's rate — an EWMA kept in scaled integers (cps/pps ×2^10, bps ×2^5).
 */
import type { Counters, Stats } from './model.js';

export const ESTIMATOR_INTERVAL_MS = 2_000;

/** `x >> 2` on a signed 64-bit value: floor division by 4. */
const quarter = (x: number) => Math.floor(x / 4);

export function estimate(s: Stats): void {
  const e = s.est;
  e.cps += quarter((s.conns - s.last.conns) * 512 - e.cps);
  e.inpps += quarter((s.inPkts - s.last.inPkts) * 512 - e.inpps);
  e.outpps += quarter((s.outPkts - s.last.outPkts) * 512 - e.outpps);
  e.inbps += quarter((s.inBytes - s.last.inBytes) * 16 - e.inbps);
  e.outbps += quarter((s.outBytes - s.last.outBytes) * 16 - e.outbps);
  s.last = { conns: s.conns, inPkts: s.inPkts, outPkts: s.outPkts, inBytes: s.inBytes, outBytes: s.outBytes };
}

/** `ip_vs_zero_stats`: counters and rates start again from zero. */
export function zeroStats(s: Stats): void {
  s.conns = s.inPkts = s.outPkts = s.inBytes = s.outBytes = 0;
  s.last = { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0 };
  s.est = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };
}

/** The rates of a stats block as `ip_vs_read_estimator` reports them (scaled values, rounded). */
export function readRates(est: Stats['est']): {
  cps: number;
  inPps: number;
  outPps: number;
  inBps: number;
  outBps: number;
} {
  return {
    cps: Math.floor((est.cps + 511) / 1024),
    inPps: Math.floor((est.inpps + 511) / 1024),
    outPps: Math.floor((est.outpps + 511) / 1024),
    inBps: Math.floor((est.inbps + 15) / 32),
    outBps: Math.floor((est.outbps + 15) / 32),
  };
}

/** A fresh stats block over `counters`: the next estimate sees only what comes after. */
export function startStats(counters: Counters): Stats {
  return {
    ...counters,
    last: { ...counters },
    est: { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 },
  };
}
