/**
 * IPv4 and IPv6 addresses. An address is kept as big-endian 32-bit words (one for IPv4, four for
 * IPv6) plus its canonical text (dotted quad; RFC 5952 for IPv6), so hashing (§3.15 `fold`),
 * masking (§5.2) and sorting (§8.5) work on the words and keys use the text.
 */
import { invalid } from './errors.js';

export type Family = 4 | 6;

export interface Ip {
  readonly family: Family;
  /** Big-endian u32 words: [w0] for IPv4, [w0, w1, w2, w3] for IPv6. */
  readonly words: readonly number[];
  /** Canonical text form, without brackets. */
  readonly text: string;
}

/** A dotted quad read in one pass: four decimal octets 0..255, no leading zeros, nothing else. */
function parseV4Words(text: string): number | undefined {
  let value = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return undefined; // leading zero
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return undefined;
    } else if (c === 46 && digits > 0 && dots < 3) {
      value = value * 256 + octet;
      octet = 0;
      digits = 0;
      dots++;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || digits === 0) return undefined;
  return (value * 256 + octet) >>> 0;
}

function parseV6Words(text: string): number[] | undefined {
  if (text.length < 2 || text.length > 45) return undefined;
  let head = text;
  let tailV4: number | undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.indexOf('.', lastColon) !== -1) {
    tailV4 = parseV4Words(text.slice(lastColon + 1));
    if (tailV4 === undefined) return undefined;
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const groupsOf = (part: string): number[] | undefined => {
    if (part === '') return [];
    const groups: number[] = [];
    for (const g of part.split(':')) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      groups.push(parseInt(g, 16));
    }
    return groups;
  };
  const left = groupsOf(halves[0]);
  const right = halves.length === 2 ? groupsOf(halves[1]) : [];
  if (!left || !right) return undefined;
  let groups: number[];
  if (halves.length === 2) {
    const missing = 8 - left.length - right.length;
    if (missing < 1) return undefined;
    groups = [...left, ...new Array<number>(missing).fill(0), ...right];
  } else {
    groups = left;
  }
  if (groups.length !== 8) return undefined;
  const words = [0, 1, 2, 3].map((i) => ((groups[2 * i] << 16) | groups[2 * i + 1]) >>> 0);
  if (tailV4 !== undefined) words[3] = tailV4;
  return words;
}

export function formatV4(word: number): string {
  return [word >>> 24, (word >>> 16) & 255, (word >>> 8) & 255, word & 255].join('.');
}

/**
 * RFC 5952 as glibc's inet_ntop (and so ipvsadm) prints it: lowercase, leading zeros dropped, the
 * first longest run (≥ 2) of zero groups as `::`, and IPv4-mapped (::ffff:a.b.c.d) or
 * IPv4-compatible (::a.b.c.d) addresses with a dotted tail.
 */
export function formatV6(words: readonly number[]): string {
  const groups: number[] = [];
  for (const w of words) groups.push(w >>> 16, w & 0xffff);
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (gs: number[]) => gs.map((g) => g.toString(16)).join(':');
  if (bestStart === 0 && (bestLen === 6 || (bestLen === 5 && groups[5] === 0xffff))) {
    return `::${bestLen === 5 ? 'ffff:' : ''}${formatV4(words[3])}`;
  }
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLen))}`;
}

export function ipFromWords(family: Family, words: readonly number[]): Ip {
  const w = words.map((x) => x >>> 0);
  return { family, words: w, text: family === 4 ? formatV4(w[0]) : formatV6(w) };
}

/** Parses an IPv4 or IPv6 address (no brackets, no zone). Rejections name `field`. */
export function parseIp(value: unknown, field: string): Ip {
  if (typeof value !== 'string') throw invalid(field, value, 'must be an IP address string');
  const v4 = parseV4Words(value);
  // Accepted dotted quads are canonical already (no leading zeros), so the text is kept as given.
  if (v4 !== undefined) return { family: 4, words: [v4], text: value };
  if (value.includes(':')) {
    const v6 = parseV6Words(value);
    if (v6) return ipFromWords(6, v6);
  }
  throw invalid(field, value, 'is not an IPv4 or IPv6 address');
}

/** §3.15 fold(): IPv4 → the address; IPv6 → XOR of its four words (host order). */
export function fold(ip: Ip): number {
  const w = ip.words;
  return ip.family === 4 ? w[0] : (w[0] ^ w[1] ^ w[2] ^ w[3]) >>> 0;
}

export function isUnspecified(ip: Ip): boolean {
  return ip.words.every((w) => w === 0);
}

/**
 * Whether `ip` may be a real server (`ip_vs_new_dest`): a unicast address — not unspecified, not
 * multicast, not the IPv4 limited broadcast, not IPv6 link-local.
 */
export function unicastProblem(ip: Ip): string | undefined {
  if (isUnspecified(ip)) return 'must not be the unspecified address';
  const w0 = ip.words[0];
  if (ip.family === 4) {
    if (w0 >>> 28 === 0xe) return 'must be unicast (not multicast)';
    if (w0 === 0xffffffff) return 'must be unicast (not broadcast)';
    return undefined;
  }
  if (w0 >>> 24 === 0xff) return 'must be unicast (not multicast)';
  if (w0 >>> 22 === 0x3fa) return 'must not be link-local (fe80::/10)';
  if (w0 === 0 && ip.words[1] === 0 && ip.words[2] === 0xffff) return 'must be unicast (not IPv4-mapped)';
  return undefined;
}

/** Compares two addresses of one family word by word, unsigned (a sensible total order). */
export function compareIp(a: Ip, b: Ip): number {
  if (a.family !== b.family) return a.family - b.family;
  for (let i = 0; i < a.words.length; i++) {
    if (a.words[i] !== b.words[i]) return a.words[i] < b.words[i] ? -1 : 1;
  }
  return 0;
}
