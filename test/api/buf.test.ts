/**
 * The protobuf schema is tidy (`buf lint`) and the generated code in src/gen is what `buf generate`
 * makes from it today, byte for byte.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = join(ROOT, 'node_modules', '.bin');
const BUF = join(BIN, 'buf');

function buf(...args: string[]) {
  return spawnSync(BUF, args, {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 20_000,
    // protoc-gen-es is a local plugin: buf finds it on PATH.
    env: { ...process.env, PATH: `${BIN}${delimiter}${process.env.PATH ?? ''}` },
  });
}

function files(dir: string): string[] {
  return readdirSync(dir)
    .flatMap((name) => {
      const path = join(dir, name);
      return statSync(path).isDirectory() ? files(path) : [path];
    })
    .sort();
}

describe('buf', () => {
  const out = mkdtempSync(join(tmpdir(), 'ipvs-buf-'));
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('buf lint exits 0', () => {
    const result = buf('lint');
    expect(result.error).toBeUndefined();
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('buf generate into a temporary directory gives src/gen byte for byte', () => {
    // buf.gen.yaml writes to src/gen; --output moves that under the temporary directory.
    const result = buf('generate', '--template', 'buf.gen.yaml', '--output', out);
    expect(result.error).toBeUndefined();
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const fresh = join(out, 'src', 'gen');
    const committed = join(ROOT, 'src', 'gen');
    const names = (dir: string) => files(dir).map((f) => relative(dir, f));
    expect(names(fresh).length).toBeGreaterThan(0);
    expect(names(committed)).toEqual(names(fresh));
    for (const name of names(fresh)) {
      const a = readFileSync(join(fresh, name));
      const b = readFileSync(join(committed, name));
      expect(b.equals(a), `src/gen/${name} is not what buf generate makes (run \`npx buf generate\`)`).toBe(
        true,
      );
    }
  });
});
