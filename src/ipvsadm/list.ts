/**
 * Every `ipvsadm -L` output of 1.31 (§8.4), byte for byte: `list_all` (version line, title,
 * services), `list_service` (one service, no version line), the --stats / --rate / --thresholds /
 * --persistent-conn / --tun-info variants, `-c` connections, `--timeout` and `--daemon`. Lines keep
 * printf's trailing padding. All functions are pure; addresses are numeric unless a resolver is
 * given with `numeric: false`.
 */
import type { Timeouts } from '../director/states.js';
import type { Connection, DestinationStatus, ServiceStatus } from '../engine/engine.js';
import {
  endpointText,
  isV6,
  largenum,
  left,
  maskText,
  right,
  schedFlagBits,
  schedFlagsText,
  SCHED_FLAGS_MASK,
  splitEndpoint,
  type LookupProtocol,
  type NameResolver,
} from './format.js';
import { int32 } from './libc.js';
import type { IpvsadmCommand } from './options.js';
import { lookupProtocol } from './save.js';
import { sortDests, sortServices } from './sort.js';

/** `IP_VS_VERSION_CODE` 0x010201. */
export const IPVS_VERSION = '1.2.1';
/** The kernel's default connection table size (2^12). */
export const DEFAULT_CONN_TAB_SIZE = 4096;

export interface ListOptions {
  /** `-n`; default true. Without it, names come from `resolve` (numeric when absent). */
  numeric?: boolean;
  resolve?: NameResolver;
  stats?: boolean;
  rate?: boolean;
  thresholds?: boolean;
  persistentConn?: boolean;
  /** `--nosort`: services and servers in the order given (destinations: kernel list order). */
  nosort?: boolean;
  exact?: boolean;
  tunInfo?: boolean;
  /** The `size=` of the version line. */
  connTableSize?: number;
}

const PROTOCOL_NAME: Readonly<Record<string, string>> = { tcp: 'TCP', udp: 'UDP', sctp: 'SCTP' };

const FORWARD_NAME: Readonly<Record<string, string>> = {
  masq: 'Masq',
  local: 'Local',
  tunnel: 'Tunnel',
  route: 'Route',
};

/** `fwd_name`. */
export function forwardName(forward: string): string {
  return FORWARD_NAME[forward] ?? '';
}

/** `IP Virtual Server version 1.2.1 (size=4096)`. */
export function versionLine(connTableSize = DEFAULT_CONN_TAB_SIZE): string {
  return `IP Virtual Server version ${IPVS_VERSION} (size=${connTableSize})\n`;
}

/** `print_title`. */
export function formatTitle(opts: ListOptions = {}): string {
  const head = left('Prot LocalAddress:Port', 33);
  if (opts.stats) {
    return `${head} ${['Conns', 'InPkts', 'OutPkts', 'InBytes', 'OutBytes'].map((t) => right(t, 8)).join(' ')}\n  -> RemoteAddress:Port\n`;
  }
  if (opts.rate) {
    return `${head} ${['CPS', 'InPPS', 'OutPPS', 'InBPS', 'OutBPS'].map((t) => right(t, 8)).join(' ')}\n  -> RemoteAddress:Port\n`;
  }
  if (opts.thresholds) {
    return `${head} ${['Uthreshold', 'Lthreshold', 'ActiveConn', 'InActConn'].map((t) => left(t, 10)).join(' ')}\n  -> RemoteAddress:Port\n`;
  }
  if (opts.persistentConn) {
    return `${head} ${left('Weight', 9)} ${left('PersistConn', 11)} ${left('ActiveConn', 10)} ${left('InActConn', 10)}\n  -> RemoteAddress:Port\n`;
  }
  if (opts.tunInfo) {
    return (
      'Prot LocalAddress:Port Scheduler Flags\n' +
      '  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n'
    );
  }
  return (
    'Prot LocalAddress:Port Scheduler Flags\n' +
    '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n'
  );
}

/** The service column: `TCP  10.0.0.1:80` (IPv4 cut at 33 characters), `FWM  7`, `FWM  7 IPv6`. */
export function listServiceName(svc: ServiceStatus, opts: ListOptions = {}): string {
  if (svc.fwmark) return `FWM  ${int32(svc.fwmark)}${svc.family === 'inet6' ? ' IPv6' : ''}`;
  const vname = endpointText(svc.address ?? '', svc.port ?? 0, lookupProtocol(svc), opts);
  const name = `${left(PROTOCOL_NAME[svc.protocol ?? ''] ?? '?', 4)} ${vname}`;
  return svc.family === 'inet6' ? name : name.slice(0, 33);
}

function serviceLine(svc: ServiceStatus, opts: ListOptions): string {
  const name = listServiceName(svc, opts);
  const s = svc.stats;
  if (opts.stats) {
    return (
      left(name, 33) +
      [s.conns, s.inPkts, s.outPkts, s.inBytes, s.outBytes].map((n) => largenum(n, opts.exact)).join('')
    );
  }
  if (opts.rate) {
    return (
      left(name, 33) +
      [s.cps, s.inPps, s.outPps, s.inBps, s.outBps].map((n) => largenum(n, opts.exact)).join('')
    );
  }
  let line = `${name} ${svc.scheduler}`;
  const bits = schedFlagBits(svc.schedFlags);
  if (bits & SCHED_FLAGS_MASK) line += ` (${schedFlagsText(bits, svc.scheduler)})`;
  if (svc.persistence) {
    line += ` persistent ${svc.persistence.timeout}`;
    const mask = maskText(svc.family, svc.persistence.netmask);
    if (mask !== undefined) line += ` mask ${mask}`;
    if (svc.pe) line += ` pe ${svc.pe}`;
  }
  if (svc.onePacket) line += ' ops';
  return line;
}

function u(n: number): string {
  return String(Math.max(0, Math.floor(n)));
}

function destLine(svc: ServiceStatus, d: DestinationStatus, opts: ListOptions): string {
  let dname = endpointText(d.address, d.port, lookupProtocol(svc), opts);
  if (!isV6(d.address)) dname = dname.slice(0, 28);
  const head = `  -> ${left(dname, 28)}`;
  const s = d.stats;
  if (opts.stats) {
    return (
      head +
      [s.conns, s.inPkts, s.outPkts, s.inBytes, s.outBytes].map((n) => largenum(n, opts.exact)).join('')
    );
  }
  if (opts.rate) {
    return (
      `${head} ${right(u(s.cps), 8)} ${right(u(s.inPps), 8)} ${right(u(s.outPps), 8)}` +
      largenum(s.inBps, opts.exact) +
      largenum(s.outBps, opts.exact)
    );
  }
  if (opts.thresholds) {
    return `${head} ${[d.upperThreshold, d.lowerThreshold, d.activeConns, d.inactiveConns].map((n) => left(u(n), 10)).join(' ')}`;
  }
  if (opts.persistentConn) {
    return `${head} ${left(u(d.weight), 9)} ${left(u(d.persistentConns), 11)} ${left(u(d.activeConns), 10)} ${left(u(d.inactiveConns), 10)}`;
  }
  const fwd = left(forwardName(d.forward), 7);
  const counts = `${left(d.weight, 6)} ${left(u(d.activeConns), 10)} ${left(u(d.inactiveConns), 10)}`;
  if (opts.tunInfo) {
    const info = d.forward === 'tunnel' ? 'ipip' : 'n/a';
    return `${head} ${fwd} ${left(info, 13)} ${counts}`;
  }
  return `${head} ${fwd} ${counts}`;
}

/** `print_service_entry`: the service line and its real servers (sorted unless `nosort`). */
export function formatServiceEntry(svc: ServiceStatus, opts: ListOptions = {}): string {
  const dests = opts.nosort ? svc.destinations : sortDests(svc.destinations);
  let out = serviceLine(svc, opts) + '\n';
  for (const d of dests) out += destLine(svc, d, opts) + '\n';
  return out;
}

/** `ipvsadm -L [-n] [--stats|--rate|--thresholds|--persistent-conn|--tun-info] [--nosort]`. */
export function formatList(services: readonly ServiceStatus[], opts: ListOptions = {}): string {
  const ordered = opts.nosort ? services : sortServices(services);
  let out = versionLine(opts.connTableSize) + formatTitle(opts);
  for (const svc of ordered) out += formatServiceEntry(svc, opts);
  return out;
}

/** `ipvsadm -L -t vip:port …`: one service, no version line. */
export function formatServiceListing(svc: ServiceStatus, opts: ListOptions = {}): string {
  return formatTitle(opts) + formatServiceEntry(svc, opts);
}

export interface ConnectionListOptions {
  numeric?: boolean;
  resolve?: NameResolver;
  /** `--persistent-conn`: adds the `pe name` / `pe_data` columns for entries with PE data. */
  persistentConn?: boolean;
}

/** `MM:SS` of the kernel's remaining seconds (whole seconds, rounded down; minutes not capped). */
export function expireText(expiresInMs: number): string {
  const expires = Math.max(0, Math.floor(expiresInMs / 1000));
  const two = (n: number) => String(n).padStart(2, '0');
  return `${two(Math.floor(expires / 60))}:${two(expires % 60)}`;
}

function connEndpoint(text: string, protocol: LookupProtocol, opts: ConnectionListOptions): string {
  const ep = splitEndpoint(text);
  return ep ? endpointText(ep.ip, ep.port, protocol, opts) : text;
}

/** `ipvsadm -L -c [-n] [--persistent-conn]`: entries in the order given (the kernel's hash order). */
export function formatConnections(conns: readonly Connection[], opts: ConnectionListOptions = {}): string {
  let out = 'IPVS connection entries\n';
  out += opts.persistentConn
    ? `pro expire ${left('state', 11)} ${left('source', 18)} ${left('virtual', 18)} ${left('destination', 18)} ${left('pe name', 16)} pe_data\n`
    : `pro expire ${left('state', 11)} ${left('source', 18)} ${left('virtual', 18)} destination\n`;
  for (const c of conns) {
    const proto = c.protocol.toUpperCase();
    const lookup = (PROTOCOL_NAME[c.protocol] ? c.protocol : 'ip') as LookupProtocol;
    const cname = connEndpoint(c.client, lookup, opts);
    const vname = connEndpoint(c.virtual, lookup, opts);
    const dname = connEndpoint(c.destination, lookup, opts);
    const head = `${left(proto, 3)} ${left(expireText(c.expiresInMs), 6)} ${left(c.state, 11)} ${left(cname, 18)} ${left(vname, 18)}`;
    // /proc/net/ip_vs_conn carries "<pe name> <pe data>" for entries with PE data; ipvsadm reads
    // them with sscanf("%s"), so only the first word of the data shows.
    const peData = c.callId?.trim().split(/\s+/)[0];
    if (opts.persistentConn && peData) out += `${head} ${left(dname, 16)} ${left('sip', 18)} ${peData}\n`;
    else out += `${head} ${dname}\n`;
  }
  return out;
}

/** `ipvsadm -L --timeout`. */
export function formatTimeouts(t: Timeouts): string {
  return `Timeout (tcp tcpfin udp): ${t.tcp} ${t.tcpFin} ${t.udp}\n`;
}

/** A running sync daemon as `ipvsadm -L --daemon` shows it. */
export interface DaemonInfo {
  role: 'master' | 'backup';
  syncid: number;
  /** Default `eth0` (what `ipvsadm --start-daemon` sends when none is given). */
  mcastInterface?: string;
  /** The optional parts appear only when given (and non-zero), as the kernel reports them. */
  syncMaxlen?: number;
  mcastGroup?: string;
  mcastPort?: number;
  mcastTtl?: number;
}

/** `ipvsadm -L --daemon`: master first, then backup. */
export function formatDaemons(daemons: readonly DaemonInfo[]): string {
  let out = '';
  for (const role of ['master', 'backup'] as const) {
    const d = daemons.find((x) => x.role === role);
    if (!d) continue;
    out += `${role} sync daemon (mcast=${d.mcastInterface ?? 'eth0'}, syncid=${d.syncid}`;
    if (d.syncMaxlen) out += `, maxlen=${d.syncMaxlen}`;
    if (d.mcastGroup) out += `, group=${d.mcastGroup}`;
    if (d.mcastPort) out += `, port=${d.mcastPort}`;
    if (d.mcastTtl) out += `, ttl=${d.mcastTtl}`;
    out += ')\n';
  }
  return out;
}

/** A daemon with its sync health, as GET /v1/sync lists it (read loosely: numbers or strings). */
export interface DaemonHealthInfo extends DaemonInfo {
  state?: string;
  directorId?: string;
  channel?: string;
  health?: Record<string, unknown>;
}

/**
 * `ipvsctl -L --daemon --stats`, an extension (ipvsadm refuses --stats with --daemon): each daemon's
 * ipvsadm line, then its sync health, indented.
 */
export function formatDaemonsWithHealth(daemons: readonly DaemonHealthInfo[]): string {
  let out = '';
  for (const role of ['master', 'backup'] as const) {
    const d = daemons.find((x) => x.role === role);
    if (!d) continue;
    out += formatDaemons([d]);
    const h = d.health ?? {};
    const n = (name: string) => String(h[name] ?? 0);
    out += `  state ${d.state ?? '?'}, director ${d.directorId ?? '?'}, channel ${d.channel ?? '?'}, reconnects ${n('reconnects')}\n`;
    if (role === 'master') {
      out +=
        `  sent ${n('messagesSent')} messages, ${n('entriesSent')} entries, last sequence ${n('lastSequence')}, ` +
        `${n('snapshotsSent')} snapshots for ${n('resyncRequestsServed')} resync requests, ${n('publishErrors')} publish errors\n`;
      continue;
    }
    out +=
      `  received ${n('messagesReceived')} messages, ${n('entriesReceived')} entries: ${n('entriesApplied')} applied, ` +
      `${n('entriesUnbound')} unbound, ${n('entriesIgnored')} ignored, ${n('entriesSkipped')} skipped; ` +
      `${n('messagesIgnored')} messages ignored\n`;
    out += `  gaps ${n('gaps')}, resyncs requested ${n('resyncsRequested')}, snapshots applied ${n('snapshotsApplied')}\n`;
    if (h.lagMs !== undefined)
      out += `  lag ${String(h.lagMs)} ms (p50 ${String(h.lagP50Ms ?? '?')} ms, p99 ${String(h.lagP99Ms ?? '?')} ms)\n`;
    const peers = Array.isArray(h.directors) ? (h.directors as Record<string, unknown>[]) : [];
    for (const p of peers) {
      out +=
        `  from ${String(p.directorId ?? '?')} (syncid ${String(p.syncid ?? 0)}): last sequence ${String(p.lastSequence ?? 0)}, ` +
        `${String(p.messagesReceived ?? 0)} messages, ${String(p.gaps ?? 0)} gaps\n`;
    }
  }
  return out;
}

/** What a `-L` command needs to be printed; give the part its view uses. */
export interface ListingData {
  /** All services (view `services` without a service). */
  services?: readonly ServiceStatus[];
  /** The one service of `-L -t vip:port`. */
  service?: ServiceStatus;
  connections?: readonly Connection[];
  timeouts?: Timeouts;
  daemons?: readonly DaemonInfo[];
}

/** Prints a parsed `-L` command, dispatching on its view as `process_options` does. */
export function formatListing(
  cmd: Extract<IpvsadmCommand, { kind: 'list' }>,
  data: ListingData,
  extra: { resolve?: NameResolver; connTableSize?: number } = {},
): string {
  const opts: ListOptions = { ...cmd.format, ...extra };
  switch (cmd.view) {
    case 'connections':
      return formatConnections(data.connections ?? [], opts);
    case 'timeout':
      return data.timeouts ? formatTimeouts(data.timeouts) : '';
    case 'daemon':
      return formatDaemons(data.daemons ?? []);
    case 'services':
      if (cmd.serviceKey !== undefined) {
        if (!data.service) throw new Error('formatListing: the listed service is missing');
        return formatServiceListing(data.service, opts);
      }
      return formatList(data.services ?? [], opts);
  }
}
