/**
 * loadConfig (src/config.ts): defaults, flags over environment variables, and a ConfigError naming
 * the variable for each bad value; a start with IPVS_RULES_FILE loads ipvsadm-save text.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { startService } from '../../src/main.js';
import { fetchJson, silentLogger } from '../helpers/api.js';
import { startRedisServer, type RedisServer } from '../helpers/redis-server.js';

const dir = mkdtempSync(join(tmpdir(), 'ipvs-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configError(env: Record<string, string>, argv: string[] = []): string {
  try {
    loadConfig(env, argv);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(env)} ${argv.join(' ')}`);
}

describe('loadConfig', () => {
  it('defaults', () => {
    expect(loadConfig({}, [])).toEqual({
      host: '127.0.0.1',
      httpPort: 8080,
      grpcPort: 50051,
      logLevel: 'info',
      clock: 'system',
      adminToken: undefined,
      rulesFile: undefined,
      rules: undefined,
      redisUrl: undefined,
      redisClusterNodes: undefined,
      syncRedisUrl: undefined,
      bodyLimit: 1 << 20,
    });
  });

  it('reads the environment; empty values count as unset', () => {
    const config = loadConfig({
      HOST: '0.0.0.0',
      HTTP_PORT: '9080',
      GRPC_PORT: '0',
      LOG_LEVEL: 'debug',
      IPVS_CLOCK: 'manual',
      IPVS_ADMIN_TOKEN: 'long-enough-token',
      IPVS_BODY_LIMIT: '4096',
      REDIS_URL: 'redis://r:6379',
      REDIS_CLUSTER_NODES: 'a:1, b:2,,',
      SYNC_REDIS_URL: '',
    });
    expect(config).toMatchObject({
      host: '0.0.0.0',
      httpPort: 9080,
      grpcPort: 0,
      logLevel: 'debug',
      clock: 'manual',
      adminToken: 'long-enough-token',
      bodyLimit: 4096,
      redisUrl: 'redis://r:6379',
      redisClusterNodes: ['a:1', 'b:2'],
      syncRedisUrl: 'redis://r:6379',
    });
    expect(loadConfig({ HTTP_PORT: '', LOG_LEVEL: '' })).toMatchObject({ httpPort: 8080, logLevel: 'info' });
    expect(loadConfig({ REDIS_URL: 'redis://a', SYNC_REDIS_URL: 'redis://b' }).syncRedisUrl).toBe(
      'redis://b',
    );
  });

  it('flags override the environment (--flag value and --flag=value)', () => {
    const config = loadConfig({ HTTP_PORT: '8000', GRPC_PORT: '9000', LOG_LEVEL: 'warn', HOST: '10.0.0.1' }, [
      '--http-port',
      '8001',
      '--grpc-port=9001',
      '--log-level',
      'error',
      '--clock=manual',
      '--admin-token',
      'another-long-token',
    ]);
    expect(config).toMatchObject({
      httpPort: 8001,
      grpcPort: 9001,
      logLevel: 'error',
      clock: 'manual',
      adminToken: 'another-long-token',
      host: '10.0.0.1',
    });
  });

  it.each([
    [{ HTTP_PORT: 'abc' }, 'HTTP_PORT'],
    [{ HTTP_PORT: '65536' }, 'HTTP_PORT'],
    [{ HTTP_PORT: '-1' }, 'HTTP_PORT'],
    [{ HTTP_PORT: '80.5' }, 'HTTP_PORT'],
    [{ HTTP_PORT: '123456' }, 'HTTP_PORT'],
    [{ GRPC_PORT: '99999' }, 'GRPC_PORT'],
    [{ GRPC_PORT: ' 80' }, 'GRPC_PORT'],
    [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL'],
    [{ LOG_LEVEL: 'INFO' }, 'LOG_LEVEL'],
    [{ IPVS_CLOCK: 'fake' }, 'IPVS_CLOCK'],
    [{ IPVS_ADMIN_TOKEN: 'short' }, 'IPVS_ADMIN_TOKEN'],
    [{ IPVS_BODY_LIMIT: '10' }, 'IPVS_BODY_LIMIT'],
    [{ IPVS_BODY_LIMIT: 'lots' }, 'IPVS_BODY_LIMIT'],
    [{ IPVS_RULES_FILE: '/nonexistent/ipvs.rules' }, 'IPVS_RULES_FILE'],
  ])('%o → ConfigError naming %s', (env, variable) => {
    const message = configError(env as Record<string, string>);
    expect(message).toContain(variable);
    const value = Object.values(env)[0] as string;
    if (variable !== 'IPVS_ADMIN_TOKEN') expect(message).toContain(JSON.stringify(value));
  });

  it('a bad value given as a flag is reported under the variable it sets', () => {
    expect(configError({}, ['--http-port', 'x'])).toContain('HTTP_PORT');
    expect(configError({}, ['--grpc-port=70000'])).toContain('GRPC_PORT');
    expect(configError({}, ['--log-level', 'loud'])).toContain('LOG_LEVEL');
    expect(configError({}, ['--clock', 'sundial'])).toContain('IPVS_CLOCK');
    expect(configError({}, ['--admin-token=abc'])).toContain('IPVS_ADMIN_TOKEN');
    // A flag replaces the variable's value before it is checked.
    expect(loadConfig({ HTTP_PORT: 'bad' }, ['--http-port', '80']).httpPort).toBe(80);
  });

  it('unknown flags, flags without a value and stray arguments are refused', () => {
    expect(configError({}, ['--htp-port', '80'])).toMatch(/unknown flag --htp-port/);
    expect(configError({}, ['--http-port'])).toMatch(/--http-port needs a value/);
    expect(configError({}, ['serve'])).toMatch(/unexpected argument "serve"/);
  });
});

describe('a start with IPVS_RULES_FILE', () => {
  const RULES = [
    '-A -t 10.0.0.1:80 -s rr',
    '-a -t 10.0.0.1:80 -r 10.1.0.2:80 -m -w 1',
    '-a -t 10.0.0.1:80 -r 10.1.0.3:80 -g -w 2',
    '-A -u [2001:db8::1]:53 -s wlc -p 300 -M 64',
    '-A -f 42 -s sh',
    '',
  ].join('\n');

  it('loads the ipvsadm-save text before serving', async () => {
    const file = join(dir, 'ipvs.rules');
    writeFileSync(file, RULES);
    const config = loadConfig({ HOST: '127.0.0.1', HTTP_PORT: '0', GRPC_PORT: '0', IPVS_RULES_FILE: file });
    expect(config.rules).toBe(RULES);
    expect(config.rulesFile).toBe(file);
    const svc = await startService(config, silentLogger());
    try {
      const base = `http://127.0.0.1:${svc.httpPort}`;
      const services = (await fetchJson(base, 'GET', '/v1/services')).body.services;
      expect(services.map((s: { key: string }) => s.key).sort()).toEqual([
        'fwm:42',
        'tcp:10.0.0.1:80',
        'udp:[2001:db8::1]:53',
      ]);
      const tcp = services.find((s: { key: string }) => s.key === 'tcp:10.0.0.1:80');
      expect(tcp.destinations).toHaveLength(2);
      const udp = services.find((s: { key: string }) => s.key === 'udp:[2001:db8::1]:53');
      expect(udp.persistence).toEqual({ timeout: 300, netmask: '64' });
      const saved = (await fetchJson(base, 'GET', '/v1/rules')).text;
      for (const line of RULES.split('\n').filter(Boolean)) expect(saved).toContain(line);
    } finally {
      await svc.stop();
    }
  });

  it('a bad rules file stops the start with an error naming the line', async () => {
    const file = join(dir, 'bad.rules');
    writeFileSync(file, '-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.0.2:80 -w 70000\n');
    const config = loadConfig({ HOST: '127.0.0.1', HTTP_PORT: '0', GRPC_PORT: '0', IPVS_RULES_FILE: file });
    await expect(startService(config, silentLogger())).rejects.toThrow(/line 2/);
  });

  it('REDIS_URL / REDIS_CLUSTER_NODES: a malformed value is refused naming the variable', () => {
    for (const bad of ['localhost:6379', 'http://r:6379', 'redis://', 'redis://r:70000', 'not a url'])
      expect(configError({ REDIS_URL: bad })).toMatch(/^REDIS_URL must be a redis:\/\/host:port URL/);
    for (const bad of ['a', 'a:b', 'a:70000', ',', 'a:1,b', 'redis://a:1'])
      expect(configError({ REDIS_CLUSTER_NODES: bad })).toMatch(
        /^REDIS_CLUSTER_NODES must be a comma-separated/,
      );
    expect(loadConfig({ REDIS_URL: 'rediss://user:pw@r.example:6380/2' }).redisUrl).toBe(
      'rediss://user:pw@r.example:6380/2',
    );
    expect(loadConfig({ REDIS_CLUSTER_NODES: '[::1]:7000,10.0.0.1:7001' }).redisClusterNodes).toEqual([
      '[::1]:7000',
      '10.0.0.1:7001',
    ]);
  });
});

describe('a start with REDIS_URL', () => {
  let redis: RedisServer;
  beforeAll(async () => {
    redis = await startRedisServer();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('selects the redis engine: state in Redis, /readyz 200, and the clock in Redis with IPVS_CLOCK=manual', async () => {
    const config = loadConfig({ HTTP_PORT: '0', GRPC_PORT: '0', REDIS_URL: redis.url, IPVS_CLOCK: 'manual' });
    const svc = await startService(config, silentLogger());
    try {
      const base = `http://127.0.0.1:${svc.httpPort}`;
      expect(svc.handlers.engine.kind).toBe('redis');
      expect((await fetchJson(base, 'GET', '/readyz')).status).toBe(200);
      expect((await fetchJson(base, 'POST', '/v1/services', { address: '10.0.0.1', port: 80 })).status).toBe(
        201,
      );
      expect(await redis.admin().hexists('ipvs:{tcp:10.0.0.1:80}:cfg', 'json')).toBe(1);
      const before = (await fetchJson(base, 'GET', '/v1/clock')).body.nowMs as number;
      expect(Number(await redis.admin().get('ipvs:clock'))).toBe(before);
      const after = (await fetchJson(base, 'POST', '/v1/clock/advance', { seconds: 1.5 })).body.nowMs;
      expect(after).toBe(before + 1500);
      expect(Number(await redis.admin().get('ipvs:clock'))).toBe(after);
    } finally {
      await svc.stop();
      await redis.admin().flushall();
    }
  });

  it('starts (not ready) while Redis is unreachable; calls answer 503 UNAVAILABLE naming Redis', async () => {
    const config = loadConfig({ HTTP_PORT: '0', GRPC_PORT: '0', REDIS_URL: 'redis://127.0.0.1:1' });
    const svc = await startService(config, silentLogger());
    try {
      const base = `http://127.0.0.1:${svc.httpPort}`;
      expect((await fetchJson(base, 'GET', '/readyz')).status).toBe(503);
      const r = await fetchJson(base, 'GET', '/v1/services');
      expect(r.status).toBe(503);
      expect(r.body.error).toMatchObject({ code: 'UNAVAILABLE', field: 'redis' });
      expect(r.body.error.message).toMatch(/^redis: /);
    } finally {
      await svc.stop();
    }
  }, 20_000);
});
