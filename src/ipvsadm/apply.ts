/**
 * Running parsed ipvsadm commands against an engine-like target, and `ipvsadm -R` (§8.3). The target
 * is the configuration subset of the Engine, so the CLI (over HTTP) and the service (in-process)
 * share this code. Engine errors are reported with ipvsadm's messages (`ipvs_strerror`, §8.1).
 */
import { IpvsError } from '../domain/errors.js';
import type { Timeouts } from '../director/states.js';
import type { DestinationSpec, ServiceSpec } from '../engine/engine.js';
import { EXIT_FAILURE, IpvsadmError, RestoreError } from './errors.js';
import {
  isConfigCommand,
  parseCommand,
  type DaemonSpec,
  type IpvsadmCommand,
  type ParseOptions,
} from './options.js';

/** What `applyCommand` needs: the Engine's configuration methods (the Engine itself fits). */
export interface RulesTarget {
  addService(spec: ServiceSpec): Promise<unknown>;
  editService(key: string, patch: ServiceSpec): Promise<unknown>;
  deleteService(key: string): Promise<void>;
  clear(): Promise<void>;
  addDestination(service: string, spec: DestinationSpec): Promise<unknown>;
  editDestination(service: string, dest: string, patch: DestinationSpec): Promise<unknown>;
  deleteDestination(service: string, dest: string): Promise<void>;
  zeroStats(service?: string): Promise<void>;
  setTimeouts(t: Partial<Timeouts>): Promise<unknown>;
  /** Sync daemons, when the target has them (`--start-daemon` / `--stop-daemon`). */
  startDaemon?(daemon: DaemonSpec): Promise<unknown>;
  stopDaemon?(daemon: DaemonSpec): Promise<unknown>;
}

export type ConfigCommand = Exclude<
  IpvsadmCommand,
  { kind: 'list' | 'save' | 'restore' | 'help' | 'version' }
>;

const EINVAL = 'Invalid operation.  Possibly wrong module version, address not unicast, ...';
const ENOENT_SCHED = 'Scheduler or persistence engine not found';
const ERANGE = 'Numerical result out of range';

function fieldIs(err: IpvsError, ...names: string[]): boolean {
  const field = err.field ?? '';
  return names.some((n) => field === n || field.endsWith(`.${n}`));
}

/**
 * ipvsadm's message for an engine error of `kind` (libipvs `ipvs_strerror`): the table of §8.1,
 * with the engine's codes standing for the kernel's errnos. Undefined when no ipvsadm text fits.
 */
export function ipvsadmMessage(kind: IpvsadmCommand['kind'], err: IpvsError): string | undefined {
  const service = kind === 'add-service' || kind === 'edit-service';
  const server = kind === 'add-server' || kind === 'edit-server' || kind === 'delete-server';
  switch (err.code) {
    case 'ALREADY_EXISTS':
      if (kind === 'add-service') return 'Service already exists';
      if (kind === 'add-server') return 'Destination already exists';
      if (kind === 'start-daemon') return 'Daemon has already run';
      return undefined;
    case 'NOT_FOUND':
    case 'NO_SERVICE':
      if (kind === 'stop-daemon') return 'No daemon is running';
      if (server)
        return fieldIs(err, 'destination') && kind !== 'add-server'
          ? 'No such destination'
          : 'Service not defined';
      if (service || kind === 'delete-service' || kind === 'zero' || kind === 'list')
        return 'No such service';
      return undefined;
    case 'INVALID_ARGUMENT':
      if (service && fieldIs(err, 'scheduler', 'pe')) return ENOENT_SCHED;
      if (fieldIs(err, 'weight', 'upperThreshold', 'lowerThreshold')) return ERANGE;
      return EINVAL;
    case 'PERMISSION_DENIED':
    case 'UNAUTHENTICATED':
      return 'Permission denied (you must be root)';
    default:
      return undefined;
  }
}

function engineError(kind: IpvsadmCommand['kind'], err: unknown): unknown {
  if (!(err instanceof IpvsError)) return err;
  const message = ipvsadmMessage(kind, err);
  return new IpvsadmError(message ?? err.message, EXIT_FAILURE, err.message);
}

async function run(cmd: ConfigCommand, target: RulesTarget): Promise<void> {
  switch (cmd.kind) {
    case 'add-service':
      await target.addService(cmd.spec);
      return;
    case 'edit-service':
      await target.editService(cmd.serviceKey, cmd.patch);
      return;
    case 'delete-service':
      await target.deleteService(cmd.serviceKey);
      return;
    case 'clear':
      await target.clear();
      return;
    case 'add-server':
    case 'edit-server':
      if (cmd.tunnel && cmd.tunnel.type !== 'ipip') {
        throw new IpvsadmError(`Tunnel type ${cmd.tunnel.type} is not supported`, EXIT_FAILURE);
      }
      if (cmd.kind === 'add-server') await target.addDestination(cmd.serviceKey, cmd.spec);
      else await target.editDestination(cmd.serviceKey, cmd.destKey, cmd.patch);
      return;
    case 'delete-server':
      await target.deleteDestination(cmd.serviceKey, cmd.destKey);
      return;
    case 'zero':
      await target.zeroStats(cmd.serviceKey);
      return;
    case 'set-timeouts':
      await target.setTimeouts(cmd.timeouts);
      return;
    case 'start-daemon':
    case 'stop-daemon': {
      const method = cmd.kind === 'start-daemon' ? target.startDaemon : target.stopDaemon;
      if (!method)
        throw new IpvsadmError('Protocol not available', EXIT_FAILURE, 'no sync daemon support here');
      await method.call(target, cmd.daemon);
      return;
    }
  }
}

/**
 * Applies one configuration command. Engine failures become IpvsadmError with ipvsadm's message
 * (exit status 255, the engine's message in `detail`). Listing, saving, restoring, help and version
 * are not configuration: the caller prints those (see list.ts, save.ts, `restoreRules`).
 */
export async function applyCommand(cmd: IpvsadmCommand, target: RulesTarget): Promise<void> {
  if (!isConfigCommand(cmd))
    throw new TypeError(`applyCommand: "${cmd.kind}" does not change the configuration`);
  try {
    await run(cmd, target);
  } catch (err) {
    throw engineError(cmd.kind, err);
  }
}

/** `config_stream_read` for one line: split on spaces, tabs and CRs; every `ipvsadm` word is dropped. */
export function tokenizeRuleLine(line: string): string[] {
  return line.split(/[ \t\r]+/).filter((w) => w !== '' && w !== 'ipvsadm');
}

export interface ParsedRule {
  /** 1-based line number. */
  line: number;
  argv: string[];
  command: IpvsadmCommand;
}

/**
 * Parses every non-blank line of `ipvsadm -R` input without applying anything (e.g. to validate
 * before replacing a configuration). Throws RestoreError at the first line ipvsadm would reject.
 * `#` comments are not supported, as in ipvsadm: such a line is an error.
 */
export function parseRules(text: string, options: ParseOptions = {}): ParsedRule[] {
  const rules: ParsedRule[] = [];
  text.split('\n').forEach((raw, i) => {
    const argv = tokenizeRuleLine(raw);
    if (argv.length === 0) return;
    try {
      rules.push({ line: i + 1, argv, command: parseCommand(argv, { ...options, restoring: true }) });
    } catch (err) {
      if (err instanceof IpvsadmError)
        throw new RestoreError(i + 1, err.message, err.exitStatus, 0, err.detail);
      throw err;
    }
  });
  return rules;
}

export interface RestoreOptions extends ParseOptions {
  /**
   * ipvsadm 1.31 itself goes on after a line the kernel refused (only option errors end it, exit
   * status 2) and exits with the status of the last line. Default false: stop at the first error.
   */
  continueOnEngineError?: boolean;
}

export interface RestoreResult {
  /** Configuration commands applied. */
  applied: number;
  /** Lines that held a command (non-blank). */
  commands: number;
  /** With `continueOnEngineError`: the lines the engine refused. */
  errors: RestoreError[];
}

/**
 * `ipvsadm -R`: each line is one ipvsadm invocation, applied in order with no transaction. The
 * first failing line stops the restore with a RestoreError naming the line (1-based) and ipvsadm's
 * message; earlier lines stay applied. `-R` does not clear existing rules. Lines holding `-L`/`-S`
 * (which would only print) and `-h`/`-v` are skipped.
 */
export async function restoreRules(
  text: string,
  target: RulesTarget,
  options: RestoreOptions = {},
): Promise<RestoreResult> {
  const result: RestoreResult = { applied: 0, commands: 0, errors: [] };
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const argv = tokenizeRuleLine(lines[i]);
    if (argv.length === 0) continue;
    result.commands++;
    let cmd: IpvsadmCommand;
    try {
      cmd = parseCommand(argv, { ...options, restoring: true });
    } catch (err) {
      if (err instanceof IpvsadmError) {
        throw new RestoreError(i + 1, err.message, err.exitStatus, result.applied, err.detail);
      }
      throw err;
    }
    if (!isConfigCommand(cmd)) continue;
    try {
      await applyCommand(cmd, target);
      result.applied++;
    } catch (err) {
      if (!(err instanceof IpvsadmError)) throw err;
      const failure = new RestoreError(i + 1, err.message, err.exitStatus, result.applied, err.detail);
      if (!options.continueOnEngineError) throw failure;
      result.errors.push(failure);
    }
  }
  return result;
}
