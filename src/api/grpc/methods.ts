/** Every unary gRPC method as a call of the shared handlers, in the request's proto3 JSON form. */
import { invalid } from '../../domain/errors.js';
import type { Handlers } from '../handlers.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = Record<string, any>;
export type UnaryHandler = (request: Json) => Promise<unknown>;

const done = async (p: Promise<unknown>) => {
  await p;
  return {};
};

/** `clear: ["persistence", …]` of UpdateService: the fields an HTTP PATCH would set to null. */
const CLEARABLE: Record<string, string> = {
  sched_flags: 'schedFlags',
  schedFlags: 'schedFlags',
  persistence: 'persistence',
  pe: 'pe',
  one_packet: 'onePacket',
  onePacket: 'onePacket',
};

function withCleared(patch: Json, clear: unknown): Json {
  if (clear === undefined) return patch;
  const out: Json = { ...patch };
  for (const name of clear as string[]) {
    const field = CLEARABLE[name];
    if (!field)
      throw invalid(
        'clear',
        name,
        `is not a field that can be cleared (${Object.keys(CLEARABLE).join(', ')})`,
      );
    out[field] = null;
  }
  return out;
}

export function unaryHandlers(h: Handlers): Record<string, UnaryHandler> {
  return {
    // ipvs.v1.Scheduler
    Schedule: (r) => h.schedule(r),
    UpdateConnection: async (r) => ({
      connection: await h.updateConnection(r.connection ?? '', r.update ?? {}),
    }),
    CloseConnection: (r) => done(h.closeConnection(r.connection ?? '')),
    ReportConnections: (r) => h.reportConnections({ updates: r.updates ?? [] }),
    // ipvs.v1.Admin
    CreateService: async (r) => ({ service: await h.createService(r.service ?? {}) }),
    ListServices: () => h.listServices(),
    GetService: async (r) => ({ service: await h.getService(r.key ?? '') }),
    UpdateService: async (r) => ({
      service: await h.updateService(r.key ?? '', withCleared(r.patch ?? {}, r.clear)),
    }),
    DeleteService: (r) => done(h.deleteService(r.key ?? '')),
    ClearServices: () => done(h.clearServices()),
    CreateDestination: async (r) => ({
      destination: await h.createDestination(r.service ?? '', r.destination ?? {}),
    }),
    UpdateDestination: async (r) => ({
      destination: await h.updateDestination(r.service ?? '', r.destination ?? '', r.patch ?? {}),
    }),
    DeleteDestination: (r) => done(h.deleteDestination(r.service ?? '', r.destination ?? '')),
    ListConnections: (r) => h.listConnections(r),
    GetTimeouts: async () => ({ timeouts: await h.getTimeouts() }),
    SetTimeouts: async (r) => ({ timeouts: await h.setTimeouts(r.timeouts ?? {}) }),
    GetSysctl: async () => ({ sysctl: await h.getSysctl() }),
    UpdateSysctl: async (r) => ({ sysctl: await h.updateSysctl(r.patch ?? {}) }),
    GetRules: () => h.getRules(),
    ReplaceRules: (r) => h.replaceRules(r.text ?? ''),
    ZeroStats: (r) => done(h.zeroStats(r.service)),
    GetClock: () => h.getClock(),
    AdvanceClock: (r) => h.advanceClock({ seconds: r.seconds ?? 0 }),
    ListSyncDaemons: () => h.listSyncDaemons(),
    StartSyncDaemon: async (r) => ({ daemon: await h.startSyncDaemon(r.daemon ?? {}) }),
    StopSyncDaemon: (r) => done(h.stopSyncDaemon(r.role ?? '')),
    // ipvs.v1.Stats
    GetStats: () => h.getStats(),
  };
}
