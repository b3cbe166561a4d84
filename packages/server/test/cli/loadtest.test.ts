// `m2m-auth loadtest` and `m2m-auth profile`, compiled and spawned as a user runs them, with small loads.

import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServerProcess, type ServerProcess } from '@m2m-auth/tools';
import { CLI, ensureBuilt, TSC } from '../helpers/process.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// Inside the repository so that the compiled modules resolve node_modules.
const BUILD = join(ROOT, 'node_modules', '.cache', `m2m-auth-loadtest-cli-${process.pid}`);
const MAIN = join(BUILD, 'cli', 'main.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

let work: string;
let target: ServerProcess;

function cli(args: string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((done) => {
    execFile(process.execPath, [MAIN, ...args], { cwd: work, env: { PATH: process.env.PATH ?? '', ...env }, timeout: 90_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => done({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr }));
  });
}

/** Registers a client through the admin API of `target`. */
async function createClient(metadata: Record<string, unknown>): Promise<{ clientId: string; clientSecret: string }> {
  const res = await fetch(`${target.adminUrl}/admin/clients`, {
    method: 'POST', headers: { authorization: `Bearer ${target.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify(metadata),
  });
  const c = (await res.json()) as { client_id: string; client_secret: string };
  return { clientId: c.client_id, clientSecret: c.client_secret };
}

function expectOneLineError(run: Run, pattern: RegExp): void {
  expect(run.code, run.stderr).toBe(1);
  const lines = run.stderr.split('\n').filter((l) => l.startsWith('m2m-auth:'));
  expect(lines, run.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(run.stderr).not.toMatch(/\n\s+at /);
}

beforeAll(async () => {
  ensureBuilt();
  const tsc = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.build.json', '--outDir', BUILD], { cwd: ROOT, encoding: 'utf8' });
  // Type errors elsewhere in a shared checkout do not stop the emit; a missing CLI does.
  if (!existsSync(MAIN)) throw new Error(`CLI build failed:\n${tsc.stdout}${tsc.stderr}`);
  work = mkdtempSync(join(tmpdir(), 'm2m-loadtest-cli-'));
  target = await startServerProcess({ command: [process.execPath, CLI] });
}, 180_000);

afterAll(async () => {
  await target?.close();
  if (work) rmSync(work, { recursive: true, force: true });
  rmSync(BUILD, { recursive: true, force: true });
});

describe('m2m-auth loadtest', () => {
  it('without --url starts its own server and prints the result as JSON', async () => {
    const r = await cli(['loadtest', '--clients', '10', '--requests', '3', '--client-count', '2', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { totalRequests: number; successes: number; failures: number; config: { connections: number } };
    expect(result).toMatchObject({ totalRequests: 30, successes: 30, failures: 0, config: { connections: 10 } });
    // Not a terminal: plain progress lines, not a redrawn bar.
    expect(r.stderr).toMatch(/^loadtest: 100 % 30\/30 /m);
    expect(r.stderr).not.toContain('\r');
  });

  it('prints a readable summary', async () => {
    const r = await cli(['loadtest', '--clients', '4', '--requests', '2', '--client-count', '1', '--mode', 'mixed', '--no-progress']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Load test: mixed against http:\/\/127\.0\.0\.1:\d+ \(own server\)$/m);
    expect(r.stdout).toMatch(/^Total requests\s+8 of 8 \(every planned request was sent\)$/m);
    expect(r.stdout).toMatch(/^Latency\s+avg .* p50 .* p95 .* p99 .* max /m);
    expect(r.stdout).toMatch(/^Successes\s+8$/m);
    expect(r.stdout).toMatch(/^Failures\s+0 \(0\.000 %\)$/m);
    expect(r.stderr).toBe('');
  });

  it('registers its clients through --admin-url on a server given by --url', async () => {
    const r = await cli(['loadtest', '--url', target.issuer, '--admin-url', target.adminUrl, '--clients', '6', '--requests', '2', '--client-count', '3', '--json'],
      { M2M_AUTH_ADMIN_TOKEN: target.adminToken });
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ url: target.issuer, successes: 12, config: { clientCount: 3 } });
  });

  it('sends the load as a given client', async () => {
    const { clientId, clientSecret } = await createClient({ client_name: 'cli', scope: 's', audience: ['https://api.example.com'] });
    const client = { clientId };
    const ok = await cli(['loadtest', '--url', target.issuer, '--client-id', client.clientId, '--audience', 'https://api.example.com', '--clients', '3', '--requests', '2', '--json'],
      { M2M_AUTH_LOADTEST_CLIENT_SECRET: clientSecret! });
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({ successes: 6, config: { clientCount: 1 } });

    const wrong = await cli(['loadtest', '--url', target.issuer, '--client-id', client.clientId, '--client-secret', 'wrong', '--clients', '2', '--requests', '1']);
    expectOneLineError(wrong, /first token request of .* failed \(oauth_invalid_client\)/);
    expect(wrong.stdout).toBe('');
  });

  it.each([
    [['--url', 'http://127.0.0.1:9'], /With --url, give --client-id and --client-secret, or --admin-url/],
    [['--client-id', 'x'], /--client-id and --admin-url need --url/],
    [['--url', 'http://127.0.0.1:9', '--client-id', 'x'], /--client-id needs --client-secret/],
    [['--url', 'http://127.0.0.1:9', '--client-id', 'x', '--client-secret', 'y'], /Cannot reach http:\/\/127\.0\.0\.1:9/],
  ])('refuses %j with one line', async (args, message) => {
    expectOneLineError(await cli(['loadtest', ...args, '--clients', '1', '--requests', '1']), message);
  });

  it('rejects a bad number', async () => {
    const r = await cli(['loadtest', '--clients', '0']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--clients.*whole number from 1/);
  });
});

describe('m2m-auth profile', () => {
  it('writes the report folder and prints where', async () => {
    const out = join(work, 'profile');
    const r = await cli(['profile', '--out', out, '--clients', '4', '--requests', '3', '--client-count', '2', '--phase-seconds', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`Profile report written to ${out}`);
    expect(r.stdout).toMatch(/12 requests in .* 0 failures/);
    expect(r.stderr).toContain('profile: writing the report');
    for (const f of ['report.md', 'report.html', 'cpu.pb.gz', 'heap.pb.gz', 'cpu.cpuprofile', 'heap.heapprofile', 'results.json']) {
      expect(existsSync(join(out, f)), f).toBe(true);
    }
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toContain('4 concurrent clients × 3 requests');
    // The compiled code attributes its own frames too.
    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { cpu: { components: Array<{ component: string }> } };
    expect(results.cpu.components.map((c) => c.component)).toContain('http');
    // The build measured, for --compare; the repository's alert rules were evaluated.
    const full = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { version?: string; alerts: { evaluations: unknown[] } };
    expect(full.version).toMatch(/\(git [0-9a-f]+\+?\)$/);
    expect(full.alerts.evaluations.length).toBeGreaterThan(10);
    expect(md).toContain('Alert rules');

    const c = await cli(['profile', '--compare', out, out]);
    expect(c.code, c.stderr).toBe(0);
    expect(c.stdout).toMatch(/^Throughput \(req\/s\)\s+[\d,.]+\s+[\d,.]+\s+\+0\.00 \(\+0\.0 %\)\s+same$/m);
    const bad = await cli(['profile', '--compare', out, work]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('is not a profile report folder');
  });

  it('--url at a server whose pprof routes are off: one line naming M2M_AUTH_PPROF, exit 1', async () => {
    const r = await cli(['profile', '--url', target.issuer, '--admin-url', target.adminUrl, '--out', join(work, 'never'), '--no-progress'], { M2M_AUTH_ADMIN_TOKEN: target.adminToken });
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain('M2M_AUTH_PPROF');
    expect(existsSync(join(work, 'never'))).toBe(false);
  });

  it('refuses flags that only fit one way of running', async () => {
    const r = await cli(['profile', '--admin-url', 'http://127.0.0.1:1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('go with --url');
    const d = await cli(['profile', '--url', 'http://127.0.0.1:1', '--database-url', 'sqlite::memory:']);
    expect(d.code).toBe(1);
    expect(d.stderr).toContain('--database-url applies only');
  });
});
