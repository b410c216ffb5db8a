/**
 * `ipvsctl [--server URL] [--token T] <ipvsadm options…>`: ipvsadm's command line against a running
 * ipvs-scheduler service, over its HTTP API. Options are parsed by the ipvsadm module exactly as
 * ipvsadm 1.31 parses them; changes run through `applyCommand` / `restoreRules` with an HTTP
 * `RulesTarget`; listings and saves are ipvsadm's formats, byte for byte.
 *
 * Output goes to stdout; errors to stderr with ipvsadm's texts and exit statuses: 2 for option
 * errors, 255 for refused changes (kernel-style errors), 1 for failed listings (as ipvsadm's
 * `list_all` / `list_service`) and for a service that cannot be reached.
 */
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import type { Connection, ServiceStatus } from '../engine/engine.js';
import { applyCommand, ipvsadmMessage, restoreRules, tokenizeRuleLine } from '../ipvsadm/apply.js';
import { IpvsadmError, RestoreError } from '../ipvsadm/errors.js';
import { splitEndpoint, type NameResolver } from '../ipvsadm/format.js';
import {
  formatDaemonsWithHealth,
  formatListing,
  type DaemonHealthInfo,
  type ListingData,
} from '../ipvsadm/list.js';
import { parseCommand, usageText, versionText, type IpvsadmCommand } from '../ipvsadm/options.js';
import { formatSave } from '../ipvsadm/save.js';
import {
  ApiError,
  daemonsOf,
  DEFAULT_SERVER,
  HttpClient,
  normaliseServer,
  ServerUnreachableError,
  UnexpectedAnswerError,
} from './http-client.js';
import { hostNamesIn, resolveHosts, resolveNames, serviceToPort, type EndpointToName } from './names.js';

export const PROGRAM = 'ipvsctl';

/** Exit status for a service that cannot be reached, a bad answer, or a failed listing. */
export const EXIT_UNREACHABLE = 1;
const EXIT_USAGE = 2;

export interface CliIo {
  stdout(text: string): void | Promise<void>;
  stderr(text: string): void | Promise<void>;
  /** All of stdin (for `-R`). */
  readStdin(): Promise<string>;
  env: Record<string, string | undefined>;
}

/** ipvsadm's texts that say everything: no server detail is added after them. */
const SELF_EXPLAINING = new Set([
  'Service already exists',
  'Scheduler or persistence engine not found',
  'No such service',
  'Service not defined',
  'Destination already exists',
  'No such destination',
  'Daemon has already run',
  'No daemon is running',
]);
const PERMISSION_DENIED = 'Permission denied (you must be root)';

function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function ipvsctlUsage(): string {
  return (
    usageText(PROGRAM) +
    'ipvsctl Options (anywhere before a `--`):\n' +
    `  --server URL                        the ipvs-scheduler service (default $IPVSCTL_SERVER, else ${DEFAULT_SERVER})\n` +
    '  --token token                       admin token for changes (default $IPVS_ADMIN_TOKEN)\n'
  );
}

interface SplitArgs {
  server?: string;
  token?: string;
  rest: string[];
}

/** Takes ipvsctl's own options (`--server`, `--token`, also as `--x=value`) out of argv. */
export function splitArgs(argv: readonly string[]): SplitArgs {
  const out: SplitArgs = { rest: [] };
  let onlyArgs = false;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (onlyArgs) {
      out.rest.push(word);
      continue;
    }
    if (word === '--') {
      onlyArgs = true;
      out.rest.push(word);
      continue;
    }
    const m = /^--(server|token)(?:=(.*))?$/s.exec(word);
    if (!m) {
      out.rest.push(word);
      continue;
    }
    let value = m[2];
    if (value === undefined) {
      if (i + 1 >= argv.length)
        throw new IpvsadmError(`${PROGRAM}: option --${m[1]} needs a value`, EXIT_USAGE);
      value = argv[++i];
    }
    if (m[1] === 'server') out.server = value;
    else out.token = value;
  }
  return out;
}

/** The addresses a listing shows (for name lookups without `-n`). */
function serviceEndpoints(services: readonly ServiceStatus[]): EndpointToName[] {
  const out: EndpointToName[] = [];
  for (const svc of services) {
    if (!svc.fwmark && svc.address !== undefined) out.push({ ip: svc.address, port: svc.port ?? 0 });
    for (const d of svc.destinations) out.push({ ip: d.address, port: d.port });
  }
  return out;
}

function connectionEndpoints(conns: readonly Connection[]): EndpointToName[] {
  const out: EndpointToName[] = [];
  for (const c of conns) {
    for (const text of [c.client, c.virtual, c.destination]) {
      const ep = splitEndpoint(text);
      if (ep) out.push(ep);
    }
  }
  return out;
}

/** A failure, as printed: stderr lines and the exit status. */
interface Failure {
  lines: string[];
  status: number;
}

/** stderr lines for a refused change (ipvsadm's text first, then what helps). */
function changeFailure(err: IpvsadmError): string[] {
  const lines = [err.message];
  if (err.message === PERMISSION_DENIED) {
    const why = err.detail ? ` (${err.detail})` : '';
    lines.push(
      `${PROGRAM}: the service refused the change${why}: give its admin token with --token or IPVS_ADMIN_TOKEN`,
    );
  } else if (err.detail && err.detail !== err.message && !SELF_EXPLAINING.has(err.message)) {
    lines.push(`${PROGRAM}: ${err.detail}`);
  }
  return lines;
}

/** Errors that are not ipvsadm's: an unreachable service or an answer that is not the API's. */
function transportFailure(err: unknown): Failure | undefined {
  if (err instanceof ServerUnreachableError || err instanceof UnexpectedAnswerError) {
    return { lines: [`${PROGRAM}: ${err.message}`], status: EXIT_UNREACHABLE };
  }
  return undefined;
}

/** A failed read (`-L`, `-S`): ipvsadm prints `ipvs_strerror` and exits 1. */
function readFailure(err: unknown): Failure {
  const transport = transportFailure(err);
  if (transport) return transport;
  if (err instanceof ApiError) {
    const text = ipvsadmMessage('list', err);
    const lines = text ? [text] : [err.message];
    if (text && text !== err.message && !SELF_EXPLAINING.has(text)) lines.push(`${PROGRAM}: ${err.message}`);
    return { lines, status: EXIT_UNREACHABLE };
  }
  throw err;
}

type ListCommand = Extract<IpvsadmCommand, { kind: 'list' }>;

/** GET /v1/sync with each daemon's health (`-L --daemon --stats`); empty without the route. */
async function daemonsWithHealth(client: HttpClient): Promise<DaemonHealthInfo[]> {
  let answer: { daemons?: unknown[] } | undefined;
  try {
    answer = await client.request('GET', '/v1/sync');
  } catch (err) {
    if (err instanceof ApiError && err.noRoute) return [];
    throw err;
  }
  const out: DaemonHealthInfo[] = [];
  for (const raw of answer?.daemons ?? []) {
    const [info] = daemonsOf([raw]);
    const r = raw as Record<string, unknown>;
    if (!info) continue;
    out.push({
      ...info,
      state: typeof r.state === 'string' ? r.state : undefined,
      directorId: typeof r.directorId === 'string' ? r.directorId : undefined,
      channel: typeof r.channel === 'string' ? r.channel : undefined,
      health: typeof r.health === 'object' && r.health !== null ? (r.health as Record<string, unknown>) : {},
    });
  }
  return out;
}

async function listing(cmd: ListCommand, client: HttpClient, daemonStats = false): Promise<string> {
  if (cmd.view === 'daemon' && daemonStats) return formatDaemonsWithHealth(await daemonsWithHealth(client));
  const data: ListingData = {};
  let endpoints: EndpointToName[] = [];
  switch (cmd.view) {
    case 'services':
      if (cmd.serviceKey !== undefined) {
        data.service = await client.getService(cmd.serviceKey);
        endpoints = serviceEndpoints([data.service]);
      } else {
        data.services = await client.listServices();
        endpoints = serviceEndpoints(data.services);
      }
      break;
    case 'connections':
      data.connections = await client.listConnections();
      endpoints = connectionEndpoints(data.connections);
      break;
    case 'timeout':
      data.timeouts = await client.getTimeouts();
      break;
    case 'daemon':
      data.daemons = await client.listDaemons();
      break;
  }
  let resolve: NameResolver | undefined;
  if (!cmd.format.numeric && endpoints.length > 0) resolve = await resolveNames(endpoints);
  return formatListing(cmd, data, resolve ? { resolve } : {});
}

async function save(numeric: boolean, client: HttpClient): Promise<string> {
  const services = await client.listServices();
  const resolve = numeric ? undefined : await resolveNames(serviceEndpoints(services));
  return formatSave(services, numeric, resolve);
}

async function restore(io: CliIo, client: HttpClient): Promise<Failure | undefined> {
  const text = await io.readStdin();
  const lines = text.split('\n');
  const resolveHost = await resolveHosts(lines.flatMap((l) => hostNamesIn(tokenizeRuleLine(l))));
  try {
    await restoreRules(text, client, { program: PROGRAM, resolveHost, resolveService: serviceToPort });
    return undefined;
  } catch (err) {
    const transport = transportFailure(err);
    if (transport) return transport;
    if (!(err instanceof RestoreError)) throw err;
    const reason = new IpvsadmError(err.reason, err.exitStatus, err.detail);
    const applied =
      err.applied === 0
        ? 'nothing was applied'
        : err.applied === 1
          ? 'the command before it stays applied'
          : `the ${err.applied} commands before it stay applied`;
    return {
      lines: [
        ...changeFailure(reason),
        `${PROGRAM}: -R stopped at line ${err.line}: ${(lines[err.line - 1] ?? '').replace(/\r$/, '')}` +
          ` (${applied})`,
      ],
      status: err.exitStatus,
    };
  }
}

/** Runs one ipvsctl invocation; resolves to the exit status. */
export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const fail = async (f: Failure): Promise<number> => {
    await io.stderr(f.lines.map((l) => `${l}\n`).join(''));
    return f.status;
  };

  let args: SplitArgs;
  let cmd: IpvsadmCommand;
  let daemonStats = false;
  try {
    args = splitArgs(argv);
    // `-L --daemon --stats` (an ipvsctl extension; ipvsadm refuses the pair) adds sync health.
    daemonStats = args.rest.includes('--daemon') && args.rest.includes('--stats');
    if (daemonStats) args.rest = args.rest.filter((a) => a !== '--stats');
    const resolveHost = await resolveHosts(hostNamesIn(args.rest));
    cmd = parseCommand(args.rest, { program: PROGRAM, resolveHost, resolveService: serviceToPort });
  } catch (err) {
    if (err instanceof IpvsadmError) return fail({ lines: [err.message], status: err.exitStatus });
    throw err;
  }

  if (cmd.kind === 'help') {
    await io.stdout(ipvsctlUsage());
    return 0;
  }
  if (cmd.kind === 'version') {
    await io.stdout(`${versionText()}${PROGRAM} ${packageVersion()} (ipvs-scheduler HTTP API client)\n`);
    return 0;
  }

  const serverText = args.server ?? io.env.IPVSCTL_SERVER ?? DEFAULT_SERVER;
  const server = normaliseServer(serverText);
  if (server === undefined) {
    return fail({ lines: [`${PROGRAM}: invalid server URL \`${serverText}'`], status: EXIT_USAGE });
  }
  const token = args.token ?? io.env.IPVS_ADMIN_TOKEN;
  const client = new HttpClient({ server, token: token === '' ? undefined : token });

  switch (cmd.kind) {
    case 'list':
    case 'save': {
      let out: string;
      try {
        out = cmd.kind === 'list' ? await listing(cmd, client, daemonStats) : await save(cmd.numeric, client);
      } catch (err) {
        return fail(readFailure(err));
      }
      await io.stdout(out);
      return 0;
    }
    case 'restore': {
      const failure = await restore(io, client);
      return failure ? fail(failure) : 0;
    }
    default:
      try {
        await applyCommand(cmd, client);
        return 0;
      } catch (err) {
        const transport = transportFailure(err);
        if (transport) return fail(transport);
        if (err instanceof IpvsadmError) return fail({ lines: changeFailure(err), status: err.exitStatus });
        throw err;
      }
  }
}

function write(stream: NodeJS.WriteStream, text: string): Promise<void> {
  if (text === '') return Promise.resolve();
  return new Promise((resolve) => {
    stream.write(text, () => resolve());
  });
}

async function readAll(stream: NodeJS.ReadStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** The process entry point (bin/ipvsctl.js): runs argv and exits with the status. */
export async function cli(argv: readonly string[] = process.argv.slice(2)): Promise<void> {
  // `ipvsctl -L | head`: a reader that went away ends the run quietly, as SIGPIPE ends ipvsadm.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  let status: number;
  try {
    status = await run(argv, {
      stdout: (t) => write(process.stdout, t),
      stderr: (t) => write(process.stderr, t),
      readStdin: () => readAll(process.stdin),
      env: process.env,
    });
  } catch (err) {
    await write(process.stderr, `${PROGRAM}: internal error: ${(err as Error)?.stack ?? String(err)}\n`);
    status = 70;
  }
  process.exit(status);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) void cli();
