/**
 * The Engine: what every state store (memory, redis) offers. All methods are async, take the API's
 * JSON-shaped requests (API.md) and return its JSON-shaped answers; bad input is an IpvsError.
 */
import type { Direction, TcpFlag, Timeouts } from '../director/states.js';

export interface PersistenceSpec {
  timeout?: number;
  netmask?: string | number;
}

/** Service (API.md): by protocol+address+port, or by fwmark (+family). */
export interface ServiceSpec {
  protocol?: string;
  address?: string;
  port?: number;
  fwmark?: number;
  family?: 'inet' | 'inet6';
  scheduler?: string;
  schedFlags?: string[];
  persistence?: PersistenceSpec | null;
  onePacket?: boolean;
  pe?: string | null;
}

export interface StatsView {
  conns: number;
  inPkts: number;
  outPkts: number;
  inBytes: number;
  outBytes: number;
  cps: number;
  inPps: number;
  outPps: number;
  inBps: number;
  outBps: number;
}

export interface DestinationSpec {
  address?: string;
  port?: number;
  weight?: number;
  forward?: string;
  upperThreshold?: number;
  lowerThreshold?: number;
}

export interface DestinationStatus {
  key: string;
  address: string;
  port: number;
  weight: number;
  forward: string;
  upperThreshold: number;
  lowerThreshold: number;
  activeConns: number;
  inactiveConns: number;
  persistentConns: number;
  overloaded: boolean;
  available: boolean;
  stats: StatsView;
}

export interface ServiceStatus {
  key: string;
  protocol?: string;
  address?: string;
  port?: number;
  fwmark?: number;
  family: 'inet' | 'inet6';
  scheduler: string;
  schedFlags: string[];
  persistence: { timeout: number; netmask: string } | null;
  onePacket: boolean;
  pe: string | null;
  destinations: DestinationStatus[];
  stats: StatsView;
}

export interface ScheduleRequest {
  protocol?: string;
  client: string;
  virtual?: string;
  service?: string;
  fwmark?: number;
  callId?: string;
  requestId?: string;
  initialState?: string;
  explain?: boolean;
}

export interface Candidate {
  destination: string;
  weight: number;
  activeConns: number;
  inactiveConns: number;
  overloaded: boolean;
  available: boolean;
  metric?: string;
  skipped?: string;
}

export interface Explanation {
  scheduler: string;
  /** How the service was found (§2.2): fwmark, exact, ftp-data, port-zero, or by key. */
  lookup: string;
  /** Persistence: none, hit, miss, or invalid (a template was found but no longer valid, §5.4). */
  template: 'none' | 'hit' | 'miss' | 'invalid';
  /** Existing entry for the tuple (§6.8): none, followed, or rescheduled. */
  existing: 'none' | 'followed' | 'rescheduled';
  candidates: Candidate[];
  chosen: string | null;
  notes: string[];
}

export interface ScheduleResponse {
  service: string;
  destination: string;
  forward: string;
  connection: string;
  persistent: boolean;
  template?: string;
  reused: boolean;
  state: string;
  explain?: Explanation;
}

export interface ConnectionUpdate {
  state?: string;
  event?: { direction: Direction; flag?: TcpFlag };
  inPackets?: number;
  outPackets?: number;
  inBytes?: number;
  outBytes?: number;
}

export interface Connection {
  id: string;
  protocol: string;
  client: string;
  virtual: string;
  destination: string;
  state: string;
  expiresInMs: number;
  template: boolean;
  controlledBy?: string;
  controls?: number;
  callId?: string;
  service: string;
  /** Set when the update was a client packet for a deleted destination: dropped (§6.6). */
  dropped?: boolean;
  /** "sync" for entries a conn-sync backup installed, else "local" (`/proc/net/ip_vs_conn_sync`). */
  origin?: 'local' | 'sync';
}

/** One entry of conn-sync (proto ipvs.v1.SyncEntry in its JSON form). */
export interface SyncEntry {
  protocol: string;
  template: boolean;
  inactive: boolean;
  noOutput: boolean;
  state: string;
  clientAddress: string;
  clientPort: number;
  virtualAddress: string;
  virtualPort: number;
  destinationAddress: string;
  destinationPort: number;
  fwmark: number;
  /** Seconds; 0 = none carried: the backup uses the state's default (templates: 180 s). */
  timeout: number;
  /** The forwarding method the entry was made with (the kernel flags' fwd bits); absent: masq. */
  forward?: string;
  peName?: string;
  peData?: string;
  expiresInMs?: number;
}

export interface SyncApplyResult {
  /** Entries created or refreshed. */
  applied: number;
  /** No matching local service or destination (§7.5: the backup needs the same configuration). */
  unbound: number;
  /** Malformed, or a stale notice for a replaced connection (§7.4). */
  ignored: number;
}

export interface ConnectionFilter {
  service?: string;
  destination?: string;
  /** true: templates only; false: connections only; absent: both. */
  templates?: boolean;
}

export type BatchUpdate = { connection: string; close?: boolean } & ConnectionUpdate;
export type BatchResult =
  | { connection: string; ok: true; result?: Connection }
  | { connection: string; ok: false; error: { code: string; message: string } };

export type Sysctl = Record<string, number | number[]>;

export interface StatsSnapshot {
  total: StatsView;
  services: { key: string; stats: StatsView; destinations: { key: string; stats: StatsView }[] }[];
}

/** Everything an invariant check (tests) or a resync (conn-sync) needs to see. */
export interface EngineSnapshot {
  nowMs: number;
  services: ServiceStatus[];
  /** Destinations in the trash (deleted, still referenced by entries), with their counters. */
  trash: (DestinationStatus & { service: string })[];
  connections: Connection[];
}

export interface Engine {
  readonly kind: 'memory' | 'redis';
  addService(spec: ServiceSpec): Promise<ServiceStatus>;
  /** Partial update (PATCH); fields not given keep their value. */
  editService(key: string, patch: ServiceSpec): Promise<ServiceStatus>;
  deleteService(key: string): Promise<void>;
  clear(): Promise<void>;
  getService(key: string): Promise<ServiceStatus>;
  listServices(): Promise<ServiceStatus[]>;
  addDestination(service: string, spec: DestinationSpec): Promise<DestinationStatus>;
  editDestination(service: string, dest: string, patch: DestinationSpec): Promise<DestinationStatus>;
  deleteDestination(service: string, dest: string): Promise<void>;
  zeroStats(service?: string): Promise<void>;
  getStats(): Promise<StatsSnapshot>;

  schedule(req: ScheduleRequest): Promise<ScheduleResponse>;
  updateConnection(id: string, update: ConnectionUpdate): Promise<Connection>;
  closeConnection(id: string): Promise<void>;
  batch(updates: BatchUpdate[]): Promise<BatchResult[]>;
  listConnections(filter?: ConnectionFilter): Promise<Connection[]>;

  getTimeouts(): Promise<Timeouts>;
  setTimeouts(t: Partial<Timeouts>): Promise<Timeouts>;
  getSysctl(): Promise<Sysctl>;
  setSysctl(patch: Sysctl): Promise<Sysctl>;

  /**
   * Conn-sync, master side: `listener` receives the entries the kernel's rules (§7.2) send, after
   * each call that produced some; null stops it.
   */
  setSyncListener(listener: ((entries: SyncEntry[]) => void) | null): void;
  /** Conn-sync: every live entry, for a resync. */
  syncSnapshot(): Promise<SyncEntry[]>;
  /** Conn-sync, backup side: installs entries as `ip_vs_proc_conn` does (§7.4). */
  applySync(entries: SyncEntry[]): Promise<SyncApplyResult>;

  /** Fires every timer due at the engine clock's now, in deadline order. */
  tick(): Promise<void>;
  snapshot(): Promise<EngineSnapshot>;
  /** Whether the state store answers (false while Redis is unreachable). */
  ready(): Promise<boolean>;
  close(): Promise<void>;
}
