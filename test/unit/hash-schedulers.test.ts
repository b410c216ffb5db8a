import { describe, expect, it } from 'vitest';
import { fold, parseIp } from '../../src/domain/address.js';
import type { Protocol } from '../../src/domain/keys.js';
import { dh, dhHashKey, DH_TAB_SIZE } from '../../src/schedulers/dh.js';
import { hash32 } from '../../src/schedulers/hash.js';
import { makeMh, mh, mhHash, mhPermutation, MH_TAB_SIZE } from '../../src/schedulers/mh.js';
import { sh, shHashKey, SH_TAB_SIZE } from '../../src/schedulers/sh.js';
import { SCHED1, SCHED2 } from '../../src/schedulers/types.js';
import type { SchedContext, SchedDest, SchedPacket, SchedService } from '../../src/schedulers/types.js';

type D = { -readonly [K in keyof SchedDest]: SchedDest[K] };
interface Svc extends SchedService<D> {
  dests: D[];
  flags: number;
}

const ip = (text: string) => parseIp(text, 'ip');

function dest(addr: string, weight = 1, port = 80): D {
  return {
    key: `${addr}:${port}`,
    ip: ip(addr),
    port,
    weight,
    lastWeight: weight,
    activeConns: 0,
    inactiveConns: 0,
    overloaded: false,
    available: true,
    pos: -1,
  };
}

/** A service whose dests are given in KLO order. */
function svcOf(dests: D[], flags = 0): Svc {
  const svc = { dests, flags };
  dests.forEach((d, i) => (d.pos = i));
  return svc;
}

/** Adds at the head (KLO = most recent first), as the engine does. */
function addHead(svc: Svc, d: D): void {
  svc.dests.unshift(d);
  svc.dests.forEach((x, i) => (x.pos = i));
}

function remove(svc: Svc, d: D): number {
  const oldPos = svc.dests.indexOf(d);
  svc.dests.splice(oldPos, 1);
  d.pos = -1;
  svc.dests.forEach((x, i) => (x.pos = i));
  return oldPos;
}

function pkt(caddr: string, cport = 0, vaddr = '10.10.10.10', protocol: Protocol = 'tcp'): SchedPacket {
  return { protocol, caddr: ip(caddr), cport, vaddr: ip(vaddr), vport: 80 };
}

function ctx(notes?: string[]): SchedContext {
  return {
    now: 0,
    randomInt: () => 0,
    sysctl: { lblc_expiration: 86400, lblcr_expiration: 86400 },
    ...(notes ? { note: (t: string) => notes.push(t) } : {}),
  };
}

/** The table as dest addresses (port dropped), slot by slot. */
const addrs = (keys: readonly (string | null)[]) =>
  keys.map((k) => (k === null ? null : k.replace(/:\d+$/, '')));

/** 256 dests 10.0.i.j with weight 1, so the sh table is bucket i = KLO[i]. */
function sh256(flags: number): Svc {
  return svcOf(
    Array.from({ length: 256 }, (_, i) => dest(`10.1.${i}.1`)),
    flags,
  );
}

describe('dh (§3.9)', () => {
  it('D1: bucket of daddr 192.168.1.10 / 10.1.2.3 is 248 / 2', () => {
    expect(dhHashKey(ip('192.168.1.10'))).toBe(248);
    expect(dhHashKey(ip('10.1.2.3'))).toBe(2);
  });

  it('bucket i = KLO[i mod n], weights ignored', () => {
    const svc = svcOf([dest('10.0.0.1', 5), dest('10.0.0.2', 1), dest('10.0.0.3', 0)]);
    const s = dh.init(svc);
    expect(s.table.size).toBe(DH_TAB_SIZE);
    expect(addrs(s.table.keys.slice(0, 5))).toEqual([
      '10.0.0.1',
      '10.0.0.2',
      '10.0.0.3',
      '10.0.0.1',
      '10.0.0.2',
    ]);
    expect(svc.dests.map((d) => dh.describe(s, svc, d).metric)).toEqual([
      'buckets 86',
      'buckets 85',
      'buckets 85',
    ]);
  });

  it('hashes the packet vaddr, not the client address', () => {
    const svc = svcOf([dest('10.0.0.1'), dest('10.0.0.2'), dest('10.0.0.3')]);
    const s = dh.init(svc);
    const notes: string[] = [];
    // 248 mod 3 = 2 → the third dest in KLO
    expect(dh.schedule(s, svc, pkt('1.1.1.1', 1000, '192.168.1.10'), ctx(notes))?.key).toBe('10.0.0.3:80');
    expect(notes).toEqual(['bucket 248 -> 10.0.0.3:80']);
    expect(dh.schedule(s, svc, pkt('2.2.2.2', 2000, '192.168.1.10'), ctx())?.key).toBe('10.0.0.3:80');
    // 10.1.2.3 → bucket 2 → KLO[2]; 10.0.0.1 → bucket 39 → KLO[0]
    expect(dh.schedule(s, svc, pkt('1.1.1.1', 0, '10.0.0.1'), ctx())?.key).toBe('10.0.0.1:80');
  });

  it('KLO decides the mapping: the same dests added in another order map differently', () => {
    const a = svcOf([dest('10.0.0.1'), dest('10.0.0.2'), dest('10.0.0.3')]);
    const b = svcOf([dest('10.0.0.3'), dest('10.0.0.2'), dest('10.0.0.1')]);
    const p = pkt('1.1.1.1', 0, '192.168.1.10');
    expect(dh.schedule(dh.init(a), a, p, ctx())?.key).toBe('10.0.0.3:80');
    expect(dh.schedule(dh.init(b), b, p, ctx())?.key).toBe('10.0.0.1:80');
  });

  it('refuses weight 0, overloaded and unavailable dests, with no fallback', () => {
    const svc = svcOf([dest('10.0.0.1'), dest('10.0.0.2')]);
    const s = dh.init(svc);
    const p = pkt('1.1.1.1', 0, '192.168.1.10'); // bucket 248 → KLO[0]
    const d = svc.dests[0];
    expect(dh.schedule(s, svc, p, ctx())).toBe(d);

    d.weight = 0;
    const notes: string[] = [];
    expect(dh.schedule(s, svc, p, ctx(notes))).toBeNull();
    expect(notes).toEqual(['bucket 248 -> 10.0.0.1:80 refused (weight 0)']);
    expect(dh.describe(s, svc, d)).toEqual({ metric: 'buckets 128', skip: 'weight 0' });

    d.weight = 1;
    d.overloaded = true;
    expect(dh.schedule(s, svc, p, ctx())).toBeNull();
    expect(dh.describe(s, svc, d).skip).toBe('overloaded');

    d.overloaded = false;
    d.available = false;
    expect(dh.schedule(s, svc, p, ctx())).toBeNull();
    expect(dh.describe(s, svc, d).skip).toBe('unavailable');

    d.available = true;
    expect(dh.describe(s, svc, d)).toEqual({ metric: 'buckets 128' });
  });

  it('has no updDest hook (the kernel does not rebuild dh on edits); add/del rebuild', () => {
    expect(dh.updDest).toBeUndefined();
    const svc = svcOf([dest('10.0.0.1'), dest('10.0.0.2')]);
    const s = dh.init(svc);
    const c = dest('10.0.0.3');
    addHead(svc, c);
    dh.addDest!(s, svc, c);
    expect(addrs(s.table.keys.slice(0, 3))).toEqual(['10.0.0.3', '10.0.0.1', '10.0.0.2']);
    const gone = svc.dests[1];
    const oldPos = remove(svc, gone);
    dh.delDest!(s, svc, gone, oldPos);
    expect(addrs(s.table.keys.slice(0, 3))).toEqual(['10.0.0.3', '10.0.0.2', '10.0.0.3']);
  });

  it('an empty service has an empty table and schedules nothing', () => {
    const svc = svcOf([]);
    const s = dh.init(svc);
    const notes: string[] = [];
    expect(dh.schedule(s, svc, pkt('1.1.1.1', 0, '192.168.1.10'), ctx(notes))).toBeNull();
    expect(notes).toEqual(['bucket 248 empty']);
    expect(s.table.keys.every((k) => k === null)).toBe(true);
  });
});

describe('sh (§3.10)', () => {
  it('has flags sh-fallback (SCHED1) and sh-port (SCHED2)', () => {
    expect(sh.name).toBe('sh');
    expect(sh.flagNames).toEqual([
      ['sh-fallback', SCHED1],
      ['sh-port', SCHED2],
    ]);
  });

  it('S1: KLO [A:3, B:1, C:0] → A A A B C repeating; A 154, B 51, C 51', () => {
    const svc = svcOf([dest('10.0.0.1', 3), dest('10.0.0.2', 1), dest('10.0.0.3', 0)]);
    const s = sh.init(svc);
    expect(s.table.size).toBe(SH_TAB_SIZE);
    const A = '10.0.0.1', B = '10.0.0.2', C = '10.0.0.3'; // prettier-ignore
    expect(addrs(s.table.keys.slice(0, 10))).toEqual([A, A, A, B, C, A, A, A, B, C]);
    expect(addrs(s.table.keys.slice(250))).toEqual([A, A, A, B, C, A]);
    expect(svc.dests.map((d) => sh.describe(s, svc, d).metric)).toEqual([
      'buckets 154',
      'buckets 51',
      'buckets 51',
    ]);
  });

  it('S2: KLO [A:2, B:1] → A A B repeating', () => {
    const svc = svcOf([dest('10.0.0.1', 2), dest('10.0.0.2', 1)]);
    const s = sh.init(svc);
    expect(addrs(s.table.keys.slice(0, 6))).toEqual([
      '10.0.0.1',
      '10.0.0.1',
      '10.0.0.2',
      '10.0.0.1',
      '10.0.0.1',
      '10.0.0.2',
    ]);
    expect([s.table.count('10.0.0.1:80'), s.table.count('10.0.0.2:80')]).toEqual([171, 85]);
  });

  it.each([
    ['10.0.0.1', 39],
    ['192.168.1.10', 248],
    ['172.16.5.4', 138],
    ['203.0.113.7', 124],
  ])('S3: bucket of %s without port is %i', (addr, bucket) => {
    expect(shHashKey(ip(addr), 0, 0)).toBe(bucket);
  });

  it('S4: with sh-port and sport 40000: 10.0.0.1 → 203, 192.168.1.10 → 156', () => {
    expect(shHashKey(ip('10.0.0.1'), 40000, 0)).toBe(203);
    expect(shHashKey(ip('192.168.1.10'), 40000, 0)).toBe(156);
  });

  it('sh-port changes the bucket; without it the client port is ignored', () => {
    const plain = sh256(0);
    const s = sh.init(plain);
    expect(sh.schedule(s, plain, pkt('192.168.1.10', 40000), ctx())).toBe(plain.dests[248]);
    expect(sh.schedule(s, plain, pkt('192.168.1.10', 1234), ctx())).toBe(plain.dests[248]);
    const ported = sh256(SCHED2);
    const t = sh.init(ported);
    const notes: string[] = [];
    expect(sh.schedule(t, ported, pkt('192.168.1.10', 40000), ctx(notes))).toBe(ported.dests[156]);
    expect(notes).toEqual(['bucket 156 -> 10.1.156.1:80']);
    expect(sh.schedule(t, ported, pkt('10.0.0.1', 40000, '10.10.10.10', 'udp'), ctx())).toBe(
      ported.dests[203],
    );
  });

  it('hashes the client address, not vaddr', () => {
    const svc = sh256(0);
    const s = sh.init(svc);
    expect(sh.schedule(s, svc, pkt('172.16.5.4', 0, '192.168.1.10'), ctx())).toBe(svc.dests[138]);
  });

  it('S5: sh-fallback probes 248, then 240, 241, 242, … (doubled ih)', () => {
    const svc = sh256(SCHED1);
    const s = sh.init(svc);
    for (const i of [248, 240, 241]) svc.dests[i].overloaded = true;
    svc.dests[242].weight = 0;
    sh.updDest!(s, svc, svc.dests[242]); // weight 0 still holds its one bucket
    expect(s.table.keys[242]).toBe('10.1.242.1:80');
    const notes: string[] = [];
    expect(sh.schedule(s, svc, pkt('192.168.1.10'), ctx(notes))).toBe(svc.dests[243]);
    expect(notes).toEqual([
      'bucket 248 -> 10.1.248.1:80 refused (overloaded)',
      'fallback offset 248: bucket 240 -> 10.1.240.1:80 refused (overloaded)',
      'fallback offset 249: bucket 241 -> 10.1.241.1:80 refused (overloaded)',
      'fallback offset 250: bucket 242 -> 10.1.242.1:80 refused (weight 0)',
      'fallback offset 251: bucket 243 -> 10.1.243.1:80',
    ]);
  });

  it('without sh-fallback a refused bucket gives no destination', () => {
    const svc = sh256(0);
    const s = sh.init(svc);
    svc.dests[248].overloaded = true;
    const notes: string[] = [];
    expect(sh.schedule(s, svc, pkt('192.168.1.10'), ctx(notes))).toBeNull();
    expect(notes).toEqual(['bucket 248 -> 10.1.248.1:80 refused (overloaded)']);
    svc.dests[248].overloaded = false;
    svc.dests[248].weight = 0;
    expect(sh.schedule(s, svc, pkt('192.168.1.10'), ctx())).toBeNull();
  });

  it('fallback gives up after 256 probes when every dest is refused', () => {
    const svc = svcOf([dest('10.0.0.1'), dest('10.0.0.2')], SCHED1);
    const s = sh.init(svc);
    for (const d of svc.dests) d.overloaded = true;
    const notes: string[] = [];
    expect(sh.schedule(s, svc, pkt('192.168.1.10'), ctx(notes))).toBeNull();
    expect(notes).toHaveLength(1 + 256);
  });

  it('does not check AVAILABLE', () => {
    const svc = sh256(0);
    const s = sh.init(svc);
    svc.dests[248].available = false;
    expect(sh.schedule(s, svc, pkt('192.168.1.10'), ctx())).toBe(svc.dests[248]);
    expect(sh.describe(s, svc, svc.dests[248])).toEqual({ metric: 'buckets 1' });
  });

  it('rebuilds on updDest (weights shape the table), not per decision', () => {
    const svc = svcOf([dest('10.0.0.1'), dest('10.0.0.2')]);
    const s = sh.init(svc);
    expect(addrs(s.table.keys.slice(0, 4))).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.1', '10.0.0.2']);
    svc.dests[0].weight = 3;
    sh.schedule(s, svc, pkt('192.168.1.10'), ctx());
    expect(addrs(s.table.keys.slice(0, 4))).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.1', '10.0.0.2']);
    sh.updDest!(s, svc, svc.dests[0]);
    expect(addrs(s.table.keys.slice(0, 4))).toEqual(['10.0.0.1', '10.0.0.1', '10.0.0.1', '10.0.0.2']);
    expect(sh.describe(s, svc, svc.dests[0]).metric).toBe('buckets 192');
  });

  it('add and delete rebuild in KLO', () => {
    const svc = svcOf([dest('10.0.0.1')]);
    const s = sh.init(svc);
    const b = dest('10.0.0.2', 2);
    addHead(svc, b);
    sh.addDest!(s, svc, b);
    expect(addrs(s.table.keys.slice(0, 3))).toEqual(['10.0.0.2', '10.0.0.2', '10.0.0.1']);
    const oldPos = remove(svc, b);
    sh.delDest!(s, svc, b, oldPos);
    expect(s.table.count('10.0.0.1:80')).toBe(256);
    expect(s.table.count('10.0.0.2:80')).toBe(0);
  });

  it('an empty service schedules nothing, even with fallback', () => {
    const svc = svcOf([], SCHED1);
    const s = sh.init(svc);
    const notes: string[] = [];
    expect(sh.schedule(s, svc, pkt('192.168.1.10'), ctx(notes))).toBeNull();
    expect(notes).toEqual(['bucket 248 empty']);
  });
});

const M3 = () => svcOf([dest('10.0.0.1'), dest('10.0.0.2'), dest('10.0.0.3')]);

describe('mh (§3.11)', () => {
  it('has flags mh-fallback (SCHED1) and mh-port (SCHED2), table 4093 by default', () => {
    expect(mh.name).toBe('mh');
    expect(mh.flagNames).toEqual([
      ['mh-fallback', SCHED1],
      ['mh-port', SCHED2],
    ]);
    expect(MH_TAB_SIZE).toBe(4093);
    expect(mh.init(svcOf([])).table.size).toBe(4093);
  });

  it('M1: 10.0.0.1:80 → v 0x0A000051, hsiphash 1134300350, offset 3167, skip 700', () => {
    const a = ip('10.0.0.1');
    expect((80 + fold(a)) >>> 0).toBe(0x0a000051);
    expect(mhHash(a, 80, 0)).toBe(1134300350);
    expect(mhPermutation(a, 80)).toEqual({ offset: 3167, skip: 700 });
  });

  it('M2: 10.0.0.2:80 → 1231, 3544; 10.0.0.3:80 → 1631, 3453', () => {
    expect(mhPermutation(ip('10.0.0.2'), 80)).toEqual({ offset: 1231, skip: 3544 });
    expect(mhPermutation(ip('10.0.0.3'), 80)).toEqual({ offset: 1631, skip: 3453 });
  });

  it('M3: KLO [.1, .2, .3] weight 1 → 1365/1364/1364 slots, slots 0..9 = .1 .2 .2 .3 .3 .1 .2 .3 .3 .1', () => {
    const svc = M3();
    const s = mh.init(svc);
    expect(addrs(s.table.keys.slice(0, 10)).map((a) => a!.replace('10.0.0', ''))).toEqual([
      '.1', '.2', '.2', '.3', '.3', '.1', '.2', '.3', '.3', '.1',
    ]); // prettier-ignore
    expect(svc.dests.map((d) => mh.describe(s, svc, d).metric)).toEqual([
      'buckets 1365',
      'buckets 1364',
      'buckets 1364',
    ]);
    // each dest's first claim is its own offset (slot 3167 for .1, 1231 for .2, 1631 for .3)
    expect(addrs([s.table.keys[3167], s.table.keys[1231], s.table.keys[1631]])).toEqual([
      '10.0.0.1',
      '10.0.0.2',
      '10.0.0.3',
    ]);
  });

  it('M4: client 192.168.1.10 → slot 3323 → 10.0.0.1; with mh-port 40000 → v 0xC0A89D4A, slot 1622 → 10.0.0.1', () => {
    const svc = M3();
    const s = mh.init(svc);
    expect(mhHash(ip('192.168.1.10'), 0, 0)).toBe(3588839862);
    const notes: string[] = [];
    expect(mh.schedule(s, svc, pkt('192.168.1.10', 40000), ctx(notes))?.key).toBe('10.0.0.1:80');
    expect(notes).toEqual(['bucket 3323 -> 10.0.0.1:80']);

    expect((40000 + fold(ip('192.168.1.10'))) >>> 0).toBe(0xc0a89d4a);
    const ported = svcOf(M3().dests, SCHED2);
    const t = mh.init(ported);
    const pnotes: string[] = [];
    expect(mh.schedule(t, ported, pkt('192.168.1.10', 40000), ctx(pnotes))?.key).toBe('10.0.0.1:80');
    expect(pnotes).toEqual(['bucket 1622 -> 10.0.0.1:80']);
  });

  it('M5: weights 300/100 → 3070/1023 slots; 65535/1 → 4030/63 (rshift 10, turns 63/1)', () => {
    for (const [w1, w2, n1, n2] of [
      [300, 100, 3070, 1023],
      [65535, 1, 4030, 63],
      [3, 1, 3070, 1023],
    ]) {
      const svc = svcOf([dest('10.0.0.1', w1), dest('10.0.0.2', w2)]);
      const s = mh.init(svc);
      expect([s.table.count('10.0.0.1:80'), s.table.count('10.0.0.2:80')]).toEqual([n1, n2]);
    }
  });

  it('removing 10.0.0.3 moves only 2 of the other dests’ 2729 slots', () => {
    const svc = M3();
    const s = mh.init(svc);
    const before = [...s.table.keys];
    const gone = svc.dests[2];
    const oldPos = remove(svc, gone);
    mh.delDest!(s, svc, gone, oldPos);
    let kept = 0;
    let moved = 0;
    before.forEach((k, slot) => {
      if (k === gone.key) return;
      if (s.table.keys[slot] === k) kept++;
      else moved++;
    });
    expect([kept + moved, moved]).toEqual([2729, 2]);
    expect(s.table.count(gone.key)).toBe(0);
    expect(s.table.count('10.0.0.1:80') + s.table.count('10.0.0.2:80')).toBe(4093);
  });

  it('a quiesced dest (weight 0, lastWeight kept) keeps its slots and is refused at lookup', () => {
    const svc = M3();
    const s = mh.init(svc);
    const before = [...s.table.keys];
    const d1 = svc.dests[0];
    d1.weight = 0; // lastWeight stays 1
    mh.updDest!(s, svc, d1);
    expect(s.table.keys).toEqual(before);
    const notes: string[] = [];
    expect(mh.schedule(s, svc, pkt('192.168.1.10'), ctx(notes))).toBeNull();
    expect(notes).toEqual(['bucket 3323 -> 10.0.0.1:80 refused (weight 0)']);
    expect(mh.describe(s, svc, d1)).toEqual({ metric: 'buckets 1365', skip: 'weight 0' });
  });

  it('mh-fallback re-hashes with offset (off + ih) mod M, not linear probing', () => {
    const svc = svcOf(M3().dests, SCHED1);
    const s = mh.init(svc);
    const client = ip('192.168.1.10');
    svc.dests[0].overloaded = true;
    // walk the kernel's probe sequence by hand: offsets 3323, 3324, … re-hashed
    const expected: string[] = ['bucket 3323 -> 10.0.0.1:80 refused (overloaded)'];
    let want: string | undefined;
    for (let off = 0; want === undefined; off++) {
      const roff = (off + 3323) % 4093;
      const slot = mhHash(client, 0, roff) % 4093;
      const key = s.table.keys[slot]!;
      expected.push(
        `fallback offset ${roff}: bucket ${slot} -> ${key}${key === '10.0.0.1:80' ? ' refused (overloaded)' : ''}`,
      );
      if (key !== '10.0.0.1:80') want = key;
    }
    expect(mhHash(client, 0, 3323) % 4093).not.toBe(3324);
    const notes: string[] = [];
    expect(mh.schedule(s, svc, pkt('192.168.1.10'), ctx(notes))?.key).toBe(want);
    expect(notes).toEqual(expected);
    expect(mh.describe(s, svc, svc.dests[0]).skip).toBe('overloaded');
  });

  it('without mh-fallback an overloaded or weight-0 slot owner gives no destination', () => {
    const svc = M3();
    const s = mh.init(svc);
    svc.dests[0].overloaded = true;
    expect(mh.schedule(s, svc, pkt('192.168.1.10'), ctx())).toBeNull();
    svc.dests[0].overloaded = false;
    expect(mh.schedule(s, svc, pkt('192.168.1.10'), ctx())?.key).toBe('10.0.0.1:80');
  });

  it('fallback gives up when every dest is refused', () => {
    const svc = svcOf(M3().dests, SCHED1);
    const s = makeMh(251).init(svc);
    for (const d of svc.dests) d.weight = 0;
    makeMh(251).updDest!(s, svc, svc.dests[0]);
    const notes: string[] = [];
    expect(makeMh(251).schedule(s, svc, pkt('192.168.1.10'), ctx(notes))).toBeNull();
    expect(notes).toHaveLength(1 + 251);
  });

  it('does not check AVAILABLE', () => {
    const svc = M3();
    const s = mh.init(svc);
    svc.dests[0].available = false;
    expect(mh.schedule(s, svc, pkt('192.168.1.10'), ctx())?.key).toBe('10.0.0.1:80');
  });

  it('a dest added with weight 0 (lastWeight 0) gets no slots; all lastWeight 0 → empty table', () => {
    const svc = M3();
    const s = mh.init(svc);
    const z = dest('10.0.0.4', 0);
    addHead(svc, z);
    mh.addDest!(s, svc, z);
    expect(s.table.count(z.key)).toBe(0);
    // rebuilt in the new KLO [.4, .1, .2, .3]: .4 is skipped, so the table is the M3 table
    expect(addrs(s.table.keys.slice(0, 3))).toEqual(['10.0.0.1', '10.0.0.2', '10.0.0.2']);

    const none = svcOf([dest('10.0.0.1', 0), dest('10.0.0.2', 0)], SCHED1);
    const t = mh.init(none);
    expect(t.table.keys.every((k) => k === null)).toBe(true);
    const notes: string[] = [];
    expect(mh.schedule(t, none, pkt('192.168.1.10'), ctx(notes))).toBeNull();
    expect(notes).toEqual(['bucket 3323 empty']);
  });

  it('rebuilds on updDest when last_weight changes, not per decision', () => {
    const svc = M3().dests.slice(0, 2);
    const two = svcOf(svc);
    const s = mh.init(two);
    expect([s.table.count('10.0.0.1:80'), s.table.count('10.0.0.2:80')]).toEqual([2047, 2046]);
    two.dests[0].weight = 3;
    two.dests[0].lastWeight = 3;
    mh.schedule(s, two, pkt('192.168.1.10'), ctx());
    expect(s.table.count('10.0.0.1:80')).toBe(2047);
    mh.updDest!(s, two, two.dests[0]);
    expect([s.table.count('10.0.0.1:80'), s.table.count('10.0.0.2:80')]).toEqual([3070, 1023]);
  });

  it('makeMh(251): a 251-slot table with MH_TAB_BITS 4', () => {
    const mh251 = makeMh(251);
    const svc = M3();
    const s = mh251.init(svc);
    expect(s.table.size).toBe(251);
    expect(s.table.keys.every((k) => k !== null)).toBe(true);
    expect(svc.dests.map((d) => s.table.count(d.key))).toEqual([84, 84, 83]);
    // .1 claims its own offset first: hsiphash(0x0A000051, hash1) mod 251
    expect(mhPermutation(ip('10.0.0.1'), 80, 251).offset).toBe(1134300350 % 251);
    expect(s.table.keys[1134300350 % 251]).toBe('10.0.0.1:80');
    // 65535/1: rshift = fls(65535) − 4 = 12 → turns 15/1; 251 = 15·16 + 11 → 236/15
    const w = svcOf([dest('10.0.0.1', 65535), dest('10.0.0.2', 1)]);
    const t = mh251.init(w);
    expect([t.table.count('10.0.0.1:80'), t.table.count('10.0.0.2:80')]).toEqual([236, 15]);
    expect(mh251.schedule(s, svc, pkt('192.168.1.10'), ctx())?.key).toBe(
      s.table.keys[mhHash(ip('192.168.1.10'), 0, 0) % 251],
    );
  });

  it('makeMh rejects sizes that are not kernel table primes', () => {
    expect(() => makeMh(256)).toThrow(RangeError);
    expect(makeMh(509).init(svcOf([])).table.size).toBe(509);
  });

  it('with more dests than slots the old table stays (and still resolves its dests by key)', () => {
    const mh251 = makeMh(251);
    const svc = svcOf(Array.from({ length: 251 }, (_, i) => dest(`10.2.${i}.1`)));
    const s = mh251.init(svc);
    const before = [...s.table.keys];
    expect(new Set(before).size).toBe(251); // one slot each
    const extra = dest('10.3.0.1');
    addHead(svc, extra);
    mh251.addDest!(s, svc, extra);
    expect(s.table.keys).toEqual(before);
    expect(s.table.count(extra.key)).toBe(0);
    // every position shifted by one; lookups still return the dest named in the slot
    const slot = mhHash(ip('192.168.1.10'), 0, 0) % 251;
    expect(mh251.schedule(s, svc, pkt('192.168.1.10'), ctx())?.key).toBe(before[slot]);
  });

  it('builds a 4093-slot table for 4093 dests quickly', () => {
    const svc = svcOf(Array.from({ length: 4093 }, (_, i) => dest(`10.${i >> 8}.${i & 255}.1`, 1 + (i % 5))));
    const t0 = performance.now();
    const s = mh.init(svc);
    expect(performance.now() - t0).toBeLessThan(1000);
    expect(s.table.keys.every((k) => k !== null)).toBe(true);
  });
});

describe('cross-checks with §3.15', () => {
  it('sh bucket = hash_32 of the folded IPv6 client address', () => {
    const a = ip('2001:db8::1');
    expect(shHashKey(a, 0, 0)).toBe(hash32(0x20010db9, 8));
    expect(shHashKey(a, 0, 0)).toBe(63);
    expect(dhHashKey(a)).toBe(63);
  });
});
