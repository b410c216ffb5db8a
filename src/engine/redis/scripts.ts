/**
 * The Lua scripts (BullMQ style): one file per operation, `lua/<operation>-<numberOfKeys>.lua`,
 * shared code in `lua/includes/`, pulled in by `--- @include "includes/<name>"` lines (each include
 * once per script). Everything is read and assembled once at start, from those files only: no Lua
 * text is ever built from run-time values.
 *
 * Two ways to register them, the same sources either way:
 *  - Redis Functions (Redis >= 7, the default): ONE library, `ipvs_<hash>`, holding the includes
 *    once and every operation as a function `ipvs_<operation>_<hash>`; FUNCTION LOAD once (on
 *    every master of a cluster), then FCALL. The includes' definitions (~150 closures) are made
 *    once at load instead of on every call: that is most of a call's cost in Redis (measured
 *    ~60 µs of ~150 µs per Schedule). The hash in the names lets replicas of two versions share a
 *    Redis during a rolling upgrade.
 *  - EVALSHA (a Redis without FUNCTION): each operation's assembled source, SCRIPT LOAD once.
 * When the server has lost them (restart, FUNCTION/SCRIPT FLUSH, failover, a cluster node the load
 * did not reach) the call answers "Function not found" / NOSCRIPT: the runner loads again and
 * retries once. Either way one operation is one atomic call.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import type { Cluster, Redis } from 'ioredis';
import type { RedisClient } from './client.js';

export const LUA_DIR = fileURLToPath(new URL('./lua/', import.meta.url));

export interface Script {
  readonly name: string;
  readonly numberOfKeys: number;
  /** The operation as one EVAL script (includes inlined). */
  readonly source: string;
  readonly sha: string;
  /** The operation's own code (after its include lines), the body of its library function. */
  readonly body: string;
  /** The includes it pulls in, in order. */
  readonly includes: readonly string[];
}

const INCLUDE = /^--- @include "([^"]+)"\s*$/;

function includeFile(name: string): string {
  return name.endsWith('.lua') ? name : `${name}.lua`;
}

function assemble(dir: string, file: string, seen: Set<string>, order: string[], isInclude = false): string {
  if (isInclude) {
    if (seen.has(file)) return '';
    seen.add(file);
    order.push(file);
  }
  const text = readFileSync(join(dir, file), 'utf8');
  return text
    .split('\n')
    .map((line) => {
      const m = INCLUDE.exec(line);
      if (!m) return line;
      return assemble(dir, includeFile(m[1]), seen, order, true);
    })
    .join('\n');
}

/** Every operation script of `dir`, assembled with its includes. */
export function readScripts(dir = LUA_DIR): Map<string, Script> {
  const out = new Map<string, Script>();
  for (const file of readdirSync(dir).sort()) {
    const m = /^([a-z-]+)-(\d+)\.lua$/.exec(file);
    if (!m) continue;
    const includes: string[] = [];
    const lines = readFileSync(join(dir, file), 'utf8').split('\n');
    const seen = new Set<string>();
    const included = lines
      .filter((line) => INCLUDE.test(line))
      .map((line) => assemble(dir, includeFile(INCLUDE.exec(line)![1]), seen, includes, true))
      .join('\n');
    const body = lines.filter((line) => !INCLUDE.test(line)).join('\n');
    // The operation's own code runs in a function of its own, as in the library: its locals do
    // not add to the includes' (Lua allows 200 per function).
    const source = `${included}\nreturn (function()\n${body}\nend)()\n`;
    const sha = createHash('sha1').update(source).digest('hex');
    out.set(m[1], { name: m[1], numberOfKeys: Number(m[2]), source, sha, body, includes });
  }
  return out;
}

export interface Library {
  readonly name: string;
  readonly source: string;
  /** Operation name → its function's name in the library. */
  readonly functions: ReadonlyMap<string, string>;
}

/** The Redis Functions library: every include once, then one function per operation. */
export function buildLibrary(scripts: Map<string, Script>, dir = LUA_DIR): Library {
  const includes: string[] = [];
  for (const s of scripts.values())
    for (const name of s.includes) if (!includes.includes(name)) includes.push(name);
  const parts = includes.map((name) => readFileSync(join(dir, name), 'utf8'));
  const ops = [...scripts.values()];
  const hash = createHash('sha1')
    .update(parts.join('\n'))
    .update(ops.map((s) => s.body).join('\n'))
    .digest('hex')
    .slice(0, 12);
  const functions = new Map<string, string>();
  for (const s of ops) {
    const fn = `ipvs_${s.name.replace(/-/g, '_')}_${hash}`;
    functions.set(s.name, fn);
    parts.push(`redis.register_function('${fn}', function(KEYS, ARGV)\n${s.body}\nend)`);
  }
  const name = `ipvs_${hash}`;
  return { name, source: `#!lua name=${name}\n${parts.join('\n')}`, functions };
}

type Mode = 'functions' | 'evalsha';

function masters(redis: RedisClient): Redis[] {
  return 'nodes' in redis && typeof (redis as Cluster).nodes === 'function' && (redis as Cluster).isCluster
    ? (redis as Cluster).nodes('master')
    : [redis as Redis];
}

const isMissing = (err: unknown) =>
  err instanceof Error && (err.message.startsWith('NOSCRIPT') || /Function not found/i.test(err.message));

export class ScriptRunner {
  readonly scripts: Map<string, Script>;
  readonly library: Library;
  private loaded: Promise<Mode> | undefined;
  /** How the scripts are called, once they are registered. */
  private mode: Mode | undefined;

  constructor(
    private readonly redis: RedisClient,
    dir = LUA_DIR,
    private readonly prefer: Mode = 'functions',
  ) {
    this.scripts = readScripts(dir);
    this.library = buildLibrary(this.scripts, dir);
  }

  /** Registers the scripts (once; again after a failed load) and resolves to how they are called. */
  load(): Promise<Mode> {
    this.loaded ??= this.register().then(
      (mode) => (this.mode = mode),
      (err: unknown) => {
        this.loaded = undefined;
        throw err;
      },
    );
    return this.loaded;
  }

  private async register(): Promise<Mode> {
    if (this.prefer === 'functions') {
      try {
        for (const node of masters(this.redis)) {
          await node.call('FUNCTION', 'LOAD', 'REPLACE', this.library.source);
        }
        return 'functions';
      } catch (err) {
        if (!(err instanceof Error) || !/unknown command|ERR unknown/i.test(err.message)) throw err;
      }
    }
    for (const s of this.scripts.values()) {
      const sha = await this.redis.script('LOAD', s.source);
      if (sha !== s.sha) throw new Error(`script ${s.name}: server sha ${String(sha)} ≠ ${s.sha}`);
    }
    return 'evalsha';
  }

  /** Calls operation `name` with its keys and arguments; loads again and retries once when the server lost them. */
  async run(name: string, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    const s = this.scripts.get(name);
    if (!s) throw new Error(`no Lua script ${name}`);
    if (keys.length !== s.numberOfKeys) {
      throw new Error(`script ${name} takes ${s.numberOfKeys} keys, got ${keys.length}`);
    }
    const mode = this.mode ?? (await this.load());
    try {
      return await this.call(mode, s, keys, args);
    } catch (err) {
      if (!isMissing(err)) throw err;
      if (mode === 'evalsha') return await this.redis.eval(s.source, keys.length, ...keys, ...args);
      this.loaded = undefined;
      this.mode = undefined;
      return await this.call(await this.load(), s, keys, args);
    }
  }

  private call(mode: Mode, s: Script, keys: readonly string[], args: readonly (string | number)[]) {
    if (mode === 'evalsha') return this.redis.evalsha(s.sha, keys.length, ...keys, ...args);
    return this.redis.fcall(this.library.functions.get(s.name)!, keys.length, ...keys, ...args);
  }
}
