/**
 * How the API and redis benches print their numbers: rates, latencies, CPU shares, ratios, and plain
 * text tables (first column left-aligned, the others right-aligned; a short row — a skipped target
 * with its reason — is left-aligned throughout and does not widen the numeric columns).
 */
import type { Measurement } from './load-generators.js';

export const fmtInt = (n: number | undefined) =>
  n === undefined || !Number.isFinite(n) ? '-' : Math.round(n).toLocaleString('en-US');

export const fmtRate = (m?: Measurement) => fmtInt(m?.rps);

/** Microseconds shown as milliseconds. */
export function fmtUs(us: number | undefined): string {
  if (us === undefined || Number.isNaN(us)) return '-';
  return us >= 10_000 ? `${(us / 1000).toFixed(1)} ms` : `${(us / 1000).toFixed(2)} ms`;
}

/** A CPU share (percent of one core). */
export const fmtPct = (v: number | undefined) =>
  v === undefined || Number.isNaN(v) ? '-' : `${Math.round(v)}%`;

/** Two decimals, rounded down (so 0.697 never shows as a passing 0.70). */
export const floor2 = (v: number) => (Math.floor(v * 100) / 100).toFixed(2);

/** The header, a rule under it and the rows, columns two spaces apart. */
export function formatTable(header: string[], rows: string[][]): string {
  const full = rows.filter((r) => r.length === header.length);
  const widths = header.map((h, i) =>
    Math.max(h.length, ...(i === 0 ? rows : full).map((r) => (r[i] ?? '').length)),
  );
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === 0 || cells.length < header.length ? c.padEnd(widths[i]) : c.padStart(widths[i])))
      .join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
