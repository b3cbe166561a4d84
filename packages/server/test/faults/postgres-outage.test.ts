// PostgreSQL unreachable for a while: known clients keep getting tokens from the cache within the
// staleness bound and get 503 temporarily_unavailable beyond it; unknown clients, writes and
// readiness fail loudly (503, never 500 or an acknowledgment); nothing crashes; and the servers
// recover by themselves when the database returns on the same port.
//
// Runs against a private PostgreSQL (initdb + pg_ctl in a temp folder) that it stops and starts;
// the shared server is never touched. Skips when M2M_AUTH_TEST_DATABASE_URL is unset (the
// PostgreSQL tests are off) or when initdb/pg_ctl cannot be used.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT, exportJWK, generateKeyPair, type CryptoKey } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, startServerProcess, within, type ServerProcess } from '../helpers/process.js';
import {
  NO_LIMITS, admin, alive, basic, crashLines, form, get, introspect, newClient, sleep, privatePostgres, token,
  type PrivatePostgres, type TestClient,
} from './helpers.js';

const PG_URL = process.env.M2M_AUTH_TEST_DATABASE_URL;
let skip: string | undefined = PG_URL ? undefined : 'set M2M_AUTH_TEST_DATABASE_URL';
let pg: PrivatePostgres | undefined;

if (!skip) {
  const found = await privatePostgres();
  if ('skip' in found) skip = found.skip;
  else pg = found;
}
if (skip) console.warn(`PostgreSQL outage tests skipped: ${skip}`);

const ADMIN = 'faults-admin-token-' + randomBytes(16).toString('hex');
const SHORT_BOUND_S = 2;
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

describe.skipIf(skip !== undefined)('PostgreSQL outage (private instance stopped and started)', () => {
  let dir: string | undefined;
  /** Default bound (60 s): keeps serving known clients through the outage. */
  let a: ServerProcess;
  /** Bound of 2 s: stops trusting its cache soon after the database went away. */
  let b: ServerProcess;
  let known: TestClient;
  let jwtClient: TestClient & { key: CryptoKey };
  let knownToken: string;

  beforeAll(async () => {
    ensureBuilt();
    await pg!.init();
    dir = mkdtempSync(join(tmpdir(), 'm2m-auth-faults-pg-'));
    const env = {
      ...NO_LIMITS,
      M2M_AUTH_DATABASE_URL: pg!.url,
      M2M_AUTH_DATA_DIR: dir,
      M2M_AUTH_KEK: randomBytes(32).toString('base64'),
    };
    a = await startServerProcess(env, ADMIN);
    b = await startServerProcess({ ...env, M2M_AUTH_ISSUER: a.publicUrl, M2M_AUTH_STALENESS_BOUND: String(SHORT_BOUND_S) }, ADMIN);

    known = await newClient(a);
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const c = await newClient(a, { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } });
    jwtClient = { ...c, key: privateKey };
    // Both instances cache both clients.
    for (const p of [a, b]) {
      expect((await token(p, known)).status).toBe(200);
      expect((await assertionToken(p, jwtClient)).status).toBe(200);
    }
    knownToken = (await token(a, known)).json.access_token as string;
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await pg?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  async function assertionToken(p: ServerProcess, c: TestClient & { key: CryptoKey }) {
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
      .setIssuer(c.id).setSubject(c.id).setAudience(a.publicUrl)
      .setIssuedAt().setExpirationTime('60s').setJti(randomBytes(12).toString('hex'))
      .sign(c.key);
    return form(p, '/oauth2/token', { grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: assertion });
  }

  function expectUnavailable(r: { status: number; headers: Headers; json: Record<string, unknown> }) {
    expect(r.status).toBe(503);
    expect(r.json.error).toBe('temporarily_unavailable');
    expect(typeof r.json.error_description).toBe('string');
    expect(Object.keys(r.json).sort()).toEqual(['error', 'error_description']);
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(r.headers.get('cache-control')).toBe('no-store');
  }

  function expectAdminUnavailable(r: { status: number; headers: Headers; json: Record<string, unknown> }) {
    expect(r.status).toBe(503);
    expect(r.json).toStrictEqual({ error: 'temporarily_unavailable', message: expect.stringMatching(/database is not answering/) });
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThan(0);
  }

  it('serves, refuses and recovers across a database outage, without restarting the servers', async () => {
    const clientsBefore = (await admin(a, 'GET', '/admin/clients?limit=1000')).json.clients.length as number;
    const rotatedBefore = (await admin(a, 'GET', `/admin/clients/${known.id}`)).json;
    const discovery = (await get(a, '/.well-known/oauth-authorization-server')).json;

    await pg!.stop();
    const stoppedAt = Date.now();

    // Readiness turns false while storage does not answer; liveness stays.
    await within(5_000, async () => (await get(a, '/readyz')).status === 503);
    expect((await get(a, '/readyz')).json).toMatchObject({ status: 'not_ready', checks: { storage: false } });
    expect((await get(a, '/healthz')).status).toBe(200);

    // A known client keeps getting tokens from the cache (within the bound), and they verify.
    const during = await token(a, known);
    expect(during.status).toBe(200);
    expect((await introspect(a, known, during.json.access_token)).json.active).toBe(true);

    // An unknown client: 503, not invalid_client (we cannot know) and not 500.
    expectUnavailable(await token(a, { id: 'cl_neverRegistered0', secret: 'm2m_cs_x' }));
    // private_key_jwt needs the replay store: 503, not invalid_client.
    expectUnavailable(await assertionToken(a, jwtClient));

    // Keys and discovery come from memory; a discovery document never built answers 503, not 500.
    expect((await get(a, '/oauth2/jwks')).status).toBe(200);
    expect((await get(a, '/.well-known/oauth-authorization-server')).json).toStrictEqual(discovery);
    expectUnavailable(await get(b, '/.well-known/oauth-authorization-server'));

    // Writes fail loudly and acknowledge nothing.
    expectAdminUnavailable(await admin(a, 'POST', '/admin/clients', {
      client_name: 'during-outage', scope: 'orders:read', audience: ['https://orders.example.com'],
    }));
    expectAdminUnavailable(await admin(a, 'POST', `/admin/clients/${known.id}/secret`, { grace_period: 0 }));
    expectAdminUnavailable(await admin(a, 'POST', `/admin/clients/${known.id}/disable`));
    expectAdminUnavailable(await admin(a, 'POST', '/admin/keys/rotate'));
    expectUnavailable(await form(a, '/oauth2/revoke', { token: knownToken }, basic(known.id, known.secret)));

    // Beyond its 2 s bound, B no longer trusts its cache: 503 for tokens and introspection alike.
    await sleep(Math.max(0, stoppedAt + SHORT_BOUND_S * 1000 + 500 - Date.now()));
    expectUnavailable(await token(b, known));
    expectUnavailable(await introspect(b, known, knownToken));
    expectUnavailable(await assertionToken(b, jwtClient));
    // A (bound 60 s) still serves the known client.
    expect((await token(a, known)).status).toBe(200);

    // Nothing crashed.
    for (const p of [a, b]) {
      expect(alive(p)).toBe(true);
      expect(crashLines(p)).toEqual([]);
    }

    // The database comes back on the same port: both servers recover by themselves.
    await pg!.start();
    await within(15_000, async () => (await get(a, '/readyz')).status === 200 && (await get(b, '/readyz')).status === 200);
    await within(15_000, async () => (await token(b, known)).status === 200);
    expect((await introspect(b, known, knownToken)).json.active).toBe(true);
    expect((await assertionToken(a, jwtClient)).status).toBe(200);
    expect((await get(b, '/.well-known/oauth-authorization-server')).json).toStrictEqual(discovery);

    // What failed during the outage was not stored: no new client, the secret not rotated, the
    // client not disabled, the token not revoked.
    const clientsAfter = (await admin(a, 'GET', '/admin/clients?limit=1000')).json.clients as Array<{ client_name: string }>;
    expect(clientsAfter).toHaveLength(clientsBefore);
    expect(clientsAfter.some((c) => c.client_name === 'during-outage')).toBe(false);
    expect((await admin(a, 'GET', `/admin/clients/${known.id}`)).json).toStrictEqual(rotatedBefore);
    expect((await token(a, known)).status).toBe(200);
    expect((await introspect(a, known, knownToken)).json.active).toBe(true);

    // Writes work again, and the change log is read again: a revocation and a disable made at A
    // reach B's caches.
    expect((await form(a, '/oauth2/revoke', { token: knownToken }, basic(known.id, known.secret))).status).toBe(200);
    await within(5_000, async () => (await introspect(b, known, knownToken)).json.active === false);
    expect((await admin(a, 'POST', `/admin/clients/${known.id}/disable`)).status).toBe(200);
    await within(5_000, async () => (await token(b, known)).status === 401);
    expect((await newClient(a)).id).toMatch(/^cl_/);

    for (const p of [a, b]) {
      expect(alive(p)).toBe(true);
      expect(crashLines(p)).toEqual([]);
    }
  }, 120_000);
});
