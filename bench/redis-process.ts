/**
 * A private redis-server for a benchmark: started on a free loopback port with persistence off and
 * stopped (SIGTERM, then SIGKILL) by `stop()`. Never the machine's own Redis. `REDIS_SERVER_BIN`
 * names another binary. (The same idea as test/helpers/redis-server.ts, kept apart so the benches
 * do not depend on the tests.)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';

export interface RedisProcess {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

const BINARY = process.env.REDIS_SERVER_BIN || 'redis-server';

function freePort(): Promise<number> {
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

async function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 2000);
  await done;
  clearTimeout(timer);
}

async function startOnce(port: number): Promise<ChildProcess> {
  const args = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'];
  args.push('--dir', tmpdir(), '--daemonize', 'no', '--loglevel', 'warning');
  const child = spawn(BINARY, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const failed = new Promise<Error>((resolve) => {
    child.once('error', (err: NodeJS.ErrnoException) =>
      resolve(
        err.code === 'ENOENT'
          ? new Error(`${BINARY} is not installed (apt-get install redis-server, or set REDIS_SERVER_BIN)`)
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
    if (outcome instanceof Error) throw outcome;
    if (await accepts(port)) return child;
  }
  await terminate(child);
  throw new Error(`redis-server did not accept connections on port ${port} within 10 s:\n${output}`);
}

export async function startRedisProcess(): Promise<RedisProcess> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    let child: ChildProcess;
    try {
      child = await startOnce(port);
    } catch (err) {
      lastError = err;
      if ((err as Error).message.includes('not installed')) throw err;
      continue; // the port was taken meanwhile: try another
    }
    return {
      port,
      url: `redis://127.0.0.1:${port}`,
      pid: child.pid ?? -1,
      stop: () => terminate(child),
    };
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}
