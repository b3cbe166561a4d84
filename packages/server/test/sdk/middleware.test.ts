// The Fastify plugin and the Express middleware end to end on sockets, with tokens from the real
// server: RFC 6750 §3 challenges byte for byte, 403 insufficient_scope, claims on request.auth.

import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import express from 'express';
import { createVerifier, expressBearerAuth, fastifyBearerAuth, requireScope, type Verifier } from '@m2m-auth/sdk/verify';
import { ORDERS, rawToken, registerClient, startAuthServer, type AuthServer } from './helpers.js';

let s: AuthServer;
let readWrite: string;
let readOnly: string;
let expired: string;

beforeAll(async () => {
  s = await startAuthServer();
  const billing = await registerClient(s);
  readWrite = await rawToken(s, billing);
  readOnly = await rawToken(s, billing, { scope: 'orders:read' });
  const t = Math.floor(Date.now() / 1000);
  expired = s.server.keys.sign({
    iss: s.issuer, sub: billing.clientId, client_id: billing.clientId, aud: ORDERS, scope: 'orders:read',
    iat: t - 7200, exp: t - 3600, jti: randomUUID(),
  }).token;
});
afterAll(() => s.close());

async function fastifyApp(verifier: Verifier): Promise<{ url: string; app: FastifyInstance }> {
  const app = Fastify();
  app.get('/health', async () => ({ ok: true }));
  await app.register(async (api) => {
    await api.register(fastifyBearerAuth(verifier, { realm: 'orders', onUnavailable: () => undefined }));
    api.get('/orders', { preHandler: requireScope('orders:read') }, async (request) => ({
      client_id: request.auth.client_id,
      scope: request.auth.scope,
    }));
    api.post('/orders', { preHandler: requireScope('orders:write') }, async (request, reply) =>
      reply.code(201).send({ created_by: request.auth.client_id }),
    );
    api.get('/both', { preHandler: requireScope('orders:read', 'orders:write') }, async () => ({ ok: true }));
    api.get('/any', async (request) => ({ sub: request.auth.sub }));
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { url, app };
}

async function expressApp(verifier: Verifier): Promise<{ url: string; close: () => Promise<void> }> {
  const app = express();
  app.get('/health', (_req, res) => {
    res.json({ ok: true });
  });
  const router = express.Router();
  router.use(expressBearerAuth(verifier, { realm: 'orders' }));
  router.get('/orders', requireScope('orders:read'), (req, res) => {
    res.json({ client_id: req.auth!.client_id, scope: req.auth!.scope });
  });
  router.post('/orders', requireScope('orders:write'), (req, res) => {
    res.status(201).json({ created_by: req.auth!.client_id });
  });
  router.get('/both', requireScope('orders:read', 'orders:write'), (_req, res) => {
    res.json({ ok: true });
  });
  router.get('/any', (req, res) => {
    res.json({ sub: req.auth!.sub });
  });
  app.use(router);
  const server: Server = await new Promise((resolve) => {
    const srv = app.listen(0, '127.0.0.1', () => resolve(srv));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

interface Answer {
  status: number;
  challenge: string | null;
  body: unknown;
}

async function call(url: string, init: { method?: string; authorization?: string } = {}): Promise<Answer> {
  const res = await fetch(url, {
    method: init.method ?? 'GET',
    headers: init.authorization === undefined ? {} : { authorization: init.authorization },
  });
  const text = await res.text();
  return { status: res.status, challenge: res.headers.get('www-authenticate'), body: text === '' ? undefined : JSON.parse(text) };
}

const frameworks: [string, (v: Verifier) => Promise<{ url: string; close: () => Promise<void> }>][] = [
  ['Fastify plugin', async (v) => {
    const { url, app } = await fastifyApp(v);
    return { url, close: () => app.close() };
  }],
  ['Express middleware', expressApp],
];

describe.each(frameworks)('%s', (_name, start) => {
  let base: string;
  let close: () => Promise<void>;
  let downBase: string;
  let closeDown: () => Promise<void>;
  beforeAll(async () => {
    ({ url: base, close } = await start(createVerifier({ issuer: s.issuer, audience: ORDERS })));
    ({ url: downBase, close: closeDown } = await start(createVerifier({ issuer: 'http://127.0.0.1:9', audience: ORDERS })));
  });
  afterAll(async () => {
    await close();
    await closeDown();
  });

  it('lets a token with the scope through and exposes its claims', async () => {
    const res = await call(`${base}/orders`, { authorization: `Bearer ${readOnly}` });
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ client_id: expect.stringMatching(/^cl_/), scope: ['orders:read'] });
    const post = await call(`${base}/orders`, { method: 'POST', authorization: `bearer ${readWrite}` });
    expect(post.status).toBe(201);
    expect((await call(`${base}/both`, { authorization: `Bearer ${readWrite}` })).status).toBe(200);
    expect((await call(`${base}/any`, { authorization: `Bearer ${readOnly}` })).status).toBe(200);
  });

  it('leaves routes outside its scope public', async () => {
    expect(await call(`${base}/health`)).toEqual({ status: 200, challenge: null, body: { ok: true } });
  });

  it('answers 401 with a bare challenge when no credentials were sent (RFC 6750 §3.1)', async () => {
    for (const authorization of [undefined, 'Basic Zm9vOmJhcg==']) {
      const res = await call(`${base}/orders`, authorization === undefined ? {} : { authorization });
      expect(res).toEqual({ status: 401, challenge: 'Bearer realm="orders"', body: undefined });
    }
  });

  it('answers 401 invalid_token with a description for a bad token', async () => {
    expect(await call(`${base}/orders`, { authorization: `Bearer ${expired}` })).toEqual({
      status: 401,
      challenge: 'Bearer realm="orders", error="invalid_token", error_description="The access token expired"',
      body: { error: 'invalid_token', error_description: 'The access token expired' },
    });
    const garbage = await call(`${base}/orders`, { authorization: 'Bearer abc.def.ghi' });
    expect(garbage.status).toBe(401);
    expect(garbage.challenge).toBe('Bearer realm="orders", error="invalid_token", error_description="The access token is malformed"');
  });

  it('answers 400 invalid_request for a Bearer header that is not a token68', async () => {
    const res = await call(`${base}/orders`, { authorization: 'Bearer two words' });
    expect(res.status).toBe(400);
    expect(res.challenge).toBe(
      'Bearer realm="orders", error="invalid_request", error_description="The Authorization header is not a valid Bearer credential"',
    );
  });

  it('answers 403 insufficient_scope naming the scope needed (RFC 6750 §3.1)', async () => {
    const res = await call(`${base}/orders`, { method: 'POST', authorization: `Bearer ${readOnly}` });
    expect(res.status).toBe(403);
    expect(res.challenge).toBe('Bearer realm="orders", error="insufficient_scope", scope="orders:write"');
    expect(res.body).toMatchObject({ error: 'insufficient_scope', scope: 'orders:write' });
    const both = await call(`${base}/both`, { authorization: `Bearer ${readOnly}` });
    expect(both.challenge).toBe('Bearer realm="orders", error="insufficient_scope", scope="orders:read orders:write"');
  });

  it('marks every refusal cache-control: no-store, so that no cache keeps it for the next caller', async () => {
    const refusals = [
      [`${base}/orders`, {}],
      [`${base}/orders`, { authorization: `Bearer ${expired}` }],
      [`${base}/orders`, { authorization: 'Bearer two words' }],
      [`${base}/orders`, { method: 'POST', headers: { authorization: `Bearer ${readOnly}` } }],
      [`${downBase}/orders`, { authorization: `Bearer ${readOnly}` }],
    ] as const;
    for (const [url, init] of refusals) {
      const headers = 'headers' in init ? init.headers : init;
      const res = await fetch(url, { method: 'method' in init ? init.method : 'GET', headers });
      await res.arrayBuffer();
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.headers.get('cache-control')).toBe('no-store');
    }
  });

  it('answers 503 without a challenge when the issuer cannot be reached', async () => {
    const res = await call(`${downBase}/orders`, { authorization: `Bearer ${readOnly}` });
    expect(res.status).toBe(503);
    expect(res.challenge).toBeNull();
    expect(res.body).toMatchObject({ error: 'temporarily_unavailable' });
  });
});

describe('requireScope without the bearer hook', () => {
  it('refuses rather than lets the request through', async () => {
    const app = Fastify();
    app.get('/unguarded', { preHandler: requireScope('orders:read') }, async () => ({ leaked: true }));
    const res = await app.inject({ method: 'GET', url: '/unguarded' });
    expect(res.statusCode).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer');
    await app.close();
  });
});
