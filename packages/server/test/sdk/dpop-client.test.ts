// RFC 9449 on the calling side: createTokenProvider with `dpop` sends a proof with every token
// request (checked by a local issuer with jose), follows the use_dpop_nonce retry and remembers
// the nonce, insists on token_type DPoP, and uses the key it is given.

import { generateKeyPairSync } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { calculateJwkThumbprint, decodeProtectedHeader, generateKeyPair } from 'jose';
import { createAuthFetch, createTokenProvider, SdkOptionsError, TokenRequestError } from '@m2m-auth/sdk/client';
import { createVerifier } from '@m2m-auth/sdk/verify';
import { startLocalIssuer, type LocalIssuer } from './local-issuer.js';
import { decodePart, startStub } from './helpers.js';

const API = 'https://orders.example.com';
let iss: LocalIssuer;

beforeAll(async () => {
  iss = await startLocalIssuer({ audience: API });
});
afterAll(() => iss.close());
afterEach(() => {
  iss.nonce = undefined;
  iss.tokenType = undefined;
  iss.intercept = undefined;
  iss.requests.length = 0;
});

const options = { clientId: 'cl_dpop', clientSecret: 'dpop-client-secret', tokenEndpointAuthMethod: 'client_secret_post' as const };

describe('createTokenProvider with dpop', () => {
  it('sends a proof (typ, public jwk, htm, htu, iat, jti) and gets a token bound to its key', async () => {
    const provider = createTokenProvider({ issuer: iss.issuer, ...options, dpop: true });
    const token = await provider.getToken();
    expect(iss.requests).toHaveLength(1);
    const proof = iss.requests[0]!.proof!;
    expect(proof.header).toMatchObject({ typ: 'dpop+jwt', alg: 'ES256' });
    expect(Object.keys(proof.header.jwk as object).sort()).toEqual(['crv', 'kty', 'x', 'y']);
    expect(proof.payload).toMatchObject({ htm: 'POST', htu: iss.tokenEndpoint });
    expect(typeof proof.payload.jti).toBe('string');
    expect(Math.abs((proof.payload.iat as number) - Date.now() / 1000)).toBeLessThan(5);
    expect(proof.payload.ath).toBeUndefined();
    const jkt = await provider.dpop!.thumbprint();
    expect(decodePart(token, 1).cnf).toEqual({ jkt });
    // cached: a second call asks nothing
    expect(await provider.getToken()).toBe(token);
    expect(iss.requests).toHaveLength(1);
  });

  it('answers use_dpop_nonce once with the server\'s nonce, and puts it in the next proofs without being asked', async () => {
    iss.nonce = 'n-1_first';
    const provider = createTokenProvider({ issuer: iss.issuer, ...options, dpop: true, retry: { attempts: 1 } });
    await provider.getToken();
    expect(iss.requests).toHaveLength(2);
    expect(iss.requests[0]!.proof!.payload.nonce).toBeUndefined();
    expect(iss.requests[1]!.proof!.payload.nonce).toBe('n-1_first');
    expect(iss.requests[1]!.proof!.payload.jti).not.toBe(iss.requests[0]!.proof!.payload.jti);
    provider.invalidate();
    await provider.getToken();
    expect(iss.requests).toHaveLength(3);
    expect(iss.requests[2]!.proof!.payload.nonce).toBe('n-1_first');
  });

  it('does not loop when the server keeps asking for a nonce', async () => {
    iss.intercept = () => ({ status: 400, body: { error: 'use_dpop_nonce' }, headers: { 'dpop-nonce': 'again' } });
    const provider = createTokenProvider({ issuer: iss.issuer, ...options, dpop: true });
    const err = await provider.getToken().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenRequestError);
    expect((err as TokenRequestError).error).toBe('use_dpop_nonce');
    expect(iss.requests).toHaveLength(2);
  });

  it('refuses a Bearer token when it asked for a DPoP-bound one (no silent downgrade)', async () => {
    iss.tokenType = 'Bearer';
    const provider = createTokenProvider({ issuer: iss.issuer, ...options, dpop: true });
    const err = await provider.getToken().catch((e: unknown) => e);
    expect((err as TokenRequestError).error).toBe('invalid_response');
    expect((err as TokenRequestError).message).toMatch(/DPoP-bound token was asked for/);
  });

  it('and without dpop refuses a DPoP token it could not use', async () => {
    iss.tokenType = 'DPoP';
    const provider = createTokenProvider({ issuer: iss.issuer, ...options });
    expect(((await provider.getToken().catch((e: unknown) => e)) as TokenRequestError).error).toBe('invalid_response');
  });

  it('uses a key it is given: a KeyObject (EdDSA), a CryptoKeyPair (PS256)', async () => {
    const ed = generateKeyPairSync('ed25519');
    const p1 = createTokenProvider({ issuer: iss.issuer, ...options, dpop: { privateKey: ed.privateKey, alg: 'EdDSA' } });
    const t1 = await p1.getToken();
    expect(iss.requests[0]!.proof!.header.alg).toBe('EdDSA');
    const expected = await calculateJwkThumbprint(ed.publicKey.export({ format: 'jwk' }) as never, 'sha256');
    expect(decodePart(t1, 1).cnf).toEqual({ jkt: expected });

    const pair = await generateKeyPair('PS256');
    const p2 = createTokenProvider({ issuer: iss.issuer, ...options, dpop: { ...pair, alg: 'PS256' } });
    await p2.getToken();
    expect(iss.requests[1]!.proof!.header.alg).toBe('PS256');
  });

  it('refuses bad DPoP options at once', () => {
    const base = { issuer: iss.issuer, ...options };
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(() => createTokenProvider({ ...base, dpop: { alg: 'HS256' as 'ES256' } })).toThrow(SdkOptionsError);
    expect(() => createTokenProvider({ ...base, dpop: { privateKey: publicKey, alg: 'ES256' } })).toThrow(/private/);
    expect(() => createTokenProvider({ ...base, dpop: { privateKey } as never })).toThrow(/alg/);
  });

  it('createAuthFetch sends Authorization: DPoP and a proof with ath, htm and htu of each call', async () => {
    const provider = createTokenProvider({ issuer: iss.issuer, ...options, dpop: true });
    const api = await startStub(() => ({ status: 200, body: { ok: true } }));
    try {
      const res = await createAuthFetch(provider)(`${api.url}/orders?page=2`, { method: 'POST', body: '{"item":"stamps"}', headers: { 'content-type': 'application/json' } });
      expect(res.status).toBe(200);
      const seen = api.seen[0]!;
      const token = await provider.getToken();
      expect(seen.headers.authorization).toBe(`DPoP ${token}`);
      expect(seen.body).toBe('{"item":"stamps"}');
      const proof = seen.headers.dpop as string;
      expect(decodeProtectedHeader(proof)).toMatchObject({ typ: 'dpop+jwt' });
      const claims = decodePart(proof, 1);
      expect(claims).toMatchObject({ htm: 'POST', htu: `${api.url}/orders` });
      // and the proof is one the SDK's own verifier takes for this request
      const verifier = createVerifier({ issuer: iss.issuer, audience: API });
      await expect(verifier.verify(token, { scheme: 'DPoP', dpop: proof, method: 'POST', url: `${api.url}/orders?page=2` })).resolves.toBeDefined();
    } finally {
      await api.close();
    }
  });

  it('createAuthFetch: a resource 401 without use_dpop_nonce gets a new token once, the body sent again', async () => {
    const provider = createTokenProvider({ issuer: iss.issuer, ...options, dpop: true });
    let calls = 0;
    const api = await startStub(() => (++calls === 1 ? { status: 401, headers: { 'www-authenticate': 'DPoP error="invalid_token"' } } : { status: 200, body: {} }));
    try {
      const res = await createAuthFetch(provider)(api.url, { method: 'PUT', body: 'x=1' });
      expect(res.status).toBe(200);
      expect(api.seen.map((s) => s.body)).toEqual(['x=1', 'x=1']);
      expect(iss.requests).toHaveLength(2);
      expect(api.seen[0]!.headers.authorization).not.toBe(api.seen[1]!.headers.authorization);
    } finally {
      await api.close();
    }
  });
});
