/**
 * A Schedule request as the schedule script's operation arguments (schedule-1.lua, P[1..29]):
 * what only the replica can compute — the checks the kernel makes for a new decision (in its
 * order; the script raises them after the existing-entry rules), the persistence template's shape,
 * the request hashes of dh/sh/mh — with the same functions the memory engine uses.
 */
import { fold } from '../../domain/address.js';
import { IpvsError, invalid } from '../../domain/errors.js';
import type { Endpoint, Protocol } from '../../domain/keys.js';
import type { Service } from '../../director/model.js';
import { templateShape } from '../../director/persistence.js';
import { parseState } from '../../director/states.js';
import { dhHashKey } from '../../schedulers/dh.js';
import { hashedPort } from '../../schedulers/hash.js';
import { MH_TAB_SIZE, mhHash } from '../../schedulers/mh.js';
import { shHashKey } from '../../schedulers/sh.js';
import { SCHED2 } from '../../schedulers/types.js';
import { IDEMPOTENCY_TTL_MS } from '../idempotency.js';
import type { parseScheduleRequest } from '../specs.js';
import type { IndexEntry } from './config-cache.js';
import { tupleKey } from './keys.js';

/** Index of the tuple key in the arguments (P[7]). */
export const TUPLE_KEY = 6;
/** Index of "existing entry only" (P[29]). */
export const EXISTING_ONLY = 28;

/**
 * The arguments as the ONE text the script splits (`splitArgs`): joined by the unit separator,
 * which no argument holds (addresses, numbers, states; Call-ID and requestId are printable).
 */
export function packArgs(args: readonly (string | number)[]): string {
  return args.join('\x1f');
}

export function scheduleArgs(
  entry: IndexEntry,
  q: ReturnType<typeof parseScheduleRequest>,
  protocol: Protocol,
  virtual: Endpoint,
  randoms: { r1: number; r2: number } | undefined,
): { args: (string | number)[]; preErr: IpvsError | undefined } {
  const cfg = entry.cfg;
  const key = cfg.key;
  const client = q.client;
  const initialState =
    q.initialState === undefined ? undefined : parseState(protocol, q.initialState, 'initialState');
  const svcPort = cfg.id.kind === 'addr' ? cfg.id.port : 0;
  const svcFwmark = cfg.id.kind === 'fwmark' ? cfg.id.fwmark : 0;
  const onePacket = cfg.onePacket && protocol === 'udp';
  // Checks the kernel makes only for a new decision, in its order; the script raises the
  // first after the existing-entry rules (§6.8), which come first.
  let preErr: IpvsError | undefined;
  if (client.port === 20) {
    preErr = new IpvsError(
      'NO_DESTINATION',
      'client port 20 (active FTP data from a real server) is never scheduled',
      'service',
    );
  } else if (cfg.persistence) {
    if (cfg.pe === 'sip' && protocol !== 'udp') {
      preErr = new IpvsError(
        'FAILED_PRECONDITION',
        `protocol: the SIP persistence engine of ${key} only takes UDP; packet dropped`,
        'protocol',
      );
    } else if (cfg.pe === 'sip' && q.callId === undefined) {
      preErr = invalid('callId', undefined, `is required by the SIP persistence engine of ${key}`);
    }
  } else if (svcFwmark === 0 && virtual.port !== svcPort) {
    preErr = new IpvsError(
      'NO_DESTINATION',
      `service ${key}: port ${virtual.port} needs a persistent service (port zero / FTP data)`,
      'service',
    );
  }
  const callId = cfg.pe === 'sip' && q.callId !== undefined ? q.callId : null;
  const shape = cfg.persistence
    ? templateShape(
        { fwmark: svcFwmark, family: cfg.family, port: svcPort } as unknown as Service,
        cfg.persistence,
        protocol,
        client.ip,
        virtual.ip,
        virtual.port,
        callId,
      )
    : undefined;
  const hashPort = cfg.schedFlags & SCHED2 ? hashedPort(protocol, client.port) : 0;
  let h1 = 0;
  let h2 = 0;
  if (cfg.scheduler === 'dh') h1 = dhHashKey(virtual.ip);
  else if (cfg.scheduler === 'sh') h1 = shHashKey(client.ip, hashPort, 0);
  else if (cfg.scheduler === 'mh') {
    h1 = mhHash(client.ip, hashPort, 0) % MH_TAB_SIZE;
    h2 = (hashPort + fold(client.ip)) >>> 0;
  }
  const args: (string | number)[] = [
    entry.ver,
    protocol,
    client.ip.text,
    client.port,
    virtual.ip.text,
    virtual.port,
    tupleKey(key, protocol, client.text, virtual.text),
    initialState ?? '',
    onePacket ? 1 : 0,
    preErr ? preErr.code : '',
    preErr ? preErr.message : '',
    shape ? 1 : 0,
    shape?.key ?? '',
    shape?.protocol ?? '',
    shape?.caddr.text ?? '',
    shape?.vaddr.text ?? '',
    shape?.vport ?? 0,
    shape?.keepsDestPort ? 1 : 0,
    callId !== null ? 1 : 0,
    callId ?? '',
    svcFwmark || q.fwmark,
    h1,
    h2,
    randoms ? randoms.r1 : '',
    randoms ? randoms.r2 : '',
    q.requestId ?? '',
    IDEMPOTENCY_TTL_MS,
    q.explain ? 1 : 0,
    0,
  ];
  return { args, preErr };
}
