/**
 * HTTP load generator of bench/load-generators.ts `httpLoad` (API and redis benches) when `wrk` is not
 * installed (or BENCH_HTTP_LOADER is `autocannon`): autocannon in this child process, keep-alive, one request body per request with a
 * distinct client endpoint (the same tuples as bench/wrk-schedule.lua).
 *
 *   node --import tsx bench/http-load.ts <url> <path> <run> <seconds> <connections>
 *
 * Prints the same `WRK_RESULT {json}` line as the wrk script (latencies in microseconds).
 */
import { createRequire } from 'node:module';
import { clientFor, VIRTUAL } from './grpc-payload.js';

interface Histogram {
  p50: number;
  p99: number;
  total?: number;
}
interface AutocannonResult {
  requests: Histogram;
  latency: Histogram;
  duration: number;
  non2xx: number;
  errors: number;
  timeouts: number;
}
interface RawRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
}
type Autocannon = (options: {
  url: string;
  connections: number;
  duration: number;
  requests: {
    method: string;
    path: string;
    headers: Record<string, string>;
    setupRequest(r: RawRequest): RawRequest;
  }[];
}) => Promise<AutocannonResult>;

const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;
const [url, path, run, seconds, connections] = process.argv.slice(2);

let n = 0;
const result = await autocannon({
  url,
  connections: Number(connections),
  duration: Number(seconds),
  requests: [
    {
      method: 'POST',
      path,
      headers: { 'content-type': 'application/json' },
      setupRequest: (request) => ({
        ...request,
        body: `{"protocol":"tcp","client":"${clientFor(Number(run), n++)}","virtual":"${VIRTUAL}"}`,
      }),
    },
  ],
});
process.stdout.write(
  `WRK_RESULT ${JSON.stringify({
    requests: result.requests.total ?? 0,
    durationUs: result.duration * 1e6,
    non2xx: result.non2xx,
    connectErrors: result.errors,
    readErrors: 0,
    writeErrors: 0,
    timeouts: result.timeouts,
    p50Us: result.latency.p50 * 1000,
    p99Us: result.latency.p99 * 1000,
  })}\n`,
);
