/**
 * Every scheduler by name, and the `-b` scheduler flags (§1.1, §8.1): `sh-fallback`/`sh-port` only
 * with sh, `mh-fallback`/`mh-port` only with mh, `flag-1..3` (raw SCHED1..3) with any scheduler.
 */
import { invalid } from '../domain/errors.js';
import { dh } from './dh.js';
import { fo } from './fo.js';
import { lblc } from './lblc.js';
import { lblcr } from './lblcr.js';
import { lc } from './lc.js';
import { mh } from './mh.js';
import { none } from './none.js';
import { nq } from './nq.js';
import { ovf } from './ovf.js';
import { rr } from './rr.js';
import { sed } from './sed.js';
import { sh } from './sh.js';
import { twos } from './twos.js';
import { SCHED1, SCHED2, SCHED3, type SchedulerModule } from './types.js';
import { wlc } from './wlc.js';
import { wrr } from './wrr.js';

export const SCHEDULER_NAMES = [
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
export type SchedulerName = (typeof SCHEDULER_NAMES)[number] | 'none';

const MODULES: Record<SchedulerName, SchedulerModule<unknown>> = {
  rr,
  wrr,
  lc,
  wlc,
  sed,
  nq,
  lblc,
  lblcr,
  dh,
  sh,
  mh,
  fo,
  ovf,
  twos,
  none,
} as Record<SchedulerName, SchedulerModule<unknown>>;

export function schedulerModule(name: SchedulerName): SchedulerModule<unknown> {
  return MODULES[name];
}

export function parseSchedulerName(value: unknown, field: string): SchedulerName {
  if (typeof value === 'string' && Object.prototype.hasOwnProperty.call(MODULES, value)) {
    return value as SchedulerName;
  }
  throw invalid(field, value, `must be one of ${SCHEDULER_NAMES.join(', ')} (or none)`);
}

const RAW_FLAGS: readonly (readonly [string, number])[] = [
  ['flag-1', SCHED1],
  ['flag-2', SCHED2],
  ['flag-3', SCHED3],
];

/** Flag names → SCHED bits, checked against the scheduler. */
export function parseSchedFlags(value: unknown, scheduler: SchedulerName, field: string): number {
  if (value === undefined || value === null) return 0;
  if (!Array.isArray(value)) throw invalid(field, value, 'must be a list of scheduler flag names');
  const named = MODULES[scheduler].flagNames ?? [];
  let bits = 0;
  for (const name of value) {
    const hit = [...named, ...RAW_FLAGS].find(([n]) => n === name);
    if (!hit) {
      const allowed = [...named, ...RAW_FLAGS].map(([n]) => n).join(', ');
      throw invalid(field, name, `is not a flag of scheduler ${scheduler} (allowed: ${allowed})`);
    }
    bits |= hit[1];
  }
  return bits;
}

/** SCHED bits → names as ipvsadm 1.31 prints them (scheduler's own names, else flag-N). */
export function schedFlagNames(bits: number, scheduler: SchedulerName): string[] {
  const named = MODULES[scheduler].flagNames ?? [];
  const names: string[] = [];
  for (const [raw, bit] of RAW_FLAGS) {
    if (!(bits & bit)) continue;
    names.push(named.find(([, b]) => b === bit)?.[0] ?? raw);
  }
  return names;
}
