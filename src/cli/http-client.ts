/**
 * The ipvs-scheduler HTTP API (API.md) as `ipvsctl` uses it: the configuration calls of `RulesTarget`
 * (so `applyCommand` / `restoreRules` run against a remote service exactly as they run in-process)
 * and the reads behind `-L` / `-S`. HTTP error bodies `{ error: { code, message } }` come back as
 * IpvsError, so apply.ts prints ipvsadm's messages for them.
 */
import { IpvsError, type ErrorCode } from '../domain/errors.js';
import type { Timeouts } from '../director/states.js';
import type {
  Connection,
  DestinationSpec,
  DestinationStatus,
  ServiceSpec,
  ServiceStatus,
} from '../engine/engine.js';
import type { RulesTarget } from '../ipvsadm/apply.js';
import { EXIT_FAILURE, IpvsadmError } from '../ipvsadm/errors.js';
import type { DaemonInfo } from '../ipvsadm/list.js';
import { DEFAULT_MCAST_INTERFACE, type DaemonSpec } from '../ipvsadm/options.js';

export const DEFAULT_SERVER = 'http://127.0.0.1:8080';
/** How long one request may take before ipvsctl gives up on it. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

const ERROR_CODES: readonly string[] = [
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'NO_SERVICE',
  'ALREADY_EXISTS',
  'FAILED_PRECONDITION',
  'NO_DESTINATION',
  'UNAVAILABLE',
  'UNAUTHENTICATED',
  'PERMISSION_DENIED',
];

/** The service could not be reached at all (refused, unresolvable, timed out, not HTTP). */
export class ServerUnreachableError extends Error {
  constructor(
    readonly server: string,
    readonly reason: string,
  ) {
    super(`cannot reach the ipvs-scheduler service at ${server}: ${reason}`);
    this.name = 'ServerUnreachableError';
  }
}

/** An answer that is neither a success nor the API's error shape (a proxy page, a 500). */
export class UnexpectedAnswerError extends Error {
  constructor(
    readonly status: number,
    readonly request: string,
    detail: string,
  ) {
    super(`${request}: unexpected answer HTTP ${status}${detail ? `: ${detail}` : ''}`);
    this.name = 'UnexpectedAnswerError';
  }
}

/** An HTTP API error: the domain error plus where it came from. */
export class ApiError extends IpvsError {
  constructor(
    code: ErrorCode,
    message: string,
    field: string | undefined,
    readonly status: number,
    /** True when no route matched: the service predates the route (e.g. `/v1/sync`). */
    readonly noRoute: boolean,
  ) {
    super(code, message, field);
    this.name = 'ApiError';
  }
}

/**
 * Normalises a `--server` value: a base URL with a scheme (`http://` is assumed when none is
 * given, so `--server 10.0.0.5:8080` works) and no trailing slash. Undefined when unusable.
 */
export function normaliseServer(text: string): string | undefined {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.search !== '' || url.hash !== '') return undefined;
  return url.toString().replace(/\/+$/, '');
}

/** `tcp:[2001:db8::1]:53` → one percent-encoded path segment. */
function seg(key: string): string {
  return encodeURIComponent(key);
}

function causeText(err: unknown): string {
  let e: unknown = err;
  // fetch failures carry the socket error as `cause` (sometimes nested, or an AggregateError).
  for (let i = 0; i < 4 && e instanceof Error && e.cause !== undefined; i++) e = e.cause;
  if (e instanceof AggregateError && e.errors.length > 0) e = e.errors[0];
  if (e instanceof Error) {
    const code = (e as NodeJS.ErrnoException).code;
    if (e.name === 'TimeoutError') return 'no answer in time';
    return e.message || code || e.name;
  }
  return String(e);
}

/** The field an error message names (`destination: no such destination …` → `destination`). */
function fieldOf(message: string): string | undefined {
  const m = /^([A-Za-z_][A-Za-z0-9_.[\]]*): /.exec(message);
  return m ? m[1] : undefined;
}

export interface HttpClientOptions {
  /** Base URL of the service, e.g. `http://127.0.0.1:8080`. */
  server: string;
  /** Sent as `Authorization: Bearer <token>` on every request. */
  token?: string;
  timeoutMs?: number;
  /** For tests: a fetch to use instead of the global one. */
  fetch?: typeof fetch;
}

/** A sync daemon as GET /v1/sync may list it (lenient: the route is not defined yet). */
type SyncAnswer = unknown;

/** The ipvs-scheduler HTTP API as a `RulesTarget`, plus the reads that listings need. */
export class HttpClient implements RulesTarget {
  readonly server: string;
  private readonly token: string | undefined;
  private readonly timeoutMs: number;
  private readonly fetchImpl: typeof fetch;

  constructor(options: HttpClientOptions) {
    this.server = options.server.replace(/\/+$/, '');
    this.token = options.token === '' ? undefined : options.token;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.fetchImpl = options.fetch ?? fetch;
  }

  /**
   * One request. 2xx → the parsed JSON body (undefined for 204 / empty); the API's error shape →
   * ApiError; anything else → UnexpectedAnswerError; no answer → ServerUnreachableError.
   */
  async request<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.token !== undefined) headers.authorization = `Bearer ${this.token}`;
    const init: RequestInit = { method, headers, signal: AbortSignal.timeout(this.timeoutMs) };
    if (body !== undefined) {
      headers['content-type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let response: Response;
    let text: string;
    try {
      response = await this.fetchImpl(`${this.server}${path}`, init);
      text = await response.text();
    } catch (err) {
      throw new ServerUnreachableError(this.server, causeText(err));
    }
    let parsed: unknown = undefined;
    if (text !== '') {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    if (response.ok) {
      if (text !== '' && parsed === undefined) {
        throw new UnexpectedAnswerError(response.status, `${method} ${path}`, 'the body is not JSON');
      }
      return parsed as T;
    }
    const error = (parsed as { error?: { code?: unknown; message?: unknown; field?: unknown } } | undefined)
      ?.error;
    if (error && typeof error.code === 'string' && typeof error.message === 'string') {
      if (ERROR_CODES.includes(error.code)) {
        const field = typeof error.field === 'string' ? error.field : fieldOf(error.message);
        const noRoute = response.status === 404 && error.message.startsWith('route: ');
        throw new ApiError(error.code as ErrorCode, error.message, field, response.status, noRoute);
      }
      throw new UnexpectedAnswerError(response.status, `${method} ${path}`, error.message);
    }
    throw new UnexpectedAnswerError(
      response.status,
      `${method} ${path}`,
      text.replace(/\s+/g, ' ').trim().slice(0, 200),
    );
  }

  // ------------------------------------------------------------------------------------------
  // RulesTarget

  async addService(spec: ServiceSpec): Promise<ServiceStatus> {
    return this.request('POST', '/v1/services', spec);
  }

  async editService(key: string, patch: ServiceSpec): Promise<ServiceStatus> {
    return this.request('PATCH', `/v1/services/${seg(key)}`, patch);
  }

  async deleteService(key: string): Promise<void> {
    await this.request('DELETE', `/v1/services/${seg(key)}`);
  }

  async clear(): Promise<void> {
    await this.request('DELETE', '/v1/services');
  }

  async addDestination(service: string, spec: DestinationSpec): Promise<DestinationStatus> {
    return this.request('POST', `/v1/services/${seg(service)}/destinations`, spec);
  }

  async editDestination(service: string, dest: string, patch: DestinationSpec): Promise<DestinationStatus> {
    return this.request('PATCH', `/v1/services/${seg(service)}/destinations/${seg(dest)}`, patch);
  }

  async deleteDestination(service: string, dest: string): Promise<void> {
    await this.request('DELETE', `/v1/services/${seg(service)}/destinations/${seg(dest)}`);
  }

  async zeroStats(service?: string): Promise<void> {
    const query = service === undefined ? '' : `?service=${encodeURIComponent(service)}`;
    await this.request('POST', `/v1/stats/zero${query}`);
  }

  async setTimeouts(t: Partial<Timeouts>): Promise<Timeouts> {
    return this.request('PUT', '/v1/timeouts', t);
  }

  /**
   * `--start-daemon`: PUT /v1/sync with `{ role, syncid }` (API.md), plus the multicast options
   * only when given (the interface only when not ipvsadm's default `eth0`): the sync channel is
   * not multicast here, and the service may refuse fields it does not know. While the service has
   * no such route, this is ipvsadm's "Protocol not available" (what it prints when the kernel
   * lacks the operation).
   */
  async startDaemon(daemon: DaemonSpec): Promise<unknown> {
    const body: Record<string, unknown> = { role: daemon.role, syncid: daemon.syncid };
    if (daemon.mcastInterface !== '' && daemon.mcastInterface !== DEFAULT_MCAST_INTERFACE)
      body.mcastInterface = daemon.mcastInterface;
    if (daemon.syncMaxlen !== undefined) body.syncMaxlen = daemon.syncMaxlen;
    if (daemon.mcastGroup !== undefined) body.mcastGroup = daemon.mcastGroup;
    if (daemon.mcastPort !== undefined) body.mcastPort = daemon.mcastPort;
    if (daemon.mcastTtl !== undefined) body.mcastTtl = daemon.mcastTtl;
    return this.syncCall(() => this.request('PUT', '/v1/sync', body), 'PUT /v1/sync');
  }

  /** `--stop-daemon`: DELETE /v1/sync/{role}. */
  async stopDaemon(daemon: DaemonSpec): Promise<unknown> {
    return this.syncCall(
      () => this.request('DELETE', `/v1/sync/${seg(daemon.role)}`),
      `DELETE /v1/sync/${daemon.role}`,
    );
  }

  private async syncCall(call: () => Promise<unknown>, what: string): Promise<unknown> {
    try {
      return await call();
    } catch (err) {
      if (err instanceof ApiError && err.noRoute) {
        throw new IpvsadmError(
          'Protocol not available',
          EXIT_FAILURE,
          `the service at ${this.server} has no sync daemon support (${what} answered 404)`,
        );
      }
      throw err;
    }
  }

  // ------------------------------------------------------------------------------------------
  // reads

  async listServices(): Promise<ServiceStatus[]> {
    const answer = await this.request<{ services?: ServiceStatus[] }>('GET', '/v1/services');
    return answer?.services ?? [];
  }

  async getService(key: string): Promise<ServiceStatus> {
    return this.request('GET', `/v1/services/${seg(key)}`);
  }

  async listConnections(): Promise<Connection[]> {
    const answer = await this.request<{ connections?: Connection[] }>('GET', '/v1/connections');
    return answer?.connections ?? [];
  }

  async getTimeouts(): Promise<Timeouts> {
    return this.request('GET', '/v1/timeouts');
  }

  /** GET /v1/sync as `--daemon` shows it; empty while the service has no such route. */
  async listDaemons(): Promise<DaemonInfo[]> {
    let answer: SyncAnswer;
    try {
      answer = await this.request('GET', '/v1/sync');
    } catch (err) {
      if (err instanceof ApiError && err.noRoute) return [];
      throw err;
    }
    return daemonsOf(answer);
  }
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function daemonOf(raw: unknown, role?: string): DaemonInfo | undefined {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const d = raw as Record<string, unknown>;
  const r = str(d.role) ?? role;
  if (r !== 'master' && r !== 'backup') return undefined;
  if (d.running === false || d.state === 'stopped') return undefined;
  return {
    role: r,
    syncid: num(d.syncid) ?? num(d.syncId) ?? 0,
    mcastInterface: str(d.mcastInterface) ?? str(d.mcastIfn) ?? str(d.interface),
    syncMaxlen: num(d.syncMaxlen) ?? num(d.maxlen),
    mcastGroup: str(d.mcastGroup) ?? str(d.group),
    mcastPort: num(d.mcastPort) ?? num(d.port),
    mcastTtl: num(d.mcastTtl) ?? num(d.ttl),
  };
}

/**
 * The daemons of a GET /v1/sync answer. The route is not defined yet; this accepts the likely
 * shapes: `{ daemons: [...] }`, a bare list, or `{ master: {...}, backup: {...} }`.
 */
export function daemonsOf(answer: unknown): DaemonInfo[] {
  const list: DaemonInfo[] = [];
  const push = (d: DaemonInfo | undefined) => {
    if (d) list.push(d);
  };
  if (Array.isArray(answer)) answer.forEach((d) => push(daemonOf(d)));
  else if (typeof answer === 'object' && answer !== null) {
    const a = answer as Record<string, unknown>;
    const many = Array.isArray(a.daemons) ? a.daemons : Array.isArray(a.sync) ? a.sync : undefined;
    if (many) many.forEach((d) => push(daemonOf(d)));
    else for (const role of ['master', 'backup']) push(daemonOf(a[role], role));
  }
  return list;
}
