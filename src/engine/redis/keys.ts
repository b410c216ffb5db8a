/**
 * The redis engine's key layout. Every key of one virtual service carries the hash tag of its
 * service key, `<prefix>{<service key>}:<name>` (default prefix `ipvs:`), so each Lua call touches
 * one slot and works unchanged on Redis Cluster:
 *
 *   cfg     hash    configuration (+ `json`, the parsed ServiceConfig), version, service stats
 *   klo     list    destination keys in kernel list order (LPUSH on add)
 *   d:<key> string  one per destination, cmsgpack of: key ip port fold mo ms (mh permutation) w lw
 *                   fwd ut lt ac ic pc (counters) ol (OVERLOAD) tr (in the trash) n (slot number),
 *                   stats, ord tw hi (its place in KLO and its share of the scheduler's indexes)
 *   sched   hash    scheduler state: rr `cur`; wrr `cl cw mw di`; lblc/lblcr `gcc gcseq`
 *   tab     string  dh/sh/mh slot table, 2 bytes (destination number) per slot
 *   dn      hash    destination number → destination key
 *   loc     hash    lblc/lblcr table: destination address → packed entry
 *   tuples  hash    connection tuple key → the connection, packed (struct, ~50 bytes)
 *   tpl     hash    template key → the template, packed
 *   conns   hash    local id → packed entry, for entries no packet may find (one-packet
 *                   connections, invalidated templates)
 *   dl      zset    near timers: local ids due within the wheel's promoted horizon (and `gc`),
 *                   score = deadline in ms
 *   wheel   zset    timer wheel buckets (deadline // 1000 ms) that hold a list
 *   w:<n>   list    local ids whose deadline falls in bucket n (moved to `dl` when n comes due)
 *   trash   set     destination keys in the trash
 *   ctr     hash    counters that survive a delete/re-add of the service (ids, arming sequence,
 *                   destination numbers, config versions, its share of the director's totals)
 *
 * Global keys (not on a service's slot; never touched by a Lua call):
 *   <prefix>tags      set   every service key that has state (live services and orphaned entries);
 *                           replicas build their service lookup from it and each tag's `cfg`
 *   <prefix>config    pub/sub channel: "the configuration changed" (config-cache.ts)
 *   <prefix>sysctl    string JSON of the sysctls;  <prefix>timeouts  string JSON of the timeouts
 *   <prefix>clock     string nowMs of the fleet's manual clock (IPVS_CLOCK=manual only)
 * The clock is the engine's injected clock (or, manual, the clock key): scripts take `now` as
 * ARGV, never Redis TIME. On Redis Cluster each global key hashes to a slot of its own.
 *
 * Entry ids are `<service key>~<local id>`; the local id is `<base36 number><kind>.<key>`: kind is
 * the entry's protocol (t, u, s) or a template (i), key the tuple or template key it was created
 * with, so Update/Close find the slot, the record and validate without a lookup. A connection's
 * tuple key is `<t|u|s>|<client host:port>|<virtual host:port>` (virtual empty when it is the
 * service's own address).
 */
import type { Protocol } from '../../domain/keys.js';

export const DEFAULT_PREFIX = 'ipvs:';

/**
 * The fixed keys of a service (see lua/includes/core.lua). A script declares only the first,
 * `cfg` (KEYS[1]): it names the others from it, all on the same hash tag and slot.
 */
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
  'wheel',
] as const;

export function tagPrefix(prefix: string, service: string): string {
  return `${prefix}{${service}}:`;
}

export function serviceKeys(prefix: string, service: string): string[] {
  const p = tagPrefix(prefix, service);
  return SERVICE_KEY_NAMES.map((name) => p + name);
}

/** KEYS of every service script: the service's `cfg` key. */
export function scriptKeys(prefix: string, service: string): [string] {
  return [`${tagPrefix(prefix, service)}cfg`];
}

export interface GlobalKeys {
  tags: string;
  sysctl: string;
  timeouts: string;
  /** The fleet's manual clock (IPVS_CLOCK=manual): nowMs as a decimal string. */
  clock: string;
}

export function globalKeys(prefix: string): GlobalKeys {
  return {
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
  const cut = id.indexOf('~');
  if (cut <= 0) return undefined;
  const local = id.slice(cut + 1);
  const m = /^[0-9a-z]+([tusi])\./.exec(local);
  if (!m) return undefined;
  return { service: id.slice(0, cut), local, kind: KIND[m[1]] };
}

/**
 * The tuple key of a connection of `service`: `<t|u|s>|<client host:port>|<virtual host:port>`,
 * the virtual part left empty when it is the service's own address (read back from the key).
 */
export function tupleKey(service: string, protocol: Protocol, client: string, virtual: string): string {
  const own = service.length === protocol.length + 1 + virtual.length && service === `${protocol}:${virtual}`;
  return `${protocol[0]}|${client}|${own ? '' : virtual}`;
}
