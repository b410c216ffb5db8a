/**
 * What lblc and lblcr share (§3.7–3.8): the table keyed by the packet's destination address
 * (1024 buckets by hash_32 of the folded address, soft limit 16384 entries), its garbage collection
 * (`ip_vs_lblc(r)_check_expire`, run every 60 s), the wlc fallback pick and the "is overloaded" test.
 */
import { fold, type Ip } from '../domain/address.js';
import { hash32 } from './hash.js';
import { BestTree } from './klo-tree.js';
import { skipOverloadedOrQuiesced } from './tree-scheduler.js';
import {
  defineScheduler,
  overhead,
  type SchedDest,
  type SchedService,
  type SchedulerModule,
} from './types.js';
import { lighterByWeight } from './wlc.js';

export const LOCALITY_TAB_BITS = 10;
export const LOCALITY_TAB_SIZE = 1 << LOCALITY_TAB_BITS;
export const LOCALITY_MAX_SIZE = LOCALITY_TAB_SIZE * 16;
/** `CHECK_EXPIRE_INTERVAL`: the garbage collector runs every 60 s. */
export const GC_INTERVAL_MS = 60_000;
/** `ENTRY_TIMEOUT`: idle time after which an over-full table drops entries. */
const ENTRY_TIMEOUT_MS = 360_000;
/** `COUNT_FOR_FULL_EXPIRATION`: every 30th run checks every entry against the sysctl expiration. */
const FULL_EXPIRATION_EVERY = 30;

export interface LocalityEntry {
  readonly addr: Ip;
  readonly bucket: number;
  lastuse: number;
}

export class LocalityTable<E extends LocalityEntry> {
  private readonly byAddr = new Map<string, E>();
  private readonly buckets: Set<E>[] = Array.from({ length: LOCALITY_TAB_SIZE }, () => new Set<E>());
  private rover = 0;
  private counter = 1;

  get size(): number {
    return this.byAddr.size;
  }

  static bucketOf(addr: Ip): number {
    return hash32(fold(addr), LOCALITY_TAB_BITS);
  }

  get(addr: Ip): E | undefined {
    return this.byAddr.get(addr.text);
  }

  set(entry: E): void {
    const old = this.byAddr.get(entry.addr.text);
    if (old) this.buckets[old.bucket].delete(old);
    this.byAddr.set(entry.addr.text, entry);
    this.buckets[entry.bucket].add(entry);
  }

  entries(): IterableIterator<E> {
    return this.byAddr.values();
  }

  private remove(entry: E): void {
    this.byAddr.delete(entry.addr.text);
    this.buckets[entry.bucket].delete(entry);
  }

  /** One run of the periodic collector; `expirationMs` is the lblc(r)_expiration sysctl. */
  collect(now: number, expirationMs: number): void {
    if (this.counter % FULL_EXPIRATION_EVERY === 0) {
      this.sweep(now, expirationMs, Infinity);
      this.counter = 1;
      return;
    }
    if (this.size <= LOCALITY_MAX_SIZE) {
      this.counter++;
      return;
    }
    const goal = Math.min(Math.trunc(((this.size - LOCALITY_MAX_SIZE) * 4) / 3), LOCALITY_MAX_SIZE / 2);
    this.sweep(now, ENTRY_TIMEOUT_MS, goal);
  }

  /** Walks buckets from rover+1, dropping entries idle ≥ `idleMs`, until `goal` drops are done. */
  private sweep(now: number, idleMs: number, goal: number): void {
    let j = this.rover;
    for (let i = 0; i < LOCALITY_TAB_SIZE; i++) {
      j = (j + 1) & (LOCALITY_TAB_SIZE - 1);
      for (const entry of this.buckets[j]) {
        if (now < entry.lastuse + idleMs) continue;
        this.remove(entry);
        goal--;
      }
      if (goal <= 0) break;
    }
    this.rover = j;
  }
}

/**
 * The load view both schedulers need: the wlc pick (`__ip_vs_lblc(r)_schedule` is exactly wlc) and
 * the set of "underloaded" dests (active*2 < weight) that `is_overloaded` asks about.
 */
export class LocalityLoad {
  private readonly tree = new BestTree<SchedDest>(
    (d) => skipOverloadedOrQuiesced(d) === undefined,
    lighterByWeight,
  );
  private readonly underloaded = new Set<SchedDest>();

  rebuild(svc: SchedService): void {
    this.tree.rebuild(svc.dests);
    this.underloaded.clear();
    for (const d of svc.dests) this.refresh(d);
  }

  /** After `d`'s counters, flags or weight changed. */
  refresh(d: SchedDest): void {
    this.tree.update(d.pos);
    if (d.pos >= 0 && d.activeConns * 2 < d.weight) this.underloaded.add(d);
    else this.underloaded.delete(d);
  }

  /** A dest joined the list: positions moved, so the tree is rebuilt; the set only gains `d`. */
  added(svc: SchedService, d: SchedDest): void {
    this.tree.rebuild(svc.dests);
    this.refresh(d);
  }

  /** A dest left the list. */
  removed(svc: SchedService, d: SchedDest): void {
    this.underloaded.delete(d);
    this.tree.rebuild(svc.dests);
  }

  leastLoaded(): SchedDest | null {
    return this.tree.best();
  }

  /**
   * `is_overloaded(dest, svc)`: more active connections than its weight while some dest of the
   * service (any flags) has fewer than half its weight active.
   */
  isOverloaded(d: SchedDest): boolean {
    return d.activeConns > d.weight && this.underloaded.size > 0;
  }
}

export interface LocalityState<E extends LocalityEntry> {
  readonly load: LocalityLoad;
  readonly table: LocalityTable<E>;
}

/**
 * lblc and lblcr differ only in their `schedule` and their expiration sysctl; the state, the hooks
 * that keep the load view current, explain and garbage collection are this one module shape.
 */
export function localityScheduler<E extends LocalityEntry>(
  name: 'lblc' | 'lblcr',
  schedule: SchedulerModule<LocalityState<E>>['schedule'],
): SchedulerModule<LocalityState<E>> {
  return defineScheduler<LocalityState<E>>({
    name,
    init(svc) {
      const load = new LocalityLoad();
      load.rebuild(svc);
      return { load, table: new LocalityTable<E>() };
    },
    addDest: (s, svc, d) => s.load.added(svc, d),
    delDest: (s, svc, d) => s.load.removed(svc, d),
    updDest: (s, _svc, d) => s.load.refresh(d),
    countersChanged: (s, _svc, d) => s.load.refresh(d),
    schedule,
    describe: (s, _svc, d) => ({
      metric: `overhead ${overhead(d)} / weight ${d.weight}`,
      skip: skipOverloadedOrQuiesced(d) ?? (s.load.isOverloaded(d) ? 'lblc-overloaded' : undefined),
    }),
    gc: (s, _svc, ctx) =>
      s.table.collect(
        ctx.now,
        (name === 'lblc' ? ctx.sysctl.lblc_expiration : ctx.sysctl.lblcr_expiration) * 1000,
      ),
    size: (s) => s.table.size,
  });
}
