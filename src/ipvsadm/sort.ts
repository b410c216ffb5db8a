/**
 * ipvsadm's sort order (§8.5, `libipvs.c:ipvs_cmp_services`, `ipvs_cmp_dests`) including its quirk:
 * address and fwmark differences are unsigned 32-bit subtractions read back as `int`, so values
 * more than 2^31 apart compare "wrapped" (10.0.0.1 sorts after 192.168.1.1). The comparator is then
 * not a total order, so the result depends on the sort algorithm: this is glibc's `qsort`, a
 * top-down merge sort (`msort_with_tmp`), which glibc uses for these small arrays (glibc 2.37 and
 * 2.38 used introsort instead and may order such inputs differently).
 */
import { parseIp } from '../domain/address.js';
import { PROTOCOL_NUMBER, type Protocol } from '../domain/keys.js';
import type { DestinationStatus, ServiceStatus } from '../engine/engine.js';

const AF_INET = 2;
const AF_INET6 = 10;

/** glibc `qsort` (merge sort, stable; takes the left element when `cmp <= 0`). */
export function glibcQsort<T>(items: readonly T[], cmp: (a: T, b: T) => number): T[] {
  const a = [...items];
  const tmp = new Array<T>(a.length);
  const sort = (lo: number, n: number): void => {
    if (n <= 1) return;
    const n1 = n >> 1;
    const n2 = n - n1;
    sort(lo, n1);
    sort(lo + n1, n2);
    let i = lo;
    let j = lo + n1;
    const iEnd = lo + n1;
    const jEnd = lo + n;
    let k = 0;
    while (i < iEnd && j < jEnd) {
      if (cmp(a[i], a[j]) <= 0) tmp[k++] = a[i++];
      else tmp[k++] = a[j++];
    }
    while (i < iEnd) tmp[k++] = a[i++];
    while (j < jEnd) tmp[k++] = a[j++];
    for (let m = 0; m < n; m++) a[lo + m] = tmp[m];
  };
  sort(0, a.length);
  return a;
}

/** `(int)(a - b)` for u32 operands. */
export function wrappedDiff(a: number, b: number): number {
  return (a - b) | 0;
}

/** What the comparators read of an entry: af, and the address as four u32 words (IPv4 in the first). */
interface SortAddr {
  af: number;
  words: number[];
}

function addrOf(text: string | undefined): SortAddr {
  if (text === undefined) return { af: AF_INET, words: [0, 0, 0, 0] };
  const ip = parseIp(text, 'address');
  return ip.family === 6
    ? { af: AF_INET6, words: [...ip.words] }
    : { af: AF_INET, words: [ip.words[0], 0, 0, 0] };
}

function cmpAddr(af1: number, a: number[], b: number[]): number {
  if (af1 === AF_INET6) {
    for (let i = 0; i < 4; i++) {
      const r = wrappedDiff(a[i], b[i]);
      if (r !== 0) return r;
    }
    return 0;
  }
  return wrappedDiff(a[0], b[0]);
}

interface ServiceSortKey {
  fwmark: number;
  af: number;
  protocol: number;
  words: number[];
  port: number;
}

function serviceSortKey(s: ServiceStatus): ServiceSortKey {
  const af = s.family === 'inet6' ? AF_INET6 : AF_INET;
  if (s.fwmark) return { fwmark: s.fwmark, af, protocol: 0, words: [0, 0, 0, 0], port: 0 };
  return {
    fwmark: 0,
    af,
    protocol: PROTOCOL_NUMBER[s.protocol as Protocol] ?? 0,
    words: addrOf(s.address).words,
    port: s.port ?? 0,
  };
}

function cmpServiceKeys(s1: ServiceSortKey, s2: ServiceSortKey): number {
  let r = wrappedDiff(s1.fwmark, s2.fwmark);
  if (r !== 0) return r;
  r = s1.af - s2.af;
  if (r !== 0) return r;
  r = s1.protocol - s2.protocol;
  if (r !== 0) return r;
  r = cmpAddr(s1.af, s1.words, s2.words);
  if (r !== 0) return r;
  return s1.port - s2.port;
}

/** `ipvs_cmp_services`. */
export function compareServices(a: ServiceStatus, b: ServiceStatus): number {
  return cmpServiceKeys(serviceSortKey(a), serviceSortKey(b));
}

/** `ipvs_cmp_dests`. */
export function compareDests(a: DestinationStatus, b: DestinationStatus): number {
  const d1 = addrOf(a.address);
  const d2 = addrOf(b.address);
  const r = cmpAddr(d1.af, d1.words, d2.words);
  if (r !== 0) return r;
  return a.port - b.port;
}

/** `ipvs_sort_services(…, ipvs_cmp_services)`. */
export function sortServices(services: readonly ServiceStatus[]): ServiceStatus[] {
  const keyed = services.map((s) => ({ s, k: serviceSortKey(s) }));
  return glibcQsort(keyed, (x, y) => cmpServiceKeys(x.k, y.k)).map((x) => x.s);
}

/** `ipvs_sort_dests(…, ipvs_cmp_dests)`. */
export function sortDests(dests: readonly DestinationStatus[]): DestinationStatus[] {
  const keyed = dests.map((d) => ({ d, a: addrOf(d.address) }));
  return glibcQsort(keyed, (x, y) => {
    const r = cmpAddr(x.a.af, x.a.words, y.a.words);
    return r !== 0 ? r : x.d.port - y.d.port;
  }).map((x) => x.d);
}
