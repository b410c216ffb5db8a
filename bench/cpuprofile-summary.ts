/**
 * Summary of a V8 `.cpuprofile` (from `node --cpu-prof`): where the busy time went, by owner (a src/
 * file, an npm package, node core, a native binding, GC) and by function (self and inclusive time).
 *
 *   tsx bench/cpuprofile-summary.ts <file.cpuprofile> [top=25] [calls]
 *
 * With `calls` (answered requests during the profile) times are also shown per call. bench/api.bench.ts
 * uses it for the profiles it takes when BENCH_CPU_PROF=1, and compares a server with its ceiling
 * owner by owner (`compareOwners`).
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Microseconds by owner and by function. */
export interface ProfileCosts {
  file: string;
  totalUs: number;
  busyUs: number;
  owners: Map<string, number>;
  self: Map<string, number>;
  inclusive: Map<string, number>;
  /** Inclusive time of functions in the project's own files (src/, bench/). */
  project: Map<string, number>;
}

const IDLE = new Set(['(idle)', '(root)']);

/** Who owns a frame: `src/...` file, npm package, `node core`, `(native)` binding, or a V8 pseudo-frame. */
export function owner(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (url === '') return functionName.startsWith('(') ? functionName : '(native)';
  const pkg = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (pkg) return pkg[1];
  if (url.startsWith('node:')) return 'node core';
  const src = /\/((?:src|bench)\/.*)$/.exec(url);
  return src ? src[1] : url;
}

function label(frame: CallFrame): string {
  const name = frame.functionName || '(anonymous)';
  return frame.url === '' ? name : `${name}  ${owner(frame)}:${frame.lineNumber + 1}`;
}

const add = (map: Map<string, number>, key: string, us: number) => map.set(key, (map.get(key) ?? 0) + us);

/** Costs of the samples taken at or after `fromUs` (the monotonic clock of process.hrtime, in µs). */
export function analyseProfile(file: string, fromUs = 0): ProfileCosts {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const costs: ProfileCosts = {
    file,
    totalUs: 0,
    busyUs: 0,
    owners: new Map(),
    self: new Map(),
    inclusive: new Map(),
    project: new Map(),
  };
  let at = profile.startTime;
  profile.samples.forEach((id, i) => {
    at += profile.timeDeltas[i];
    if (at < fromUs) return;
    const dt = profile.timeDeltas[i + 1] ?? 0;
    costs.totalUs += dt;
    const node = byId.get(id)!;
    if (IDLE.has(node.callFrame.functionName)) return;
    costs.busyUs += dt;
    add(costs.self, label(node.callFrame), dt);
    add(costs.owners, owner(node.callFrame), dt);
    const seen = new Set<string>();
    for (let up: number | undefined = id; up !== undefined; up = parent.get(up)) {
      const frame = byId.get(up)!.callFrame;
      if (IDLE.has(frame.functionName) || frame.url === '') continue;
      const name = label(frame);
      if (seen.has(name)) continue;
      seen.add(name);
      add(costs.inclusive, name, dt);
      if (/^(src|bench)\//.test(owner(frame))) add(costs.project, name, dt);
    }
  });
  return costs;
}

/** The main thread's profile in a --cpu-prof-dir (tsx's loader thread writes a second, smaller one). */
export function mainProfile(dir: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f));
  return files.sort((a, b) => statSync(b).size - statSync(a).size)[0];
}

function table(
  title: string,
  map: Map<string, number>,
  busyUs: number,
  top: number,
  calls?: number,
): string[] {
  const out = [title];
  for (const [name, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    const perCall = calls ? `${(us / calls).toFixed(2).padStart(7)} µs/call  ` : '';
    out.push(`  ${((us / busyUs) * 100).toFixed(1).padStart(5)}%  ${perCall}${name}`);
  }
  return out;
}

export function summariseProfile(costs: ProfileCosts, top = 25, calls?: number): string {
  if (costs.busyUs === 0) return `${costs.file}: no busy samples`;
  const perCall = calls ? `, ${calls} calls, ${(costs.busyUs / calls).toFixed(1)} µs busy per call` : '';
  return [
    `${costs.file}: ${(costs.totalUs / 1e6).toFixed(1)} s profiled, ${(costs.busyUs / 1e6).toFixed(1)} s busy${perCall} ` +
      '(percentages of busy time)',
    ...table('by function, self time:', costs.self, costs.busyUs, top, calls),
    ...table('project functions (src/, bench/), inclusive time:', costs.project, costs.busyUs, top, calls),
  ].join('\n');
}

/** Owner by owner, µs of CPU per answered call in two profiles (e.g. the service and its ceiling). */
export function compareOwners(
  a: { name: string; costs: ProfileCosts; calls: number },
  b: { name: string; costs: ProfileCosts; calls: number },
  top = 20,
): string {
  const names = new Set([...a.costs.owners.keys(), ...b.costs.owners.keys()]);
  const rows = [...names].map((n) => {
    const x = (a.costs.owners.get(n) ?? 0) / a.calls;
    const y = (b.costs.owners.get(n) ?? 0) / b.calls;
    return { n, x, y };
  });
  rows.sort((p, q) => Math.abs(q.x - q.y) - Math.abs(p.x - p.y));
  const width = Math.max(5, ...rows.slice(0, top).map((r) => r.n.length));
  const fmt = (v: number) => v.toFixed(2).padStart(9);
  const out = [
    `${'owner'.padEnd(width)}  ${a.name.padStart(9)}  ${b.name.padStart(9)}  ${'extra'.padStart(9)}   (µs CPU per call)`,
    `${'total busy'.padEnd(width)}  ${fmt(a.costs.busyUs / a.calls)}  ${fmt(b.costs.busyUs / b.calls)}  ${fmt(
      a.costs.busyUs / a.calls - b.costs.busyUs / b.calls,
    )}`,
  ];
  for (const r of rows.slice(0, top))
    out.push(`${r.n.padEnd(width)}  ${fmt(r.x)}  ${fmt(r.y)}  ${fmt(r.x - r.y)}`);
  return out.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [file, top, calls] = process.argv.slice(2);
  if (!file) {
    process.stderr.write('usage: cpuprofile-summary.ts <file.cpuprofile> [top] [calls]\n');
    process.exit(2);
  }
  const costs = analyseProfile(file);
  process.stdout.write(
    `${summariseProfile(costs, top ? Number(top) : 25, calls ? Number(calls) : undefined)}\n` +
      `${table('by owner, self time:', costs.owners, costs.busyUs, 30).join('\n')}\n`,
  );
}
