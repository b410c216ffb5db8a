/**
 * Which failures mean "Redis is unreachable" (UNAVAILABLE naming Redis) and which stay what they
 * are (a script bug is an internal error; a domain error keeps its code); fail-fast client options.
 */
import { ReplyError } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { IpvsError } from '../../src/domain/errors.js';
import {
  failFastOptions,
  isRedisUnavailable,
  parseNode,
  unavailable,
} from '../../src/engine/redis/client.js';

function named(name: string, message: string, code?: string): Error {
  const err = new Error(message) as NodeJS.ErrnoException;
  err.name = name;
  if (code) err.code = code;
  return err;
}

describe('redis failures', () => {
  it('connection failures and "not now" answers are UNAVAILABLE naming Redis', () => {
    for (const err of [
      new Error("Stream isn't writeable and enableOfflineQueue options is false"),
      new Error('Connection is closed.'),
      new Error('Command timed out'),
      new Error("Cluster isn't ready and enableOfflineQueue options is false"),
      named('MaxRetriesPerRequestError', 'Reached the max retries per request limit (which is 0).'),
      named('ClusterAllFailedError', 'Failed to refresh slots cache.'),
      named('Error', 'connect ECONNREFUSED 127.0.0.1:6379', 'ECONNREFUSED'),
      new ReplyError('LOADING Redis is loading the dataset in memory'),
      new ReplyError('CLUSTERDOWN The cluster is down'),
      new ReplyError('BUSY Redis is busy running a script'),
    ]) {
      expect(isRedisUnavailable(err), err.message).toBe(true);
      const mapped = unavailable(err);
      expect(mapped).toBeInstanceOf(IpvsError);
      expect(mapped).toMatchObject({ code: 'UNAVAILABLE', field: 'redis' });
      expect((mapped as Error).message).toBe(`redis: the state store is unreachable (${err.message})`);
    }
  });

  it('script errors, bugs and domain errors stay as they are', () => {
    const notFound = new IpvsError('NOT_FOUND', 'service: no such service x', 'service');
    for (const err of [
      new ReplyError('ERR user_script:12: attempt to index a nil value'),
      new ReplyError('WRONGTYPE Operation against a key holding the wrong kind of value'),
      new TypeError('x is undefined'),
      notFound,
    ]) {
      expect(isRedisUnavailable(err), err.message).toBe(false);
      expect(unavailable(err)).toBe(err);
    }
    expect(unavailable('not an error')).toBe('not an error');
  });

  it('the client never queues or retries a command', () => {
    expect(failFastOptions()).toMatchObject({
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
    });
  });

  it('cluster seed nodes: host:port and [v6]:port', () => {
    expect(parseNode('10.0.0.1:7000')).toEqual({ host: '10.0.0.1', port: 7000 });
    expect(parseNode(' redis-a:7001 ')).toEqual({ host: 'redis-a', port: 7001 });
    expect(parseNode('[::1]:7002')).toEqual({ host: '::1', port: 7002 });
    for (const bad of ['a', 'a:0', 'a:70000', '::1:7000']) expect(() => parseNode(bad)).toThrow(/host:port/);
  });
});
