// RFC 6749 §4.4 and §5, RFC 8707, RFC 9068: the token endpoint through Fastify inject.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { BILLING, ORDERS, basic, startTestServer, type TestServer } from '../helpers/server.js';
import { wrongSecret } from '../helpers/secrets.js';

let t: TestServer;
let id: string;
let secret: string;

beforeAll(async () => {
  t = await startTestServer();
  ({ clientId: id, clientSecret: secret } = await t.client());
});
afterAll(() => t.close());

const TOKEN = '/oauth2/token';

async function jwks() {
  const res = await t.inject({ method: 'GET', url: '/oauth2/jwks' });
  return createLocalJWKSet(res.json());
}

function expectError(res: { statusCode: number; json(): unknown; headers: Record<string, unknown> }, status: number, error: string) {
  expect(res.statusCode).toBe(status);
  const body = res.json() as Record<string, unknown>;
  expect(body.error).toBe(error);
  expect(typeof body.error_description).toBe('string');
  expect(Object.keys(body).sort()).toEqual(['error', 'error_description']);
  expect(res.headers['cache-control']).toBe('no-store');
}

describe('successful client_credentials requests', () => {
  it('issues an RFC 9068 access token with client_secret_basic', async () => {
    const res = await t.token(id, secret);
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = res.json();
    expect(Object.keys(body).sort()).toEqual(['access_token', 'expires_in', 'scope', 'token_type']);
    expect(body.token_type).toBe('Bearer');
    expect(body.expires_in).toBe(3600);
    expect(body.scope).toBe('orders:read orders:write');
    expect(body.refresh_token).toBeUndefined();

    const header = decodeProtectedHeader(body.access_token);
    expect(header).toMatchObject({ typ: 'at+jwt', alg: 'ES256' });
    expect(typeof header.kid).toBe('string');
    const { payload } = await jwtVerify(body.access_token, await jwks(), {
      issuer: 'http://localhost:8080', audience: ORDERS, typ: 'at+jwt', algorithms: ['ES256'],
    });
    expect(payload.sub).toBe(id);
    expect(payload.client_id).toBe(id);
    expect(payload.scope).toBe('orders:read orders:write');
    expect(payload.aud).toBe(ORDERS);
    expect(payload.exp! - payload.iat!).toBe(3600);
    expect(typeof payload.jti).toBe('string');
  });

  it('gives every token its own jti', async () => {
    const a = (await t.token(id, secret)).json().access_token;
    const b = (await t.token(id, secret)).json().access_token;
    const { payload: pa } = await jwtVerify(a, await jwks());
    const { payload: pb } = await jwtVerify(b, await jwks());
    expect(pa.jti).not.toBe(pb.jti);
  });

  it('accepts client_secret_post for a client registered with it', async () => {
    const c = await t.client({ token_endpoint_auth_method: 'client_secret_post' });
    const res = await t.post(TOKEN, { grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret });
    expect(res.statusCode).toBe(200);
  });

  it('narrows the scope to the requested subset', async () => {
    const res = await t.token(id, secret, { scope: 'orders:read' });
    expect(res.json().scope).toBe('orders:read');
  });

  it('uses default_scope and default_audience when none is requested', async () => {
    const c = await t.client({ scope: 'a b c', default_scope: 'a', audience: [ORDERS, BILLING], default_audience: [BILLING] });
    const res = await t.token(c.clientId, c.clientSecret);
    const { payload } = await jwtVerify(res.json().access_token, await jwks());
    expect(payload.scope).toBe('a');
    expect(payload.aud).toBe(BILLING);
  });

  it('takes repeated resource parameters (RFC 8707) and the audience parameter', async () => {
    const c = await t.client({ audience: [ORDERS, BILLING] });
    const res = await t.token(c.clientId, c.clientSecret, { resource: [ORDERS, BILLING] });
    expect(res.statusCode).toBe(200);
    const { payload } = await jwtVerify(res.json().access_token, await jwks());
    expect(payload.aud).toEqual([ORDERS, BILLING]);
    const res2 = await t.token(c.clientId, c.clientSecret, { audience: BILLING });
    const { payload: p2 } = await jwtVerify(res2.json().access_token, await jwks());
    expect(p2.aud).toBe(BILLING);
  });

  it('uses the client access_token_ttl', async () => {
    const c = await t.client({ access_token_ttl: 300 });
    expect((await t.token(c.clientId, c.clientSecret)).json().expires_in).toBe(300);
  });

  it('treats empty parameters as omitted (RFC 6749 §3.1)', async () => {
    const res = await t.token(id, secret, { scope: '' });
    expect(res.statusCode).toBe(200);
    expect(res.json().scope).toBe('orders:read orders:write');
  });

  it('accepts a charset=UTF-8 content type', async () => {
    const res = await t.post(TOKEN, { grant_type: 'client_credentials' }, {
      authorization: basic(id, secret), 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8',
    });
    expect(res.statusCode).toBe(200);
  });
});

describe('invalid_request', () => {
  it('missing grant_type', async () => {
    expectError(await t.post(TOKEN, {}, { authorization: basic(id, secret) }), 400, 'invalid_request');
  });
  it('repeated grant_type', async () => {
    expectError(await t.post(TOKEN, { grant_type: ['client_credentials', 'client_credentials'] }, { authorization: basic(id, secret) }), 400, 'invalid_request');
  });
  it('repeated scope', async () => {
    expectError(await t.token(id, secret, { scope: ['orders:read', 'orders:write'] }), 400, 'invalid_request');
  });
  it('two client authentication methods', async () => {
    expectError(await t.token(id, secret, { client_id: id, client_secret: secret }), 400, 'invalid_request');
  });
  it('a JSON body', async () => {
    const res = await t.inject({
      method: 'POST', url: TOKEN, headers: { 'content-type': 'application/json', authorization: basic(id, secret) },
      payload: JSON.stringify({ grant_type: 'client_credentials' }),
    });
    expectError(res, 400, 'invalid_request');
  });
  it('no body and no content type', async () => {
    const res = await t.inject({ method: 'POST', url: TOKEN, headers: { authorization: basic(id, secret) } });
    expectError(res, 400, 'invalid_request');
  });
  it('a charset other than UTF-8', async () => {
    const res = await t.post(TOKEN, { grant_type: 'client_credentials' }, {
      authorization: basic(id, secret), 'content-type': 'application/x-www-form-urlencoded; charset=iso-8859-1',
    });
    expectError(res, 400, 'invalid_request');
  });
  it('bad percent-encoding', async () => {
    const res = await t.inject({
      method: 'POST', url: TOKEN, headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(id, secret) },
      payload: 'grant_type=client_credentials&scope=%zz',
    });
    expectError(res, 400, 'invalid_request');
  });
  it('invalid UTF-8, raw or percent-encoded', async () => {
    for (const payload of [Buffer.from([0x67, 0x3d, 0xc3, 0x28]), Buffer.from('grant_type=client_credentials&scope=%C3%28')]) {
      const res = await t.inject({
        method: 'POST', url: TOKEN, headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(id, secret) },
        payload,
      });
      expectError(res, 400, 'invalid_request');
    }
  });
  it('a malformed Basic header', async () => {
    for (const authorization of ['Basic !!!', 'Basic ' + Buffer.from('no-colon').toString('base64'), 'Basic ' + Buffer.from([0xff, 0x3a, 0x41]).toString('base64')]) {
      expectError(await t.post(TOKEN, { grant_type: 'client_credentials' }, { authorization }), 400, 'invalid_request');
    }
  });
  it('a body over the limit gets 413', async () => {
    const res = await t.inject({
      method: 'POST', url: TOKEN, headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(id, secret) },
      payload: 'grant_type=client_credentials&x=' + 'a'.repeat(70 * 1024),
    });
    expect(res.statusCode).toBe(413);
    expect(res.json().error).toBe('invalid_request');
  });
  it('GET is 405 with Allow: POST', async () => {
    const res = await t.inject({ method: 'GET', url: TOKEN });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('POST');
  });
});

describe('invalid_client', () => {
  it('answers an unknown client and a wrong secret identically, with a Basic challenge', async () => {
    const unknown = await t.token('cl_unknown', secret);
    const wrong = await t.token(id, wrongSecret(secret));
    for (const res of [unknown, wrong]) {
      expectError(res, 401, 'invalid_client');
      expect(res.headers['www-authenticate']).toMatch(/^Basic /);
    }
    expect(unknown.body).toBe(wrong.body);
  });
  it('no challenge when Basic was not tried', async () => {
    const res = await t.post(TOKEN, { grant_type: 'client_credentials', client_id: id, client_secret: 'nope' });
    expectError(res, 401, 'invalid_client');
    expect(res.headers['www-authenticate']).toBeUndefined();
  });
  it('no authentication at all', async () => {
    expectError(await t.post(TOKEN, { grant_type: 'client_credentials', client_id: id }), 401, 'invalid_client');
  });
  it('a method other than the registered one', async () => {
    expectError(await t.post(TOKEN, { grant_type: 'client_credentials', client_id: id, client_secret: secret }), 401, 'invalid_client');
  });
  it('a disabled client', async () => {
    const c = await t.client();
    await t.server.clients.setDisabled(c.clientId, true);
    expectError(await t.token(c.clientId, c.clientSecret), 401, 'invalid_client');
  });
  it('a deleted client', async () => {
    const c = await t.client();
    await t.server.clients.delete(c.clientId);
    expectError(await t.token(c.clientId, c.clientSecret), 401, 'invalid_client');
  });
  it('a Bearer Authorization header', async () => {
    const res = await t.post(TOKEN, { grant_type: 'client_credentials' }, { authorization: 'Bearer abc' });
    expectError(res, 401, 'invalid_client');
  });
});

describe('other errors', () => {
  it('unsupported_grant_type', async () => {
    expectError(await t.token(id, secret, { grant_type: 'password' }), 400, 'unsupported_grant_type');
    expectError(await t.token(id, secret, { grant_type: '__proto__' }), 400, 'unsupported_grant_type');
  });
  it('unauthorized_client for a client without the grant', async () => {
    const c = await t.client({ grant_types: [] });
    expectError(await t.token(c.clientId, c.clientSecret), 400, 'unauthorized_client');
  });
  it('invalid_scope for a scope the client may not have, or a malformed one', async () => {
    expectError(await t.token(id, secret, { scope: 'orders:read admin' }), 400, 'invalid_scope');
    expectError(await t.token(id, secret, { scope: 'bad"scope' }), 400, 'invalid_scope');
  });
  it('invalid_target for a resource not allowed, relative, or with a fragment', async () => {
    expectError(await t.token(id, secret, { resource: BILLING }), 400, 'invalid_target');
    expectError(await t.token(id, secret, { resource: '/relative' }), 400, 'invalid_target');
    expectError(await t.token(id, secret, { resource: ORDERS + '#frag' }), 400, 'invalid_target');
    expectError(await t.token(id, secret, { audience: 'https://other.example.com' }), 400, 'invalid_target');
  });
  it('never a 500 and no internal detail in error bodies', async () => {
    const res = await t.token(id, wrongSecret(secret));
    expect(res.body).not.toMatch(/wrong|stack|Error:|at /);
  });
});

describe('the size of a token', () => {
  // The registry allows 100 audiences of 2000 characters: more than any token may carry. It
  // refuses a client whose default token would be too long, so this one has a default audience.
  const audiences = Array.from({ length: 10 }, (_, i) => `https://api${i}.example.com/${'p'.repeat(1900)}`);
  const manyAudiences = { audience: audiences, default_audience: audiences.slice(0, 1) };

  it('a token longer than 16384 characters is never issued: invalid_scope, and no token.issued event', async () => {
    const c = await t.client(manyAudiences);
    const issued: unknown[] = [];
    const off = t.server.events.on('token.issued', (e) => issued.push(e));
    try {
      const res = await t.token(c.clientId, c.clientSecret, { resource: audiences });
      expectError(res, 400, 'invalid_scope');
      expect(res.json().error_description).toContain('16384');
    } finally {
      off();
    }
    expect(issued).toEqual([]);
  });

  it('a token of more than 8192 characters, the largest size allowed, introspects as active and can be revoked', async () => {
    const c = await t.client(manyAudiences);
    const res = await t.token(c.clientId, c.clientSecret, { resource: audiences.slice(0, 6) });
    expect(res.statusCode).toBe(200);
    const token = res.json().access_token as string;
    expect(token.length).toBeGreaterThan(8192);
    expect(token.length).toBeLessThanOrEqual(16384);
    const auth = { authorization: basic(c.clientId, c.clientSecret) };
    expect((await t.post('/oauth2/introspect', { token }, auth)).json().active).toBe(true);
    expect((await t.post('/oauth2/revoke', { token }, auth)).statusCode).toBe(200);
    expect((await t.post('/oauth2/introspect', { token }, auth)).json()).toEqual({ active: false });
  });
});
