/**
 * Binding entries to destinations and the counters that move with them (§4, §6.1–6.2):
 * activeconns / inactconns / persistconns, the OVERLOAD flag's set and clear rules, and the
 * scheduler's view of the dest kept current after every change.
 */
import type { Conn, Dest } from './model.js';

function countersChanged(d: Dest): void {
  const svc = d.service;
  if (svc) svc.scheduler.countersChanged?.(svc.schedState, svc, d);
}

/** `ip_vs_bind_dest`: count the entry, then set OVERLOAD once the total reaches u_threshold. */
export function bindDest(c: Conn): void {
  const d = c.dest;
  if (c.template) d.persistentConns++;
  else if (c.inactive) d.inactiveConns++;
  else d.activeConns++;
  if (d.upperThreshold !== 0 && d.activeConns + d.inactiveConns >= d.upperThreshold) d.overloaded = true;
  countersChanged(d);
}

/**
 * `ip_vs_unbind_dest`: uncount the entry, then clear OVERLOAD when the total fell below
 * l_threshold, or (no l_threshold) below 3/4 of u_threshold, or always when there is no threshold.
 */
export function unbindDest(c: Conn): void {
  const d = c.dest;
  if (c.template) d.persistentConns--;
  else if (c.inactive) d.inactiveConns--;
  else d.activeConns--;
  const total = d.activeConns + d.inactiveConns;
  if (d.lowerThreshold !== 0) {
    if (total < d.lowerThreshold) d.overloaded = false;
  } else if (d.upperThreshold !== 0) {
    if (total * 4 < d.upperThreshold * 3) d.overloaded = false;
  } else {
    d.overloaded = false;
  }
  countersChanged(d);
}

/** A state change that crosses active ↔ inactive moves one count (`set_tcp_state`). */
export function setActive(c: Conn, active: boolean): void {
  if (c.template || active === !c.inactive) return;
  const d = c.dest;
  if (active) {
    d.inactiveConns--;
    d.activeConns++;
  } else {
    d.activeConns--;
    d.inactiveConns++;
  }
  c.inactive = !active;
  countersChanged(d);
}

/**
 * `__ip_vs_update_dest`'s rule for configuration changes: OVERLOAD is cleared when the new
 * u_threshold is 0 or larger than the previous one, and otherwise left alone.
 */
export function applyThresholdChange(d: Dest, previousUpper: number): void {
  if (d.upperThreshold === 0 || d.upperThreshold > previousUpper) d.overloaded = false;
}
