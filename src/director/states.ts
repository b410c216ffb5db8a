/**
 * Protocol states, their timeouts and which count as active (§6.2–6.3, §9.2), and the kernel's TCP
 * state table (`ip_vs_proto_tcp.c:tcp_states` and the secure_tcp `tcp_states_dos`).
 */
import { invalid } from '../domain/errors.js';
import type { Protocol } from '../domain/keys.js';

export const TCP_STATES = [
  'NONE',
  'ESTABLISHED',
  'SYN_SENT',
  'SYN_RECV',
  'FIN_WAIT',
  'TIME_WAIT',
  'CLOSE',
  'CLOSE_WAIT',
  'LAST_ACK',
  'LISTEN',
  'SYNACK',
] as const;
export type TcpState = (typeof TCP_STATES)[number];

export const SCTP_STATES = [
  'NONE',
  'INIT1',
  'INIT',
  'COOKIE_SENT',
  'COOKIE_REPLIED',
  'COOKIE_WAIT',
  'COOKIE',
  'COOKIE_ECHOED',
  'ESTABLISHED',
  'SHUTDOWN_SENT',
  'SHUTDOWN_RECEIVED',
  'SHUTDOWN_ACK_SENT',
  'REJECTED',
  'CLOSED',
] as const;

/** UDP has one state; templates have NONE and ASSURED. */
export const UDP_STATE = 'UDP';

/** Default timeouts in seconds (`tcp_timeouts`, `udp_timeouts`, `sctp_timeouts`). */
export const DEFAULT_TCP_TIMEOUTS: Record<TcpState, number> = {
  NONE: 2,
  ESTABLISHED: 900,
  SYN_SENT: 120,
  SYN_RECV: 60,
  FIN_WAIT: 120,
  TIME_WAIT: 120,
  CLOSE: 10,
  CLOSE_WAIT: 60,
  LAST_ACK: 30,
  LISTEN: 120,
  SYNACK: 120,
};
export const DEFAULT_UDP_TIMEOUT = 300;
export const SCTP_TIMEOUTS: Record<string, number> = {
  NONE: 2,
  INIT1: 4,
  INIT: 61,
  COOKIE_SENT: 61,
  COOKIE_REPLIED: 61,
  COOKIE_WAIT: 61,
  COOKIE: 61,
  COOKIE_ECHOED: 61,
  ESTABLISHED: 900,
  SHUTDOWN_SENT: 61,
  SHUTDOWN_RECEIVED: 61,
  SHUTDOWN_ACK_SENT: 61,
  REJECTED: 4,
  CLOSED: 61,
};

/** The three timeouts `ipvsadm --set` changes, in seconds. */
export interface Timeouts {
  tcp: number;
  tcpFin: number;
  udp: number;
}
export const DEFAULT_TIMEOUTS: Timeouts = { tcp: 900, tcpFin: 120, udp: 300 };

/** Seconds an entry in `state` lives without traffic. */
export function stateTimeout(protocol: Protocol, state: string, t: Timeouts): number {
  if (protocol === 'udp') return t.udp;
  if (protocol === 'sctp') return SCTP_TIMEOUTS[state];
  if (state === 'ESTABLISHED') return t.tcp;
  if (state === 'FIN_WAIT') return t.tcpFin;
  return DEFAULT_TCP_TIMEOUTS[state as TcpState];
}

const TCP_ACTIVE = new Set(['ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'SYNACK']);

/** Whether a connection in `state` counts in activeconns (§6.2); UDP never does. */
export function isActiveState(protocol: Protocol, state: string): boolean {
  if (protocol === 'udp') return false;
  if (protocol === 'sctp') return state === 'ESTABLISHED';
  return TCP_ACTIVE.has(state);
}

/**
 * An INIT chunk from the client (`sctp_states`, INPUT row "i"): NONE → INIT1, a repeated INIT moves
 * INIT1, REJECTED and CLOSED to INIT; every other state stays.
 */
export function sctpInitFromClient(state: string): string {
  if (state === 'NONE') return 'INIT1';
  if (state === 'INIT1' || state === 'REJECTED' || state === 'CLOSED') return 'INIT';
  return state;
}

/** The state of a new connection after its first packet (SYN / first datagram / INIT). */
export function firstPacketState(protocol: Protocol): string {
  return protocol === 'udp' ? UDP_STATE : protocol === 'sctp' ? 'INIT1' : 'SYN_RECV';
}

export function parseState(protocol: Protocol, value: unknown, field: string): string {
  const states: readonly string[] =
    protocol === 'udp' ? [UDP_STATE] : protocol === 'sctp' ? SCTP_STATES : TCP_STATES;
  if (typeof value === 'string' && states.includes(value)) return value;
  throw invalid(field, value, `must be a ${protocol.toUpperCase()} state: ${states.join(', ')}`);
}

export type Direction = 'in' | 'out' | 'in-only';
export type TcpFlag = 'syn' | 'fin' | 'ack' | 'rst';
export const DIRECTIONS: readonly Direction[] = ['in', 'out', 'in-only'];
export const TCP_FLAGS: readonly TcpFlag[] = ['syn', 'fin', 'ack', 'rst'];

// Columns: NO ES SS SR FW TW CL CW LA LI SA (the TCP_STATES order).
const ROWS: Record<Direction, Record<TcpFlag, string>> = {
  in: {
    syn: 'SR ES ES SR SR SR SR SR SR SR SR',
    fin: 'CL CW SS TW TW TW CL CW LA LI TW',
    ack: 'ES ES SS ES FW TW CL CW CL LI ES',
    rst: 'CL CL CL SR CL CL CL CL LA LI SR',
  },
  out: {
    syn: 'SS ES SS SR SS SS SS SS SS LI SR',
    fin: 'TW FW SS TW FW TW CL TW LA LI TW',
    ack: 'ES ES SS ES FW TW CL CW LA ES ES',
    rst: 'CL CL SS CL CL TW CL CL CL CL CL',
  },
  'in-only': {
    syn: 'SR ES ES SR SR SR SR SR SR SR SR',
    fin: 'CL FW SS TW FW TW CL CW LA LI TW',
    ack: 'ES ES SS ES FW TW CL CW CL LI ES',
    rst: 'CL CL CL SR CL CL CL CL LA LI CL',
  },
};

// The secure_tcp table differs from the normal one only in these cells.
const DOS_ROWS: Record<Direction, Record<TcpFlag, string>> = {
  in: {
    syn: 'SR ES ES SR SR SR SR SR SR SR SA',
    fin: 'CL CW SS TW TW TW CL CW LA LI SA',
    ack: 'ES ES SS SR FW TW CL CW CL LI SA',
    rst: 'CL CL CL SR CL CL CL CL LA LI CL',
  },
  out: {
    syn: 'SS ES SS SA SS SS SS SS SS LI SA',
    fin: ROWS.out.fin,
    ack: ROWS.out.ack,
    rst: ROWS.out.rst,
  },
  'in-only': {
    syn: 'SA ES ES SR SA SA SA SA SA SA SA',
    fin: ROWS['in-only'].fin,
    ack: ROWS['in-only'].ack,
    rst: ROWS['in-only'].rst,
  },
};

const ABBREV: Record<string, TcpState> = {
  NO: 'NONE',
  ES: 'ESTABLISHED',
  SS: 'SYN_SENT',
  SR: 'SYN_RECV',
  FW: 'FIN_WAIT',
  TW: 'TIME_WAIT',
  CL: 'CLOSE',
  CW: 'CLOSE_WAIT',
  LA: 'LAST_ACK',
  LI: 'LISTEN',
  SA: 'SYNACK',
};

type Table = Record<Direction, Record<TcpFlag, TcpState[]>>;

function expand(rows: Record<Direction, Record<TcpFlag, string>>): Table {
  const table = {} as Table;
  for (const dir of DIRECTIONS) {
    table[dir] = {} as Record<TcpFlag, TcpState[]>;
    for (const flag of TCP_FLAGS) table[dir][flag] = rows[dir][flag].split(' ').map((a) => ABBREV[a]);
  }
  return table;
}

const NORMAL = expand(ROWS);
const SECURE = expand(DOS_ROWS);

/** The kernel's next TCP state for a segment with `flag` seen in `direction`. */
export function nextTcpState(state: string, direction: Direction, flag: TcpFlag, secure: boolean): TcpState {
  const column = TCP_STATES.indexOf(state as TcpState);
  return (secure ? SECURE : NORMAL)[direction][flag][column];
}
