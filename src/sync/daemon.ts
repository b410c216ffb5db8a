/**
 * The conn-sync daemons of one director (ipvs-semantics.md §7): a master, a backup, or both at once,
 * each with a syncid, over the Redis channel of `channel.ts`.
 *
 * Master: the engine hands it the entries the kernel's rules send (§7.2); they are batched
 * (`batcher.ts`) and published with this director's id and the next sequence number. It answers
 * resync requests addressed to it (or to every master) with a snapshot of its live entries, in
 * parts numbered like any other message.
 *
 * Backup: applies entries through `engine.applySync` (§7.4, idempotent), ignoring its own director's
 * messages and other syncids (syncid 0 accepts all). Beyond the kernel, per sending director it
 * keeps the last sequence number: a jump is a gap (lost messages), and it asks that director for a
 * resync; so does the first message of a director it has not heard from, its own start, and a
 * reconnect of its subscriber. A request is repeated (with backoff) until a complete snapshot comes.
 * A snapshot entry this director owns as a local entry is left alone: in a two-way setup the other
 * director's snapshot carries copies of this one's entries.
 *
 * Applying never makes the engine send (the engine guarantees it), so two directors each running
 * both roles do not echo each other's entries.
 */
import { create } from '@bufbuild/protobuf';
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { parseIp } from '../domain/address.js';
import { IpvsError, alreadyExists, invalid, notFound } from '../domain/errors.js';
import { objectWith, optionalInt } from '../domain/validate.js';
import type { Connection, Engine, SyncEntry } from '../engine/engine.js';
import { SyncMessageSchema, type SyncMessage } from '../gen/ipvs/v1/sync_pb.js';
import { Batcher } from './batcher.js';
import { ALL_CHANNELS, SyncChannel, channelOf, type SyncChannelOptions } from './channel.js';
import {
  encodeEntry,
  encodeEntriesMessage,
  encodeMessage,
  encodeSnapshotMessage,
  framedSize,
  fromProtoEntry,
  headerOverhead,
  decodeMessage,
  sentBy,
  type Header,
} from './codec.js';
import {
  LagWindow,
  newBackupCounters,
  newMasterCounters,
  type BackupCounters,
  type MasterCounters,
  type SyncDaemonView,
  type SyncPeerView,
} from './health.js';

export type SyncRole = 'master' | 'backup';

/** `ipvsadm --start-daemon`'s options. The multicast ones are only kept for the listing. */
export interface SyncStartOptions {
  role: SyncRole;
  syncid?: number;
  /** Largest encoded message, bytes (`--sync-maxlen`). */
  maxlen?: number;
  mcastInterface?: string;
  mcastGroup?: string;
  mcastPort?: number;
  mcastTtl?: number;
}

/** A daemon's settled configuration (defaults applied, maxlen clamped). */
export interface SyncDaemonConfig {
  role: SyncRole;
  syncid: number;
  maxlen: number;
  mcastInterface: string;
  mcastGroup: string;
  mcastPort: number;
  mcastTtl: number;
}

export const DEFAULT_MAXLEN = 1472;
const MAX_MAXLEN = 65507;
/** The kernel's lower clamps: any size for a master, 1024 for a backup (`start_sync_thread`). */
const MIN_MAXLEN: Record<SyncRole, number> = { master: 1, backup: 1024 };
export const DEFAULT_SEND_DELAY_MS = 20;
/** Snapshot parts are larger than sync messages: they are rare and Redis carries them whole. */
const SNAPSHOT_PART_BYTES = 64 * 1024;
/** Resync requests coming together are answered by one snapshot after this wait. */
const SNAPSHOT_COALESCE_MS = 5;
const RESYNC_ATTEMPTS = 5;
const DEFAULT_RESYNC_RETRY_MS = 500;
/** How long `start` waits for the channel before answering with state "connecting". */
const CONNECT_WAIT_MS = 3000;
/** Sending directors remembered by a backup (the least recently heard are forgotten). */
const MAX_PEERS = 256;

const ROLES: readonly SyncRole[] = ['master', 'backup'];

// ---------------------------------------------------------------------------------------------
// Requests

/** The error of every sync call when the service has no sync channel. */
export function syncUnconfigured(): IpvsError {
  return new IpvsError(
    'FAILED_PRECONDITION',
    'SYNC_REDIS_URL: sync daemons need a Redis for their channel; start the service with SYNC_REDIS_URL=redis://host:port',
    'SYNC_REDIS_URL',
  );
}

export function parseRole(value: unknown, field = 'role'): SyncRole {
  if (value !== 'master' && value !== 'backup') throw invalid(field, value, 'must be "master" or "backup"');
  return value;
}

/** PUT /v1/sync's body (proto SyncDaemonConfig in JSON form) as start options. */
export function parseStartRequest(body: unknown): SyncStartOptions {
  const b = objectWith(body ?? {}, 'body', [
    'role',
    'syncid',
    'mcastInterface',
    'syncMaxlen',
    'mcastGroup',
    'mcastPort',
    'mcastTtl',
  ]);
  const out: SyncStartOptions = { role: parseRole(b.role) };
  if (b.syncid !== undefined && b.syncid !== null) out.syncid = b.syncid as number;
  if (b.syncMaxlen !== undefined && b.syncMaxlen !== null) out.maxlen = b.syncMaxlen as number;
  if (b.mcastInterface !== undefined && b.mcastInterface !== null)
    out.mcastInterface = b.mcastInterface as string;
  if (b.mcastGroup !== undefined && b.mcastGroup !== null) out.mcastGroup = b.mcastGroup as string;
  if (b.mcastPort !== undefined && b.mcastPort !== null) out.mcastPort = b.mcastPort as number;
  if (b.mcastTtl !== undefined && b.mcastTtl !== null) out.mcastTtl = b.mcastTtl as number;
  settle(out);
  return out;
}

function multicastGroup(value: unknown): string {
  const ip = parseIp(value, 'mcastGroup');
  const multicast = ip.family === 4 ? ip.words[0] >>> 28 === 0xe : ip.words[0] >>> 24 === 0xff;
  if (!multicast) throw invalid('mcastGroup', value, 'must be a multicast address (224.0.0.0/4 or ff00::/8)');
  return ip.text;
}

/** Validates start options and applies ipvsadm's and the kernel's defaults and clamps. */
export function settle(o: SyncStartOptions): SyncDaemonConfig {
  const role = parseRole(o.role);
  const syncid = optionalInt(o.syncid, 'syncid', 0, 255, 0);
  const given = optionalInt(o.maxlen, 'syncMaxlen', 0, MAX_MAXLEN, 0);
  const maxlen = given === 0 ? DEFAULT_MAXLEN : Math.max(MIN_MAXLEN[role], given);
  let mcastInterface = 'eth0';
  if (o.mcastInterface !== undefined && o.mcastInterface !== '') {
    if (
      typeof o.mcastInterface !== 'string' ||
      o.mcastInterface.length > 15 ||
      /[\s/]/.test(o.mcastInterface)
    )
      throw invalid('mcastInterface', o.mcastInterface, 'must be an interface name of at most 15 characters');
    mcastInterface = o.mcastInterface;
  }
  const mcastGroup = o.mcastGroup === undefined ? '224.0.0.81' : multicastGroup(o.mcastGroup);
  const mcastPort = optionalInt(o.mcastPort, 'mcastPort', 1, 65535, 8848);
  const mcastTtl = optionalInt(o.mcastTtl, 'mcastTtl', 1, 255, 1);
  return { role, syncid, maxlen, mcastInterface, mcastGroup, mcastPort, mcastTtl };
}

// ---------------------------------------------------------------------------------------------
// The manager

export interface SyncManagerOptions {
  engine: Engine;
  /** SYNC_REDIS_URL; without it every start is FAILED_PRECONDITION. */
  redisUrl: string | undefined;
  /** Default: IPVS_DIRECTOR_ID, else a random UUID (a restarted process is a new director). */
  directorId?: string;
  /** Default: IPVS_SYNC_SEND_DELAY (ms), else 20. */
  sendDelayMs?: number;
  /** First wait before a resync request is repeated (doubled each time). Default 500 ms. */
  resyncRetryMs?: number;
  logger?: Logger;
  /** Test hooks and tuning of the Redis channel (drop on purpose, reconnect delay). */
  channel?: Pick<SyncChannelOptions, 'dropOnPublish' | 'retryDelayMs'>;
  /** Wall clock for sent_at_ms and lag (the engine's clock may be a manual one). */
  now?: () => number;
}

/** What the daemons use of their manager. */
interface Director {
  readonly id: string;
  readonly engine: Engine;
  readonly logger: Logger | undefined;
  readonly sendDelayMs: number;
  readonly resyncRetryMs: number;
  now(): number;
  /** Publishes on `syncid`'s channel with the next sequence number. */
  publish(syncid: number, encode: (header: Header) => Uint8Array): { sequence: bigint; sent: Promise<void> };
  activeSyncids(): Promise<number[]>;
  reconnects(): number;
  state(): 'running' | 'connecting';
}

function envDelay(): number | undefined {
  const text = process.env.IPVS_SYNC_SEND_DELAY;
  if (text === undefined || text === '') return undefined;
  const n = Number(text);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

export class SyncManager {
  readonly directorId: string;
  /** The director id as encoded on the wire, to drop its own messages before decoding them. */
  private readonly ownIdBytes: Uint8Array;
  private readonly director: Director;
  private channel: SyncChannel | undefined;
  /** Last sequence number per syncid channel (shared by this director's roles). */
  private readonly sequences = new Map<number, bigint>();
  private master: MasterDaemon | undefined;
  private backup: BackupDaemon | undefined;
  private lock: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(private readonly options: SyncManagerOptions) {
    this.directorId = options.directorId ?? (process.env.IPVS_DIRECTOR_ID || randomUUID());
    this.ownIdBytes = new TextEncoder().encode(this.directorId);
    const now = options.now ?? Date.now;
    this.director = {
      id: this.directorId,
      engine: options.engine,
      logger: options.logger,
      sendDelayMs: options.sendDelayMs ?? envDelay() ?? DEFAULT_SEND_DELAY_MS,
      resyncRetryMs: options.resyncRetryMs ?? DEFAULT_RESYNC_RETRY_MS,
      now,
      publish: (syncid, encode) => this.publish(syncid, encode),
      activeSyncids: async () => (this.channel ? this.channel.activeSyncids() : []),
      reconnects: () => this.channel?.reconnects ?? 0,
      state: () => this.channel?.state() ?? 'connecting',
    };
  }

  /** Whether a sync channel is configured (SYNC_REDIS_URL). */
  get configured(): boolean {
    return this.options.redisUrl !== undefined;
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.lock.then(work, work);
    this.lock = run.catch(() => undefined);
    return run;
  }

  private publish(
    syncid: number,
    encode: (header: Header) => Uint8Array,
  ): { sequence: bigint; sent: Promise<void> } {
    const sequence = (this.sequences.get(syncid) ?? 0n) + 1n;
    this.sequences.set(syncid, sequence);
    const header: Header = {
      directorId: this.directorId,
      syncid,
      sequence,
      sentAtMs: BigInt(Math.max(0, Math.floor(this.director.now()))),
    };
    const channel = this.channel;
    const sent = channel
      ? channel.publish(syncid, encode(header)).then(() => undefined)
      : Promise.reject(new Error('sync channel closed'));
    sent.catch(() => undefined);
    return { sequence, sent };
  }

  private openChannel(): SyncChannel {
    if (this.channel) return this.channel;
    this.channel = new SyncChannel({
      url: this.options.redisUrl as string,
      logger: this.options.logger,
      ...this.options.channel,
      onMessage: (payload, channel, viaPattern) => this.dispatch(payload, channel, viaPattern),
      onSubscribed: (reconnected) => {
        const backup = this.backup;
        if (backup && (reconnected || backup.beginWhenSubscribed)) backup.begin('reconnect');
      },
    });
    return this.channel;
  }

  private dispatch(payload: Buffer, channel: string, viaPattern: boolean): void {
    if (this.ownIdBytes.length < 128 && sentBy(payload, this.ownIdBytes)) {
      if (this.backup) this.backup.counters.messagesIgnored++;
      return;
    }
    let message: SyncMessage;
    try {
      message = decodeMessage(payload);
    } catch {
      if (this.backup) this.backup.counters.messagesIgnored++;
      this.options.logger?.debug({ channel }, 'sync: undecodable message ignored');
      return;
    }
    const master = this.master;
    if (master && !viaPattern && channel === channelOf(master.config.syncid)) master.onMessage(message);
    const backup = this.backup;
    if (backup) {
      const mine =
        backup.config.syncid === 0 ? viaPattern : !viaPattern && channel === channelOf(backup.config.syncid);
      if (mine) backup.onMessage(message);
    }
  }

  /** `ipvsadm --start-daemon`. */
  async start(options: SyncStartOptions): Promise<SyncDaemonView> {
    const config = settle(options);
    if (!this.configured) throw syncUnconfigured();
    return this.exclusive(async () => {
      if (this.closed) throw new IpvsError('UNAVAILABLE', 'sync: the service is stopping');
      const running = config.role === 'master' ? this.master : this.backup;
      if (running) {
        throw alreadyExists(
          'role',
          `Daemon has already run (the ${config.role} sync daemon runs with syncid ${running.config.syncid})`,
        );
      }
      const channel = this.openChannel();
      if (config.role === 'master') {
        const daemon = new MasterDaemon(this.director, config);
        this.master = daemon;
        await channel.subscribe(config.syncid);
        daemon.attach();
        await channel.waitRunning(CONNECT_WAIT_MS);
        return daemon.view();
      }
      const daemon = new BackupDaemon(this.director, config);
      this.backup = daemon;
      // The resync request of its start goes out once it is subscribed (now, or when Redis answers).
      daemon.beginWhenSubscribed = true;
      await channel.subscribe(config.syncid === 0 ? 'all' : config.syncid);
      await channel.waitRunning(CONNECT_WAIT_MS);
      if (channel.state() === 'running' && daemon.beginWhenSubscribed) daemon.begin('start');
      return daemon.view();
    });
  }

  /** `ipvsadm --stop-daemon`. */
  async stop(role: SyncRole): Promise<void> {
    parseRole(role);
    if (!this.configured) throw syncUnconfigured();
    await this.exclusive(async () => {
      const daemon = role === 'master' ? this.master : this.backup;
      if (!daemon) throw notFound('role', `No daemon is running (no ${role} sync daemon)`);
      await this.stopDaemon(daemon);
    });
  }

  private async stopDaemon(daemon: MasterDaemon | BackupDaemon): Promise<void> {
    await daemon.stop();
    const channel = this.channel;
    if (daemon instanceof MasterDaemon) {
      this.master = undefined;
      await channel?.unsubscribe(daemon.config.syncid).catch(() => undefined);
    } else {
      this.backup = undefined;
      await channel
        ?.unsubscribe(daemon.config.syncid === 0 ? 'all' : daemon.config.syncid)
        .catch(() => undefined);
    }
    if (!this.master && !this.backup && channel) {
      this.channel = undefined;
      await channel.close();
    }
  }

  /** `ipvsadm -L --daemon`, with health: master first, then backup. */
  list(): SyncDaemonView[] {
    const out: SyncDaemonView[] = [];
    for (const role of ROLES) {
      const d = role === 'master' ? this.master : this.backup;
      if (d) out.push(d.view());
    }
    return out;
  }

  /** Stops both daemons and closes the channel (service shutdown). */
  async close(): Promise<void> {
    await this.exclusive(async () => {
      this.closed = true;
      for (const d of [this.master, this.backup]) if (d) await this.stopDaemon(d);
      await this.channel?.close();
      this.channel = undefined;
    });
  }
}

// ---------------------------------------------------------------------------------------------
// Daemons

function baseView(d: Director, config: SyncDaemonConfig, startedAtMs: number) {
  return {
    role: config.role,
    syncid: config.syncid,
    state: d.state(),
    directorId: d.id,
    channel: config.role === 'backup' && config.syncid === 0 ? ALL_CHANNELS : channelOf(config.syncid),
    mcastInterface: config.mcastInterface,
    syncMaxlen: config.maxlen,
    mcastGroup: config.mcastGroup,
    mcastPort: config.mcastPort,
    mcastTtl: config.mcastTtl,
    startedAtMs,
  };
}

class MasterDaemon {
  readonly counters: MasterCounters = newMasterCounters();
  private readonly batcher: Batcher;
  private readonly startedAtMs: number;
  private snapshotTimer: NodeJS.Timeout | undefined;
  private sending = false;
  private again = false;
  private stopped = false;
  private snapshots = 0;

  constructor(
    private readonly d: Director,
    readonly config: SyncDaemonConfig,
  ) {
    this.startedAtMs = d.now();
    this.batcher = new Batcher({
      maxlen: config.maxlen,
      overhead: headerOverhead(d.id, config.maxlen),
      delayMs: d.sendDelayMs,
      send: (records) => this.sendEntries(records),
    });
  }

  attach(): void {
    this.d.engine.setSyncListener((entries) => {
      if (!this.stopped) this.batcher.add(entries);
    });
  }

  private track(sent: { sequence: bigint; sent: Promise<void> }): void {
    this.counters.messagesSent++;
    this.counters.lastSequence = Number(sent.sequence);
    sent.sent.catch((err: unknown) => {
      this.counters.publishErrors++;
      this.d.logger?.debug({ err: (err as Error).message }, 'sync: publish failed');
    });
  }

  private sendEntries(records: Uint8Array[]): void {
    this.track(this.d.publish(this.config.syncid, (h) => encodeEntriesMessage(h, records)));
    this.counters.entriesSent += records.length;
  }

  onMessage(message: SyncMessage): void {
    if (message.body.case !== 'resyncRequest' || message.directorId === this.d.id) return;
    const to = message.body.value.director;
    if (to !== '' && to !== this.d.id) return;
    this.counters.resyncRequestsServed++;
    if (this.sending) {
      // A snapshot is on its way, but it may have been taken before this backup subscribed.
      this.again = true;
      return;
    }
    this.snapshotTimer ??= setTimeout(() => {
      this.snapshotTimer = undefined;
      void this.sendSnapshots();
    }, SNAPSHOT_COALESCE_MS);
  }

  private async sendSnapshots(): Promise<void> {
    this.sending = true;
    try {
      do {
        this.again = false;
        // Everything decided before the snapshot goes out first: the snapshot is the newer state.
        this.batcher.flush();
        const entries = await this.d.engine.syncSnapshot();
        if (this.stopped) return;
        this.sendSnapshot(entries);
      } while (this.again && !this.stopped);
    } catch (err) {
      this.d.logger?.error({ err }, 'sync: snapshot failed');
    } finally {
      this.sending = false;
    }
  }

  private sendSnapshot(entries: readonly SyncEntry[]): void {
    const snapshotId = `${this.d.id}/${++this.snapshots}`;
    const room =
      SNAPSHOT_PART_BYTES - headerOverhead(this.d.id, SNAPSHOT_PART_BYTES) - snapshotId.length - 16;
    const parts: Uint8Array[][] = [[]];
    let bytes = 0;
    for (const e of entries) {
      const record = encodeEntry(e);
      const size = framedSize(record.length);
      if (bytes + size > room && parts[parts.length - 1].length > 0) {
        parts.push([]);
        bytes = 0;
      }
      parts[parts.length - 1].push(record);
      bytes += size;
    }
    parts.forEach((records, part) => {
      const last = part === parts.length - 1;
      this.track(
        this.d.publish(this.config.syncid, (h) =>
          encodeSnapshotMessage(h, { snapshotId, part, last }, records),
        ),
      );
      this.counters.entriesSent += records.length;
    });
    this.counters.snapshotsSent++;
  }

  async stop(): Promise<void> {
    this.d.engine.setSyncListener(null);
    this.batcher.flush();
    this.stopped = true;
    if (this.snapshotTimer) clearTimeout(this.snapshotTimer);
    this.snapshotTimer = undefined;
  }

  view(): SyncDaemonView {
    const c = this.counters;
    return {
      ...baseView(this.d, this.config, this.startedAtMs),
      health: {
        reconnects: this.d.reconnects(),
        messagesSent: c.messagesSent,
        entriesSent: c.entriesSent,
        lastSequence: c.lastSequence,
        snapshotsSent: c.snapshotsSent,
        resyncRequestsServed: c.resyncRequestsServed,
        publishErrors: c.publishErrors,
      },
    };
  }
}

interface SnapshotProgress {
  id: string;
  next: number;
  ok: boolean;
  /** Keys of this director's local entries, read once per snapshot. */
  local?: Promise<Set<string>>;
}

interface Peer {
  directorId: string;
  syncid: number;
  lastSequence: bigint;
  messages: number;
  gaps: number;
  lastMessageAtMs: number;
  snapshot?: SnapshotProgress;
}

interface PendingResync {
  key: string;
  syncid: number;
  director: string;
  reason: string;
  attempts: number;
  timer?: NodeJS.Timeout;
}

const endpointText = (addr: string, port: number) =>
  addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;

function entryKey(e: SyncEntry): string {
  const pe = e.template && e.peName === 'sip' ? (e.peData ?? '') : '';
  return `${e.template ? 'T' : 'C'}|${e.protocol}|${endpointText(e.clientAddress, e.clientPort)}|${endpointText(e.virtualAddress, e.virtualPort)}|${pe}`;
}

function connectionKey(c: Connection): string {
  return `${c.template ? 'T' : 'C'}|${c.protocol}|${c.client}|${c.virtual}|${c.template ? (c.callId ?? '') : ''}`;
}

class BackupDaemon {
  readonly counters: BackupCounters = newBackupCounters();
  private readonly lag = new LagWindow();
  private readonly peers = new Map<string, Peer>();
  private readonly pending = new Map<string, PendingResync>();
  private readonly startedAtMs: number;
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;
  /** Set at start: the start's resync request goes out once the subscription is in place. */
  beginWhenSubscribed = false;

  constructor(
    private readonly d: Director,
    readonly config: SyncDaemonConfig,
  ) {
    this.startedAtMs = d.now();
  }

  /** Asks the masters of its channel(s) for a snapshot (start, or back from a lost connection). */
  begin(why: 'start' | 'reconnect'): void {
    if (this.stopped) return;
    const reason = this.beginWhenSubscribed ? 'start' : why;
    this.beginWhenSubscribed = false;
    if (this.config.syncid !== 0) {
      this.requestResync(this.config.syncid, '', reason);
      return;
    }
    // Syncid 0 listens to every channel: ask on those that have subscribers (masters subscribe
    // to theirs) and those it heard from.
    const ask = (active: number[]) => {
      const syncids = new Set(active);
      for (const p of this.peers.values()) syncids.add(p.syncid);
      for (const s of syncids) this.requestResync(s, '', reason);
    };
    this.d.activeSyncids().then(ask, (err: unknown) => {
      this.d.logger?.debug({ err: (err as Error).message }, 'sync: PUBSUB CHANNELS failed');
      ask([]);
    });
  }

  /**
   * Asks `director` (every master when empty) on `syncid`'s channel for a snapshot, unless that is
   * already being asked; a gap asks again at once (what was lost may be newer than the pending ask).
   */
  private requestResync(syncid: number, director: string, reason: string): void {
    if (this.stopped) return;
    const key = `${syncid}/${director}`;
    const already = this.pending.get(key);
    if (already) {
      if (reason !== 'gap') return;
      clearTimeout(already.timer);
      this.pending.delete(key);
    }
    const p: PendingResync = { key, syncid, director, reason, attempts: 0 };
    this.pending.set(key, p);
    this.sendRequest(p);
  }

  private sendRequest(p: PendingResync): void {
    if (this.stopped || this.pending.get(p.key) !== p) return;
    p.attempts++;
    this.counters.resyncsRequested++;
    const message = (h: Header) =>
      encodeMessage(
        create(SyncMessageSchema, {
          ...h,
          body: { case: 'resyncRequest', value: { director: p.director, reason: p.reason } },
        }),
      );
    this.d.publish(p.syncid, message);
    const wait = this.d.resyncRetryMs * 2 ** (p.attempts - 1);
    p.timer = setTimeout(() => {
      if (p.attempts < RESYNC_ATTEMPTS) this.sendRequest(p);
      else if (this.pending.get(p.key) === p) this.pending.delete(p.key);
    }, wait);
  }

  /** A complete snapshot of `director` answers requests to it and to every master of `syncid`. */
  private resynced(syncid: number, director: string): void {
    for (const key of [`${syncid}/${director}`, `${syncid}/`]) {
      const p = this.pending.get(key);
      if (!p) continue;
      clearTimeout(p.timer);
      this.pending.delete(key);
    }
  }

  /**
   * Sequence bookkeeping for one message of another director. A director first heard through a
   * resync request (a backup) is not remembered; once it sends entries it is, and from then on all
   * its messages count (its backup's requests share its numbering).
   */
  private peerOf(message: SyncMessage, data: boolean): { peer?: Peer; fresh: boolean; gap: boolean } {
    const key = `${message.directorId}/${message.syncid}`;
    const now = this.d.now();
    let peer = this.peers.get(key);
    let fresh = false;
    let gap = false;
    if (!peer) {
      if (!data) return { fresh, gap };
      fresh = true;
      peer = {
        directorId: message.directorId,
        syncid: message.syncid,
        lastSequence: message.sequence,
        messages: 0,
        gaps: 0,
        lastMessageAtMs: now,
      };
      if (this.peers.size >= MAX_PEERS) this.forgetOldestPeer();
      this.peers.set(key, peer);
    } else if (message.sequence === peer.lastSequence + 1n) {
      // in order
    } else if (message.sequence > peer.lastSequence + 1n) {
      gap = true;
      peer.gaps++;
      this.counters.gaps++;
      if (peer.snapshot) peer.snapshot.ok = false;
      this.d.logger?.info(
        {
          director: peer.directorId,
          syncid: peer.syncid,
          missing: Number(message.sequence - peer.lastSequence - 1n),
        },
        'sync: messages lost; asking for a resync',
      );
    } else {
      // The sequence went back: the director restarted under the same id (IPVS_DIRECTOR_ID).
      fresh = true;
      peer.snapshot = undefined;
    }
    peer.lastSequence = message.sequence;
    peer.messages++;
    peer.lastMessageAtMs = now;
    return { peer, fresh, gap };
  }

  private forgetOldestPeer(): void {
    let oldest: [string, Peer] | undefined;
    for (const entry of this.peers)
      if (!oldest || entry[1].lastMessageAtMs < oldest[1].lastMessageAtMs) oldest = entry;
    if (oldest) this.peers.delete(oldest[0]);
  }

  onMessage(message: SyncMessage): void {
    if (this.stopped) return;
    const data = message.body.case === 'entries' || message.body.case === 'snapshot';
    if (message.directorId === this.d.id) {
      // Its own director's messages (its master's, when both roles run on one channel; its own
      // resync requests come back too and are not worth counting).
      if (data) this.counters.messagesIgnored++;
      return;
    }
    if (this.config.syncid !== 0 && message.syncid !== this.config.syncid) {
      this.counters.messagesIgnored++;
      return;
    }
    const { peer, fresh, gap } = this.peerOf(message, data);
    const body = message.body;
    if (!peer || (body.case !== 'entries' && body.case !== 'snapshot')) {
      // A resync request of another backup: only its sequence number matters here.
      if (peer && gap) this.requestResync(message.syncid, message.directorId, 'gap');
      return;
    }
    const now = this.d.now();
    this.counters.messagesReceived++;
    this.lag.add(now - Number(message.sentAtMs));
    if (gap) this.requestResync(message.syncid, message.directorId, 'gap');
    else if (fresh && !(body.case === 'snapshot' && body.value.part === 0))
      this.requestResync(message.syncid, message.directorId, 'new-director');

    const entries = body.value.entries.map(fromProtoEntry);
    this.counters.entriesReceived += entries.length;
    if (body.case === 'entries') {
      this.enqueue(async () => {
        this.count(await this.d.engine.applySync(entries));
      });
      return;
    }

    const part = body.value;
    let progress = peer.snapshot;
    if (part.part === 0) progress = { id: part.snapshotId, next: 1, ok: true };
    else if (progress && progress.id === part.snapshotId && progress.next === part.part) progress.next++;
    else progress = { id: part.snapshotId, next: part.part + 1, ok: false };
    peer.snapshot = part.last ? undefined : progress;
    const complete = part.last && progress.ok;
    const snapshot = progress;
    const { syncid, directorId } = message;
    this.enqueue(async () => {
      snapshot.local ??= this.localKeys();
      const local = await snapshot.local;
      const mine = entries.filter((e) => !local.has(entryKey(e)));
      this.counters.entriesSkipped += entries.length - mine.length;
      if (mine.length > 0) this.count(await this.d.engine.applySync(mine));
      if (complete) {
        this.counters.snapshotsApplied++;
        this.resynced(syncid, directorId);
      }
    });
  }

  private async localKeys(): Promise<Set<string>> {
    const conns = await this.d.engine.listConnections();
    const keys = new Set<string>();
    for (const c of conns) if (c.origin !== 'sync') keys.add(connectionKey(c));
    return keys;
  }

  private count(result: { applied: number; unbound: number; ignored: number }): void {
    this.counters.entriesApplied += result.applied;
    this.counters.entriesUnbound += result.unbound;
    this.counters.entriesIgnored += result.ignored;
  }

  /** Applies in arrival order, one message at a time. */
  private enqueue(work: () => Promise<void>): void {
    this.queue = this.queue
      .then(() => (this.stopped ? undefined : work()))
      .catch((err: unknown) => this.d.logger?.error({ err }, 'sync: applying a message failed'));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
    await this.queue;
  }

  /** Resolves once every message received so far is applied (tests). */
  idle(): Promise<void> {
    return this.queue;
  }

  view(): SyncDaemonView {
    const c = this.counters;
    const directors: SyncPeerView[] = [...this.peers.values()].map((p) => ({
      directorId: p.directorId,
      syncid: p.syncid,
      lastSequence: Number(p.lastSequence),
      messagesReceived: p.messages,
      gaps: p.gaps,
      lastMessageAtMs: p.lastMessageAtMs,
    }));
    const view: SyncDaemonView = {
      ...baseView(this.d, this.config, this.startedAtMs),
      health: {
        reconnects: this.d.reconnects(),
        messagesReceived: c.messagesReceived,
        entriesReceived: c.entriesReceived,
        entriesApplied: c.entriesApplied,
        entriesUnbound: c.entriesUnbound,
        entriesIgnored: c.entriesIgnored,
        entriesSkipped: c.entriesSkipped,
        messagesIgnored: c.messagesIgnored,
        gaps: c.gaps,
        resyncsRequested: c.resyncsRequested,
        snapshotsApplied: c.snapshotsApplied,
        directors,
      },
    };
    const last = this.lag.last;
    if (last !== undefined) {
      view.health.lagMs = last;
      view.health.lagP50Ms = this.lag.percentile(50);
      view.health.lagP99Ms = this.lag.percentile(99);
    }
    return view;
  }
}
