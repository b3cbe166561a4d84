// RFC 7523 §2.2 and §3 private_key_jwt client authentication through Fastify inject: assertions
// built with jose, for each client key type, and every rule that must reject one.

import { randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base64url, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { basic, startTestServer, type TestServer } from '../helpers/server.js';

const ISSUER = 'http://localhost:8080';
const TOKEN_URL = `${ISSUER}/oauth2/token`;
const TOKEN = '/oauth2/token';
const INTROSPECT = '/oauth2/introspect';
const REVOKE = '/oauth2/revoke';
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

type Res = LightMyRequestResponse;
type Alg = 'ES256' | 'EdDSA' | 'RS256' | 'PS256';

interface KeyClient {
  clientId: string;
  alg: Alg;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

let t: TestServer;
const clients = new Map<Alg, KeyClient>();

async function keyClient(alg: Alg, s: TestServer = t, input: Record<string, unknown> = {}): Promise<KeyClient> {
  const { privateKey, publicKey } = await generateKeyPair(alg);
  const publicJwk = { ...(await exportJWK(publicKey)), kid: `${alg}-key`, use: 'sig' };
  const { clientId } = await s.client({ token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicJwk] }, ...input });
  return { clientId, alg, privateKey, publicJwk };
}

beforeAll(async () => {
  t = await startTestServer();
  for (const alg of ['ES256', 'EdDSA', 'RS256', 'PS256'] as const) clients.set(alg, await keyClient(alg));
});
afterAll(() => t.close());

function es256(): KeyClient {
  return clients.get('ES256')!;
}

function nowS(s: TestServer = t): number {
  return Math.floor(s.clock.now() / 1000);
}

/** The claims RFC 7523 §3 asks for, valid now; `overrides` replaces or (with undefined) removes claims. */
function claimsFor(clientId: string, overrides: Record<string, unknown> = {}, s: TestServer = t): JWTPayload {
  const now = nowS(s);
  const claims: Record<string, unknown> = { iss: clientId, sub: clientId, aud: ISSUER, iat: now, exp: now + 60, jti: randomUUID(), ...overrides };
  for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k];
  return claims as JWTPayload;
}

async function assertion(c: KeyClient, overrides: Record<string, unknown> = {}, s: TestServer = t): Promise<string> {
  return new SignJWT(claimsFor(c.clientId, overrides, s)).setProtectedHeader({ alg: c.alg, kid: c.publicJwk.kid! }).sign(c.privateKey);
}

function withAssertion(path: string, jwt: string, form: Record<string, string> = {}, s: TestServer = t) {
  return s.post(path, { client_assertion_type: ASSERTION_TYPE, client_assertion: jwt, ...form });
}

function tokenRequest(jwt: string, form: Record<string, string> = {}, s: TestServer = t) {
  return withAssertion(TOKEN, jwt, { grant_type: 'client_credentials', ...form }, s);
}

function expectError(res: Res, status: number, error: string) {
  expect(res.statusCode).toBe(status);
  const body = res.json();
  expect(Object.keys(body).sort()).toEqual(['error', 'error_description']);
  expect(body.error).toBe(error);
  expect(typeof body.error_description).toBe('string');
  expect(res.headers['cache-control']).toBe('no-store');
}

function expectInvalidClient(res: Res) {
  expectError(res, 401, 'invalid_client');
  // Basic was not tried, so no Basic challenge (RFC 6749 §5.2).
  expect(res.headers['www-authenticate']).toBeUndefined();
}

function expectToken(res: Res) {
  expect(res.statusCode).toBe(200);
  expect(res.json().token_type).toBe('Bearer');
}

describe('successful authentication', () => {
  for (const alg of ['ES256', 'EdDSA', 'RS256', 'PS256'] as const) {
    it(`${alg} client key, aud = issuer and aud = token endpoint URL`, async () => {
      const c = clients.get(alg)!;
      for (const aud of [ISSUER, TOKEN_URL]) {
        const res = await tokenRequest(await assertion(c, { aud }));
        expectToken(res);
      }
    });
  }

  it('the client_id in the body, when it matches', async () => {
    const c = es256();
    expectToken(await tokenRequest(await assertion(c), { client_id: c.clientId }));
  });

  it('a key chosen by kid among several, and a key registered without kid', async () => {
    const a = await generateKeyPair('ES256');
    const b = await generateKeyPair('ES256');
    const jwkA = { ...(await exportJWK(a.publicKey)), kid: 'a' };
    const jwkB = { ...(await exportJWK(b.publicKey)), kid: 'b' };
    const { clientId } = await t.client({ token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwkA, jwkB] } });
    const jwt = await new SignJWT(claimsFor(clientId)).setProtectedHeader({ alg: 'ES256', kid: 'b' }).sign(b.privateKey);
    expectToken(await tokenRequest(jwt));

    const c = await generateKeyPair('ES256');
    const noKid = await t.client({ token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [await exportJWK(c.publicKey)] } });
    const jwt2 = await new SignJWT(claimsFor(noKid.clientId)).setProtectedHeader({ alg: 'ES256' }).sign(c.privateKey);
    expectToken(await tokenRequest(jwt2));
  });

  it('an assertion without kid when several keys of its type are registered (client key rotation)', async () => {
    const oldKey = await generateKeyPair('ES256');
    const newKey = await generateKeyPair('ES256');
    const { clientId } = await t.client({
      token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [{ ...(await exportJWK(oldKey.publicKey)), kid: 'old' }, { ...(await exportJWK(newKey.publicKey)), kid: 'new' }] },
    });
    // RFC 7515 §4.1.4: kid is optional, so every registered key that fits the alg is a candidate.
    for (const { privateKey } of [oldKey, newKey]) {
      const jwt = await new SignJWT(claimsFor(clientId)).setProtectedHeader({ alg: 'ES256' }).sign(privateKey);
      expectToken(await tokenRequest(jwt));
    }
    // Still only the registered keys.
    const stranger = await generateKeyPair('ES256');
    const forged = await new SignJWT(claimsFor(clientId)).setProtectedHeader({ alg: 'ES256' }).sign(stranger.privateKey);
    expectInvalidClient(await tokenRequest(forged));
  });

  it('iat and nbf up to 60 s ahead are tolerated (clock skew)', async () => {
    const c = es256();
    expectToken(await tokenRequest(await assertion(c, { iat: nowS() + 30, nbf: nowS() + 30 })));
  });

  it('an assertion without iat', async () => {
    expectToken(await tokenRequest(await assertion(es256(), { iat: undefined })));
  });

  it('issues a token whose sub and client_id are the asserting client', async () => {
    const c = es256();
    const res = await tokenRequest(await assertion(c));
    const token = res.json().access_token as string;
    const payload = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(payload.sub).toBe(c.clientId);
    expect(payload.client_id).toBe(c.clientId);
  });
});

describe('rejected assertions: 401 invalid_client', () => {
  it('the same assertion twice (replayed jti)', async () => {
    const jwt = await assertion(es256());
    expectToken(await tokenRequest(jwt));
    expectInvalidClient(await tokenRequest(jwt));
  });

  it('a new assertion reusing a jti', async () => {
    const jti = randomUUID();
    expectToken(await tokenRequest(await assertion(es256(), { jti })));
    expectInvalidClient(await tokenRequest(await assertion(es256(), { jti, exp: nowS() + 120 })));
  });

  it('no jti', async () => {
    expectInvalidClient(await tokenRequest(await assertion(es256(), { jti: undefined })));
  });

  it('no exp', async () => {
    expectInvalidClient(await tokenRequest(await assertion(es256(), { exp: undefined })));
  });

  it('expired', async () => {
    expectInvalidClient(await tokenRequest(await assertion(es256(), { iat: nowS() - 120, exp: nowS() - 1 })));
  });

  it('an assertion that expires between two uses of the clock', async () => {
    const s = await startTestServer();
    try {
      const c = await keyClient('ES256', s);
      const jwt = await assertion(c, { exp: nowS(s) + 30 }, s);
      s.clock.advance(31_000);
      expectInvalidClient(await tokenRequest(jwt, {}, s));
    } finally {
      await s.close();
    }
  });

  it('exp more than 5 minutes ahead (exactly 5 minutes is accepted)', async () => {
    // On a whole second, so that "exactly 5 minutes" is exact.
    t.clock.set(Math.ceil(t.clock.now() / 1000) * 1000);
    expectInvalidClient(await tokenRequest(await assertion(es256(), { exp: nowS() + 301 })));
    expectInvalidClient(await tokenRequest(await assertion(es256(), { exp: nowS() + 3600 })));
    expectToken(await tokenRequest(await assertion(es256(), { exp: nowS() + 300 })));
  });

  it('iat more than 60 s in the future', async () => {
    expectInvalidClient(await tokenRequest(await assertion(es256(), { iat: nowS() + 61 })));
  });

  it('nbf more than 60 s in the future', async () => {
    expectInvalidClient(await tokenRequest(await assertion(es256(), { nbf: nowS() + 61 })));
  });

  it('wrong aud', async () => {
    for (const aud of ['https://other.example.com', `${ISSUER}/oauth2/introspect`, `${ISSUER}/`, []]) {
      expectInvalidClient(await tokenRequest(await assertion(es256(), { aud })));
    }
    expectInvalidClient(await tokenRequest(await assertion(es256(), { aud: undefined })));
  });

  it('iss different from sub', async () => {
    const c = es256();
    const other = clients.get('RS256')!;
    expectInvalidClient(await tokenRequest(await assertion(c, { iss: other.clientId })));
    expectInvalidClient(await tokenRequest(await assertion(c, { iss: 'someone-else' })));
    expectInvalidClient(await tokenRequest(await assertion(c, { iss: undefined })));
  });

  it('signed by a key that is not registered, with or without the registered kid', async () => {
    const c = es256();
    const { privateKey } = await generateKeyPair('ES256');
    for (const kid of [c.publicJwk.kid!, 'unknown-kid']) {
      const jwt = await new SignJWT(claimsFor(c.clientId)).setProtectedHeader({ alg: 'ES256', kid }).sign(privateKey);
      expectInvalidClient(await tokenRequest(jwt));
    }
  });

  it('signed with another client\'s registered key', async () => {
    const c = es256();
    const other = await keyClient('ES256');
    const jwt = await new SignJWT(claimsFor(c.clientId)).setProtectedHeader({ alg: 'ES256', kid: c.publicJwk.kid! }).sign(other.privateKey);
    expectInvalidClient(await tokenRequest(jwt));
  });

  it('alg none (unsigned)', async () => {
    const c = es256();
    const enc = (v: object) => base64url.encode(JSON.stringify(v));
    for (const header of [{ alg: 'none' }, { alg: 'none', kid: c.publicJwk.kid }, { alg: 'None', typ: 'JWT' }]) {
      const jwt = `${enc(header)}.${enc(claimsFor(c.clientId))}.`;
      expectInvalidClient(await tokenRequest(jwt));
    }
  });

  it('HS256 signed with the registered public key as the HMAC secret', async () => {
    const c = clients.get('RS256')!;
    const secrets = [
      new TextEncoder().encode(JSON.stringify(c.publicJwk)),
      new TextEncoder().encode(c.publicJwk.n!),
      base64url.decode(c.publicJwk.n!),
    ];
    for (const secret of secrets) {
      const jwt = await new SignJWT(claimsFor(c.clientId)).setProtectedHeader({ alg: 'HS256', kid: c.publicJwk.kid! }).sign(secret);
      expectInvalidClient(await tokenRequest(jwt));
    }
  });

  it('a signature made for other claims', async () => {
    const c = es256();
    const [h, , sig] = (await assertion(c)).split('.');
    const payload = base64url.encode(JSON.stringify(claimsFor(c.clientId)));
    expectInvalidClient(await tokenRequest(`${h}.${payload}.${sig}`));
  });

  it('a client_id in the body that does not match', async () => {
    const other = clients.get('RS256')!;
    expectInvalidClient(await tokenRequest(await assertion(es256()), { client_id: other.clientId }));
  });

  it('not a JWT, or a JWT for an unknown client', async () => {
    expectInvalidClient(await tokenRequest('not-a-jwt'));
    expectInvalidClient(await tokenRequest(await assertion({ ...es256(), clientId: 'cl_unknown' })));
  });

  it('a disabled client', async () => {
    const c = await keyClient('ES256');
    expectToken(await tokenRequest(await assertion(c)));
    await t.server.clients.setDisabled(c.clientId, true);
    expectInvalidClient(await tokenRequest(await assertion(c)));
  });
});

describe('method mismatches', () => {
  it('a wrong client_assertion_type is invalid_request', async () => {
    const jwt = await assertion(es256());
    for (const type of ['urn:ietf:params:oauth:client-assertion-type:saml2-bearer', 'jwt-bearer']) {
      const res = await t.post(TOKEN, { grant_type: 'client_credentials', client_assertion_type: type, client_assertion: jwt });
      expectError(res, 400, 'invalid_request');
    }
    const missing = await t.post(TOKEN, { grant_type: 'client_credentials', client_assertion: jwt });
    expectError(missing, 400, 'invalid_request');
  });

  it('a secret client using private_key_jwt is invalid_client', async () => {
    const { privateKey } = await generateKeyPair('ES256');
    const secretClient = await t.client();
    const jwt = await new SignJWT(claimsFor(secretClient.clientId)).setProtectedHeader({ alg: 'ES256' }).sign(privateKey);
    expectInvalidClient(await tokenRequest(jwt));
    // Its secret works, so the refusal is about the method.
    expectToken(await t.token(secretClient.clientId, secretClient.clientSecret));
  });

  it('a private_key_jwt client using a secret is invalid_client', async () => {
    const c = es256();
    const basicRes = await t.post(TOKEN, { grant_type: 'client_credentials' }, { authorization: basic(c.clientId, 'm2m_cs_guess') });
    expectError(basicRes, 401, 'invalid_client');
    expect(basicRes.headers['www-authenticate']).toMatch(/^Basic /);
    expectError(await t.post(TOKEN, { grant_type: 'client_credentials', client_id: c.clientId, client_secret: 'm2m_cs_guess' }), 401, 'invalid_client');
    expectError(await t.post(TOKEN, { grant_type: 'client_credentials', client_id: c.clientId }), 401, 'invalid_client');
  });

  it('switching methods through the admin API takes effect at once', async () => {
    const c = await keyClient('ES256');
    expectToken(await tokenRequest(await assertion(c)));
    const toSecret = await t.admin({ method: 'PATCH', url: `/admin/clients/${c.clientId}`, payload: { token_endpoint_auth_method: 'client_secret_basic' } });
    expect(toSecret.statusCode).toBe(200);
    const secret = toSecret.json().client_secret as string;
    expectInvalidClient(await tokenRequest(await assertion(c)));
    expectToken(await t.token(c.clientId, secret));

    const back = await t.admin({
      method: 'PATCH', url: `/admin/clients/${c.clientId}`,
      payload: { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [c.publicJwk] } },
    });
    expect(back.statusCode).toBe(200);
    expectError(await t.token(c.clientId, secret), 401, 'invalid_client');
    expectToken(await tokenRequest(await assertion(c)));
  });

  it('an assertion together with another method is invalid_request', async () => {
    const secretClient = await t.client();
    const jwt = await assertion(es256());
    const res = await withAssertion(TOKEN, jwt, { grant_type: 'client_credentials', client_secret: secretClient.clientSecret, client_id: es256().clientId });
    expectError(res, 400, 'invalid_request');
    const withBasic = await t.post(TOKEN, { grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: jwt }, {
      authorization: basic(secretClient.clientId, secretClient.clientSecret),
    });
    expectError(withBasic, 400, 'invalid_request');
  });
});

describe('introspection and revocation with private_key_jwt', () => {
  it('introspects and revokes its own token', async () => {
    const c = es256();
    const token = (await tokenRequest(await assertion(c))).json().access_token as string;

    const intro = await withAssertion(INTROSPECT, await assertion(c), { token });
    expect(intro.statusCode).toBe(200);
    expect(intro.json()).toMatchObject({ active: true, client_id: c.clientId });

    const rev = await withAssertion(REVOKE, await assertion(c), { token });
    expect(rev.statusCode).toBe(200);

    const after = await withAssertion(INTROSPECT, await assertion(c, { aud: TOKEN_URL }), { token });
    expect(after.statusCode).toBe(200);
    expect(after.body).toBe('{"active":false}');
  });

  it('rejects a replayed assertion at introspection and revocation', async () => {
    const c = es256();
    const token = (await tokenRequest(await assertion(c))).json().access_token as string;
    const jwt = await assertion(c);
    expect((await withAssertion(INTROSPECT, jwt, { token })).statusCode).toBe(200);
    expectInvalidClient(await withAssertion(INTROSPECT, jwt, { token }));
    expectInvalidClient(await withAssertion(REVOKE, jwt, { token }));
    // The failed revocation did nothing.
    const check = await withAssertion(INTROSPECT, await assertion(c), { token });
    expect(check.json().active).toBe(true);
  });

  it('rejects an expired assertion at introspection and revocation', async () => {
    const c = es256();
    const token = (await tokenRequest(await assertion(c))).json().access_token as string;
    expectInvalidClient(await withAssertion(INTROSPECT, await assertion(c, { exp: nowS() - 1 }), { token }));
    expectInvalidClient(await withAssertion(REVOKE, await assertion(c, { exp: nowS() - 1 }), { token }));
  });
});
