// A rolling restart under load: two real instances on one SQLite file (same data folder, KEK and
// admin token) behind a health-checking load balancer. While 8 clients ask for tokens without
// pause, instance A is stopped with SIGTERM, started again on the same port, then B. Every one of
// the requests must be a 200 with a token that verifies.

import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, request } from 'undici';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { ensureBuilt, reservedPort, within } from '../helpers/process.js';
import { startInstance, type Instance } from './instance.js';
import { LoadBalancer } from './load-balancer.js';

const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-rolling-'));
const ADMIN = 'rolling-admin-token-' + randomBytes(16).toString('hex');
const ISSUER = 'https://auth.rolling.test';
const AUDIENCE = 'https://orders.example.com';
const CONCURRENCY = 8;
const MIN_LOAD_MS = 6000;

const env: Record<string, string> = {
  M2M_AUTH_DATABASE_URL: `sqlite:${join(dir, 'shared.db')}`,
  M2M_AUTH_DATA_DIR: dir,
  M2M_AUTH_KEK: randomBytes(32).toString('base64'),
  M2M_AUTH_ADMIN_TOKEN: ADMIN,
  M2M_AUTH_ISSUER: ISSUER,
  // Long enough for the balancer's 100 ms health checks to see readiness go false.
  M2M_AUTH_SHUTDOWN_DELAY: '2',
  M2M_AUTH_SHUTDOWN_TIMEOUT: '10',
  // This test measures restarts, not the per-client rate limit.
  M2M_AUTH_TOKEN_RATE_LIMIT: '0',
};

interface Load {
  ok: number;
  failures: string[];
  tokens: string[];
}

/** `concurrency` clients sending token requests back to back until stopped. */
function startLoad(url: string, authorization: string, concurrency: number) {
  const dispatcher = new Agent({ connections: concurrency });
  const result: Load = { ok: 0, failures: [], tokens: [] };
  let running = true;
  const worker = async () => {
    while (running) {
      try {
        const r = await request(`${url}/oauth2/token`, {
          method: 'POST', dispatcher,
          headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
          body: 'grant_type=client_credentials',
        });
        const text = await r.body.text();
        const token = r.statusCode === 200 ? (JSON.parse(text) as { access_token?: string }).access_token : undefined;
        if (token) {
          result.ok++;
          if (result.ok % 20 === 1) result.tokens.push(token);
        } else {
          result.failures.push(`${r.statusCode} ${text.slice(0, 200)}`);
        }
      } catch (err) {
        result.failures.push(`${(err as { code?: string }).code ?? ''} ${(err as Error).message}`);
      }
    }
  };
  const workers = Array.from({ length: concurrency }, worker);
  return {
    result,
    async stop(): Promise<Load> {
      running = false;
      await Promise.all(workers);
      await dispatcher.close();
      return result;
    },
  };
}

async function readyStatus(url: string): Promise<number | 'refused'> {
  try {
    const r = await request(`${url}/readyz`, { headers: { connection: 'close' } });
    await r.body.dump();
    return r.statusCode;
  } catch {
    return 'refused';
  }
}

describe('rolling restart behind a load balancer', () => {
  const instances: Record<'A' | 'B', Instance | undefined> = { A: undefined, B: undefined };
  let balancer: LoadBalancer;
  let url: string;
  let authorization: string;

  beforeAll(async () => {
    ensureBuilt();
    // The balancer's backends keep their addresses through a restart, as in production: ports
    // reserved outside the ephemeral range, so nothing takes one between a stop and its restart.
    const [portA, portB] = [await reservedPort(), await reservedPort()];
    instances.A = await startInstance({ env, port: portA });
    instances.B = await startInstance({ env, port: portB });
    balancer = new LoadBalancer([
      { name: 'A', url: `http://127.0.0.1:${portA}` },
      { name: 'B', url: `http://127.0.0.1:${portB}` },
    ]);
    url = await balancer.start();
    const r = await fetch(`${instances.A.adminUrl}/admin/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'rolling', scope: 'orders:read', audience: [AUDIENCE] }),
    });
    expect(r.status).toBe(201);
    const c = (await r.json()) as { client_id: string; client_secret: string };
    authorization = 'Basic ' + Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64');
  }, 60_000);

  afterAll(async () => {
    await balancer?.close();
    await Promise.all([instances.A?.stop('SIGKILL'), instances.B?.stop('SIGKILL')]);
    rmSync(dir, { recursive: true, force: true });
  });

  /** SIGTERM, check the drain from outside, wait for exit 0, start again on the same port. */
  async function restart(name: 'A' | 'B'): Promise<{ servedBefore: number; drainedMs: number }> {
    const old = instances[name]!;
    const signalled = Date.now();
    const exit = old.stop('SIGTERM');
    await within(1500, async () => (await readyStatus(old.publicUrl)) === 503);
    await within(1000, async () => !balancer.healthy(name));
    expect(await exit).toEqual({ code: 0, signal: null });
    const drainedMs = Date.now() - signalled;
    const servedBefore = balancer.served(name);
    instances[name] = await startInstance({ env, port: old.port });
    await within(5000, async () => balancer.healthy(name));
    return { servedBefore, drainedMs };
  }

  it('answers every token request with a token while A, then B, restart', async () => {
    const started = Date.now();
    const load = startLoad(url, authorization, CONCURRENCY);
    await new Promise((r) => setTimeout(r, 1000));
    const a = await restart('A');
    await new Promise((r) => setTimeout(r, 500));
    const b = await restart('B');
    await new Promise((r) => setTimeout(r, Math.max(1000, MIN_LOAD_MS - (Date.now() - started))));
    const result = await load.stop();
    const elapsed = Date.now() - started;

    expect(result.failures).toEqual([]);
    expect(elapsed).toBeGreaterThanOrEqual(MIN_LOAD_MS);
    expect(result.ok).toBeGreaterThan(1000);
    // Each restart waited out the shutdown delay, and each new process took traffic afterwards.
    expect(a.drainedMs).toBeGreaterThanOrEqual(1900);
    expect(b.drainedMs).toBeGreaterThanOrEqual(1900);
    expect(balancer.served('A')).toBeGreaterThan(a.servedBefore);
    expect(balancer.served('B')).toBeGreaterThan(b.servedBefore);

    // The tokens, whichever process signed them, verify against the shared key set.
    const jwks = (await (await fetch(`${url}/oauth2/jwks`)).json()) as JSONWebKeySet;
    const keys = createLocalJWKSet(jwks);
    for (const token of result.tokens) {
      const { payload } = await jwtVerify(token, keys, { issuer: ISSUER, audience: AUDIENCE, typ: 'at+jwt' });
      expect(payload.scope).toBe('orders:read');
    }
    console.info(`rolling restart: ${result.ok} tokens in ${elapsed} ms, 0 failures; ${balancer.refusedRetries} refused connections retried`);
  }, 90_000);
});
