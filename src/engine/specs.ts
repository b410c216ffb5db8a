/**
 * Requests in the API's JSON shape → typed, validated configuration. Both engines call these, so
 * both accept and reject exactly the same input with the same messages.
 */
import { unicastProblem, type Family } from '../domain/address.js';
import { invalid, IpvsError } from '../domain/errors.js';
import {
  endpoint as endpointOf,
  parseEndpoint,
  parseFwmark,
  parsePort,
  parseProtocol,
  parseServiceKey,
  serviceFamily,
  serviceKeyOf,
  type Endpoint,
  type Protocol,
  type ServiceId,
} from '../domain/keys.js';
import { parseIp } from '../domain/address.js';
import { hostMask, parseNetmask } from '../domain/netmask.js';
import { bool, objectWith, optionalCount, optionalInt, printableText } from '../domain/validate.js';
import { FORWARDS, type Forward, type Persistence } from '../director/model.js';
import {
  DIRECTIONS,
  parseState,
  TCP_FLAGS,
  type Direction,
  type TcpFlag,
  type Timeouts,
} from '../director/states.js';
import { parseSchedFlags, parseSchedulerName, type SchedulerName } from '../schedulers/registry.js';
import type { ConnectionUpdate, DestinationSpec, ScheduleRequest, ServiceSpec } from './engine.js';

/** ipvsadm's limits: timeouts up to 31 days, weights 0..65535, thresholds 0..INT_MAX. */
export const MAX_TIMEOUT = 2678400;
export const DEFAULT_PERSISTENCE_TIMEOUT = 360;
export const MAX_WEIGHT = 65535;
export const MAX_THRESHOLD = 2147483647;
/** `IP_VS_PEDATA_MAXLEN`: the longest SIP Call-ID. */
export const MAX_CALL_ID_BYTES = 255;

export interface ServiceConfig {
  id: ServiceId;
  key: string;
  family: Family;
  scheduler: SchedulerName;
  schedFlags: number;
  persistence: Persistence | null;
  onePacket: boolean;
  pe: 'sip' | null;
}

const SERVICE_FIELDS = [
  'protocol',
  'address',
  'port',
  'fwmark',
  'family',
  'scheduler',
  'schedFlags',
  'persistence',
  'onePacket',
  'pe',
];

function parseServiceId(spec: Record<string, unknown>, field: string): ServiceId {
  if (spec.fwmark !== undefined && spec.fwmark !== null && spec.fwmark !== 0) {
    for (const f of ['protocol', 'address', 'port']) {
      if (spec[f] !== undefined) throw invalid(`${field}.${f}`, spec[f], 'must not be given with fwmark');
    }
    const family = spec.family ?? 'inet';
    if (family !== 'inet' && family !== 'inet6') {
      throw invalid(`${field}.family`, family, 'must be "inet" or "inet6"');
    }
    return {
      kind: 'fwmark',
      family: family === 'inet6' ? 6 : 4,
      fwmark: parseFwmark(spec.fwmark, `${field}.fwmark`),
    };
  }
  if (spec.address === undefined)
    throw invalid(`${field}.address`, undefined, 'is required (or give fwmark)');
  const ip = parseIp(spec.address, `${field}.address`);
  if (spec.family !== undefined && spec.family !== (ip.family === 6 ? 'inet6' : 'inet')) {
    throw invalid(`${field}.family`, spec.family, `does not match address ${ip.text}`);
  }
  return {
    kind: 'addr',
    protocol: parseProtocol(spec.protocol ?? 'tcp', `${field}.protocol`),
    ip,
    port: parsePort(spec.port, `${field}.port`),
  };
}

/** A full service definition (add), or `base` with `patch` applied (edit). */
export function parseServiceSpec(raw: ServiceSpec, field = 'service', base?: ServiceConfig): ServiceConfig {
  const spec = objectWith(raw, field, SERVICE_FIELDS);
  let id: ServiceId;
  if (base) {
    id = base.id;
    checkSameIdentity(spec, base.id, field);
  } else {
    id = parseServiceId(spec, field);
  }
  const family = serviceFamily(id);
  const scheduler =
    spec.scheduler === undefined
      ? (base?.scheduler ?? 'wlc')
      : parseSchedulerName(spec.scheduler, `${field}.scheduler`);
  // A new scheduler gives the SCHED bits a new meaning: without new flags they are cleared.
  const schedFlags =
    spec.schedFlags === undefined
      ? base && base.scheduler === scheduler
        ? base.schedFlags
        : 0
      : parseSchedFlags(spec.schedFlags, scheduler, `${field}.schedFlags`);
  const persistence =
    spec.persistence === undefined
      ? (base?.persistence ?? null)
      : parsePersistence(spec.persistence, family, `${field}.persistence`);
  const onePacket = bool(spec.onePacket, `${field}.onePacket`, base?.onePacket ?? false);
  let pe: 'sip' | null = base?.pe ?? null;
  if (spec.pe !== undefined) {
    if (spec.pe !== null && spec.pe !== 'sip' && spec.pe !== '') {
      throw invalid(`${field}.pe`, spec.pe, 'must be "sip" or null');
    }
    pe = spec.pe === 'sip' ? 'sip' : null;
  }
  if (id.kind === 'addr' && id.port === 0 && !persistence) {
    throw invalid(`${field}.port`, 0, 'zero port is only allowed for a persistent service');
  }
  if (onePacket && id.kind === 'addr' && id.protocol !== 'udp') {
    throw invalid(`${field}.onePacket`, true, 'is only allowed for UDP or fwmark services');
  }
  return { id, key: serviceKeyOf(id), family, scheduler, schedFlags, persistence, onePacket, pe };
}

/** An edit may repeat the service's identity fields but not change them; names the first that differs. */
function checkSameIdentity(spec: Record<string, unknown>, id: ServiceId, field: string): void {
  const current: Record<string, unknown> =
    id.kind === 'fwmark'
      ? { fwmark: id.fwmark, family: id.family === 6 ? 'inet6' : 'inet' }
      : {
          protocol: id.protocol,
          address: id.ip.text,
          port: id.port,
          family: id.ip.family === 6 ? 'inet6' : 'inet',
        };
  const normalise: Record<string, (v: unknown, f: string) => unknown> = {
    protocol: (v, f) => parseProtocol(v, f),
    address: (v, f) => parseIp(v, f).text,
    port: (v, f) => parsePort(v, f),
    fwmark: (v, f) => parseFwmark(v, f),
    family: (v) => v,
  };
  for (const name of ['protocol', 'address', 'port', 'fwmark', 'family']) {
    const value = spec[name];
    if (value === undefined) continue;
    const f = `${field}.${name}`;
    if (!(name in current) || normalise[name](value, f) !== current[name]) {
      throw invalid(f, value, 'cannot change the identity of a service');
    }
  }
}

function parsePersistence(value: unknown, family: Family, field: string): Persistence | null {
  if (value === null || value === false) return null;
  const p = objectWith(value, field, ['timeout', 'netmask']);
  return {
    timeoutSec: optionalInt(p.timeout, `${field}.timeout`, 1, MAX_TIMEOUT, DEFAULT_PERSISTENCE_TIMEOUT),
    netmask:
      p.netmask === undefined || p.netmask === null
        ? hostMask(family)
        : parseNetmask(p.netmask, family, `${field}.netmask`),
  };
}

export interface DestConfig {
  endpoint: Endpoint;
  key: string;
  weight: number;
  forward: Forward;
  upperThreshold: number;
  lowerThreshold: number;
}

const DEST_FIELDS = ['address', 'port', 'weight', 'forward', 'upperThreshold', 'lowerThreshold'];

/** A full destination (add; the port defaults to the service's), or `base` with `patch` applied. */
export function parseDestSpec(
  raw: DestinationSpec,
  service: ServiceConfig,
  field = 'destination',
  base?: DestConfig,
): DestConfig {
  const spec = objectWith(raw, field, DEST_FIELDS);
  let endpoint: Endpoint;
  if (base) {
    endpoint = base.endpoint;
    const sameAddress =
      spec.address === undefined || parseIp(spec.address, `${field}.address`).text === endpoint.ip.text;
    const samePort = spec.port === undefined || parsePort(spec.port, `${field}.port`) === endpoint.port;
    if (!sameAddress || !samePort) {
      throw invalid(
        `${field}.${sameAddress ? 'port' : 'address'}`,
        spec[sameAddress ? 'port' : 'address'],
        'cannot change the identity of a destination',
      );
    }
  } else {
    if (spec.address === undefined) throw invalid(`${field}.address`, undefined, 'is required');
    const ip = parseIp(spec.address, `${field}.address`);
    const problem = unicastProblem(ip);
    if (problem) throw invalid(`${field}.address`, spec.address, problem);
    const defaultPort = service.id.kind === 'addr' ? service.id.port : 0;
    endpoint = endpointOf(ip, spec.port === undefined ? defaultPort : parsePort(spec.port, `${field}.port`));
  }
  const forward =
    spec.forward === undefined ? (base?.forward ?? 'masq') : parseForward(spec.forward, `${field}.forward`);
  if (endpoint.ip.family !== service.family && forward !== 'tunnel') {
    throw invalid(
      `${field}.address`,
      endpoint.ip.text,
      `must be of the service's address family unless forward is tunnel`,
    );
  }
  const upperThreshold = optionalInt(
    spec.upperThreshold,
    `${field}.upperThreshold`,
    0,
    MAX_THRESHOLD,
    base?.upperThreshold ?? 0,
  );
  const lowerThreshold = optionalInt(
    spec.lowerThreshold,
    `${field}.lowerThreshold`,
    0,
    MAX_THRESHOLD,
    base?.lowerThreshold ?? 0,
  );
  if (lowerThreshold > upperThreshold) {
    throw invalid(
      `${field}.lowerThreshold`,
      lowerThreshold,
      `must not exceed upperThreshold (${upperThreshold})`,
    );
  }
  return {
    endpoint,
    key: endpoint.text,
    weight: optionalInt(spec.weight, `${field}.weight`, 0, MAX_WEIGHT, base?.weight ?? 1),
    forward,
    upperThreshold,
    lowerThreshold,
  };
}

function parseForward(value: unknown, field: string): Forward {
  if (typeof value === 'string' && (FORWARDS as readonly string[]).includes(value)) return value as Forward;
  throw invalid(field, value, `must be one of ${FORWARDS.join(', ')}`);
}

export interface ScheduleQuery {
  protocol: Protocol | undefined;
  client: Endpoint;
  virtual: Endpoint | undefined;
  service: ServiceId | undefined;
  fwmark: number;
  callId: string | undefined;
  requestId: string | undefined;
  initialState: string | undefined;
  explain: boolean;
}

const SCHEDULE_FIELDS = [
  'protocol',
  'client',
  'virtual',
  'service',
  'fwmark',
  'callId',
  'requestId',
  'initialState',
  'explain',
];

export function parseScheduleRequest(raw: ScheduleRequest): ScheduleQuery {
  const req = objectWith(raw, 'request', SCHEDULE_FIELDS);
  const client = parseEndpoint(req.client, 'client');
  const virtual =
    req.virtual === undefined || req.virtual === null ? undefined : parseEndpoint(req.virtual, 'virtual');
  const service =
    req.service === undefined || req.service === null ? undefined : parseServiceKey(req.service, 'service');
  if (!virtual && !service) throw invalid('virtual', undefined, 'is required (or give service)');
  const protocol = req.protocol === undefined ? undefined : parseProtocol(req.protocol, 'protocol');
  if (virtual && virtual.ip.family !== client.ip.family) {
    throw invalid('client', req.client, 'must be of the same address family as virtual');
  }
  if (service && serviceFamily(service) !== client.ip.family) {
    throw invalid('client', req.client, `must be of the address family of service ${serviceKeyOf(service)}`);
  }
  return {
    protocol,
    client,
    virtual,
    service,
    fwmark:
      req.fwmark === undefined || req.fwmark === null || req.fwmark === 0
        ? 0
        : parseFwmark(req.fwmark, 'fwmark'),
    callId:
      req.callId === undefined || req.callId === null
        ? undefined
        : printableText(req.callId, 'callId', MAX_CALL_ID_BYTES),
    requestId:
      req.requestId === undefined || req.requestId === null
        ? undefined
        : printableText(req.requestId, 'requestId', 128),
    initialState:
      req.initialState === undefined || req.initialState === null ? undefined : String(req.initialState),
    explain: bool(req.explain, 'explain', false),
  };
}

export interface UpdateQuery {
  state: string | undefined;
  event: { direction: Direction; flag: TcpFlag | undefined } | undefined;
  inPackets: number;
  outPackets: number;
  inBytes: number;
  outBytes: number;
}

export function parseConnectionUpdate(
  raw: ConnectionUpdate,
  protocol: Protocol | 'ip',
  field = 'update',
): UpdateQuery {
  const u = objectWith(raw, field, ['state', 'event', 'inPackets', 'outPackets', 'inBytes', 'outBytes']);
  if (u.state !== undefined && u.event !== undefined)
    throw invalid(`${field}.event`, u.event, 'give state or event, not both');
  let event: UpdateQuery['event'];
  if (u.event !== undefined) {
    const e = objectWith(u.event, `${field}.event`, ['direction', 'flag']);
    if (!(DIRECTIONS as readonly unknown[]).includes(e.direction)) {
      throw invalid(`${field}.event.direction`, e.direction, `must be one of ${DIRECTIONS.join(', ')}`);
    }
    if (protocol === 'tcp' || e.flag !== undefined) {
      if (!(TCP_FLAGS as readonly unknown[]).includes(e.flag)) {
        throw invalid(`${field}.event.flag`, e.flag, `must be one of ${TCP_FLAGS.join(', ')}`);
      }
      if (protocol !== 'tcp')
        throw invalid(`${field}.event.flag`, e.flag, 'TCP flags only apply to TCP connections');
    }
    event = { direction: e.direction as Direction, flag: e.flag as TcpFlag };
  }
  if (protocol === 'ip' && (u.state !== undefined || event)) {
    const which = u.state !== undefined ? 'state' : 'event';
    throw invalid(`${field}.${which}`, u[which], 'a persistence template has no protocol state to change');
  }
  return {
    state: u.state === undefined ? undefined : parseState(protocol as Protocol, u.state, `${field}.state`),
    event,
    inPackets: optionalCount(u.inPackets, `${field}.inPackets`),
    outPackets: optionalCount(u.outPackets, `${field}.outPackets`),
    inBytes: optionalCount(u.inBytes, `${field}.inBytes`),
    outBytes: optionalCount(u.outBytes, `${field}.outBytes`),
  };
}

export function parseTimeouts(raw: Partial<Timeouts>, current: Timeouts): Timeouts {
  const t = objectWith(raw, 'timeouts', ['tcp', 'tcpFin', 'udp']);
  // `ipvsadm --set`: 0 keeps the current value.
  const one = (name: keyof Timeouts) => {
    const v = optionalInt(t[name], `timeouts.${name}`, 0, MAX_TIMEOUT, 0);
    return v === 0 ? current[name] : v;
  };
  return { tcp: one('tcp'), tcpFin: one('tcpFin'), udp: one('udp') };
}

export function requireService(value: string, field = 'service'): ServiceId {
  return parseServiceKey(value, field);
}

export function unknownService(key: string): IpvsError {
  return new IpvsError('NOT_FOUND', `service: no such service ${key}`, 'service');
}

/** One item of a batch report: a connection id plus `close: true` or an update. */
export function parseBatchItem(
  raw: unknown,
  field: string,
): { connection: string; close: boolean } & ConnectionUpdate {
  const item = objectWith(raw, field, [
    'connection',
    'close',
    'state',
    'event',
    'inPackets',
    'outPackets',
    'inBytes',
    'outBytes',
  ]);
  if (typeof item.connection !== 'string' || item.connection === '') {
    throw invalid(`${field}.connection`, item.connection, 'must be a connection id');
  }
  const close = bool(item.close, `${field}.close`, false);
  if (close && Object.keys(item).some((k) => k !== 'connection' && k !== 'close')) {
    throw invalid(`${field}.close`, true, 'a close takes no update fields');
  }
  const { connection, close: _close, ...update } = item;
  return { connection, close, ...(update as ConnectionUpdate) };
}
