/**
 * Composition root: config → clock → engine → handlers → HTTP and gRPC doors. SIGTERM/SIGINT stop
 * taking new calls, let in-flight ones finish, and exit.
 */
import { pino, type Logger } from 'pino';
import { Handlers } from './api/handlers.js';
import { AdminToken } from './api/auth.js';
import { buildHttpServer } from './api/http/server.js';
import { GrpcServer } from './api/grpc/server.js';
import { ConfigError, isLoopback, loadConfig, type Config } from './config.js';
import { ManualClock, systemClock, type SharedClock } from './engine/clock.js';
import type { Engine } from './engine/engine.js';
import { MemoryEngine } from './engine/memory/memory-engine.js';
import { createRedisClient, type RedisClient } from './engine/redis/client.js';
import { RedisEngine } from './engine/redis/redis-engine.js';
import { SyncManager } from './sync/daemon.js';

export interface RunningService {
  httpPort: number;
  grpcPort: number;
  handlers: Handlers;
  stop(): Promise<void>;
}

/** How long a start waits for Redis before listening anyway (not ready until Redis answers). */
const REDIS_START_WAIT_MS = 5000;

/** Logs Redis going away and coming back once per transition (not every reconnection attempt). */
function watchRedis(client: RedisClient, logger: Logger): void {
  let up: boolean | undefined;
  client.on('ready', () => {
    if (up !== true) logger.info('redis: connected');
    up = true;
  });
  client.on('error', (err: Error) => {
    if (up !== false) logger.warn({ err: err.message }, 'redis: unreachable; calls answer UNAVAILABLE');
    up = false;
  });
  client.on('close', () => {
    if (up === true) logger.warn('redis: connection lost; reconnecting');
    up = false;
  });
}

async function makeEngine(config: Config, logger: Logger): Promise<{ engine: Engine; clock?: SharedClock }> {
  const manual = config.clock === 'manual';
  if (config.redisUrl !== undefined || config.redisClusterNodes !== undefined) {
    const cluster = config.redisClusterNodes;
    const client = createRedisClient(cluster ? { nodes: cluster } : { url: config.redisUrl! });
    watchRedis(client, logger);
    const engine = new RedisEngine({
      redis: client,
      ownsClient: true,
      clock: manual ? 'redis' : systemClock,
      autoTickMs: manual ? undefined : 1000,
    });
    const where = cluster ? { redisClusterNodes: cluster } : { redisUrl: redact(config.redisUrl!) };
    if (!(await engine.waitReady(REDIS_START_WAIT_MS)))
      logger.warn(where, 'redis: not reachable at start; not ready until it answers');
    else logger.info(where, 'redis engine: state in Redis');
    if (manual && engine.redisClock) {
      const nowMs = await engine.redisClock.now().catch(() => undefined);
      logger.info(
        { nowMs },
        'manual clock in Redis (shared by the fleet): time moves only through POST /v1/clock/advance',
      );
    }
    return { engine, clock: engine.redisClock };
  }
  if (manual) {
    const manualClock = new ManualClock(Date.now());
    logger.info({ nowMs: manualClock.now() }, 'manual clock: time moves only through POST /v1/clock/advance');
    return { engine: new MemoryEngine({ clock: manualClock }), clock: manualClock };
  }
  return { engine: new MemoryEngine({ clock: systemClock, autoTickMs: 1000 }) };
}

/** The URL without its password, for logs. */
function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'redis://…';
  }
}

export async function startService(config: Config, logger: Logger): Promise<RunningService> {
  const { engine, clock: manualClock } = await makeEngine(config, logger);
  const sync =
    config.syncRedisUrl !== undefined
      ? new SyncManager({ engine, redisUrl: config.syncRedisUrl, logger })
      : undefined;
  if (sync)
    logger.info({ directorId: sync.directorId }, 'conn-sync: daemons can be started (SYNC_REDIS_URL)');
  const handlers = new Handlers(engine, manualClock, sync);
  if (config.rules !== undefined) {
    try {
      const applied = await handlers.replaceRules(config.rules);
      logger.info({ file: config.rulesFile, lines: applied.linesApplied }, 'rules loaded');
    } catch (err) {
      await sync?.close();
      await engine.close();
      throw err;
    }
  }
  const token = new AdminToken(config.adminToken);
  if (!token.enabled && !isLoopback(config.host)) {
    logger.warn(
      { host: config.host },
      'listening beyond loopback without IPVS_ADMIN_TOKEN: anyone who can reach the port can change the configuration',
    );
  }
  const http = buildHttpServer({ handlers, token, logger, bodyLimit: config.bodyLimit });
  await http.listen({ host: config.host, port: config.httpPort });
  const httpPort = (http.server.address() as { port: number }).port;
  const grpc = new GrpcServer({ handlers, token, logger });
  const grpcPort = await grpc.listen(config.host, config.grpcPort);
  logger.info(
    { host: config.host, httpPort, grpcPort, engine: engine.kind, clock: config.clock },
    'ipvs-scheduler listening',
  );
  return {
    httpPort,
    grpcPort,
    handlers,
    async stop() {
      await Promise.all([http.close(), grpc.close()]);
      await sync?.close();
      await engine.close();
    },
  };
}

async function main(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig(process.env, process.argv.slice(2));
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`ipvs-scheduler: configuration error: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = pino({ level: config.logLevel, base: { service: 'ipvs-scheduler' } });
  let service: RunningService;
  try {
    service = await startService(config, logger);
  } catch (err) {
    logger.fatal({ err }, 'start failed');
    process.exit(1);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining and stopping');
    service.stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err) => {
        logger.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
}

if (import.meta.url === `file://${process.argv[1]}`) void main();
