/**
 * The redis engine's key layout. Every key of one virtual service carries the hash tag of its
 * service key, `<prefix>{<service key>}:<name>` (default prefix `ipvs:`), so each Lua call touches
 * one slot and works unchanged on Redis Cluster:
 *
 *   cfg     hash    configuration (+ `json`, the parsed ServiceConfig), version, service stats
 *   klo     list    destination keys in kernel list order (LPUSH on add)
 *   d:<key> hash    one per destination: key ip port fold mo ms (mh permutation) w lw fwd ut lt
 *                   ac ic pc (counters) ol (OVERLOAD) tr (in the trash) n (slot number) + stats
 *   sched   hash    scheduler state: rr `cur`; wrr `cl cw mw di`; lblc/lblcr `gcc gcseq`
 *   tab     string  dh/sh/mh slot table, 2 bytes (destination number) per slot
 *   dn      hash    destination number → destination key
 *   loc     hash    lblc/lblcr table: destination address → packed entry
 *   conns   hash    local entry id → one packed entry (cmsgpack array)
 *   tuples  hash    connection tuple → local id
 *   tpl     hash    template key → local id
 *   dl      zset    deadlines: local ids (and `gc`), score = deadline in ms
 *   trash   set     destination keys in the trash
 *   ctr     hash    counters that survive a delete/re-add of the service (ids, arming sequence,
 *                   destination numbers, config versions, its share of the director's totals)
 *
 * Global keys (not on a service's slot; never touched by a Lua call):
 *   <prefix>services  hash  service key → {"ver", "cfg"}: the lookup index replicas read
 *   <prefix>tags      set   every service key that has state (live services and orphaned entries)
 *   <prefix>sysctl    string JSON of the sysctls;  <prefix>timeouts  string JSON of the timeouts
 *   <prefix>clock     string nowMs of the fleet's manual clock (IPVS_CLOCK=manual only)
 * The clock is the engine's injected clock (or, manual, the clock key): scripts take `now` as
 * ARGV, never Redis TIME. On Redis Cluster each global key hashes to a slot of its own.
 *
 * Entry ids are `<service key>~<local id>`; the local id is base36 + one letter telling the entry's
 * protocol (t, u, s) or a template (i), so Update/Close find the slot and validate without a lookup.
 */
import type { Protocol } from '../../domain/keys.js';

export const DEFAULT_PREFIX = 'ipvs:';

/** The fixed keys every service script takes, in KEYS order (see lua/includes/core.lua). */
export const SERVICE_KEY_NAMES = [
  'cfg',
  'klo',
  'sched',
  'conns',
  'tuples',
  'tpl',
  'dl',
  'trash',
  'loc',
  'ctr',
  'dn',
  'tab',
] as const;

export function tagPrefix(prefix: string, service: string): string {
  return `${prefix}{${service}}:`;
}

export function serviceKeys(prefix: string, service: string): string[] {
  const p = tagPrefix(prefix, service);
  return SERVICE_KEY_NAMES.map((name) => p + name);
}

export function destHashKey(prefix: string, service: string, dest: string): string {
  return `${tagPrefix(prefix, service)}d:${dest}`;
}

export interface GlobalKeys {
  services: string;
  tags: string;
  sysctl: string;
  timeouts: string;
  /** The fleet's manual clock (IPVS_CLOCK=manual): nowMs as a decimal string. */
  clock: string;
}

export function globalKeys(prefix: string): GlobalKeys {
  return {
    services: `${prefix}services`,
    tags: `${prefix}tags`,
    sysctl: `${prefix}sysctl`,
    timeouts: `${prefix}timeouts`,
    clock: `${prefix}clock`,
  };
}

export function connectionId(service: string, local: string): string {
  return `${service}~${local}`;
}

export interface ParsedConnectionId {
  service: string;
  local: string;
  /** Protocol of a connection, or 'ip' for a template (what its updates are validated against). */
  kind: Protocol | 'ip';
}

const KIND: Record<string, Protocol | 'ip'> = { t: 'tcp', u: 'udp', s: 'sctp', i: 'ip' };

export function parseConnectionId(id: unknown): ParsedConnectionId | undefined {
  if (typeof id !== 'string') return undefined;
  const cut = id.lastIndexOf('~');
  if (cut <= 0) return undefined;
  const local = id.slice(cut + 1);
  if (!/^[0-9a-z]+[tusi]$/.test(local)) return undefined;
  return { service: id.slice(0, cut), local, kind: KIND[local[local.length - 1]] };
}
