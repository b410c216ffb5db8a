/**
 * Persistence granularity (§5.2). IPv4: a 32-bit mask, dotted, applied bitwise (non-contiguous masks
 * work). IPv6: a prefix length 1..128 kept in the same field.
 */
import { ipFromWords, parseIp, type Family, type Ip } from './address.js';
import { invalid } from './errors.js';

export type Netmask =
  { readonly family: 4; readonly mask: number } | { readonly family: 6; readonly plen: number };

export const HOST_MASK_V4: Netmask = { family: 4, mask: 0xffffffff };
export const HOST_MASK_V6: Netmask = { family: 6, plen: 128 };

export function hostMask(family: Family): Netmask {
  return family === 4 ? HOST_MASK_V4 : HOST_MASK_V6;
}

/** Parses a netmask for a service of `family`: dotted for IPv4, a prefix length for IPv6. */
export function parseNetmask(value: unknown, family: Family, field: string): Netmask {
  if (family === 4) {
    if (typeof value !== 'string') throw invalid(field, value, 'must be a dotted IPv4 netmask string');
    const ip = tryParse(value);
    if (!ip || ip.family !== 4)
      throw invalid(field, value, 'must be a dotted IPv4 netmask like 255.255.255.0');
    return { family: 4, mask: ip.words[0] };
  }
  const text = typeof value === 'number' ? String(value) : value;
  if (typeof text !== 'string' || !/^[1-9][0-9]{0,2}$/.test(text) || Number(text) > 128) {
    throw invalid(field, value, 'must be an IPv6 prefix length from 1 to 128');
  }
  return { family: 6, plen: Number(text) };
}

function tryParse(text: string): Ip | undefined {
  try {
    return parseIp(text, 'netmask');
  } catch {
    return undefined;
  }
}

export function formatNetmask(netmask: Netmask): string {
  return netmask.family === 4 ? ipFromWords(4, [netmask.mask]).text : String(netmask.plen);
}

export function isHostMask(netmask: Netmask): boolean {
  return netmask.family === 4 ? netmask.mask === 0xffffffff : netmask.plen === 128;
}

/** The client network of `ip` under `netmask` (`snet` of §5.1). */
export function applyNetmask(ip: Ip, netmask: Netmask): Ip {
  if (netmask.family === 4) {
    if (ip.family !== 4) return ip;
    return ipFromWords(4, [(ip.words[0] & netmask.mask) >>> 0]);
  }
  if (ip.family !== 6) return ip;
  const words = ip.words.map((w, i) => {
    const bits = Math.max(0, Math.min(32, netmask.plen - 32 * i));
    const mask = bits === 0 ? 0 : bits === 32 ? 0xffffffff : (0xffffffff << (32 - bits)) >>> 0;
    return (w & mask) >>> 0;
  });
  return ipFromWords(6, words);
}
