// Several real server processes on one database serve one issuer, and a security decision made
// on one instance (revocation, kill switch, disabled client, new key) holds on the others within 1 s.

import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import pg from 'pg';
import { ensureBuilt, startServerProcess, within, type ServerProcess } from '../helpers/process.js';

interface Backend {
  name: string;
  setup?(): Promise<void>;
  env(): Record<string, string>;
  cleanup?(): void | Promise<void>;
}

const PG_URL = process.env.M2M_AUTH_TEST_DATABASE_URL;
const REDIS_URL = process.env.M2M_AUTH_TEST_REDIS_URL;

/** A PostgreSQL backend on a schema of its own, dropped afterwards. */
function postgresBackend(name: string, redisUrl?: string): Backend {
  const schema = `m2m_cluster_${randomBytes(6).toString('hex')}`;
  const admin = () => new pg.Client({ connectionString: PG_URL });
  return {
    name,
    async setup() {
      const c = admin();
      await c.connect();
      await c.query(`CREATE SCHEMA ${schema}`);
      await c.end();
    },
    env: () => ({
      M2M_AUTH_DATABASE_URL: `${PG_URL}${PG_URL!.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`,
      M2M_AUTH_DATA_DIR: dir,
      ...(redisUrl !== undefined && { M2M_AUTH_REDIS_URL: redisUrl }),
    }),
    async cleanup() {
      const c = admin();
      await c.connect();
      await c.query(`DROP SCHEMA ${schema} CASCADE`);
      await c.end();
    },
  };
}

const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-cluster-'));
const backends: Backend[] = [
  {
    name: 'SQLite file shared by two processes',
    env: () => ({ M2M_AUTH_DATABASE_URL: `sqlite:${join(dir, 'shared.db')}`, M2M_AUTH_DATA_DIR: dir }),
  },
];
if (PG_URL) {
  backends.push(postgresBackend('PostgreSQL, LISTEN/NOTIFY'));
  if (REDIS_URL) backends.push(postgresBackend('PostgreSQL with Redis pub/sub', REDIS_URL));
  else console.warn('Cluster tests with Redis skipped: set M2M_AUTH_TEST_REDIS_URL');
} else {
  console.warn('Cluster tests on PostgreSQL skipped: set M2M_AUTH_TEST_DATABASE_URL');
}
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const ADMIN = 'cluster-admin-token-' + randomBytes(16).toString('hex');
const basic = (id: string, secret: string) => 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64');

for (const backend of backends) {
  describe(backend.name, () => {
    let a: ServerProcess;
    let b: ServerProcess;
    let issuer: string;

    beforeAll(async () => {
      ensureBuilt();
      await backend.setup?.();
      const env = { ...backend.env(), M2M_AUTH_KEK: randomBytes(32).toString('base64') };
      a = await startServerProcess(env, ADMIN);
      issuer = a.publicUrl;
      b = await startServerProcess({ ...env, M2M_AUTH_ISSUER: issuer }, ADMIN);
    }, 60_000);

    afterAll(async () => {
      await Promise.all([a?.stop(), b?.stop()]);
      await backend.cleanup?.();
    });

    async function admin(p: ServerProcess, method: string, path: string, body?: unknown) {
      const r = await fetch(p.adminUrl + path, {
        method,
        headers: { authorization: `Bearer ${ADMIN}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
      const text = await r.text();
      return { status: r.status, json: text ? JSON.parse(text) : undefined };
    }

    async function form(p: ServerProcess, path: string, params: Record<string, string>, auth?: string) {
      const r = await fetch(p.publicUrl + path, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...(auth && { authorization: auth }) },
        body: new URLSearchParams(params),
      });
      const text = await r.text();
      return { status: r.status, json: text ? JSON.parse(text) : undefined };
    }

    async function newClient(p: ServerProcess, extra: Record<string, unknown> = {}) {
      const r = await admin(p, 'POST', '/admin/clients', {
        client_name: 'svc', scope: 'orders:read', audience: ['https://orders.example.com'], ...extra,
      });
      expect(r.status).toBe(201);
      return { id: r.json.client_id as string, secret: r.json.client_secret as string };
    }

    const token = async (p: ServerProcess, c: { id: string; secret: string }) =>
      form(p, '/oauth2/token', { grant_type: 'client_credentials' }, basic(c.id, c.secret));
    const active = async (p: ServerProcess, c: { id: string; secret: string }, t: string) =>
      (await form(p, '/oauth2/introspect', { token: t }, basic(c.id, c.secret))).json.active as boolean;

    it('a client created through A authenticates at B, and a token from A introspects at B', async () => {
      const c = await newClient(a);
      const t = await token(b, c);
      expect(t.status).toBe(200);
      const fromA = (await token(a, c)).json.access_token as string;
      expect(await active(b, c, fromA)).toBe(true);
      const jwksA = await (await fetch(a.publicUrl + '/oauth2/jwks')).json();
      const jwksB = await (await fetch(b.publicUrl + '/oauth2/jwks')).json();
      expect(jwksB).toStrictEqual(jwksA);
    });

    it('a revocation at B is seen at A within 1 s', async () => {
      const c = await newClient(a);
      const t = (await token(a, c)).json.access_token as string;
      expect(await active(a, c, t)).toBe(true);
      expect((await form(b, '/oauth2/revoke', { token: t }, basic(c.id, c.secret))).status).toBe(200);
      const ms = await within(1000, async () => !(await active(a, c, t)));
      expect(ms).toBeLessThan(1000);
    });

    it('the kill switch and a disabled client hold on the other instance within 1 s', async () => {
      const c = await newClient(a);
      const t = (await token(b, c)).json.access_token as string;
      expect(await active(b, c, t)).toBe(true);
      expect((await admin(a, 'POST', `/admin/clients/${c.id}/revoke-tokens`)).status).toBe(200);
      await within(1000, async () => !(await active(b, c, t)));

      const d = await newClient(a);
      const td = (await token(b, d)).json.access_token as string;
      expect((await admin(a, 'POST', `/admin/clients/${d.id}/disable`)).status).toBe(200);
      await within(1000, async () => (await token(b, d)).status === 401);
      expect((await form(b, '/oauth2/introspect', { token: td }, basic(c.id, c.secret))).json).toStrictEqual({ active: false });
    });

    it('a rotated secret whose grace ended stops at the other instance within 1 s', async () => {
      const c = await newClient(a);
      expect((await token(b, c)).status).toBe(200);
      const r = await admin(a, 'POST', `/admin/clients/${c.id}/secret`, { grace_period: 0 });
      expect(r.status).toBe(200);
      await within(1000, async () => (await token(b, c)).status === 401);
      expect((await token(b, { id: c.id, secret: r.json.client_secret })).status).toBe(200);
    });

    it('a key rotation at A is published by B within 1 s', async () => {
      const r = await admin(a, 'POST', '/admin/keys/rotate');
      expect(r.status).toBe(200);
      const kid = (r.json.kid ?? r.json.key?.kid) as string;
      expect(typeof kid).toBe('string');
      await within(1000, async () => {
        const jwks = (await (await fetch(b.publicUrl + '/oauth2/jwks')).json()) as { keys: { kid: string }[] };
        return jwks.keys.some((k) => k.kid === kid);
      });
    });

    it('a signing key revoked at A: its tokens are inactive at B within 1 s, B unpublishes it and signs with the replacement', async () => {
      const c = await newClient(a);
      const t = (await token(b, c)).json.access_token as string;
      const kid = JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString('utf8')).kid as string;
      // Verified once at B, so B has it in its cache of verified tokens too.
      expect(await active(b, c, t)).toBe(true);
      const r = await admin(a, 'POST', `/admin/keys/${encodeURIComponent(kid)}/revoke`, { rotate: true });
      expect(r.status).toBe(200);
      const replacement = r.json.replacement.kid as string;
      expect(await active(a, c, t)).toBe(false);
      const ms = await within(1000, async () => !(await active(b, c, t)));
      expect(ms).toBeLessThan(1000);
      const jwks = (await (await fetch(b.publicUrl + '/oauth2/jwks')).json()) as { keys: { kid: string }[] };
      expect(jwks.keys.map((k) => k.kid)).not.toContain(kid);
      expect(jwks.keys.map((k) => k.kid)).toContain(replacement);
      const next = (await token(b, c)).json.access_token as string;
      expect(JSON.parse(Buffer.from(next.split('.')[0]!, 'base64url').toString('utf8')).kid).toBe(replacement);
      expect(await active(b, c, next)).toBe(true);
    });

    it('a client assertion replayed at the other instance is refused', async () => {
      const { publicKey, privateKey } = await generateKeyPair('ES256');
      const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
      const c = await newClient(a, { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } });
      const assertion = await new SignJWT({})
        .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
        .setIssuer(c.id).setSubject(c.id).setAudience(issuer)
        .setIssuedAt().setExpirationTime('60s').setJti(randomBytes(12).toString('hex'))
        .sign(privateKey);
      const params = {
        grant_type: 'client_credentials',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      };
      expect((await form(a, '/oauth2/token', params)).status).toBe(200);
      const replay = await form(b, '/oauth2/token', params);
      expect(replay.status).toBe(401);
      expect(replay.json.error).toBe('invalid_client');
    });
  });
}
