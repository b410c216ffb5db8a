/**
 * One scheduling decision (§2, §5, §6.8): the existing-entry rules, `ip_vs_schedule` for plain
 * services and `ip_vs_sched_persist` for persistent ones, then connection creation and binding.
 */
import { invalid, IpvsError } from '../../domain/errors.js';
import { endpoint, serviceKeyOf, type Endpoint, type Protocol } from '../../domain/keys.js';
import { ExplainRecorder } from '../../director/explain.js';
import { SVC_ONEPACKET, type Conn, type Dest, type Service } from '../../director/model.js';
import { templateIsValid, templateShape } from '../../director/persistence.js';
import { findService, noServiceFor } from '../../director/service-lookup.js';
import { firstPacketState, parseState, sctpInitFromClient } from '../../director/states.js';
import type { SchedContext } from '../../schedulers/types.js';
import type { Candidate, ScheduleResponse } from '../engine.js';
import type { ScheduleQuery } from '../specs.js';
import { createEntry, enterState, expireEntry, invalidateTemplate, packetEvent, rearm } from './lifecycle.js';
import { connTupleKey, type DirectorState } from './state.js';
import { noteIncoming } from './sync.js';

const FTP_DATA_PORT = 20;

/** The packet being scheduled and where it goes, resolved once per decision. */
interface Flow {
  readonly state: DirectorState;
  readonly svc: Service;
  readonly protocol: Protocol;
  readonly client: Endpoint;
  readonly virtual: Endpoint;
  readonly tupleKey: string;
  readonly query: ScheduleQuery;
  readonly now: number;
  readonly ctx: SchedContext;
  readonly rec: ExplainRecorder | undefined;
  /** One-packet scheduling applies (UDP on a `-o` service): the entry is never hashed. */
  readonly onePacket: boolean;
}

function noDestination(message: string): IpvsError {
  return new IpvsError('NO_DESTINATION', message, 'service');
}

function resolveTarget(
  state: DirectorState,
  q: ScheduleQuery,
  rec: ExplainRecorder | undefined,
): { svc: Service; protocol: Protocol; virtual: Endpoint } {
  if (q.service) {
    const key = serviceKeyOf(q.service);
    const svc = state.services.get(key);
    if (!svc) throw new IpvsError('NO_SERVICE', `service: no such service ${key}`, 'service');
    if (rec) rec.lookup = 'by key';
    if (svc.id.kind === 'addr') {
      if (q.protocol && q.protocol !== svc.id.protocol) {
        throw invalid('protocol', q.protocol, `does not match service ${svc.key}`);
      }
      return { svc, protocol: svc.id.protocol, virtual: q.virtual ?? endpoint(svc.id.ip, svc.id.port) };
    }
    if (!q.virtual) throw invalid('virtual', undefined, `is required for fwmark service ${svc.key}`);
    if (!q.protocol) throw invalid('protocol', undefined, `is required for fwmark service ${svc.key}`);
    return { svc, protocol: q.protocol, virtual: q.virtual };
  }
  const virtual = q.virtual!;
  const protocol = q.protocol ?? 'tcp';
  const found = findService(state, protocol, virtual, q.fwmark);
  if (!found) throw noServiceFor(protocol, virtual, q.fwmark);
  if (rec) rec.lookup = found.how;
  return { svc: found.service, protocol, virtual };
}

/** §6.8: whether a new-connection packet on an existing entry schedules anew. */
function reschedules(state: DirectorState, c: Conn, protocol: Protocol): boolean {
  if (protocol === 'udp') return false;
  if (state.sysctl.expire_nodest_conn && c.dest.weight === 0) return true;
  const mode = state.sysctl.conn_reuse_mode;
  if (mode === 0 || c.control !== null) return false;
  if (protocol === 'sctp') return c.state === 'CLOSED';
  return (
    c.state === 'TIME_WAIT' ||
    c.state === 'CLOSE' ||
    ((mode & 2) !== 0 && c.state === 'FIN_WAIT' && c.noOutput)
  );
}

export function schedule(
  state: DirectorState,
  q: ScheduleQuery,
  now: number,
  ctx: SchedContext,
): ScheduleResponse {
  const rec = q.explain ? new ExplainRecorder() : undefined;
  const { svc, protocol, virtual } = resolveTarget(state, q, rec);
  const initialState =
    q.initialState === undefined ? undefined : parseState(protocol, q.initialState, 'initialState');
  const client = q.client;
  const flow: Flow = {
    state,
    svc,
    protocol,
    client,
    virtual,
    tupleKey: connTupleKey(protocol, client.text, virtual.text),
    query: q,
    now,
    ctx: rec ? { ...ctx, note: rec.note } : ctx,
    rec,
    onePacket: (svc.flags & SVC_ONEPACKET) !== 0 && protocol === 'udp',
  };

  let discard: Conn | undefined;
  const existing = state.conns.get(flow.tupleKey);
  if (existing) {
    if (reschedules(state, existing, protocol)) {
      discard = existing;
    } else if (!existing.dest.available) {
      if (!state.sysctl.expire_nodest_conn) {
        throw noDestination(
          `connection ${existing.id} belongs to deleted destination ${existing.dest.key}: packet dropped (expire_nodest_conn=0)`,
        );
      }
      discard = existing;
    } else {
      return follow(flow, existing);
    }
    if (rec) rec.existing = 'rescheduled';
  }

  const candidates = rec?.candidates(svc);
  try {
    if (client.port === FTP_DATA_PORT) {
      throw noDestination('client port 20 (active FTP data from a real server) is never scheduled');
    }
    const c = svc.persistence ? schedulePersistent(flow) : scheduleOnce(flow);
    if (initialState !== undefined) enterState(state, c, initialState);
    else if (protocol === 'tcp') packetEvent(state, c, 'in', 'syn');
    else enterState(state, c, firstPacketState(protocol));
    rearm(state, c, now);
    c.inPkts = 1;
    noteIncoming(state, c, 0, now);
    c.dest.stats.conns++;
    c.service.stats.conns++;
    state.totalStats.conns++;
    const response = respond(c, false, rec, candidates);
    // One-packet scheduling: the entry goes as soon as its packet is through.
    if (flow.onePacket) expireEntry(state, c, now, false);
    return response;
  } finally {
    // The old entry is unbound after the new decision and its bind, as the kernel's timer does (§6.8).
    if (discard && discard.nControl === 0 && state.byId.has(discard.id))
      expireEntry(state, discard, now, false);
  }
}

/** §6.8 rule 3: the packet follows the existing entry (no decision, no new counters). */
function follow(flow: Flow, existing: Conn): ScheduleResponse {
  const { state, protocol } = flow;
  if (protocol === 'tcp') packetEvent(state, existing, 'in', 'syn');
  else if (protocol === 'udp') packetEvent(state, existing, 'in', undefined);
  else enterState(state, existing, sctpInitFromClient(existing.state));
  rearm(state, existing, flow.now);
  noteIncoming(state, existing, existing.inPkts++, flow.now);
  if (flow.rec) flow.rec.existing = 'followed';
  return respond(existing, true, flow.rec, undefined);
}

function pick(flow: Flow): Dest {
  const { svc, client, virtual } = flow;
  const packet = {
    protocol: flow.protocol,
    caddr: client.ip,
    cport: client.port,
    vaddr: virtual.ip,
    vport: virtual.port,
  };
  const d = svc.scheduler.schedule(svc.schedState, svc, packet, flow.ctx) as Dest | null;
  if (!d)
    throw noDestination(`service ${svc.key}: no destination available (scheduler ${svc.schedulerName})`);
  return d;
}

/** The connection entry for the packet's tuple, to `dest` on real-server port `dport`. */
function newConnection(flow: Flow, dest: Dest, dport: number): Conn {
  return createEntry(flow.state, flow.svc, dest, {
    template: false,
    protocol: flow.protocol,
    caddr: flow.client.ip,
    cport: flow.client.port,
    vaddr: flow.virtual.ip,
    vport: flow.virtual.port,
    dport,
    tableKey: flow.onePacket ? null : flow.tupleKey,
    callId: null,
    fwmark: flow.svc.fwmark || flow.query.fwmark,
  });
}

/** `ip_vs_schedule` for a service without persistence. */
function scheduleOnce(flow: Flow): Conn {
  const { svc, virtual } = flow;
  if (svc.fwmark === 0 && virtual.port !== svc.port) {
    throw noDestination(
      `service ${svc.key}: port ${virtual.port} needs a persistent service (port zero / FTP data)`,
    );
  }
  const dest = pick(flow);
  return newConnection(flow, dest, dest.port !== 0 ? dest.port : virtual.port);
}

/** The SIP Call-ID for a `--pe sip` service; the kernel drops packets it cannot parse. */
function sipCallId(flow: Flow): string | null {
  const { svc, protocol, query } = flow;
  if (svc.pe !== 'sip') return null;
  if (protocol !== 'udp') {
    throw new IpvsError(
      'FAILED_PRECONDITION',
      `protocol: the SIP persistence engine of ${svc.key} only takes UDP; packet dropped`,
      'protocol',
    );
  }
  if (query.callId === undefined) {
    throw invalid('callId', undefined, `is required by the SIP persistence engine of ${svc.key}`);
  }
  return query.callId;
}

/** `ip_vs_sched_persist`: find or make the template, then the connection it controls. */
function schedulePersistent(flow: Flow): Conn {
  const { state, svc, client, virtual, rec } = flow;
  const callId = sipCallId(flow);
  const persistence = svc.persistence!;
  const shape = templateShape(svc, persistence, flow.protocol, client.ip, virtual.ip, virtual.port, callId);
  let ct = state.templates.get(shape.key);
  if (ct && !templateIsValid(ct, state.sysctl.expire_quiescent_template === 1)) {
    invalidateTemplate(state, ct);
    ct = undefined;
    if (rec) rec.template = 'invalid';
  } else if (rec) {
    rec.template = ct ? 'hit' : 'miss';
  }
  let dest: Dest;
  if (ct) {
    dest = ct.dest;
    rec?.note(`template ${ct.id} → ${dest.key}`);
  } else {
    dest = pick(flow);
    ct = createEntry(state, svc, dest, {
      template: true,
      protocol: shape.protocol,
      caddr: shape.caddr,
      cport: 0,
      vaddr: shape.vaddr,
      vport: shape.vport,
      dport: shape.keepsDestPort ? dest.port : 0,
      tableKey: shape.key,
      callId,
      fwmark: flow.svc.fwmark || flow.query.fwmark,
    });
    ct.timeoutMs = persistence.timeoutSec * 1000;
  }
  // The client's port is kept unless it is the service's own port and the dest names one.
  const c = newConnection(
    flow,
    dest,
    virtual.port === svc.port && dest.port !== 0 ? dest.port : virtual.port,
  );
  c.control = ct;
  ct.nControl++;
  rearm(state, ct, flow.now);
  return c;
}

function respond(
  c: Conn,
  reused: boolean,
  rec: ExplainRecorder | undefined,
  candidates: Candidate[] | undefined,
): ScheduleResponse {
  const response: ScheduleResponse = {
    service: c.service.key,
    destination: c.dest.key,
    forward: c.dest.forward,
    connection: c.id,
    persistent: c.control !== null,
    reused,
    state: c.state,
  };
  if (c.control) response.template = c.control.id;
  if (rec) response.explain = rec.finish(c.service, candidates ?? rec.candidates(c.service), c.dest);
  return response;
}
