/**
 * Everything one in-process director holds: services and their destinations, the trash, the
 * connection and template tables, the timer heap, timeouts and sysctls.
 */
import type { AnyTimer, Conn, Dest, Service, Stats } from '../../director/model.js';
import { newStats } from '../../director/model.js';
import type { ServiceIndex } from '../../director/service-lookup.js';
import { DEFAULT_TIMEOUTS, type Timeouts } from '../../director/states.js';
import { DEFAULT_SYSCTL, type SysctlValues } from '../../director/sysctl.js';
import type { SyncEntry } from '../engine.js';
import { TimerHeap } from './timer-heap.js';

export class DirectorState implements ServiceIndex {
  readonly services = new Map<string, Service>();
  /** Deleted destinations by `<service key>|<dest key>`, resurrected on re-add (§6.6). */
  readonly trash = new Map<string, Dest>();
  /** Live connections by tuple (`<proto>|<client>|<virtual>`). */
  readonly conns = new Map<string, Conn>();
  /** Valid templates by template key (§5.1). */
  readonly templates = new Map<string, Conn>();
  /** Every live entry (connections, templates, invalidated templates) by id. */
  readonly byId = new Map<string, Conn>();
  readonly timers = new TimerHeap<AnyTimer>();
  readonly totalStats: Stats = newStats();
  timeouts: Timeouts = { ...DEFAULT_TIMEOUTS };
  sysctl: SysctlValues = { ...DEFAULT_SYSCTL, sync_threshold: [...DEFAULT_SYSCTL.sync_threshold] };
  /** Entries the master sync daemon must send, gathered during a call; null while no master runs. */
  syncOut: SyncEntry[] | null = null;
  ftpServices = 0;
  portZeroServices = 0;
  private nextEntry = 1;

  get(key: string): Service | undefined {
    return this.services.get(key);
  }

  newEntryId(service: Service): string {
    return `${service.key}~${(this.nextEntry++).toString(36)}`;
  }
}

export function connTupleKey(protocol: string, client: string, virtual: string): string {
  return `${protocol}|${client}|${virtual}`;
}
