// The HTTP benchmark's scripts run and print what BENCHMARKS.md promises. No timing assertions:
// benchmarks are not timed tests, and these run on busy CI machines. (The server's own benchmarks,
// bench/micro.js and the sign-only reference, are tested in the server package.)

import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkTarget, floorRate, formatBytes, formatDuration, formatRate, table } from '../../bench/lib/report.js';
import { haveWrk, parseWrkDuration, parseWrkOutput, runWrk } from '../../bench/lib/wrk.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function node(args: string[], env: Record<string, string> = {}) {
  return run(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, timeout: 90_000, maxBuffer: 4 * 1024 * 1024 });
}

describe('bench/lib/report.js', () => {
  it('judges a ratio that must be at least its target', () => {
    const met = checkTarget({ name: 'token endpoint / floor', value: 0.87, target: 0.8, better: 'higher' });
    expect(met.met).toBe(true);
    expect(met.line).toMatch(/^MET {6}token endpoint \/ floor\s+0\.87 {2}\(target >= 0\.80\)$/);
    const notMet = checkTarget({ name: 'm2m-auth / oidc-provider', value: 2.9, target: 3.5, better: 'higher' });
    expect(notMet.met).toBe(false);
    expect(notMet.line).toMatch(/^NOT MET {2}m2m-auth \/ oidc-provider\s+2\.90 {2}\(target >= 3\.50\)$/);
    expect(checkTarget({ name: 'equal', value: 0.8, target: 0.8, better: 'higher' }).met).toBe(true);
  });

  it('judges values that must stay below or at their target', () => {
    const p99 = checkTarget({ name: 'p99', value: 0.0042, target: 0.005, better: 'lower', format: formatDuration });
    expect(p99.met).toBe(true);
    expect(p99.line).toContain('4.200 ms  (target < 5.000 ms)');
    expect(checkTarget({ name: 'p99', value: 0.005, target: 0.005, better: 'lower' }).met).toBe(false);
    expect(checkTarget({ name: 'failures', value: 0, target: 0, better: 'at-most', format: String }).line).toMatch(/^MET .* 0 {2}\(target <= 0\)$/);
    expect(checkTarget({ name: 'failures', value: 3, target: 0, better: 'at-most', format: String }).met).toBe(false);
    expect(checkTarget({ name: 'rss', value: 160e6, target: 150e6, better: 'lower', format: formatBytes }).line)
      .toMatch(/^NOT MET .*160\.0 MB {2}\(target < 150\.0 MB\)$/);
  });

  it('never calls an unmeasured value MET', () => {
    for (const value of [null, undefined, Number.NaN]) {
      const t = checkTarget({ name: 'skipped', value, target: 1, better: 'higher', note: 'oidc-provider skipped' });
      expect(t.met).toBe(false);
      expect(t.line).toMatch(/^NOT MET .*not measured {2}\(target >= 1\.00\) {2}oidc-provider skipped$/);
    }
  });

  it('computes the floor as one HTTP round trip plus one signature', () => {
    // 10,000/s hello-world is 100 µs a request; plus 50 µs of signature is 150 µs: 6,667/s.
    expect(floorRate(10_000, 50e-6)).toBeCloseTo(6666.67, 1);
    expect(formatRate(6666.67)).toBe('6,667/s');
    expect(formatDuration(50e-6)).toBe('50.0 µs');
    expect(formatDuration(0.25)).toBe('250.00 ms');
    expect(table(['a', 'b'], [['x', 1], ['yy', 22]])).toBe('a    b\n--  --\nx    1\nyy  22');
  });
});

describe('bench/lib/wrk.js', () => {
  it('reads a wrk --latency summary', () => {
    const out = `Running 5s test @ http://127.0.0.1:18999/hello
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.84ms    4.14ms   1.02s    92.80%
    Req/Sec    11.60k     2.61k   14.03k    66.67%
  Latency Distribution
     50%  812.00us
     75%    5.02ms
     90%    7.86ms
     99%   14.09ms
  57000 requests in 5.00s, 1.02MB read
  Socket errors: connect 0, read 2, write 0, timeout 18
  Non-2xx or 3xx responses: 3
Requests/sec:  11399.92
Transfer/sec:    207.99KB
`;
    const r = parseWrkOutput(out);
    expect(r.requests).toBe(57000);
    expect(r.elapsedS).toBe(5);
    expect(r.rate).toBeCloseTo(11399.92);
    expect(r.latency.avg).toBeCloseTo(0.00484);
    expect(r.latency.max).toBeCloseTo(1.02);
    expect(r.latency.p50).toBeCloseTo(0.000812);
    expect(r.latency.p99).toBeCloseTo(0.01409);
    expect(r.socketErrors).toEqual({ connect: 0, read: 2, write: 0, timeout: 18 });
    expect(r.non2xx).toBe(3);
    expect(parseWrkDuration('1.50m')).toBe(90);
    expect(parseWrkOutput(out.replace(/ {2}Socket errors.*\n {2}Non-2xx.*\n/, '')).non2xx).toBe(0);
  });
});

describe('load generators against a local server', () => {
  let server: Server;
  let url: string;
  const seen: string[] = [];

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        if (seen.length < 100) seen.push(`${req.headers.dpop ?? req.headers.authorization} ${body}`);
        res.setHeader('content-type', 'application/json');
        res.end('{"access_token":"x"}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const env = { BENCH_BODY: 'grant_type=client_credentials', BENCH_AUTHORIZATION: 'Basic Y2w6c2VjcmV0' };

  it('open loop: sends every scheduled request and reports latency percentiles', async () => {
    const { stdout } = await node(['bench/open-loop.js', '--url', url, '--rate', '200', '--duration', '0.5', '--json'], env);
    const r = JSON.parse(stdout) as { scheduled: number; completed: number; ok: number; latency: { p50: number; p99: number } };
    expect(r.scheduled).toBe(100);
    expect(r.completed).toBe(100);
    expect(r.ok).toBe(100);
    expect(r.latency.p99).toBeGreaterThanOrEqual(r.latency.p50);
    expect(seen).toContain('Basic Y2w6c2VjcmV0 grant_type=client_credentials');
  }, 30_000);

  it('sequential and closed modes answer', async () => {
    const seq = JSON.parse((await node(['bench/open-loop.js', '--url', url, '--mode', 'sequential', '--requests', '50', '--json'], env)).stdout);
    expect(seq).toMatchObject({ mode: 'sequential', requests: 50, non2xx: 0 });
    const closed = JSON.parse((await node(['bench/open-loop.js', '--url', url, '--mode', 'closed', '--connections', '4', '--requests', '5', '--duration', '5', '--json'], env)).stdout);
    expect(closed).toMatchObject({ mode: 'closed', requests: 20, ok: 20, errors: 0 });
  }, 30_000);

  it('burst: opens every socket at once and counts the answers', async () => {
    const { stdout } = await node(['bench/burst.js', '--url', url, '--sockets', '50', '--json'], env);
    const r = JSON.parse(stdout) as { sockets: number; answered: number; ok: number; refused: number; failed: number; listenOverflows: number };
    expect(r).toMatchObject({ sockets: 50, answered: 50, ok: 50, refused: 0, failed: 0 });
    expect(typeof r.listenOverflows).toBe('number');
  }, 30_000);

  // The DPoP and first-seen federated stages send a line of a file per request: a proof or a
  // platform token is good once, so none may be sent twice, and wrk stops when they run out.
  const wrkInstalled = haveWrk();
  if (!wrkInstalled) console.warn('bench-scripts: wrk is not installed (apt-get install wrk): the fresh-post.lua test is skipped');
  it.skipIf(!wrkInstalled)('fresh-post.lua: a new body or DPoP header per request, each line at most once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fresh-post-'));
    try {
      const lines = Array.from({ length: 40 }, (_, i) => `grant_type=client_credentials&n=${i}`);
      writeFileSync(join(dir, 'bodies.txt'), `${lines.join('\n')}\n`);
      writeFileSync(join(dir, 'proofs.txt'), `${lines.map((_, i) => `proof-${i}`).join('\n')}\n`);
      seen.length = 0;
      await runWrk({ url, body: 'unused', bodyFile: join(dir, 'bodies.txt'), connections: 4, durationS: 1 });
      const bodies = seen.map((s) => s.split(' ')[1]!);
      expect(bodies.length).toBeGreaterThan(30);
      expect(new Set(bodies).size).toBe(bodies.length);
      for (const b of bodies) expect(lines).toContain(b);
      seen.length = 0;
      await runWrk({ url, body: 'grant_type=client_credentials', dpopFile: join(dir, 'proofs.txt'), connections: 4, durationS: 1 });
      const proofs = seen.map((s) => s.split(' ')[0]!);
      expect(proofs.length).toBeGreaterThan(30);
      expect(new Set(proofs).size).toBe(proofs.length);
      for (const p of proofs) expect(p).toMatch(/^proof-\d+$/);
      expect(seen.every((s) => s.endsWith(' grant_type=client_credentials'))).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('bench/run.js loads and explains itself', async () => {
    const { stderr } = await node(['bench/run.js', '--help']);
    expect(stderr).toContain('usage: node bench/run.js [--quick]');
  }, 30_000);
});
