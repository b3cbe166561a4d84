// RFC 9449 DPoP at the token endpoint through Fastify inject: proofs made with jose, the token
// they bind (token_type DPoP, cnf.jkt), and every proof that must be refused with
// 400 invalid_dpop_proof; dpop_bound_access_tokens clients; server nonces; the per-client FAPI 2.0
// switch; discovery.

import { generateKeyPairSync, KeyObject, randomUUID, sign } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { base64url, calculateJwkThumbprint, exportJWK, generateKeyPair, generateSecret, SignJWT, type CryptoKey, type JWK } from 'jose';
import { basic, formBody, startTestServer, testClock, type TestServer } from '../helpers/server.js';

const ISSUER = 'http://localhost:8080';
const TOKEN_URL = `${ISSUER}/oauth2/token`;
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

interface DpopKey {
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
  jkt: string;
}

async function dpopKey(alg = 'ES256'): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  return { alg, privateKey, publicJwk, jkt: await calculateJwkThumbprint(publicJwk) };
}

interface ProofOptions {
  claims?: Record<string, unknown>;
  header?: Record<string, unknown>;
  signWith?: CryptoKey;
}

function proof(s: TestServer, key: DpopKey, o: ProofOptions = {}): Promise<string> {
  const claims: Record<string, unknown> = {
    htm: 'POST', htu: TOKEN_URL, iat: Math.floor(s.clock.now() / 1000), jti: randomUUID(), ...o.claims,
  };
  for (const [k, v] of Object.entries(claims)) if (v === undefined) delete claims[k];
  return new SignJWT(claims).setProtectedHeader({ alg: key.alg, typ: 'dpop+jwt', jwk: key.publicJwk, ...o.header } as never).sign(o.signWith ?? key.privateKey);
}

/** A proof jose would refuse to make: signed here with node:crypto (ES256 with `key`, or RS256 with an RSA key). */
function rawProof(s: TestServer, header: Record<string, unknown>, signer: (data: Buffer) => Buffer): string {
  const claims = { htm: 'POST', htu: TOKEN_URL, iat: Math.floor(s.clock.now() / 1000), jti: randomUUID() };
  const input = `${base64url.encode(JSON.stringify(header))}.${base64url.encode(JSON.stringify(claims))}`;
  return `${input}.${signer(Buffer.from(input)).toString('base64url')}`;
}

function es256Signer(k: DpopKey): (data: Buffer) => Buffer {
  return (data) => sign('sha256', data, { key: KeyObject.from(k.privateKey), dsaEncoding: 'ieee-p1363' });
}

function tokenRequest(s: TestServer, id: string, secret: string, dpop?: string | string[], form: Record<string, string> = {}): Promise<LightMyRequestResponse> {
  return s.inject({
    method: 'POST', url: '/oauth2/token',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: basic(id, secret), ...(dpop !== undefined && { dpop }) },
    payload: formBody({ grant_type: 'client_credentials', ...form }),
  });
}

function payloadOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
}

function expectRefused(res: LightMyRequestResponse, error = 'invalid_dpop_proof'): void {
  expect(res.statusCode, res.body).toBe(400);
  expect(res.json().error).toBe(error);
  expect(res.headers['cache-control']).toBe('no-store');
}

let t: TestServer;
let client: { clientId: string; clientSecret: string };
let key: DpopKey;

beforeAll(async () => {
  t = await startTestServer({}, { clock: testClock(1_800_000_000_000) });
  client = await t.client();
  key = await dpopKey();
});
afterAll(() => t.close());

describe('a valid proof', () => {
  it.each(['ES256', 'EdDSA', 'PS256', 'RS256'])('binds the token to its %s key: token_type DPoP, cnf.jkt', async (alg) => {
    const k = await dpopKey(alg);
    const res = await tokenRequest(t, client.clientId, client.clientSecret, await proof(t, k));
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json();
    expect(body.token_type).toBe('DPoP');
    expect(payloadOf(body.access_token).cnf).toEqual({ jkt: k.jkt });

    const introspected = await t.post('/oauth2/introspect', { token: body.access_token }, { authorization: basic(client.clientId, client.clientSecret) });
    expect(introspected.json()).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: k.jkt } });
  });

  it('ignores the query and fragment of htu (§4.3 item 9)', async () => {
    const res = await tokenRequest(t, client.clientId, client.clientSecret, await proof(t, key, { claims: { htu: `${TOKEN_URL}?a=b#c` } }));
    expect(res.statusCode, res.body).toBe(200);
  });

  it('without a proof, an ordinary client gets a Bearer token without cnf', async () => {
    const res = await tokenRequest(t, client.clientId, client.clientSecret);
    expect(res.json().token_type).toBe('Bearer');
    expect(payloadOf(res.json().access_token).cnf).toBeUndefined();
  });
});

describe('hostile proofs: 400 invalid_dpop_proof', () => {
  const cases: Array<[string, () => Promise<string | string[]>, string]> = [
    ['a private jwk', async () => {
      const full = await exportJWK(key.privateKey);
      return proof(t, key, { header: { jwk: full } });
    }, 'holds a private key'],
    ['an HMAC alg', async () => {
      const secret = await generateSecret('HS256');
      return new SignJWT({ htm: 'POST', htu: TOKEN_URL, iat: Math.floor(t.clock.now() / 1000), jti: randomUUID() })
        .setProtectedHeader({ alg: 'HS256', typ: 'dpop+jwt', jwk: { kty: 'oct', k: 'c2VjcmV0' } } as never).sign(secret);
    }, 'alg HS256 not allowed'],
    ['alg none', async () => {
      const h = base64url.encode(JSON.stringify({ alg: 'none', typ: 'dpop+jwt', jwk: key.publicJwk }));
      const p = base64url.encode(JSON.stringify({ htm: 'POST', htu: TOKEN_URL, iat: Math.floor(t.clock.now() / 1000), jti: randomUUID() }));
      return `${h}.${p}.`;
    }, 'alg none not allowed'],
    ['an asymmetric alg not in dpop_signing_alg_values_supported', async () => proof(t, await dpopKey('ES384')), 'alg ES384 not allowed'],
    ['an RSA key of 1024 bits', async () => {
      const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
      return rawProof(t, { alg: 'RS256', typ: 'dpop+jwt', jwk: publicKey.export({ format: 'jwk' }) }, (d) => sign('sha256', d, privateKey));
    }, 'not a usable public key'],
    ['crit', async () => rawProof(t, { alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk, crit: ['exp'], exp: 1 }, es256Signer(key)), 'crit or b64'],
    ['typ JWT', () => proof(t, key, { header: { typ: 'JWT' } }), 'typ is not dpop'],
    ['no jwk', () => proof(t, key, { header: { jwk: undefined } }), 'no jwk header'],
    ['a signature by another key than its jwk', async () => proof(t, key, { signWith: (await dpopKey()).privateKey }), 'signature not verified'],
    ['htm GET', () => proof(t, key, { claims: { htm: 'GET' } }), 'htm is not POST'],
    ['htu of another endpoint', () => proof(t, key, { claims: { htu: `${ISSUER}/oauth2/introspect` } }), 'htu is not this endpoint'],
    ['htu of another host', () => proof(t, key, { claims: { htu: 'https://evil.example.com/oauth2/token' } }), 'htu is not this endpoint'],
    ['no htu', () => proof(t, key, { claims: { htu: undefined } }), 'htu is not this endpoint'],
    ['a stale iat', () => proof(t, key, { claims: { iat: Math.floor(t.clock.now() / 1000) - 61 } }), 'iat too old'],
    ['a future iat', () => proof(t, key, { claims: { iat: Math.floor(t.clock.now() / 1000) + 61 } }), 'iat in the future'],
    ['a string iat', () => proof(t, key, { claims: { iat: String(Math.floor(t.clock.now() / 1000)) } }), 'no numeric iat'],
    ['no jti', () => proof(t, key, { claims: { jti: undefined } }), 'no usable jti'],
    ['two DPoP headers', async () => [await proof(t, key), await proof(t, key)], 'more than one DPoP header'],
    ['garbage', async () => 'not-a-jwt', 'not a JWS'],
    ['three dots of garbage', async () => 'e30.e30.e30', 'typ is not dpop'],
    ['a signature that is not base64url', async () => `${(await proof(t, key)).slice(0, -3)}+/=`, 'not a JWS'],
    ['an empty header', async () => '', 'empty or too long'],
    ['a huge header', async () => 'a'.repeat(9000), 'empty or too long'],
  ];

  it.each(cases)('%s', async (_name, make, reason) => {
    const before = t.logs.length;
    const res = await tokenRequest(t, client.clientId, client.clientSecret, await make());
    expectRefused(res);
    // Refused for the reason the case is about (the private detail reaches the debug log only).
    expect(t.logs.slice(before).join('')).toContain(reason);
    expect(res.json().error_description).not.toMatch(/jwk|private|signature/i);
  });

  it('a replayed jti, and the same jti under another key is another proof', async () => {
    const jti = randomUUID();
    const first = await proof(t, key, { claims: { jti } });
    expect((await tokenRequest(t, client.clientId, client.clientSecret, first)).statusCode).toBe(200);
    expectRefused(await tokenRequest(t, client.clientId, client.clientSecret, first));
    // A new proof (new iat) reusing the jti: still a replay of that jti for that key.
    t.clock.advance(1000);
    expectRefused(await tokenRequest(t, client.clientId, client.clientSecret, await proof(t, key, { claims: { jti } })));
    const other = await dpopKey();
    expect((await tokenRequest(t, client.clientId, client.clientSecret, await proof(t, other, { claims: { jti } }))).statusCode).toBe(200);
  });

  it('never a 500, and the proof never reaches a log line', async () => {
    const p = await proof(t, key, { claims: { htm: 'PUT' } });
    const before = t.logs.length;
    expectRefused(await tokenRequest(t, client.clientId, client.clientSecret, p));
    const lines = t.logs.slice(before).join('\n');
    expect(lines).toContain('invalid_dpop_proof');
    expect(lines).not.toContain(p.split('.')[2]!);
    expect(lines).not.toContain(p.split('.')[1]!);
  });
});

describe('dpop_bound_access_tokens (RFC 9449 §5.2)', () => {
  it('gets nothing without a proof, a DPoP token with one', async () => {
    const bound = await t.client({ dpop_bound_access_tokens: true });
    expect((await t.server.clients.read(bound.clientId)).dpopBoundAccessTokens).toBe(true);
    const res = await tokenRequest(t, bound.clientId, bound.clientSecret);
    expectRefused(res);
    expect(res.json().error_description).toBe('A DPoP proof is required for this client.');
    const ok = await tokenRequest(t, bound.clientId, bound.clientSecret, await proof(t, key));
    expect(ok.statusCode, ok.body).toBe(200);
    expect(ok.json().token_type).toBe('DPoP');
  });

  it('is client metadata the admin API sets, shows and changes', async () => {
    const created = await t.admin({ method: 'POST', url: '/admin/clients', payload: { client_name: 'dpop', scope: 'a', audience: ['https://api.example.com'], dpop_bound_access_tokens: true } });
    expect(created.statusCode, created.body).toBe(201);
    expect(created.json()).toMatchObject({ dpop_bound_access_tokens: true, fapi2: false });
    const id = created.json().client_id as string;
    const patched = await t.admin({ method: 'PATCH', url: `/admin/clients/${id}`, payload: { dpop_bound_access_tokens: false } });
    expect(patched.json().dpop_bound_access_tokens).toBe(false);
    const bad = await t.admin({ method: 'PATCH', url: `/admin/clients/${id}`, payload: { dpop_bound_access_tokens: 'yes' } });
    expect(bad.statusCode).toBe(400);
  });
});

describe('token reuse with DPoP', () => {
  it('hands a DPoP token only to a proof of the same key, and never to a request without one', async () => {
    const reuse = await t.client({ token_reuse: true });
    const a = await dpopKey();
    const b = await dpopKey();
    const first = (await tokenRequest(t, reuse.clientId, reuse.clientSecret, await proof(t, a))).json().access_token;
    expect((await tokenRequest(t, reuse.clientId, reuse.clientSecret, await proof(t, a))).json().access_token).toBe(first);
    const other = (await tokenRequest(t, reuse.clientId, reuse.clientSecret, await proof(t, b))).json();
    expect(other.access_token).not.toBe(first);
    expect(payloadOf(other.access_token).cnf).toEqual({ jkt: b.jkt });
    const plain = (await tokenRequest(t, reuse.clientId, reuse.clientSecret)).json();
    expect(plain.token_type).toBe('Bearer');
    expect(plain.access_token).not.toBe(first);
  });
});

describe('discovery', () => {
  it('publishes dpop_signing_alg_values_supported, asymmetric only', async () => {
    const res = await t.inject({ method: 'GET', url: '/.well-known/oauth-authorization-server' });
    const algs = res.json().dpop_signing_alg_values_supported as string[];
    expect(algs).toEqual(expect.arrayContaining(['ES256', 'EdDSA', 'PS256', 'RS256']));
    expect(algs.some((a) => a.startsWith('HS') || a === 'none')).toBe(false);
  });
});

describe('server nonces (M2M_AUTH_DPOP_NONCE)', () => {
  let n: TestServer;
  let c: { clientId: string; clientSecret: string };
  beforeAll(async () => {
    n = await startTestServer({ dpopNonce: true }, { clock: testClock(1_800_000_000_000) });
    c = await n.client();
  });
  afterAll(() => n.close());

  it('answers use_dpop_nonce with a DPoP-Nonce, accepts the retry, refuses the nonce once it is old', async () => {
    const first = await tokenRequest(n, c.clientId, c.clientSecret, await proof(n, key));
    expectRefused(first, 'use_dpop_nonce');
    const nonce = first.headers['dpop-nonce'] as string;
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    const retry = await tokenRequest(n, c.clientId, c.clientSecret, await proof(n, key, { claims: { nonce } }));
    expect(retry.statusCode, retry.body).toBe(200);
    expect(retry.json().token_type).toBe('DPoP');
    expectRefused(await tokenRequest(n, c.clientId, c.clientSecret, await proof(n, key, { claims: { nonce: 'AAAAAAAAAAAAAAAAAAAAAAAAAAA' } })), 'use_dpop_nonce');
    n.clock.advance(5 * 60_000);
    const stale = await tokenRequest(n, c.clientId, c.clientSecret, await proof(n, key, { claims: { nonce } }));
    expectRefused(stale, 'use_dpop_nonce');
    expect(stale.headers['dpop-nonce']).not.toBe(nonce);
  });

  it('a nonce of one server is good at another sharing the key-encryption key', async () => {
    const other = await startTestServer({ dpopNonce: true }, { clock: testClock(n.clock.now()), dataDir: n.dataDir });
    try {
      const nonce = (await tokenRequest(n, c.clientId, c.clientSecret, await proof(n, key))).headers['dpop-nonce'] as string;
      const c2 = await other.client();
      const res = await tokenRequest(other, c2.clientId, c2.clientSecret, await proof(other, key, { claims: { nonce } }));
      expect(res.statusCode, res.body).toBe(200);
    } finally {
      await other.close();
    }
  });
});

describe('fapi2 clients', () => {
  interface Fapi2Client { clientId: string; alg: string; privateKey: CryptoKey; kid: string }
  async function fapi2Client(alg = 'ES256', extra: Record<string, unknown> = {}): Promise<Fapi2Client> {
    const { privateKey, publicKey } = await generateKeyPair(alg);
    const jwk = { ...(await exportJWK(publicKey)), kid: `${alg}-k` };
    const { clientId } = await t.client({ token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] }, fapi2: true, ...extra });
    return { clientId, alg, privateKey, kid: jwk.kid };
  }
  function assertion(c: Fapi2Client, claims: Record<string, unknown> = {}): Promise<string> {
    const now = Math.floor(t.clock.now() / 1000);
    return new SignJWT({ iss: c.clientId, sub: c.clientId, aud: ISSUER, iat: now, exp: now + 60, jti: randomUUID(), ...claims })
      .setProtectedHeader({ alg: c.alg, kid: c.kid }).sign(c.privateKey);
  }
  function request(c: Fapi2Client, clientAssertion: string, dpop?: string): Promise<LightMyRequestResponse> {
    return t.inject({
      method: 'POST', url: '/oauth2/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(dpop !== undefined && { dpop }) },
      payload: formBody({ grant_type: 'client_credentials', client_assertion_type: ASSERTION_TYPE, client_assertion: clientAssertion }),
    });
  }

  it('gets a DPoP token with an ES256 assertion to the issuer and an ES256 proof', async () => {
    const c = await fapi2Client();
    const res = await request(c, await assertion(c), await proof(t, key));
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().token_type).toBe('DPoP');
  });

  it('gets nothing without a proof: sender-constrained tokens only', async () => {
    const c = await fapi2Client();
    expectRefused(await request(c, await assertion(c)), 'invalid_request');
  });

  it('refuses a proof signed with RS256, also with a key an ordinary client used just before', async () => {
    const c = await fapi2Client();
    expectRefused(await request(c, await assertion(c), await proof(t, await dpopKey('RS256'))));
    // The server keeps each protected header it checked: the alg is still checked per client.
    const rs = await dpopKey('RS256');
    expect((await tokenRequest(t, client.clientId, client.clientSecret, await proof(t, rs))).statusCode).toBe(200);
    expectRefused(await request(c, await assertion(c), await proof(t, rs)));
  });

  it('refuses an RS256 assertion, an aud of the token endpoint, an aud array', async () => {
    const rs = await fapi2Client('RS256');
    expect((await request(rs, await assertion(rs), await proof(t, key))).statusCode).toBe(401);
    const c = await fapi2Client();
    for (const aud of [TOKEN_URL, [ISSUER]]) {
      const res = await request(c, await assertion(c, { aud }), await proof(t, key));
      expect(res.statusCode).toBe(401);
      expect(res.json().error).toBe('invalid_client');
    }
  });

  it('is refused at registration with a secret method', async () => {
    const res = await t.admin({ method: 'POST', url: '/admin/clients', payload: { client_name: 'f', scope: 'a', audience: ['https://api.example.com'], fapi2: true } });
    expect(res.statusCode).toBe(400);
    expect(res.body).toContain('fapi2');
  });
});
