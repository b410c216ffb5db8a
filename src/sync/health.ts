/**
 * Sync health as GET /v1/sync shows it (proto ipvs.v1.SyncDaemon / SyncHealth in JSON form), and
 * the lag window behind its percentiles.
 */

/** A running daemon (proto ipvs.v1.SyncDaemon). */
export interface SyncDaemonView {
  role: 'master' | 'backup';
  syncid: number;
  state: 'running' | 'connecting';
  directorId: string;
  channel: string;
  mcastInterface: string;
  syncMaxlen: number;
  mcastGroup: string;
  mcastPort: number;
  mcastTtl: number;
  startedAtMs: number;
  health: SyncHealthView;
}

/** Master fields on a master, backup fields on a backup (proto ipvs.v1.SyncHealth). */
export interface SyncHealthView {
  reconnects: number;
  messagesSent?: number;
  entriesSent?: number;
  lastSequence?: number;
  snapshotsSent?: number;
  resyncRequestsServed?: number;
  publishErrors?: number;
  messagesReceived?: number;
  entriesReceived?: number;
  entriesApplied?: number;
  entriesUnbound?: number;
  entriesIgnored?: number;
  entriesSkipped?: number;
  messagesIgnored?: number;
  gaps?: number;
  resyncsRequested?: number;
  snapshotsApplied?: number;
  lagMs?: number;
  lagP50Ms?: number;
  lagP99Ms?: number;
  directors?: SyncPeerView[];
}

/** proto ipvs.v1.SyncPeer. */
export interface SyncPeerView {
  directorId: string;
  syncid: number;
  lastSequence: number;
  messagesReceived: number;
  gaps: number;
  lastMessageAtMs: number;
}

export interface MasterCounters {
  messagesSent: number;
  entriesSent: number;
  lastSequence: number;
  snapshotsSent: number;
  resyncRequestsServed: number;
  publishErrors: number;
}

export interface BackupCounters {
  messagesReceived: number;
  entriesReceived: number;
  entriesApplied: number;
  entriesUnbound: number;
  entriesIgnored: number;
  entriesSkipped: number;
  messagesIgnored: number;
  gaps: number;
  resyncsRequested: number;
  snapshotsApplied: number;
}

export const newMasterCounters = (): MasterCounters => ({
  messagesSent: 0,
  entriesSent: 0,
  lastSequence: 0,
  snapshotsSent: 0,
  resyncRequestsServed: 0,
  publishErrors: 0,
});

export const newBackupCounters = (): BackupCounters => ({
  messagesReceived: 0,
  entriesReceived: 0,
  entriesApplied: 0,
  entriesUnbound: 0,
  entriesIgnored: 0,
  entriesSkipped: 0,
  messagesIgnored: 0,
  gaps: 0,
  resyncsRequested: 0,
  snapshotsApplied: 0,
});

/** The last `size` lag samples, for the latest value and nearest-rank percentiles. */
export class LagWindow {
  private readonly samples: number[] = [];
  private next = 0;
  private latest: number | undefined;

  constructor(private readonly size = 1024) {}

  add(ms: number): void {
    this.latest = ms;
    if (this.samples.length < this.size) this.samples.push(ms);
    else this.samples[this.next] = ms;
    this.next = (this.next + 1) % this.size;
  }

  get last(): number | undefined {
    return this.latest;
  }

  /** Nearest-rank percentile `p` (0..100) of the window; undefined when empty. */
  percentile(p: number): number | undefined {
    if (this.samples.length === 0) return undefined;
    const sorted = [...this.samples].sort((a, b) => a - b);
    const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
    return sorted[rank - 1];
  }
}
