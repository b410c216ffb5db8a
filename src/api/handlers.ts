/**
 * The one set of handlers both transports call. A handler takes the API's JSON-shaped request and
 * returns its JSON-shaped answer; transports only decode, authorise, and map errors.
 */
import { IpvsError, invalid } from '../domain/errors.js';
import { objectWith } from '../domain/validate.js';
import type { SharedClock } from '../engine/clock.js';
import type {
  BatchUpdate,
  ConnectionFilter,
  ConnectionUpdate,
  DestinationSpec,
  Engine,
  ScheduleRequest,
  ServiceSpec,
  Sysctl,
} from '../engine/engine.js';
import type { Timeouts } from '../director/states.js';
import { DecisionCounters } from '../observability/metrics.js';
import { restoreRules } from '../ipvsadm/apply.js';
import { systemClock } from '../engine/clock.js';
import { MemoryEngine } from '../engine/memory/memory-engine.js';
import { IpvsadmError } from '../ipvsadm/errors.js';
import { formatSave } from '../ipvsadm/save.js';
import { parseRole, parseStartRequest, syncUnconfigured, type SyncManager } from '../sync/daemon.js';

export class Handlers {
  readonly decisions = new DecisionCounters();

  constructor(
    readonly engine: Engine,
    /**
     * Present when the service runs with IPVS_CLOCK=manual: a ManualClock (memory engine) or the
     * redis engine's clock key, which every replica of the fleet shares.
     */
    private readonly manualClock?: SharedClock,
    /** The conn-sync daemons; present when the service has SYNC_REDIS_URL. */
    readonly sync?: SyncManager,
  ) {}

  createService = (body: unknown) => this.engine.addService(body as ServiceSpec);
  listServices = async () => ({ services: await this.engine.listServices() });
  getService = (key: string) => this.engine.getService(key);
  updateService = (key: string, body: unknown) => this.engine.editService(key, body as ServiceSpec);
  deleteService = (key: string) => this.engine.deleteService(key);
  clearServices = () => this.engine.clear();

  createDestination = (service: string, body: unknown) =>
    this.engine.addDestination(service, body as DestinationSpec);
  updateDestination = (service: string, dest: string, body: unknown) =>
    this.engine.editDestination(service, dest, body as DestinationSpec);
  deleteDestination = (service: string, dest: string) => this.engine.deleteDestination(service, dest);

  schedule = async (body: unknown) => {
    try {
      const answer = await this.engine.schedule(body as ScheduleRequest);
      this.decisions.count(answer.reused ? 'reused' : 'scheduled');
      return answer;
    } catch (err) {
      this.decisions.count(err instanceof IpvsError ? err.code : 'internal');
      throw err;
    }
  };
  updateConnection = (id: string, body: unknown) =>
    this.engine.updateConnection(id, body as ConnectionUpdate);
  closeConnection = (id: string) => this.engine.closeConnection(id);

  reportConnections = async (body: unknown) => {
    const b = objectWith(body, 'body', ['updates']);
    if (!Array.isArray(b.updates)) throw invalid('updates', b.updates, 'must be a list');
    if (b.updates.length > 10_000)
      throw invalid('updates', b.updates.length, 'must hold at most 10000 items');
    return { results: await this.engine.batch(b.updates as BatchUpdate[]) };
  };

  listConnections = async (filter: ConnectionFilter) => ({
    connections: await this.engine.listConnections(filter),
  });

  getTimeouts = () => this.engine.getTimeouts();
  setTimeouts = (body: unknown) => this.engine.setTimeouts(body as Partial<Timeouts>);
  getSysctl = () => this.engine.getSysctl();
  updateSysctl = (body: unknown) => this.engine.setSysctl(body as Sysctl);

  /** `ipvsadm-save -n` of the current configuration. */
  getRules = async () => ({ text: formatSave(await this.engine.listServices()) });

  /**
   * Replaces the configuration with ipvsadm-save text (`ipvsadm -C` then `ipvsadm-restore`). The text
   * is first applied to a scratch engine, so a bad line changes nothing here; should the real apply
   * still fail, the previous rules come back.
   */
  replaceRules = async (text: unknown) => {
    if (typeof text !== 'string') throw invalid('text', text, 'must be ipvsadm-save text');
    const scratch = new MemoryEngine({ clock: systemClock });
    try {
      await restoreRules(text, scratch);
    } catch (err) {
      throw rulesError(err);
    } finally {
      await scratch.close();
    }
    const previous = formatSave(await this.engine.listServices());
    await this.engine.clear();
    try {
      const result = await restoreRules(text, this.engine);
      return { linesApplied: result.applied };
    } catch (err) {
      await this.engine.clear();
      await restoreRules(previous, this.engine);
      throw rulesError(err);
    }
  };

  getStats = () => this.engine.getStats();
  zeroStats = (service?: string) => this.engine.zeroStats(service);

  /** `ipvsadm -L --daemon`: the running sync daemons with their health. */
  listSyncDaemons = async () => ({ daemons: this.sync ? this.sync.list() : [] });

  /** `ipvsadm --start-daemon` (body: proto SyncDaemonConfig in JSON form). */
  startSyncDaemon = async (body: unknown) => {
    const options = parseStartRequest(body);
    if (!this.sync?.configured) throw syncUnconfigured();
    return this.sync.start(options);
  };

  /** `ipvsadm --stop-daemon`. */
  stopSyncDaemon = async (role: unknown) => {
    const r = parseRole(role);
    if (!this.sync?.configured) throw syncUnconfigured();
    await this.sync.stop(r);
  };

  private clockOrThrow(): SharedClock {
    if (!this.manualClock)
      throw new IpvsError(
        'NOT_FOUND',
        'clock: the manual clock is off (start with IPVS_CLOCK=manual)',
        'clock',
      );
    return this.manualClock;
  }

  getClock = async () => ({ nowMs: await this.clockOrThrow().now() });

  advanceClock = async (body: unknown) => {
    const clock = this.clockOrThrow();
    const b = objectWith(body, 'body', ['seconds']);
    const seconds = b.seconds;
    if (
      typeof seconds !== 'number' ||
      !Number.isFinite(seconds) ||
      seconds < 0 ||
      seconds > 10 * 365 * 86400
    ) {
      throw invalid('seconds', seconds, 'must be a number of seconds from 0 to 315360000');
    }
    await clock.advance(Math.round(seconds * 1000));
    await this.engine.tick();
    return { nowMs: await clock.now() };
  };
}

function rulesError(err: unknown): unknown {
  if (!(err instanceof IpvsadmError)) return err;
  const detail = err.detail ? ` (${err.detail})` : '';
  return new IpvsError('INVALID_ARGUMENT', `rules: ${err.message}${detail}`, 'rules');
}
