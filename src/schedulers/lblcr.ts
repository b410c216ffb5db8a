/**
 * lblcr — LBLC with Replication (`ip_vs_lblcr.c`, §3.8). Each destination address maps to a set of
 * dests (newest first). The least loaded usable member serves unless lblc-overloaded; then wlc picks
 * and the pick joins the set. A set of several members untouched for `lblcr_expiration` loses its
 * most loaded member, at most one per call — after the min was chosen (a kernel quirk kept here).
 */
import { localityScheduler, LocalityTable, type LocalityEntry } from './locality.js';
import { overhead, type SchedDest } from './types.js';

interface LblcrEntry extends LocalityEntry {
  /** Members, most recently inserted first. */
  set: SchedDest[];
  lastmod: number;
}

/** `ip_vs_dest_set_min`: least overhead/weight among usable members, ties to the earlier member. */
function setMin(set: readonly SchedDest[]): SchedDest | null {
  let least: SchedDest | null = null;
  for (const m of set) {
    if (least === null) {
      if (!m.overloaded && m.weight > 0 && m.available) least = m;
      continue;
    }
    if (m.overloaded) continue;
    if (overhead(least) * m.weight > overhead(m) * least.weight && m.available) least = m;
  }
  return least;
}

/** `ip_vs_dest_set_max`: most overhead/weight among members with weight > 0 (flags ignored). */
function setMax(set: readonly SchedDest[]): SchedDest | null {
  let most: SchedDest | null = null;
  for (const m of set) {
    if (m.weight <= 0) continue;
    if (most === null || overhead(most) * m.weight < overhead(m) * most.weight) most = m;
  }
  return most;
}

export const lblcr = localityScheduler<LblcrEntry>('lblcr', (s, _svc, pkt, ctx) => {
  const entry = s.table.get(pkt.vaddr);
  if (entry) {
    entry.lastuse = ctx.now;
    const min = setMin(entry.set);
    if (entry.set.length > 1 && ctx.now > entry.lastmod + ctx.sysctl.lblcr_expiration * 1000) {
      const max = setMax(entry.set);
      if (max) {
        entry.set.splice(entry.set.indexOf(max), 1);
        entry.lastmod = ctx.now;
        ctx.note?.(`set of ${pkt.vaddr.text} expired its most loaded member ${max.key}`);
      }
    }
    if (min && !s.load.isOverloaded(min)) {
      ctx.note?.(`set hit ${pkt.vaddr.text} → ${min.key}`);
      return min;
    }
    const d = s.load.leastLoaded();
    if (!d) return null;
    if (!entry.set.includes(d)) {
      entry.set.unshift(d);
      entry.lastmod = ctx.now;
    }
    ctx.note?.(`set of ${pkt.vaddr.text} grows by wlc pick ${d.key}`);
    return d;
  }
  const d = s.load.leastLoaded();
  if (!d) return null;
  const bucket = LocalityTable.bucketOf(pkt.vaddr);
  s.table.set({ addr: pkt.vaddr, bucket, lastuse: ctx.now, lastmod: ctx.now, set: [d] });
  return d;
});
