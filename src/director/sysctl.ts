/**
 * The behaviour switches of `/proc/sys/net/ipv4/vs/` that mean something here, under their kernel
 * names and with the kernel's defaults and ranges (§9.1).
 */
import { invalid } from '../domain/errors.js';
import { intIn, objectWith } from '../domain/validate.js';

export interface SysctlValues {
  /** §5.4: a template whose dest has weight 0 is invalid. */
  expire_quiescent_template: number;
  /** §6.6–6.8: connections to deleted dests are expired instead of dropped. */
  expire_nodest_conn: number;
  /** §6.8: bitmap 1 (TIME_WAIT/CLOSE) | 2 (also FIN_WAIT with NOOUTPUT). */
  conn_reuse_mode: number;
  /** §6.3: 3 = always use the secure_tcp state table (1/2 follow memory pressure: never here). */
  secure_tcp: number;
  /** §2.1: schedule on any non-RST TCP packet / any SCTP packet. */
  sloppy_tcp: number;
  sloppy_sctp: number;
  /** §3.7–3.8: seconds an lblc / lblcr entry may stay unused. */
  lblc_expiration: number;
  lblcr_expiration: number;
  /** §7.2: conn-sync switches. */
  sync_threshold: [number, number];
  sync_refresh_period: number;
  sync_persist_mode: number;
  sync_retries: number;
  sync_version: number;
}

export const DEFAULT_SYSCTL: SysctlValues = {
  expire_quiescent_template: 0,
  expire_nodest_conn: 0,
  conn_reuse_mode: 1,
  secure_tcp: 0,
  sloppy_tcp: 0,
  sloppy_sctp: 0,
  lblc_expiration: 86400,
  lblcr_expiration: 86400,
  sync_threshold: [3, 50],
  sync_refresh_period: 0,
  sync_persist_mode: 0,
  sync_retries: 0,
  sync_version: 1,
};

const RANGES: Record<Exclude<keyof SysctlValues, 'sync_threshold'>, [number, number]> = {
  expire_quiescent_template: [0, 1],
  expire_nodest_conn: [0, 1],
  conn_reuse_mode: [0, 3],
  secure_tcp: [0, 3],
  sloppy_tcp: [0, 1],
  sloppy_sctp: [0, 1],
  lblc_expiration: [1, 2147483],
  lblcr_expiration: [1, 2147483],
  sync_refresh_period: [0, 2147483],
  sync_persist_mode: [0, 1],
  sync_retries: [0, 3],
  sync_version: [0, 1],
};

/** Applies a validated patch; unknown names and out-of-range values are rejected, nothing half-applied. */
export function patchSysctl(current: SysctlValues, raw: unknown): SysctlValues {
  const names = Object.keys(DEFAULT_SYSCTL);
  const patch = objectWith(raw, 'sysctl', names);
  const next: SysctlValues = { ...current, sync_threshold: [...current.sync_threshold] };
  for (const [name, value] of Object.entries(patch)) {
    if (name === 'sync_threshold') {
      if (!Array.isArray(value) || value.length !== 2) {
        throw invalid('sysctl.sync_threshold', value, 'must be [threshold, period]');
      }
      const period = intIn(value[1], 'sysctl.sync_threshold[1]', 0, 2147483647);
      const threshold = intIn(value[0], 'sysctl.sync_threshold[0]', 0, 2147483647);
      if (period !== 0 && threshold >= period) {
        throw invalid('sysctl.sync_threshold', value, 'threshold must be below period (unless period is 0)');
      }
      next.sync_threshold = [threshold, period];
      continue;
    }
    const [min, max] = RANGES[name as keyof typeof RANGES];
    (next as unknown as Record<string, number>)[name] = intIn(value, `sysctl.${name}`, min, max);
  }
  return next;
}
