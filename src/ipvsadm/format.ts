/**
 * Pieces of ipvsadm's output shared by listing and saving: printf field padding, `print_largenum`,
 * and `addrport_to_anyname` (numeric `a.b.c.d:port` / `[v6]:port`, or names through a resolver).
 */
import { parseIp } from '../domain/address.js';
import type { Protocol } from '../domain/keys.js';

/** `%-Ns`. */
export function left(s: string | number, width: number): string {
  return String(s).padEnd(width, ' ');
}

/** `%Ns`. */
export function right(s: string | number, width: number): string {
  return String(s).padStart(width, ' ');
}

/**
 * `print_largenum`: below 10^8 `%9llu`; then `%8lluK` (/10^3) below 10^9, `%8lluM` (/10^6) below
 * 10^11, `%8lluG` (/10^9) below 10^14, else `%8lluT` (/10^12). With `--exact`: the plain value,
 * width 9 for up to 8 digits, else digits + 1.
 */
export function largenum(value: number, exact = false): string {
  const i = Math.max(0, Math.floor(value));
  if (exact) {
    const s = String(i);
    return right(s, s.length <= 8 ? 9 : s.length + 1);
  }
  if (i < 1e8) return right(i, 9);
  if (i < 1e9) return right(Math.floor(i / 1e3), 8) + 'K';
  if (i < 1e11) return right(Math.floor(i / 1e6), 8) + 'M';
  if (i < 1e14) return right(Math.floor(i / 1e9), 8) + 'G';
  return right(Math.floor(i / 1e12), 8) + 'T';
}

/** The protocol a name lookup uses: the service's, or `ip` (no service name lookup) for fwmark. */
export type LookupProtocol = Protocol | 'ip';

/**
 * Turns an address and port into the text ipvsadm prints without `-n`: the whole `host:service`
 * (IPv6 hosts in brackets). Build one with `nameResolver`.
 */
export type NameResolver = (ip: string, port: number, protocol: LookupProtocol) => string;

/**
 * `addrport_to_anyname` without FMT_NUMERIC: the host name when `hostName` knows one (else the
 * address), the service name for TCP/UDP/SCTP ports when `serviceName` knows one (else the number);
 * IPv6 in brackets. Both lookups are synchronous: resolve ahead (e.g. `dns.reverse`,
 * `dns.lookupService`) and pass the results in.
 */
export function nameResolver(
  hostName: (ip: string) => string | undefined = () => undefined,
  serviceName: (port: number, protocol: Protocol) => string | undefined = () => undefined,
): NameResolver {
  return (ip, port, protocol) => {
    const v6 = ip.includes(':');
    const host = hostName(ip) ?? ip;
    const service = protocol === 'ip' ? undefined : serviceName(port, protocol);
    return `${v6 ? '[' : ''}${host}${v6 ? ']' : ''}:${service ?? port}`;
  };
}

/** `addrport_to_anyname` with FMT_NUMERIC. */
export function numericEndpoint(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/** How addresses are shown: numeric (`-n`, the default here) or through a resolver. */
export interface NameOptions {
  /** `-n`. Default true. Without it and without `resolve`, addresses are still numeric. */
  numeric?: boolean;
  resolve?: NameResolver;
}

export function endpointText(ip: string, port: number, protocol: LookupProtocol, names: NameOptions): string {
  const numeric = names.numeric ?? true;
  if (numeric || !names.resolve) return numericEndpoint(ip, port);
  return names.resolve(ip, port, protocol);
}

/** Splits an API endpoint (`a.b.c.d:port`, `[v6]:port`) into canonical address text and port. */
export function splitEndpoint(text: string): { ip: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:([0-9]+)$/.exec(text) ?? /^([^:]+):([0-9]+)$/.exec(text);
  if (!m) return undefined;
  try {
    return { ip: parseIp(m[1], 'endpoint').text, port: Number(m[2]) };
  } catch {
    return undefined;
  }
}

/** Whether an address text is IPv6. */
export function isV6(ip: string): boolean {
  return ip.includes(':');
}

const SCHED1 = 0x0008;
const SCHED2 = 0x0010;
const SCHED3 = 0x0020;
/** IP_VS_SVC_F_SCHED1 | SCHED2 | SCHED3. */
export const SCHED_FLAGS_MASK = SCHED1 | SCHED2 | SCHED3;

const FLAG_BITS: Readonly<Record<string, number>> = {
  'flag-1': SCHED1,
  'flag-2': SCHED2,
  'flag-3': SCHED3,
  'sh-fallback': SCHED1,
  'sh-port': SCHED2,
  'mh-fallback': SCHED1,
  'mh-port': SCHED2,
};

/** ServiceStatus.schedFlags (names) → SCHED bits. */
export function schedFlagBits(names: readonly string[]): number {
  let bits = 0;
  for (const n of names) bits |= FLAG_BITS[n] ?? 0;
  return bits;
}

/**
 * `print_sched_flags`: sh → `sh-fallback,sh-port`, mh → `mh-fallback,mh-port` (SCHED3 is not
 * printed for them), any other scheduler → `flag-1,flag-2,flag-3`. May be empty although a bit is
 * set (sh or mh with only SCHED3): ipvsadm then prints ` -b ` / ` ()` with nothing inside.
 */
export function schedFlagsText(bits: number, scheduler: string): string {
  const names: string[] = [];
  if (scheduler === 'sh' || scheduler === 'mh') {
    if (bits & SCHED1) names.push(`${scheduler}-fallback`);
    if (bits & SCHED2) names.push(`${scheduler}-port`);
  } else {
    if (bits & SCHED1) names.push('flag-1');
    if (bits & SCHED2) names.push('flag-2');
    if (bits & SCHED3) names.push('flag-3');
  }
  return names.join(',');
}

/**
 * The persistence mask as ipvsadm shows it, or undefined when it is the host mask (not shown):
 * IPv4 dotted (`inet_ntoa`) unless 255.255.255.255, IPv6 the prefix length unless 128.
 */
export function maskText(family: 'inet' | 'inet6', netmask: string): string | undefined {
  if (family === 'inet6') {
    const plen = Number(netmask);
    return plen === 128 ? undefined : String(plen);
  }
  let text = netmask;
  try {
    text = parseIp(netmask, 'netmask').text;
  } catch {
    // keep what the engine gave
  }
  return text === '255.255.255.255' ? undefined : text;
}
