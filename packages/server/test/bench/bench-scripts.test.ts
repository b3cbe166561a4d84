// The server's own benchmarks run and print what BENCHMARKS.md promises: bench/micro.js (its
// modules, one step of the token endpoint at a time) and the sign-only reference (Fastify with the
// server's batching). No timing assertions: benchmarks are not timed tests.

import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { firstJsonLine, startNode, stop } from '@m2m-auth/tools/bench';
import { ensureBuilt } from '../helpers/process.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function node(args: string[], env: Record<string, string> = {}) {
  return run(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, timeout: 90_000, maxBuffer: 4 * 1024 * 1024 });
}

describe('bench/micro.js', () => {
  beforeAll(() => ensureBuilt());

  it('prints every micro-benchmark beside the raw node:crypto floor (--quick)', async () => {
    const { stdout } = await node(['bench/micro.js', '--quick']);
    expect(stdout).toMatch(/^m2m-auth micro-benchmarks: ES256, Node v\d+/m);
    expect(stdout).toMatch(/^benchmark\s+ops\/s\s+time\/op\s+vs floor$/m);
    expect(stdout).toMatch(/^raw node:crypto sign \(ES256\)\s+[\d,]+\/s\s+[\d.]+ (ns|µs|ms)\s+floor$/m);
    expect(stdout).toMatch(/^KeyRing\.sign \(mint a token\)\s+[\d,]+\/s\s+[\d.]+ (ns|µs|ms)\s+x[\d.]+ raw sign$/m);
    expect(stdout).toMatch(/^raw node:crypto verify \(ES256\)\s+.*floor$/m);
    expect(stdout).toMatch(/^KeyRing\.verify \(check a token\)\s+.*x[\d.]+ raw verify$/m);
    expect(stdout).toMatch(/^client auth \(registry\.get \+ verifyClientSecret\)\s+.*[\d.]+ raw sign$/m);
    expect(stdout).toMatch(/^storage getClient \(SQLite file, uncached\)\s+.*[\d.]+ raw sign$/m);
    expect(stdout).toMatch(/^parseForm \(token request body\)\s+.*[\d.]+ raw sign$/m);
    expect(stdout).toMatch(/^Map insert at a bound of 5,000 \(makeRoom\)\s+.*x[\d.]+ one by one$/m);
  }, 90_000);

  it('measures another algorithm with --alg and --json', async () => {
    const { stdout } = await node(['bench/micro.js', '--alg', 'EdDSA', '--duration', '50', '--json']);
    const out = JSON.parse(stdout) as { alg: string; results: Array<{ name: string; opsPerSec: number }> };
    expect(out.alg).toBe('EdDSA');
    expect(out.results.map((r) => r.name)).toContain('raw node:crypto sign (EdDSA)');
    for (const r of out.results) expect(r.opsPerSec).toBeGreaterThan(0);
  }, 90_000);

  it('refuses an unknown algorithm', async () => {
    await expect(node(['bench/micro.js', '--alg', 'HS256'])).rejects.toMatchObject({
      stderr: expect.stringContaining('--alg must be one of ES256, EdDSA, PS256, RS256'),
    });
  }, 30_000);
});

describe('bench/sign-only-server.js', () => {
  it('answers every POST with an RFC 9068 ES256 access token that its JWKS verifies', async () => {
    ensureBuilt();
    const proc = startNode([join(ROOT, 'bench/sign-only-server.js')], { cwd: ROOT });
    try {
      const { url, issuer } = (await firstJsonLine(proc)) as { url: string; issuer: string };
      const res = await fetch(`${url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials' });
      expect(res.status).toBe(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
      const body = (await res.json()) as { access_token: string; token_type: string };
      expect(body.token_type).toBe('Bearer');
      const jwks = createLocalJWKSet((await (await fetch(`${url}/jwks`)).json()) as JSONWebKeySet);
      const { payload } = await jwtVerify(body.access_token, jwks, { issuer, audience: 'https://orders.example.com', typ: 'at+jwt', algorithms: ['ES256'] });
      expect(Object.keys(payload).sort()).toEqual(['aud', 'client_id', 'exp', 'iat', 'iss', 'jti', 'scope', 'sub']);
    } finally {
      await stop(proc);
    }
  }, 30_000);
});
