// RFC 9449 at the resource: createVerifier and the middleware accept a DPoP-bound token (cnf.jkt)
// only with the DPoP scheme and a valid proof for this request, and refuse every hostile variant
// with the §7.1 answer. Real keys, real jose-signed tokens and proofs from a local issuer.

import { createHash, generateKeyPairSync, randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import express from 'express';
import { calculateJwkThumbprint, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import {
  createVerifier,
  expressBearerAuth,
  fastifyBearerAuth,
  requireScope,
  TokenVerificationError,
  type Verifier,
} from '@m2m-auth/sdk/verify';
import { createAuthFetch, createTokenProvider } from '@m2m-auth/sdk/client';
import { startLocalIssuer, type LocalIssuer } from './local-issuer.js';

const API = 'https://orders.example.com';
const URL_ = `${API}/orders`;

interface Holder {
  privateKey: CryptoKey;
  jwk: JWK;
  jkt: string;
}

async function holder(alg = 'ES256'): Promise<Holder> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const full = await exportJWK(publicKey);
  return { privateKey, jwk: full, jkt: await calculateJwkThumbprint(full, 'sha256') };
}

const ath = (token: string): string => createHash('sha256').update(token).digest('base64url');

/** A proof made with jose, each part overridable (undefined removes a claim). */
async function proof(
  h: Holder,
  token: string | undefined,
  over: { header?: Record<string, unknown>; claims?: Record<string, unknown>; alg?: string } = {},
): Promise<string> {
  const claims: Record<string, unknown> = {
    htm: 'GET', htu: URL_, iat: Math.floor(Date.now() / 1000), jti: randomUUID(),
    ...(token !== undefined && { ath: ath(token) }),
    ...over.claims,
  };
  for (const k of Object.keys(claims)) if (claims[k] === undefined) delete claims[k];
  return new SignJWT(claims).setProtectedHeader({ typ: 'dpop+jwt', alg: over.alg ?? 'ES256', jwk: h.jwk, ...over.header }).sign(h.privateKey);
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

let iss: LocalIssuer;
let verifier: Verifier;
let alice: Holder;
let mallory: Holder;
let bound: string;
let plain: string;

beforeAll(async () => {
  iss = await startLocalIssuer({ audience: API });
  verifier = createVerifier({ issuer: iss.issuer, audience: API, dpop: {} });
  alice = await holder();
  mallory = await holder();
  bound = await iss.sign({ sub: 'cl_alice', client_id: 'cl_alice', scope: 'orders:read', cnf: { jkt: alice.jkt } });
  plain = await iss.sign({ sub: 'cl_bob', client_id: 'cl_bob', scope: 'orders:read' });
});
afterAll(() => iss.close());

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'accepted';
  } catch (err) {
    if (err instanceof TokenVerificationError) return err.code;
    throw err;
  }
}

const dpopAt = (p: string, over: Partial<{ method: string; url: string }> = {}) => ({ scheme: 'DPoP' as const, dpop: p, method: 'GET', url: URL_, ...over });

describe('createVerifier with a DPoP-bound token', () => {
  it('accepts the DPoP scheme with a valid proof for this request, and reports cnf', async () => {
    const claims = await verifier.verify(bound, dpopAt(await proof(alice, bound)));
    expect(claims.cnf).toEqual({ jkt: alice.jkt });
    expect(claims.client_id).toBe('cl_alice');
  });

  it('takes the query off the URL and compares the normalised htu (RFC 9449 §4.3)', async () => {
    const p = await proof(alice, bound, { claims: { htu: 'HTTPS://Orders.Example.com:443/orders' } });
    await expect(verifier.verify(bound, dpopAt(p, { url: `${URL_}?page=2#x` }))).resolves.toBeDefined();
  });

  it('refuses a DPoP-bound token presented as Bearer, or with no presentation at all (no downgrade)', async () => {
    expect(await code(verifier.verify(bound))).toBe('dpop_required');
    expect(await code(verifier.verify(bound, { scheme: 'Bearer', dpop: await proof(alice, bound), method: 'GET', url: URL_ }))).toBe('dpop_required');
  });

  it('refuses the DPoP scheme with a token that is not bound', async () => {
    expect(await code(verifier.verify(plain, dpopAt(await proof(alice, plain))))).toBe('not_dpop_bound');
    // and a plain token still works as Bearer, as before
    await expect(verifier.verify(plain)).resolves.toMatchObject({ client_id: 'cl_bob' });
  });

  const hostile: [string, () => Promise<{ p: string; over?: Partial<{ method: string; url: string }> }>][] = [
    ['no proof', async () => ({ p: '' })],
    ['a proof with the private jwk', async () => {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const priv = await exportJWK(privateKey);
      const pubOnly = { kty: priv.kty, crv: priv.crv, x: priv.x, y: priv.y };
      const h: Holder = { privateKey: privateKey as unknown as CryptoKey, jwk: priv, jkt: await calculateJwkThumbprint(pubOnly, 'sha256') };
      const t = await iss.sign({ sub: 'c', client_id: 'c', cnf: { jkt: h.jkt } });
      bound2 = t;
      return { p: await proof(h, t) };
    }],
    ['alg none', async () => ({
      p: `${b64({ typ: 'dpop+jwt', alg: 'none', jwk: alice.jwk })}.${b64({ htm: 'GET', htu: URL_, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ath: ath(bound) })}.`,
    })],
    ['a symmetric (HS256) proof', async () => {
      const secret = new TextEncoder().encode('0123456789abcdef0123456789abcdef');
      const p = await new SignJWT({ htm: 'GET', htu: URL_, iat: Math.floor(Date.now() / 1000), jti: randomUUID(), ath: ath(bound) })
        .setProtectedHeader({ typ: 'dpop+jwt', alg: 'HS256', jwk: { kty: 'oct', k: Buffer.from(secret).toString('base64url') } as never })
        .sign(secret);
      return { p };
    }],
    ['typ other than dpop+jwt', async () => ({ p: await proof(alice, bound, { header: { typ: 'JWT' } }) })],
    ['wrong htm', async () => ({ p: await proof(alice, bound, { claims: { htm: 'POST' } }) })],
    ['wrong htu (another resource)', async () => ({ p: await proof(alice, bound, { claims: { htu: 'https://payments.example.com/orders' } }) })],
    ['wrong htu (another path)', async () => ({ p: await proof(alice, bound), over: { url: `${API}/admin` } })],
    ['a stale iat', async () => ({ p: await proof(alice, bound, { claims: { iat: Math.floor(Date.now() / 1000) - 600 } }) })],
    ['a future iat', async () => ({ p: await proof(alice, bound, { claims: { iat: Math.floor(Date.now() / 1000) + 600 } }) })],
    ['no jti', async () => ({ p: await proof(alice, bound, { claims: { jti: undefined } }) })],
    ['a proof by another key than cnf.jkt', async () => ({ p: await proof(mallory, bound) })],
    ['a missing ath', async () => ({ p: await proof(alice, undefined) })],
    ['a wrong ath (another token)', async () => ({ p: await proof(alice, plain) })],
    ['a tampered signature', async () => {
      const p = await proof(alice, bound);
      return { p: p.slice(0, -4) + (p.endsWith('AAAA') ? 'BBBB' : 'AAAA') };
    }],
  ];
  /** Each refused for its own reason, not for an earlier one. */
  const REASONS: Record<string, RegExp> = {
    'no proof': /no DPoP header/,
    'a proof with the private jwk': /not a public key/,
    'alg none': /alg "none"/,
    'a symmetric (HS256) proof': /alg "HS256"/,
    'typ other than dpop+jwt': /typ/,
    'wrong htm': /htm/,
    'wrong htu (another resource)': /htu/,
    'wrong htu (another path)': /htu/,
    'a stale iat': /too old/,
    'a future iat': /future/,
    'no jti': /jti/,
    'a proof by another key than cnf.jkt': /another key/,
    'a missing ath': /ath is missing/,
    'a wrong ath (another token)': /ath does not match/,
    'a tampered signature': /signature/,
  };
  let bound2: string | undefined;
  for (const [name, make] of hostile) {
    it(`refuses ${name} with invalid_dpop_proof`, async () => {
      bound2 = undefined;
      const { p, over } = await make();
      const token = bound2 ?? bound;
      const err = await verifier.verify(token, dpopAt(p, over)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TokenVerificationError);
      expect((err as TokenVerificationError).code).toBe('invalid_dpop_proof');
      expect((err as Error).message).toMatch(REASONS[name]!);
    });
  }

  it('refuses a replayed proof (same jti), and accepts a fresh one', async () => {
    const p = await proof(alice, bound);
    await verifier.verify(bound, dpopAt(p));
    expect(await code(verifier.verify(bound, dpopAt(p)))).toBe('invalid_dpop_proof');
    await expect(verifier.verify(bound, dpopAt(await proof(alice, bound)))).resolves.toBeDefined();
  });

  it('refuses proof algorithms outside its list, and a list with HS256 or none', async () => {
    const rsa = await holder('PS256');
    const t = await iss.sign({ sub: 'c', client_id: 'c', cnf: { jkt: rsa.jkt } });
    const onlyEs = createVerifier({ issuer: iss.issuer, audience: API, dpop: { algorithms: ['ES256'] } });
    expect(await code(onlyEs.verify(t, dpopAt(await proof(rsa, t, { alg: 'PS256' }))))).toBe('invalid_dpop_proof');
    await expect(verifier.verify(t, dpopAt(await proof(rsa, t, { alg: 'PS256' })))).resolves.toBeDefined();
    expect(() => createVerifier({ issuer: iss.issuer, audience: API, dpop: { algorithms: ['HS256' as 'ES256'] } })).toThrow(/dpop.algorithms/);
    expect(() => createVerifier({ issuer: iss.issuer, audience: API, dpop: { algorithms: ['none' as 'ES256'] } })).toThrow(/dpop.algorithms/);
  });

  it('refuses a token whose cnf it cannot check', async () => {
    const t = await iss.sign({ sub: 'c', client_id: 'c', cnf: { jwk: alice.jwk } });
    expect(await code(verifier.verify(t, dpopAt(await proof(alice, t))))).toBe('invalid_claim');
  });

  it('asks for its nonce when nonces are on (use_dpop_nonce), then accepts the proof that carries it', async () => {
    const v = createVerifier({ issuer: iss.issuer, audience: API, dpop: { nonce: true } });
    expect(await code(v.verify(bound, dpopAt(await proof(alice, bound))))).toBe('use_dpop_nonce');
    const nonce = v.dpop!.nonce()!;
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(await code(v.verify(bound, dpopAt(await proof(alice, bound, { claims: { nonce: 'not-ours' } }))))).toBe('use_dpop_nonce');
    await expect(v.verify(bound, dpopAt(await proof(alice, bound, { claims: { nonce } })))).resolves.toBeDefined();
  });

  it('keeps the replay cache within its size', async () => {
    const v = createVerifier({ issuer: iss.issuer, audience: API, dpop: { replayCacheSize: 3 } });
    const proofs = await Promise.all([1, 2, 3, 4, 5].map(() => proof(alice, bound)));
    for (const p of proofs) await v.verify(bound, dpopAt(p));
    // the newest three are remembered; the oldest was let go (documented), the newest is refused
    expect(await code(v.verify(bound, dpopAt(proofs[4]!)))).toBe('invalid_dpop_proof');
    expect(await code(v.verify(bound, dpopAt(proofs[0]!)))).toBe('accepted');
  });

  it('never puts the token or the proof in an error', async () => {
    const p = await proof(mallory, bound);
    try {
      await verifier.verify(bound, dpopAt(p));
      expect.unreachable();
    } catch (err) {
      const text = `${(err as Error).message} ${JSON.stringify(err)} ${String((err as Error).stack)}`;
      expect(text).not.toContain(bound);
      expect(text).not.toContain(p);
      expect(text).not.toContain(p.split('.')[2]!);
    }
  });
});

describe('the middleware with DPoP (real sockets)', () => {
  let fastify: FastifyInstance;
  let fastifyUrl: string;
  let expressServer: Server;
  let expressUrl: string;
  let nonceVerifier: Verifier;

  beforeAll(async () => {
    fastify = Fastify();
    await fastify.register(async (api) => {
      await api.register(fastifyBearerAuth(verifier, { realm: 'orders', origin: API }));
      api.get('/orders', { preHandler: requireScope('orders:read') }, async (request) => ({ client_id: request.auth.client_id, cnf: request.auth.cnf }));
      api.post('/orders', { preHandler: requireScope('orders:write') }, async () => ({ ok: true }));
    });
    fastifyUrl = await fastify.listen({ host: '127.0.0.1', port: 0 });

    nonceVerifier = createVerifier({ issuer: iss.issuer, audience: API, dpop: { nonce: true } });
    const app = express();
    const router = express.Router();
    router.use(expressBearerAuth(nonceVerifier, { realm: 'orders' }));
    router.get('/orders', requireScope('orders:read'), (req, res) => {
      res.json({ client_id: req.auth!.client_id });
    });
    app.use('/v1', router);
    expressServer = await new Promise((resolve) => {
      const srv = app.listen(0, '127.0.0.1', () => resolve(srv));
    });
    expressUrl = `http://127.0.0.1:${(expressServer.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await fastify.close();
    expressServer.closeAllConnections();
    await new Promise((resolve) => expressServer.close(resolve));
  });

  const get = (url: string, headers: Record<string, string>) => fetch(url, { headers });

  it('lets a valid DPoP request through, htu from the configured origin', async () => {
    const res = await get(`${fastifyUrl}/orders`, { authorization: `DPoP ${bound}`, dpop: await proof(alice, bound) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ client_id: 'cl_alice', cnf: { jkt: alice.jkt } });
  });

  it('advertises DPoP with its algs next to Bearer when no token came', async () => {
    const res = await get(`${fastifyUrl}/orders`, {});
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe('Bearer realm="orders", DPoP realm="orders", algs="ES256 EdDSA PS256 RS256"');
  });

  it('answers a DPoP token sent as Bearer with invalid_token and the DPoP challenge', async () => {
    const res = await get(`${fastifyUrl}/orders`, { authorization: `Bearer ${bound}` });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(
      'Bearer realm="orders", error="invalid_token", error_description="The access token is DPoP-bound and needs the DPoP scheme with a proof", DPoP realm="orders", algs="ES256 EdDSA PS256 RS256"',
    );
    expect(await res.json()).toEqual({ error: 'invalid_token', error_description: 'The access token is DPoP-bound and needs the DPoP scheme with a proof' });
  });

  it('answers a bad proof with a DPoP invalid_dpop_proof challenge (RFC 9449 §7.1), never echoing it', async () => {
    const p = await proof(mallory, bound);
    const res = await get(`${fastifyUrl}/orders`, { authorization: `DPoP ${bound}`, dpop: p });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toBe(
      'DPoP realm="orders", error="invalid_dpop_proof", error_description="The DPoP proof is invalid", algs="ES256 EdDSA PS256 RS256"',
    );
    const text = await res.text();
    expect(text).not.toContain(p.split('.')[2]!);
    expect(text).not.toContain(bound.split('.')[2]!);
  });

  it('a Host header that makes no URL is a 401, not a 500 (default origin)', async () => {
    const app = Fastify();
    await app.register(async (api) => {
      await api.register(fastifyBearerAuth(verifier, { realm: 'orders' }));
      api.get('/orders', async () => ({ ok: true }));
    });
    try {
      const res = await app.inject({ method: 'GET', url: '/orders', headers: { host: 'bad host^', authorization: `DPoP ${bound}`, dpop: await proof(alice, bound) } });
      expect(res.statusCode).toBe(401);
      expect(res.headers['www-authenticate']).toContain('error="invalid_dpop_proof"');
    } finally {
      await app.close();
    }
  });

  it('refuses two DPoP headers', async () => {
    const headers = new Headers({ authorization: `DPoP ${bound}` });
    headers.append('dpop', await proof(alice, bound));
    headers.append('dpop', await proof(alice, bound));
    const res = await fetch(`${fastifyUrl}/orders`, { headers });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_dpop_proof"');
  });

  it('answers insufficient_scope with the DPoP scheme the request used', async () => {
    const res = await fetch(`${fastifyUrl}/orders`, { method: 'POST', headers: { authorization: `DPoP ${bound}`, dpop: await proof(alice, bound, { claims: { htm: 'POST' } }) } });
    expect(res.status).toBe(403);
    expect(res.headers.get('www-authenticate')).toBe('DPoP realm="orders", error="insufficient_scope", scope="orders:write", algs="ES256 EdDSA PS256 RS256"');
  });

  it('Express behind a mounted router: htu is the whole path; the nonce is asked for with a DPoP-Nonce header', async () => {
    const url = `${expressUrl}/v1/orders`;
    const first = await get(url, { authorization: `DPoP ${bound}`, dpop: await proof(alice, bound, { claims: { htu: url } }) });
    expect(first.status).toBe(401);
    expect(first.headers.get('www-authenticate')).toBe(
      'DPoP realm="orders", error="use_dpop_nonce", error_description="Resource server requires nonce in DPoP proof", algs="ES256 EdDSA PS256 RS256"',
    );
    const nonce = first.headers.get('dpop-nonce');
    expect(nonce).toBe(nonceVerifier.dpop!.nonce());
    const second = await get(url, { authorization: `DPoP ${bound}`, dpop: await proof(alice, bound, { claims: { htu: url, nonce: nonce! } }) });
    expect(second.status).toBe(200);
    const wrongPath = await get(url, { authorization: `DPoP ${bound}`, dpop: await proof(alice, bound, { claims: { htu: `${expressUrl}/orders`, nonce: nonce! } }) });
    expect(wrongPath.status).toBe(401);
  });

  it('createTokenProvider + createAuthFetch: a DPoP token from the issuer, the resource nonce retry, one token for both calls', async () => {
    const provider = createTokenProvider({ issuer: iss.issuer, clientId: 'cl_sdk', clientSecret: 's3cret-s3cret', tokenEndpointAuthMethod: 'client_secret_post', dpop: true });
    const authFetch = createAuthFetch(provider);
    const before = iss.requests.length;
    const res = await authFetch(`${expressUrl}/v1/orders`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ client_id: 'cl_sdk' });
    // the nonce is remembered for this server: the next call needs no retry
    const again = await authFetch(`${expressUrl}/v1/orders`);
    expect(again.status).toBe(200);
    expect(iss.requests.length - before).toBe(1);
  });
});
