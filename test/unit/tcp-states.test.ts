/**
 * The kernel's TCP state table (ipvs-semantics.md §6.3, `ip_vs_proto_tcp.c:tcp_states` and the
 * secure_tcp `tcp_states_dos`), state timeouts and active-state accounting (§6.2, §9.2).
 *
 * The expected tables below are transcribed from the document by hand, cell by cell; the module's
 * own tables are never used as the expectation.
 */
import { describe, expect, it } from 'vitest';
import { IpvsError } from '../../src/domain/errors.js';
import {
  DEFAULT_TCP_TIMEOUTS,
  DEFAULT_TIMEOUTS,
  DEFAULT_UDP_TIMEOUT,
  firstPacketState,
  isActiveState,
  nextTcpState,
  parseState,
  stateTimeout,
  type Direction,
  type TcpFlag,
} from '../../src/director/states.js';

const FULL: Record<string, string> = {
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

/** The column order of the document's tables. */
const COLUMNS = ['NO', 'ES', 'SS', 'SR', 'FW', 'TW', 'CL', 'CW', 'LA', 'LI', 'SA'];

type Rows = Record<Direction, Record<TcpFlag, string>>;

// §6.3, "Normal table (`tcp_states`)", row by row as printed.
//                 NO ES SS SR FW TW CL CW LA LI SA
const NORMAL: Rows = {
  in: {
    syn: '      SR ES ES SR SR SR SR SR SR SR SR',
    fin: '      CL CW SS TW TW TW CL CW LA LI TW',
    ack: '      ES ES SS ES FW TW CL CW CL LI ES',
    rst: '      CL CL CL SR CL CL CL CL LA LI SR',
  },
  out: {
    syn: '      SS ES SS SR SS SS SS SS SS LI SR',
    fin: '      TW FW SS TW FW TW CL TW LA LI TW',
    ack: '      ES ES SS ES FW TW CL CW LA ES ES',
    rst: '      CL CL SS CL CL TW CL CL CL CL CL',
  },
  'in-only': {
    syn: '      SR ES ES SR SR SR SR SR SR SR SR',
    fin: '      CL FW SS TW FW TW CL CW LA LI TW',
    ack: '      ES ES SS ES FW TW CL CW CL LI ES',
    rst: '      CL CL CL SR CL CL CL CL LA LI CL',
  },
};

// §6.3, the "secure_tcp" table, written out in full: the normal table with the listed cells changed
// (IN syn SA→SA; IN fin SA→SA; IN ack SR→SR, SA→SA; IN rst SA→CL; OUT syn SR→SA, SA→SA;
// IN-ONLY syn NO/FW/TW/CL/CW/LA/LI/SA→SA).
//                 NO ES SS SR FW TW CL CW LA LI SA
const SECURE: Rows = {
  in: {
    syn: '      SR ES ES SR SR SR SR SR SR SR SA',
    fin: '      CL CW SS TW TW TW CL CW LA LI SA',
    ack: '      ES ES SS SR FW TW CL CW CL LI SA',
    rst: '      CL CL CL SR CL CL CL CL LA LI CL',
  },
  out: {
    syn: '      SS ES SS SA SS SS SS SS SS LI SA',
    fin: '      TW FW SS TW FW TW CL TW LA LI TW',
    ack: '      ES ES SS ES FW TW CL CW LA ES ES',
    rst: '      CL CL SS CL CL TW CL CL CL CL CL',
  },
  'in-only': {
    syn: '      SA ES ES SR SA SA SA SA SA SA SA',
    fin: '      CL FW SS TW FW TW CL CW LA LI TW',
    ack: '      ES ES SS ES FW TW CL CW CL LI ES',
    rst: '      CL CL CL SR CL CL CL CL LA LI CL',
  },
};

/** The cells the document lists as different in the secure table: [direction, flag, column, normal, secure]. */
const SECURE_DIFFERENCES: [Direction, TcpFlag, string, string, string][] = [
  ['in', 'syn', 'SA', 'SR', 'SA'],
  ['in', 'fin', 'SA', 'TW', 'SA'],
  ['in', 'ack', 'SR', 'ES', 'SR'],
  ['in', 'ack', 'SA', 'ES', 'SA'],
  ['in', 'rst', 'SA', 'SR', 'CL'],
  ['out', 'syn', 'SR', 'SR', 'SA'],
  ['out', 'syn', 'SA', 'SR', 'SA'],
  ...(['NO', 'FW', 'TW', 'CL', 'CW', 'LA', 'LI', 'SA'].map(
    (col) => ['in-only', 'syn', col, 'SR', 'SA'] as [Direction, TcpFlag, string, string, string],
  ) as [Direction, TcpFlag, string, string, string][]),
];

const DIRS: Direction[] = ['in', 'out', 'in-only'];
const FLAGS: TcpFlag[] = ['syn', 'fin', 'ack', 'rst'];

function cells(rows: Rows): [Direction, TcpFlag, string, string][] {
  const out: [Direction, TcpFlag, string, string][] = [];
  for (const dir of DIRS) {
    for (const flag of FLAGS) {
      const targets = rows[dir][flag].trim().split(/\s+/);
      expect(targets).toHaveLength(COLUMNS.length);
      COLUMNS.forEach((col, i) => out.push([dir, flag, FULL[col], FULL[targets[i]]]));
    }
  }
  return out;
}

describe('the transcription of §6.3 is self-consistent', () => {
  it('the secure table differs from the normal one in exactly the listed cells', () => {
    const listed = new Set(SECURE_DIFFERENCES.map(([d, f, c]) => `${d} ${f} ${c}`));
    for (const dir of DIRS) {
      for (const flag of FLAGS) {
        const n = NORMAL[dir][flag].trim().split(/\s+/);
        const s = SECURE[dir][flag].trim().split(/\s+/);
        COLUMNS.forEach((col, i) => {
          const key = `${dir} ${flag} ${col}`;
          expect(n[i] !== s[i], key).toBe(listed.has(key));
        });
      }
    }
    for (const [dir, flag, col, normal, secure] of SECURE_DIFFERENCES) {
      const i = COLUMNS.indexOf(col);
      expect(NORMAL[dir][flag].trim().split(/\s+/)[i]).toBe(normal);
      expect(SECURE[dir][flag].trim().split(/\s+/)[i]).toBe(secure);
    }
  });
});

describe('nextTcpState, normal table (secure_tcp off): every cell of §6.3', () => {
  const all = cells(NORMAL);
  it('covers 3 directions × 4 flags × 11 states', () => {
    expect(all).toHaveLength(132);
  });
  it.each(all)('%s %s in %s → %s', (dir, flag, from, to) => {
    expect(nextTcpState(from, dir, flag, false)).toBe(to);
  });
});

describe('nextTcpState, secure_tcp table (tcp_states_dos): every cell of §6.3', () => {
  const all = cells(SECURE);
  it('covers 3 directions × 4 flags × 11 states', () => {
    expect(all).toHaveLength(132);
  });
  it.each(all)('%s %s in %s → %s', (dir, flag, from, to) => {
    expect(nextTcpState(from, dir, flag, true)).toBe(to);
  });
});

describe('worked transitions (§6.2)', () => {
  const walk = (steps: [Direction, TcpFlag][], secure = false) => {
    let s = 'NONE';
    const seen: string[] = [];
    for (const [d, f] of steps) {
      s = nextTcpState(s, d, f, secure);
      seen.push(s);
    }
    return seen;
  };

  it('a NAT connection: SYN, SYN-ACK, ACK, then the client closes', () => {
    expect(
      walk([
        ['in', 'syn'],
        ['out', 'syn'],
        ['in', 'ack'],
        ['in', 'fin'],
        ['out', 'ack'],
        ['out', 'fin'],
        ['in', 'ack'],
      ]),
    ).toEqual(['SYN_RECV', 'SYN_RECV', 'ESTABLISHED', 'CLOSE_WAIT', 'CLOSE_WAIT', 'TIME_WAIT', 'TIME_WAIT']);
  });

  it('a DR connection (input only): SYN, ACK, FIN', () => {
    expect(
      walk([
        ['in-only', 'syn'],
        ['in-only', 'ack'],
        ['in-only', 'fin'],
      ]),
    ).toEqual(['SYN_RECV', 'ESTABLISHED', 'FIN_WAIT']);
  });

  it('an RST from the client while ESTABLISHED goes straight to CLOSE', () => {
    expect(nextTcpState('ESTABLISHED', 'in', 'rst', false)).toBe('CLOSE');
  });

  it('under secure_tcp a NAT connection reaches ESTABLISHED only after the handshake', () => {
    expect(
      walk(
        [
          ['in', 'syn'],
          ['in', 'ack'],
          ['out', 'syn'],
          ['in', 'ack'],
        ],
        true,
      ),
    ).toEqual(['SYN_RECV', 'SYN_RECV', 'SYNACK', 'SYNACK']);
    expect(nextTcpState('SYNACK', 'out', 'ack', true)).toBe('ESTABLISHED');
  });
});

describe('timeouts and accounting', () => {
  it('default TCP timeouts (§6.3 / §9.2)', () => {
    expect(DEFAULT_TCP_TIMEOUTS).toEqual({
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
    });
    expect(DEFAULT_UDP_TIMEOUT).toBe(300);
    expect(DEFAULT_TIMEOUTS).toEqual({ tcp: 900, tcpFin: 120, udp: 300 });
  });

  it('`--set tcp tcpfin udp` changes ESTABLISHED, FIN_WAIT and UDP only', () => {
    const t = { tcp: 1000, tcpFin: 77, udp: 33 };
    expect(stateTimeout('tcp', 'ESTABLISHED', t)).toBe(1000);
    expect(stateTimeout('tcp', 'FIN_WAIT', t)).toBe(77);
    expect(stateTimeout('udp', 'UDP', t)).toBe(33);
    expect(stateTimeout('tcp', 'SYN_RECV', t)).toBe(60);
    expect(stateTimeout('tcp', 'TIME_WAIT', t)).toBe(120);
    expect(stateTimeout('tcp', 'CLOSE', t)).toBe(10);
    expect(stateTimeout('tcp', 'CLOSE_WAIT', t)).toBe(60);
    expect(stateTimeout('tcp', 'LAST_ACK', t)).toBe(30);
    expect(stateTimeout('tcp', 'NONE', t)).toBe(2);
  });

  it.each([
    ['NONE', 2],
    ['INIT1', 4],
    ['INIT', 61],
    ['COOKIE_SENT', 61],
    ['COOKIE_REPLIED', 61],
    ['COOKIE_WAIT', 61],
    ['COOKIE_ECHOED', 61],
    ['ESTABLISHED', 900],
    ['SHUTDOWN_SENT', 61],
    ['SHUTDOWN_RECEIVED', 61],
    ['SHUTDOWN_ACK_SENT', 61],
    ['REJECTED', 4],
    ['CLOSED', 61],
  ])('SCTP %s lives %i s', (state, seconds) => {
    expect(stateTimeout('sctp', state, DEFAULT_TIMEOUTS)).toBe(seconds);
  });

  it('active TCP states are ESTABLISHED, SYN_SENT, SYN_RECV and SYNACK (§6.2)', () => {
    const active = Object.values(FULL).filter((s) => isActiveState('tcp', s));
    expect(active.sort()).toEqual(['ESTABLISHED', 'SYNACK', 'SYN_RECV', 'SYN_SENT']);
    expect(isActiveState('udp', 'UDP')).toBe(false);
    expect(isActiveState('sctp', 'ESTABLISHED')).toBe(true);
    expect(isActiveState('sctp', 'INIT1')).toBe(false);
    expect(isActiveState('sctp', 'COOKIE_ECHOED')).toBe(false);
  });

  it('the first packet moves TCP to SYN_RECV, UDP to UDP, SCTP to INIT1', () => {
    expect(firstPacketState('tcp')).toBe('SYN_RECV');
    expect(firstPacketState('udp')).toBe('UDP');
    expect(firstPacketState('sctp')).toBe('INIT1');
  });
});

describe('parseState', () => {
  it.each(Object.values(FULL))('TCP accepts %s', (s) => {
    expect(parseState('tcp', s, 'update.state')).toBe(s);
  });

  it.each([
    ['tcp', 'established'],
    ['tcp', 'UDP'],
    ['tcp', 'INIT1'],
    ['tcp', ''],
    ['udp', 'ESTABLISHED'],
    ['udp', 'udp'],
    ['sctp', 'SYN_RECV'],
  ] as const)('%s rejects %j', (protocol, value) => {
    let caught: unknown;
    try {
      parseState(protocol, value, 'update.state');
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(IpvsError);
    expect((caught as IpvsError).code).toBe('INVALID_ARGUMENT');
    expect((caught as IpvsError).message).toMatch(/^update\.state: /);
    expect((caught as IpvsError).message).toContain(JSON.stringify(value));
  });

  it('UDP has the single state UDP; SCTP its 13 states', () => {
    expect(parseState('udp', 'UDP', 's')).toBe('UDP');
    expect(parseState('sctp', 'COOKIE_ECHOED', 's')).toBe('COOKIE_ECHOED');
  });
});
