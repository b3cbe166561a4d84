// RFC 7009 token revocation through Fastify inject: a client revokes its own tokens, never
// another's; unknown, invalid or expired tokens are answered 200 (§2.2).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, startTestServer, type TestServer } from '../helpers/server.js';
import { wrongSecret } from '../helpers/secrets.js';

const REVOKE = '/oauth2/revoke';
const INTROSPECT = '/oauth2/introspect';

type Res = LightMyRequestResponse;

let t: TestServer;
let id: string;
let secret: string;

beforeAll(async () => {
  t = await startTestServer();
  ({ clientId: id, clientSecret: secret } = await t.client());
});
afterAll(() => t.close());

async function issue(clientId = id, clientSecret = secret, s: TestServer = t): Promise<string> {
  const res = await s.token(clientId, clientSecret);
  expect(res.statusCode).toBe(200);
  return res.json().access_token as string;
}

function revoke(token: string | string[] | undefined, clientId = id, clientSecret = secret, extra: Record<string, string> = {}, s: TestServer = t) {
  const form: Record<string, string | string[]> = { ...extra };
  if (token !== undefined) form.token = token;
  return s.post(REVOKE, form, { authorization: basic(clientId, clientSecret) });
}

async function active(token: string, clientId = id, clientSecret = secret, s: TestServer = t): Promise<boolean> {
  const res = await s.post(INTROSPECT, { token }, { authorization: basic(clientId, clientSecret) });
  expect(res.statusCode).toBe(200);
  return res.json().active as boolean;
}

function expectOk(res: Res) {
  expect(res.statusCode).toBe(200);
  expect(res.body).toBe('');
  expect(res.headers['cache-control']).toBe('no-store');
}

function expectError(res: Res, status: number, error: string) {
  expect(res.statusCode).toBe(status);
  const body = res.json();
  expect(Object.keys(body).sort()).toEqual(['error', 'error_description']);
  expect(body.error).toBe(error);
  expect(typeof body.error_description).toBe('string');
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.headers['content-type']).toMatch(/^application\/json/);
}

describe('revoking a token', () => {
  it('revokes your own token: 200, and it is inactive at introspection at once', async () => {
    const token = await issue();
    const other = await issue();
    expect(await active(token)).toBe(true);
    expectOk(await revoke(token));
    expect(await active(token)).toBe(false);
    // Only that token: another token of the same client stays active.
    expect(await active(other)).toBe(true);
  });

  it('accepts token_type_hint, whatever its value (§2.1)', async () => {
    for (const hint of ['access_token', 'refresh_token']) {
      const token = await issue();
      expectOk(await revoke(token, id, secret, { token_type_hint: hint }));
      expect(await active(token)).toBe(false);
    }
  });

  it('revoking twice is fine', async () => {
    const token = await issue();
    expectOk(await revoke(token));
    expectOk(await revoke(token));
    expect(await active(token)).toBe(false);
  });

  it('works with client_secret_post', async () => {
    const c = await t.client({ token_endpoint_auth_method: 'client_secret_post' });
    const res = await t.post('/oauth2/token', { grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret });
    const token = res.json().access_token as string;
    expectOk(await t.post(REVOKE, { token, client_id: c.clientId, client_secret: c.clientSecret }));
    expect(await active(token)).toBe(false);
  });

  it('survives a restart (the revocation is persisted)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-revoke-'));
    const db = `sqlite:${join(dir, 'db.sqlite')}`;
    try {
      const a = await startTestServer({ databaseUrl: db }, { dataDir: dir });
      const c = await a.client();
      const token = await issue(c.clientId, c.clientSecret, a);
      expectOk(await revoke(token, c.clientId, c.clientSecret, {}, a));
      await a.close();
      const b = await startTestServer({ databaseUrl: db }, { dataDir: dir });
      try {
        expect(await active(token, c.clientId, c.clientSecret, b)).toBe(false);
      } finally {
        await b.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('another client\'s token', () => {
  it('is refused with 400 invalid_request and stays active', async () => {
    const token = await issue();
    const other = await t.client();
    const res = await revoke(token, other.clientId, other.clientSecret);
    expectError(res, 400, 'invalid_request');
    expect(await active(token)).toBe(true);
  });

  it('is refused for a resource server that is the token\'s audience', async () => {
    const token = await issue();
    const rs = await t.client({ grant_types: [], resource_uris: ['https://orders.example.com'] });
    // The resource server may introspect the token, but only the client it was issued to may revoke it.
    expect(await active(token, rs.clientId, rs.clientSecret)).toBe(true);
    expectError(await revoke(token, rs.clientId, rs.clientSecret), 400, 'invalid_request');
    expect(await active(token)).toBe(true);
  });
});

describe('tokens that need no action get 200 (§2.2)', () => {
  it('garbage and unknown tokens', async () => {
    for (const token of ['garbage', 'a.b.c', 'eyJhbGciOiJub25lIn0.e30.']) expectOk(await revoke(token));
  });

  it('an expired token', async () => {
    const s = await startTestServer();
    try {
      const c = await s.client();
      const token = await issue(c.clientId, c.clientSecret, s);
      s.clock.advance(3600_000);
      expectOk(await revoke(token, c.clientId, c.clientSecret, {}, s));
      // Even another client gets 200 for an expired token: nothing is left to protect.
      const other = await s.client();
      expectOk(await revoke(token, other.clientId, other.clientSecret, {}, s));
    } finally {
      await s.close();
    }
  });
});

describe('request errors', () => {
  it('unauthenticated: 401 invalid_client, and the token stays active', async () => {
    const token = await issue();
    expectError(await t.post(REVOKE, { token }), 401, 'invalid_client');
    expectError(await t.post(REVOKE, { token, client_id: id }), 401, 'invalid_client');
    const wrong = await revoke(token, id, wrongSecret(secret));
    expectError(wrong, 401, 'invalid_client');
    expect(wrong.headers['www-authenticate']).toMatch(/^Basic /);
    expect(await active(token)).toBe(true);
  });

  it('missing token: invalid_request', async () => {
    expectError(await revoke(undefined), 400, 'invalid_request');
    expectError(await revoke(''), 400, 'invalid_request');
  });

  it('repeated token: invalid_request, and neither is revoked', async () => {
    const token = await issue();
    expectError(await revoke([token, token]), 400, 'invalid_request');
    expect(await active(token)).toBe(true);
  });

  it('GET is 405', async () => {
    const res = await t.inject({ method: 'GET', url: REVOKE });
    expect(res.statusCode).toBe(405);
    expect(res.headers.allow).toBe('POST');
  });
});
