/**
 * Names of things (API.md "Names"): protocols, endpoints (`addr:port`, IPv6 in brackets), virtual
 * service keys (`tcp:10.0.0.1:80`, `udp:[2001:db8::1]:53`, `fwm:42`, `fwm6:42`) and destination keys.
 * Parsing is strict; every rejection names the field and the bad value.
 */
import { parseIp, type Family, type Ip } from './address.js';
import { invalid } from './errors.js';

export const PROTOCOLS = ['tcp', 'udp', 'sctp'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** IANA protocol numbers: the kernel sorts services by them (§8.5). */
export const PROTOCOL_NUMBER: Record<Protocol, number> = { tcp: 6, udp: 17, sctp: 132 };

export function parseProtocol(value: unknown, field: string): Protocol {
  if (typeof value === 'string' && (PROTOCOLS as readonly string[]).includes(value)) return value as Protocol;
  throw invalid(field, value, `must be one of ${PROTOCOLS.join(', ')}`);
}

export function parsePort(value: unknown, field: string): number {
  const n = typeof value === 'string' && /^[0-9]{1,5}$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 65535) {
    throw invalid(field, value, 'must be a port number from 0 to 65535');
  }
  return n;
}

export function parseFwmark(value: unknown, field: string): number {
  const n = typeof value === 'string' && /^[0-9]{1,10}$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 1 || n > 0xffffffff) {
    throw invalid(field, value, 'must be a firewall mark from 1 to 4294967295');
  }
  return n;
}

export interface Endpoint {
  readonly ip: Ip;
  readonly port: number;
  /** Canonical `addr:port` text. */
  readonly text: string;
}

export function formatEndpoint(ip: Ip, port: number): string {
  return ip.family === 6 ? `[${ip.text}]:${port}` : `${ip.text}:${port}`;
}

export function endpoint(ip: Ip, port: number): Endpoint {
  return { ip, port, text: formatEndpoint(ip, port) };
}

/**
 * The hot path of every decision: a canonical IPv4 `a.b.c.d:port` read in one pass over its
 * characters. Anything else (IPv6, or text that is not already canonical) returns undefined and
 * goes through the general parser, which gives the precise error.
 */
function fastV4Endpoint(text: string): Endpoint | undefined {
  let word = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  let i = 0;
  const n = text.length;
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      if (digits > 0 && octet === 0) return undefined; // leading zero
      octet = octet * 10 + (c - 48);
      if (++digits > 3 || octet > 255) return undefined;
    } else if (c === 46 || c === 58) {
      if (digits === 0) return undefined;
      word = word * 256 + octet;
      octet = 0;
      digits = 0;
      if (c === 58) break;
      if (++dots > 3) return undefined;
    } else {
      return undefined;
    }
  }
  if (dots !== 3 || i === n) return undefined;
  let port = 0;
  const portStart = ++i;
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
    port = port * 10 + (c - 48);
  }
  const portDigits = n - portStart;
  if (
    portDigits === 0 ||
    portDigits > 5 ||
    port > 65535 ||
    (portDigits > 1 && text.charCodeAt(portStart) === 48)
  ) {
    return undefined;
  }
  const ip: Ip = { family: 4, words: [word >>> 0], text: text.slice(0, portStart - 1) };
  return { ip, port, text };
}

/** Splits `addr:port` / `[v6]:port`; `port` is undefined when the text has none. */
function splitHostPort(text: string): { host: string; port?: string } | undefined {
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close < 0) return undefined;
    const rest = text.slice(close + 1);
    if (rest === '') return { host: text.slice(1, close) };
    if (!rest.startsWith(':')) return undefined;
    return { host: text.slice(1, close), port: rest.slice(1) };
  }
  const colon = text.lastIndexOf(':');
  if (colon < 0) return { host: text };
  if (text.indexOf(':') !== colon) return undefined; // bare IPv6 needs brackets when a port follows
  return { host: text.slice(0, colon), port: text.slice(colon + 1) };
}

/** Parses `addr:port`; the port is required. */
export function parseEndpoint(value: unknown, field: string): Endpoint {
  if (typeof value !== 'string') throw invalid(field, value, 'must be an "address:port" string');
  const fast = fastV4Endpoint(value);
  if (fast) return fast;
  const parts = splitHostPort(value);
  if (!parts || parts.port === undefined) {
    throw invalid(field, value, 'must be "address:port" (IPv6 in brackets: "[2001:db8::1]:80")');
  }
  const ip = parseIp(parts.host, field);
  if (value.startsWith('[') !== (ip.family === 6)) {
    throw invalid(field, value, 'IPv6 addresses take brackets and IPv4 addresses do not');
  }
  if (!/^[0-9]{1,5}$/.test(parts.port)) throw invalid(field, value, 'has a bad port');
  return endpoint(ip, parsePort(Number(parts.port), field));
}

export type ServiceId =
  | { readonly kind: 'addr'; readonly protocol: Protocol; readonly ip: Ip; readonly port: number }
  | { readonly kind: 'fwmark'; readonly family: Family; readonly fwmark: number };

export function serviceKeyOf(id: ServiceId): string {
  if (id.kind === 'fwmark') return `${id.family === 6 ? 'fwm6' : 'fwm'}:${id.fwmark}`;
  return `${id.protocol}:${formatEndpoint(id.ip, id.port)}`;
}

export function serviceFamily(id: ServiceId): Family {
  return id.kind === 'fwmark' ? id.family : id.ip.family;
}

export function parseServiceKey(value: unknown, field: string): ServiceId {
  if (typeof value !== 'string') throw invalid(field, value, 'must be a service key string');
  const colon = value.indexOf(':');
  const head = colon < 0 ? value : value.slice(0, colon);
  const rest = value.slice(colon + 1);
  if (head === 'fwm' || head === 'fwm6') {
    return { kind: 'fwmark', family: head === 'fwm6' ? 6 : 4, fwmark: parseFwmark(rest, field) };
  }
  if (colon < 0 || !(PROTOCOLS as readonly string[]).includes(head)) {
    throw invalid(field, value, 'must be "<tcp|udp|sctp>:<addr>:<port>", "fwm:<mark>" or "fwm6:<mark>"');
  }
  const ep = parseEndpoint(rest, field);
  return { kind: 'addr', protocol: head as Protocol, ip: ep.ip, port: ep.port };
}
