/**
 * The load generators of the API and redis benches, each a child process run to completion, and what
 * they report turned into one `Measurement`:
 *
 * - `httpLoad`: POST `path` with a new client tuple per request — wrk with bench/wrk-schedule.lua, or
 *   bench/redis-wrk-paced.lua at a fixed rate, or autocannon (bench/http-load.ts) without wrk;
 * - `h2load`: gRPC unary Schedule with one fixed gRPC-framed body, optionally at a fixed rate;
 * - `streamLoad`: one gRPC ScheduleStream with a window of tagged requests (bench/stream-client.ts);
 * - `runLoader`: any other load generator, for benches that parse its output themselves.
 *
 * The CPU of the server under load (and of a redis-server when one is named) is read from /proc around
 * each run, and the load generator's own CPU is polled while it runs.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cpuSeconds, spawnChild, type Server } from './child-processes.js';

/** Keep-alive connections of the HTTP load generator. */
export const HTTP_CONNECTIONS = 32;
/** h2load: connections × concurrent streams per connection. */
export const H2_CLIENTS = 4;
export const H2_STREAMS = 32;
/** Requests in flight on the one ScheduleStream of `streamLoad`. */
export const STREAM_WINDOW = 128;

export type HttpLoader = 'wrk' | 'autocannon';

/** CPU over the measured part of a run, percent of one core. */
export interface CpuShares {
  /** The server under load. */
  serverCpu: number;
  /** The named redis-server (NaN when none is named). */
  redisCpu: number;
  /** The load generator itself. */
  loaderCpu: number;
}

export interface Measurement extends CpuShares {
  rps: number;
  p50Us: number;
  p99Us: number;
  /** Answers counted in the measured run, and its length. */
  count: number;
  seconds: number;
  /** Failed calls seen by the load generator (non-2xx, socket errors, timeouts, gRPC error answers). */
  failures: number;
}

/** The processes whose CPU a load run reads besides the load generator's own. */
export interface Watched {
  server?: Server;
  redisPid?: number;
}

export interface LoaderOutput {
  stdout: string;
  /** The loader's own share is polled over its whole life. */
  cpu: CpuShares;
}

/** Load-generator runs so far: each gets its own client tuples (bench/grpc-payload.ts clientFor). */
let nextRun = 0;

/**
 * Runs a load generator to completion, reading the watched processes' CPU time around it — or, if the
 * loader prints MEASURE_START / MEASURE_END lines, around those. `onStdout` sees the output so far
 * after every chunk (e.g. to stop the loader once it printed enough).
 */
export function runLoader(
  command: string,
  args: string[],
  watched: Watched,
  onStdout?: (stdout: string, proc: ChildProcess) => void,
): Promise<LoaderOutput> {
  return new Promise((resolve, reject) => {
    const pids = [watched.server?.proc.pid, watched.redisPid];
    let cpu0 = pids.map(cpuSeconds);
    let t0 = performance.now();
    let cpu1: number[] | undefined;
    let t1 = 0;
    const proc = spawnChild(command, args);
    const started = performance.now();
    let loaderCpu = NaN;
    const poll = setInterval(() => {
      const used = cpuSeconds(proc.pid);
      if (!Number.isNaN(used)) loaderCpu = (used / ((performance.now() - started) / 1000)) * 100;
    }, 100);
    let stdout = '';
    let stderr = '';
    proc.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      if (chunk.includes('MEASURE_START')) {
        cpu0 = pids.map(cpuSeconds);
        t0 = performance.now();
      }
      if (chunk.includes('MEASURE_END')) {
        cpu1 = pids.map(cpuSeconds);
        t1 = performance.now();
      }
      onStdout?.(stdout, proc);
    });
    proc.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    proc.on('error', (err) => {
      clearInterval(poll);
      reject(err);
    });
    proc.on('exit', (code) => {
      clearInterval(poll);
      if (!cpu1) {
        cpu1 = pids.map(cpuSeconds);
        t1 = performance.now();
      }
      if (code !== 0) {
        reject(new Error(`${command} exited with ${code}: ${stderr.trim().slice(-2000)}`));
        return;
      }
      const seconds = (t1 - t0) / 1000;
      const [serverCpu, redisCpu] = cpu1.map((used, i) => ((used - cpu0[i]) / seconds) * 100);
      resolve({ stdout, cpu: { serverCpu, redisCpu, loaderCpu } });
    });
  });
}

/** The JSON after `<marker> ` on the loader's result line. */
export function resultLine(stdout: string, marker: string): Record<string, number> {
  const line = stdout.split('\n').find((l) => l.startsWith(`${marker} `));
  if (!line) throw new Error(`load generator printed no ${marker} line:\n${stdout.slice(-2000)}`);
  return JSON.parse(line.slice(marker.length + 1)) as Record<string, number>;
}

/** Calls that failed by a WRK_RESULT line (non-2xx, socket errors, timeouts). */
export function wrkFailures(r: Record<string, number>): number {
  return r.non2xx + r.connectErrors + r.readErrors + r.writeErrors + r.timeouts;
}

export interface HttpLoad {
  loader: HttpLoader;
  server: Server;
  path: string;
  seconds: number;
  /** > 0 paces the load at this many requests per second (wrk only). */
  rate?: number;
  /** A redis-server whose CPU is read too. */
  redisPid?: number;
}

/** HTTP POST `path` with a new client tuple per request, HTTP_CONNECTIONS keep-alive connections. */
export async function httpLoad({
  loader,
  server,
  path,
  seconds,
  rate = 0,
  redisPid,
}: HttpLoad): Promise<Measurement> {
  const url = `http://127.0.0.1:${server.httpPort}`;
  const run = String(nextRun++);
  const wrk = (script: string, extra: string[]) => [
    '-t1',
    `-c${HTTP_CONNECTIONS}`,
    `-d${seconds}s`,
    '--timeout',
    '5s',
    '-s',
    script,
    url,
    '--',
    path,
    run,
    ...extra,
  ];
  const watched = { server, redisPid };
  let out: LoaderOutput;
  if (rate > 0) out = await runLoader('wrk', wrk('bench/redis-wrk-paced.lua', [rate.toFixed(1)]), watched);
  else if (loader === 'wrk') out = await runLoader('wrk', wrk('bench/wrk-schedule.lua', []), watched);
  else
    out = await runLoader(
      process.execPath,
      ['--import', 'tsx', 'bench/http-load.ts', url, path, run, String(seconds), String(HTTP_CONNECTIONS)],
      watched,
    );
  const r = resultLine(out.stdout, 'WRK_RESULT');
  return fromResultLine(r, r.requests, r.durationUs / 1e6, wrkFailures(r), out.cpu);
}

/** `count` answers over `seconds`, with the latency percentiles of a result line (p50Us, p99Us). */
function fromResultLine(
  r: Record<string, number>,
  count: number,
  seconds: number,
  failures: number,
  cpu: CpuShares,
): Measurement {
  return { rps: count / seconds, p50Us: r.p50Us, p99Us: r.p99Us, count, seconds, failures, ...cpu };
}

function percentile(sorted: Float64Array, p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))];
}

export interface H2Load {
  server: Server;
  /** A file holding one gRPC-framed ScheduleRequest; h2load's per-call log is written beside it. */
  body: string;
  seconds: number;
  /** > 0 paces the load at this many calls per second (h2load --rps, split over the clients). */
  rate?: number;
  /** A redis-server whose CPU is read too. */
  redisPid?: number;
}

/** gRPC unary Schedule with one fixed body, H2_CLIENTS connections × H2_STREAMS streams. */
export async function h2load({ server, body, seconds, rate = 0, redisPid }: H2Load): Promise<Measurement> {
  const log = join(dirname(body), `h2load-${nextRun++}.log`);
  const args = ['-D', String(seconds), '-t1', `-c${H2_CLIENTS}`, `-m${H2_STREAMS}`];
  if (rate > 0) args.push(`--rps=${(rate / H2_CLIENTS).toFixed(1)}`);
  args.push(
    '-H',
    'content-type: application/grpc',
    '-H',
    'te: trailers',
    '-d',
    body,
    `--log-file=${log}`,
    `http://127.0.0.1:${server.grpcPort}/ipvs.v1.Scheduler/Schedule`,
  );
  const out = await runLoader('h2load', args, { server, redisPid });
  const finished = /finished in ([\d.]+)s, ([\d.]+) req\/s/.exec(out.stdout);
  const requests =
    /requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(
      out.stdout,
    );
  if (!finished || !requests) throw new Error(`unexpected h2load output:\n${out.stdout.slice(-2000)}`);
  const lines = readFileSync(log, 'utf8').split('\n');
  const durations = new Float64Array(lines.length);
  let n = 0;
  for (const line of lines) {
    const cols = line.split('\t');
    if (cols.length >= 3) durations[n++] = Number(cols[2]);
  }
  const sorted = durations.subarray(0, n).sort();
  rmSync(log, { force: true });
  return {
    rps: Number(finished[2]),
    p50Us: percentile(sorted, 0.5),
    p99Us: percentile(sorted, 0.99),
    count: Number(requests[1]),
    seconds: Number(finished[1]),
    failures: Number(requests[2]) + Number(requests[3]) + Number(requests[4]),
    ...out.cpu,
  };
}

/**
 * gRPC ScheduleStream: bench/stream-client.ts keeps one stream open with STREAM_WINDOW tagged requests
 * in flight, each a new client tuple; after `warmupSeconds` on its stream it measures `seconds`.
 */
export async function streamLoad(
  server: Server,
  warmupSeconds: number,
  seconds: number,
): Promise<Measurement> {
  const out = await runLoader(
    process.execPath,
    [
      '--import',
      'tsx',
      'bench/stream-client.ts',
      String(server.grpcPort),
      String(warmupSeconds * 1000),
      String(seconds * 1000),
      String(STREAM_WINDOW),
      String(nextRun++),
    ],
    { server },
  );
  const r = resultLine(out.stdout, 'STREAM_RESULT');
  // The client measures its own CPU over the measured window only.
  return fromResultLine(r, r.answers, r.durationMs / 1000, r.failed, { ...out.cpu, loaderCpu: r.cpuPct });
}
