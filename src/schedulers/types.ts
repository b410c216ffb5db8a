/**
 * What a scheduler sees and the one shape every scheduler module has (like the kernel's
 * `struct ip_vs_scheduler`): private state made by `init`, hooks for destination changes, and
 * `schedule`, which only chooses (counters move when the connection is bound, §3).
 */
import type { Ip } from '../domain/address.js';
import type { Protocol } from '../domain/keys.js';

/** A destination as schedulers read it. `pos` is its index in the service's KLO array. */
export interface SchedDest {
  readonly key: string;
  readonly ip: Ip;
  readonly port: number;
  readonly weight: number;
  /** Latest non-zero weight (set on add even if 0); only mh uses it (§1.2). */
  readonly lastWeight: number;
  readonly activeConns: number;
  readonly inactiveConns: number;
  readonly overloaded: boolean;
  readonly available: boolean;
  /** Index in `SchedService.dests`; -1 once the destination left the list. */
  readonly pos: number;
}

/** SCHED1..3 service flag bits (`include/uapi/linux/ip_vs.h`). */
export const SCHED1 = 0x0008;
export const SCHED2 = 0x0010;
export const SCHED3 = 0x0020;

export interface SchedService<D extends SchedDest = SchedDest> {
  /** Destinations in kernel list order (§0.3): most recently added first. */
  readonly dests: readonly D[];
  /** Service flags; schedulers read SCHED1..SCHED3. */
  readonly flags: number;
}

/** The part of a packet (the client tuple) a scheduler may look at. */
export interface SchedPacket {
  readonly protocol: Protocol;
  readonly caddr: Ip;
  readonly cport: number;
  readonly vaddr: Ip;
  readonly vport: number;
}

export interface SchedContext {
  /** Milliseconds of the injected clock. */
  readonly now: number;
  /** Uniform random integer in [0, n): injectable so twos is deterministic in tests. */
  readonly randomInt: (n: number) => number;
  /** Sysctl values schedulers read (`lblc_expiration`, `lblcr_expiration`). */
  readonly sysctl: { readonly lblc_expiration: number; readonly lblcr_expiration: number };
  /** Present when the caller asked for an explanation: free-form notes from the scheduler. */
  readonly note?: (text: string) => void;
}

/** How a scheduler sees one candidate, for explain: its metric, or why it is skipped. */
export interface CandidateView {
  metric?: string;
  skip?: string;
}

export interface SchedulerModule<S = unknown> {
  readonly name: string;
  /** `-b` flag names this scheduler gives a meaning to, as [name, bit]. */
  readonly flagNames?: readonly (readonly [string, number])[];
  init(svc: SchedService): S;
  addDest?(state: S, svc: SchedService, dest: SchedDest): void;
  /** Called after `dest` left `svc.dests`; `oldPos` is where it stood. */
  delDest?(state: S, svc: SchedService, dest: SchedDest, oldPos: number): void;
  /** An edit (`-e`) of a destination of the service, whatever changed. */
  updDest?(state: S, svc: SchedService, dest: SchedDest): void;
  /** Not a kernel hook: counters or OVERLOAD of `dest` changed; keeps indexes exact. */
  countersChanged?(state: S, svc: SchedService, dest: SchedDest): void;
  schedule(state: S, svc: SchedService, pkt: SchedPacket, ctx: SchedContext): SchedDest | null;
  describe(state: S, svc: SchedService, dest: SchedDest): CandidateView;
  /** Periodic garbage collection (lblc/lblcr, every 60 s). */
  gc?(state: S, svc: SchedService, ctx: SchedContext): void;
  /** Number of private entries (lblc/lblcr), for observability and tests. */
  size?(state: S): number;
}

/** `active * 256 + inactive` (`ip_vs_dest_conn_overhead`). */
export function overhead(d: SchedDest): number {
  return d.activeConns * 256 + d.inactiveConns;
}

export function defineScheduler<S>(module: SchedulerModule<S>): SchedulerModule<S> {
  return module;
}
