/** The in-memory objects as the API shows them (API.md: ServiceStatus, DestinationStatus, Connection). */
import { formatEndpoint } from '../../domain/keys.js';
import { SVC_ONEPACKET, type Conn, type Dest, type Service, type Stats } from '../../director/model.js';
import { readRates } from '../../director/estimator.js';
import type { Connection, DestinationStatus, ServiceStatus, StatsView } from '../engine.js';
import { serviceStatus } from '../service-status.js';

/** Counters and rates (`ip_vs_read_estimator`: kept scaled, ×2^10 for cps/pps and ×2^5 for bps, rounded). */
export function statsView(s: Stats): StatsView {
  return {
    conns: s.conns,
    inPkts: s.inPkts,
    outPkts: s.outPkts,
    inBytes: s.inBytes,
    outBytes: s.outBytes,
    ...readRates(s.est),
  };
}

export function destView(d: Dest): DestinationStatus {
  return {
    key: d.key,
    address: d.ip.text,
    port: d.port,
    weight: d.weight,
    forward: d.forward,
    upperThreshold: d.upperThreshold,
    lowerThreshold: d.lowerThreshold,
    activeConns: d.activeConns,
    inactiveConns: d.inactiveConns,
    persistentConns: d.persistentConns,
    overloaded: d.overloaded,
    available: d.available,
    stats: statsView(d.stats),
  };
}

export function serviceView(svc: Service): ServiceStatus {
  const cfg = {
    id: svc.id,
    key: svc.key,
    family: svc.family,
    scheduler: svc.schedulerName,
    schedFlags: svc.flags,
    persistence: svc.persistence,
    onePacket: (svc.flags & SVC_ONEPACKET) !== 0,
    pe: svc.pe,
  };
  return serviceStatus(cfg, svc.dests.map(destView), statsView(svc.stats));
}

export function connectionView(c: Conn, now: number): Connection {
  const view: Connection = {
    id: c.id,
    protocol: c.protocol,
    client: formatEndpoint(c.caddr, c.cport),
    virtual: formatEndpoint(c.vaddr, c.vport),
    destination: formatEndpoint(c.dest.ip, c.dport),
    state: c.template ? (c.assured ? 'ASSURED' : 'NONE') : c.state,
    expiresInMs: Math.max(0, c.deadline - now),
    template: c.template,
    service: c.service.key,
    origin: c.synced ? 'sync' : 'local',
  };
  if (c.control) view.controlledBy = c.control.id;
  if (c.template) view.controls = c.nControl;
  if (c.callId !== null) view.callId = c.callId;
  return view;
}
