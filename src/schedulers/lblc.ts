/**
 * lblc — Locality-Based Least Connection (`ip_vs_lblc.c`, §3.7). Keyed by the packet's destination
 * address: a cached dest is reused while it is available, has weight > 0 and is not "overloaded"
 * in lblc's own sense (the OVERLOAD threshold flag is NOT checked for it); otherwise wlc picks and
 * the entry is (re)pointed at the pick. Entries outlive a dest's deletion (then it is unavailable).
 */
import { LocalityLoad, LocalityTable, type LocalityEntry } from './locality.js';
import { defineScheduler, overhead, type SchedDest } from './types.js';
import { skipOverloadedOrQuiesced } from './tree-scheduler.js';

interface LblcEntry extends LocalityEntry {
  dest: SchedDest;
}

interface LblcState {
  readonly load: LocalityLoad;
  readonly table: LocalityTable<LblcEntry>;
}

export const lblc = defineScheduler<LblcState>({
  name: 'lblc',
  init(svc) {
    const load = new LocalityLoad();
    load.rebuild(svc);
    return { load, table: new LocalityTable<LblcEntry>() };
  },
  addDest: (s, svc, d) => s.load.added(svc, d),
  delDest: (s, svc, d) => s.load.removed(svc, d),
  updDest: (s, _svc, d) => s.load.refresh(d),
  countersChanged: (s, _svc, d) => s.load.refresh(d),
  schedule(s, _svc, pkt, ctx) {
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
  },
  describe: (s, _svc, d) => ({
    metric: `overhead ${overhead(d)} / weight ${d.weight}`,
    skip: skipOverloadedOrQuiesced(d) ?? (s.load.isOverloaded(d) ? 'lblc-overloaded' : undefined),
  }),
  gc: (s, _svc, ctx) => s.table.collect(ctx.now, ctx.sysctl.lblc_expiration * 1000),
  size: (s) => s.table.size,
});
