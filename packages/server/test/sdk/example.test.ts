// examples/ end to end, as examples/README.md runs them: the compiled SDK (@m2m-auth/sdk, its
// dist/), a real m2m-auth, billing registered with the CLI, then the orders API and the billing
// service as plain `node` processes. Billing must print a successful orders response.

import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, startAuthServer, type AuthServer } from './helpers.js';
import { reservedPort } from '../helpers/process.js';
import { CLI, ensureBuilt, REPOSITORY } from '../helpers/process.js';

const run = promisify(execFile);
const root = REPOSITORY;
const srcSdk = join(root, 'packages/sdk/src');
const distSdk = join(root, 'packages/sdk/dist');

function files(dir: string, ext: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith(ext)).map((f) => join(dir, f));
}

/** dist/sdk lacks a module of src/sdk, or one is older than its source. */
function distIsStale(): boolean {
  if (!existsSync(CLI)) return true;
  return files(srcSdk, '.ts').some((src) => {
    const out = join(distSdk, relative(srcSdk, src)).replace(/\.ts$/, '.js');
    return !existsSync(out) || statSync(out).mtimeMs < statSync(src).mtimeMs;
  });
}

interface Child {
  proc: ChildProcess;
  output: () => string;
  /** Resolves with the output once `pattern` appears in it; rejects if the process exits first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

function start(script: string, env: Record<string, string>): Child {
  const proc = spawn(process.execPath, [join(root, script)], { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (chunk: Buffer): void => {
    out += chunk.toString('utf8');
    for (const l of listeners) l();
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  proc.on('exit', () => {
    for (const l of listeners) l();
  });
  return {
    proc,
    output: () => out,
    waitFor(pattern, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (pattern.test(out)) {
            cleanup();
            resolve(out);
          } else if (proc.exitCode !== null || proc.signalCode !== null) {
            cleanup();
            reject(new Error(`${script} exited (${proc.exitCode ?? proc.signalCode}) before printing ${pattern}:\n${out}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`${script} did not print ${pattern} within ${timeoutMs} ms:\n${out}`));
        }, timeoutMs);
        const cleanup = (): void => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
  };
}

function stop(child: Child | undefined): Promise<void> {
  if (!child || child.proc.exitCode !== null || child.proc.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const kill = setTimeout(() => child.proc.kill('SIGKILL'), 5_000);
    child.proc.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    child.proc.kill('SIGTERM');
  });
}

describe('examples: orders API and billing service', () => {
  let s: AuthServer;
  let orders: Child | undefined;
  let billing: Child | undefined;

  beforeAll(async () => {
    // A type error elsewhere in the project still emits JavaScript; what matters here is the SDK's dist/.
    if (distIsStale()) ensureBuilt();
    expect(distIsStale(), 'npm run build did not produce a current dist/sdk').toBe(false);
    s = await startAuthServer();
  }, 180_000);

  afterAll(async () => {
    await Promise.all([stop(billing), stop(orders)]);
    await s?.close();
  });

  it('the compiled SDK needs neither express nor fastify at runtime', () => {
    const compiled = files(distSdk, '.js');
    expect(compiled.map((f) => relative(distSdk, f))).toEqual(expect.arrayContaining(['client.js', 'verify.js']));
    for (const f of compiled) expect(readFileSync(f, 'utf8'), f).not.toMatch(/from ['"](express|fastify)['"]|require\(['"](express|fastify)['"]\)/);
  });

  it('billing gets a token and the orders API answers it', async () => {
    // The example listens where ORDERS_URL says (its audience too): a reserved port, as nothing
    // can take it before the example binds it.
    const ordersUrl = `http://127.0.0.1:${await reservedPort()}`;
    // As examples/README.md does it: the CLI against the admin API.
    const { stdout } = await run(process.execPath, [
      CLI, 'clients', 'create',
      '--name', 'billing', '--scope', 'orders:read orders:write', '--audience', ordersUrl,
      '--json', '--admin-url', s.adminUrl, '--admin-token', ADMIN_TOKEN,
    ], { cwd: root });
    const registered = JSON.parse(stdout) as { client_id: string; client_secret: string };
    expect(registered.client_secret).toMatch(/^m2m_cs_/);

    orders = start('examples/orders-api.mjs', { M2M_AUTH_ISSUER: s.issuer, ORDERS_URL: ordersUrl });
    await orders.waitFor(/\[orders\] listening on /);

    // No token, no orders.
    const anonymous = await fetch(`${ordersUrl}/orders`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer realm="orders", DPoP realm="orders", algs="ES256 EdDSA PS256 RS256"');

    billing = start('examples/billing-service.mjs', {
      M2M_AUTH_ISSUER: s.issuer,
      BILLING_CLIENT_ID: registered.client_id,
      BILLING_CLIENT_SECRET: registered.client_secret,
      ORDERS_URL: ordersUrl,
      INTERVAL_MS: '300',
    });
    const out = await billing.waitFor(/\[billing\] GET \/orders -> 200 2 orders, latest #2: 2 x envelopes by cl_/);
    expect(out).toMatch(/\[billing\] POST \/orders -> 201 \{"id":1,"item":"stamps","quantity":1,"created_by":"cl_/);
    expect(out).not.toMatch(/no token|-> 40[13]/);
    await orders.waitFor(new RegExp(`GET /orders -> 200 \\(${registered.client_id}\\)`));
    // One token served every round so far.
    expect(s.count('/oauth2/token')).toBe(1);
    await Promise.all([stop(billing), stop(orders)]);
  });

  it('with DPoP (BILLING_DPOP=1, ORDERS_DPOP_NONCE=1): a DPoP-bound token, proofs with the API\'s nonce', async () => {
    const ordersUrl = `http://127.0.0.1:${await reservedPort()}`;
    const { stdout } = await run(process.execPath, [
      CLI, 'clients', 'create',
      '--name', 'billing-dpop', '--scope', 'orders:read orders:write', '--audience', ordersUrl, '--dpop-bound-access-tokens', 'true',
      '--json', '--admin-url', s.adminUrl, '--admin-token', ADMIN_TOKEN,
    ], { cwd: root });
    const registered = JSON.parse(stdout) as { client_id: string; client_secret: string };
    orders = start('examples/orders-api.mjs', { M2M_AUTH_ISSUER: s.issuer, ORDERS_URL: ordersUrl, ORDERS_DPOP_NONCE: '1' });
    await orders.waitFor(/\[orders\] listening on /);
    const tokensBefore = s.count('/oauth2/token');
    billing = start('examples/billing-service.mjs', {
      M2M_AUTH_ISSUER: s.issuer,
      BILLING_CLIENT_ID: registered.client_id,
      BILLING_CLIENT_SECRET: registered.client_secret,
      ORDERS_URL: ordersUrl,
      INTERVAL_MS: '300',
      BILLING_DPOP: '1',
    });
    const out = await billing.waitFor(/\[billing\] GET \/orders -> 200 2 orders, latest #2: 2 x envelopes by cl_/);
    expect(out).toMatch(/DPoP key [A-Za-z0-9_-]{43}/);
    expect(out).not.toMatch(/no token|-> 40[13]/);
    // the first call met the API's nonce challenge (a 401 the SDK answered), every later one carried it
    const log = await orders.waitFor(new RegExp(`GET /orders -> 200 \\(${registered.client_id}, DPoP-bound\\)`));
    expect(log.match(/-> 401/g) ?? []).toHaveLength(1);
    expect(s.count('/oauth2/token') - tokensBefore).toBe(1);
  });
});
