/**
 * The redis engine: N stateless replicas share one Redis. Every operation on a virtual service is
 * ONE atomic Lua call (FCALL; EVALSHA on a Redis without Functions) on that service's slot — read,
 * decide and count cannot interleave between replicas, so least-connection is exact across the
 * fleet. Requests are validated here
 * with the same functions as the memory engine (src/engine/specs.ts); the scripts (lua/) hold the
 * IPVS flow and answer in the shapes the memory engine's views give.
 *
 * A Schedule's script arguments are computed in schedule-args.ts, answers shown as views.ts
 * does; configuration is cached per replica (config-cache.ts); `explain` candidates come from
 * the scheduler modules' own describe (explain.ts); rates from the shared estimator (rates.ts).
 * Conn-sync methods refuse (FAILED_PRECONDITION): a redis fleet does not run the sync daemon yet.
 *
 * Redis unreachable (see client.ts): every public method turns a connection failure into
 * UNAVAILABLE naming Redis (HTTP 503, gRPC UNAVAILABLE); `ready()` pings with a short timeout.
 */
import { Redis } from 'ioredis';
import { fold, parseIp } from '../../domain/address.js';
import { alreadyExists, invalid, IpvsError, notFound } from '../../domain/errors.js';
import {
  endpoint,
  formatEndpoint,
  parseEndpoint,
  serviceKeyOf,
  type Endpoint,
  type Protocol,
} from '../../domain/keys.js';
import { zeroCounters, type Counters } from '../../director/model.js';
import { findService, noServiceFor } from '../../director/service-lookup.js';
import type { Timeouts } from '../../director/states.js';
import { patchSysctl, type SysctlValues } from '../../director/sysctl.js';
import { MH_TAB_SIZE, mhPermutation } from '../../schedulers/mh.js';
import type { Clock } from '../clock.js';
import { guarded, unavailable, type RedisClient } from './client.js';
import {
  connectionView,
  countersOf,
  destView,
  list,
  serviceView,
  stats,
  type ConnRecord,
  type DestRecord,
  type Reply,
} from './views.js';
import { ConfigCache, type ConfigSnapshot, type IndexEntry } from './config-cache.js';
import { explanation } from './explain.js';
import { EXISTING_ONLY, packArgs, scheduleArgs, TUPLE_KEY } from './schedule-args.js';
import { advanceRates, parseRates, periodOf, ratesOf } from './rates.js';
import { RedisClock } from './redis-clock.js';
import type {
  BatchResult,
  BatchUpdate,
  Connection,
  ConnectionFilter,
  ConnectionUpdate,
  DestinationSpec,
  DestinationStatus,
  Engine,
  EngineSnapshot,
  ScheduleRequest,
  ScheduleResponse,
  ServiceSpec,
  ServiceStatus,
  StatsSnapshot,
  SyncApplyResult,
  SyncEntry,
  Sysctl,
} from '../engine.js';
import {
  parseBatchItem,
  parseConnectionUpdate,
  parseDestSpec,
  parseScheduleRequest,
  parseServiceSpec,
  parseTimeouts,
  type DestConfig,
  type ServiceConfig,
  type UpdateQuery,
} from '../specs.js';
import {
  DEFAULT_PREFIX,
  globalKeys,
  parseConnectionId,
  scriptKeys,
  tagPrefix,
  tupleKey,
  type GlobalKeys,
  type ParsedConnectionId,
} from './keys.js';
import { ScriptRunner } from './scripts.js';

export interface RedisEngineOptions {
  /** An ioredis client or Cluster (not closed by the engine) or a URL (the engine owns that connection). */
  redis: RedisClient | string;
  /** Whether close() disconnects the client (default: only a client the engine made from a URL). */
  ownsClient?: boolean;
  /**
   * The engine's time: an injected clock, or 'redis' for the fleet's manual clock kept in Redis
   * (`<prefix>clock`, see redis-clock.ts; exposed as `redisClock`).
   */
  clock: Clock | 'redis';
  /** Sweeps due timers every this many ms (system clock; failures while Redis is away are skipped). */
  autoTickMs?: number;
  /** Uniform integer in [0, n) for twos; defaults to Math.random. */
  randomInt?: (n: number) => number;
  /** Key prefix (default `ipvs:`); must not contain `{` or `}`. */
  prefix?: string;
  /**
   * Subscribe to other replicas' configuration announcements (default true). Without it the
   * cached configuration is refreshed only on STALE answers, lookup misses and `configMaxAgeMs`.
   */
  listen?: boolean;
  /** Longest time a replica trusts its cached configuration without an announcement (ms). */
  configMaxAgeMs?: number;
  /** How scripts are registered: a Functions library (default; EVALSHA when Redis has none) or EVALSHA. */
  scripts?: 'functions' | 'evalsha';
}

/** Most due timers one sweep call fires (bounded work per call); tick() repeats until done. */
const SWEEP_BUDGET = 1000;
const MAX_ATTEMPTS = 5;
/** A lookup miss re-reads the configuration only when the cached copy is older than this (ms). */
const MISS_REFRESH_MS = 20;
/** How long `ready()` waits for Redis's PONG (ms). */
const READY_TIMEOUT_MS = 500;

/** The Engine methods that talk to Redis: each turns a connection failure into UNAVAILABLE. */
const GUARDED = [
  'addService',
  'editService',
  'deleteService',
  'clear',
  'getService',
  'listServices',
  'addDestination',
  'editDestination',
  'deleteDestination',
  'zeroStats',
  'getStats',
  'schedule',
  'updateConnection',
  'closeConnection',
  'batch',
  'listConnections',
  'getTimeouts',
  'setTimeouts',
  'getSysctl',
  'setSysctl',
  'tick',
  'snapshot',
] as const satisfies readonly (keyof Engine)[];

const mathRandomInt = (n: number) => Math.floor(Math.random() * n);

/** The schedule script's flat answer (a decision without explain) as its JSON answer reads. */
function decisionOf(a: string[]): Reply {
  const r: Reply = {
    ok: true,
    service: a[0],
    destination: a[1],
    forward: a[2],
    connection: a[3],
    persistent: a[4] === '1',
    reused: a[5] === '1',
    state: a[6],
  };
  if (a[7]) r.template = a[7];
  return r;
}

function noSync(): IpvsError {
  return new IpvsError('FAILED_PRECONDITION', 'sync: not supported by the redis engine yet', 'sync');
}

export class RedisEngine implements Engine {
  readonly kind = 'redis' as const;
  readonly redis: RedisClient;
  readonly scripts: ScriptRunner;
  readonly prefix: string;
  /** The fleet's manual clock in Redis (present with `clock: 'redis'`). */
  readonly redisClock: RedisClock | undefined;
  private readonly g: GlobalKeys;
  private readonly ownsClient: boolean;
  private readonly clock: Clock | undefined;
  private readonly randomInt: (n: number) => number;
  private readonly interval: NodeJS.Timeout | undefined;
  private readonly config: ConfigCache;
  /** The last 2 s period whose rates this replica saw stored, per service tag. */
  private readonly estimated = new Map<string, number>();
  private ticking = false;

  constructor(options: RedisEngineOptions) {
    this.ownsClient = options.ownsClient ?? typeof options.redis === 'string';
    this.redis =
      typeof options.redis === 'string'
        ? new Redis(options.redis, { maxRetriesPerRequest: 1 })
        : options.redis;
    this.randomInt = options.randomInt ?? mathRandomInt;
    this.prefix = options.prefix ?? DEFAULT_PREFIX;
    if (/[{}]/.test(this.prefix)) throw new Error('redis key prefix must not contain { or }');
    this.g = globalKeys(this.prefix);
    this.scripts = new ScriptRunner(this.redis, undefined, options.scripts);
    this.config = new ConfigCache(this.redis, this.g, this.prefix, options.configMaxAgeMs);
    if (options.listen ?? true) this.config.listen();
    if (options.clock === 'redis') this.redisClock = new RedisClock(this.redis, this.g.clock);
    else this.clock = options.clock;
    const self = this as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    for (const name of GUARDED) {
      const method = self[name];
      self[name] = (...args: unknown[]) =>
        method.apply(this, args).catch((err: unknown) => {
          throw unavailable(err);
        });
    }
    if (options.autoTickMs) {
      this.interval = setInterval(() => void this.autoTick(), options.autoTickMs);
      this.interval.unref();
    }
  }

  /** The engine's now: the injected clock, or the fleet's clock key. */
  private async now(): Promise<number> {
    return this.redisClock ? this.redisClock.now() : this.clock!.now();
  }

  private async autoTick(): Promise<void> {
    if (this.ticking) return;
    this.ticking = true;
    try {
      await this.tick();
    } catch {
      // Redis away (or a sweep failed): the next tick tries again; calls report UNAVAILABLE.
    } finally {
      this.ticking = false;
    }
  }

  // ---- plumbing ---------------------------------------------------------------------------

  private async readSysctl(): Promise<SysctlValues> {
    return (await this.config.get()).sysctl;
  }

  private async readTimeouts(): Promise<Timeouts> {
    return (await this.config.get()).timeouts;
  }

  /** ARGV[1..2] of every service script: now, the sysctls and the timeouts it reads. */
  private async env(now: number): Promise<(string | number)[]> {
    return [now, (await this.config.get()).env];
  }

  private async run(
    script: string,
    service: string,
    now: number,
    args: (string | number)[],
    env?: (string | number)[],
  ): Promise<Reply> {
    const argv = [...(env ?? (await this.env(now))), ...args];
    const raw = await this.scripts.run(script, this.keysOf(service), argv);
    return Array.isArray(raw) ? decisionOf(raw as string[]) : (JSON.parse(String(raw)) as Reply);
  }

  private readonly scriptKeyCache = new Map<string, [string]>();
  /** KEYS of a script call for `service` (cached: a Schedule should not rebuild them). */
  private keysOf(service: string): [string] {
    let keys = this.scriptKeyCache.get(service);
    if (!keys) {
      if (this.scriptKeyCache.size > 10_000) this.scriptKeyCache.clear();
      keys = scriptKeys(this.prefix, service);
      this.scriptKeyCache.set(service, keys);
    }
    return keys;
  }

  private async index(): Promise<Map<string, IndexEntry>> {
    return (await this.config.get()).index;
  }

  /** The service's configuration as its own slot holds it (authoritative), or NOT_FOUND. */
  private async serviceEntry(key: string): Promise<IndexEntry> {
    const [json, ver] = await this.redis.hmget(`${tagPrefix(this.prefix, key)}cfg`, 'json', 'ver');
    if (typeof key !== 'string' || json === null || ver === null)
      throw notFound('service', `no such service ${key}`);
    return { ver: Number(ver), cfg: JSON.parse(json) as ServiceConfig };
  }

  private async tags(): Promise<string[]> {
    return (await this.redis.smembers(this.g.tags)).sort();
  }

  // ---- configuration ----------------------------------------------------------------------

  async addService(spec: ServiceSpec): Promise<ServiceStatus> {
    const now = await this.now();
    const cfg = parseServiceSpec(spec);
    const id = cfg.id;
    await this.redis.sadd(this.g.tags, cfg.key);
    const r = await this.run('add-service', cfg.key, now, [
      cfg.key,
      id.kind,
      id.kind === 'addr' ? id.protocol : '',
      id.kind === 'addr' ? id.port : 0,
      id.kind === 'fwmark' ? id.fwmark : 0,
      cfg.scheduler,
      cfg.schedFlags,
      cfg.persistence ? cfg.persistence.timeoutSec : 0,
      cfg.onePacket ? 1 : 0,
      cfg.pe ?? '',
      JSON.stringify(cfg),
    ]);
    if (r.err === 'ALREADY_EXISTS') throw alreadyExists('service', `service ${cfg.key} already exists`);
    this.check(r);
    this.estimated.delete(cfg.key);
    await this.estimate(cfg.key, now, await this.env(now)); // rates count from the creation on
    await this.config.announce();
    return serviceView(r.service);
  }

  async editService(key: string, patch: ServiceSpec): Promise<ServiceStatus> {
    for (let attempt = 0; ; attempt++) {
      const now = await this.now();
      const entry = await this.serviceEntry(key);
      const cfg = parseServiceSpec(patch, 'service', entry.cfg);
      const r = await this.run('edit-service', key, now, [
        entry.ver,
        cfg.scheduler,
        cfg.schedFlags,
        cfg.persistence ? cfg.persistence.timeoutSec : 0,
        cfg.onePacket ? 1 : 0,
        cfg.pe ?? '',
        JSON.stringify(cfg),
      ]);
      if (r.err === 'STALE' && attempt < MAX_ATTEMPTS) continue;
      if (r.err === 'NOT_FOUND') throw notFound('service', `no such service ${key}`);
      this.check(r);
      await this.config.announce();
      return serviceView(r.service);
    }
  }

  async deleteService(key: string): Promise<void> {
    const now = await this.now();
    const r = await this.run('delete-service', String(key), now, []);
    if (r.err === 'NOT_FOUND') throw notFound('service', `no such service ${key}`);
    this.check(r);
    await this.flushNoDestElsewhere(String(key), now);
    await this.config.announce();
  }

  async clear(): Promise<void> {
    for (const key of (await this.index()).keys()) {
      try {
        await this.deleteService(key);
      } catch (err) {
        if (!(err instanceof IpvsError && err.code === 'NOT_FOUND')) throw err;
        this.config.invalidate();
      }
    }
  }

  private async readTag(
    service: string,
    now: number,
    what: { service?: boolean; trash?: boolean; conns?: boolean; totals?: boolean },
    env?: (string | number)[],
  ): Promise<Reply> {
    const flag = (x: boolean | undefined) => (x ? '1' : '0');
    return this.run(
      'read',
      service,
      now,
      [flag(what.service), flag(what.trash), flag(what.conns), flag(what.totals)],
      env,
    );
  }

  async getService(key: string): Promise<ServiceStatus> {
    const r = await this.readTag(String(key), await this.now(), { service: true });
    if (!r.service) throw notFound('service', `no such service ${key}`);
    return serviceView(r.service, parseRates(r.rates));
  }

  async listServices(): Promise<ServiceStatus[]> {
    const now = await this.now();
    const env = await this.env(now);
    const out: ServiceStatus[] = [];
    for (const key of [...(await this.index()).keys()].sort()) {
      const r = await this.readTag(key, now, { service: true }, env);
      if (r.service) out.push(serviceView(r.service, parseRates(r.rates)));
    }
    return out;
  }

  async addDestination(service: string, spec: DestinationSpec): Promise<DestinationStatus> {
    const now = await this.now();
    const entry = await this.serviceEntry(service);
    const dc = parseDestSpec(spec, entry.cfg);
    const perm = mhPermutation(dc.endpoint.ip, dc.endpoint.port, MH_TAB_SIZE);
    const r = await this.run('add-dest', service, now, [
      dc.key,
      dc.endpoint.ip.text,
      dc.endpoint.port,
      fold(dc.endpoint.ip),
      perm.offset,
      perm.skip,
      dc.weight,
      dc.forward,
      dc.upperThreshold,
      dc.lowerThreshold,
    ]);
    if (r.err === 'ALREADY_EXISTS')
      throw alreadyExists('destination', `destination ${dc.key} already exists in ${service}`);
    if (r.err === 'NOT_FOUND') throw notFound('service', `no such service ${service}`);
    this.check(r);
    return destView(r.dest);
  }

  /** `destOrThrow`: the destination's current configuration, or NOT_FOUND. */
  private async destConfig(service: string, dest: string): Promise<DestConfig> {
    const ep = parseEndpoint(dest, 'destination');
    const key = formatEndpoint(ep.ip, ep.port);
    const r = await this.readTag(service, await this.now(), { service: true });
    const d = list<DestRecord>(r.service?.dests).find((x) => x.key === key);
    if (!d) throw notFound('destination', `no such destination ${dest} in service ${service}`);
    return {
      endpoint: endpoint(parseIp(d.ip, 'destination'), Number(d.port)),
      key,
      weight: Number(d.w),
      forward: d.fwd as DestConfig['forward'],
      upperThreshold: Number(d.ut),
      lowerThreshold: Number(d.lt),
    };
  }

  async editDestination(service: string, dest: string, patch: DestinationSpec): Promise<DestinationStatus> {
    const now = await this.now();
    const entry = await this.serviceEntry(service);
    const base = await this.destConfig(service, dest);
    const dc = parseDestSpec(patch, entry.cfg, 'destination', base);
    const r = await this.run('edit-dest', service, now, [
      dc.key,
      dc.weight,
      dc.forward,
      dc.upperThreshold,
      dc.lowerThreshold,
    ]);
    this.checkNotFound(r, service, dest);
    return destView(r.dest);
  }

  async deleteDestination(service: string, dest: string): Promise<void> {
    const now = await this.now();
    await this.serviceEntry(service);
    const ep = parseEndpoint(dest, 'destination');
    const r = await this.run('delete-dest', service, now, [formatEndpoint(ep.ip, ep.port)]);
    this.checkNotFound(r, service, dest);
    await this.flushNoDestElsewhere(service, now);
  }

  /**
   * With expire_nodest_conn = 1 a deletion flushes every entry whose destination is gone, in the
   * whole connection table (§6.6): the deleting call did its own service; each other service tag
   * is flushed by a call of its own (atomic per service).
   */
  private async flushNoDestElsewhere(service: string, now: number): Promise<void> {
    if ((await this.readSysctl()).expire_nodest_conn !== 1) return;
    const env = await this.env(now);
    for (const tag of await this.tags()) {
      if (tag !== service) this.check(await this.run('sweep', tag, now, [SWEEP_BUDGET, 1], env));
    }
  }

  private checkNotFound(r: Reply, service: string, dest: string): void {
    if (r.err === 'NOT_FOUND') {
      if (r.field === 'destination')
        throw notFound('destination', `no such destination ${dest} in service ${service}`);
      throw notFound('service', `no such service ${service}`);
    }
    this.check(r);
  }

  /** Any other error answer becomes an IpvsError (or, for an unknown one, an Error). */
  private check(r: Reply): void {
    if (!r.err) return;
    if (r.msg) throw new IpvsError(r.err, r.msg, r.field || undefined);
    throw new Error(`redis engine: unexpected script answer ${JSON.stringify(r)}`);
  }

  async zeroStats(service?: string): Promise<void> {
    const now = await this.now();
    if (service !== undefined) {
      const r = await this.run('zero-stats', service, now, ['1', '0']);
      if (r.err === 'NOT_FOUND') throw notFound('service', `no such service ${service}`);
      this.check(r);
      return;
    }
    const env = await this.env(now);
    for (const tag of await this.tags()) this.check(await this.run('zero-stats', tag, now, ['0', '1'], env));
  }

  async getStats(): Promise<StatsSnapshot> {
    const now = await this.now();
    const env = await this.env(now);
    const total = [0, 0, 0, 0, 0];
    const totalRates = ratesOf(undefined);
    const services: StatsSnapshot['services'] = [];
    for (const tag of await this.tags()) {
      const r = await this.readTag(tag, now, { service: true, totals: true }, env);
      list<number>(r.totals).forEach((v, i) => (total[i] += v));
      const rates = parseRates(r.rates);
      // the director's rates: the sum of each tag's share (each estimated on its own)
      for (const [k, v] of Object.entries(ratesOf(rates?.total)))
        totalRates[k as keyof typeof totalRates] += v;
      if (r.service) {
        const view = serviceView(r.service, rates);
        services.push({
          key: view.key,
          stats: view.stats,
          destinations: view.destinations.map((d) => ({ key: d.key, stats: d.stats })),
        });
      }
    }
    return { total: { ...stats(total[0], total[1], total[2], total[3], total[4]), ...totalRates }, services };
  }

  // ---- decisions --------------------------------------------------------------------------

  async schedule(req: ScheduleRequest): Promise<ScheduleResponse> {
    const q = parseScheduleRequest(req);
    const started = this.redisClock ? await this.redisClock.now() : this.clock!.now();
    let randoms: { range: number; r1: number; r2: number } | undefined;
    let snap = this.config.fresh() ?? (await this.config.get());
    for (let attempt = 0; ; attempt++) {
      const now = attempt === 0 ? started : await this.now();
      let target: ReturnType<RedisEngine['resolveTarget']>;
      try {
        target = this.resolveTarget(snap, q);
      } catch (err) {
        // A service added a moment ago on another replica: read the configuration once more.
        if (!(err instanceof IpvsError && err.code === 'NO_SERVICE') || attempt > 0) throw err;
        if (!(await this.config.refreshIfOlderThan(MISS_REFRESH_MS))) throw err;
        snap = await this.config.get();
        continue;
      }
      const { entry, protocol, virtual, how } = target;
      const cfg = entry.cfg;
      const key = cfg.key;
      const client = q.client;
      const { args, preErr } = scheduleArgs(entry, q, protocol, virtual, randoms);
      // §2.1: the connection table is global — the tuple may have an entry in another service
      // (one a packet with another fwmark reached); the kernel follows that one first.
      const others = attempt === 0 ? this.otherHolders(snap, key, protocol, virtual) : [];
      if (others.length > 0) {
        const holder = await this.entryElsewhere(others, protocol, client.text, virtual);
        if (holder) {
          const there = [...args];
          there[TUPLE_KEY] = tupleKey(holder, protocol, client.text, virtual.text);
          there[EXISTING_ONLY] = 1;
          const h = await this.run('schedule', holder, now, [packArgs(there)], [now, snap.env]);
          if (!h.gone) {
            this.check(h);
            const holderCfg = snap.index.get(holder)?.cfg ?? cfg;
            return this.responseOf(h, q.explain, holderCfg, how);
          }
        }
      }
      const r = await this.run('schedule', key, now, [packArgs(args)], [now, snap.env]);
      if (r.err === 'STALE' && attempt < MAX_ATTEMPTS) {
        this.config.invalidate();
        snap = await this.config.get();
        continue;
      }
      if (r.err === 'NEED_RANDOM' && attempt < MAX_ATTEMPTS) {
        const range = Number(r.range);
        randoms = { range, r1: this.randomInt(range), r2: this.randomInt(range) };
        continue;
      }
      if (preErr && r.err === preErr.code && r.msg === preErr.message) throw preErr;
      this.check(r);
      return this.responseOf(r, q.explain, cfg, how);
    }
  }

  private responseOf(r: Reply, explain: boolean, cfg: ServiceConfig, how: string): ScheduleResponse {
    const response: ScheduleResponse = {
      service: r.service,
      destination: r.destination,
      forward: r.forward,
      connection: r.connection,
      persistent: r.persistent,
      reused: r.reused,
      state: r.state,
    };
    if (r.template) response.template = r.template;
    if (explain && r.explain) {
      response.explain = explanation(cfg.scheduler, cfg.schedFlags, how, r.explain, r.destination);
    }
    return response;
  }

  /**
   * The other service tags that may hold an entry for a packet to `virtual`: every fwmark service
   * (any packet may carry a mark) and the services the address itself reaches (exact, FTP, port
   * zero), live or deleted (entries outlive their service). Usually none: no extra call then.
   */
  private otherHolders(snap: ConfigSnapshot, key: string, protocol: Protocol, virtual: Endpoint): string[] {
    const out: string[] = [];
    for (const tag of snap.fwmarkTags) if (tag !== key) out.push(tag);
    for (const port of [virtual.port, 0, 21]) {
      const tag = `${protocol}:${formatEndpoint(virtual.ip, port)}`;
      if (tag !== key && snap.tagSet.has(tag) && !out.includes(tag)) out.push(tag);
    }
    return out;
  }

  /** The first of `candidates` that holds an entry for this tuple (one pipelined HEXISTS each). */
  private async entryElsewhere(
    candidates: string[],
    protocol: Protocol,
    client: string,
    virtual: Endpoint,
  ): Promise<string | undefined> {
    const found = await Promise.all(
      candidates.map((tag) =>
        this.redis.hexists(
          `${tagPrefix(this.prefix, tag)}tuples`,
          tupleKey(tag, protocol, client, virtual.text),
        ),
      ),
    );
    return candidates.find((_, i) => found[i] === 1);
  }

  /** The service a request is for (§2.2), as the memory engine finds it. */
  private resolveTarget(
    snap: ConfigSnapshot,
    q: ReturnType<typeof parseScheduleRequest>,
  ): { entry: IndexEntry; protocol: Protocol; virtual: Endpoint; how: string } {
    const index = snap.index;
    if (q.service) {
      const key = serviceKeyOf(q.service);
      const entry = index.get(key);
      if (!entry) throw new IpvsError('NO_SERVICE', `service: no such service ${key}`, 'service');
      const id = entry.cfg.id;
      if (id.kind === 'addr') {
        if (q.protocol && q.protocol !== id.protocol) {
          throw invalid('protocol', q.protocol, `does not match service ${key}`);
        }
        return {
          entry,
          protocol: id.protocol,
          virtual: q.virtual ?? endpoint(id.ip, id.port),
          how: 'by key',
        };
      }
      if (!q.virtual) throw invalid('virtual', undefined, `is required for fwmark service ${key}`);
      if (!q.protocol) throw invalid('protocol', undefined, `is required for fwmark service ${key}`);
      return { entry, protocol: q.protocol, virtual: q.virtual, how: 'by key' };
    }
    const virtual = q.virtual!;
    const protocol = q.protocol ?? 'tcp';
    const found = findService(snap.lookup, protocol, virtual, q.fwmark);
    if (!found) throw noServiceFor(protocol, virtual, q.fwmark);
    return { entry: index.get(found.service.key)!, protocol, virtual, how: found.how };
  }

  // ---- connections ------------------------------------------------------------------------

  private entryId(id: string): ParsedConnectionId {
    const parsed = parseConnectionId(id);
    if (!parsed) throw notFound('connection', `no such connection ${String(id)}`);
    return parsed;
  }

  private async exists(p: ParsedConnectionId): Promise<boolean> {
    const probe = [p.local, '', '', '', 0, 0, 0, 0, '1'];
    return !(await this.run('update-connection', p.service, await this.now(), probe)).err;
  }

  private async validUpdate(
    id: string,
    p: ParsedConnectionId,
    update: ConnectionUpdate,
  ): Promise<UpdateQuery> {
    try {
      return parseConnectionUpdate(update, p.kind);
    } catch (err) {
      if (!(await this.exists(p))) throw notFound('connection', `no such connection ${id}`);
      throw err;
    }
  }

  /** A report's arguments to the scripts: state, direction, flag, packet and byte counts. */
  private reportArgs(u: UpdateQuery): (string | number)[] {
    return [
      u.state ?? '',
      u.event?.direction ?? '',
      u.event?.flag ?? '',
      u.inPackets,
      u.outPackets,
      u.inBytes,
      u.outBytes,
    ];
  }

  private async update1(id: string, p: ParsedConnectionId, u: UpdateQuery): Promise<Connection> {
    const now = await this.now();
    const r = await this.run('update-connection', p.service, now, [p.local, ...this.reportArgs(u), '0']);
    if (r.err === 'NOT_FOUND') throw notFound('connection', `no such connection ${id}`);
    this.check(r);
    const view = connectionView(r.conn as ConnRecord, p.service, now);
    return r.dropped ? { ...view, dropped: true } : view;
  }

  async updateConnection(id: string, update: ConnectionUpdate): Promise<Connection> {
    const p = this.entryId(id);
    return this.update1(id, p, await this.validUpdate(id, p, update));
  }

  async closeConnection(id: string): Promise<void> {
    const p = this.entryId(id);
    const r = await this.run('close-connection', p.service, await this.now(), [p.local]);
    if (r.err === 'NOT_FOUND') throw notFound('connection', `no such connection ${id}`);
    this.check(r);
  }

  /**
   * The items of each service (tag) go in ONE atomic call, in request order (batch-1.lua); a batch
   * that spans services makes one call per service (a cluster keeps each on its own slot). Results
   * keep the request's order. A call that meets Redis unreachable answers UNAVAILABLE for each of
   * its items (none of them applied); items of other services stand or fail on their own.
   */
  async batch(updates: BatchUpdate[]): Promise<BatchResult[]> {
    if (!Array.isArray(updates))
      throw new IpvsError('INVALID_ARGUMENT', 'updates: must be a list', 'updates');
    const results: BatchResult[] = new Array(updates.length);
    const failed = (i: number, connection: string, caught: unknown) => {
      const err = unavailable(caught);
      if (!(err instanceof IpvsError)) throw err;
      const message = err.message.startsWith('updates[') ? err.message : `updates[${i}]: ${err.message}`;
      results[i] = { connection, ok: false, error: { code: err.code, message } };
    };
    const groups = new Map<string, { i: number; id: string; args: (string | number)[] }[]>();
    for (const [i, item] of updates.entries()) {
      const connection = typeof item?.connection === 'string' ? item.connection : '';
      try {
        const { connection: id, close, ...update } = parseBatchItem(item, `updates[${i}]`);
        const p = this.entryId(id);
        const group = groups.get(p.service) ?? [];
        groups.set(p.service, group);
        if (close) {
          group.push({ i, id, args: ['c', p.local, '', '', '', 0, 0, 0, 0] });
        } else {
          const u = await this.validUpdate(id, p, update);
          group.push({ i, id, args: ['u', p.local, ...this.reportArgs(u)] });
        }
      } catch (caught) {
        failed(i, connection, caught);
      }
    }
    for (const [service, items] of groups) {
      try {
        const now = await this.now();
        const r = await this.run('batch', service, now, [items.length, ...items.flatMap((x) => x.args)]);
        this.check(r);
        list<Reply>(r.results).forEach((res, k) => {
          const { i, id } = items[k];
          if (res.err === 'NOT_FOUND')
            return failed(i, id, notFound('connection', `no such connection ${id}`));
          if (res.err) return failed(i, id, new IpvsError(res.err, res.msg, res.field || undefined));
          if (!res.conn) return (results[i] = { connection: id, ok: true });
          const view = connectionView(res.conn as ConnRecord, service, now);
          results[i] = { connection: id, ok: true, result: res.dropped ? { ...view, dropped: true } : view };
        });
      } catch (caught) {
        for (const { i, id } of items) failed(i, id, caught);
      }
    }
    return results;
  }

  async listConnections(filter: ConnectionFilter = {}): Promise<Connection[]> {
    const now = await this.now();
    const env = await this.env(now);
    const out: Connection[] = [];
    const tags = filter.service !== undefined ? [filter.service] : await this.tags();
    for (const tag of tags) {
      const r = await this.readTag(tag, now, { conns: true }, env);
      for (const c of list<ConnRecord>(r.conns)) {
        if (filter.templates !== undefined && c.tpl !== filter.templates) continue;
        if (filter.destination !== undefined && c.dest !== filter.destination) continue;
        out.push(connectionView(c, tag, now));
      }
    }
    return out;
  }

  // ---- timeouts, sysctls ------------------------------------------------------------------

  async getTimeouts(): Promise<Timeouts> {
    return this.readTimeouts();
  }

  async setTimeouts(t: Partial<Timeouts>): Promise<Timeouts> {
    const next = parseTimeouts(t, await this.readTimeouts());
    await this.redis.set(this.g.timeouts, JSON.stringify(next));
    await this.config.announce();
    return { ...next };
  }

  async getSysctl(): Promise<Sysctl> {
    return { ...(await this.readSysctl()) };
  }

  async setSysctl(patch: Sysctl): Promise<Sysctl> {
    const next = patchSysctl(await this.readSysctl(), patch);
    await this.redis.set(this.g.sysctl, JSON.stringify(next));
    await this.config.announce();
    return { ...next };
  }

  // ---- conn-sync (not on a redis fleet yet) ----------------------------------------------------------------

  setSyncListener(listener: ((entries: SyncEntry[]) => void) | null): void {
    if (listener) throw noSync();
  }

  async syncSnapshot(): Promise<SyncEntry[]> {
    throw noSync();
  }

  async applySync(_entries: SyncEntry[]): Promise<SyncApplyResult> {
    throw noSync();
  }

  // ---- time, inspection, life -------------------------------------------------------------

  /** Sweeps every service tag's due timers at the clock's now (bounded calls, until done). */
  async tick(): Promise<void> {
    const now = await this.now();
    const env = await this.env(now);
    for (const tag of await this.tags()) {
      for (let i = 0; i < 10_000; i++) {
        const r = await this.run('sweep', tag, now, [SWEEP_BUDGET, 0], env);
        this.check(r);
        if (r.done) break;
      }
      await this.estimate(tag, now, env);
    }
  }

  /** The 2 s rate estimator of one service tag, once per period across the fleet (rates.ts). */
  private async estimate(tag: string, now: number, env: (string | number)[]): Promise<void> {
    const period = periodOf(now);
    if (this.estimated.get(tag) === period) return;
    const r = await this.readTag(tag, now, { service: true, totals: true }, env);
    const t = list<number>(r.totals);
    const dests: Record<string, Counters> = {};
    for (const d of list<DestRecord>(r.service?.dests)) dests[d.key] = countersOf(d);
    const next = advanceRates(parseRates(r.rates), period, {
      svc: r.service ? countersOf(r.service.svc) : zeroCounters(),
      dests,
      total: {
        conns: t[0] ?? 0,
        inPkts: t[1] ?? 0,
        outPkts: t[2] ?? 0,
        inBytes: t[3] ?? 0,
        outBytes: t[4] ?? 0,
      },
    });
    if (next) this.check(await this.run('save-rates', tag, now, [period, JSON.stringify(next)], env));
    if (this.estimated.size > 10_000) this.estimated.clear();
    this.estimated.set(tag, period);
  }

  async snapshot(): Promise<EngineSnapshot> {
    const now = await this.now();
    const env = await this.env(now);
    const snap: EngineSnapshot = { nowMs: now, services: [], trash: [], connections: [] };
    for (const tag of await this.tags()) {
      const r = await this.readTag(tag, now, { service: true, trash: true, conns: true }, env);
      if (r.service) snap.services.push(serviceView(r.service, parseRates(r.rates)));
      for (const d of list<DestRecord>(r.trash)) snap.trash.push({ ...destView(d), service: tag });
      for (const c of list<ConnRecord>(r.conns)) snap.connections.push(connectionView(c, tag, now));
    }
    return snap;
  }

  /** Whether Redis answers a PING within READY_TIMEOUT_MS (never throws). */
  async ready(): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>(
      (resolve) => (timer = setTimeout(() => resolve(false), READY_TIMEOUT_MS)),
    );
    try {
      const ping = guarded(() => this.redis.ping()).then(
        (answer) => answer === 'PONG',
        () => false,
      );
      return await Promise.race([ping, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resolves once `ready()` is true, or to false after `ms`. */
  async waitReady(ms: number): Promise<boolean> {
    const until = Date.now() + ms;
    for (;;) {
      if (await this.ready()) return true;
      if (Date.now() >= until) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  async close(): Promise<void> {
    if (this.interval) clearInterval(this.interval);
    this.config.close();
    if (this.ownsClient) this.redis.disconnect();
  }
}
