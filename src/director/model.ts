/**
 * The in-memory objects of one director: virtual services, destinations (real servers) and
 * connection entries (which are also persistence templates, as in the kernel's `ip_vs_conn`).
 */
import type { Family, Ip } from '../domain/address.js';
import type { Protocol, ServiceId } from '../domain/keys.js';
import type { Netmask } from '../domain/netmask.js';
import type { SchedulerName } from '../schedulers/registry.js';
import type { SchedDest, SchedService, SchedulerModule } from '../schedulers/types.js';

export const FORWARDS = ['masq', 'route', 'tunnel'] as const;
export type Forward = (typeof FORWARDS)[number];

/** Service flag bits (`include/uapi/linux/ip_vs.h`). */
export const SVC_PERSISTENT = 0x0001;
export const SVC_ONEPACKET = 0x0004;

export interface Counters {
  conns: number;
  inPkts: number;
  outPkts: number;
  inBytes: number;
  outBytes: number;
}

export function zeroCounters(): Counters {
  return { conns: 0, inPkts: 0, outPkts: 0, inBytes: 0, outBytes: 0 };
}

/** Cumulative counters plus the estimator's scaled rates (§1.4). */
export interface Stats extends Counters {
  /** Counters at the previous estimator run. */
  last: Counters;
  /** Scaled EWMA rates: cps/pps ×2^10, bps ×2^5 (`ip_vs_est.c`). */
  est: { cps: number; inpps: number; outpps: number; inbps: number; outbps: number };
}

export function newStats(): Stats {
  return {
    ...zeroCounters(),
    last: zeroCounters(),
    est: { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 },
  };
}

export class Dest implements SchedDest {
  weight = 1;
  lastWeight = 1;
  forward: Forward = 'masq';
  upperThreshold = 0;
  lowerThreshold = 0;
  activeConns = 0;
  inactiveConns = 0;
  persistentConns = 0;
  overloaded = false;
  available = true;
  pos = -1;
  /** The service whose KLO holds this dest; null while it sits in the trash. */
  service: Service | null = null;
  readonly stats = newStats();

  constructor(
    readonly key: string,
    readonly ip: Ip,
    readonly port: number,
    readonly serviceKey: string,
  ) {}
}

export interface Persistence {
  timeoutSec: number;
  netmask: Netmask;
}

export class Service implements SchedService<Dest> {
  readonly dests: Dest[] = [];
  readonly byKey = new Map<string, Dest>();
  flags = 0;
  schedulerName: SchedulerName = 'wlc';
  scheduler!: SchedulerModule<unknown>;
  schedState: unknown;
  persistence: Persistence | null = null;
  pe: 'sip' | null = null;
  readonly stats = newStats();
  /** Deadline timer of the scheduler's periodic garbage collection, if it has one. */
  gcTimer: Timer | null = null;

  constructor(
    readonly key: string,
    readonly id: ServiceId,
    readonly family: Family,
  ) {}

  get port(): number {
    return this.id.kind === 'addr' ? this.id.port : 0;
  }

  get fwmark(): number {
    return this.id.kind === 'fwmark' ? this.id.fwmark : 0;
  }
}

/** Anything on the director's timer heap: ordered by deadline, then by arming order. */
export interface Timer {
  deadline: number;
  seq: number;
  heapIndex: number;
}

/** A connection entry or a persistence template (`template` true). */
export interface Conn extends Timer {
  readonly kind: 'conn';
  readonly id: string;
  readonly template: boolean;
  /** Protocol of the entry; fwmark templates are protocol IP (`ip`). */
  readonly protocol: Protocol | 'ip';
  readonly caddr: Ip;
  /** Client, virtual and real-server ports; an invalidated template is re-keyed (§5.4). */
  cport: number;
  readonly vaddr: Ip;
  vport: number;
  dport: number;
  readonly dest: Dest;
  readonly service: Service;
  /** Key in the connection or template table; null once a template was invalidated (§5.4). */
  tableKey: string | null;
  state: string;
  /** INACTIVE flag: counted in inactconns rather than activeconns. */
  inactive: boolean;
  /** Forwarding method at creation (the entry's fwd flag bits; the dest may change later). */
  readonly forward: Forward;
  /** NOOUTPUT flag: DR/TUN connections use the INPUT-ONLY table until a reply is seen. */
  noOutput: boolean;
  timeoutMs: number;
  control: Conn | null;
  nControl: number;
  /** Templates: ASSURED once a controlled connection was established (§5.5). */
  assured: boolean;
  /** SIP Call-ID (persistence-engine data) of a template. */
  callId: string | null;
  fwmark: number;
  /** Incoming packets seen (drives conn-sync's threshold rule). */
  inPkts: number;
  /** Created by conn-sync (the kernel's SYNC flag), not by a decision here. */
  synced: boolean;
  /** Conn-sync bookkeeping (`old_state`, `sync_endtime` and its retry bits). */
  syncOldState: string;
  syncEndtime: number;
  syncRetries: number;
}

export interface GcTimer extends Timer {
  readonly kind: 'gc';
  readonly service: Service;
}

export interface EstimatorTimer extends Timer {
  readonly kind: 'estimator';
}

export type AnyTimer = Conn | GcTimer | EstimatorTimer;
