/**
 * The Lua scripts (BullMQ style): one file per operation, `lua/<operation>-<numberOfKeys>.lua`,
 * shared code in `lua/includes/`, pulled in by `--- @include "includes/<name>"` lines (each include
 * once per script). Read and assembled once at start; registered with SCRIPT LOAD; called with
 * EVALSHA; when the server answers NOSCRIPT (restart, SCRIPT FLUSH, failover, or a Redis Cluster
 * node the SCRIPT LOAD did not reach) the call is retried once as EVAL of the same source, which
 * also caches the script on that node. No Lua text is ever built from run-time values.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { RedisClient } from './client.js';

export const LUA_DIR = fileURLToPath(new URL('./lua/', import.meta.url));

export interface Script {
  readonly name: string;
  readonly numberOfKeys: number;
  readonly source: string;
  readonly sha: string;
}

const INCLUDE = /^--- @include "([^"]+)"\s*$/;

function assemble(dir: string, file: string, seen: Set<string>): string {
  const text = readFileSync(join(dir, file), 'utf8');
  return text
    .split('\n')
    .map((line) => {
      const m = INCLUDE.exec(line);
      if (!m) return line;
      const name = m[1].endsWith('.lua') ? m[1] : `${m[1]}.lua`;
      if (seen.has(name)) return '';
      seen.add(name);
      return assemble(dir, name, seen);
    })
    .join('\n');
}

/** Every operation script of `dir`, assembled with its includes. */
export function readScripts(dir = LUA_DIR): Map<string, Script> {
  const out = new Map<string, Script>();
  for (const file of readdirSync(dir).sort()) {
    const m = /^([a-z-]+)-(\d+)\.lua$/.exec(file);
    if (!m) continue;
    const source = assemble(dir, file, new Set());
    const sha = createHash('sha1').update(source).digest('hex');
    out.set(m[1], { name: m[1], numberOfKeys: Number(m[2]), source, sha });
  }
  return out;
}

export class ScriptRunner {
  readonly scripts: Map<string, Script>;
  private loaded: Promise<void> | undefined;

  constructor(
    private readonly redis: RedisClient,
    dir = LUA_DIR,
  ) {
    this.scripts = readScripts(dir);
  }

  /** SCRIPT LOAD of every script (once; again after a failed load). On a cluster: one node. */
  load(): Promise<void> {
    this.loaded ??= (async () => {
      for (const s of this.scripts.values()) {
        const sha = await this.redis.script('LOAD', s.source);
        if (sha !== s.sha) throw new Error(`script ${s.name}: server sha ${String(sha)} ≠ ${s.sha}`);
      }
    })().catch((err: unknown) => {
      this.loaded = undefined;
      throw err;
    });
    return this.loaded;
  }

  /** EVALSHA `name` with its keys and arguments; EVAL of the source once on NOSCRIPT. */
  async run(name: string, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    const s = this.scripts.get(name);
    if (!s) throw new Error(`no Lua script ${name}`);
    if (keys.length !== s.numberOfKeys) {
      throw new Error(`script ${name} takes ${s.numberOfKeys} keys, got ${keys.length}`);
    }
    await this.load();
    try {
      return await this.redis.evalsha(s.sha, keys.length, ...keys, ...args);
    } catch (err) {
      if (!(err instanceof Error) || !err.message.startsWith('NOSCRIPT')) throw err;
      return await this.redis.eval(s.source, keys.length, ...keys, ...args);
    }
  }
}
