/**
 * Connection entries over their life (§6): creation and binding, protocol state changes with their
 * active/inactive moves and timeouts, timer re-arming, and expiry (`ip_vs_conn_expire`) with the
 * "expire later" rule for entries that still control others.
 */
import type { Ip } from '../../domain/address.js';
import type { Protocol } from '../../domain/keys.js';
import { bindDest, setActive, unbindDest } from '../../director/accounting.js';
import type { AnyTimer, Conn, Dest, Service } from '../../director/model.js';
import {
  isActiveState,
  nextTcpState,
  stateTimeout,
  UDP_STATE,
  type Direction,
  type TcpFlag,
} from '../../director/states.js';
import { estimate, ESTIMATOR_INTERVAL_MS } from '../../director/estimator.js';
import { GC_INTERVAL_MS } from '../../schedulers/locality.js';
import type { SchedContext } from '../../schedulers/types.js';
import type { DirectorState } from './state.js';
import { noteExpireLater } from './sync.js';

/** `ip_vs_conn_expire`: an entry that still controls others lives on, re-armed for 60 s. */
export const EXPIRE_LATER_MS = 60_000;
/** A new entry's timeout until its first state transition (`ip_vs_conn_new`). */
const NEW_ENTRY_TIMEOUT_MS = 3_000;

export interface NewEntry {
  template: boolean;
  protocol: Protocol | 'ip';
  caddr: Ip;
  cport: number;
  vaddr: Ip;
  vport: number;
  dport: number;
  tableKey: string | null;
  callId: string | null;
  fwmark: number;
  /** Conn-sync entries keep the master's INACTIVE flag (§6.1); new connections start inactive. */
  inactive?: boolean;
}

/** `ip_vs_conn_new` + `ip_vs_bind_dest`: the entry exists, is counted and is in its table. */
export function createEntry(state: DirectorState, svc: Service, dest: Dest, e: NewEntry): Conn {
  const c: Conn = {
    kind: 'conn',
    id: state.newEntryId(svc),
    template: e.template,
    protocol: e.protocol,
    caddr: e.caddr,
    cport: e.cport,
    vaddr: e.vaddr,
    vport: e.vport,
    dport: e.dport,
    dest,
    service: svc,
    tableKey: e.tableKey,
    state: 'NONE',
    // Every dest's connection flags carry INACTIVE, so a new connection is first counted inactive.
    inactive: e.inactive ?? !e.template,
    forward: dest.forward,
    noOutput: dest.forward !== 'masq',
    timeoutMs: NEW_ENTRY_TIMEOUT_MS,
    control: null,
    nControl: 0,
    assured: false,
    callId: e.callId,
    fwmark: e.fwmark,
    inPkts: 0,
    synced: false,
    syncOldState: 'NONE',
    syncEndtime: 0,
    syncRetries: 0,
    deadline: 0,
    seq: 0,
    heapIndex: -1,
  };
  bindDest(c);
  if (c.tableKey !== null) (c.template ? state.templates : state.conns).set(c.tableKey, c);
  state.byId.set(c.id, c);
  return c;
}

/** Re-arms the entry's timer to now + its current timeout (`ip_vs_conn_put`). */
export function rearm(state: DirectorState, c: Conn, now: number): void {
  state.timers.arm(c, now + c.timeoutMs);
}

/** Moves a connection to `next` (explicit or from the state table), with counter moves and timeout. */
export function enterState(state: DirectorState, c: Conn, next: string): void {
  const protocol = c.protocol as Protocol;
  c.state = next;
  setActive(c, isActiveState(protocol, next));
  c.timeoutMs = stateTimeout(protocol, next, state.timeouts) * 1000;
  // Reaching ESTABLISHED assures the controlling template (`ip_vs_control_assure_ct`).
  if (next === 'ESTABLISHED' && c.control?.template) c.control.assured = true;
}

/** One packet of a connection, given as a direction and (TCP) a flag. */
export function packetEvent(
  state: DirectorState,
  c: Conn,
  direction: Direction,
  flag: TcpFlag | undefined,
): void {
  if (direction === 'out') {
    c.noOutput = false;
    if (c.protocol === 'udp' && c.control?.template) c.control.assured = true;
  }
  if (c.protocol === 'tcp' && flag) {
    const table: Direction = direction === 'in' && c.noOutput ? 'in-only' : direction;
    enterState(state, c, nextTcpState(c.state, table, flag, state.sysctl.secure_tcp === 3));
  } else if (c.protocol === 'udp') {
    enterState(state, c, UDP_STATE);
  }
}

/** Takes the entry out of its table and the id index, unless a newer entry took its place. */
function unlink(state: DirectorState, c: Conn): void {
  if (c.tableKey !== null) {
    const table = c.template ? state.templates : state.conns;
    if (table.get(c.tableKey) === c) table.delete(c.tableKey);
  }
  state.byId.delete(c.id);
  state.timers.cancel(c);
}

/**
 * `ip_vs_conn_expire` at time `now`. `forced` is a deletion (timeout 0): a controller left with
 * nothing to control goes too, unless it is an assured template.
 */
export function expireEntry(state: DirectorState, c: Conn, now: number, forced: boolean): void {
  if (c.nControl > 0) {
    c.timeoutMs = EXPIRE_LATER_MS;
    rearm(state, c, now);
    noteExpireLater(state, c, now);
    return;
  }
  unlink(state, c);
  const ct = c.control;
  if (ct) {
    ct.nControl--;
    c.control = null;
  }
  unbindDest(c);
  if (ct && forced && ct.nControl === 0 && (!ct.template || !ct.assured)) expireEntry(state, ct, now, false);
}

/**
 * `ip_vs_check_template` on an invalid template: re-keyed so it never matches again (cport 0,
 * vport and dport 0xFFFF), its timer and counters untouched (§5.4).
 */
export function invalidateTemplate(state: DirectorState, ct: Conn): void {
  if (ct.tableKey !== null && state.templates.get(ct.tableKey) === ct) state.templates.delete(ct.tableKey);
  ct.tableKey = null;
  ct.cport = 0;
  ct.vport = 0xffff;
  ct.dport = 0xffff;
}

/**
 * `ip_vs_expire_nodest_conn_flush`: every connection whose dest is gone is deleted now, then every
 * template of a gone dest that no longer controls anything.
 */
export function flushNoDestConnections(state: DirectorState, now: number): void {
  const gone = [...state.byId.values()].filter((c) => !c.dest.available);
  for (const c of gone) if (!c.template && c.nControl === 0) expireEntry(state, c, now, false);
  for (const c of gone)
    if (c.template && c.nControl === 0 && state.byId.has(c.id)) expireEntry(state, c, now, false);
}

/** Rates decay to exactly zero within this many idle estimator runs (`x += floor(-x/4)`). */
const ESTIMATOR_CATCH_UP_RUNS = 200;

/**
 * The 2 s estimator run due at `at`; returns when the next is due. Counters only move during calls,
 * and every call fires due timers first, so when the clock jumped over many periods (a manual clock
 * advanced by days) all periods after the first saw no traffic: they only decay the rates, and past
 * a few hundred of them the rates are zero whatever their number.
 */
function estimateAll(state: DirectorState, at: number, now: number): number {
  const idle = Math.max(0, Math.floor((now - at) / ESTIMATOR_INTERVAL_MS));
  const runs = 1 + Math.min(idle, ESTIMATOR_CATCH_UP_RUNS);
  for (let i = 0; i < runs; i++) {
    for (const svc of state.services.values()) {
      estimate(svc.stats);
      for (const d of svc.dests) estimate(d.stats);
    }
    estimate(state.totalStats);
  }
  return at + (idle + 1) * ESTIMATOR_INTERVAL_MS;
}

/** Fires every timer due at `now`, each at its own deadline, in deadline order. */
export function runTimers(
  state: DirectorState,
  now: number,
  schedContext: (now: number) => SchedContext,
): void {
  let t: AnyTimer | undefined;
  while ((t = state.timers.peekDue(now)) !== undefined) {
    const at = t.deadline;
    if (t.kind === 'conn') {
      expireEntry(state, t, at, false);
    } else if (t.kind === 'gc') {
      const svc = t.service;
      svc.scheduler.gc?.(svc.schedState, svc, schedContext(at));
      state.timers.arm(t, at + GC_INTERVAL_MS);
    } else {
      state.timers.arm(t, estimateAll(state, at, now));
    }
  }
}
