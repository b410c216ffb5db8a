/**
 * Runs conformance vectors — JSON traces of operations with expected decisions and counters —
 * against any Engine. The format is documented in test/conformance/README.md.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { expect } from 'vitest';
import { IpvsError } from '../../src/domain/errors.js';
import { ManualClock } from '../../src/engine/clock.js';
import type { Engine } from '../../src/engine/engine.js';

export interface EngineUnderTest {
  engine: Engine;
  /** Moves the shared manual clock; the runner calls engine.tick() afterwards. */
  advance(ms: number): Promise<void>;
  close(): Promise<void>;
}

export type EngineFactory = (options: {
  startMs: number;
  randomInt: (n: number) => number;
}) => Promise<EngineUnderTest>;

export interface Vector {
  name: string;
  ref?: string;
  aliases?: Record<string, string>;
  random?: number[];
  steps: Step[];
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Step = Record<string, any> & { op: string };

export const VECTOR_START_MS = 1_000_000_000;

export function loadVectors(dir: string): { file: string; vector: Vector }[] {
  const out: { file: string; vector: Vector }[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.json')) {
        const parsed = JSON.parse(readFileSync(path, 'utf8')) as Vector | Vector[];
        for (const vector of Array.isArray(parsed) ? parsed : [parsed])
          out.push({ file: relative(dir, path), vector });
      }
    }
  };
  walk(dir);
  return out;
}

export function manualClockEngine(
  make: (clock: ManualClock, randomInt: (n: number) => number) => Engine,
): EngineFactory {
  return async ({ startMs, randomInt }) => {
    const clock = new ManualClock(startMs);
    const engine = make(clock, randomInt);
    return {
      engine,
      advance: async (ms) => clock.advance(ms),
      close: () => engine.close(),
    };
  };
}

export async function runVector(factory: EngineFactory, vector: Vector): Promise<void> {
  const randoms = [...(vector.random ?? [])];
  const randomInt = (n: number) => {
    const r = randoms.shift();
    if (r === undefined) throw new Error(`vector ${vector.name}: random sequence exhausted`);
    if (r >= n) throw new Error(`vector ${vector.name}: random value ${r} is not below ${n}`);
    return r;
  };
  const ut = await factory({ startMs: VECTOR_START_MS, randomInt });
  const names = new Map<string, string>();
  const aliases = vector.aliases ?? {};
  const reverse = new Map(Object.entries(aliases).map(([alias, key]) => [key, alias]));
  /** `$name` → a saved id; an alias → its destination key; anything else as is. */
  const resolve = (v: unknown): unknown => {
    if (typeof v === 'string') {
      if (v.startsWith('$')) {
        const id = names.get(v.slice(1));
        if (id === undefined) throw new Error(`unknown saved name ${v}`);
        return id;
      }
      return aliases[v] ?? v;
    }
    if (Array.isArray(v)) return v.map(resolve);
    if (v && typeof v === 'object')
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, resolve(x)]));
    return v;
  };
  const alias = (key: string) => reverse.get(key) ?? key;
  const e = ut.engine;
  try {
    for (const [index, step] of vector.steps.entries()) {
      const where = `${vector.name} step ${index} (${step.op})`;
      const expectError = async (run: () => Promise<unknown>) => {
        try {
          await run();
        } catch (err) {
          if (!(err instanceof IpvsError)) throw err;
          expect(err.code, `${where}: ${err.message}`).toBe(step.expectError);
          if (step.expectMessage) expect(err.message, where).toContain(step.expectMessage);
          return;
        }
        throw new Error(`${where}: expected error ${step.expectError}`);
      };
      const call = async (run: () => Promise<unknown>) => (step.expectError ? expectError(run) : run());
      switch (step.op) {
        case 'addService':
          await call(() => e.addService(resolve(step.service) as never));
          break;
        case 'editService':
          await call(() => e.editService(step.key, resolve(step.patch) as never));
          break;
        case 'deleteService':
          await call(() => e.deleteService(step.key));
          break;
        case 'clear':
          await e.clear();
          break;
        case 'addDest':
          await call(() => e.addDestination(step.service, resolve(step.dest) as never));
          break;
        case 'editDest':
          await call(() =>
            e.editDestination(step.service, resolve(step.dest) as string, resolve(step.patch) as never),
          );
          break;
        case 'deleteDest':
          await call(() => e.deleteDestination(step.service, resolve(step.dest) as string));
          break;
        case 'setSysctl':
          await call(() => e.setSysctl(step.patch));
          break;
        case 'setTimeouts':
          await call(() => e.setTimeouts(step.timeouts));
          break;
        case 'advance':
          await ut.advance(Math.round(step.seconds * 1000));
          await e.tick();
          break;
        case 'schedule': {
          if (step.expectError) {
            await expectError(() => e.schedule(resolve(step.request) as never));
            break;
          }
          const r = await e.schedule(resolve(step.request) as never);
          if (step.as) {
            names.set(step.as, r.connection);
            if (r.template) names.set(`${step.as}.template`, r.template);
          }
          if (step.expect) {
            const want = resolve(step.expect) as Record<string, unknown>;
            const got: Record<string, unknown> = { ...r, destination: r.destination };
            for (const [k, v] of Object.entries(want)) expect(got[k], `${where}: ${k}`).toEqual(v);
          }
          break;
        }
        case 'scheduleSeq': {
          const got: string[] = [];
          const count = step.expect.length;
          for (let i = 0; i < count; i++) {
            const request = JSON.parse(JSON.stringify(step.request).replaceAll('{i}', String(i)));
            try {
              const r = await e.schedule(resolve(request) as never);
              got.push(alias(r.destination));
            } catch (err) {
              if (!(err instanceof IpvsError)) throw err;
              got.push(err.code);
            }
          }
          expect(got, where).toEqual(step.expect);
          break;
        }
        case 'update': {
          if (step.expectError) {
            await expectError(() => e.updateConnection(resolve(step.connection) as string, step.update));
            break;
          }
          const c = await e.updateConnection(resolve(step.connection) as string, step.update);
          for (const [k, v] of Object.entries(resolve(step.expect ?? {}) as object))
            expect((c as never)[k], `${where}: ${k}`).toEqual(v);
          break;
        }
        case 'close':
          await call(() => e.closeConnection(resolve(step.connection) as string));
          break;
        case 'expectDests': {
          const svc = await e.getService(step.service);
          for (const [name, want] of Object.entries(step.dests as Record<string, Record<string, unknown>>)) {
            const key = resolve(name) as string;
            const d = svc.destinations.find((x) => x.key === key);
            expect(d, `${where}: destination ${name} listed`).toBeDefined();
            for (const [k, v] of Object.entries(want))
              expect((d as never)[k], `${where}: ${name}.${k}`).toEqual(v);
          }
          break;
        }
        case 'expectTrash': {
          const snap = await e.snapshot();
          for (const [name, want] of Object.entries(step.dests as Record<string, Record<string, unknown>>)) {
            const key = resolve(name) as string;
            const d = snap.trash.find((x) => x.key === key && x.service === step.service);
            expect(d, `${where}: ${name} in the trash`).toBeDefined();
            for (const [k, v] of Object.entries(want))
              expect((d as never)[k], `${where}: ${name}.${k}`).toEqual(v);
          }
          break;
        }
        case 'expectOrder': {
          const svc = await e.getService(step.service);
          expect(
            svc.destinations.map((d) => alias(d.key)),
            where,
          ).toEqual(step.order);
          break;
        }
        case 'expectService': {
          if (step.gone) {
            await expectErrorCode(() => e.getService(step.key), 'NOT_FOUND', where);
            break;
          }
          const svc = await e.getService(step.key);
          for (const [k, v] of Object.entries(step.expect))
            expect((svc as never)[k], `${where}: ${k}`).toEqual(v);
          break;
        }
        case 'expectConnection': {
          const id = resolve(step.connection) as string;
          const all = await e.listConnections();
          const c = all.find((x) => x.id === id);
          if (step.gone) {
            expect(c, `${where}: ${step.connection} should be gone`).toBeUndefined();
            break;
          }
          expect(c, `${where}: ${step.connection} should exist`).toBeDefined();
          for (const [k, v] of Object.entries(resolve(step.expect) as object))
            expect((c as never)[k], `${where}: ${k}`).toEqual(v);
          break;
        }
        case 'expectConnections': {
          const list = await e.listConnections(step.filter ?? {});
          if (step.count !== undefined) expect(list.length, `${where}: count`).toBe(step.count);
          for (const want of (step.match ?? []) as Record<string, unknown>[]) {
            const w = resolve(want) as Record<string, unknown>;
            const hit = list.find((c) => Object.entries(w).every(([k, v]) => (c as never)[k] === v));
            expect(hit, `${where}: a connection like ${JSON.stringify(want)}`).toBeDefined();
          }
          break;
        }
        default:
          throw new Error(`${where}: unknown op`);
      }
    }
    expect(randoms, `${vector.name}: every value of the random sequence is used`).toEqual([]);
  } finally {
    await ut.close();
  }
}

async function expectErrorCode(run: () => Promise<unknown>, code: string, where: string): Promise<void> {
  try {
    await run();
  } catch (err) {
    expect((err as IpvsError).code, where).toBe(code);
    return;
  }
  throw new Error(`${where}: expected ${code}`);
}
