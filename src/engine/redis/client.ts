/**
 * The redis engine's connection: one ioredis client (single node, REDIS_URL) or an ioredis Cluster
 * (REDIS_CLUSTER_NODES), both set to fail fast. While Redis is unreachable a command is not queued
 * and not retried: it fails at once (or after `commandTimeout` when Redis stops answering), and the
 * engine turns that into UNAVAILABLE naming Redis. The client reconnects by itself in the
 * background, so a replica recovers when Redis returns, without a restart.
 *
 * A command that was in flight when the connection dropped is failed, never re-sent after the
 * reconnect (autoResendUnfulfilledCommands off): each operation is one script call, so it was either
 * fully applied or not at all, and it is never applied twice by the client.
 */
import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';
import { IpvsError } from '../../domain/errors.js';

export type RedisClient = Redis | Cluster;

/** How long one command may wait for Redis's answer before it fails (ms). */
export const COMMAND_TIMEOUT_MS = 2000;
/** How long a (re)connection attempt may take (ms). */
export const CONNECT_TIMEOUT_MS = 1000;
/** Longest pause between reconnection attempts (ms). */
export const MAX_RECONNECT_DELAY_MS = 1000;

const reconnectDelay = (times: number) => Math.min(50 * times, MAX_RECONNECT_DELAY_MS);

/** Options of a fail-fast single-node client (also each cluster node's connection options). */
export function failFastOptions(): RedisOptions {
  return {
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: CONNECT_TIMEOUT_MS,
    commandTimeout: COMMAND_TIMEOUT_MS,
    retryStrategy: reconnectDelay,
    enableReadyCheck: true,
    enableAutoPipelining: true,
  };
}

/** `host:port` (IPv6 as `[addr]:port`) → ioredis ClusterNode. */
export function parseNode(text: string): ClusterNode {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):([0-9]{1,5})$/.exec(text.trim());
  if (!m || Number(m[3]) < 1 || Number(m[3]) > 65535) throw new Error(`not a host:port: ${text}`);
  return { host: m[1] ?? m[2], port: Number(m[3]) };
}

export function createRedisClient(target: { url: string } | { nodes: readonly string[] }): RedisClient {
  if ('url' in target) return new Redis(target.url, failFastOptions());
  const { enableOfflineQueue: _queue, retryStrategy: _retry, ...nodeOptions } = failFastOptions();
  return new Cluster(target.nodes.map(parseNode), {
    enableOfflineQueue: false,
    enableAutoPipelining: true,
    enableReadyCheck: true,
    clusterRetryStrategy: reconnectDelay,
    retryDelayOnFailover: 100,
    retryDelayOnClusterDown: 100,
    retryDelayOnTryAgain: 100,
    retryDelayOnMoved: 0,
    maxRedirections: 16,
    slotsRefreshTimeout: CONNECT_TIMEOUT_MS,
    redisOptions: nodeOptions,
  });
}

/** Redis answers that mean "not now" (loading, failover, cluster down, busy script, no memory). */
const TRANSIENT_REPLY = /^(LOADING|CLUSTERDOWN|TRYAGAIN|MASTERDOWN|READONLY|BUSY|OOM|NOREPLICAS)\b/;
/** ioredis's own messages for a connection that is down, not ready, or not answering. */
const CONNECTION_MESSAGE =
  /^(Connection is closed|Stream isn't writeable|Command timed out|Cluster isn't ready|None of startup nodes is available|Failed to refresh slots cache|Reached the max retries per request limit|connect ETIMEDOUT|Too many Cluster redirections)/;
const CONNECTION_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** Whether `err` says Redis cannot be reached right now (as opposed to a bug or a bad request). */
export function isRedisUnavailable(err: unknown): err is Error {
  if (!(err instanceof Error) || err instanceof IpvsError) return false;
  if (err.name === 'ReplyError') return TRANSIENT_REPLY.test(err.message);
  if (err.name === 'MaxRetriesPerRequestError' || err.name === 'ClusterAllFailedError') return true;
  const code = (err as NodeJS.ErrnoException).code;
  return CONNECTION_MESSAGE.test(err.message) || (code !== undefined && CONNECTION_CODES.has(code));
}

/** UNAVAILABLE naming Redis for a connection failure; any other error as it was. */
export function unavailable(err: unknown): unknown {
  if (!isRedisUnavailable(err)) return err;
  return new IpvsError('UNAVAILABLE', `redis: the state store is unreachable (${err.message})`, 'redis');
}

/** Runs `fn`, turning a Redis connection failure into UNAVAILABLE. */
export async function guarded<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw unavailable(err);
  }
}
