/**
 * Configuration of the in-process director, with ipvsadm's and the kernel's semantics (§1, §3
 * hooks, §6.6): services and destinations in kernel list order, the trash, scheduler (re)binding.
 */
import { alreadyExists, notFound } from '../../domain/errors.js';
import { formatEndpoint, parseEndpoint } from '../../domain/keys.js';
import { applyThresholdChange } from '../../director/accounting.js';
import { Dest, Service, SVC_ONEPACKET, SVC_PERSISTENT, type GcTimer } from '../../director/model.js';
import { GC_INTERVAL_MS } from '../../schedulers/locality.js';
import { schedulerModule } from '../../schedulers/registry.js';
import type { DestConfig, ServiceConfig } from '../specs.js';
import type { DirectorState } from './state.js';

export function serviceOrThrow(state: DirectorState, key: string): Service {
  const svc = state.services.get(key);
  if (!svc) throw notFound('service', `no such service ${key}`);
  return svc;
}

export function destOrThrow(svc: Service, key: string): Dest {
  const ep = parseEndpoint(key, 'destination');
  const d = svc.byKey.get(formatEndpoint(ep.ip, ep.port));
  if (!d) throw notFound('destination', `no such destination ${key} in service ${svc.key}`);
  return d;
}

/** The configuration a service has now, in the shape `parseServiceSpec` edits. */
export function serviceConfig(svc: Service): ServiceConfig {
  return {
    id: svc.id,
    key: svc.key,
    family: svc.family,
    scheduler: svc.schedulerName,
    schedFlags: svc.flags & ~(SVC_PERSISTENT | SVC_ONEPACKET),
    persistence: svc.persistence,
    onePacket: (svc.flags & SVC_ONEPACKET) !== 0,
    pe: svc.pe,
  };
}

export function destConfig(d: Dest): DestConfig {
  return {
    endpoint: { ip: d.ip, port: d.port, text: d.key },
    key: d.key,
    weight: d.weight,
    forward: d.forward,
    upperThreshold: d.upperThreshold,
    lowerThreshold: d.lowerThreshold,
  };
}

function countSpecialPorts(state: DirectorState, svc: Service, delta: 1 | -1): void {
  if (svc.id.kind !== 'addr') return;
  if (svc.id.port === 21) state.ftpServices += delta;
  if (svc.id.port === 0) state.portZeroServices += delta;
}

/** `init_service` of the scheduler, and its periodic collector if it has one (every 60 s). */
function bindScheduler(state: DirectorState, svc: Service, now: number): void {
  svc.scheduler = schedulerModule(svc.schedulerName);
  svc.schedState = svc.scheduler.init(svc);
  if (svc.scheduler.gc) {
    const timer: GcTimer = { kind: 'gc', service: svc, deadline: 0, seq: 0, heapIndex: -1 };
    svc.gcTimer = timer;
    state.timers.arm(timer, now + GC_INTERVAL_MS);
  }
}

/** `done_service`: all private state is dropped. */
function unbindScheduler(state: DirectorState, svc: Service): void {
  if (svc.gcTimer) state.timers.cancel(svc.gcTimer as GcTimer);
  svc.gcTimer = null;
  svc.schedState = null;
}

function applyServiceConfig(svc: Service, cfg: ServiceConfig): void {
  svc.flags = cfg.schedFlags | (cfg.persistence ? SVC_PERSISTENT : 0) | (cfg.onePacket ? SVC_ONEPACKET : 0);
  svc.persistence = cfg.persistence;
  svc.pe = cfg.pe;
}

export function addService(state: DirectorState, cfg: ServiceConfig, now: number): Service {
  if (state.services.has(cfg.key)) throw alreadyExists('service', `service ${cfg.key} already exists`);
  const svc = new Service(cfg.key, cfg.id, cfg.family);
  svc.schedulerName = cfg.scheduler;
  applyServiceConfig(svc, cfg);
  bindScheduler(state, svc, now);
  state.services.set(svc.key, svc);
  countSpecialPorts(state, svc, 1);
  return svc;
}

/** `ip_vs_edit_service`: a different scheduler is bound anew (state lost); the same one keeps it. */
export function editService(state: DirectorState, svc: Service, cfg: ServiceConfig, now: number): void {
  applyServiceConfig(svc, cfg);
  if (cfg.scheduler !== svc.schedulerName) {
    unbindScheduler(state, svc);
    svc.schedulerName = cfg.scheduler;
    bindScheduler(state, svc, now);
  }
}

/** Moves `d` out of the service's KLO into the trash (`__ip_vs_unlink_dest` + `__ip_vs_del_dest`). */
function unlinkDest(state: DirectorState, svc: Service, d: Dest, callScheduler: boolean): void {
  const oldPos = d.pos;
  svc.dests.splice(oldPos, 1);
  for (let i = oldPos; i < svc.dests.length; i++) svc.dests[i].pos = i;
  svc.byKey.delete(d.key);
  d.available = false;
  d.pos = -1;
  if (callScheduler) svc.scheduler.delDest?.(svc.schedState, svc, d, oldPos);
  d.service = null;
  state.trash.set(`${svc.key}|${d.key}`, d);
}

export function deleteService(state: DirectorState, svc: Service): void {
  while (svc.dests.length > 0) unlinkDest(state, svc, svc.dests[0], false);
  unbindScheduler(state, svc);
  state.services.delete(svc.key);
  countSpecialPorts(state, svc, -1);
}

function applyDestConfig(d: Dest, cfg: DestConfig, adding: boolean): void {
  const previousUpper = d.upperThreshold;
  d.weight = cfg.weight;
  // last_weight: set on add even when 0; on edit only to a non-zero weight (mh uses it).
  if (adding || cfg.weight !== 0) d.lastWeight = cfg.weight;
  d.forward = cfg.forward;
  d.upperThreshold = cfg.upperThreshold;
  d.lowerThreshold = cfg.lowerThreshold;
  applyThresholdChange(d, previousUpper);
}

/** `ip_vs_add_dest`: a new or trash-resurrected dest goes to the head of KLO. */
export function addDest(state: DirectorState, svc: Service, cfg: DestConfig): Dest {
  if (svc.byKey.has(cfg.key))
    throw alreadyExists('destination', `destination ${cfg.key} already exists in ${svc.key}`);
  const trashKey = `${svc.key}|${cfg.key}`;
  const d = state.trash.get(trashKey) ?? new Dest(cfg.key, cfg.endpoint.ip, cfg.endpoint.port, svc.key);
  state.trash.delete(trashKey);
  applyDestConfig(d, cfg, true);
  d.available = true;
  d.service = svc;
  svc.dests.unshift(d);
  for (let i = 0; i < svc.dests.length; i++) svc.dests[i].pos = i;
  svc.byKey.set(d.key, d);
  svc.scheduler.addDest?.(svc.schedState, svc, d);
  return d;
}

/** `ip_vs_edit_dest`: keeps its KLO position; the scheduler's upd_dest hook runs on every edit. */
export function editDest(svc: Service, d: Dest, cfg: DestConfig): void {
  applyDestConfig(d, cfg, false);
  svc.scheduler.updDest?.(svc.schedState, svc, d);
}

export function deleteDest(state: DirectorState, svc: Service, d: Dest): void {
  unlinkDest(state, svc, d, true);
}
