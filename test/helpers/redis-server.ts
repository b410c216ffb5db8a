/**
 * A private redis-server for a test file: started on a free loopback port with persistence off,
 * stopped (SIGTERM, then SIGKILL) by `stop()` or `stopAllRedis()`. Never the machine's own Redis.
 *
 *   const redis = await startRedisServer();
 *   ... SYNC_REDIS_URL = redis.url ...
 *   await redis.stop();
 *
 * When redis-server is not installed the start fails with a message saying so (the sync tests need
 * a real Redis; .ci/run installs Debian's redis-server).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { Redis } from 'ioredis';

export interface RedisServer {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  readonly pid: number;
  /** A plain client (not a subscriber) for admin commands; closed by `stop()`. */
  admin(): Redis;
  /** Drops every pub/sub connection (`CLIENT KILL TYPE pubsub`); resolves to how many. */
  killPubsubClients(): Promise<number>;
  /** Sends `signal` (an outage: SIGKILL, SIGTERM) and resolves once the server has exited. */
  kill(signal: NodeJS.Signals): Promise<void>;
  stop(): Promise<void>;
}

export interface RedisServerOptions {
  /** Pins the port (to restart a server where its clients expect it). */
  port?: number;
  /** Keeps an append-only file (fsync always) in `dir`, so the data survives a restart there. */
  appendonly?: boolean;
  /** The working directory (AOF, cluster config); default the OS temp dir. */
  dir?: string;
  /** Extra redis-server arguments (e.g. `--cluster-enabled yes`). */
  extraArgs?: string[];
}

const BINARY = process.env.REDIS_SERVER_BIN || 'redis-server';
const running = new Set<ChildProcess>();

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

async function terminate(child: ChildProcess): Promise<void> {
  const done = exited(child);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
    await done;
    clearTimeout(timer);
  }
  running.delete(child);
}

async function startOnce(
  port: number,
  options: RedisServerOptions,
): Promise<{ child: ChildProcess; output: () => string }> {
  const args = ['--port', String(port), '--save', '', '--bind', '127.0.0.1'];
  if (options.appendonly) args.push('--appendonly', 'yes', '--appendfsync', 'always');
  else args.push('--appendonly', 'no');
  args.push('--dir', options.dir ?? tmpdir(), '--daemonize', 'no', '--loglevel', 'warning');
  args.push(...(options.extraArgs ?? []));
  const child = spawn(BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  running.add(child);
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const failed = new Promise<Error>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) =>
      resolve(
        err.code === 'ENOENT'
          ? new Error(
              `${BINARY} is not installed: the sync tests need a real Redis (apt-get install redis-server, or set REDIS_SERVER_BIN)`,
            )
          : err,
      ),
    );
    child.once('exit', (code, signal) =>
      resolve(new Error(`redis-server exited at start (code ${code}, signal ${signal}):\n${output}`)),
    );
  });
  const until = Date.now() + 10_000;
  while (Date.now() < until) {
    const outcome = await Promise.race([failed, new Promise<'wait'>((r) => setTimeout(() => r('wait'), 20))]);
    if (outcome instanceof Error) {
      running.delete(child);
      throw outcome;
    }
    if (await accepts(port)) return { child, output: () => output };
  }
  await terminate(child);
  throw new Error(`redis-server did not accept connections on port ${port} within 10 s:\n${output}`);
}

/** Starts one; `port` pins the port (to restart a server where its clients expect it). */
export async function startRedisServer(options: RedisServerOptions = {}): Promise<RedisServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < (options.port ? 1 : 3); attempt++) {
    const port = options.port ?? (await freePort());
    let started: { child: ChildProcess };
    try {
      started = await startOnce(port, options);
    } catch (err) {
      lastError = err;
      if ((err as Error).message.includes('not installed')) throw err;
      continue; // the port was taken meanwhile: try another
    }
    const { child } = started;
    const url = `redis://127.0.0.1:${port}`;
    let adminClient: Redis | undefined;
    const admin = () => (adminClient ??= new Redis(url, { maxRetriesPerRequest: 1 }));
    return {
      port,
      url,
      pid: child.pid ?? -1,
      admin,
      async killPubsubClients() {
        return Number(await admin().client('KILL', 'TYPE', 'PUBSUB'));
      },
      async kill(signal: NodeJS.Signals) {
        adminClient?.disconnect();
        adminClient = undefined;
        const done = exited(child);
        child.kill(signal);
        await done;
        running.delete(child);
      },
      async stop() {
        adminClient?.disconnect();
        await terminate(child);
      },
    };
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

/** Stops every redis-server this module started (for an afterAll that must not leak them). */
export async function stopAllRedis(): Promise<void> {
  await Promise.all([...running].map((child) => terminate(child)));
}
