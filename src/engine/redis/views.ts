/**
 * What the redis engine's scripts answer, as the API shows it (the shapes of the memory engine's
 * views): destination and connection records, service views with their counters and rates.
 */
import type { Counters } from '../../director/model.js';
import type { Connection, DestinationStatus, ServiceStatus, StatsView } from '../engine.js';
import { serviceStatus } from '../service-status.js';
import type { ServiceConfig } from '../specs.js';
import { connectionId } from './keys.js';
import { ratesOf, type RatesState } from './rates.js';

/** What the scripts answer: `ok` with fields, or `err` with a code. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Reply = Record<string, any>;

export interface DestRecord {
  key: string;
  ip: string;
  port: number;
  w: number;
  lw: number;
  fwd: string;
  ut: number;
  lt: number;
  ac: number;
  ic: number;
  pc: number;
  ol: number;
  tr: number;
  sc: number;
  sip: number;
  sop: number;
  sib: number;
  sob: number;
}

export interface ConnRecord {
  id: string;
  tpl: boolean;
  proto: string;
  caddr: string;
  cport: number;
  vaddr: string;
  vport: number;
  dport: number;
  dest: string;
  destIp: string;
  state: string;
  deadline: number;
  ctl: string;
  nctl: number;
  callId: string | false;
  assured: boolean;
}

export const list = <T>(x: unknown): T[] => (Array.isArray(x) ? (x as T[]) : []);
const hostPort = (ip: string, port: number) => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);

export function stats(
  conns: number,
  inPkts: number,
  outPkts: number,
  inBytes: number,
  outBytes: number,
  rates?: Parameters<typeof ratesOf>[0],
): StatsView {
  return { conns, inPkts, outPkts, inBytes, outBytes, ...ratesOf(rates) };
}

export function countersOf(x: { sc: number; sip: number; sop: number; sib: number; sob: number }): Counters {
  return { conns: +x.sc, inPkts: +x.sip, outPkts: +x.sop, inBytes: +x.sib, outBytes: +x.sob };
}

export function destView(d: DestRecord, rates?: RatesState): DestinationStatus {
  return {
    key: d.key,
    address: d.ip,
    port: d.port,
    weight: d.w,
    forward: d.fwd,
    upperThreshold: d.ut,
    lowerThreshold: d.lt,
    activeConns: d.ac,
    inactiveConns: d.ic,
    persistentConns: d.pc,
    overloaded: d.ol === 1,
    available: d.tr === 0,
    stats: stats(d.sc, d.sip, d.sop, d.sib, d.sob, rates?.dests[d.key]),
  };
}

export function serviceView(rec: Reply, rates?: RatesState): ServiceStatus {
  const svc = rec.svc as Record<string, string | number>;
  return serviceStatus(
    JSON.parse(String(svc.json)) as ServiceConfig,
    list<DestRecord>(rec.dests).map((d) => destView(d, rates)),
    stats(+svc.sc, +svc.sip, +svc.sop, +svc.sib, +svc.sob, rates?.svc),
  );
}

export function connectionView(c: ConnRecord, service: string, now: number): Connection {
  const view: Connection = {
    id: connectionId(service, c.id),
    protocol: c.proto,
    client: hostPort(c.caddr, c.cport),
    virtual: hostPort(c.vaddr, c.vport),
    destination: hostPort(c.destIp, c.dport),
    state: c.tpl ? (c.assured ? 'ASSURED' : 'NONE') : c.state,
    expiresInMs: Math.max(0, c.deadline - now),
    template: c.tpl,
    service,
    origin: 'local',
  };
  if (c.ctl !== '') view.controlledBy = connectionId(service, c.ctl);
  if (c.tpl) view.controls = c.nctl;
  if (c.callId !== false && c.callId !== null && c.callId !== undefined) view.callId = c.callId;
  return view;
}
