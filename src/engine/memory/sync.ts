/**
 * Conn-sync inside the memory engine: which entries a master sends (the kernel's rules, via
 * `syncNeeded`), entries as sync records, and a backup installing them (`ip_vs_proc_conn`, §7.4).
 */
import { parseIp, type Ip } from '../../domain/address.js';
import { endpoint, parseProtocol, type Protocol } from '../../domain/keys.js';
import { setActive } from '../../director/accounting.js';
import type { Conn, Dest, Service } from '../../director/model.js';
import { templateKey } from '../../director/persistence.js';
import { findService } from '../../director/service-lookup.js';
import { parseState, stateTimeout } from '../../director/states.js';
import { syncNeeded } from '../../sync/policy.js';
import type { SyncApplyResult, SyncEntry } from '../engine.js';
import { createEntry, expireEntry } from './lifecycle.js';
import { connTupleKey, type DirectorState } from './state.js';

/** The entry as a sync record; snapshots add the time left. */
export function toSyncEntry(c: Conn, now: number, withRemaining: boolean): SyncEntry {
  const e: SyncEntry = {
    protocol: c.protocol,
    template: c.template,
    inactive: c.template ? false : c.inactive,
    noOutput: c.noOutput,
    state: c.template ? (c.assured ? 'ASSURED' : 'NONE') : c.state,
    clientAddress: c.caddr.text,
    clientPort: c.cport,
    virtualAddress: c.vaddr.text,
    virtualPort: c.vport,
    destinationAddress: c.dest.ip.text,
    destinationPort: c.dport,
    fwmark: c.fwmark,
    timeout: Math.ceil(c.timeoutMs / 1000),
    forward: c.forward,
  };
  if (c.callId !== null) {
    e.peName = 'sip';
    e.peData = c.callId;
  }
  if (withRemaining) e.expiresInMs = Math.max(0, c.deadline - now);
  return e;
}

/**
 * `ip_vs_sync_conn`: an incoming packet (or `pkts` of them) was seen on `c`; the entry is queued
 * when the rules say so, then its controller is considered with its own incremented count.
 */
export function noteIncoming(state: DirectorState, c: Conn, previous: number, now: number): void {
  const out = state.syncOut;
  if (!out) return;
  let entry: Conn | null = c;
  let before = previous;
  let pkts = c.inPkts;
  while (entry) {
    // One-packet entries (never hashed) are never sent themselves; their template is.
    const onePacket = !entry.template && entry.tableKey === null;
    if (!onePacket && state.byId.has(entry.id) && syncNeeded(entry, before, pkts, now, state.sysctl)) {
      out.push(toSyncEntry(entry, now, false));
    }
    const ct: Conn | null = entry.control;
    if (!ct) break;
    before = ct.inPkts;
    pkts = ++ct.inPkts;
    entry = ct;
  }
}

/** An entry still controlling others at expiry is sent with its 60 s re-arm (`ip_vs_conn_expire`). */
export function noteExpireLater(state: DirectorState, c: Conn, now: number): void {
  if (!state.syncOut) return;
  const threshold = state.sysctl.sync_threshold[0];
  if (syncNeeded(c, threshold - 1, threshold, now, state.sysctl))
    state.syncOut.push(toSyncEntry(c, now, false));
}

function addressOf(text: string): Ip | undefined {
  try {
    return parseIp(text, 'sync');
  } catch {
    return undefined;
  }
}

/** `ip_vs_find_dest`: the local dest by address and port (fwmark + non-NAT: port 0 first). */
function localDest(svc: Service, e: SyncEntry, daddr: Ip): Dest | undefined {
  const exact = endpoint(daddr, e.destinationPort).text;
  const zero = endpoint(daddr, 0).text;
  const order = e.fwmark && e.forward !== undefined && e.forward !== 'masq' ? [zero, exact] : [exact, zero];
  for (const key of order) {
    const d = svc.byKey.get(key);
    if (d) return d;
  }
  return undefined;
}

type Outcome = keyof SyncApplyResult;

/** `ip_vs_proc_conn`: a template whose record carries no timeout lives 180 s. */
const SYNC_TEMPLATE_DEFAULT_TIMEOUT_MS = 180_000;

/** `ip_vs_proc_conn` for one record. */
export function applySyncEntry(state: DirectorState, e: SyncEntry, now: number): Outcome {
  const caddr = addressOf(e.clientAddress);
  const vaddr = addressOf(e.virtualAddress);
  const daddr = addressOf(e.destinationAddress);
  if (!caddr || !vaddr || !daddr) return 'ignored';
  let protocol: Protocol | 'ip';
  let entryState: string;
  try {
    protocol = e.protocol === 'ip' && e.template ? 'ip' : parseProtocol(e.protocol, 'sync');
    entryState = e.template
      ? e.state === 'ASSURED'
        ? 'ASSURED'
        : 'NONE'
      : parseState(protocol as Protocol, e.state, 'sync');
  } catch {
    return 'ignored';
  }
  const client = endpoint(caddr, e.clientPort);
  const virtual = endpoint(vaddr, e.virtualPort);
  let c: Conn | undefined;
  let tableKey: string;
  if (!e.template) {
    tableKey = connTupleKey(protocol, client.text, virtual.text);
    c = state.conns.get(tableKey);
    if (c && (c.dest.ip.text !== daddr.text || c.dport !== e.destinationPort)) {
      // Another server for this tuple: an active record replaces it; an inactive one is a stale notice.
      if (e.inactive) return 'ignored';
      expireEntry(state, c, now, false);
      c = undefined;
    }
  } else {
    tableKey = templateKey(
      protocol,
      caddr,
      vaddr,
      e.virtualPort,
      e.peName === 'sip' ? (e.peData ?? null) : null,
    );
    c = state.templates.get(tableKey);
  }
  if (c) {
    if (!c.template && c.inactive !== e.inactive) setActive(c, !e.inactive);
  } else {
    const found =
      protocol === 'ip'
        ? state.services.get(`${vaddr.family === 6 ? 'fwm6' : 'fwm'}:${e.fwmark}`)
        : findService(state, protocol, virtual, e.fwmark)?.service;
    const dest = found && localDest(found, e, daddr);
    if (!found || !dest) return 'unbound';
    c = createEntry(state, found, dest, {
      template: e.template,
      protocol,
      caddr,
      cport: e.clientPort,
      vaddr,
      vport: e.virtualPort,
      dport: e.destinationPort,
      tableKey,
      callId: e.peName === 'sip' ? (e.peData ?? null) : null,
      fwmark: e.fwmark,
      inactive: e.template ? undefined : e.inactive,
    });
    c.synced = true;
  }
  c.inPkts = state.sysctl.sync_threshold[0];
  if (c.template) c.assured = entryState === 'ASSURED';
  else c.state = entryState;
  c.syncOldState = c.state;
  // No timeout carried (0, as in version 0 messages): the state's own, 180 s for templates.
  c.timeoutMs =
    e.timeout > 0
      ? e.timeout * 1000
      : c.template
        ? SYNC_TEMPLATE_DEFAULT_TIMEOUT_MS
        : stateTimeout(protocol as Protocol, entryState, state.timeouts) * 1000;
  state.timers.arm(c, now + (e.expiresInMs ?? c.timeoutMs));
  return 'applied';
}
