/**
 * Conn-sync between directors in this process (ipvs-semantics.md §7, ARCHITECTURE.md "Conn-sync"):
 * each director is a MemoryEngine with its own SyncManager, and the channel is a real redis-server
 * started for this file. What the master sends follows the kernel's rules (the engine's); the
 * backup applies it idempotently; beyond the kernel, sequence numbers reveal lost messages and a
 * resync (snapshot) repairs them, and a late backup catches up.
 */
import { create } from '@bufbuild/protobuf';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { IpvsError } from '../../src/domain/errors.js';
import { systemClock } from '../../src/engine/clock.js';
import type { Connection, Engine } from '../../src/engine/engine.js';
import { MemoryEngine } from '../../src/engine/memory/memory-engine.js';
import { SyncMessageSchema } from '../../src/gen/ipvs/v1/sync_pb.js';
import { restoreRules } from '../../src/ipvsadm/apply.js';
import { channelOf } from '../../src/sync/channel.js';
import { decodeMessage, encodeMessage } from '../../src/sync/codec.js';
import { SyncManager, type SyncManagerOptions } from '../../src/sync/daemon.js';
import type { SyncDaemonView, SyncHealthView } from '../../src/sync/health.js';
import { startRedisServer, stopAllRedis, type RedisServer } from '../helpers/redis-server.js';

/** rr so that a director that did not get the templates would choose differently. */
const RULES = `-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 1
-a -t 10.0.0.1:80 -r 10.1.0.2:80 -m -w 1
-A -t 10.0.0.2:80 -s rr -p 300
-a -t 10.0.0.2:80 -r 10.1.0.1:80 -m -w 1
-a -t 10.0.0.2:80 -r 10.1.0.2:80 -m -w 1
-a -t 10.0.0.2:80 -r 10.1.0.3:80 -m -w 1
`;
const PLAIN = '10.0.0.1:80';
const PERSISTENT = '10.0.0.2:80';

let redis: RedisServer;
const managers: SyncManager[] = [];
const engines: MemoryEngine[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
});

afterEach(async () => {
  await Promise.all(managers.splice(0).map((m) => m.close()));
  await Promise.all(engines.splice(0).map((e) => e.close()));
});

afterAll(async () => {
  await redis?.stop();
  await stopAllRedis();
});

interface Director {
  engine: MemoryEngine;
  sync: SyncManager;
}

async function director(id: string, options: Partial<SyncManagerOptions> = {}): Promise<Director> {
  const engine = new MemoryEngine({ clock: systemClock });
  engines.push(engine);
  await restoreRules(RULES, engine);
  const sync = new SyncManager({
    engine,
    redisUrl: redis.url,
    directorId: id,
    resyncRetryMs: 100,
    ...options,
  });
  managers.push(sync);
  return { engine, sync };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 5000,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function daemon(d: Director, role: 'master' | 'backup'): SyncDaemonView {
  const found = d.sync.list().find((x) => x.role === role);
  if (!found) throw new Error(`no ${role} daemon`);
  return found;
}
const health = (d: Director, role: 'master' | 'backup'): SyncHealthView => daemon(d, role).health;

/** The entries as a backup must reproduce them (ids and expiry are each director's own). */
async function entries(engine: Engine, origin?: 'local' | 'sync'): Promise<string[]> {
  const list = await engine.listConnections();
  return list
    .filter((c: Connection) => origin === undefined || c.origin === origin)
    .map(
      (c) => `${c.template ? 'T' : 'C'} ${c.protocol} ${c.client} ${c.virtual} → ${c.destination} ${c.state}`,
    )
    .sort();
}

/** active/inactive/persistent per destination of every service. */
async function counters(engine: Engine): Promise<Record<string, [number, number, number]>> {
  const out: Record<string, [number, number, number]> = {};
  for (const s of await engine.listServices())
    for (const d of s.destinations)
      out[`${s.key} ${d.key}`] = [d.activeConns, d.inactiveConns, d.persistentConns];
  return out;
}

/** A client connection through three incoming packets (sent on the third, §7.2) to ESTABLISHED. */
async function established(engine: Engine, client: string, virtual = PLAIN): Promise<string> {
  const r = await engine.schedule({ client, virtual });
  await engine.updateConnection(r.connection, { state: 'ESTABLISHED' });
  await engine.updateConnection(r.connection, { state: 'ESTABLISHED' });
  return r.connection;
}

async function sameEntries(backup: Engine, master: Engine, what: string): Promise<void> {
  const want = await entries(master);
  await waitFor(what, async () => JSON.stringify(await entries(backup)) === JSON.stringify(want));
}

describe('master → backup', () => {
  it('connections are sent on their 3rd packet and on closing transitions; templates on every packet', async () => {
    const a = await director('A');
    const b = await director('B');
    await a.sync.start({ role: 'master', syncid: 5 });
    await b.sync.start({ role: 'backup', syncid: 5 });
    await waitFor('the start snapshot', () => health(b, 'backup').snapshotsApplied === 1);

    // SYN_RECV, then ESTABLISHED on the 2nd packet: not sent yet.
    const r = await a.engine.schedule({ client: '192.168.1.1:40001', virtual: PLAIN });
    await a.engine.updateConnection(r.connection, { event: { direction: 'in', flag: 'ack' } });
    await sleep(80);
    expect(await entries(b.engine)).toEqual([]);
    expect(health(a, 'master').entriesSent).toBe(0);

    // 3rd packet: sent.
    await a.engine.updateConnection(r.connection, { event: { direction: 'in', flag: 'ack' } });
    await waitFor('the ESTABLISHED entry', async () => (await entries(b.engine)).length === 1);
    expect(await entries(b.engine)).toEqual(await entries(a.engine));
    expect((await b.engine.listConnections())[0]).toMatchObject({ state: 'ESTABLISHED', origin: 'sync' });

    // A closing transition goes out at once.
    await a.engine.updateConnection(r.connection, { state: 'FIN_WAIT' });
    await waitFor('FIN_WAIT on the backup', async () => (await entries(b.engine))[0]?.endsWith('FIN_WAIT'));
    expect(await counters(b.engine)).toEqual(await counters(a.engine));

    // A persistent service: the template goes out with the first packet of its connection, and
    // again with every packet of every connection it controls.
    const sentBefore = health(a, 'master').entriesSent ?? 0;
    const p = await a.engine.schedule({ client: '192.168.7.7:50000', virtual: PERSISTENT });
    await waitFor('the template', async () => (await entries(b.engine)).some((e) => e.startsWith('T ')));
    expect(health(a, 'master').entriesSent).toBe(sentBefore + 1);
    await a.engine.updateConnection(p.connection, { state: 'ESTABLISHED' });
    await a.engine.updateConnection(p.connection, { state: 'ESTABLISHED' });
    const q = await a.engine.schedule({ client: '192.168.7.7:50001', virtual: PERSISTENT });
    await a.engine.updateConnection(q.connection, { state: 'ESTABLISHED' });
    await a.engine.updateConnection(q.connection, { state: 'ESTABLISHED' });
    // the template with each of the 6 packets, each connection once (its 3rd packet)
    await waitFor('every send', () => health(a, 'master').entriesSent === sentBefore + 8);
    await sameEntries(b.engine, a.engine, 'both connections and the template');
    expect(await counters(b.engine)).toEqual(await counters(a.engine));
    expect((await b.engine.listConnections()).every((c) => c.origin === 'sync')).toBe(true);

    const m = health(a, 'master');
    const h = health(b, 'backup');
    // The backup received what the master sent (entries and the start snapshot), all applied.
    expect(h.messagesReceived).toBe(m.messagesSent);
    expect(h.entriesReceived).toBe(m.entriesSent);
    expect(h.entriesApplied).toBe(m.entriesSent);
    expect([h.entriesUnbound, h.entriesIgnored, h.gaps]).toEqual([0, 0, 0]);
    expect(h.directors).toEqual([
      expect.objectContaining({ directorId: 'A', syncid: 5, lastSequence: m.lastSequence, gaps: 0 }),
    ]);
    expect(h.lagMs).toBeGreaterThanOrEqual(0);
    expect(h.lagP99Ms).toBeGreaterThanOrEqual(h.lagP50Ms ?? 0);
  });

  it('batches by size (maxlen) and by delay, each message numbered', async () => {
    const sizes: number[] = [];
    const kinds: string[] = [];
    const a = await director('A', {
      channel: {
        dropOnPublish: (payload) => {
          const m = decodeMessage(payload);
          kinds.push(`${m.body.case}:${m.sequence}`);
          if (m.body.case === 'entries') sizes.push(payload.length);
          return false;
        },
      },
    });
    const b = await director('B');
    await a.sync.start({ role: 'master', syncid: 11, maxlen: 300 });
    expect(daemon(a, 'master').syncMaxlen).toBe(300);
    await b.sync.start({ role: 'backup', syncid: 11 });
    await waitFor('the start snapshot', () => health(b, 'backup').snapshotsApplied === 1);
    // 40 new clients of a persistent service within the send delay: 40 templates, batched into a
    // few messages of at most 300 bytes each.
    for (let i = 0; i < 40; i++)
      await a.engine.schedule({ client: `192.168.3.${i}:1000`, virtual: PERSISTENT });
    const templates = async (e: Engine) => (await entries(e)).filter((x) => x.startsWith('T '));
    expect(await templates(a.engine)).toHaveLength(40);
    await waitFor('40 templates', async () => (await templates(b.engine)).length === 40);
    expect(await templates(b.engine)).toEqual(await templates(a.engine));
    expect(sizes.length).toBeGreaterThan(1);
    expect(sizes.length).toBeLessThan(40);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(300);
    // Sequence numbers run 1, 2, 3 … over every message the director published on the channel.
    expect(kinds.map((k) => Number(k.split(':')[1]))).toEqual(kinds.map((_, i) => i + 1));
    const m = health(a, 'master');
    expect(m.lastSequence).toBe(kinds.length);
    expect(health(b, 'backup').directors?.[0].lastSequence).toBe(kinds.length);
  });

  it('syncid isolation: a backup of 6 sees nothing of master 5; a backup of 0 sees every syncid; own messages are ignored', async () => {
    const a = await director('A');
    const six = await director('SIX');
    const zero = await director('ZERO');
    const d = await director('D');
    await a.sync.start({ role: 'master', syncid: 5 });
    await a.sync.start({ role: 'backup', syncid: 5 }); // hears its own master: ignores it
    await six.sync.start({ role: 'backup', syncid: 6 });
    await zero.sync.start({ role: 'backup', syncid: 0 });
    expect(daemon(zero, 'backup').channel).toBe('ipvs:sync:*');

    for (let i = 1; i <= 3; i++) await established(a.engine, `192.168.5.${i}:1000`);
    await sameEntries(zero.engine, a.engine, 'syncid 0 gets syncid 5');
    await sleep(50);
    expect(await entries(six.engine)).toEqual([]);
    expect(health(six, 'backup')).toMatchObject({ messagesReceived: 0, entriesReceived: 0 });

    const own = health(a, 'backup');
    expect(own.messagesIgnored).toBeGreaterThanOrEqual(1);
    expect(own).toMatchObject({ messagesReceived: 0, entriesApplied: 0, gaps: 0 });
    expect((await a.engine.listConnections()).every((c) => c.origin === 'local')).toBe(true);

    // A master on syncid 6 reaches the backup of 6, and the backup of 0 too.
    await d.sync.start({ role: 'master', syncid: 6 });
    await established(d.engine, '192.168.6.1:1000');
    await waitFor('syncid 6 on its backup', async () => (await entries(six.engine)).length === 1);
    await waitFor('syncid 6 on backup 0', async () => (await entries(zero.engine)).length === 4);
    expect(await entries(six.engine)).toEqual(await entries(d.engine));
    expect(
      health(zero, 'backup')
        .directors?.map((p) => `${p.directorId}/${p.syncid}`)
        .sort(),
    ).toEqual(['A/5', 'D/6']);
  });
});

describe('lost messages', () => {
  it('a dropped message is a gap: the backup asks for a resync and ends with exactly the master’s entries', async () => {
    let dropNext = false;
    let dropped = 0;
    const a = await director('A', {
      channel: {
        dropOnPublish: (payload) => {
          if (!dropNext || decodeMessage(payload).body.case !== 'entries') return false;
          dropNext = false;
          dropped++;
          return true;
        },
      },
    });
    const b = await director('B');
    await a.sync.start({ role: 'master', syncid: 5 });
    await b.sync.start({ role: 'backup', syncid: 5 });
    await waitFor('the start snapshot', () => health(b, 'backup').snapshotsApplied === 1);
    await established(a.engine, '192.168.1.1:1000');
    await sameEntries(b.engine, a.engine, 'the first connection');

    dropNext = true;
    await established(a.engine, '192.168.1.2:1000');
    await waitFor('the drop', () => dropped === 1);
    await sleep(60);
    expect(await entries(b.engine)).toHaveLength(1); // lost, and nobody knows yet
    expect(health(b, 'backup').gaps).toBe(0);

    await established(a.engine, '192.168.1.3:1000'); // the next message shows the gap
    await sameEntries(b.engine, a.engine, 'the repair');
    const h = health(b, 'backup');
    expect(h.gaps).toBe(1);
    expect(h.directors?.[0].gaps).toBe(1);
    expect(h.resyncsRequested).toBeGreaterThanOrEqual(2); // start + gap
    expect(h.snapshotsApplied).toBeGreaterThanOrEqual(2);
    expect(health(a, 'master').resyncRequestsServed).toBeGreaterThanOrEqual(2);
    expect(await counters(b.engine)).toEqual(await counters(a.engine));
  });

  it('a skipped sequence number of any director is counted and a resync is asked of that director', async () => {
    const b = await director('B');
    await b.sync.start({ role: 'backup', syncid: 12 });
    const watcher = new Redis(redis.url);
    const requests: { director: string; reason: string; from: string }[] = [];
    watcher.on('messageBuffer', (_channel: Buffer, payload: Buffer) => {
      const m = decodeMessage(payload);
      if (m.body.case === 'resyncRequest') {
        const { director, reason } = m.body.value;
        requests.push({ director, reason, from: m.directorId });
      }
    });
    try {
      await watcher.subscribe(channelOf(12));
      const publisher = redis.admin();
      const send = (sequence: bigint) =>
        publisher.publish(
          channelOf(12),
          Buffer.from(
            encodeMessage(
              create(SyncMessageSchema, {
                directorId: 'fake',
                syncid: 12,
                sequence,
                sentAtMs: BigInt(Date.now()),
                body: { case: 'entries', value: { entries: [] } },
              }),
            ),
          ),
        );
      await send(1n);
      await send(2n);
      await send(5n);
      await waitFor('the gap', () => health(b, 'backup').gaps === 1);
      await waitFor('the request', () => requests.some((r) => r.director === 'fake' && r.reason === 'gap'));
      expect(requests.every((r) => r.from === 'B')).toBe(true);
      expect(requests.find((r) => r.director === 'fake')).toEqual({
        director: 'fake',
        reason: 'new-director',
        from: 'B',
      });
      expect(health(b, 'backup').directors).toEqual([
        expect.objectContaining({ directorId: 'fake', lastSequence: 5, gaps: 1, messagesReceived: 3 }),
      ]);
    } finally {
      watcher.disconnect();
    }
  });

  it('a backup started late catches up through a snapshot in several parts', async () => {
    const a = await director('A');
    await a.sync.start({ role: 'master', syncid: 7 });
    for (let i = 0; i < 1500; i++) {
      const client = `172.${16 + (i >> 8)}.${i & 255}.9:2000`;
      await established(a.engine, client, i % 2 === 0 ? PLAIN : PERSISTENT);
    }
    await sleep(60); // the last batch is out (send delay 20 ms) before the backup listens
    const b = await director('B');
    await b.sync.start({ role: 'backup', syncid: 7 });
    await sameEntries(b.engine, a.engine, '2250 entries');
    expect(await counters(b.engine)).toEqual(await counters(a.engine));
    const m = health(a, 'master');
    expect(m.snapshotsSent).toBe(1);
    const h = health(b, 'backup');
    expect(h.snapshotsApplied).toBe(1);
    expect(h.messagesReceived).toBeGreaterThan(1); // parts
    expect(h.entriesApplied).toBe(2250);
    expect(h.gaps).toBe(0);
  });

  it('pub/sub reconnect: messages published while the subscriber is away are repaired by the resync', async () => {
    const retryDelayMs = () => 300;
    const a = await director('A', { channel: { retryDelayMs } });
    const b = await director('B', { channel: { retryDelayMs } });
    await a.sync.start({ role: 'master', syncid: 8 });
    await b.sync.start({ role: 'backup', syncid: 8 });
    await waitFor('the start snapshot', () => health(b, 'backup').snapshotsApplied === 1);
    await established(a.engine, '192.168.8.1:1000');
    await sameEntries(b.engine, a.engine, 'the first connection');

    expect(await redis.killPubsubClients()).toBe(2);
    await waitFor('the loss to show', () => daemon(b, 'backup').state === 'connecting', 1000);
    for (let i = 2; i <= 6; i++) await established(a.engine, `192.168.8.${i}:1000`);
    await sleep(40);
    expect(await entries(b.engine)).toHaveLength(1); // published to nobody

    await sameEntries(b.engine, a.engine, 'the resync after the reconnect');
    const h = health(b, 'backup');
    expect(h.reconnects).toBe(1);
    expect(daemon(b, 'backup').state).toBe('running');
    expect(h.snapshotsApplied).toBeGreaterThanOrEqual(2);
    expect(await counters(b.engine)).toEqual(await counters(a.engine));
  });
});

describe('Redis goes away', () => {
  it('a restarted Redis: the daemons show "connecting", come back by themselves, and the backup catches up', async () => {
    const own = await startRedisServer();
    try {
      const options = { redisUrl: own.url, channel: { retryDelayMs: () => 100 } };
      const a = await director('A', options);
      const b = await director('B', options);
      await a.sync.start({ role: 'master', syncid: 4 });
      await b.sync.start({ role: 'backup', syncid: 4 });
      await waitFor('the start snapshot', () => health(b, 'backup').snapshotsApplied === 1);
      await own.stop();
      await waitFor('both to show the loss', () =>
        [daemon(a, 'master'), daemon(b, 'backup')].every((d) => d.state === 'connecting'),
      );
      for (let i = 1; i <= 4; i++) await established(a.engine, `192.168.4.${i}:1000`);
      // No offline queue: what is published meanwhile fails (and shows as a gap later).
      await waitFor('the publish to fail', () => (health(a, 'master').publishErrors ?? 0) >= 1);
      const again = await startRedisServer({ port: own.port });
      try {
        await sameEntries(b.engine, a.engine, 'the resync after Redis came back');
        expect(daemon(a, 'master').state).toBe('running');
        expect(daemon(b, 'backup').state).toBe('running');
        expect(health(b, 'backup').reconnects).toBe(1);
        expect(await counters(b.engine)).toEqual(await counters(a.engine));
      } finally {
        await again.stop();
      }
      // Stopping does not wait for a Redis that is gone.
      const t0 = Date.now();
      await Promise.all([a.sync.close(), b.sync.close()]);
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      await own.stop();
    }
  });
});

describe('two directors', () => {
  it('two-way: both run master and backup, each ends with the other’s entries, and nothing echoes', async () => {
    const a = await director('A');
    const b = await director('B');
    for (const d of [a, b]) {
      await d.sync.start({ role: 'master', syncid: 9 });
      await d.sync.start({ role: 'backup', syncid: 9 });
    }
    for (let i = 1; i <= 10; i++) {
      await established(a.engine, `192.168.10.${i}:1000`);
      await established(b.engine, `192.168.20.${i}:1000`, PERSISTENT);
    }
    const fromA = await entries(a.engine, 'local');
    const fromB = await entries(b.engine, 'local');
    expect(fromA).toHaveLength(10);
    expect(fromB).toHaveLength(20); // connections and templates
    await waitFor(
      'A has B’s entries',
      async () => JSON.stringify(await entries(a.engine, 'sync')) === JSON.stringify(fromB),
    );
    await waitFor(
      'B has A’s entries',
      async () => JSON.stringify(await entries(b.engine, 'sync')) === JSON.stringify(fromA),
    );

    // A's backup restarts: B's snapshot carries B's entries and its copies of A's; A leaves its own alone.
    await a.sync.stop('backup');
    await a.sync.start({ role: 'backup', syncid: 9 });
    await waitFor('the snapshot of B', () => health(a, 'backup').snapshotsApplied === 1);
    expect(health(a, 'backup')).toMatchObject({ entriesSkipped: 10, entriesApplied: 20 });

    // Quiet once traffic stops: the counters settle and stay.
    const snapshot = () =>
      JSON.stringify(
        [a, b].map((d) =>
          d.sync.list().map((x) => ({ ...x.health, lagMs: 0, lagP50Ms: 0, lagP99Ms: 0, directors: [] })),
        ),
      );
    let last = snapshot();
    await waitFor('quiet', async () => {
      await sleep(150);
      const now = snapshot();
      const same = now === last;
      last = now;
      return same;
    });
    await sleep(500);
    expect(snapshot()).toBe(last);
    // Each director's own entries stayed its own (a snapshot carrying them back is left alone).
    expect(await entries(a.engine, 'local')).toEqual(fromA);
    expect(await entries(b.engine, 'local')).toEqual(fromB);
    for (const d of [a, b]) {
      const m = health(d, 'master');
      const h = health(d, 'backup');
      expect(h.gaps).toBe(0);
      expect(m.messagesSent).toBeLessThan(30);
    }
  });

  it('promotion: the backup stops its backup daemon, starts a master, and persistent clients keep their server', async () => {
    const a = await director('A');
    const b = await director('B');
    await a.sync.start({ role: 'master', syncid: 10 });
    await b.sync.start({ role: 'backup', syncid: 10 });
    const chosen = new Map<string, string>();
    for (let i = 0; i < 30; i++) {
      const ip = `10.20.${i}.5`;
      const r = await a.engine.schedule({ client: `${ip}:3000`, virtual: PERSISTENT });
      chosen.set(ip, r.destination);
    }
    await waitFor(
      '30 templates on B',
      async () => (await b.engine.listConnections({ templates: true })).length === 30,
    );
    await b.sync.stop('backup');
    await b.sync.start({ role: 'master', syncid: 10 });
    expect(b.sync.list().map((d) => d.role)).toEqual(['master']);
    await a.sync.close(); // the old master is gone
    for (const [ip, destination] of chosen) {
      const r = await b.engine.schedule({ client: `${ip}:3001`, virtual: PERSISTENT });
      expect(r.destination, ip).toBe(destination);
      expect(r.persistent).toBe(true);
    }
    // The new master sends like any other.
    await waitFor('B sends', () => (health(b, 'master').entriesSent ?? 0) >= 30);
  });
});

describe('a restarted director', () => {
  it('a master restarted empty (a new director) catches up from its two-way partner', async () => {
    const a = await director('A');
    const b = await director('B');
    for (const d of [a, b]) {
      await d.sync.start({ role: 'master', syncid: 13 });
      await d.sync.start({ role: 'backup', syncid: 13 });
    }
    const chosen = new Map<string, string>();
    for (let i = 0; i < 20; i++) {
      const r = await a.engine.schedule({ client: `10.30.${i}.5:3000`, virtual: PERSISTENT });
      chosen.set(`10.30.${i}.5`, r.destination);
    }
    await waitFor(
      'B holds A’s templates',
      async () => (await b.engine.listConnections({ templates: true })).length === 20,
    );
    await a.sync.close();
    await a.engine.close();

    const a2 = await director('A2'); // the same host after a restart: empty, and a new director id
    await a2.sync.start({ role: 'master', syncid: 13 });
    await a2.sync.start({ role: 'backup', syncid: 13 });
    await waitFor(
      'A2 catches up',
      async () => (await a2.engine.listConnections({ templates: true })).length === 20,
    );
    for (const [ip, destination] of chosen) {
      const r = await a2.engine.schedule({ client: `${ip}:3001`, virtual: PERSISTENT });
      expect(r.destination, ip).toBe(destination);
    }
  });
});

describe('errors', () => {
  const code = async (p: Promise<unknown>) => {
    try {
      await p;
      return 'OK';
    } catch (err) {
      expect(err).toBeInstanceOf(IpvsError);
      const e = err as IpvsError;
      return `${e.code} ${e.field ?? ''}: ${e.message}`;
    }
  };

  it('ipvsadm’s refusals, and what is missing named', async () => {
    const a = await director('A');
    await a.sync.start({ role: 'master', syncid: 3 });
    expect(await code(a.sync.start({ role: 'master', syncid: 4 }))).toMatch(
      /^ALREADY_EXISTS role: .*Daemon has already run/,
    );
    expect(await code(a.sync.stop('backup'))).toMatch(/^NOT_FOUND role: .*No daemon is running/);
    expect(await code(a.sync.start({ role: 'primary' as never }))).toMatch(/^INVALID_ARGUMENT role: /);
    expect(await code(a.sync.start({ role: 'backup', syncid: 256 }))).toMatch(/^INVALID_ARGUMENT syncid: /);
    expect(await code(a.sync.start({ role: 'backup', mcastGroup: '10.0.0.1' }))).toMatch(
      /^INVALID_ARGUMENT mcastGroup: /,
    );
    await a.sync.stop('master');
    expect(await code(a.sync.stop('master'))).toMatch(/^NOT_FOUND role: .*No daemon is running/);
    expect(a.sync.list()).toEqual([]);

    const engine = new MemoryEngine({ clock: systemClock });
    engines.push(engine);
    const none = new SyncManager({ engine, redisUrl: undefined });
    managers.push(none);
    expect(await code(none.start({ role: 'master', syncid: 1 }))).toMatch(
      /^FAILED_PRECONDITION SYNC_REDIS_URL: SYNC_REDIS_URL/,
    );
  });

  it('a backup is clamped to maxlen 1024 at least, as the kernel clamps it', async () => {
    const a = await director('A');
    const view = await a.sync.start({ role: 'backup', syncid: 3, maxlen: 100 });
    expect(view).toMatchObject({
      role: 'backup',
      syncid: 3,
      syncMaxlen: 1024,
      mcastInterface: 'eth0',
      mcastPort: 8848,
    });
  });
});
