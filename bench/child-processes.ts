/**
 * The child processes of a bench (servers under load and load generators): every one is tracked so
 * `killChildren()` can end what is left when the bench stops; `startServer` runs a bench server
 * (`node --import tsx <script>` with HOST / HTTP_PORT / GRPC_PORT on free loopback ports) and waits
 * until both ports answer; `cpuSeconds` reads a process's CPU time from /proc.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { freePort } from '../test/helpers/redis-server.js';

/** The repository root: the working directory of every child (scripts are named relative to it). */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Clock ticks per second of /proc/<pid>/stat's utime and stime. */
const CLK_TCK = 100;
/** What a server keeps of its output (each of all / stderr only): the last 64 KiB. */
const KEEP_OUTPUT = 1 << 16;

const live = new Set<ChildProcess>();

/** Spawns `command` in the repository root with stdout and stderr piped, tracked until it exits. */
export function spawnChild(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): ChildProcess {
  const proc = spawn(command, args, { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  proc.on('exit', () => live.delete(proc));
  proc.on('error', () => live.delete(proc));
  return proc;
}

/** SIGKILLs every child still running (the bench's cleanup, also on Ctrl-C). */
export function killChildren(): void {
  for (const proc of live) proc.kill('SIGKILL');
}

/** Whether `command` can be run at all (`args` should make it exit at once, e.g. `--version`). */
export function hasTool(command: string, args: string[]): boolean {
  return spawnSync(command, args, { stdio: 'ignore' }).error === undefined;
}

/** A process's CPU time so far, in seconds (all threads), or NaN without /proc. */
export function cpuSeconds(pid: number | undefined): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return NaN;
  }
}

const tcpOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

/** The last `KEEP_OUTPUT` characters of what was appended. */
function outputTail(): { append: (chunk: string) => void; text: () => string } {
  let text = '';
  return {
    append: (chunk) => {
      text += chunk;
      if (text.length > KEEP_OUTPUT) text = text.slice(-KEEP_OUTPUT);
    },
    text: () => text,
  };
}

export interface Server {
  name: string;
  proc: ChildProcess;
  httpPort: number;
  grpcPort: number;
  /** What it wrote (stdout: pino's warnings and errors at LOG_LEVEL=warn; stderr), the last 64 KiB. */
  output: () => string;
  /** What it wrote to stderr alone, the last 64 KiB. */
  stderr: () => string;
}

/**
 * Starts `node [nodeArgs] --import tsx <script>` with `env` on two free loopback ports and resolves
 * once GET /healthz answers and the gRPC port accepts connections (20 s at most).
 */
export async function startServer(
  name: string,
  script: string,
  env: Record<string, string>,
  nodeArgs: string[] = [],
): Promise<Server> {
  const httpPort = await freePort();
  let grpcPort = await freePort();
  while (grpcPort === httpPort) grpcPort = await freePort();
  const proc = spawnChild(process.execPath, [...nodeArgs, '--import', 'tsx', script], {
    ...process.env,
    ...env,
    HOST: '127.0.0.1',
    HTTP_PORT: String(httpPort),
    GRPC_PORT: String(grpcPort),
  });
  const all = outputTail();
  const errors = outputTail();
  proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => {
    all.append(chunk);
    errors.append(chunk);
  });
  proc.stdout!.setEncoding('utf8').on('data', all.append);
  const deadline = Date.now() + 20_000;
  while (true) {
    if (proc.exitCode !== null || proc.signalCode !== null)
      throw new Error(`${name} exited (code ${proc.exitCode})\n${all.text().slice(-2000)}`);
    const up = await fetch(`http://127.0.0.1:${httpPort}/healthz`)
      .then(async (res) => res.ok && (await tcpOpen(grpcPort)))
      .catch(() => false);
    if (up) break;
    if (Date.now() > deadline) {
      proc.kill('SIGKILL');
      throw new Error(`${name} not ready after 20 s\n${all.text().slice(-2000)}`);
    }
    await sleep(50);
  }
  return { name, proc, httpPort, grpcPort, output: all.text, stderr: errors.text };
}

/** SIGTERM, then SIGKILL after 10 s; resolves once the server has exited. */
export async function stopServer(server: Server): Promise<void> {
  const { proc } = server;
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
