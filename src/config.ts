/**
 * Configuration from the environment and command-line flags (`--http-port 8080` overrides
 * HTTP_PORT), validated at start: a bad value stops the process with a message naming it.
 */
import { readFileSync } from 'node:fs';

export interface Config {
  host: string;
  httpPort: number;
  grpcPort: number;
  logLevel: string;
  clock: 'system' | 'manual';
  adminToken: string | undefined;
  rulesFile: string | undefined;
  rules: string | undefined;
  /** REDIS_URL: selects the redis engine on one Redis (and is the default SYNC_REDIS_URL). */
  redisUrl: string | undefined;
  /** REDIS_CLUSTER_NODES: selects the redis engine on Redis Cluster (wins over REDIS_URL for state). */
  redisClusterNodes: string[] | undefined;
  syncRedisUrl: string | undefined;
  /** Largest accepted request body, bytes. */
  bodyLimit: number;
}

export class ConfigError extends Error {}

const VARIABLES: Record<string, string> = {
  host: 'HOST',
  'http-port': 'HTTP_PORT',
  'grpc-port': 'GRPC_PORT',
  'log-level': 'LOG_LEVEL',
  clock: 'IPVS_CLOCK',
  'admin-token': 'IPVS_ADMIN_TOKEN',
  'rules-file': 'IPVS_RULES_FILE',
  'redis-url': 'REDIS_URL',
  'redis-cluster-nodes': 'REDIS_CLUSTER_NODES',
  'sync-redis-url': 'SYNC_REDIS_URL',
  'body-limit': 'IPVS_BODY_LIMIT',
};

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Merges flags over environment variables into the environment's naming. */
function settings(env: NodeJS.ProcessEnv, argv: string[]): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const name of Object.values(VARIABLES)) out[name] = env[name] === '' ? undefined : env[name];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument ${JSON.stringify(arg)}`);
    const [flag, inline] = arg.slice(2).split(/=(.*)/s, 2);
    const variable = VARIABLES[flag];
    if (!variable)
      throw new ConfigError(
        `unknown flag --${flag} (known: ${Object.keys(VARIABLES)
          .map((f) => `--${f}`)
          .join(', ')})`,
      );
    const value = inline ?? argv[++i];
    if (value === undefined) throw new ConfigError(`flag --${flag} needs a value`);
    out[variable] = value;
  }
  return out;
}

function port(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) {
    throw new ConfigError(`${name} must be a port number from 0 to 65535 (got ${JSON.stringify(value)})`);
  }
  return Number(value);
}

function redisUrl(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(value);
  } catch {
    url = undefined;
  }
  const portText = url?.port ?? '';
  if (
    !url ||
    (url.protocol !== 'redis:' && url.protocol !== 'rediss:') ||
    url.hostname === '' ||
    (portText !== '' && (Number(portText) < 1 || Number(portText) > 65535))
  ) {
    throw new ConfigError(
      `REDIS_URL must be a redis://host:port URL (rediss:// for TLS) (got ${JSON.stringify(value)})`,
    );
  }
  return value;
}

const NODE = /^(?:\[[0-9a-fA-F:.]+\]|[^:[\]\s/]+):([0-9]{1,5})$/;

function clusterNodes(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  const nodes = value
    .split(',')
    .map((n) => n.trim())
    .filter(Boolean);
  const bad = nodes.find((n) => {
    const m = NODE.exec(n);
    return !m || Number(m[1]) < 1 || Number(m[1]) > 65535;
  });
  if (nodes.length === 0 || bad !== undefined) {
    const why = bad === undefined ? '' : `; ${JSON.stringify(bad)} is not host:port`;
    throw new ConfigError(
      `REDIS_CLUSTER_NODES must be a comma-separated list of host:port seed nodes${why} (got ${JSON.stringify(value)})`,
    );
  }
  return nodes;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, argv: string[] = []): Config {
  const s = settings(env, argv);
  const logLevel = s.LOG_LEVEL ?? 'info';
  if (!LOG_LEVELS.includes(logLevel))
    throw new ConfigError(
      `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got ${JSON.stringify(logLevel)})`,
    );
  const clock = s.IPVS_CLOCK ?? 'system';
  if (clock !== 'system' && clock !== 'manual') {
    throw new ConfigError(`IPVS_CLOCK must be "manual" or "system" (got ${JSON.stringify(clock)})`);
  }
  const bodyLimit = s.IPVS_BODY_LIMIT === undefined ? 1 << 20 : Number(s.IPVS_BODY_LIMIT);
  if (!Number.isInteger(bodyLimit) || bodyLimit < 1024 || bodyLimit > 64 << 20) {
    throw new ConfigError(
      `IPVS_BODY_LIMIT must be a byte count from 1024 to 67108864 (got ${JSON.stringify(s.IPVS_BODY_LIMIT)})`,
    );
  }
  let rules: string | undefined;
  if (s.IPVS_RULES_FILE !== undefined) {
    try {
      rules = readFileSync(s.IPVS_RULES_FILE, 'utf8');
    } catch (err) {
      throw new ConfigError(
        `IPVS_RULES_FILE ${JSON.stringify(s.IPVS_RULES_FILE)} cannot be read: ${(err as Error).message}`,
      );
    }
  }
  const token = s.IPVS_ADMIN_TOKEN;
  if (token !== undefined && token.length < 8)
    throw new ConfigError('IPVS_ADMIN_TOKEN must be at least 8 characters');
  return {
    host: s.HOST ?? '127.0.0.1',
    httpPort: port(s.HTTP_PORT, 'HTTP_PORT', 8080),
    grpcPort: port(s.GRPC_PORT, 'GRPC_PORT', 50051),
    logLevel,
    clock,
    adminToken: token,
    rulesFile: s.IPVS_RULES_FILE,
    rules,
    redisUrl: redisUrl(s.REDIS_URL),
    redisClusterNodes: clusterNodes(s.REDIS_CLUSTER_NODES),
    syncRedisUrl: s.SYNC_REDIS_URL ?? s.REDIS_URL,
    bodyLimit,
  };
}

/** Whether `host` is a loopback address (no token warning needed). */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
