/**
 * A private redis-server and a plain client for one test file: started before its tests, stopped
 * after them (never the machine's own Redis).
 *
 *   const redis = usePrivateRedis();
 *   it('…', async () => { await redis.client.set('k', 'v'); });
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll } from 'vitest';
import { startRedisServer, type RedisServer } from './redis-server.js';

export interface PrivateRedis {
  /** Available inside tests (after beforeAll). */
  readonly client: Redis;
  readonly server: RedisServer;
}

export function usePrivateRedis(): PrivateRedis {
  let server: RedisServer | undefined;
  let client: Redis | undefined;
  beforeAll(async () => {
    server = await startRedisServer();
    client = new Redis(server.url, { maxRetriesPerRequest: 1 });
  });
  afterAll(async () => {
    client?.disconnect();
    await server?.stop();
  });
  return {
    get client() {
      if (!client) throw new Error('usePrivateRedis: the client exists only inside tests');
      return client;
    },
    get server() {
      if (!server) throw new Error('usePrivateRedis: the server exists only inside tests');
      return server;
    },
  };
}
