/**
 * `explain` on the redis engine. The decision is made in Lua; the schedule script, when asked,
 * also returns what the decision saw — the destination list just before it and the scheduler's
 * state hash — and whether an existing entry was followed or rescheduled and a template hit. The
 * candidates are then described here by the scheduler module's own `describe` (the code the memory
 * engine decides and explains with), over a model of the service built from that snapshot: never a
 * second implementation of a metric. What the memory engine adds as free-form notes from inside
 * its scheduler (twos' random draws, dh/sh/mh slot notes) is not produced by the Lua decision.
 */
import { parseIp } from '../../domain/address.js';
import { schedulerModule, type SchedulerName } from '../../schedulers/registry.js';
import type { SchedDest, SchedService } from '../../schedulers/types.js';
import { describeCandidates } from '../../director/explain.js';
import type { Explanation } from '../engine.js';

/** One destination as the script saw it (fields of the destination hash). */
export interface ObservedDest {
  key: string;
  ip: string;
  port: number;
  w: number;
  lw: number;
  ac: number;
  ic: number;
  ol: number;
  tr: number;
}

export interface Observed {
  dests?: ObservedDest[] | Record<string, never>;
  /** HGETALL of the scheduler state hash (flat field, value list). */
  sched?: string[] | Record<string, never>;
  existing: Explanation['existing'];
  template: Explanation['template'];
}

function schedState(flat: unknown): Map<string, string> {
  const out = new Map<string, string>();
  if (Array.isArray(flat))
    for (let i = 0; i + 1 < flat.length; i += 2) out.set(String(flat[i]), String(flat[i + 1]));
  return out;
}

export function explanation(
  scheduler: SchedulerName,
  flags: number,
  lookup: string,
  seen: Observed,
  chosen: string,
): Explanation {
  const observed = Array.isArray(seen.dests) ? seen.dests : [];
  const dests: SchedDest[] = observed.map((d, pos) => ({
    key: d.key,
    ip: parseIp(d.ip, 'destination'),
    port: Number(d.port),
    weight: Number(d.w),
    lastWeight: Number(d.lw),
    activeConns: Number(d.ac),
    inactiveConns: Number(d.ic),
    overloaded: Number(d.ol) === 1,
    available: Number(d.tr) === 0,
    pos,
  }));
  const svc: SchedService = { dests, flags };
  const module = schedulerModule(scheduler);
  const state = module.init(svc) as Record<string, unknown>;
  // the state a walk resumes from lives in Redis: rr's cursor, wrr's current weight
  const stored = schedState(seen.sched);
  if (state && typeof state === 'object') {
    if ('cursor' in state) state.cursor = dests.find((d) => d.key === stored.get('cur')) ?? null;
    if ('cw' in state && stored.has('cw')) state.cw = Number(stored.get('cw'));
  }
  const candidates = describeCandidates(module, state, svc);
  return {
    scheduler,
    lookup,
    template: seen.template,
    existing: seen.existing,
    candidates,
    chosen,
    notes: [],
  };
}
