/**
 * lblc — Locality-Based Least Connection (`ip_vs_lblc.c`, §3.7). Keyed by the packet's destination
 * address: a cached dest is reused while it is available, has weight > 0 and is not "overloaded"
 * in lblc's own sense (the OVERLOAD threshold flag is NOT checked for it); otherwise wlc picks and
 * the entry is (re)pointed at the pick. Entries outlive a dest's deletion (then it is unavailable).
 */
import { localityScheduler, LocalityTable, type LocalityEntry } from './locality.js';
import type { SchedDest } from './types.js';

interface LblcEntry extends LocalityEntry {
  dest: SchedDest;
}

export const lblc = localityScheduler<LblcEntry>('lblc', (s, _svc, pkt, ctx) => {
  const entry = s.table.get(pkt.vaddr);
  if (entry) {
    entry.lastuse = ctx.now;
    const d = entry.dest;
    if (d.available && d.weight > 0 && !s.load.isOverloaded(d)) {
      ctx.note?.(`cache hit ${pkt.vaddr.text} → ${d.key}`);
      return d;
    }
    ctx.note?.(`cache entry ${pkt.vaddr.text} → ${d.key} not usable; wlc pick`);
  }
  const d = s.load.leastLoaded();
  if (!d) return null;
  if (!entry || entry.dest !== d) {
    s.table.set({ addr: pkt.vaddr, bucket: LocalityTable.bucketOf(pkt.vaddr), lastuse: ctx.now, dest: d });
  }
  return d;
});
