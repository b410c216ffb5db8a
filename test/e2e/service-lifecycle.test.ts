/**
 * The real service binary's start and stop: configuration errors stop it with a message naming the
 * setting, a start beyond loopback without a token warns, IPVS_RULES_FILE is loaded, and SIGTERM
 * lets in-flight calls finish before a clean exit.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, runProcess, startServiceProcess, stopAll } from './service-process.js';

afterAll(stopAll);

describe('service start and stop', () => {
  it('refuses a bad setting with exit status 2 and names it', async () => {
    const r = await runProcess(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
      cwd: REPO_ROOT,
      env: { ...process.env, HTTP_PORT: '70000' },
    });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('HTTP_PORT must be a port number from 0 to 65535 (got "70000")');
  });

  it('loads IPVS_RULES_FILE at start', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipvs-rules-'));
    const file = join(dir, 'rules');
    writeFileSync(file, '-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 1\n');
    const svc = await startServiceProcess({ env: { IPVS_RULES_FILE: file } });
    const rules = await (await fetch(`${svc.url}/v1/rules`)).text();
    expect(rules).toBe('-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 1\n');
    expect(await svc.stop()).toBe(0);
  });

  it('warns when listening beyond loopback without a token', async () => {
    const svc = await startServiceProcess({ env: { HOST: '0.0.0.0' } });
    expect(svc.output()).toContain('without IPVS_ADMIN_TOKEN');
    expect(await svc.stop()).toBe(0);
  });

  it('does not warn beyond loopback when a token is set', async () => {
    const svc = await startServiceProcess({
      env: { HOST: '0.0.0.0', IPVS_ADMIN_TOKEN: 'a-long-enough-token' },
    });
    expect(svc.output()).not.toContain('without IPVS_ADMIN_TOKEN');
    expect(await svc.stop()).toBe(0);
  });

  it('drains on SIGTERM: calls under way finish, then the process exits 0', async () => {
    const svc = await startServiceProcess();
    await fetch(`${svc.url}/v1/services`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ protocol: 'tcp', address: '10.0.0.1', port: 80, scheduler: 'rr' }),
    });
    // A batch of rules big enough to be under way when the signal lands.
    const lines = Array.from(
      { length: 2000 },
      (_, i) => `-a -t 10.0.0.1:80 -r 10.2.${i >> 8}.${i & 255}:80 -m -w 1`,
    );
    const text = `-A -t 10.0.0.1:80 -s rr\n${lines.join('\n')}\n`;
    const put = fetch(`${svc.url}/v1/rules`, {
      method: 'PUT',
      headers: { 'content-type': 'text/plain' },
      body: text,
    });
    await new Promise((r) => setTimeout(r, 20));
    const stopped = svc.stop();
    const answer = await put;
    expect(answer.status).toBe(200);
    expect(await answer.json()).toEqual({ linesApplied: 2001 });
    expect(await stopped).toBe(0);
    expect(svc.output()).toContain('"msg":"stopped"');
    await expect(fetch(`${svc.url}/healthz`)).rejects.toThrow();
  });
});
