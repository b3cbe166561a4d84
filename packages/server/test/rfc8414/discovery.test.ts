// RFC 8414 authorization server metadata, the RFC 7517 JWK Set of the token signing keys, and the
// health endpoints, through Fastify inject.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { ORDERS, startTestServer, type TestServer } from '../helpers/server.js';

const ISSUER = 'http://localhost:8080';
const METADATA = '/.well-known/oauth-authorization-server';
const OPENID = '/.well-known/openid-configuration';
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'federated_jwt', 'private_key_jwt', 'self_signed_tls_client_auth', 'tls_client_auth'];
const ALG_MEMBERS = [
  'token_endpoint_auth_signing_alg_values_supported',
  'introspection_endpoint_auth_signing_alg_values_supported',
  'revocation_endpoint_auth_signing_alg_values_supported',
  'access_token_signing_alg_values_supported',
];

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.close());

async function get(url: string, s: TestServer = t) {
  return s.inject({ method: 'GET', url });
}

async function metadata(s: TestServer = t): Promise<Record<string, unknown>> {
  const res = await get(METADATA, s);
  expect(res.statusCode).toBe(200);
  return res.json();
}

describe('authorization server metadata', () => {
  it('serves the same JSON document at both well-known URIs', async () => {
    const a = await get(METADATA);
    const b = await get(OPENID);
    for (const res of [a, b]) {
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
    }
    expect(a.body).toBe(b.body);
  });

  it('names the issuer and the endpoints computed from it', async () => {
    const m = await metadata();
    expect(m.issuer).toBe(ISSUER);
    expect(m.token_endpoint).toBe(`${ISSUER}/oauth2/token`);
    expect(m.jwks_uri).toBe(`${ISSUER}/oauth2/jwks`);
    expect(m.introspection_endpoint).toBe(`${ISSUER}/oauth2/introspect`);
    expect(m.revocation_endpoint).toBe(`${ISSUER}/oauth2/revoke`);
    // Client credentials only: no authorization endpoint.
    expect(m.authorization_endpoint).toBeUndefined();
    expect(m.response_types_supported).toEqual([]);
  });

  it('follows a configured issuer, without a trailing slash', async () => {
    const s = await startTestServer({ issuer: 'https://auth.example.com/' });
    try {
      const m = await metadata(s);
      expect(m.issuer).toBe('https://auth.example.com');
      expect(m.token_endpoint).toBe('https://auth.example.com/oauth2/token');
      expect(m.jwks_uri).toBe('https://auth.example.com/oauth2/jwks');
      expect(m.introspection_endpoint).toBe('https://auth.example.com/oauth2/introspect');
      expect(m.revocation_endpoint).toBe('https://auth.example.com/oauth2/revoke');
    } finally {
      await s.close();
    }
  });

  it('supports client_credentials and the six client authentication methods (federated_jwt and the two mTLS ones among them)', async () => {
    const m = await metadata();
    expect(m.grant_types_supported).toEqual(['client_credentials']);
    for (const name of ['token_endpoint', 'introspection_endpoint', 'revocation_endpoint']) {
      expect([...(m[`${name}_auth_methods_supported`] as string[])].sort()).toEqual(AUTH_METHODS);
    }
    // RFC 8705 §5, §3.3: no mTLS listener and no trusted proxy here, so no aliases and no bound tokens.
    expect(m.mtls_endpoint_aliases).toBeUndefined();
    expect(m.tls_client_certificate_bound_access_tokens).toBeUndefined();
  });

  it('lists asymmetric signing algorithms only: no none, no HMAC', async () => {
    const m = await metadata();
    for (const member of ALG_MEMBERS) {
      const algs = m[member] as string[];
      expect(Array.isArray(algs)).toBe(true);
      expect(algs.length).toBeGreaterThan(0);
      for (const alg of algs) expect(alg).toMatch(/^(ES|RS|PS)(256|384|512)$|^EdDSA$|^Ed25519$/);
    }
    expect(m.token_endpoint_auth_signing_alg_values_supported).toEqual(expect.arrayContaining(['ES256', 'EdDSA', 'RS256', 'PS256']));
    expect(m.access_token_signing_alg_values_supported).toEqual(['ES256']);
  });

  it('lists the scopes of registered clients, and updates when a client is created', async () => {
    const s = await startTestServer();
    try {
      await s.client({ scope: 'orders:read orders:write' });
      expect(await metadata(s)).toMatchObject({ scopes_supported: ['orders:read', 'orders:write'] });
      await s.client({ scope: 'inventory:read orders:read' });
      expect((await metadata(s)).scopes_supported).toEqual(['inventory:read', 'orders:read', 'orders:write']);
      const res = await s.admin({ method: 'POST', url: '/admin/clients', payload: { client_name: 'billing', scope: 'billing:pay', audience: [ORDERS] } });
      expect(res.statusCode).toBe(201);
      expect((await metadata(s)).scopes_supported).toEqual(['billing:pay', 'inventory:read', 'orders:read', 'orders:write']);
      // Both documents change together.
      expect((await get(OPENID, s)).body).toBe((await get(METADATA, s)).body);

      // An update and a deletion change the list too.
      const id = res.json().client_id as string;
      expect((await s.admin({ method: 'PATCH', url: `/admin/clients/${id}`, payload: { scope: 'billing:refund' } })).statusCode).toBe(200);
      expect((await metadata(s)).scopes_supported).toEqual(['billing:refund', 'inventory:read', 'orders:read', 'orders:write']);
      expect((await s.admin({ method: 'DELETE', url: `/admin/clients/${id}` })).statusCode).toBe(204);
      expect((await metadata(s)).scopes_supported).toEqual(['inventory:read', 'orders:read', 'orders:write']);
    } finally {
      await s.close();
    }
  });
});

describe('the JWK Set', () => {
  for (const alg of ['ES256', 'EdDSA', 'RS256', 'PS256'] as const) {
    it(`${alg}: public members only, kid/alg/use on every key, and it verifies our tokens`, async () => {
      const s = await startTestServer({ signingAlg: alg });
      try {
        const res = await get('/oauth2/jwks', s);
        expect(res.statusCode).toBe(200);
        expect(res.headers['content-type']).toMatch(/^application\/jwk-set\+json/);
        const set = res.json() as { keys: Array<Record<string, unknown>> };
        expect(Object.keys(set)).toEqual(['keys']);
        expect(set.keys.length).toBeGreaterThan(0);
        for (const key of set.keys) {
          for (const m of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(m);
          expect(typeof key.kid).toBe('string');
          expect(key.alg).toBe(alg);
          expect(key.use).toBe('sig');
        }
        expect((await metadata(s)).access_token_signing_alg_values_supported).toEqual([alg]);

        const c = await s.client();
        const token = (await s.token(c.clientId, c.clientSecret)).json().access_token as string;
        expect(set.keys.map((k) => k.kid)).toContain(decodeProtectedHeader(token).kid);
        const { payload } = await jwtVerify(token, createLocalJWKSet(set as never), { issuer: ISSUER, audience: ORDERS, algorithms: [alg] });
        expect(payload.client_id).toBe(c.clientId);
      } finally {
        await s.close();
      }
    });
  }

  it('keeps public members only after a rotation (two keys)', async () => {
    const s = await startTestServer({ signingAlg: 'RS256' });
    try {
      expect((await s.admin({ method: 'POST', url: '/admin/keys/rotate' })).statusCode).toBe(200);
      const set = (await get('/oauth2/jwks', s)).json() as { keys: Array<Record<string, unknown>> };
      expect(set.keys).toHaveLength(2);
      expect(new Set(set.keys.map((k) => k.kid)).size).toBe(2);
      for (const key of set.keys) {
        for (const m of PRIVATE_MEMBERS) expect(key).not.toHaveProperty(m);
        expect(key).toMatchObject({ kty: 'RSA', alg: 'RS256', use: 'sig' });
      }
    } finally {
      await s.close();
    }
  });
});

describe('health', () => {
  it('/healthz is 200', async () => {
    const res = await get('/healthz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('/readyz is 200 with its checks', async () => {
    const res = await get('/readyz');
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ready', checks: { storage: true, signing_key: true } });
    expect(res.headers['cache-control']).toBe('no-store');
  });
});
