/**
 * The embedded engine: one process is one director, like one IPVS box. Every call first fires the
 * timers that fell due on the injected clock, then runs the IPVS flow over in-process state.
 */
import { IpvsError, notFound } from '../../domain/errors.js';
import { ESTIMATOR_INTERVAL_MS, zeroStats } from '../../director/estimator.js';
import type { Conn, EstimatorTimer } from '../../director/model.js';
import type { Timeouts } from '../../director/states.js';
import { patchSysctl } from '../../director/sysctl.js';
import type { SchedContext } from '../../schedulers/types.js';
import type { Clock } from '../clock.js';
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
import { IdempotencyCache } from '../idempotency.js';
import {
  parseBatchItem,
  parseConnectionUpdate,
  parseDestSpec,
  parseScheduleRequest,
  parseServiceSpec,
  parseTimeouts,
} from '../specs.js';
import * as admin from './admin.js';
import {
  enterState,
  expireEntry,
  flushNoDestConnections,
  packetEvent,
  rearm,
  runTimers,
} from './lifecycle.js';
import { schedule } from './schedule.js';
import { DirectorState } from './state.js';
import { applySyncEntry, noteIncoming, toSyncEntry } from './sync.js';
import { connectionView, destView, serviceView, statsView } from './views.js';

export interface MemoryEngineOptions {
  clock: Clock;
  /** Uniform integer in [0, n) for twos; defaults to Math.random. */
  randomInt?: (n: number) => number;
  /** Fire due timers on a real-time interval (milliseconds); off when the clock is manual. */
  autoTickMs?: number;
}

const mathRandomInt = (n: number) => Math.floor(Math.random() * n);

export class MemoryEngine implements Engine {
  readonly kind = 'memory' as const;
  readonly state = new DirectorState();
  private readonly clock: Clock;
  private readonly randomInt: (n: number) => number;
  private readonly idempotency = new IdempotencyCache<ScheduleResponse>();
  private readonly interval: NodeJS.Timeout | undefined;
  private syncListener: ((entries: SyncEntry[]) => void) | null = null;

  constructor(options: MemoryEngineOptions) {
    this.clock = options.clock;
    this.randomInt = options.randomInt ?? mathRandomInt;
    const estimator: EstimatorTimer = { kind: 'estimator', deadline: 0, seq: 0, heapIndex: -1 };
    this.state.timers.arm(estimator, this.clock.now() + ESTIMATOR_INTERVAL_MS);
    if (options.autoTickMs) {
      this.interval = setInterval(() => this.advance(), options.autoTickMs);
      this.interval.unref();
    }
  }

  private schedContext = (now: number): SchedContext => ({
    now,
    randomInt: this.randomInt,
    sysctl: this.state.sysctl,
  });

  /** Fires due timers and returns the clock's now. */
  private advance(): number {
    const now = this.clock.now();
    runTimers(this.state, now, this.schedContext);
    this.flushSync();
    return now;
  }

  /** Hands the entries the master's rules chose during this call to the sync daemon. */
  private flushSync(): void {
    const out = this.state.syncOut;
    if (out && out.length > 0 && this.syncListener) {
      this.state.syncOut = [];
      this.syncListener(out);
    }
  }

  async tick(): Promise<void> {
    this.advance();
  }

  setSyncListener(listener: ((entries: SyncEntry[]) => void) | null): void {
    this.syncListener = listener;
    this.state.syncOut = listener ? [] : null;
  }

  async syncSnapshot(): Promise<SyncEntry[]> {
    const now = this.advance();
    return [...this.state.byId.values()].map((c) => toSyncEntry(c, now, true));
  }

  async applySync(entries: SyncEntry[]): Promise<SyncApplyResult> {
    const now = this.advance();
    const result: SyncApplyResult = { applied: 0, unbound: 0, ignored: 0 };
    for (const e of entries) result[applySyncEntry(this.state, e, now)]++;
    return result;
  }

  async addService(spec: ServiceSpec): Promise<ServiceStatus> {
    const now = this.advance();
    return serviceView(admin.addService(this.state, parseServiceSpec(spec), now));
  }

  async editService(key: string, patch: ServiceSpec): Promise<ServiceStatus> {
    const now = this.advance();
    const svc = admin.serviceOrThrow(this.state, key);
    admin.editService(this.state, svc, parseServiceSpec(patch, 'service', admin.serviceConfig(svc)), now);
    return serviceView(svc);
  }

  async deleteService(key: string): Promise<void> {
    const now = this.advance();
    admin.deleteService(this.state, admin.serviceOrThrow(this.state, key));
    this.afterDestsLeft(now);
  }

  async clear(): Promise<void> {
    const now = this.advance();
    for (const svc of [...this.state.services.values()]) admin.deleteService(this.state, svc);
    this.afterDestsLeft(now);
  }

  async getService(key: string): Promise<ServiceStatus> {
    this.advance();
    return serviceView(admin.serviceOrThrow(this.state, key));
  }

  async listServices(): Promise<ServiceStatus[]> {
    this.advance();
    return [...this.state.services.values()].map(serviceView);
  }

  async addDestination(service: string, spec: DestinationSpec): Promise<DestinationStatus> {
    this.advance();
    const svc = admin.serviceOrThrow(this.state, service);
    return destView(admin.addDest(this.state, svc, parseDestSpec(spec, admin.serviceConfig(svc))));
  }

  async editDestination(service: string, dest: string, patch: DestinationSpec): Promise<DestinationStatus> {
    this.advance();
    const svc = admin.serviceOrThrow(this.state, service);
    const d = admin.destOrThrow(svc, dest);
    admin.editDest(
      svc,
      d,
      parseDestSpec(patch, admin.serviceConfig(svc), 'destination', admin.destConfig(d)),
    );
    return destView(d);
  }

  async deleteDestination(service: string, dest: string): Promise<void> {
    const now = this.advance();
    const svc = admin.serviceOrThrow(this.state, service);
    admin.deleteDest(this.state, svc, admin.destOrThrow(svc, dest));
    this.afterDestsLeft(now);
  }

  /** `expire_nodest_conn`: connections of deleted destinations go at once. */
  private afterDestsLeft(now: number): void {
    if (this.state.sysctl.expire_nodest_conn) flushNoDestConnections(this.state, now);
  }

  async zeroStats(service?: string): Promise<void> {
    this.advance();
    const services =
      service === undefined ? [...this.state.services.values()] : [admin.serviceOrThrow(this.state, service)];
    for (const svc of services) {
      zeroStats(svc.stats);
      for (const d of svc.dests) zeroStats(d.stats);
    }
    if (service === undefined) zeroStats(this.state.totalStats);
  }

  async getStats(): Promise<StatsSnapshot> {
    this.advance();
    return {
      total: statsView(this.state.totalStats),
      services: [...this.state.services.values()].map((svc) => ({
        key: svc.key,
        stats: statsView(svc.stats),
        destinations: svc.dests.map((d) => ({ key: d.key, stats: statsView(d.stats) })),
      })),
    };
  }

  async schedule(req: ScheduleRequest): Promise<ScheduleResponse> {
    const now = this.advance();
    const q = parseScheduleRequest(req);
    if (q.requestId !== undefined) {
      const previous = this.idempotency.get(q.requestId, now);
      if (previous) return previous;
    }
    const response = schedule(this.state, q, now, this.schedContext(now));
    if (q.requestId !== undefined) this.idempotency.put(q.requestId, response, now);
    this.flushSync();
    return response;
  }

  private entryOrThrow(id: string): Conn {
    if (typeof id !== 'string') throw notFound('connection', `no such connection ${String(id)}`);
    const c = this.state.byId.get(id);
    if (!c) throw notFound('connection', `no such connection ${id}`);
    return c;
  }

  async updateConnection(id: string, update: ConnectionUpdate): Promise<Connection> {
    const now = this.advance();
    const answer = this.applyUpdate(this.entryOrThrow(id), update, now);
    this.flushSync();
    return answer;
  }

  private applyUpdate(c: Conn, update: ConnectionUpdate, now: number): Connection {
    const u = parseConnectionUpdate(update, c.template ? 'ip' : c.protocol);
    const s = this.state;
    // §6.6: a client packet for a deleted destination is dropped (or, with expire_nodest_conn,
    // ends the connection) before any state transition; the server's packets still count.
    if (u.event && u.event.direction !== 'out' && !c.dest.available) {
      if (s.sysctl.expire_nodest_conn) expireEntry(s, c, now, false);
      return { ...connectionView(c, now), dropped: true };
    }
    if (u.state !== undefined) enterState(s, c, u.state);
    else if (u.event) packetEvent(s, c, u.event.direction, u.event.flag);
    const inPkts = u.inPackets || (u.event && u.event.direction !== 'out' ? 1 : 0);
    const outPkts = u.outPackets || (u.event?.direction === 'out' ? 1 : 0);
    // Conn-sync counts incoming packets; an explicit state stands for at least one.
    const previous = c.inPkts;
    c.inPkts += Math.max(inPkts, u.state !== undefined ? 1 : 0);
    if (c.inPkts > previous) noteIncoming(s, c, previous, now);
    if (c.dest.available) {
      for (const stats of [c.dest.stats, c.service.stats, s.totalStats]) {
        stats.inPkts += inPkts;
        stats.outPkts += outPkts;
        stats.inBytes += u.inBytes;
        stats.outBytes += u.outBytes;
      }
    }
    if (!c.template) rearm(s, c, now);
    return connectionView(c, now);
  }

  async closeConnection(id: string): Promise<void> {
    const now = this.advance();
    this.close1(this.entryOrThrow(id), now);
  }

  private close1(c: Conn, now: number): void {
    if (c.nControl > 0) {
      throw new IpvsError(
        'FAILED_PRECONDITION',
        `connection: template ${c.id} still controls ${c.nControl} connection(s); close those first`,
        'connection',
      );
    }
    expireEntry(this.state, c, now, true);
  }

  async batch(updates: BatchUpdate[]): Promise<BatchResult[]> {
    const now = this.advance();
    if (!Array.isArray(updates))
      throw new IpvsError('INVALID_ARGUMENT', 'updates: must be a list', 'updates');
    const results = updates.map((item, i): BatchResult => {
      const connection = typeof item?.connection === 'string' ? item.connection : '';
      try {
        const { connection: id, close, ...update } = parseBatchItem(item, `updates[${i}]`);
        const c = this.entryOrThrow(id);
        if (close) {
          this.close1(c, now);
          return { connection, ok: true };
        }
        return { connection, ok: true, result: this.applyUpdate(c, update, now) };
      } catch (err) {
        if (!(err instanceof IpvsError)) throw err;
        const message = err.message.startsWith('updates[') ? err.message : `updates[${i}]: ${err.message}`;
        return { connection, ok: false, error: { code: err.code, message } };
      }
    });
    this.flushSync();
    return results;
  }

  async listConnections(filter: ConnectionFilter = {}): Promise<Connection[]> {
    const now = this.advance();
    const out: Connection[] = [];
    for (const c of this.state.byId.values()) {
      if (filter.templates !== undefined && c.template !== filter.templates) continue;
      if (filter.service !== undefined && c.service.key !== filter.service) continue;
      if (filter.destination !== undefined && c.dest.key !== filter.destination) continue;
      out.push(connectionView(c, now));
    }
    return out;
  }

  async getTimeouts(): Promise<Timeouts> {
    return { ...this.state.timeouts };
  }

  async setTimeouts(t: Partial<Timeouts>): Promise<Timeouts> {
    this.state.timeouts = parseTimeouts(t, this.state.timeouts);
    return { ...this.state.timeouts };
  }

  async getSysctl(): Promise<Sysctl> {
    return { ...this.state.sysctl };
  }

  async setSysctl(patch: Sysctl): Promise<Sysctl> {
    this.state.sysctl = patchSysctl(this.state.sysctl, patch);
    return { ...this.state.sysctl };
  }

  async snapshot(): Promise<EngineSnapshot> {
    const now = this.advance();
    return {
      nowMs: now,
      services: [...this.state.services.values()].map(serviceView),
      trash: [...this.state.trash.values()].map((d) => ({ ...destView(d), service: d.serviceKey })),
      connections: [...this.state.byId.values()].map((c) => connectionView(c, now)),
    };
  }

  async ready(): Promise<boolean> {
    return true;
  }

  async close(): Promise<void> {
    if (this.interval) clearInterval(this.interval);
  }
}
