/**
 * Conn-sync, master side (ipvs-semantics.md §7.2; `ip_vs_sync.c:ip_vs_sync_conn`,
 * `ip_vs_sync_conn_needed`): which entries are sent and when. First the decision function alone
 * (`syncNeeded`), then through a real MemoryEngine with a sync listener, packet by packet. Every
 * expectation below is worked out by hand from the kernel's rule:
 *
 *   template → no state test; persist_mode=1 and controlled → never; TCP/SCTP: eligible states only,
 *   a change to a closing state is sent at once; refresh period: at most every
 *   min(refresh, max(timeout/2, 10 s)) with `sync_retries` retries spaced refresh/8; then
 *   period > 0: pkts % period == threshold (templates skip it); period == 0 && refresh == 0:
 *   pkts == threshold.
 */
import { describe, expect, it } from 'vitest';
import { DEFAULT_SYSCTL, type SysctlValues } from '../../src/director/sysctl.js';
import { ManualClock } from '../../src/engine/clock.js';
import type { ConnectionUpdate, ScheduleRequest, SyncEntry } from '../../src/engine/engine.js';
import { MemoryEngine } from '../../src/engine/memory/memory-engine.js';
import { syncNeeded, type SyncTracked } from '../../src/sync/policy.js';

const T0 = 1_000_000;

function sysctl(patch: Partial<SysctlValues> = {}): SysctlValues {
  return { ...DEFAULT_SYSCTL, sync_threshold: [...DEFAULT_SYSCTL.sync_threshold], ...patch };
}

function tracked(over: Partial<SyncTracked> = {}): SyncTracked {
  return {
    template: false,
    protocol: 'tcp',
    state: 'ESTABLISHED',
    timeoutMs: 900_000,
    control: null,
    syncOldState: 'NONE',
    syncEndtime: 0,
    syncRetries: 0,
    ...over,
  };
}

/** Feeds packets 1..upTo one at a time (at time `now`) and returns the counts that were sent. */
function sentAt(e: SyncTracked, upTo: number, s: SysctlValues, now = T0): number[] {
  const out: number[] = [];
  for (let p = 1; p <= upTo; p++) if (syncNeeded(e, p - 1, p, now, s)) out.push(p);
  return out;
}

describe('syncNeeded: packet-count rule (sync_threshold "3 50", §7.2)', () => {
  it('TCP ESTABLISHED: the 3rd, 53rd, 103rd … incoming packet', () => {
    expect(sentAt(tracked(), 160, sysctl())).toEqual([3, 53, 103, 153]);
  });

  it('UDP: the 3rd, 53rd, 103rd … packet (a single state, never forced)', () => {
    expect(sentAt(tracked({ protocol: 'udp', state: 'UDP', timeoutMs: 300_000 }), 110, sysctl())).toEqual([
      3, 53, 103,
    ]);
  });

  it('TCP states outside ESTABLISHED/FIN_WAIT/CLOSE/CLOSE_WAIT/TIME_WAIT are never sent (SYN_RECV incl.)', () => {
    for (const state of ['NONE', 'SYN_SENT', 'SYN_RECV', 'LAST_ACK', 'LISTEN', 'SYNACK']) {
      expect(sentAt(tracked({ state, syncOldState: state }), 110, sysctl()), state).toEqual([]);
    }
  });

  it('entering ESTABLISHED is not forced: it waits for the threshold packet', () => {
    const e = tracked({ syncOldState: 'SYN_RECV' });
    expect(syncNeeded(e, 1, 2, T0, sysctl())).toBe(false);
    expect(e.syncOldState).toBe('SYN_RECV'); // old_state only moves when something is sent
    expect(syncNeeded(e, 2, 3, T0, sysctl())).toBe(true);
    expect(e.syncOldState).toBe('ESTABLISHED');
  });

  it('a change to FIN_WAIT, CLOSE_WAIT, TIME_WAIT or CLOSE is sent at once, then by the count again', () => {
    for (const state of ['FIN_WAIT', 'CLOSE_WAIT', 'TIME_WAIT', 'CLOSE']) {
      const e = tracked({ state, syncOldState: 'ESTABLISHED' });
      expect(syncNeeded(e, 6, 7, T0, sysctl()), state).toBe(true);
      expect(e.syncOldState).toBe(state);
      // Same state again: no longer forced; 8..52 miss, 53 hits.
      expect(
        sentAt(e, 60, sysctl()).filter((p) => p > 7),
        state,
      ).toEqual([53]);
    }
  });

  it('SCTP: ESTABLISHED by count; SHUTDOWN_SENT/RECEIVED/ACK_SENT and CLOSED at once; others never', () => {
    expect(sentAt(tracked({ protocol: 'sctp', syncOldState: 'ESTABLISHED' }), 60, sysctl())).toEqual([3, 53]);
    for (const state of ['SHUTDOWN_SENT', 'SHUTDOWN_RECEIVED', 'SHUTDOWN_ACK_SENT', 'CLOSED']) {
      const e = tracked({ protocol: 'sctp', state, timeoutMs: 61_000, syncOldState: 'ESTABLISHED' });
      expect(syncNeeded(e, 9, 10, T0, sysctl()), state).toBe(true);
    }
    for (const state of ['NONE', 'INIT1', 'INIT', 'COOKIE_SENT', 'COOKIE_ECHOED', 'REJECTED']) {
      const e = tracked({ protocol: 'sctp', state, timeoutMs: 61_000, syncOldState: 'NONE' });
      expect(sentAt(e, 60, sysctl()), state).toEqual([]);
    }
  });

  it('a report that adds several packets sends when any count it covers is a send count', () => {
    const s = sysctl();
    expect(syncNeeded(tracked(), 1, 60, T0, s)).toBe(true); // covers 3 and 53
    expect(syncNeeded(tracked(), 3, 52, T0, s)).toBe(false); // 4..52
    expect(syncNeeded(tracked(), 52, 53, T0, s)).toBe(true);
    expect(syncNeeded(tracked(), 4, 54, T0, s)).toBe(true); // 50 counts always contain one
    expect(syncNeeded(tracked(), 53, 102, T0, s)).toBe(false);
  });

  it('templates skip the count while sync_period > 0: every call sends', () => {
    const t = tracked({ template: true, protocol: 'tcp', state: 'NONE', timeoutMs: 300_000 });
    expect(sentAt(t, 10, sysctl())).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  });

  it('sync_period 0 without refresh: once, when the count equals the threshold (templates too)', () => {
    const s = sysctl({ sync_threshold: [3, 0] });
    expect(sentAt(tracked(), 120, s)).toEqual([3]);
    expect(sentAt(tracked({ template: true, state: 'NONE', timeoutMs: 300_000 }), 120, s)).toEqual([3]);
    expect(syncNeeded(tracked(), 0, 10, T0, s)).toBe(true); // a report covering 3
    expect(syncNeeded(tracked(), 3, 100, T0, s)).toBe(false);
    // Closing transitions are still sent at once.
    expect(syncNeeded(tracked({ state: 'CLOSE_WAIT', syncOldState: 'ESTABLISHED' }), 40, 41, T0, s)).toBe(
      true,
    );
  });

  it('sync_persist_mode=1: a connection controlled by a template is never sent; the template is', () => {
    const s = sysctl({ sync_persist_mode: 1 });
    const ct = { template: true };
    expect(sentAt(tracked({ control: ct }), 60, s)).toEqual([]);
    expect(
      syncNeeded(tracked({ control: ct, state: 'CLOSE', syncOldState: 'ESTABLISHED' }), 4, 5, T0, s),
    ).toBe(false);
    expect(sentAt(tracked({ template: true, state: 'NONE' }), 3, s)).toEqual([1, 2, 3]);
    // Not controlled, or controlled by a non-template (FTP control): the usual rule.
    expect(sentAt(tracked(), 60, s)).toEqual([3, 53]);
    expect(sentAt(tracked({ control: { template: false } }), 60, s)).toEqual([3, 53]);
  });
});

describe('syncNeeded: by time (sync_refresh_period, sync_retries)', () => {
  const at = (e: SyncTracked, seconds: number, s: SysctlValues, pkts = 10) =>
    syncNeeded(e, pkts - 1, pkts, T0 + Math.round(seconds * 1000), s);

  it('"3 0" + refresh 100 s, retries 0: first packet, then not before 100 s have passed', () => {
    // ESTABLISHED, timeout 900 s: limit = min(100, max(450, 10)) = 100 s between sends.
    const s = sysctl({ sync_threshold: [3, 0], sync_refresh_period: 100 });
    const e = tracked();
    expect(at(e, 0, s, 7)).toBe(true); // no count test in this mode
    expect(at(e, 1, s)).toBe(false);
    expect(at(e, 99.999, s)).toBe(false);
    expect(at(e, 100, s)).toBe(true);
    expect(at(e, 150, s)).toBe(false);
    expect(at(e, 200, s)).toBe(true);
  });

  it('the gap is capped at half the state timeout (never below 10 s)', () => {
    // UDP 300 s, refresh 1000 s: min(1000, max(150, 10)) = 150 s.
    const s = sysctl({ sync_threshold: [3, 0], sync_refresh_period: 1000 });
    const e = tracked({ protocol: 'udp', state: 'UDP', timeoutMs: 300_000 });
    expect(at(e, 0, s)).toBe(true);
    expect(at(e, 149, s)).toBe(false);
    expect(at(e, 150, s)).toBe(true);
    // CLOSE 10 s after the forced send: min(1000, max(5, 10)) = 10 s.
    const c = tracked({ state: 'CLOSE', timeoutMs: 10_000, syncOldState: 'ESTABLISHED' });
    expect(at(c, 0, s)).toBe(true); // forced
    expect(at(c, 9, s)).toBe(false);
    expect(at(c, 10, s)).toBe(true);
  });

  it('sync_retries 1: one retry once refresh/8 has passed since the last send, then the full gap', () => {
    const s = sysctl({ sync_threshold: [3, 0], sync_refresh_period: 100, sync_retries: 1 });
    const e = tracked();
    expect(at(e, 0, s)).toBe(true);
    expect(at(e, 12, s)).toBe(false); // 12 < 100/8 = 12.5
    expect(at(e, 13, s)).toBe(true); // retry 1
    expect(e.syncRetries).toBe(1);
    expect(at(e, 20, s)).toBe(false); // retries used up
    expect(at(e, 112, s)).toBe(false); // 99 s after the retry
    expect(at(e, 113, s)).toBe(true); // 100 s after the retry: a normal send, counter reset
    expect(e.syncRetries).toBe(0);
    expect(at(e, 126, s)).toBe(true); // 13 s later: retry again
  });

  it('sync_retries 2: two retries, each refresh/8 after the previous send', () => {
    const s = sysctl({ sync_threshold: [3, 0], sync_refresh_period: 100, sync_retries: 2 });
    const e = tracked();
    expect(at(e, 0, s)).toBe(true);
    expect(at(e, 13, s)).toBe(true); // retry 1 (≥ 12.5 s after 0)
    expect(at(e, 25, s)).toBe(false); // < 13 + 12.5
    expect(at(e, 26, s)).toBe(true); // retry 2
    expect(at(e, 40, s)).toBe(false);
    expect(at(e, 125, s)).toBe(false);
    expect(at(e, 126, s)).toBe(true);
  });

  it('with "3 50" and a refresh period both rules must pass for a connection', () => {
    const s = sysctl({ sync_refresh_period: 100 });
    const e = tracked();
    expect(syncNeeded(e, 2, 3, T0, s)).toBe(true);
    expect(syncNeeded(e, 52, 53, T0 + 50_000, s)).toBe(false); // count hits, but only 50 s
    expect(syncNeeded(e, 99, 100, T0 + 150_000, s)).toBe(false); // time passes, count misses
    expect(syncNeeded(e, 102, 103, T0 + 150_000, s)).toBe(true);
  });

  it('templates: the refresh period is what limits them', () => {
    // Template timeout 300 s, refresh 60 s: min(60, max(150, 10)) = 60 s.
    const s = sysctl({ sync_refresh_period: 60 });
    const t = tracked({ template: true, state: 'NONE', timeoutMs: 300_000 });
    expect(at(t, 0, s, 1)).toBe(true);
    expect(at(t, 30, s, 2)).toBe(false);
    expect(at(t, 59, s, 3)).toBe(false);
    expect(at(t, 60, s, 4)).toBe(true);
  });

  it('a closing transition is sent at once even inside the refresh gap', () => {
    const s = sysctl({ sync_threshold: [3, 0], sync_refresh_period: 100 });
    const e = tracked();
    expect(at(e, 0, s)).toBe(true);
    Object.assign(e, { state: 'CLOSE_WAIT', timeoutMs: 60_000 });
    expect(at(e, 1, s)).toBe(true);
  });
});

// ---------------------------------------------------------------------------------------------
// Through the engine

const TCP = 'tcp:10.0.0.1:80';
const PERSIST = 'tcp:10.0.0.2:80';
const UDP = 'udp:10.0.0.3:53';
const UDP_1PKT = 'udp:10.0.0.4:53';
const UDP_1PKT_PERSIST = 'udp:10.0.0.5:53';
const SCTP = 'sctp:10.0.0.6:9000';
const TCP_DR = 'tcp:10.0.0.7:80';

async function configure(engine: MemoryEngine): Promise<void> {
  await engine.addService({ protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler: 'rr' });
  await engine.addDestination(TCP, { address: '10.1.0.1', port: 8080 });
  await engine.addService({
    protocol: 'tcp',
    address: '10.0.0.2',
    port: 80,
    scheduler: 'rr',
    persistence: { timeout: 300, netmask: '255.255.255.0' },
  });
  await engine.addDestination(PERSIST, { address: '10.1.0.1', port: 8080 });
  await engine.addDestination(PERSIST, { address: '10.1.0.2', port: 8080 });
  await engine.addService({ protocol: 'udp', address: '10.0.0.3', port: 53, scheduler: 'rr' });
  await engine.addDestination(UDP, { address: '10.1.0.1', port: 53 });
  await engine.addService({
    protocol: 'udp',
    address: '10.0.0.4',
    port: 53,
    scheduler: 'rr',
    onePacket: true,
  });
  await engine.addDestination(UDP_1PKT, { address: '10.1.0.1', port: 53 });
  await engine.addService({
    protocol: 'udp',
    address: '10.0.0.5',
    port: 53,
    scheduler: 'rr',
    onePacket: true,
    persistence: { timeout: 300 },
  });
  await engine.addDestination(UDP_1PKT_PERSIST, { address: '10.1.0.1', port: 53 });
  await engine.addService({ protocol: 'sctp', address: '10.0.0.6', port: 9000, scheduler: 'rr' });
  await engine.addDestination(SCTP, { address: '10.1.0.1', port: 9000 });
  await engine.addService({ protocol: 'tcp', address: '10.0.0.7', port: 80, scheduler: 'rr' });
  await engine.addDestination(TCP_DR, { address: '10.1.0.3', port: 80, forward: 'route' });
}

interface Master {
  clock: ManualClock;
  engine: MemoryEngine;
  /** Every batch the listener received, in order. */
  batches: SyncEntry[][];
  /** The entries that arrived since the last take(). */
  take(): SyncEntry[];
  /** Schedules, and checks what the call sent. */
  schedule(req: ScheduleRequest): Promise<string>;
  update(id: string, u: ConnectionUpdate): Promise<SyncEntry[]>;
}

async function master(sysctlPatch: Record<string, number | number[]> = {}): Promise<Master> {
  const clock = new ManualClock(T0);
  const engine = new MemoryEngine({ clock });
  await configure(engine);
  if (Object.keys(sysctlPatch).length > 0) await engine.setSysctl(sysctlPatch);
  const batches: SyncEntry[][] = [];
  let seen = 0;
  engine.setSyncListener((entries) => {
    batches.push(entries);
  });
  const m: Master = {
    clock,
    engine,
    batches,
    take() {
      const fresh = batches.slice(seen).flat();
      seen = batches.length;
      return fresh;
    },
    async schedule(req) {
      return (await engine.schedule(req)).connection;
    },
    async update(id, u) {
      await engine.updateConnection(id, u);
      return m.take();
    },
  };
  return m;
}

const IN_ACK: ConnectionUpdate = { event: { direction: 'in', flag: 'ack' } };
const OUT_ACK: ConnectionUpdate = { event: { direction: 'out', flag: 'ack' } };

function tcpRecord(
  state: string,
  inactive: boolean,
  timeout: number,
  over: Partial<SyncEntry> = {},
): SyncEntry {
  return {
    protocol: 'tcp',
    template: false,
    inactive,
    noOutput: false,
    forward: 'masq',
    state,
    clientAddress: '192.168.1.7',
    clientPort: 40001,
    virtualAddress: '10.0.0.1',
    virtualPort: 80,
    destinationAddress: '10.1.0.1',
    destinationPort: 8080,
    fwmark: 0,
    timeout,
    ...over,
  };
}

const ES = tcpRecord('ESTABLISHED', false, 900);

describe('master through the engine: TCP (§7.2)', () => {
  it('never in SYN_RECV; once ESTABLISHED (events) on the 3rd, 53rd, 103rd incoming packet', async () => {
    const m = await master();
    const id = await m.schedule({ protocol: 'tcp', client: '192.168.1.7:40001', virtual: '10.0.0.1:80' });
    expect(m.take()).toEqual([]); // packet 1, SYN_RECV
    const sentOn: number[] = [];
    for (let p = 2; p <= 110; p++) {
      const got = await m.update(id, IN_ACK); // packet 2 moves SYN_RECV → ESTABLISHED
      if (got.length > 0) {
        expect(got).toEqual([ES]);
        sentOn.push(p);
      }
    }
    expect(sentOn).toEqual([3, 53, 103]);
    // One listener call per call that sent something, never an empty one.
    expect(m.batches.map((b) => b.length)).toEqual([1, 1, 1]);
  });

  it('ESTABLISHED set explicitly counts as a packet: sent on the 3rd', async () => {
    const m = await master();
    const id = await m.schedule({ protocol: 'tcp', client: '192.168.1.7:40001', virtual: '10.0.0.1:80' });
    expect(await m.update(id, { state: 'ESTABLISHED' })).toEqual([]); // packet 2
    expect(await m.update(id, { inPackets: 1 })).toEqual([ES]); // packet 3
    expect(await m.update(id, { inPackets: 1 })).toEqual([]);
  });

  it('SYN_RECV is never sent, whatever the count', async () => {
    const m = await master();
    const id = await m.schedule({ protocol: 'tcp', client: '192.168.1.7:40001', virtual: '10.0.0.1:80' });
    expect(await m.update(id, { inPackets: 200 })).toEqual([]);
    for (let i = 0; i < 5; i++)
      expect(await m.update(id, { event: { direction: 'in', flag: 'syn' } })).toEqual([]);
    expect(await m.update(id, { state: 'SYN_RECV', inPackets: 60 })).toEqual([]);
    expect(m.batches).toEqual([]);
  });

  it('reported counts: a report jumping over a send count sends once', async () => {
    const m = await master();
    const id = await m.schedule({ protocol: 'tcp', client: '192.168.1.7:40001', virtual: '10.0.0.1:80' });
    expect(await m.update(id, { state: 'ESTABLISHED', inPackets: 10 })).toEqual([ES]); // 2..11 ∋ 3
    expect(await m.update(id, { inPackets: 41 })).toEqual([]); // 12..52
    expect(await m.update(id, { inPackets: 1 })).toEqual([ES]); // 53
    expect(await m.update(id, { inPackets: 100 })).toEqual([ES]); // 54..153 ∋ 103, 153: one record
    expect(await m.update(id, { inPackets: 49 })).toEqual([]); // 154..202
    expect(await m.update(id, { ...IN_ACK, inPackets: 1 })).toEqual([ES]); // 203
  });

  it('counts reported while in SYN_RECV do not bring the first send forward', async () => {
    const m = await master();
    const id = await m.schedule({ protocol: 'tcp', client: '192.168.1.7:40001', virtual: '10.0.0.1:80' });
    expect(await m.update(id, { inPackets: 5 })).toEqual([]); // 2..6 in SYN_RECV
    expect(await m.update(id, IN_ACK)).toEqual([]); // 7, ESTABLISHED (not forced)
    expect(await m.update(id, { inPackets: 45 })).toEqual([]); // 8..52
    expect(await m.update(id, IN_ACK)).toEqual([ES]); // 53
  });

  it.each([
    ['FIN_WAIT', 120],
    ['CLOSE_WAIT', 60],
    ['TIME_WAIT', 120],
    ['CLOSE', 10],
  ])('a change to %s is sent at once (timeout %i s, inactive)', async (state, timeout) => {
    const m = await master();
    const id = await m.schedule({ protocol: 'tcp', client: '192.168.1.7:40001', virtual: '10.0.0.1:80' });
    expect(await m.update(id, { state: 'ESTABLISHED', inPackets: 5 })).toEqual([ES]); // 2..6 ∋ 3
    expect(await m.update(id, { state })).toEqual([tcpRecord(state, true, timeout)]); // packet 7
    expect(await m.update(id, { inPackets: 1 })).toEqual([]); // 8, same state: count rule again
    expect(await m.update(id, { inPackets: 45 })).toEqual([tcpRecord(state, true, timeout)]); // 9..53
  });

  it('closing transitions from the state table: in fin → CLOSE_WAIT, in rst → CLOSE, SYN_RECV + fin → TIME_WAIT', async () => {
    const m = await master();
    const a = await m.schedule({ protocol: 'tcp', client: '192.168.1.7:40001', virtual: '10.0.0.1:80' });
    expect(await m.update(a, IN_ACK)).toEqual([]); // 2, ESTABLISHED
    expect(await m.update(a, { event: { direction: 'in', flag: 'fin' } })).toEqual([
      tcpRecord('CLOSE_WAIT', true, 60),
    ]);
    const b = await m.schedule({ protocol: 'tcp', client: '192.168.1.7:40002', virtual: '10.0.0.1:80' });
    expect(await m.update(b, IN_ACK)).toEqual([]);
    expect(await m.update(b, { event: { direction: 'in', flag: 'rst' } })).toEqual([
      tcpRecord('CLOSE', true, 10, { clientPort: 40002 }),
    ]);
    // Never established: SYN_RECV + client FIN → TIME_WAIT, eligible and changed → sent.
    const c = await m.schedule({ protocol: 'tcp', client: '192.168.1.7:40003', virtual: '10.0.0.1:80' });
    expect(await m.update(c, { event: { direction: 'in', flag: 'fin' } })).toEqual([
      tcpRecord('TIME_WAIT', true, 120, { clientPort: 40003 }),
    ]);
  });

  it('direct routing (INPUT-ONLY table): ESTABLISHED + client FIN → FIN_WAIT, sent at once with NOOUTPUT', async () => {
    const m = await master();
    const id = await m.schedule({ protocol: 'tcp', client: '192.168.1.7:40001', virtual: '10.0.0.7:80' });
    const dr = {
      virtualAddress: '10.0.0.7',
      destinationAddress: '10.1.0.3',
      destinationPort: 80,
      noOutput: true,
      forward: 'route',
    };
    expect(await m.update(id, IN_ACK)).toEqual([]);
    expect(await m.update(id, IN_ACK)).toEqual([tcpRecord('ESTABLISHED', false, 900, dr)]);
    expect(await m.update(id, { event: { direction: 'in', flag: 'fin' } })).toEqual([
      tcpRecord('FIN_WAIT', true, 120, dr),
    ]);
  });

  it('out packets never send; a closing state they caused goes with the next incoming packet', async () => {
    const m = await master();
    const id = await m.schedule({ protocol: 'tcp', client: '192.168.1.7:40001', virtual: '10.0.0.1:80' });
    expect(await m.update(id, IN_ACK)).toEqual([]);
    expect(await m.update(id, IN_ACK)).toEqual([ES]); // 3
    for (let i = 0; i < 60; i++) expect(await m.update(id, OUT_ACK)).toEqual([]);
    expect(await m.update(id, { outPackets: 500 })).toEqual([]);
    // Server FIN: ESTABLISHED → FIN_WAIT (OUT fin), not sent by an out packet.
    expect(await m.update(id, { event: { direction: 'out', flag: 'fin' } })).toEqual([]);
    // Client ACK: FIN_WAIT stays FIN_WAIT; the state differs from the one last sent → at once.
    expect(await m.update(id, IN_ACK)).toEqual([tcpRecord('FIN_WAIT', true, 120)]);
  });

  it('a Schedule that follows an existing entry (§6.8 rule 3) is an incoming packet', async () => {
    const m = await master();
    const req = { protocol: 'tcp', client: '192.168.1.7:40001', virtual: '10.0.0.1:80' };
    const id = await m.schedule(req);
    expect(await m.update(id, IN_ACK)).toEqual([]); // 2, ESTABLISHED
    const again = await m.engine.schedule(req); // SYN on ESTABLISHED: stays; packet 3
    expect(again.reused).toBe(true);
    expect(m.take()).toEqual([ES]);
  });

  it('a client packet for a deleted destination is dropped before counting: nothing sent', async () => {
    const m = await master();
    const id = await m.schedule({ protocol: 'tcp', client: '192.168.1.7:40001', virtual: '10.0.0.1:80' });
    expect(await m.update(id, IN_ACK)).toEqual([]);
    await m.engine.deleteDestination(TCP, '10.1.0.1:8080');
    const answer = await m.engine.updateConnection(id, IN_ACK);
    expect(answer.dropped).toBe(true);
    expect(m.take()).toEqual([]);
  });
});

describe('master through the engine: UDP and SCTP', () => {
  const udp = (over: Partial<SyncEntry> = {}): SyncEntry => ({
    protocol: 'udp',
    template: false,
    inactive: true,
    noOutput: false,
    forward: 'masq',
    state: 'UDP',
    clientAddress: '192.168.1.7',
    clientPort: 5000,
    virtualAddress: '10.0.0.3',
    virtualPort: 53,
    destinationAddress: '10.1.0.1',
    destinationPort: 53,
    fwmark: 0,
    timeout: 300,
    ...over,
  });

  it('UDP flows go on their 3rd, 53rd … incoming packet; replies never send', async () => {
    const m = await master();
    const id = await m.schedule({ protocol: 'udp', client: '192.168.1.7:5000', virtual: '10.0.0.3:53' });
    expect(m.take()).toEqual([]);
    expect(await m.update(id, { event: { direction: 'in' } })).toEqual([]); // 2
    expect(await m.update(id, { event: { direction: 'in' } })).toEqual([udp()]); // 3
    expect(await m.update(id, { event: { direction: 'out' } })).toEqual([]);
    expect(await m.update(id, { outPackets: 100 })).toEqual([]);
    expect(await m.update(id, { inPackets: 49 })).toEqual([]); // 4..52
    expect(await m.update(id, { event: { direction: 'in' } })).toEqual([udp()]); // 53
  });

  it('UDP: repeated Schedules of the same tuple follow the entry and count', async () => {
    const m = await master();
    const req = { protocol: 'udp', client: '192.168.1.7:5000', virtual: '10.0.0.3:53' };
    await m.schedule(req);
    await m.schedule(req);
    expect(m.take()).toEqual([]);
    await m.schedule(req);
    expect(m.take()).toEqual([udp()]);
  });

  it('one-packet UDP connections are never sent, even on the threshold datagram', async () => {
    const m = await master();
    for (let i = 0; i < 5; i++) {
      await m.schedule({ protocol: 'udp', client: '192.168.1.7:5000', virtual: '10.0.0.4:53' });
      expect(m.take()).toEqual([]);
    }
    expect(await m.engine.listConnections({ service: UDP_1PKT })).toEqual([]);
  });

  it('SCTP: INIT states never; ESTABLISHED by count; SHUTDOWN_* and CLOSED at once', async () => {
    const m = await master();
    const sctp = (state: string, inactive: boolean, timeout: number): SyncEntry => ({
      ...udp({ protocol: 'sctp', virtualAddress: '10.0.0.6', virtualPort: 9000, destinationPort: 9000 }),
      state,
      inactive,
      timeout,
    });
    const id = await m.schedule({ protocol: 'sctp', client: '192.168.1.7:5000', virtual: '10.0.0.6:9000' });
    expect(await m.update(id, { inPackets: 2 })).toEqual([]); // 3 in INIT1
    expect(await m.update(id, { state: 'COOKIE_ECHOED', inPackets: 50 })).toEqual([]); // ∋ 53
    expect(await m.update(id, { state: 'ESTABLISHED' })).toEqual([]); // 54, not forced
    expect(await m.update(id, { inPackets: 48 })).toEqual([]); // 55..102
    expect(await m.update(id, { inPackets: 1 })).toEqual([sctp('ESTABLISHED', false, 900)]); // 103
    expect(await m.update(id, { state: 'SHUTDOWN_SENT' })).toEqual([sctp('SHUTDOWN_SENT', true, 61)]);
    expect(await m.update(id, { state: 'SHUTDOWN_RECEIVED' })).toEqual([sctp('SHUTDOWN_RECEIVED', true, 61)]);
    expect(await m.update(id, { state: 'SHUTDOWN_ACK_SENT' })).toEqual([sctp('SHUTDOWN_ACK_SENT', true, 61)]);
    expect(await m.update(id, { state: 'CLOSED' })).toEqual([sctp('CLOSED', true, 61)]);
    expect(await m.update(id, { inPackets: 1 })).toEqual([]);
  });
});

describe('master through the engine: persistence templates', () => {
  const tpl = (state: 'NONE' | 'ASSURED', over: Partial<SyncEntry> = {}): SyncEntry => ({
    protocol: 'tcp',
    template: true,
    inactive: false,
    noOutput: false,
    forward: 'masq',
    state,
    clientAddress: '192.168.1.0',
    clientPort: 0,
    virtualAddress: '10.0.0.2',
    virtualPort: 80,
    destinationAddress: '10.1.0.2',
    destinationPort: 8080,
    fwmark: 0,
    timeout: 300,
    ...over,
  });

  it('a template goes with every incoming packet of a connection it controls, after that connection', async () => {
    const m = await master();
    const r = await m.engine.schedule({
      protocol: 'tcp',
      client: '192.168.1.7:40001',
      virtual: '10.0.0.2:80',
    });
    const dest = { destinationAddress: r.destination.split(':')[0] };
    // The Schedule that creates it: the connection (SYN_RECV) is not sent, its template is.
    expect(m.take()).toEqual([tpl('NONE', dest)]);
    // ESTABLISHED assures the template.
    expect(await m.update(r.connection, IN_ACK)).toEqual([tpl('ASSURED', dest)]);
    const conn = tcpRecord('ESTABLISHED', false, 900, {
      virtualAddress: '10.0.0.2',
      ...dest,
    });
    expect(await m.update(r.connection, IN_ACK)).toEqual([conn, tpl('ASSURED', dest)]); // 3
    expect(await m.update(r.connection, OUT_ACK)).toEqual([]);
    expect(await m.update(r.connection, IN_ACK)).toEqual([tpl('ASSURED', dest)]); // 4
    // A report of several packets: the template goes (the kernel sends it once per packet).
    const report = await m.update(r.connection, { inPackets: 10 });
    expect(report.length).toBeGreaterThanOrEqual(1);
    for (const e of report) expect(e).toEqual(tpl('ASSURED', dest));
    // Another client of the same /24 reuses it: the template is sent by that Schedule too.
    const other = await m.engine.schedule({
      protocol: 'tcp',
      client: '192.168.1.9:5000',
      virtual: '10.0.0.2:80',
    });
    expect(other.template).toBe(r.template);
    expect(m.take()).toEqual([tpl('ASSURED', dest)]);
    // And a Schedule that follows the existing entry.
    await m.engine.schedule({ protocol: 'tcp', client: '192.168.1.7:40001', virtual: '10.0.0.2:80' });
    expect(m.take()).toEqual([tpl('ASSURED', dest)]);
  });

  it('"expire later": a template still controlling a connection is sent with its 60 s re-arm', async () => {
    const m = await master();
    const r = await m.engine.schedule({
      protocol: 'tcp',
      client: '192.168.1.7:40001',
      virtual: '10.0.0.2:80',
    });
    const dest = { destinationAddress: r.destination.split(':')[0] };
    await m.update(r.connection, IN_ACK); // ESTABLISHED (900 s), template ASSURED
    m.take();
    m.clock.advance(299_000);
    await m.engine.tick();
    expect(m.take()).toEqual([]);
    m.clock.advance(1_000); // the template's 300 s are up
    await m.engine.tick();
    expect(m.take()).toEqual([tpl('ASSURED', { ...dest, timeout: 60 })]);
    const listed = await m.engine.listConnections({ templates: true });
    expect(listed.map((c) => c.expiresInMs)).toEqual([60_000]);
    m.clock.advance(59_000);
    await m.engine.tick();
    expect(m.take()).toEqual([]);
    m.clock.advance(1_000);
    await m.engine.listConnections(); // any call fires due timers and hands over what they sent
    expect(m.take()).toEqual([tpl('ASSURED', { ...dest, timeout: 60 })]);
  });

  it('one-packet UDP with persistence: the template is sent for every datagram, the connection never', async () => {
    const m = await master();
    const t: SyncEntry = {
      protocol: 'udp',
      template: true,
      inactive: false,
      noOutput: false,
      forward: 'masq',
      state: 'NONE',
      clientAddress: '192.168.1.7',
      clientPort: 0,
      virtualAddress: '10.0.0.5',
      virtualPort: 53,
      destinationAddress: '10.1.0.1',
      destinationPort: 53,
      fwmark: 0,
      timeout: 300,
    };
    for (let i = 0; i < 4; i++) {
      await m.schedule({ protocol: 'udp', client: `192.168.1.7:${5000 + i}`, virtual: '10.0.0.5:53' });
      expect(m.take()).toEqual([t]);
    }
  });

  it('sync_persist_mode=1: connections under a template are not sent, templates still are', async () => {
    const m = await master({ sync_persist_mode: 1 });
    const r = await m.engine.schedule({
      protocol: 'tcp',
      client: '192.168.1.7:40001',
      virtual: '10.0.0.2:80',
    });
    const dest = { destinationAddress: r.destination.split(':')[0] };
    expect(m.take()).toEqual([tpl('NONE', dest)]);
    expect(await m.update(r.connection, IN_ACK)).toEqual([tpl('ASSURED', dest)]);
    expect(await m.update(r.connection, IN_ACK)).toEqual([tpl('ASSURED', dest)]); // 3: no connection
    expect(await m.update(r.connection, { state: 'CLOSE_WAIT' })).toEqual([tpl('ASSURED', dest)]);
    // A connection of a non-persistent service is sent as usual.
    const id = await m.schedule({ protocol: 'tcp', client: '192.168.1.7:40001', virtual: '10.0.0.1:80' });
    expect(m.take()).toEqual([]);
    expect(await m.update(id, IN_ACK)).toEqual([]);
    expect(await m.update(id, IN_ACK)).toEqual([ES]);
  });
});

describe('master through the engine: other sysctls', () => {
  it('"3 0" without refresh: once at the threshold packet, then only closing transitions', async () => {
    const m = await master({ sync_threshold: [3, 0] });
    const id = await m.schedule({ protocol: 'tcp', client: '192.168.1.7:40001', virtual: '10.0.0.1:80' });
    expect(await m.update(id, IN_ACK)).toEqual([]);
    expect(await m.update(id, IN_ACK)).toEqual([ES]); // 3
    expect(await m.update(id, { inPackets: 200 })).toEqual([]); // 4..203: no 53, 103 …
    expect(await m.update(id, { state: 'CLOSE_WAIT' })).toEqual([tcpRecord('CLOSE_WAIT', true, 60)]);
  });

  it('"3 0" + sync_refresh_period 100 + sync_retries 1: by time, with one retry', async () => {
    const m = await master({ sync_threshold: [3, 0], sync_refresh_period: 100, sync_retries: 1 });
    const id = await m.schedule({ protocol: 'tcp', client: '192.168.1.7:40001', virtual: '10.0.0.1:80' });
    expect(m.take()).toEqual([]); // SYN_RECV
    const at = async (ms: number, u: ConnectionUpdate = IN_ACK) => {
      m.clock.advance(T0 + ms - m.clock.now());
      return m.update(id, u);
    };
    const cw = tcpRecord('CLOSE_WAIT', true, 60);
    expect(await at(1_000)).toEqual([ES]); // ESTABLISHED at packet 2: no count test in this mode
    expect(await at(2_000)).toEqual([]);
    expect(await at(13_000)).toEqual([]); // 12 s after the send < 100/8 = 12.5 s
    expect(await at(14_000)).toEqual([ES]); // the retry
    expect(await at(20_000)).toEqual([]); // retries used up
    expect(await at(113_999)).toEqual([]);
    expect(await at(114_000)).toEqual([ES]); // 100 s after the retry
    expect(await at(115_000)).toEqual([]);
    expect(await at(116_000, { state: 'CLOSE_WAIT' })).toEqual([cw]); // a closing transition: at once
    // CLOSE_WAIT (60 s): gap = min(100, max(30, 10)) = 30 s; retry from 116 + 12.5 s.
    expect(await at(117_000)).toEqual([]);
    expect(await at(128_000)).toEqual([]);
    expect(await at(129_000)).toEqual([cw]); // the retry
    expect(await at(158_999)).toEqual([]);
    expect(await at(159_000)).toEqual([cw]); // 30 s after the retry
  });
});

describe('master through the engine: the listener', () => {
  it('nothing is gathered while no listener is set; counting goes on', async () => {
    const clock = new ManualClock(T0);
    const engine = new MemoryEngine({ clock });
    await configure(engine);
    const id = (
      await engine.schedule({ protocol: 'tcp', client: '192.168.1.7:40001', virtual: '10.0.0.1:80' })
    ).connection;
    await engine.updateConnection(id, { state: 'ESTABLISHED', inPackets: 9 }); // 10 packets
    await engine.schedule({ protocol: 'tcp', client: '192.168.1.7:40001', virtual: '10.0.0.2:80' });
    await engine.updateConnection(id, { state: 'CLOSE_WAIT' }); // 11
    await engine.updateConnection(id, { state: 'ESTABLISHED' }); // 12 (an explicit state)
    expect(engine.state.syncOut).toBeNull();
    const got: SyncEntry[][] = [];
    engine.setSyncListener((entries) => got.push(entries));
    await engine.listConnections();
    await engine.tick();
    expect(got).toEqual([]); // nothing stale handed over
    await engine.updateConnection(id, { inPackets: 40 }); // 13..52
    expect(got).toEqual([]);
    await engine.updateConnection(id, { inPackets: 1 }); // 53
    expect(got).toEqual([[ES]]);
    engine.setSyncListener(null);
    await engine.updateConnection(id, { inPackets: 50 }); // ∋ 103
    expect(got).toHaveLength(1);
    engine.setSyncListener((entries) => got.push(entries));
    await engine.tick();
    expect(got).toHaveLength(1);
  });
});
