/**
 * End-to-end helpers: the REAL service binary (`node --import tsx src/main.ts`) on free ports, and
 * child processes run to completion (e.g. the ipvsctl CLI).
 *
 *   const svc = await startServiceProcess({ env: { IPVS_CLOCK: 'manual' } });
 *   await fetch(`${svc.url}/v1/services`);
 *   await svc.stop();
 *
 * The service is started with HTTP_PORT=0 and GRPC_PORT=0; the ports are read from its
 * "ipvs-scheduler listening" log line (pino JSON on stdout). `stop()` sends SIGTERM and waits for
 * the exit (SIGKILL after a grace period). Every process started here is stopped by `stopAll()`
 * too, for an afterAll that must not leak processes when a test failed half-way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/** The repository root (where package.json and src/ are). */
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface ServiceProcessOptions {
  /** Extra environment (e.g. IPVS_CLOCK=manual, IPVS_ADMIN_TOKEN). HTTP_PORT/GRPC_PORT default to 0. */
  env?: Record<string, string | undefined>;
  /** Extra command-line flags for src/main.ts (`--rules-file x`). */
  args?: string[];
  /** How long to wait for the "listening" line. Default 20 s. */
  startTimeoutMs?: number;
}

export interface ServiceProcess {
  readonly httpPort: number;
  readonly grpcPort: number;
  /** `http://127.0.0.1:<httpPort>`. */
  readonly url: string;
  readonly pid: number;
  /** Everything the process wrote so far (stdout and stderr), for failure messages. */
  output(): string;
  /** SIGTERM, then wait for the exit (SIGKILL after `graceMs`). Resolves to the exit code. */
  stop(graceMs?: number): Promise<number | null>;
}

const running = new Set<ChildProcess>();

function waitExit(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

async function terminate(child: ChildProcess, graceMs: number): Promise<number | null> {
  const exited = waitExit(child);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    const code = await exited;
    clearTimeout(timer);
    running.delete(child);
    return code;
  }
  running.delete(child);
  return exited;
}

/** Starts src/main.ts in a child process and resolves once it listens. */
export function startServiceProcess(options: ServiceProcessOptions = {}): Promise<ServiceProcess> {
  const env: Record<string, string | undefined> = {
    ...process.env,
    HOST: '127.0.0.1',
    HTTP_PORT: '0',
    GRPC_PORT: '0',
    LOG_LEVEL: 'info',
    ...options.env,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...(options.args ?? [])], {
    cwd: REPO_ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let output = '';
  let pending = '';
  const timeoutMs = options.startTimeoutMs ?? 20_000;

  return new Promise<ServiceProcess>((resolve, reject) => {
    let settled = false;
    const fail = (why: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      void terminate(child, 2_000);
      reject(new Error(`service process: ${why}\n--- output ---\n${output}`));
    };
    const timer = setTimeout(
      () => fail(`no "ipvs-scheduler listening" line within ${timeoutMs} ms`),
      timeoutMs,
    );

    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
    });
    child.stdout?.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      output += text;
      if (settled) return;
      pending += text;
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        let record: { msg?: unknown; httpPort?: unknown; grpcPort?: unknown };
        try {
          record = JSON.parse(line) as typeof record;
        } catch {
          continue;
        }
        if (record.msg !== 'ipvs-scheduler listening') continue;
        if (typeof record.httpPort !== 'number' || typeof record.grpcPort !== 'number') {
          fail(`the listening line has no ports: ${line}`);
          return;
        }
        settled = true;
        clearTimeout(timer);
        const httpPort = record.httpPort;
        resolve({
          httpPort,
          grpcPort: record.grpcPort,
          url: `http://127.0.0.1:${httpPort}`,
          pid: child.pid ?? -1,
          output: () => output,
          stop: (graceMs = 5_000) => terminate(child, graceMs),
        });
        return;
      }
    });
    child.once('error', (err) => fail(`cannot start: ${err.message}`));
    child.once('exit', (code, signal) => {
      running.delete(child);
      fail(`exited before listening (code ${code}, signal ${signal})`);
    });
  });
}

/** Stops every process this module started that is still running. */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((child) => terminate(child, 2_000)));
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the process's stdin, which is then closed (empty when absent). */
  stdin?: string;
  /** Replaces the environment (default: this process's). */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Killed (SIGKILL) after this long. Default 20 s. */
  timeoutMs?: number;
}

/** Runs a command to completion and collects its output. */
export function runProcess(
  command: string,
  args: readonly string[],
  options: RunOptions = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, [...args], {
      cwd: options.cwd ?? REPO_ROOT,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    running.add(child);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (c: Buffer) => out.push(c));
    child.stderr?.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 20_000);
    child.once('error', (e) => {
      clearTimeout(timer);
      running.delete(child);
      reject(e);
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      running.delete(child);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    child.stdin?.on('error', () => undefined); // the process may exit without reading stdin
    child.stdin?.end(options.stdin ?? '');
  });
}
