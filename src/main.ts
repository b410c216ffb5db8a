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
import { ManualClock, systemClock } from './engine/clock.js';
import type { Engine } from './engine/engine.js';
import { MemoryEngine } from './engine/memory/memory-engine.js';
import { SyncManager } from './sync/daemon.js';

export interface RunningService {
  httpPort: number;
  grpcPort: number;
  handlers: Handlers;
  stop(): Promise<void>;
}

function makeEngine(config: Config, logger: Logger): { engine: Engine; manualClock?: ManualClock } {
  if (config.redisUrl !== undefined || config.redisClusterNodes !== undefined) {
    throw new ConfigError(
      'REDIS_URL / REDIS_CLUSTER_NODES: the redis engine is not part of this build yet; unset them to use the memory engine',
    );
  }
  if (config.clock === 'manual') {
    const manualClock = new ManualClock(Date.now());
    logger.info({ nowMs: manualClock.now() }, 'manual clock: time moves only through POST /v1/clock/advance');
    return { engine: new MemoryEngine({ clock: manualClock }), manualClock };
  }
  return { engine: new MemoryEngine({ clock: systemClock, autoTickMs: 1000 }) };
}

export async function startService(config: Config, logger: Logger): Promise<RunningService> {
  const { engine, manualClock } = makeEngine(config, logger);
  const sync =
    config.syncRedisUrl !== undefined
      ? new SyncManager({ engine, redisUrl: config.syncRedisUrl, logger })
      : undefined;
  if (sync)
    logger.info({ directorId: sync.directorId }, 'conn-sync: daemons can be started (SYNC_REDIS_URL)');
  const handlers = new Handlers(engine, manualClock, sync);
  if (config.rules !== undefined) {
    const applied = await handlers.replaceRules(config.rules);
    logger.info({ file: config.rulesFile, lines: applied.linesApplied }, 'rules loaded');
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
