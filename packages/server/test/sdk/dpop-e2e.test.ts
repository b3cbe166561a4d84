// DPoP end to end (issue 18): the SDK gets a DPoP-bound token from a real m2m-auth (its token
// endpoint checks the proof, binds the token with cnf.jkt) and calls an API protected by the SDK's
// Fastify middleware, over real sockets; with the server's nonces on, and the resource's too.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { createAuthFetch, createTokenProvider, TokenRequestError } from '@m2m-auth/sdk/client';
import { createVerifier, fastifyBearerAuth, requireScope } from '@m2m-auth/sdk/verify';
import { decodePart, ORDERS, registerClient, startAuthServer, type AuthServer } from './helpers.js';

let s: AuthServer;
let api: FastifyInstance;
let apiUrl: string;

beforeAll(async () => {
  s = await startAuthServer({ overrides: { dpopNonce: true } });
  const verifier = createVerifier({ issuer: s.issuer, audience: ORDERS, dpop: { nonce: true } });
  api = Fastify();
  await api.register(async (scope) => {
    await scope.register(fastifyBearerAuth(verifier, { realm: 'orders' }));
    scope.get('/orders', { preHandler: requireScope('orders:read') }, async (request) => ({ client_id: request.auth.client_id, cnf: request.auth.cnf }));
  });
  apiUrl = await api.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await api.close();
  await s.close();
});

describe('DPoP from m2m-auth to an SDK-protected API', () => {
  it('gets a DPoP token (server nonce retry), and calls the API with proofs (resource nonce retry)', async () => {
    const billing = await registerClient(s, { dpop_bound_access_tokens: true });
    const provider = createTokenProvider({ issuer: s.issuer, ...billing, resource: ORDERS, dpop: true });
    const authFetch = createAuthFetch(provider);
    const res = await authFetch(`${apiUrl}/orders`);
    expect(res.status).toBe(200);
    const jkt = await provider.dpop!.thumbprint();
    expect(await res.json()).toEqual({ client_id: billing.clientId, cnf: { jkt } });
    // the server asked for its nonce once, then the SDK sent it unasked
    const tokenRequests = s.seen.filter((r) => r.url === '/oauth2/token');
    expect(tokenRequests).toHaveLength(2);
    const token = await provider.getToken();
    expect(decodePart(token, 1).cnf).toEqual({ jkt });
    expect(decodePart(token, 0).typ).toBe('at+jwt');
    // a second call: the cached token, the remembered resource nonce, no retry
    expect((await authFetch(`${apiUrl}/orders`)).status).toBe(200);
    expect(s.seen.filter((r) => r.url === '/oauth2/token')).toHaveLength(2);
  });

  it('the same token as Bearer is refused by the API (no downgrade)', async () => {
    const billing = await registerClient(s);
    const provider = createTokenProvider({ issuer: s.issuer, ...billing, resource: ORDERS, dpop: true });
    const token = await provider.getToken();
    const res = await fetch(`${apiUrl}/orders`, { headers: { authorization: `Bearer ${token}` } });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toMatch(/^Bearer realm="orders", error="invalid_token", .*, DPoP realm="orders", algs="/);
  });

  it('a dpop_bound_access_tokens client without dpop gets no token', async () => {
    const billing = await registerClient(s, { dpop_bound_access_tokens: true });
    const provider = createTokenProvider({ issuer: s.issuer, ...billing, resource: ORDERS });
    const err = await provider.getToken().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenRequestError);
    expect((err as TokenRequestError).status).toBe(400);
  });
});
