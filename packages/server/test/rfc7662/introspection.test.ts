// RFC 7662 token introspection through Fastify inject: the active response, the one inactive
// body for every reason a token is not active, who may see what (§4), and request errors.

import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT } from 'jose';
import { BILLING, ORDERS, basic, startTestServer, type TestServer } from '../helpers/server.js';
import { wrongSecret } from '../helpers/secrets.js';

const INTROSPECT = '/oauth2/introspect';
const ISSUER = 'http://localhost:8080';
// RFC 7662 §2.2: for an inactive token the response contains only "active": false.
const INACTIVE = '{"active":false}';

type Res = LightMyRequestResponse;

let t: TestServer;
let id: string;
let secret: string;

beforeAll(async () => {
  t = await startTestServer();
  ({ clientId: id, clientSecret: secret } = await t.client());
});
afterAll(() => t.close());

async function issue(clientId = id, clientSecret = secret, form: Record<string, string | string[]> = {}): Promise<string> {
  const res = await t.token(clientId, clientSecret, form);
  expect(res.statusCode).toBe(200);
  return res.json().access_token as string;
}

function introspect(token: string | string[] | undefined, clientId = id, clientSecret = secret, extra: Record<string, string> = {}) {
  const form: Record<string, string | string[]> = { ...extra };
  if (token !== undefined) form.token = token;
  return t.post(INTROSPECT, form, { authorization: basic(clientId, clientSecret) });
}

function expectInactive(res: Res) {
  expect(res.statusCode).toBe(200);
  expect(res.body).toBe(INACTIVE);
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers['content-type']).toMatch(/^application\/json/);
}

function expectActive(res: Res) {
  expect(res.statusCode).toBe(200);
  expect(res.json().active).toBe(true);
}

function expectError(res: Res, status: number, error: string) {
  expect(res.statusCode).toBe(status);
  const body = res.json();
  expect(Object.keys(body).sort()).toEqual(['error', 'error_description']);
  expect(body.error).toBe(error);
  expect(typeof body.error_description).toBe('string');
  expect(res.headers['cache-control']).toBe('no-store');
}

describe('an active token', () => {
  it('gives exactly the RFC 7662 §2.2 members, matching the token claims', async () => {
    const token = await issue();
    const res = await introspect(token);
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(['active', 'aud', 'client_id', 'exp', 'iat', 'iss', 'jti', 'scope', 'sub', 'token_type']);
    const claims = decodeJwt(token);
    expect(body).toEqual({
      active: true,
      scope: 'orders:read orders:write',
      client_id: id,
      sub: id,
      aud: ORDERS,
      iss: ISSUER,
      exp: claims.exp,
      iat: claims.iat,
      jti: claims.jti,
      token_type: 'Bearer',
    });
    expect(body.exp - body.iat).toBe(3600);
  });

  it('keeps a multi-valued aud as an array', async () => {
    const c = await t.client({ audience: [ORDERS, BILLING] });
    const token = await issue(c.clientId, c.clientSecret, { resource: [ORDERS, BILLING] });
    expect((await introspect(token, c.clientId, c.clientSecret)).json().aud).toEqual([ORDERS, BILLING]);
  });

  it('accepts token_type_hint and ignores it (§2.1)', async () => {
    const token = await issue();
    for (const hint of ['access_token', 'refresh_token', 'something_else']) {
      expectActive(await introspect(token, id, secret, { token_type_hint: hint }));
    }
  });

  it('accepts client_secret_post callers', async () => {
    const c = await t.client({ token_endpoint_auth_method: 'client_secret_post' });
    const res = await t.post('/oauth2/token', { grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret });
    const token = res.json().access_token as string;
    expectActive(await t.post(INTROSPECT, { token, client_id: c.clientId, client_secret: c.clientSecret }));
  });
});

describe('inactive tokens get exactly {"active":false}', () => {
  it('garbage', async () => {
    for (const token of ['garbage', 'a.b.c', 'eyJhbGciOiJub25lIn0.e30.', 'x'.repeat(20_000)]) {
      expectInactive(await introspect(token));
    }
  });

  it('a JWT signed by a foreign key, with our kid or its own', async () => {
    const real = await issue();
    const { kid } = decodeProtectedHeader(real);
    const claims = decodeJwt(real);
    const { privateKey } = await generateKeyPair('ES256');
    for (const header of [{ alg: 'ES256', typ: 'at+jwt', kid: kid! }, { alg: 'ES256', typ: 'at+jwt', kid: 'foreign' }]) {
      const forged = await new SignJWT({ ...claims, jti: 'forged-' + header.kid }).setProtectedHeader(header).sign(privateKey);
      expectInactive(await introspect(forged));
    }
  });

  it('a token signed by our key for another issuer (the same claims with our issuer are active)', async () => {
    const claims = decodeJwt(await issue());
    const other = t.server.keys.sign({ ...claims, iss: 'https://evil.example.com', jti: 'other-issuer-jti' }).token;
    expectInactive(await introspect(other));
    const control = t.server.keys.sign({ ...claims, jti: 'same-issuer-jti' }).token;
    expectActive(await introspect(control));
  });

  it('a token whose exp has passed', async () => {
    const s = await startTestServer();
    try {
      const c = await s.client();
      const token = (await s.token(c.clientId, c.clientSecret)).json().access_token as string;
      const call = () => s.post(INTROSPECT, { token }, { authorization: basic(c.clientId, c.clientSecret) });
      s.clock.advance(3599_000);
      expect((await call()).json().active).toBe(true);
      s.clock.advance(1_000);
      expectInactive(await call());
    } finally {
      await s.close();
    }
  });

  it('a revoked token', async () => {
    const token = await issue();
    expectActive(await introspect(token));
    const res = await t.post('/oauth2/revoke', { token }, { authorization: basic(id, secret) });
    expect(res.statusCode).toBe(200);
    expectInactive(await introspect(token));
  });

  it('a token of a disabled client, active again once re-enabled', async () => {
    const c = await t.client();
    const rs = await t.client({ grant_types: [], resource_uris: [ORDERS] });
    const token = await issue(c.clientId, c.clientSecret);
    expectActive(await introspect(token, rs.clientId, rs.clientSecret));
    await t.server.clients.setDisabled(c.clientId, true);
    // The resource server asks: the disabled client itself can no longer authenticate.
    expectInactive(await introspect(token, rs.clientId, rs.clientSecret));
    await t.server.clients.setDisabled(c.clientId, false);
    expectActive(await introspect(token, rs.clientId, rs.clientSecret));
  });

  it('a token of a deleted client', async () => {
    const c = await t.client();
    const rs = await t.client({ grant_types: [], resource_uris: [ORDERS] });
    const token = await issue(c.clientId, c.clientSecret);
    expectActive(await introspect(token, rs.clientId, rs.clientSecret));
    await t.server.clients.delete(c.clientId);
    expectInactive(await introspect(token, rs.clientId, rs.clientSecret));
  });

  it('tokens issued before the kill switch (registry), while one issued after it is active', async () => {
    const c = await t.client();
    const before = [await issue(c.clientId, c.clientSecret), await issue(c.clientId, c.clientSecret)];
    for (const token of before) expectActive(await introspect(token, c.clientId, c.clientSecret));
    await t.server.clients.revokeTokens(c.clientId);
    t.clock.advance(1);
    const after = await issue(c.clientId, c.clientSecret);
    for (const token of before) expectInactive(await introspect(token, c.clientId, c.clientSecret));
    expectActive(await introspect(after, c.clientId, c.clientSecret));
  });

  it('tokens issued before the kill switch (admin API)', async () => {
    const c = await t.client();
    const before = await issue(c.clientId, c.clientSecret);
    t.clock.advance(1);
    const res = await t.admin({ method: 'POST', url: `/admin/clients/${c.clientId}/revoke-tokens` });
    expect(res.statusCode).toBe(200);
    expect(typeof res.json().tokens_revoked_at).toBe('number');
    // 1 ms later, usually within the same iat second: the kill switch compares milliseconds.
    t.clock.advance(1);
    const after = await issue(c.clientId, c.clientSecret);
    expectInactive(await introspect(before, c.clientId, c.clientSecret));
    expectActive(await introspect(after, c.clientId, c.clientSecret));
  });
});

describe('who may introspect (§4)', () => {
  it('a client that is neither the token\'s client nor an audience sees inactive', async () => {
    const token = await issue();
    const other = await t.client({ audience: [BILLING], resource_uris: [BILLING] });
    expectInactive(await introspect(token, other.clientId, other.clientSecret));
    // The same token is active for its own client: the answer depends only on the caller.
    expectActive(await introspect(token));
  });

  it('a resource server with the token\'s aud in resource_uris (and no grant) sees it active', async () => {
    const token = await issue();
    const rs = await t.client({ grant_types: [], audience: [], resource_uris: [ORDERS] });
    const res = await introspect(token, rs.clientId, rs.clientSecret);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ active: true, client_id: id, sub: id, aud: ORDERS });
  });

  it('a resource server with one of several audiences sees it active', async () => {
    const c = await t.client({ audience: [ORDERS, BILLING] });
    const token = await issue(c.clientId, c.clientSecret, { resource: [ORDERS, BILLING] });
    const rs = await t.client({ grant_types: [], audience: [], resource_uris: [BILLING] });
    expectActive(await introspect(token, rs.clientId, rs.clientSecret));
  });
});

describe('request errors', () => {
  it('caller authentication is required: 401 invalid_client', async () => {
    const token = await issue();
    expectError(await t.post(INTROSPECT, { token }), 401, 'invalid_client');
    expectError(await t.post(INTROSPECT, { token, client_id: id }), 401, 'invalid_client');
    const wrong = await introspect(token, id, wrongSecret(secret));
    expectError(wrong, 401, 'invalid_client');
    expect(wrong.headers['www-authenticate']).toMatch(/^Basic /);
  });

  it('a missing token parameter is invalid_request', async () => {
    expectError(await introspect(undefined), 400, 'invalid_request');
    expectError(await introspect(''), 400, 'invalid_request');
  });

  it('a repeated token parameter is invalid_request', async () => {
    const token = await issue();
    expectError(await introspect([token, token]), 400, 'invalid_request');
  });

  it('GET is 405', async () => {
    const res = await t.inject({ method: 'GET', url: INTROSPECT });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('POST');
  });
});
