/**
 * The conn-sync transport: Redis pub/sub on SYNC_REDIS_URL in place of the kernel's UDP multicast.
 * One channel per syncid (`ipvs:sync:<syncid>`); a backup with syncid 0 accepts every syncid, as the
 * kernel's does, through the pattern `ipvs:sync:*`. Messages are binary (protobuf).
 *
 * One publisher and one subscriber connection per director, shared by its master and backup
 * daemons. Both reconnect by themselves. Pub/sub keeps nothing for a subscriber that is away, so
 * after the subscriber comes back (and every subscription is in place again) `onSubscribed` fires
 * with `reconnected` true: the backup then asks for a resync. The publisher has no offline queue: a message published while
 * it is down fails at once (counted; the backups see the gap in the sequence numbers).
 */
import { Redis, type RedisOptions } from 'ioredis';
import type { Logger } from 'pino';

export const CHANNEL_PREFIX = 'ipvs:sync:';
/** What a backup with syncid 0 subscribes to. */
export const ALL_CHANNELS = `${CHANNEL_PREFIX}*`;

export const channelOf = (syncid: number): string => `${CHANNEL_PREFIX}${syncid}`;

/** A syncid's channel, or every channel (a backup with syncid 0). */
export type Subscription = number | 'all';

export interface SyncChannelOptions {
  url: string;
  /** A message on a subscribed channel; `viaPattern` when it came through `ipvs:sync:*`. */
  onMessage: (payload: Buffer, channel: string, viaPattern: boolean) => void;
  /**
   * Every subscription is in place on a new connection of the subscriber: its first one, or
   * (`reconnected`) one after a loss, when messages may have been missed.
   */
  onSubscribed?: (reconnected: boolean) => void;
  /** Test hook: true drops the message instead of publishing it (as a lost datagram). */
  dropOnPublish?: (payload: Uint8Array, channel: string) => boolean;
  /** Wait before reconnect attempt `attempt` (1, 2, …), ms. Default min(50·attempt, 2000). */
  retryDelayMs?: (attempt: number) => number;
  logger?: Logger;
}

/** `work`, or nothing after `ms` (the command may still complete later). */
async function bounded(work: Promise<unknown>, ms: number): Promise<void> {
  work.catch(() => undefined); // a failure after the wait is nobody's concern
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([work, new Promise((resolve) => (timer = setTimeout(resolve, ms)))]);
  } finally {
    clearTimeout(timer);
  }
}

const keyOf = (sub: Subscription): string => (sub === 'all' ? ALL_CHANNELS : channelOf(sub));
const isPattern = (key: string): boolean => key.endsWith('*');

export class SyncChannel {
  private readonly pub: Redis;
  private readonly sub: Redis;
  /** Subscribed keys (channel names or the pattern) and how many daemons want each. */
  private readonly refs = new Map<string, number>();
  /** Whether the subscriber's current connection has every subscription in place. */
  private subscribed = false;
  private subWasReady = false;
  private closed = false;
  private warned = false;
  /** Times the subscriber came back after a loss. */
  reconnects = 0;

  constructor(private readonly options: SyncChannelOptions) {
    const retry = options.retryDelayMs ?? ((attempt: number) => Math.min(50 * attempt, 2000));
    const common: RedisOptions = {
      retryStrategy: (attempt) => (this.closed ? null : retry(attempt)),
      enableReadyCheck: true,
      lazyConnect: false,
    };
    this.pub = new Redis(options.url, {
      ...common,
      connectionName: 'ipvs-sync-pub',
      enableOfflineQueue: false,
    });
    this.sub = new Redis(options.url, {
      ...common,
      connectionName: 'ipvs-sync-sub',
      // Subscriptions are put back by `resubscribe`, which then tells the backup.
      autoResubscribe: false,
      maxRetriesPerRequest: null,
    });
    for (const client of [this.pub, this.sub]) {
      client.on('error', (err: Error) => this.warn(err));
      client.on('ready', () => {
        this.warned = false;
      });
    }
    this.sub.on('ready', () => {
      const again = this.subWasReady;
      this.subWasReady = true;
      if (again) this.reconnects++;
      void this.resubscribe(again);
    });
    this.sub.on('close', () => {
      this.subscribed = false;
    });
    this.sub.on('messageBuffer', (channel: Buffer, message: Buffer) =>
      options.onMessage(message, channel.toString(), false),
    );
    this.sub.on('pmessageBuffer', (_pattern: string, channel: Buffer, message: Buffer) =>
      options.onMessage(message, channel.toString(), true),
    );
  }

  private warn(err: Error): void {
    if (this.closed || this.warned) return;
    this.warned = true;
    this.options.logger?.warn({ err: err.message }, 'sync channel: Redis connection lost; reconnecting');
  }

  private async resubscribe(reconnected: boolean): Promise<void> {
    const keys = [...this.refs.keys()];
    const channels = keys.filter((k) => !isPattern(k));
    const patterns = keys.filter(isPattern);
    try {
      if (channels.length > 0) await this.sub.subscribe(...channels);
      if (patterns.length > 0) await this.sub.psubscribe(...patterns);
    } catch (err) {
      this.warn(err as Error);
      return;
    }
    this.subscribed = true;
    if (!this.closed) this.options.onSubscribed?.(reconnected);
  }

  /** "running" while both connections are up and subscribed, else "connecting". */
  state(): 'running' | 'connecting' {
    return this.pub.status === 'ready' && this.sub.status === 'ready' && this.subscribed
      ? 'running'
      : 'connecting';
  }

  /** Resolves true once running, false after `timeoutMs`. */
  async waitRunning(timeoutMs: number): Promise<boolean> {
    const until = Date.now() + timeoutMs;
    while (this.state() !== 'running') {
      if (this.closed || Date.now() >= until) return false;
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return true;
  }

  /**
   * Adds a subscription (counted: several daemons may want the same one). Resolves once Redis
   * confirms it, or at once while the subscriber is away (it subscribes on its way back); never
   * rejects: a failure shows as state "connecting" and is retried with the next connection.
   */
  async subscribe(sub: Subscription, timeoutMs = 3000): Promise<void> {
    const key = keyOf(sub);
    const n = this.refs.get(key) ?? 0;
    this.refs.set(key, n + 1);
    if (n > 0 || this.sub.status !== 'ready' || !this.subWasReady) return;
    try {
      await bounded(isPattern(key) ? this.sub.psubscribe(key) : this.sub.subscribe(key), timeoutMs);
    } catch (err) {
      this.subscribed = false;
      this.warn(err as Error);
    }
  }

  async unsubscribe(sub: Subscription): Promise<void> {
    const key = keyOf(sub);
    const n = this.refs.get(key) ?? 0;
    if (n > 1) {
      this.refs.set(key, n - 1);
      return;
    }
    this.refs.delete(key);
    if (n === 0 || this.sub.status !== 'ready') return;
    // Bounded: a connection that just died would keep the command until it is back.
    await bounded(isPattern(key) ? this.sub.punsubscribe(key) : this.sub.unsubscribe(key), 1000).catch(
      () => undefined,
    );
  }

  /** Publishes to `channelOf(syncid)`; resolves to the number of receiving connections. */
  async publish(syncid: number, payload: Uint8Array): Promise<number> {
    const channel = channelOf(syncid);
    if (this.options.dropOnPublish?.(payload, channel)) return 0;
    return this.pub.publish(channel, Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength));
  }

  /** The syncids whose channels have subscribers now (`PUBSUB CHANNELS ipvs:sync:*`). */
  async activeSyncids(): Promise<number[]> {
    const names = (await this.pub.pubsub('CHANNELS', ALL_CHANNELS)) as string[];
    const out: number[] = [];
    for (const name of names) {
      const text = String(name).slice(CHANNEL_PREFIX.length);
      if (/^[0-9]{1,3}$/.test(text) && Number(text) <= 255) out.push(Number(text));
    }
    return out.sort((a, b) => a - b);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(
      [this.pub, this.sub].map(async (client) => {
        try {
          if (client.status === 'ready') await bounded(client.quit(), 1000);
        } catch {
          // closed anyway below
        }
        client.disconnect();
      }),
    );
  }
}
