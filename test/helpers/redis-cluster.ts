/**
 * A private 3-master Redis Cluster for a test file: three redis-servers (cluster mode, persistence
 * off, each with its own temp dir for nodes.conf and an explicit cluster bus port), joined with
 * `redis-cli --cluster create … --cluster-replicas 0 --cluster-yes`, then waited for until every
 * node says cluster_state:ok with all 16384 slots. `stop()` stops them and removes the dirs.
 *
 *   const cluster = await startRedisCluster();
 *   ... REDIS_CLUSTER_NODES = cluster.nodes.join(',') ...
 *   await cluster.stop();
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRedisServer, type RedisServer } from './redis-server.js';

export interface RedisCluster {
  /** `127.0.0.1:<port>` of each master. */
  readonly nodes: string[];
  readonly servers: RedisServer[];
  stop(): Promise<void>;
}

const CLI = process.env.REDIS_CLI_BIN || 'redis-cli';

/** A free loopback port below 55536 (a redis port + 10000 must stay a port, should it be used). */
async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address() as { port: number };
        server.close(() => resolve(port));
      });
    });
    if (port < 55536) return port;
  }
}

function run(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(CLI, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    child.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'ENOENT' ? new Error(`${CLI} is not installed (apt-get install redis-tools)`) : err,
      ),
    );
    child.once('close', (code) => resolve({ code, output }));
  });
}

export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const dirs: string[] = [];
  const servers: RedisServer[] = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < masters; i++) {
      const dir = mkdtempSync(join(tmpdir(), 'ipvs-cluster-'));
      dirs.push(dir);
      const busPort = await freePort();
      servers.push(
        await startRedisServer({
          dir,
          extraArgs: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            join(dir, 'nodes.conf'),
            '--cluster-port',
            String(busPort),
            '--cluster-node-timeout',
            '2000',
          ],
        }),
      );
    }
    const nodes = servers.map((s) => `127.0.0.1:${s.port}`);
    const created = await run(['--cluster', 'create', ...nodes, '--cluster-replicas', '0', '--cluster-yes']);
    if (created.code !== 0) throw new Error(`redis-cli --cluster create failed:\n${created.output}`);
    const until = Date.now() + 20_000;
    for (;;) {
      const infos = await Promise.all(servers.map((s) => s.admin().cluster('INFO') as Promise<string>));
      const ok = infos.every(
        (info) =>
          /cluster_state:ok/.test(info) &&
          /cluster_slots_ok:16384/.test(info) &&
          new RegExp(`cluster_known_nodes:${masters}\\b`).test(info),
      );
      if (ok) break;
      if (Date.now() > until) throw new Error(`the cluster is not ok within 20 s:\n${infos.join('\n---\n')}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return { nodes, servers, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
