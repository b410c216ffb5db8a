/**
 * When a master director sends an entry (`ip_vs_sync_conn` / `ip_vs_sync_conn_needed`, §7.2): TCP
 * and SCTP connections in an eligible state on their `sync_threshold`-th incoming packet and every
 * `sync_period` packets after, closing transitions at once; templates on every incoming packet of a
 * connection they control (or as `sync_refresh_period` / `sync_retries` allow); never SYN_RECV.
 */
import type { SysctlValues } from '../director/sysctl.js';

const TCP_SYNC_STATES = new Set(['ESTABLISHED', 'FIN_WAIT', 'CLOSE', 'CLOSE_WAIT', 'TIME_WAIT']);
const SCTP_SYNC_STATES = new Set([
  'ESTABLISHED',
  'SHUTDOWN_SENT',
  'SHUTDOWN_RECEIVED',
  'SHUTDOWN_ACK_SENT',
  'CLOSED',
]);

/** What the rules read and write on an entry. */
export interface SyncTracked {
  readonly template: boolean;
  readonly protocol: string;
  readonly state: string;
  readonly timeoutMs: number;
  /** The controlling entry (a persistence template), if any. */
  readonly control: { readonly template: boolean } | null;
  /** State when last sent (`old_state`). */
  syncOldState: string;
  /** Expiry reported by the last send (`sync_endtime`), ms; 0 before the first. */
  syncEndtime: number;
  /** The retry counter kept in `sync_endtime`'s low bits by the kernel. */
  syncRetries: number;
}

/** Whether some packet count in (from, to] is one the threshold/period rule sends on. */
function hitsThreshold(from: number, to: number, threshold: number, period: number): boolean {
  if (period === 0) return from < threshold && threshold <= to;
  if (to - from >= period) return true;
  for (let k = from + 1; k <= to; k++) if (k % period === threshold) return true;
  return false;
}

/**
 * Decides and, when sending, records the send (old state, reported expiry). `pkts` is the incoming
 * packet count after this event and `previous` the count before it (a report may add several).
 */
export function syncNeeded(
  e: SyncTracked,
  previous: number,
  pkts: number,
  now: number,
  s: SysctlValues,
): boolean {
  const [threshold, period] = s.sync_threshold;
  const refresh = s.sync_refresh_period * 1000;
  const orig = e.syncEndtime;
  const n = now + e.timeoutMs;
  let retries = 0;
  let sendNow = false;
  if (!e.template) {
    if (s.sync_persist_mode === 1 && e.control?.template) return false;
    const eligible =
      e.protocol === 'tcp' ? TCP_SYNC_STATES : e.protocol === 'sctp' ? SCTP_SYNC_STATES : undefined;
    if (eligible) {
      if (!eligible.has(e.state)) return false;
      // A closing transition is sent at once.
      sendNow = e.state !== e.syncOldState && e.state !== 'ESTABLISHED';
    }
  }
  if (!sendNow) {
    if (refresh > 0) {
      if (Math.abs(n - orig) < Math.min(refresh, Math.max(e.timeoutMs / 2, 10_000))) {
        if (e.syncRetries >= s.sync_retries) return false;
        if (now < orig - e.timeoutMs + refresh / 8) return false;
        retries = e.syncRetries + 1;
      }
    }
    if (period > 0) {
      if (!e.template && !hitsThreshold(previous, pkts, threshold, period)) return false;
    } else if (refresh === 0 && !hitsThreshold(previous, pkts, threshold, 0)) {
      return false;
    }
  }
  e.syncOldState = e.state;
  e.syncEndtime = n;
  e.syncRetries = retries;
  return true;
}
