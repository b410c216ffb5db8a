/**
 * The Lua script loader on a real redis-server: every script assembled with its includes and a
 * header; one Functions library registered once and loaded again after FUNCTION FLUSH; the EVALSHA
 * fallback reloaded after SCRIPT FLUSH (NOSCRIPT); and every key a script touches for a service
 * carries that service's hash tag (one slot per call).
 */
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../../src/engine/clock.js';
import { parseConnectionId, scriptKeys, serviceKeys } from '../../src/engine/redis/keys.js';
import { RedisEngine } from '../../src/engine/redis/redis-engine.js';
import { LUA_DIR, readScripts, ScriptRunner } from '../../src/engine/redis/scripts.js';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { usePrivateRedis } from '../helpers/private-redis.js';

const redis = usePrivateRedis();

async function workload(engine: RedisEngine, clock: ManualClock): Promise<void> {
  for (const scheduler of ['wlc', 'rr', 'wrr', 'sh', 'mh', 'lblcr', 'twos']) {
    const port = 8000 + ['wlc', 'rr', 'wrr', 'sh', 'mh', 'lblcr', 'twos'].indexOf(scheduler);
    const svc = await engine.addService({
      address: '10.0.0.1',
      port,
      scheduler,
      persistence: { timeout: 60 },
    });
    await engine.addDestination(svc.key, { address: '10.1.0.1', weight: 2 });
    await engine.addDestination(svc.key, { address: '10.1.0.2', weight: 1 });
    const r = await engine.schedule({ client: '192.168.1.1:40000', virtual: `10.0.0.1:${port}` });
    await engine.updateConnection(r.connection, { event: { direction: 'out', flag: 'ack' } });
    await engine.editDestination(svc.key, '10.1.0.2:' + port, { weight: 3 });
    await engine.deleteDestination(svc.key, '10.1.0.1:' + port);
    await engine.closeConnection(r.connection);
  }
  clock.advance(400_000);
  await engine.tick();
}

describe('redis engine scripts', () => {
  it('assembles every operation script with its includes and a KEYS/ARGV header', () => {
    const scripts = readScripts();
    for (const name of [
      'schedule',
      'update-connection',
      'close-connection',
      'sweep',
      'read',
      'add-service',
      'edit-service',
      'delete-service',
      'add-dest',
      'edit-dest',
      'delete-dest',
      'zero-stats',
    ]) {
      const s = scripts.get(name);
      expect(s, name).toBeDefined();
      expect(s!.numberOfKeys).toBe(1);
      expect(s!.source).toMatch(/KEYS\[1/);
      expect(s!.source).toMatch(/ARGV\[1/);
      expect(s!.source).not.toMatch(/@include/);
      expect(s!.source).toContain('local function commit()');
    }
  });

  it('includes never read KEYS or ARGV themselves (a Functions library passes them to each function)', () => {
    const dir = join(LUA_DIR, 'includes');
    for (const file of readdirSync(dir)) {
      const code = readFileSync(join(dir, file), 'utf8')
        .replace(/--\[\[[\s\S]*?\]\]/g, '')
        .replace(/--.*$/gm, '');
      expect(code, file).not.toMatch(/\b(KEYS|ARGV)\b/);
    }
  });

  it('registers one Functions library once and loads it again after FUNCTION FLUSH', async () => {
    const clock = new ManualClock(1_000_000_000);
    const engine = new RedisEngine({ redis: redis.client, clock, prefix: 'flush:' });
    await engine.addService({ address: '10.0.0.9', port: 80 });
    const lib = engine.scripts.library;
    expect(lib.functions.size).toBe(engine.scripts.scripts.size);
    const names = async () =>
      ((await redis.client.call('FUNCTION', 'LIST')) as unknown[][]).map((entry) => String(entry[1]));
    expect(await names()).toContain(lib.name);
    await redis.client.call('FUNCTION', 'FLUSH');
    expect(await names()).not.toContain(lib.name);
    const d = await engine.addDestination('tcp:10.0.0.9:80', { address: '10.1.0.1' });
    expect(d.key).toBe('10.1.0.1:80');
    expect(await names()).toContain(lib.name);
    await engine.close();
  });

  it('falls back to EVALSHA (SCRIPT LOAD once, EVAL again after NOSCRIPT) from the same sources', async () => {
    const runner = new ScriptRunner(redis.client, undefined, 'evalsha');
    expect(await runner.load()).toBe('evalsha');
    const keys = scriptKeys('evalsha:', 'tcp:10.0.0.9:80');
    const argv = [1_000_000, '0 0 1 0 1800 86400 900 120 300', '1', '0', '0', '0'];
    const sha = runner.scripts.get('read')!.sha;
    expect(await redis.client.script('EXISTS', sha)).toEqual([1]);
    await redis.client.script('FLUSH');
    expect(JSON.parse(String(await runner.run('read', keys, argv)))).toEqual({ ok: true, rates: '' });
    expect(await redis.client.script('EXISTS', sha)).toEqual([1]);
  });

  it('connection ids carry the service key and the entry kind', async () => {
    const clock = new ManualClock(1_000_000_000);
    const engine = new RedisEngine({ redis: redis.client, clock, prefix: 'ids:' });
    await engine.addService({ protocol: 'udp', address: '10.0.0.9', port: 53, persistence: {} });
    await engine.addDestination('udp:10.0.0.9:53', { address: '10.1.0.1' });
    const r = await engine.schedule({ protocol: 'udp', client: '192.168.1.1:1000', virtual: '10.0.0.9:53' });
    expect(parseConnectionId(r.connection)).toMatchObject({ service: 'udp:10.0.0.9:53', kind: 'udp' });
    expect(parseConnectionId(r.template)).toMatchObject({ service: 'udp:10.0.0.9:53', kind: 'ip' });
    await engine.close();
  });

  it('every key a script touches shares the hash tag of the service the call is for', async () => {
    const clock = new ManualClock(1_000_000_000);
    // no config subscriber: its SUBSCRIBE racing the MONITOR start confuses ioredis's monitor mode
    const engine = new RedisEngine({ redis: redis.client, clock, prefix: 'slot:', listen: false });
    await engine.scripts.load();
    const monitor = await redis.client.monitor();
    const seen: { source: string; args: string[] }[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => seen.push({ source, args }));
    try {
      await workload(engine, clock);
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      // a monitor left connected outlives a failed test (and its process would not exit)
      monitor.disconnect();
    }
    let tag: string | undefined;
    let checked = 0;
    for (const { source, args } of seen) {
      const command = args[0].toLowerCase();
      if (source !== 'lua') {
        if (command === 'evalsha' || command === 'fcall') tag = /\{[^}]*\}/.exec(args[3])?.[0];
        continue;
      }
      expect(tag).toBeDefined();
      const keys = command === 'del' ? args.slice(1) : [args[1]];
      for (const key of keys) {
        expect(key.startsWith('slot:' + tag!), `${args.join(' ')} within a call for ${tag}`).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(100);
    // and the fixed keys a call declares are the service's own
    for (const key of serviceKeys('slot:', 'tcp:10.0.0.1:8000'))
      expect(key.startsWith('slot:{tcp:10.0.0.1:8000}:')).toBe(true);
    await engine.close();
  });
});
