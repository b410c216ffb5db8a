/**
 * Random operation sequences over a small IPVS universe, a runner that applies them to a
 * MemoryEngine on a manual clock, and the counter invariants every snapshot must satisfy
 * (ipvs-semantics.md §4, §5.5, §6).
 */
import fc from 'fast-check';
import { IpvsError } from '../../src/domain/errors.js';
import { ManualClock } from '../../src/engine/clock.js';
import type {
  Connection,
  ConnectionUpdate,
  DestinationSpec,
  DestinationStatus,
  EngineSnapshot,
  ScheduleRequest,
  ScheduleResponse,
  ServiceSpec,
} from '../../src/engine/engine.js';
import { MemoryEngine } from '../../src/engine/memory/memory-engine.js';

// ------------------------------------------------------------------------------------------------
// The universe

export const SCHEDULERS = [
  'rr',
  'wrr',
  'lc',
  'wlc',
  'sed',
  'nq',
  'lblc',
  'lblcr',
  'dh',
  'sh',
  'mh',
  'fo',
  'ovf',
  'twos',
] as const;
export type SchedulerName = (typeof SCHEDULERS)[number];

interface ServiceDef {
  key: string;
  /** Identity fields of the add request. */
  id: ServiceSpec;
  /** Persistence given on add (netmask kept on edits), or null for a plain service. */
  persistence: { netmask?: string } | null;
  /** Port of every destination added to this service; within a service addresses are unique. */
  destPort: number;
}

/**
 * Destination ports are chosen so that a connection's `destination` (real address + connection
 * port) identifies its dest by address alone within its service: one port per service.
 */
export const SERVICES: readonly ServiceDef[] = [
  {
    key: 'tcp:10.0.0.1:80',
    id: { protocol: 'tcp', address: '10.0.0.1', port: 80 },
    persistence: null,
    destPort: 80,
  },
  {
    key: 'tcp:10.0.0.1:443',
    id: { protocol: 'tcp', address: '10.0.0.1', port: 443 },
    persistence: { netmask: '255.255.255.0' },
    destPort: 8443,
  },
  {
    key: 'udp:10.0.0.2:53',
    id: { protocol: 'udp', address: '10.0.0.2', port: 53 },
    persistence: null,
    destPort: 53,
  },
  { key: 'fwm:7', id: { fwmark: 7 }, persistence: {}, destPort: 0 },
  {
    key: 'tcp:10.0.0.4:0',
    id: { protocol: 'tcp', address: '10.0.0.4', port: 0 },
    persistence: { netmask: '255.255.0.0' },
    destPort: 0,
  },
];

/** Packets that start new flows: by VIP (+ fwmark), covering every service and lookup path. */
export const TARGETS: readonly Omit<ScheduleRequest, 'client'>[] = [
  { protocol: 'tcp', virtual: '10.0.0.1:80' },
  { protocol: 'tcp', virtual: '10.0.0.1:443' },
  { protocol: 'udp', virtual: '10.0.0.2:53' },
  { protocol: 'tcp', virtual: '10.0.0.3:80', fwmark: 7 },
  { protocol: 'udp', virtual: '10.0.0.3:5060', fwmark: 7 },
  { protocol: 'tcp', virtual: '10.0.0.4:22' },
  { protocol: 'tcp', virtual: '10.0.0.4:8080' },
  { protocol: 'tcp', virtual: '10.0.0.1:80', fwmark: 7 },
];

export const DEST_ADDRESSES = ['10.1.0.1', '10.1.0.2', '10.1.0.3', '10.1.0.4', '10.1.0.5'];
export const CLIENT_ADDRESSES = ['192.168.1.10', '192.168.1.11', '192.168.2.10', '172.16.0.5'];
/** Port 20 (active FTP data) is never scheduled: an expected error. */
export const CLIENT_PORTS = [1025, 1025, 2000, 2000, 40000, 20];

const TCP_STATES = [
  'NONE',
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'SYNACK',
];
const TCP_ACTIVE = new Set(['ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'SYNACK']);
const DIRECTIONS = ['in', 'out', 'in-only'] as const;
const FLAGS = ['syn', 'fin', 'ack', 'rst'] as const;

// ------------------------------------------------------------------------------------------------
// Operations

export type Op =
  | { op: 'addService'; svc: number; scheduler: SchedulerName; flags: string[]; timeout: number }
  | {
      op: 'editService';
      svc: number;
      scheduler?: SchedulerName;
      flags: string[];
      /** undefined: keep; null: drop persistence; number: persistence with that timeout. */
      persistence?: number | null;
      onePacket?: boolean;
    }
  | { op: 'deleteService'; svc: number }
  | { op: 'addDest'; svc: number; addr: number; weight: number; upper?: number; lower?: number }
  | { op: 'editDest'; svc: number; addr: number; weight?: number; upper?: number; lower?: number }
  | { op: 'deleteDest'; svc: number; addr: number }
  | { op: 'schedule'; target: number; client: number; port: number; initialState?: number }
  | {
      op: 'update';
      conn: number;
      how: 'state' | 'event' | 'packets';
      state: number;
      direction: (typeof DIRECTIONS)[number];
      flag: (typeof FLAGS)[number];
      outPackets: number;
    }
  | { op: 'close'; conn: number }
  | { op: 'advance'; seconds: number }
  | { op: 'sysctl'; name: string; value: number };

const svcArb = fc.integer({ min: 0, max: SERVICES.length - 1 });
const addrArb = fc.integer({ min: 0, max: DEST_ADDRESSES.length - 1 });
const schedArb = fc.constantFrom(...SCHEDULERS);
const weightArb = fc.constantFrom(0, 1, 1, 2, 3, 5, 100);
const thresholdArb = fc.constantFrom(0, 1, 2, 3, 5);
/** Mostly a valid pair (lower ≤ upper), sometimes upper alone, now and then anything (maybe invalid). */
const thresholdsArb: fc.Arbitrary<{ upper: number; lower?: number }> = fc.oneof(
  {
    arbitrary: fc
      .tuple(thresholdArb, fc.constantFrom(0, 0, 1, 2, 3))
      .map(([upper, lower]) => ({ upper, lower: Math.min(lower, upper) })),
    weight: 5,
  },
  { arbitrary: thresholdArb.map((upper) => ({ upper })), weight: 2 },
  { arbitrary: fc.tuple(thresholdArb, thresholdArb).map(([upper, lower]) => ({ upper, lower })), weight: 1 },
);
const flagsArb = fc.subarray(['fallback', 'port']);
const timeoutArb = fc.constantFrom(30, 300, 3600);

function schedFlags(scheduler: string | undefined, flags: string[]): string[] {
  return scheduler === 'sh' || scheduler === 'mh' ? flags.map((f) => `${scheduler}-${f}`) : [];
}

const scheduleArb: fc.Arbitrary<Op> = fc.record(
  {
    op: fc.constant('schedule' as const),
    // Plain TCP and UDP twice as often: only their decisions are checked against the dest list.
    target: fc.constantFrom(0, 0, 1, 2, 2, 3, 4, 5, 6, 7),
    client: fc.integer({ min: 0, max: CLIENT_ADDRESSES.length - 1 }),
    port: fc.integer({ min: 0, max: CLIENT_PORTS.length - 1 }),
    initialState: fc.integer({ min: 0, max: TCP_STATES.length - 1 }),
  },
  { requiredKeys: ['op', 'target', 'client', 'port'] },
);

export const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    arbitrary: fc.record({
      op: fc.constant('addService' as const),
      svc: svcArb,
      scheduler: schedArb,
      flags: flagsArb,
      timeout: timeoutArb,
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record(
      {
        op: fc.constant('editService' as const),
        svc: svcArb,
        scheduler: schedArb,
        flags: flagsArb,
        persistence: fc.option(timeoutArb),
        onePacket: fc.boolean(),
      },
      { requiredKeys: ['op', 'svc', 'flags'] },
    ),
    weight: 2,
  },
  { arbitrary: fc.record({ op: fc.constant('deleteService' as const), svc: svcArb }), weight: 1 },
  {
    arbitrary: fc
      .record(
        {
          op: fc.constant('addDest' as const),
          svc: svcArb,
          addr: addrArb,
          weight: weightArb,
          thresholds: thresholdsArb,
        },
        { requiredKeys: ['op', 'svc', 'addr', 'weight'] },
      )
      .map(({ thresholds, ...op }) => ({ ...op, ...thresholds })),
    weight: 3,
  },
  {
    arbitrary: fc
      .record(
        {
          op: fc.constant('editDest' as const),
          svc: svcArb,
          addr: addrArb,
          weight: weightArb,
          thresholds: thresholdsArb,
        },
        { requiredKeys: ['op', 'svc', 'addr'] },
      )
      .map(({ thresholds, ...op }) => ({ ...op, ...thresholds })),
    weight: 3,
  },
  {
    arbitrary: fc.record({ op: fc.constant('deleteDest' as const), svc: svcArb, addr: addrArb }),
    weight: 2,
  },
  { arbitrary: scheduleArb, weight: 12 },
  {
    arbitrary: fc.record({
      op: fc.constant('update' as const),
      conn: fc.nat(),
      how: fc.constantFrom('state' as const, 'event' as const, 'event' as const, 'packets' as const),
      state: fc.integer({ min: 0, max: TCP_STATES.length - 1 }),
      direction: fc.constantFrom(...DIRECTIONS),
      flag: fc.constantFrom(...FLAGS),
      outPackets: fc.constantFrom(0, 0, 1, 5),
    }),
    weight: 8,
  },
  { arbitrary: fc.record({ op: fc.constant('close' as const), conn: fc.nat() }), weight: 2 },
  {
    arbitrary: fc.record({
      op: fc.constant('advance' as const),
      seconds: fc.oneof(fc.integer({ min: 0, max: 1000 }), fc.constantFrom(1, 3, 10, 60, 61, 120, 300, 900)),
    }),
    weight: 4,
  },
  {
    arbitrary: fc.oneof(
      fc.record({
        op: fc.constant('sysctl' as const),
        name: fc.constantFrom('expire_nodest_conn', 'expire_quiescent_template'),
        value: fc.constantFrom(0, 1),
      }),
      // 3: the secure_tcp state table always (1 and 2 follow memory pressure: never on here).
      fc.record({
        op: fc.constant('sysctl' as const),
        name: fc.constant('secure_tcp'),
        value: fc.constantFrom(0, 3),
      }),
      fc.record({
        op: fc.constant('sysctl' as const),
        name: fc.constant('conn_reuse_mode'),
        value: fc.integer({ min: 0, max: 3 }),
      }),
    ),
    weight: 1,
  },
);

/** A run: a scheduler per service, which services and dests exist up front, then random ops. */
export interface Scenario {
  schedulers: SchedulerName[];
  flags: string[][];
  services: number[];
  nDests: number;
  weights: number[];
  /** Upper threshold of each dest at set-up (0: none). */
  uppers: number[];
  seed: number;
  ops: Op[];
}

export function scenarioArb(maxOps = 60): fc.Arbitrary<Scenario> {
  return fc.record({
    schedulers: fc.array(schedArb, { minLength: SERVICES.length, maxLength: SERVICES.length }),
    flags: fc.array(flagsArb, { minLength: SERVICES.length, maxLength: SERVICES.length }),
    services: fc.subarray(
      SERVICES.map((_, i) => i),
      { minLength: 3 },
    ),
    nDests: fc.integer({ min: 2, max: DEST_ADDRESSES.length }),
    weights: fc.array(fc.constantFrom(0, 1, 2, 3), {
      minLength: DEST_ADDRESSES.length,
      maxLength: DEST_ADDRESSES.length,
    }),
    uppers: fc.array(fc.constantFrom(0, 0, 1, 2, 3), {
      minLength: DEST_ADDRESSES.length,
      maxLength: DEST_ADDRESSES.length,
    }),
    seed: fc.integer(),
    ops: fc.array(opArb, { minLength: 1, maxLength: maxOps, size: 'max' }),
  });
}

/** The set-up steps of a scenario as ordinary ops, so a failure report shows them too. */
export function setupOps(s: Scenario): Op[] {
  const ops: Op[] = [];
  for (const svc of s.services) {
    ops.push({ op: 'addService', svc, scheduler: s.schedulers[svc], flags: s.flags[svc], timeout: 300 });
    for (let addr = 0; addr < s.nDests; addr++)
      ops.push({ op: 'addDest', svc, addr, weight: s.weights[addr], upper: s.uppers[addr] });
  }
  return ops;
}

// ------------------------------------------------------------------------------------------------
// Running ops

/** mulberry32: a small deterministic PRNG for twos, seeded from the scenario. */
export function seededRandomInt(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n: number) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const r = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    return Math.floor(r * n);
  };
}

export interface Harness {
  engine: MemoryEngine;
  clock: ManualClock;
}

export function newHarness(seed: number): Harness {
  const clock = new ManualClock(1_000_000);
  return { clock, engine: new MemoryEngine({ clock, randomInt: seededRandomInt(seed) }) };
}

function destSpec(op: { weight?: number; upper?: number; lower?: number }): DestinationSpec {
  const spec: DestinationSpec = {};
  if (op.weight !== undefined) spec.weight = op.weight;
  if (op.upper !== undefined) spec.upperThreshold = op.upper;
  if (op.lower !== undefined) spec.lowerThreshold = op.lower;
  return spec;
}

function destKey(svc: number, addr: number): string {
  return `${DEST_ADDRESSES[addr]}:${SERVICES[svc].destPort}`;
}

export function scheduleRequest(op: Extract<Op, { op: 'schedule' }>): ScheduleRequest {
  const target = TARGETS[op.target];
  const req: ScheduleRequest = {
    ...target,
    client: `${CLIENT_ADDRESSES[op.client]}:${CLIENT_PORTS[op.port]}`,
  };
  if (op.initialState !== undefined) {
    req.initialState = target.protocol === 'udp' ? 'UDP' : TCP_STATES[op.initialState];
  }
  return req;
}

function connectionUpdate(op: Extract<Op, { op: 'update' }>, c: Connection): ConnectionUpdate {
  const packets = op.outPackets > 0 ? { outPackets: op.outPackets } : {};
  if (op.how === 'packets' || (c.template && op.state !== 0)) return { inPackets: 1, ...packets };
  if (op.how === 'state') {
    return { state: c.protocol === 'udp' ? 'UDP' : TCP_STATES[op.state], ...packets };
  }
  return c.protocol === 'tcp'
    ? { event: { direction: op.direction, flag: op.flag } }
    : // Deliberately also tries a flag on UDP now and then (an expected INVALID_ARGUMENT).
      { event: op.state === 0 ? { direction: op.direction, flag: op.flag } : { direction: op.direction } };
}

export interface StepResult {
  /** The decision, when the op was a schedule that succeeded. */
  scheduled?: ScheduleResponse;
  error?: IpvsError;
}

/**
 * Applies one op. `live` is the connection list of the latest snapshot: update/close pick their
 * target from it (by index modulo its length). Only IpvsErrors are caught.
 */
export async function applyOp(h: Harness, op: Op, live: readonly Connection[]): Promise<StepResult> {
  const e = h.engine;
  try {
    switch (op.op) {
      case 'addService': {
        const def = SERVICES[op.svc];
        const spec: ServiceSpec = {
          ...def.id,
          scheduler: op.scheduler,
          schedFlags: schedFlags(op.scheduler, op.flags),
        };
        if (def.persistence) spec.persistence = { ...def.persistence, timeout: op.timeout };
        await e.addService(spec);
        return {};
      }
      case 'editService': {
        const def = SERVICES[op.svc];
        const patch: ServiceSpec = {};
        if (op.scheduler !== undefined) {
          patch.scheduler = op.scheduler;
          patch.schedFlags = schedFlags(op.scheduler, op.flags);
        }
        if (op.persistence === null) patch.persistence = null;
        else if (op.persistence !== undefined)
          patch.persistence = { ...(def.persistence ?? {}), timeout: op.persistence };
        if (op.onePacket !== undefined && op.svc === 2) patch.onePacket = op.onePacket;
        await e.editService(def.key, patch);
        return {};
      }
      case 'deleteService':
        await e.deleteService(SERVICES[op.svc].key);
        return {};
      case 'addDest':
        await e.addDestination(SERVICES[op.svc].key, {
          address: DEST_ADDRESSES[op.addr],
          port: SERVICES[op.svc].destPort,
          ...destSpec(op),
        });
        return {};
      case 'editDest':
        await e.editDestination(SERVICES[op.svc].key, destKey(op.svc, op.addr), destSpec(op));
        return {};
      case 'deleteDest':
        await e.deleteDestination(SERVICES[op.svc].key, destKey(op.svc, op.addr));
        return {};
      case 'schedule':
        return { scheduled: await e.schedule(scheduleRequest(op)) };
      case 'update': {
        if (live.length === 0) return {};
        const c = live[op.conn % live.length];
        await e.updateConnection(c.id, connectionUpdate(op, c));
        return {};
      }
      case 'close': {
        if (live.length === 0) return {};
        await e.closeConnection(live[op.conn % live.length].id);
        return {};
      }
      case 'advance':
        h.clock.advance(op.seconds * 1000);
        await e.tick();
        return {};
      case 'sysctl':
        await e.setSysctl({ [op.name]: op.value });
        return {};
    }
  } catch (err) {
    if (err instanceof IpvsError) return { error: err };
    throw err;
  }
}

// ------------------------------------------------------------------------------------------------
// Invariants

export class InvariantError extends Error {
  constructor(message: string, snapshot: EngineSnapshot) {
    super(`${message}\n--- snapshot ---\n${describeSnapshot(snapshot)}`);
    this.name = 'InvariantError';
  }
}

function describeSnapshot(s: EngineSnapshot): string {
  const lines: string[] = [`now=${s.nowMs}`];
  const d = (x: DestinationStatus) =>
    `${x.key} w=${x.weight} u=${x.upperThreshold} l=${x.lowerThreshold} ` +
    `act=${x.activeConns} inact=${x.inactiveConns} pers=${x.persistentConns}` +
    `${x.overloaded ? ' OVERLOAD' : ''}${x.available ? '' : ' unavailable'}`;
  for (const svc of s.services) {
    lines.push(`service ${svc.key} ${svc.scheduler}${svc.persistence ? ' persistent' : ''}`);
    for (const x of svc.destinations) lines.push(`  ${d(x)}`);
  }
  for (const t of s.trash) lines.push(`trash ${t.service} ${d(t)}`);
  for (const c of s.connections) {
    lines.push(
      `conn ${c.id} ${c.template ? 'TEMPLATE ' : ''}${c.protocol} ${c.client} -> ${c.virtual} -> ` +
        `${c.destination} ${c.state} exp=${c.expiresInMs}` +
        `${c.controlledBy ? ` ctl=${c.controlledBy}` : ''}${c.template ? ` controls=${c.controls}` : ''}`,
    );
  }
  return lines.join('\n');
}

function addressOf(endpoint: string): string {
  return endpoint.slice(0, endpoint.lastIndexOf(':'));
}

export function isActive(c: Connection): boolean {
  if (c.template) return false;
  if (c.protocol === 'tcp') return TCP_ACTIVE.has(c.state);
  if (c.protocol === 'sctp') return c.state === 'ESTABLISHED';
  return false;
}

interface Tally {
  dest: DestinationStatus;
  where: string;
  listed: boolean;
  conns: number;
  active: number;
  templates: number;
}

/**
 * (1) no counter negative; (2) active+inactive = live connections bound to the dest and
 * persistent = live templates bound to it; (3) active = live connections in an active state;
 * (4) OVERLOAD only with an upper threshold; plus consistency of the control links.
 */
export function checkInvariants(s: EngineSnapshot): void {
  const fail = (msg: string): never => {
    throw new InvariantError(msg, s);
  };
  const tallies = new Map<string, Tally>();
  const add = (service: string, dest: DestinationStatus, listed: boolean) => {
    const key = `${service}|${dest.address}`;
    if (tallies.has(key)) fail(`ambiguous destination ${key} (listed and/or trash twice)`);
    tallies.set(key, {
      dest,
      where: `${listed ? '' : 'trash '}${service} ${dest.key}`,
      listed,
      conns: 0,
      active: 0,
      templates: 0,
    });
  };
  for (const svc of s.services) for (const d of svc.destinations) add(svc.key, d, true);
  for (const t of s.trash) add(t.service, t, false);

  const byId = new Map(s.connections.map((c) => [c.id, c]));
  const controls = new Map<string, number>();
  for (const c of s.connections) {
    const t = tallies.get(`${c.service}|${addressOf(c.destination)}`);
    if (!t)
      fail(`connection ${c.id} (${c.service} → ${c.destination}) is bound to no listed or trashed dest`);
    if (c.template) t!.templates++;
    else {
      t!.conns++;
      if (isActive(c)) t!.active++;
    }
    if (c.controlledBy !== undefined) {
      const ct = byId.get(c.controlledBy);
      if (!ct) fail(`connection ${c.id} is controlled by ${c.controlledBy}, which is not live`);
      else {
        if (ct.service !== c.service || addressOf(ct.destination) !== addressOf(c.destination))
          fail(`connection ${c.id} and its controller ${ct.id} are bound to different dests`);
        controls.set(ct.id, (controls.get(ct.id) ?? 0) + 1);
      }
    }
  }
  for (const c of s.connections) {
    if (c.template && (c.controls ?? 0) !== (controls.get(c.id) ?? 0))
      fail(
        `template ${c.id} says it controls ${c.controls}, but ${controls.get(c.id) ?? 0} live connections name it`,
      );
  }
  for (const t of tallies.values()) {
    const d = t.dest;
    const where = t.where;
    if (d.activeConns < 0 || d.inactiveConns < 0 || d.persistentConns < 0)
      fail(
        `${where}: negative counter (act=${d.activeConns} inact=${d.inactiveConns} pers=${d.persistentConns})`,
      );
    if (d.activeConns + d.inactiveConns !== t.conns)
      fail(
        `${where}: activeConns+inactiveConns=${d.activeConns + d.inactiveConns} but ${t.conns} live connections`,
      );
    if (d.persistentConns !== t.templates)
      fail(`${where}: persistentConns=${d.persistentConns} but ${t.templates} live templates`);
    if (d.activeConns !== t.active)
      fail(`${where}: activeConns=${d.activeConns} but ${t.active} live connections in an active state`);
    if (d.overloaded && d.upperThreshold === 0) fail(`${where}: OVERLOAD set without an upper threshold`);
    if (d.available !== t.listed) fail(`${where}: available=${d.available} but listed=${t.listed}`);
  }
}

/** (5) After everything has timed out: no entries, every counter zero, no OVERLOAD. */
export function checkDrained(s: EngineSnapshot): void {
  if (s.connections.length > 0) throw new InvariantError(`${s.connections.length} entries never expired`, s);
  const all = [...s.services.flatMap((svc) => svc.destinations), ...s.trash];
  for (const d of all) {
    if (d.activeConns !== 0 || d.inactiveConns !== 0 || d.persistentConns !== 0 || d.overloaded)
      throw new InvariantError(`${d.key}: counters or OVERLOAD left after every entry expired`, s);
  }
}

export const DRAIN_STEP_MS = 3_600_000;
export const DRAIN_LIMIT_MS = 10 * 86_400_000;

/** Advances the clock in hour steps (up to 10 days) until no entry is left, checking each step. */
export async function drain(h: Harness): Promise<EngineSnapshot> {
  let s = await h.engine.snapshot();
  for (let waited = 0; s.connections.length > 0 && waited < DRAIN_LIMIT_MS; waited += DRAIN_STEP_MS) {
    h.clock.advance(DRAIN_STEP_MS);
    s = await h.engine.snapshot();
    checkInvariants(s);
  }
  return s;
}
