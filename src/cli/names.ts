/**
 * Names for `ipvsctl`, resolved ahead of time because the ipvsadm module's formatters and parser
 * take synchronous lookups:
 * - output without `-n` (ipvsadm's `gethostbyaddr` + `getservbyport`): `dns.promises.lookupService`
 *   (getnameinfo: /etc/hosts, DNS, /etc/services) for every address:port to be shown, numeric
 *   when nothing is known;
 * - input (`-t host:port`, `-r host`, `-M host`; ipvsadm's `gethostbyname` + `getservbyname`):
 *   the host words of the command line (or of `-R` input) looked up with `dns.promises.lookup`
 *   (IPv4, as gethostbyname), service names read from /etc/services.
 */
import { promises as dns } from 'node:dns';
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import type { Protocol } from '../domain/keys.js';
import { nameResolver, type NameResolver } from '../ipvsadm/format.js';
import { inetAton } from '../ipvsadm/libc.js';
import { wellKnownService } from '../ipvsadm/options.js';

/** How long one name lookup may take before the numeric form is used. */
export const LOOKUP_TIMEOUT_MS = 3_000;

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      () => {
        clearTimeout(timer);
        resolve(undefined);
      },
    );
  });
}

export interface EndpointToName {
  ip: string;
  port: number;
}

/** A service name from getnameinfo's answer (it gives the number when it knows none). */
function serviceNameOf(service: string | undefined): string | undefined {
  return service && !/^[0-9]+$/.test(service) ? service : undefined;
}

/**
 * Resolves the endpoints with getnameinfo (`dns.promises.lookupService`) and returns the
 * `nameResolver` the formatters take. One lookup per address (with one of its ports) gives the
 * host name; a host without a name stays numeric. Ports that no such lookup named are looked up on
 * 127.0.0.1 (getnameinfo answers nothing at all for an address without a name). getnameinfo
 * names ports as TCP services; /etc/services gives UDP the same names in practice.
 */
export async function resolveNames(
  endpoints: readonly EndpointToName[],
  timeoutMs = LOOKUP_TIMEOUT_MS,
): Promise<NameResolver> {
  const hosts = new Map<string, string>();
  const services = new Map<number, string>();
  const portOf = new Map<string, number>();
  const ports = new Set<number>();
  for (const { ip, port } of endpoints) {
    if (isIP(ip) === 0 || !Number.isInteger(port) || port < 0 || port > 65535) continue;
    ports.add(port);
    if (!portOf.has(ip)) portOf.set(ip, port);
  }
  await Promise.all(
    [...portOf].map(async ([ip, port]) => {
      const answer = await withTimeout(dns.lookupService(ip, port), timeoutMs);
      if (!answer) return;
      if (answer.hostname && answer.hostname !== ip) hosts.set(ip, answer.hostname);
      const service = serviceNameOf(answer.service);
      if (service) services.set(port, service);
    }),
  );
  await Promise.all(
    [...ports]
      .filter((port) => !services.has(port))
      .map(async (port) => {
        const answer = await withTimeout(dns.lookupService('127.0.0.1', port), timeoutMs);
        const service = serviceNameOf(answer?.service);
        if (service) services.set(port, service);
      }),
  );
  return nameResolver(
    (ip) => hosts.get(ip),
    (port) => services.get(port),
  );
}

// ---------------------------------------------------------------------------------------------
// input: host and service names on the command line

/** Options whose value is `host[:port]` (or a mask that may be a host name, `-M`). */
const HOST_LONG = new Set(['tcp-service', 'udp-service', 'sctp-service', 'real-server', 'netmask']);
const HOST_SHORT = new Set(['t', 'u', 'r', 'M']);
/** Short options without an argument (may be clustered before a host option: `-At vip`). */
const NO_ARG_SHORT = new Set([...'AEDCLlZaedhvRSmigncX6o']);

/** The host part of a `host[:port]` word, when it is a name rather than an address. */
function hostNameIn(word: string): string | undefined {
  if (word.startsWith('[')) return undefined;
  const colon = word.lastIndexOf(':');
  const host = colon < 0 ? word : word.slice(0, colon);
  if (host === '' || host.includes(':') || inetAton(host) !== undefined) return undefined;
  return /^[A-Za-z0-9_.-]+$/.test(host) && /[A-Za-z_-]/.test(host) ? host : undefined;
}

/** Host names an ipvsadm argv may make ipvsadm look up (the values of -t/-u/--sctp-service/-r/-M). */
export function hostNamesIn(argv: readonly string[]): string[] {
  const names = new Set<string>();
  const add = (value: string | undefined) => {
    const host = value === undefined ? undefined : hostNameIn(value);
    if (host) names.add(host);
  };
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (word === '--') break;
    if (word.startsWith('--')) {
      const eq = word.indexOf('=');
      const name = eq < 0 ? word.slice(2) : word.slice(2, eq);
      if (!HOST_LONG.has(name)) continue;
      add(eq < 0 ? argv[++i] : word.slice(eq + 1));
      continue;
    }
    if (!word.startsWith('-') || word === '-') continue;
    for (let j = 1; j < word.length; j++) {
      const ch = word[j];
      if (HOST_SHORT.has(ch)) {
        const rest = word.slice(j + 1);
        add(rest !== '' ? rest.replace(/^=/, '') : argv[++i]);
        break;
      }
      if (!NO_ARG_SHORT.has(ch)) break;
    }
  }
  return [...names];
}

/**
 * Looks up host names (IPv4, as gethostbyname) and returns the synchronous `resolveHost` that
 * `parseCommand` takes: a dotted address, or undefined when the name is unknown.
 */
export async function resolveHosts(
  names: readonly string[],
  timeoutMs = LOOKUP_TIMEOUT_MS,
): Promise<(name: string) => string | undefined> {
  const table = new Map<string, string>();
  await Promise.all(
    names.map(async (name) => {
      const answer = await withTimeout(dns.lookup(name, { family: 4 }), timeoutMs);
      if (answer) table.set(name, answer.address);
    }),
  );
  return (name) => table.get(name);
}

let servicesTable: Map<string, number> | null | undefined;

/** /etc/services as `name/proto` (and aliases) → port; null when the file cannot be read. */
function readServices(): Map<string, number> | null {
  if (servicesTable !== undefined) return servicesTable;
  try {
    const text = readFileSync('/etc/services', 'utf8');
    const table = new Map<string, number>();
    for (const raw of text.split('\n')) {
      const line = raw.replace(/#.*/, '').trim();
      if (line === '') continue;
      const [name, portProto, ...aliases] = line.split(/\s+/);
      const m = /^([0-9]+)\/([a-z]+)$/.exec(portProto ?? '');
      if (!m) continue;
      for (const n of [name, ...aliases]) {
        const key = `${n}/${m[2]}`;
        if (!table.has(key)) table.set(key, Number(m[1]));
      }
    }
    servicesTable = table;
  } catch {
    servicesTable = null;
  }
  return servicesTable;
}

/** `getservbyname(name, proto)` from /etc/services (a small built-in table when it is missing). */
export function serviceToPort(name: string, protocol: Protocol): number | undefined {
  const table = readServices();
  if (table === null) return wellKnownService(name);
  return table.get(`${name}/${protocol}`);
}
