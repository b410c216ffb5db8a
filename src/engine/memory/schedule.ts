/**
 * One scheduling decision (§2, §5, §6.8): the existing-entry rules, `ip_vs_schedule` for plain
 * services and `ip_vs_sched_persist` for persistent ones, then connection creation and binding.
 */
import { invalid, IpvsError } from '../../domain/errors.js';
import { formatEndpoint, type Endpoint, type Protocol } from '../../domain/keys.js';
import { ExplainRecorder } from '../../director/explain.js';
import { SVC_ONEPACKET, type Conn, type Dest, type Service } from '../../director/model.js';
import { templateIsValid, templateShape } from '../../director/persistence.js';
import { findService } from '../../director/service-lookup.js';
import { firstPacketState, parseState, sctpInitFromClient } from '../../director/states.js';
import type { SchedContext } from '../../schedulers/types.js';
import type { Candidate, ScheduleResponse } from '../engine.js';
import type { ScheduleQuery } from '../specs.js';
import { createEntry, enterState, expireEntry, invalidateTemplate, packetEvent, rearm } from './lifecycle.js';
import { connTupleKey, type DirectorState } from './state.js';

const FTP_DATA_PORT = 20;

interface Target {
  svc: Service;
  protocol: Protocol;
  virtual: Endpoint;
}

function noDestination(message: string): IpvsError {
  return new IpvsError('NO_DESTINATION', message, 'service');
}

function resolveTarget(state: DirectorState, q: ScheduleQuery, rec: ExplainRecorder | undefined): Target {
  if (q.service) {
    const key =
      q.service.kind === 'fwmark'
        ? `${q.service.family === 6 ? 'fwm6' : 'fwm'}:${q.service.fwmark}`
        : `${q.service.protocol}:${formatEndpoint(q.service.ip, q.service.port)}`;
    const svc = state.services.get(key);
    if (!svc) throw new IpvsError('NO_SERVICE', `service: no such service ${key}`, 'service');
    if (rec) rec.lookup = 'by key';
    if (svc.id.kind === 'addr') {
      if (q.protocol && q.protocol !== svc.id.protocol) {
        throw invalid('protocol', q.protocol, `does not match service ${svc.key}`);
      }
      return { svc, protocol: svc.id.protocol, virtual: q.virtual ?? { ip: svc.id.ip, port: svc.id.port } };
    }
    if (!q.virtual) throw invalid('virtual', undefined, `is required for fwmark service ${svc.key}`);
    if (!q.protocol) throw invalid('protocol', undefined, `is required for fwmark service ${svc.key}`);
    if (q.virtual.ip.family !== svc.family)
      throw invalid('virtual', q.virtual.ip.text, `is not of the family of ${svc.key}`);
    return { svc, protocol: q.protocol, virtual: q.virtual };
  }
  const virtual = q.virtual!;
  const protocol = q.protocol ?? 'tcp';
  const found = findService(state, virtual.ip.family, protocol, virtual.ip, virtual.port, q.fwmark);
  if (!found) {
    const mark = q.fwmark ? ` (fwmark ${q.fwmark})` : '';
    throw new IpvsError(
      'NO_SERVICE',
      `virtual: no service for ${protocol} ${formatEndpoint(virtual.ip, virtual.port)}${mark}`,
      'virtual',
    );
  }
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
  const target = resolveTarget(state, q, rec);
  const { svc, protocol, virtual } = target;
  const initialState =
    q.initialState === undefined ? undefined : parseState(protocol, q.initialState, 'initialState');
  const client = q.client;
  const tupleKey = connTupleKey(
    protocol,
    formatEndpoint(client.ip, client.port),
    formatEndpoint(virtual.ip, virtual.port),
  );

  let discard: Conn | undefined;
  const existing = state.conns.get(tupleKey);
  if (existing) {
    if (reschedules(state, existing, protocol)) {
      discard = existing;
      if (rec) rec.existing = 'rescheduled';
    } else if (!existing.dest.available) {
      if (!state.sysctl.expire_nodest_conn) {
        throw noDestination(
          `connection ${existing.id} belongs to deleted destination ${existing.dest.key}: packet dropped (expire_nodest_conn=0)`,
        );
      }
      discard = existing;
      if (rec) rec.existing = 'rescheduled';
    } else {
      if (protocol === 'tcp') packetEvent(state, existing, 'in', 'syn');
      else if (protocol === 'udp') packetEvent(state, existing, 'in', undefined);
      else enterState(state, existing, sctpInitFromClient(existing.state));
      rearm(state, existing, now);
      if (rec) rec.existing = 'followed';
      return respond(existing, true, rec, undefined);
    }
  }

  const candidates = rec?.candidates(svc);
  const sctx: SchedContext = rec ? { ...ctx, note: rec.note } : ctx;
  try {
    if (client.port === FTP_DATA_PORT) {
      throw noDestination('client port 20 (active FTP data from a real server) is never scheduled');
    }
    const conn = svc.persistence
      ? schedulePersistent(state, svc, protocol, client, virtual, q, now, sctx, rec)
      : scheduleOnce(state, svc, protocol, client, virtual, q, sctx);
    const c = conn;
    firstPacket(state, c, protocol, initialState);
    rearm(state, c, now);
    countConnection(state, c);
    const response = respond(c, false, rec, candidates);
    // One-packet scheduling: the UDP entry is never hashed and goes as soon as its packet is through.
    if (svc.flags & SVC_ONEPACKET && protocol === 'udp') expireEntry(state, c, now, false);
    return response;
  } finally {
    if (discard && discard.nControl === 0 && state.byId.has(discard.id))
      expireEntry(state, discard, now, false);
  }
}

function firstPacket(
  state: DirectorState,
  c: Conn,
  protocol: Protocol,
  initialState: string | undefined,
): void {
  if (initialState !== undefined) enterState(state, c, initialState);
  else if (protocol === 'tcp') packetEvent(state, c, 'in', 'syn');
  else enterState(state, c, firstPacketState(protocol));
}

function pick(
  svc: Service,
  protocol: Protocol,
  client: Endpoint,
  virtual: Endpoint,
  ctx: SchedContext,
): Dest {
  const packet = { protocol, caddr: client.ip, cport: client.port, vaddr: virtual.ip, vport: virtual.port };
  const d = svc.scheduler.schedule(svc.schedState, svc, packet, ctx) as Dest | null;
  if (!d)
    throw noDestination(`service ${svc.key}: no destination available (scheduler ${svc.schedulerName})`);
  return d;
}

/** `ip_vs_schedule` for a service without persistence. */
function scheduleOnce(
  state: DirectorState,
  svc: Service,
  protocol: Protocol,
  client: Endpoint,
  virtual: Endpoint,
  q: ScheduleQuery,
  ctx: SchedContext,
): Conn {
  if (svc.fwmark === 0 && virtual.port !== svc.port) {
    throw noDestination(
      `service ${svc.key}: port ${virtual.port} needs a persistent service (port zero / FTP data)`,
    );
  }
  const dest = pick(svc, protocol, client, virtual, ctx);
  const onePacket = (svc.flags & SVC_ONEPACKET) !== 0 && protocol === 'udp';
  return createEntry(state, svc, dest, {
    template: false,
    protocol,
    caddr: client.ip,
    cport: client.port,
    vaddr: virtual.ip,
    vport: virtual.port,
    dport: dest.port !== 0 ? dest.port : virtual.port,
    tableKey: onePacket
      ? null
      : connTupleKey(
          protocol,
          formatEndpoint(client.ip, client.port),
          formatEndpoint(virtual.ip, virtual.port),
        ),
    callId: null,
    fwmark: q.fwmark,
  });
}

/** `ip_vs_sched_persist`: find or make the template, then the connection it controls. */
function schedulePersistent(
  state: DirectorState,
  svc: Service,
  protocol: Protocol,
  client: Endpoint,
  virtual: Endpoint,
  q: ScheduleQuery,
  now: number,
  ctx: SchedContext,
  rec: ExplainRecorder | undefined,
): Conn {
  let callId: string | null = null;
  if (svc.pe === 'sip') {
    if (protocol !== 'udp') {
      throw new IpvsError(
        'FAILED_PRECONDITION',
        `protocol: the SIP persistence engine of ${svc.key} only takes UDP; packet dropped`,
        'protocol',
      );
    }
    if (q.callId === undefined)
      throw invalid('callId', undefined, `is required by the SIP persistence engine of ${svc.key}`);
    callId = q.callId;
  }
  const persistence = svc.persistence!;
  const shape = templateShape(svc, persistence, protocol, client.ip, virtual.ip, virtual.port, callId);
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
    dest = pick(svc, protocol, client, virtual, ctx);
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
      fwmark: q.fwmark,
    });
    ct.timeoutMs = persistence.timeoutSec * 1000;
  }
  const dport = virtual.port === svc.port && dest.port !== 0 ? dest.port : virtual.port;
  const onePacket = (svc.flags & SVC_ONEPACKET) !== 0 && protocol === 'udp';
  const c = createEntry(state, svc, dest, {
    template: false,
    protocol,
    caddr: client.ip,
    cport: client.port,
    vaddr: virtual.ip,
    vport: virtual.port,
    dport,
    tableKey: onePacket
      ? null
      : connTupleKey(
          protocol,
          formatEndpoint(client.ip, client.port),
          formatEndpoint(virtual.ip, virtual.port),
        ),
    callId: null,
    fwmark: q.fwmark,
  });
  c.control = ct;
  ct.nControl++;
  rearm(state, ct, now);
  return c;
}

function countConnection(state: DirectorState, c: Conn): void {
  c.dest.stats.conns++;
  c.service.stats.conns++;
  state.totalStats.conns++;
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
