/**
 * ipvsadm's command line (§8.1), parsed the way ipvsadm 1.31 parses it (`parse_options` with popt,
 * then `process_options`), into a typed command carrying the Engine's JSON-shaped DTOs.
 *
 * What is reproduced, in ipvsadm's order:
 * - popt scanning: short clusters (`-Ln`, `-w5`), `--long=value`, `-p`'s optional argument (taken
 *   only when the next word does not start with `-`), `--`, leftover words;
 * - the first option must be a command (else "Try `ipvsadm -h' …", exit 255); a later command
 *   option is "invalid option `…'";
 * - each option as it comes: duplicates ("multiple '…' options specified"), value checks with
 *   ipvsadm's messages, the order-dependent state (`-r` without a port copies the service port seen
 *   so far; `-M` is read as an IPv4 mask unless the service is already IPv6; `-6` needs `-f` first);
 * - `--set`'s three values, leftovers ("unexpected argument …"), `-b` names against the scheduler,
 *   the commands × options table, port-zero and `-o` rules, the forced real-server port for
 *   `-g`/`-i` on non-fwmark services, the address-family and tunnel-option rules, list conflicts.
 *
 * `-E`/`-e` are full replacements: every option not given takes its default (§8.1).
 */
import { formatV4, ipFromWords, parseIp, type Family } from '../domain/address.js';
import { formatEndpoint, serviceKeyOf, type Protocol, type ServiceId } from '../domain/keys.js';
import type { Timeouts } from '../director/states.js';
import type { DestinationSpec, ServiceSpec } from '../engine/engine.js';
import { SCHEDULER_NAMES } from '../schedulers/registry.js';
import { EXIT_FAILURE, IpvsadmError, optionError } from './errors.js';
import { atoi, inetAton, stringToNumber, strtolWhole } from './libc.js';

/** ipvsadm's `MAX_TIMEOUT` (31 days). */
export const MAX_TIMEOUT = 86400 * 31;
/** `IPVS_SVC_PERSISTENT_TIMEOUT`: `-p` without a value. */
export const DEFAULT_PERSISTENT_TIMEOUT = 360;
export const DEFAULT_SCHEDULER = 'wlc';
export const DEFAULT_MCAST_INTERFACE = 'eth0';
const INT_MAX = 2147483647;
const SCHEDNAME_MAX = 15; // IP_VS_SCHEDNAME_MAXLEN - 1
const PENAME_MAX = 16; // IP_VS_PENAME_MAXLEN
const IFNAME_MAX = 15; // IP_VS_IFNAME_MAXLEN - 1

export const IPVSADM_VERSION = 'v1.31 2019/12/24';

/** SCHED1..3 (`IP_VS_SVC_F_SCHED1..3`), as `-b` names map to them. */
export const SCHED1 = 0x0008;
export const SCHED2 = 0x0010;
export const SCHED3 = 0x0020;

export type TunnelType = 'ipip' | 'gue' | 'gre';
export type TunnelCsum = 'nocsum' | 'csum' | 'remcsum';

/** 1.31 tunnel encapsulation of a `-i` real server. The engine only knows ipip (the default). */
export interface TunnelOptions {
  type: TunnelType;
  /** GUE destination port; 0 when not given. */
  port: number;
  csum: TunnelCsum;
}

/** The `-L` display switches (`FMT_*`). */
export interface ListFormat {
  numeric: boolean;
  stats: boolean;
  rate: boolean;
  thresholds: boolean;
  persistentConn: boolean;
  nosort: boolean;
  exact: boolean;
  tunInfo: boolean;
}

export interface DaemonSpec {
  role: 'master' | 'backup';
  syncid: number;
  mcastInterface: string;
  /** Only when given on the command line (0 / absent = the kernel's default). */
  syncMaxlen?: number;
  mcastGroup?: string;
  mcastPort?: number;
  mcastTtl?: number;
}

export type IpvsadmCommand =
  | { kind: 'add-service'; service: ServiceId; serviceKey: string; spec: ServiceSpec }
  | {
      kind: 'edit-service';
      service: ServiceId;
      serviceKey: string;
      /** Every non-identity field: scheduler, schedFlags, persistence, onePacket, pe. */
      patch: ServiceSpec;
    }
  | { kind: 'delete-service'; service: ServiceId; serviceKey: string }
  | { kind: 'clear' }
  | {
      kind: 'add-server';
      service: ServiceId;
      serviceKey: string;
      destKey: string;
      spec: DestinationSpec;
      tunnel?: TunnelOptions;
    }
  | {
      kind: 'edit-server';
      service: ServiceId;
      serviceKey: string;
      destKey: string;
      /** Every non-identity field: weight, forward, upperThreshold, lowerThreshold. */
      patch: DestinationSpec;
      tunnel?: TunnelOptions;
    }
  | { kind: 'delete-server'; service: ServiceId; serviceKey: string; destKey: string }
  /** `-Z`: all services when `serviceKey` is absent. */
  | { kind: 'zero'; service?: ServiceId; serviceKey?: string }
  /** `--set tcp tcpfin udp`: 0 leaves a value unchanged. */
  | { kind: 'set-timeouts'; timeouts: Timeouts }
  | {
      kind: 'list';
      view: 'services' | 'connections' | 'timeout' | 'daemon';
      /** `-L -t vip:port`: one service, listed without the version line. */
      service?: ServiceId;
      serviceKey?: string;
      format: ListFormat;
    }
  | { kind: 'save'; numeric: boolean }
  | { kind: 'restore' }
  | { kind: 'start-daemon'; daemon: DaemonSpec }
  | { kind: 'stop-daemon'; daemon: DaemonSpec }
  | { kind: 'help' }
  | { kind: 'version' };

export type CommandKind = IpvsadmCommand['kind'];

export interface ParseOptions {
  /** argv[0] as ipvsadm would print it in "Try `…' messages. Default `ipvsadm`. */
  program?: string;
  /** Reading `-R` input: a nested `-R` is refused, as ipvsadm does. */
  restoring?: boolean;
  /** `gethostbyname` for names that are not IPv4/IPv6 literals: a dotted IPv4 address or undefined. */
  resolveHost?: (name: string) => string | undefined;
  /** `getservbyname`; defaults to a small table of well-known services. */
  resolveService?: (name: string, protocol: Protocol) => number | undefined;
}

// ---------------------------------------------------------------------------------------------
// popt

type ArgKind = 'none' | 'required' | 'optional';

interface OptDef {
  long: string;
  short?: string;
  arg: ArgKind;
  tag: string;
}

const OPTIONS: readonly OptDef[] = [
  { long: 'add-service', short: 'A', arg: 'none', tag: 'A' },
  { long: 'edit-service', short: 'E', arg: 'none', tag: 'E' },
  { long: 'delete-service', short: 'D', arg: 'none', tag: 'D' },
  { long: 'clear', short: 'C', arg: 'none', tag: 'C' },
  { long: 'list', short: 'L', arg: 'none', tag: 'L' },
  { long: 'list', short: 'l', arg: 'none', tag: 'L' },
  { long: 'zero', short: 'Z', arg: 'none', tag: 'Z' },
  { long: 'add-server', short: 'a', arg: 'none', tag: 'a' },
  { long: 'edit-server', short: 'e', arg: 'none', tag: 'e' },
  { long: 'delete-server', short: 'd', arg: 'none', tag: 'd' },
  { long: 'set', arg: 'none', tag: 'set' },
  { long: 'help', short: 'h', arg: 'none', tag: 'h' },
  { long: 'version', short: 'v', arg: 'none', tag: 'v' },
  { long: 'restore', short: 'R', arg: 'none', tag: 'R' },
  { long: 'save', short: 'S', arg: 'none', tag: 'S' },
  { long: 'start-daemon', arg: 'required', tag: 'start-daemon' },
  { long: 'stop-daemon', arg: 'required', tag: 'stop-daemon' },
  { long: 'tcp-service', short: 't', arg: 'required', tag: 't' },
  { long: 'udp-service', short: 'u', arg: 'required', tag: 'u' },
  { long: 'sctp-service', arg: 'required', tag: 'sctp' },
  { long: 'fwmark-service', short: 'f', arg: 'required', tag: 'f' },
  { long: 'scheduler', short: 's', arg: 'required', tag: 's' },
  { long: 'persistent', short: 'p', arg: 'optional', tag: 'p' },
  { long: 'netmask', short: 'M', arg: 'required', tag: 'M' },
  { long: 'real-server', short: 'r', arg: 'required', tag: 'r' },
  { long: 'masquerading', short: 'm', arg: 'none', tag: 'm' },
  { long: 'ipip', short: 'i', arg: 'none', tag: 'i' },
  { long: 'gatewaying', short: 'g', arg: 'none', tag: 'g' },
  { long: 'weight', short: 'w', arg: 'required', tag: 'w' },
  { long: 'u-threshold', short: 'x', arg: 'required', tag: 'x' },
  { long: 'l-threshold', short: 'y', arg: 'required', tag: 'y' },
  { long: 'numeric', short: 'n', arg: 'none', tag: 'n' },
  { long: 'connection', short: 'c', arg: 'none', tag: 'c' },
  { long: 'mcast-interface', arg: 'required', tag: 'mcast-interface' },
  { long: 'syncid', arg: 'required', tag: 'syncid' },
  { long: 'timeout', arg: 'none', tag: 'timeout' },
  { long: 'daemon', arg: 'none', tag: 'daemon' },
  { long: 'stats', arg: 'none', tag: 'stats' },
  { long: 'rate', arg: 'none', tag: 'rate' },
  { long: 'thresholds', arg: 'none', tag: 'thresholds' },
  { long: 'persistent-conn', arg: 'none', tag: 'persistent-conn' },
  { long: 'nosort', arg: 'none', tag: 'nosort' },
  { long: 'sort', arg: 'none', tag: 'sort' },
  { long: 'exact', short: 'X', arg: 'none', tag: 'X' },
  { long: 'ipv6', short: '6', arg: 'none', tag: '6' },
  { long: 'ops', short: 'o', arg: 'none', tag: 'o' },
  { long: 'pe', arg: 'required', tag: 'pe' },
  { long: 'sched-flags', short: 'b', arg: 'required', tag: 'b' },
  { long: 'mcast-group', arg: 'required', tag: 'mcast-group' },
  { long: 'mcast-port', arg: 'required', tag: 'mcast-port' },
  { long: 'mcast-ttl', arg: 'required', tag: 'mcast-ttl' },
  { long: 'sync-maxlen', arg: 'required', tag: 'sync-maxlen' },
  { long: 'tun-info', arg: 'none', tag: 'tun-info' },
  { long: 'tun-type', arg: 'required', tag: 'tun-type' },
  { long: 'tun-port', arg: 'required', tag: 'tun-port' },
  { long: 'tun-nocsum', arg: 'none', tag: 'tun-nocsum' },
  { long: 'tun-csum', arg: 'none', tag: 'tun-csum' },
  { long: 'tun-remcsum', arg: 'none', tag: 'tun-remcsum' },
];

const BY_LONG = new Map<string, OptDef>();
const BY_SHORT = new Map<string, OptDef>();
for (const def of OPTIONS) {
  if (!BY_LONG.has(def.long)) BY_LONG.set(def.long, def);
  if (def.short) BY_SHORT.set(def.short, def);
}

type PoptEvent =
  { type: 'opt'; def: OptDef; arg: string | null } | { type: 'end' } | { type: 'error'; message: string };

/** The subset of popt's `poptGetNextOpt` that ipvsadm's table uses. */
class Popt {
  private next = 0;
  private cluster: string | null = null;
  private onlyArgs = false;
  readonly leftovers: string[] = [];
  /** `poptBadOption(…, POPT_BADOPTION_NOALIAS)`: the last argv word consumed. */
  lastWord = '';

  constructor(private readonly argv: readonly string[]) {}

  private take(): string {
    this.lastWord = this.argv[this.next++];
    return this.lastWord;
  }

  private argument(def: OptDef): PoptEvent {
    if (this.next < this.argv.length) {
      const word = this.argv[this.next];
      if (def.arg === 'optional' && word.startsWith('-')) return { type: 'opt', def, arg: null };
      return { type: 'opt', def, arg: this.take() };
    }
    if (def.arg === 'optional') return { type: 'opt', def, arg: null };
    return { type: 'error', message: 'missing argument' };
  }

  read(): PoptEvent {
    for (;;) {
      if (this.cluster !== null) {
        const ch = this.cluster[0];
        const rest = this.cluster.slice(1);
        this.cluster = null;
        const def = BY_SHORT.get(ch);
        if (!def) return { type: 'error', message: 'unknown option' };
        if (def.arg === 'none') {
          if (rest !== '') this.cluster = rest;
          return { type: 'opt', def, arg: null };
        }
        if (rest !== '') return { type: 'opt', def, arg: rest.startsWith('=') ? rest.slice(1) : rest };
        return this.argument(def);
      }
      if (this.next >= this.argv.length) return { type: 'end' };
      const word = this.take();
      if (this.onlyArgs || word === '-' || !word.startsWith('-')) {
        this.leftovers.push(word);
        continue;
      }
      if (word === '--') {
        this.onlyArgs = true;
        continue;
      }
      if (word.startsWith('--')) {
        const eq = word.indexOf('=');
        const name = eq < 0 ? word.slice(2) : word.slice(2, eq);
        const def = BY_LONG.get(name);
        if (!def) return { type: 'error', message: 'unknown option' };
        if (eq >= 0) {
          if (def.arg === 'none') return { type: 'error', message: 'option does not take an argument' };
          return { type: 'opt', def, arg: word.slice(eq + 1) };
        }
        if (def.arg === 'none') return { type: 'opt', def, arg: null };
        return this.argument(def);
      }
      this.cluster = word.slice(1);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// ipvsadm's option bits, names and the commands × options table

const OPTNAMES = [
  'numeric',
  'connection',
  'service-address',
  'scheduler',
  'persistent',
  'netmask',
  'real-server',
  'forwarding-method',
  'weight',
  'u-threshold',
  'l-threshold',
  'mcast-interface',
  'timeout',
  'daemon',
  'stats',
  'rate',
  'thresholds',
  'persistent-conn',
  'nosort',
  'syncid',
  'exact',
  'ops',
  'pe',
  'sched-flags',
  'mcast-group',
  'mcast-port',
  'mcast-ttl',
  'sync-maxlen',
  'tun-info',
  'tun-type',
  'tun-port',
  'tun-nocsum',
  'tun-csum',
  'tun-remcsum',
] as const;
type OptName = (typeof OPTNAMES)[number];
const OPTC = Object.fromEntries(OPTNAMES.map((n, i) => [n, i])) as Record<OptName, number>;

type Cmd =
  | 'add-service'
  | 'edit-service'
  | 'delete-service'
  | 'flush'
  | 'list'
  | 'add-server'
  | 'delete-server'
  | 'edit-server'
  | 'set'
  | 'start-daemon'
  | 'stop-daemon'
  | 'restore'
  | 'save'
  | 'zero';

/**
 * `commands_v_options`, one character per option in OPTNAMES order:
 * '+' compulsory, 'x' illegal, '1' exclusive (only one '1' option), ' ' optional.
 */
export const COMMANDS_V_OPTIONS: Readonly<Record<Cmd, string>> = {
  'add-service': 'xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx',
  'edit-service': 'xx+   xxxxxxxxxxxxxxx   xxxxxxxxxx',
  'delete-service': 'xx+xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  flush: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  list: ' 11xxxxxxxxx11       xxxxxxx xxxxx',
  'add-server': 'xx+xxx+    xxxxxxxxxxxxxxxxxx     ',
  'delete-server': 'xx+xxx+xxxxxxxxxxxxxxxxxxxxxxxxxxx',
  'edit-server': 'xx+xxx+    xxxxxxxxxxxxxxxxxx     ',
  set: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  'start-daemon': 'xxxxxxxxxxx xxxxxxx xxxx    xxxxxx',
  'stop-daemon': 'xxxxxxxxxxxxxxxxxxx xxxxxxxxxxxxxx',
  restore: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  save: ' xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
  zero: 'xx xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',
};

/** `tunnel_types_v_options` over tun-port, tun-nocsum, tun-csum, tun-remcsum. */
const TUNNEL_TYPES_V_OPTIONS: Readonly<Record<TunnelType, string>> = {
  ipip: 'xxxx',
  gue: '+111',
  gre: 'x111',
};
const TUN_OPTS: readonly OptName[] = ['tun-port', 'tun-nocsum', 'tun-csum', 'tun-remcsum'];

const TAG_TO_CMD: Readonly<Record<string, Cmd>> = {
  A: 'add-service',
  E: 'edit-service',
  D: 'delete-service',
  C: 'flush',
  L: 'list',
  Z: 'zero',
  a: 'add-server',
  e: 'edit-server',
  d: 'delete-server',
  set: 'set',
  R: 'restore',
  S: 'save',
  'start-daemon': 'start-daemon',
  'stop-daemon': 'stop-daemon',
};

/** A few `/etc/services` entries, for `-t vip:http` without a services database. */
const WELL_KNOWN_SERVICES: Readonly<Record<string, number>> = {
  'ftp-data': 20,
  ftp: 21,
  ssh: 22,
  telnet: 23,
  smtp: 25,
  domain: 53,
  http: 80,
  www: 80,
  pop3: 110,
  ntp: 123,
  imap: 143,
  imap2: 143,
  snmp: 161,
  ldap: 389,
  https: 443,
  submission: 587,
  ldaps: 636,
  imaps: 993,
  pop3s: 995,
  mysql: 3306,
  sip: 5060,
  'sip-tls': 5061,
  postgresql: 5432,
  'http-alt': 8080,
};

export function wellKnownService(name: string): number | undefined {
  return Object.prototype.hasOwnProperty.call(WELL_KNOWN_SERVICES, name)
    ? WELL_KNOWN_SERVICES[name]
    : undefined;
}

// ---------------------------------------------------------------------------------------------
// the command entry being built (`struct ipvs_command_entry`)

type Af = 0 | 4 | 6;
type Fwd = 'route' | 'tunnel' | 'masq';

interface SvcEntry {
  af: Af;
  protocol: Protocol | null;
  words: number[];
  port: number;
  fwmark: number;
  schedName: string;
  persistent: boolean;
  timeout: number;
  /** A host-order IPv4 mask, or an IPv6 prefix length: one field, as in the kernel API. */
  netmask: number;
  onePacket: boolean;
  peName: string;
  schedFlags: number;
}

interface DestEntry {
  af: Af;
  words: number[];
  port: number;
  fwd: Fwd;
  weight: number;
  uThreshold: number;
  lThreshold: number;
  tunType: TunnelType;
  tunPort: number;
  tunCsum: TunnelCsum;
}

const SERVICE_ADDR = 1;
const SERVICE_PORT = 2;

interface ParsedAddr {
  result: number;
  af: Af;
  words: number[];
  port: number;
}

function v6Words(text: string): number[] | undefined {
  if (!text.includes(':')) return undefined;
  try {
    const ip = parseIp(text, 'address');
    return ip.family === 6 ? [...ip.words] : undefined;
  } catch {
    return undefined;
  }
}

class Parser {
  private readonly svc: SvcEntry = {
    af: 0,
    protocol: null,
    words: [0, 0, 0, 0],
    port: 0,
    fwmark: 0,
    schedName: '',
    persistent: false,
    timeout: 0,
    netmask: 0xffffffff,
    onePacket: false,
    peName: '',
    schedFlags: 0,
  };
  private readonly dest: DestEntry = {
    af: 0,
    words: [0, 0, 0, 0],
    port: 0,
    fwd: 'route',
    weight: 1,
    uThreshold: 0,
    lThreshold: 0,
    tunType: 'ipip',
    tunPort: 0,
    tunCsum: 'nocsum',
  };
  private readonly daemon: DaemonSpec = { role: 'master', syncid: 0, mcastInterface: '' };
  private readonly timeouts: Timeouts = { tcp: 0, tcpFin: 0, udp: 0 };
  private readonly format: ListFormat = {
    numeric: false,
    stats: false,
    rate: false,
    thresholds: false,
    persistentConn: false,
    nosort: false,
    exact: false,
    tunInfo: false,
  };
  private options = 0n;
  private schedFlagsArg = '';

  constructor(private readonly opts: ParseOptions) {}

  private set(name: OptName): void {
    const bit = 1n << BigInt(OPTC[name]);
    if (this.options & bit) throw optionError(`multiple '${name}' options specified`);
    this.options |= bit;
  }

  has(name: OptName): boolean {
    return (this.options & (1n << BigInt(OPTC[name]))) !== 0n;
  }

  private serviceToPort(name: string, protocol: Protocol | null): number | undefined {
    if (protocol === null) return undefined;
    const port = this.opts.resolveService ? this.opts.resolveService(name, protocol) : wellKnownService(name);
    return port !== undefined && Number.isInteger(port) && port >= 0 && port <= 65535 ? port : undefined;
  }

  private hostToAddr(name: string): number | undefined {
    const text = this.opts.resolveHost?.(name);
    if (text === undefined) return undefined;
    try {
      const ip = parseIp(text, 'host');
      return ip.family === 4 ? ip.words[0] : undefined;
    } catch {
      return undefined;
    }
  }

  /** `parse_service(buf, svc)`: what it sets, and SERVICE_ADDR | SERVICE_PORT, or 0. */
  parseService(
    buf: string,
    protocol: Protocol | null,
    base: { af: Af; words: number[]; port: number },
  ): ParsedAddr {
    const none: ParsedAddr = { result: 0, af: base.af, words: base.words, port: base.port };
    if (/^[0-9]*$/.test(buf)) return none; // str_is_digit, true for ""
    let host = buf;
    let portText: string | undefined;
    if (buf.startsWith('[')) {
      const close = buf.indexOf(']', 1);
      if (close < 0 || buf[close + 1] !== ':') return none;
      host = buf.slice(1, close);
      portText = buf.slice(close + 2);
    }
    let af: Af;
    let words: number[];
    const v6 = v6Words(host);
    if (v6) {
      af = 6;
      words = v6;
    } else {
      const colon = host.lastIndexOf(':');
      portText = colon < 0 ? undefined : host.slice(colon + 1);
      if (colon >= 0) host = host.slice(0, colon);
      const v4 = inetAton(host) ?? this.hostToAddr(host);
      if (v4 === undefined) return none;
      af = 4;
      words = [v4, 0, 0, 0];
    }
    let result = SERVICE_ADDR;
    let port = base.port;
    if (portText !== undefined) {
      result |= SERVICE_PORT;
      const n = stringToNumber(portText, 0, 65535) ?? this.serviceToPort(portText, protocol);
      if (n === undefined) return none;
      port = n;
    }
    return { result, af, words, port };
  }

  private parseTimeout(buf: string | null, min: number, max: number): number {
    if (buf === null) return DEFAULT_PERSISTENT_TIMEOUT;
    const n = stringToNumber(buf, min, max);
    if (n === undefined) throw optionError(`invalid timeout value \`${buf}' specified`);
    return n;
  }

  private parseFwmark(buf: string): number {
    const n = strtolWhole(buf);
    if (n === undefined || n <= 0 || n > 0xffffffff)
      throw optionError(`invalid fwmark value \`${buf}' specified`);
    return n;
  }

  private parseSchedFlags(arg: string): number {
    const sched = this.svc.schedName === '' ? DEFAULT_SCHEDULER : this.svc.schedName;
    let flags = 0;
    for (const flag of arg.split(',').filter((f) => f !== '')) {
      const only = (owner: string, bit: number) => {
        flags |= bit;
        if (sched !== owner) throw optionError(`incompatible scheduler flag \`${flag}'`);
      };
      if (flag === 'flag-1') flags |= SCHED1;
      else if (flag === 'flag-2') flags |= SCHED2;
      else if (flag === 'flag-3') flags |= SCHED3;
      else if (flag === 'sh-fallback') only('sh', SCHED1);
      else if (flag === 'sh-port') only('sh', SCHED2);
      else if (flag === 'mh-fallback') only('mh', SCHED1);
      else if (flag === 'mh-port') only('mh', SCHED2);
      else throw optionError(`invalid scheduler flag \`${flag}'`);
    }
    return flags;
  }

  private role(arg: string, message: string): 'master' | 'backup' {
    if (arg === 'master' || arg === 'backup') return arg;
    throw optionError(message);
  }

  /** One option of the `while (poptGetNextOpt…)` loop of `parse_options`. */
  private option(def: OptDef, arg: string | null, popt: Popt): void {
    const a = arg ?? '';
    const svc = this.svc;
    const dest = this.dest;
    switch (def.tag) {
      case 't':
      case 'u':
      case 'sctp': {
        this.set('service-address');
        svc.protocol = def.tag === 't' ? 'tcp' : def.tag === 'u' ? 'udp' : 'sctp';
        const p = this.parseService(a, svc.protocol, svc);
        if (p.result & SERVICE_ADDR) {
          svc.af = p.af;
          svc.words = p.words;
          svc.port = p.port;
          if (p.af === 6) svc.netmask = 128;
        }
        if (!(p.result & SERVICE_ADDR)) throw optionError('illegal virtual server address[:port] specified');
        return;
      }
      case 'f':
        this.set('service-address');
        svc.af = 4;
        svc.protocol = 'tcp';
        svc.fwmark = this.parseFwmark(a);
        return;
      case 's':
        this.set('scheduler');
        svc.schedName = a.slice(0, SCHEDNAME_MAX);
        return;
      case 'p':
        this.set('persistent');
        svc.persistent = true;
        svc.timeout = this.parseTimeout(arg, 1, MAX_TIMEOUT);
        return;
      case 'M':
        this.set('netmask');
        if (svc.af !== 6) {
          const mask = inetAton(a) ?? this.hostToAddr(a);
          if (mask === undefined) throw optionError('illegal virtual server persistent mask specified');
          svc.netmask = mask;
        } else {
          svc.netmask = atoi(a);
          if (svc.netmask < 1 || svc.netmask > 128) throw optionError('illegal ipv6 netmask specified');
        }
        return;
      case 'r': {
        this.set('real-server');
        const p = this.parseService(a, svc.protocol, svc);
        dest.af = p.af;
        dest.words = p.words;
        dest.port = p.port;
        if (!(p.result & SERVICE_ADDR)) throw optionError('illegal real server address[:port] specified');
        if (p.result === SERVICE_ADDR) dest.port = svc.port;
        return;
      }
      case 'i':
        this.set('forwarding-method');
        dest.fwd = 'tunnel';
        return;
      case 'g':
        this.set('forwarding-method');
        dest.fwd = 'route';
        return;
      case 'm':
        this.set('forwarding-method');
        dest.fwd = 'masq';
        return;
      case 'w': {
        this.set('weight');
        const n = stringToNumber(a, 0, 65535);
        if (n === undefined) throw optionError('illegal weight specified');
        dest.weight = n;
        return;
      }
      case 'x': {
        this.set('u-threshold');
        const n = stringToNumber(a, 0, INT_MAX);
        if (n === undefined) throw optionError('illegal u_threshold specified');
        dest.uThreshold = n;
        return;
      }
      case 'y': {
        this.set('l-threshold');
        const n = stringToNumber(a, 0, INT_MAX);
        if (n === undefined) throw optionError('illegal l_threshold specified');
        dest.lThreshold = n;
        return;
      }
      case 'c':
        this.set('connection');
        return;
      case 'n':
        this.set('numeric');
        this.format.numeric = true;
        return;
      case 'mcast-interface':
        this.set('mcast-interface');
        this.daemon.mcastInterface = a.slice(0, IFNAME_MAX);
        return;
      case 'syncid': {
        this.set('syncid');
        const n = stringToNumber(a, 0, 255);
        if (n === undefined) throw optionError('illegal syncid specified');
        this.daemon.syncid = n;
        return;
      }
      case 'timeout':
        this.set('timeout');
        return;
      case 'daemon':
        this.set('daemon');
        return;
      case 'stats':
        this.set('stats');
        this.format.stats = true;
        return;
      case 'rate':
        this.set('rate');
        this.format.rate = true;
        return;
      case 'thresholds':
        this.set('thresholds');
        this.format.thresholds = true;
        return;
      case 'persistent-conn':
        this.set('persistent-conn');
        this.format.persistentConn = true;
        return;
      case 'nosort':
        this.set('nosort');
        this.format.nosort = true;
        return;
      case 'sort':
        return; // the default; a no-op kept for compatibility
      case 'X':
        this.set('exact');
        this.format.exact = true;
        return;
      case '6':
        if (!svc.fwmark) throw optionError('-6 used before -f');
        svc.af = 6;
        svc.netmask = 128;
        return;
      case 'o':
        this.set('ops');
        svc.onePacket = true;
        return;
      case 'pe':
        this.set('pe');
        svc.peName = a.slice(0, PENAME_MAX);
        return;
      case 'b':
        this.set('sched-flags');
        this.schedFlagsArg = a.slice(0, 127);
        return;
      case 'mcast-group':
        this.set('mcast-group');
        this.daemon.mcastGroup = parseMcastGroup(a);
        return;
      case 'mcast-port': {
        this.set('mcast-port');
        const n = stringToNumber(a, 1, 65535);
        if (n === undefined) throw optionError('illegal mcast-port specified');
        this.daemon.mcastPort = n;
        return;
      }
      case 'mcast-ttl': {
        this.set('mcast-ttl');
        const n = stringToNumber(a, 1, 255);
        if (n === undefined) throw optionError('illegal mcast-ttl specified');
        this.daemon.mcastTtl = n;
        return;
      }
      case 'sync-maxlen': {
        this.set('sync-maxlen');
        const n = stringToNumber(a, 1, 65535 - 20 - 8);
        if (n === undefined) throw optionError('illegal sync-maxlen specified');
        this.daemon.syncMaxlen = n;
        return;
      }
      case 'tun-info':
        this.set('tun-info');
        this.format.tunInfo = true;
        return;
      case 'tun-type':
        this.set('tun-type');
        if (a !== 'ipip' && a !== 'gue' && a !== 'gre') throw optionError('illegal tunnel type specified');
        dest.tunType = a;
        return;
      case 'tun-port': {
        this.set('tun-port');
        const n = stringToNumber(a, 1, 65535);
        if (n === undefined) throw optionError('illegal tunnel port specified');
        dest.tunPort = n;
        return;
      }
      case 'tun-nocsum':
        this.set('tun-nocsum');
        dest.tunCsum = 'nocsum';
        return;
      case 'tun-csum':
        this.set('tun-csum');
        dest.tunCsum = 'csum';
        return;
      case 'tun-remcsum':
        this.set('tun-remcsum');
        dest.tunCsum = 'remcsum';
        return;
      default:
        // A second command, -h or -v after the command.
        throw optionError(`invalid option \`${popt.lastWord}'`);
    }
  }

  private genericOptCheck(cmd: Cmd): void {
    const row = COMMANDS_V_OPTIONS[cmd];
    let last = -1;
    for (let j = 0; j < OPTNAMES.length; j++) {
      const given = this.has(OPTNAMES[j]);
      if (!given) {
        if (row[j] === '+') {
          throw optionError(`You need to supply the '${OPTNAMES[j]}' option for the '${cmd}' command`);
        }
        continue;
      }
      if (row[j] === 'x') throw optionError(`Illegal '${OPTNAMES[j]}' option with the '${cmd}' command`);
      if (row[j] === '1') {
        if (last < 0) {
          last = j;
          continue;
        }
        throw optionError(
          `The option '${OPTNAMES[j]}' conflicts with the '${OPTNAMES[last]}' option in the '${cmd}' command`,
        );
      }
    }
  }

  private tunnelOptCheck(): void {
    const type = this.dest.tunType;
    const row = TUNNEL_TYPES_V_OPTIONS[type];
    let last: OptName | undefined;
    TUN_OPTS.forEach((name, j) => {
      if (!this.has(name)) {
        if (row[j] === '+') {
          throw optionError(`You need to supply the '${name}' option for the '${type}' tunnel type`);
        }
        return;
      }
      if (row[j] === 'x') throw optionError(`Illegal '${name}' option with the '${type}' tunnel type`);
      if (row[j] === '1') {
        if (last === undefined) {
          last = name;
          return;
        }
        throw optionError(
          `The option '${name}' conflicts with the '${last}' option in the '${type}' tunnel type`,
        );
      }
    });
  }

  parse(argv: readonly string[]): IpvsadmCommand {
    const program = this.opts.program ?? 'ipvsadm';
    const popt = new Popt(argv);
    const first = popt.read();
    if (first.type !== 'opt') throw tryHelp(program);
    if (first.def.tag === 'h') return { kind: 'help' };
    if (first.def.tag === 'v') return { kind: 'version' };
    const cmd: Cmd | undefined = TAG_TO_CMD[first.def.tag];
    if (cmd === undefined) throw tryHelp(program);
    if (cmd === 'start-daemon') {
      this.daemon.role = this.role(first.arg ?? '', 'illegal start-daemon parameter specified');
    } else if (cmd === 'stop-daemon') {
      this.daemon.role = this.role(first.arg ?? '', 'illegal start_daemon specified');
    }

    for (;;) {
      const ev = popt.read();
      if (ev.type === 'end') break;
      if (ev.type === 'error') throw new IpvsadmError(`${popt.lastWord}: ${ev.message}`, EXIT_FAILURE);
      this.option(ev.def, ev.arg, popt);
    }

    const leftovers = [...popt.leftovers];
    if (cmd === 'set') {
      if (leftovers.length < 3) throw optionError('--set option requires 3 timeout values');
      const [tcp, fin, udp] = leftovers.splice(0, 3);
      this.timeouts.tcp = this.parseTimeout(tcp, 0, MAX_TIMEOUT);
      this.timeouts.tcpFin = this.parseTimeout(fin, 0, MAX_TIMEOUT);
      this.timeouts.udp = this.parseTimeout(udp, 0, MAX_TIMEOUT);
    }
    if (leftovers.length > 0) throw optionError(`unexpected argument ${leftovers[0]}`);
    if (this.schedFlagsArg !== '') this.svc.schedFlags = this.parseSchedFlags(this.schedFlagsArg);

    this.genericOptCheck(cmd);
    const svc = this.svc;
    if (cmd === 'add-service' || cmd === 'edit-service') {
      if (!svc.fwmark && !svc.port && !svc.persistent) {
        throw optionError('Zero port specified for non-persistent service');
      }
      if (svc.onePacket && !svc.fwmark && svc.protocol !== 'udp') {
        throw optionError('One-Packet Scheduling is only for UDP virtual services');
      }
      if (svc.schedName === '') svc.schedName = DEFAULT_SCHEDULER;
    }
    if (cmd === 'start-daemon' && this.daemon.mcastInterface === '') {
      this.daemon.mcastInterface = DEFAULT_MCAST_INTERFACE;
    }
    const dest = this.dest;
    if (cmd === 'add-server' || cmd === 'edit-server') {
      if (!svc.fwmark && (dest.fwd === 'tunnel' || dest.fwd === 'route')) dest.port = svc.port;
      if (dest.af !== svc.af && dest.fwd !== 'tunnel') {
        throw optionError('Different address family is allowed only for tunneling servers');
      }
      const tunnelOptions = TUN_OPTS.some((n) => this.has(n)) || this.has('tun-type');
      if (tunnelOptions && dest.fwd !== 'tunnel')
        throw optionError('Tunnel options conflict with forward method');
      this.tunnelOptCheck();
    }
    if (cmd === 'list') {
      const f = this.format;
      const connTimeoutDaemon = this.has('connection') || this.has('timeout') || this.has('daemon');
      if (
        (connTimeoutDaemon && (f.stats || f.rate || f.thresholds)) ||
        ((this.has('timeout') || this.has('daemon')) && f.persistentConn)
      ) {
        throw optionError('options conflicts in the list command');
      }
    }
    if (cmd === 'restore' && this.opts.restoring) throw tryHelp(program);
    return this.build(cmd);
  }

  private serviceId(): ServiceId {
    const svc = this.svc;
    if (svc.fwmark) return { kind: 'fwmark', family: svc.af === 6 ? 6 : 4, fwmark: svc.fwmark };
    const family: Family = svc.af === 6 ? 6 : 4;
    return {
      kind: 'addr',
      protocol: svc.protocol ?? 'tcp',
      ip: ipFromWords(family, family === 6 ? svc.words : [svc.words[0]]),
      port: svc.port,
    };
  }

  private serviceFields(): ServiceSpec {
    const svc = this.svc;
    const family: Family = svc.af === 6 ? 6 : 4;
    return {
      scheduler: svc.schedName,
      schedFlags: schedFlagNamesFor(svc.schedFlags, svc.schedName),
      persistence: svc.persistent
        ? { timeout: svc.timeout, netmask: family === 6 ? String(svc.netmask) : formatV4(svc.netmask) }
        : null,
      onePacket: svc.onePacket,
      pe: svc.peName === '' ? null : svc.peName,
    };
  }

  private destFields(): DestinationSpec {
    const d = this.dest;
    return { weight: d.weight, forward: d.fwd, upperThreshold: d.uThreshold, lowerThreshold: d.lThreshold };
  }

  private destKey(): { address: string; port: number; key: string } {
    const d = this.dest;
    const ip = ipFromWords(d.af === 6 ? 6 : 4, d.af === 6 ? d.words : [d.words[0]]);
    return { address: ip.text, port: d.port, key: formatEndpoint(ip, d.port) };
  }

  private tunnel(): TunnelOptions | undefined {
    const d = this.dest;
    if (d.fwd !== 'tunnel') return undefined;
    return { type: d.tunType, port: d.tunPort, csum: d.tunCsum };
  }

  private build(cmd: Cmd): IpvsadmCommand {
    const hasService = this.has('service-address');
    const service = hasService ? this.serviceId() : undefined;
    const serviceKey = service ? serviceKeyOf(service) : undefined;
    switch (cmd) {
      case 'add-service': {
        const id = service as ServiceId;
        const identity: ServiceSpec =
          id.kind === 'fwmark'
            ? { fwmark: id.fwmark, family: id.family === 6 ? 'inet6' : 'inet' }
            : { protocol: id.protocol, address: id.ip.text, port: id.port };
        return {
          kind: 'add-service',
          service: id,
          serviceKey: serviceKey as string,
          spec: { ...identity, ...this.serviceFields() },
        };
      }
      case 'edit-service':
        return {
          kind: 'edit-service',
          service: service as ServiceId,
          serviceKey: serviceKey as string,
          patch: this.serviceFields(),
        };
      case 'delete-service':
        return { kind: 'delete-service', service: service as ServiceId, serviceKey: serviceKey as string };
      case 'flush':
        return { kind: 'clear' };
      case 'add-server':
      case 'edit-server': {
        const d = this.destKey();
        const tunnel = this.tunnel();
        const base = { service: service as ServiceId, serviceKey: serviceKey as string, destKey: d.key };
        const withTunnel = tunnel ? { tunnel } : {};
        return cmd === 'add-server'
          ? {
              kind: 'add-server',
              ...base,
              spec: { address: d.address, port: d.port, ...this.destFields() },
              ...withTunnel,
            }
          : { kind: 'edit-server', ...base, patch: this.destFields(), ...withTunnel };
      }
      case 'delete-server':
        return {
          kind: 'delete-server',
          service: service as ServiceId,
          serviceKey: serviceKey as string,
          destKey: this.destKey().key,
        };
      case 'zero': {
        // ipvs_zero_service sends no service (= all) for an all-zero address and port.
        const id = service;
        const everything = !id || (id.kind === 'addr' && id.port === 0 && id.ip.words.every((w) => w === 0));
        return everything ? { kind: 'zero' } : { kind: 'zero', service: id, serviceKey };
      }
      case 'set':
        return { kind: 'set-timeouts', timeouts: { ...this.timeouts } };
      case 'list': {
        const view = this.has('connection')
          ? 'connections'
          : hasService
            ? 'services'
            : this.has('timeout')
              ? 'timeout'
              : this.has('daemon')
                ? 'daemon'
                : 'services';
        const one = view === 'services' && hasService ? { service, serviceKey } : {};
        return { kind: 'list', view, ...one, format: { ...this.format } };
      }
      case 'save':
        return { kind: 'save', numeric: this.format.numeric };
      case 'restore':
        return { kind: 'restore' };
      case 'start-daemon':
        return { kind: 'start-daemon', daemon: { ...this.daemon } };
      case 'stop-daemon':
        return { kind: 'stop-daemon', daemon: { ...this.daemon } };
    }
  }
}

function parseMcastGroup(a: string): string {
  const family = a.includes(':') ? 6 : 4;
  let ok = false;
  let text = a;
  try {
    const ip = parseIp(a, 'mcast-group');
    text = ip.text;
    ok = ip.family === family && (family === 6 ? ip.words[0] >>> 24 === 0xff : ip.words[0] >>> 28 === 0xe);
  } catch {
    ok = false;
  }
  if (!ok) throw optionError(`invalid IPv${family} mcast-group \`${a}'`);
  return text;
}

function tryHelp(program: string): IpvsadmError {
  return new IpvsadmError(`Try \`${program} -h' or '${program} --help' for more information.`, EXIT_FAILURE);
}

/**
 * SCHED bits → the flag names the Engine takes for `scheduler` (its own names for sh/mh,
 * `flag-N` otherwise), in bit order.
 */
export function schedFlagNamesFor(bits: number, scheduler: string): string[] {
  const own: Record<number, string> =
    scheduler === 'sh'
      ? { [SCHED1]: 'sh-fallback', [SCHED2]: 'sh-port' }
      : scheduler === 'mh'
        ? { [SCHED1]: 'mh-fallback', [SCHED2]: 'mh-port' }
        : {};
  const names: string[] = [];
  for (const [bit, raw] of [
    [SCHED1, 'flag-1'],
    [SCHED2, 'flag-2'],
    [SCHED3, 'flag-3'],
  ] as const) {
    if (bits & bit) names.push(own[bit] ?? raw);
  }
  return names;
}

/**
 * Parses one ipvsadm command line (argv without the program name). An empty argv is ipvsadm's
 * bare invocation: list everything, with names. Throws IpvsadmError with ipvsadm's message and
 * exit status.
 */
export function parseCommand(argv: readonly string[], options: ParseOptions = {}): IpvsadmCommand {
  if (argv.length === 0 && !options.restoring) {
    return {
      kind: 'list',
      view: 'services',
      format: {
        numeric: false,
        stats: false,
        rate: false,
        thresholds: false,
        persistentConn: false,
        nosort: false,
        exact: false,
        tunInfo: false,
      },
    };
  }
  return new Parser(options).parse(argv);
}

/** Commands that change the configuration (what `applyCommand` runs). */
export function isConfigCommand(
  cmd: IpvsadmCommand,
): cmd is Exclude<IpvsadmCommand, { kind: 'list' | 'save' | 'restore' | 'help' | 'version' }> {
  return !['list', 'save', 'restore', 'help', 'version'].includes(cmd.kind);
}

/** `ipvsadm -v`. */
export function versionText(): string {
  return `ipvsadm ${IPVSADM_VERSION} (compiled with popt and IPVS v1.2.1)\n`;
}

/** `ipvsadm -h` (the usage text of 1.31, with this service's scheduler list). */
export function usageText(program = 'ipvsadm'): string {
  const p = program;
  const schedulers = SCHEDULER_NAMES.join('|');
  return (
    versionText() +
    'Usage:\n' +
    `  ${p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]\n` +
    `  ${p} -D virtual-service\n` +
    `  ${p} -C\n` +
    `  ${p} -R\n` +
    `  ${p} -S [-n]\n` +
    `  ${p} -a|e virtual-service -r server-address [options]\n` +
    `  ${p} -d virtual-service -r server-address\n` +
    `  ${p} -L|l [virtual-service] [options]\n` +
    `  ${p} -Z [virtual-service]\n` +
    `  ${p} --set tcp tcpfin udp\n` +
    `  ${p} --start-daemon {master|backup} [daemon-options]\n` +
    `  ${p} --stop-daemon {master|backup}\n` +
    `  ${p} -h\n\n` +
    'Commands:\n' +
    'Either long or short options are allowed.\n' +
    '  --add-service     -A        add virtual service with options\n' +
    '  --edit-service    -E        edit virtual service with options\n' +
    '  --delete-service  -D        delete virtual service\n' +
    '  --clear           -C        clear the whole table\n' +
    '  --restore         -R        restore rules from stdin\n' +
    '  --save            -S        save rules to stdout\n' +
    '  --add-server      -a        add real server with options\n' +
    '  --edit-server     -e        edit real server with options\n' +
    '  --delete-server   -d        delete real server\n' +
    '  --list            -L|-l     list the table\n' +
    '  --zero            -Z        zero counters in a service or all services\n' +
    '  --set tcp tcpfin udp        set connection timeout values\n' +
    '  --start-daemon              start connection sync daemon\n' +
    '  --stop-daemon               stop connection sync daemon\n' +
    '  --help            -h        display this help message\n\n' +
    'virtual-service:\n' +
    '  --tcp-service|-t  service-address   service-address is host[:port]\n' +
    '  --udp-service|-u  service-address   service-address is host[:port]\n' +
    '  --sctp-service    service-address   service-address is host[:port]\n' +
    '  --fwmark-service|-f fwmark          fwmark is an integer greater than zero\n' +
    '\n' +
    'Options:\n' +
    '  --ipv6         -6                   fwmark entry uses IPv6\n' +
    `  --scheduler    -s scheduler         one of ${schedulers},\n` +
    `                                      the default scheduler is ${DEFAULT_SCHEDULER}.\n` +
    '  --pe            engine              alternate persistence engine may be sip,\n' +
    '                                      not set by default.\n' +
    '  --persistent   -p [timeout]         persistent service\n' +
    '  --netmask      -M netmask           persistent granularity mask\n' +
    '  --real-server  -r server-address    server-address is host (and port)\n' +
    '  --gatewaying   -g                   gatewaying (direct routing) (default)\n' +
    '  --ipip         -i                   ipip encapsulation (tunneling)\n' +
    '  --masquerading -m                   masquerading (NAT)\n' +
    '  --tun-type      type                one of ipip|gue|gre,\n' +
    '                                      the default tunnel type is ipip.\n' +
    '  --tun-port      port                tunnel destination port\n' +
    '  --tun-nocsum                        tunnel encapsulation without checksum\n' +
    '  --tun-csum                          tunnel encapsulation with checksum\n' +
    '  --tun-remcsum                       tunnel encapsulation with remote checksum\n' +
    '  --weight       -w weight            capacity of real server\n' +
    '  --u-threshold  -x uthreshold        upper threshold of connections\n' +
    '  --l-threshold  -y lthreshold        lower threshold of connections\n' +
    '  --connection   -c                   output of current IPVS connections\n' +
    '  --timeout                           output of timeout (tcp tcpfin udp)\n' +
    '  --daemon                            output of daemon information\n' +
    '  --stats                             output of statistics information\n' +
    '  --rate                              output of rate information\n' +
    '  --exact                             expand numbers (display exact values)\n' +
    '  --thresholds                        output of thresholds information\n' +
    '  --persistent-conn                   output of persistent connection info\n' +
    '  --tun-info                          output of tunnel information\n' +
    '  --nosort                            disable sorting output of service/server entries\n' +
    '  --sort                              does nothing, for backwards compatibility\n' +
    '  --ops          -o                   one-packet scheduling\n' +
    '  --numeric      -n                   numeric output of addresses and ports\n' +
    '  --sched-flags  -b flags             scheduler flags (comma-separated)\n' +
    'Daemon Options:\n' +
    '  --syncid sid                        syncid for connection sync (default=255)\n' +
    '  --sync-maxlen length                Max sync message length (default=1472)\n' +
    '  --mcast-interface interface         multicast interface for connection sync\n' +
    '  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)\n' +
    '  --mcast-port port                   UDP port (default=8848)\n' +
    '  --mcast-ttl ttl                     Multicast TTL (default=1)\n'
  );
}
