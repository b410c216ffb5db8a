/**
 * A replica's cache of the fleet's configuration: the service lookup index, the sysctls and the
 * timeouts, so a Schedule costs one round trip (its script call) instead of three.
 *
 * The authoritative configuration is each service's own `cfg` hash (written inside the atomic
 * admin call, on the service's slot); the index is derived from it: the `tags` set names every
 * service key that has state, and one HMGET per tag reads its JSON and version. So there is no
 * second copy that a replica dying between two writes could leave behind.
 *
 * The cache is dropped (and read again on next use) when:
 *  - any replica announces a change on the `<prefix>config` pub/sub channel (every admin call does,
 *    after its atomic call);
 *  - this replica's subscriber (re)connects: a message published while it was away is not lost
 *    silently, the whole cache is read again;
 *  - a script answers STALE (the version the caller resolved with is not the service's version);
 *  - a lookup misses (a service added a moment ago on another replica);
 *  - it is older than `maxAgeMs` (a belt-and-braces bound; pub/sub is the fast path).
 */
import type { ServiceConfig } from '../specs.js';
import { DEFAULT_TIMEOUTS, type Timeouts } from '../../director/states.js';
import { DEFAULT_SYSCTL, type SysctlValues } from '../../director/sysctl.js';
import type { Service } from '../../director/model.js';
import type { ServiceIndex } from '../../director/service-lookup.js';
import type { RedisClient } from './client.js';
import { tagPrefix, type GlobalKeys } from './keys.js';

export interface IndexEntry {
  ver: number;
  cfg: ServiceConfig;
}

export interface ConfigSnapshot {
  index: Map<string, IndexEntry>;
  /** The index as service-lookup.ts's `findService` reads it (the kernel's ftpsvc / nullsvc counts). */
  lookup: ServiceIndex;
  /** Every service tag with state, live or not (entries may outlive their service). */
  tags: readonly string[];
  tagSet: ReadonlySet<string>;
  /** Those of fwmark services (`fwm:…`, `fwm6:…`): any tuple may have an entry there. */
  fwmarkTags: readonly string[];
  sysctl: SysctlValues;
  timeouts: Timeouts;
  /** ARGV[2] of every service script (ARGV[1] is now): the sysctls and timeouts scripts read. */
  env: string;
  loadedAt: number;
}

export const DEFAULT_MAX_AGE_MS = 5000;

export function defaultSysctl(): SysctlValues {
  return { ...DEFAULT_SYSCTL, sync_threshold: [3, 50] };
}

function envOf(s: SysctlValues, t: Timeouts): string {
  return [
    s.expire_quiescent_template,
    s.expire_nodest_conn,
    s.conn_reuse_mode,
    s.secure_tcp,
    s.lblc_expiration,
    s.lblcr_expiration,
    t.tcp,
    t.tcpFin,
    t.udp,
  ].join(' ');
}

function lookupOf(index: Map<string, IndexEntry>): ServiceIndex {
  let ftpServices = 0;
  let portZeroServices = 0;
  const services = new Map<string, Service>();
  for (const [key, { cfg }] of index) {
    services.set(key, { key } as unknown as Service);
    if (cfg.id.kind !== 'addr') continue;
    if (cfg.id.port === 21) ftpServices++;
    if (cfg.id.port === 0) portZeroServices++;
  }
  return { get: (key) => services.get(key), ftpServices, portZeroServices };
}

export class ConfigCache {
  private current: Promise<ConfigSnapshot> | undefined;
  /** What `current` resolved to, once it did. */
  private loaded: ConfigSnapshot | undefined;
  private subscriber: RedisClient | undefined;
  readonly channel: string;

  constructor(
    private readonly redis: RedisClient,
    private readonly g: GlobalKeys,
    private readonly prefix: string,
    private readonly maxAgeMs = DEFAULT_MAX_AGE_MS,
  ) {
    this.channel = `${prefix}config`;
  }

  /** Listens for other replicas' announcements on a connection of its own. */
  listen(): void {
    if (this.subscriber) return;
    const sub = (this.redis as { duplicate(): RedisClient }).duplicate();
    this.subscriber = sub;
    sub.on('error', () => {
      // reconnects by itself; while it is away the cache ages out (maxAgeMs) and `ready` re-reads it
    });
    sub.on('ready', () => {
      this.invalidate();
      sub.subscribe(this.channel).catch(() => this.invalidate());
    });
    sub.on('message', () => this.invalidate());
  }

  invalidate(): void {
    this.current = undefined;
    this.loaded = undefined;
  }

  /** Drops this replica's cache and tells every other replica to drop theirs. */
  async announce(): Promise<void> {
    this.invalidate();
    await this.redis.publish(this.channel, 'changed');
  }

  /** Drops the cache when it was read more than `ms` ago; whether it did. */
  async refreshIfOlderThan(ms: number, now = Date.now()): Promise<boolean> {
    const cached = this.current;
    if (cached && now - (await cached).loadedAt <= ms) return false;
    if (this.current === cached) this.invalidate();
    return true;
  }

  /** The cached snapshot when it is loaded and fresh (no promise: the hot path of a Schedule). */
  fresh(now = Date.now()): ConfigSnapshot | undefined {
    const s = this.loaded;
    if (s && this.current && now - s.loadedAt <= this.maxAgeMs) return s;
    return undefined;
  }

  get(now = Date.now()): Promise<ConfigSnapshot> {
    const cached = this.current;
    if (cached) {
      return cached.then((s) => {
        if (now - s.loadedAt <= this.maxAgeMs || this.current !== cached) return s;
        this.invalidate();
        return this.get(now);
      });
    }
    const loading = this.load(now);
    this.current = loading;
    this.loaded = undefined;
    loading.then(
      (s) => {
        if (this.current === loading) this.loaded = s;
      },
      () => {
        if (this.current === loading) this.current = undefined;
      },
    );
    return loading;
  }

  private async load(now: number): Promise<ConfigSnapshot> {
    const [tags, sysRaw, toRaw] = await Promise.all([
      this.redis.smembers(this.g.tags),
      this.redis.get(this.g.sysctl),
      this.redis.get(this.g.timeouts),
    ]);
    const rows = await Promise.all(
      tags.map((tag) => this.redis.hmget(`${tagPrefix(this.prefix, tag)}cfg`, 'json', 'ver')),
    );
    const index = new Map<string, IndexEntry>();
    tags.forEach((tag, i) => {
      const [json, ver] = rows[i];
      if (json !== null && ver !== null) index.set(tag, { ver: Number(ver), cfg: JSON.parse(json) });
    });
    const sysctl = sysRaw ? (JSON.parse(sysRaw) as SysctlValues) : defaultSysctl();
    const timeouts = toRaw ? (JSON.parse(toRaw) as Timeouts) : { ...DEFAULT_TIMEOUTS };
    return {
      index,
      lookup: lookupOf(index),
      tags,
      tagSet: new Set(tags),
      fwmarkTags: tags.filter((tag) => tag.startsWith('fwm')),
      sysctl,
      timeouts,
      env: envOf(sysctl, timeouts),
      loadedAt: now,
    };
  }

  close(): void {
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }
}
