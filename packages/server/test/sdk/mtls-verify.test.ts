// RFC 8705 §3 at the resource: a certificate-bound token (cnf x5t#S256) is accepted only over a
// TLS connection that presented that client certificate, or with the RFC 9440 Client-Cert header
// from a proxy the middleware is told to trust. A test CA made with openssl; real HTTPS servers
// with requestCert; undici as the client, as the SDK's docs show.

import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import express from 'express';
import { Agent, fetch as undiciFetch } from 'undici';
import { createVerifier, expressBearerAuth, fastifyBearerAuth, TokenVerificationError, type Verifier } from '@m2m-auth/sdk/verify';
import { createAuthFetch, createTokenProvider, type FetchLike } from '@m2m-auth/sdk/client';
import { startLocalIssuer, type LocalIssuer } from './local-issuer.js';
import { makeTestCa, type Pem, type TestCa } from './test-ca.js';

const API = 'https://orders.example.com';

let ca: TestCa;
let billing: Pem;
let other: Pem;
let iss: LocalIssuer;
let verifier: Verifier;
let certBound: string;

beforeAll(async () => {
  ca = makeTestCa();
  billing = ca.client('billing');
  other = ca.client('someone-else');
  iss = await startLocalIssuer({ audience: API });
  verifier = createVerifier({ issuer: iss.issuer, audience: API });
  certBound = await iss.sign({ sub: 'cl_billing', client_id: 'cl_billing', scope: 'orders:read', cnf: { 'x5t#S256': billing.x5t } });
});
afterAll(async () => {
  await iss.close();
  ca.cleanup();
});

function agent(client?: Pem): Agent {
  return new Agent({ connect: { ca: ca.ca.cert, ...(client && { cert: client.cert, key: client.key }) } });
}

async function call(url: string, token: string, client?: Pem, headers: Record<string, string> = {}): Promise<{ status: number; body: string; challenge: string | null }> {
  const dispatcher = agent(client);
  try {
    const res = await undiciFetch(url, { headers: { authorization: `Bearer ${token}`, ...headers }, dispatcher });
    return { status: res.status, body: await res.text(), challenge: res.headers.get('www-authenticate') };
  } finally {
    await dispatcher.close();
  }
}

describe('createVerifier with a certificate-bound token', () => {
  it('accepts it with the certificate it is bound to, and reports cnf', async () => {
    const claims = await verifier.verify(certBound, { scheme: 'Bearer', clientCertificate: billing.der });
    expect(claims.cnf).toEqual({ 'x5t#S256': billing.x5t });
  });
  it('refuses it without a certificate, or with another one', async () => {
    for (const presentation of [undefined, { scheme: 'Bearer' as const }, { scheme: 'Bearer' as const, clientCertificate: other.der }]) {
      const err = await verifier.verify(certBound, presentation).catch((e: unknown) => e);
      expect((err as TokenVerificationError).code).toBe('certificate_mismatch');
    }
  });
});

describe('the middleware over real TLS', () => {
  let fastify: FastifyInstance;
  let fastifyUrl: string;
  let expressServer: HttpsServer;
  let expressUrl: string;
  let proxied: Server;
  let proxiedUrl: string;
  let untrusting: Server;
  let untrustingUrl: string;

  beforeAll(async () => {
    const tls = { key: ca.server.key, cert: ca.server.cert, ca: ca.ca.cert, requestCert: true, rejectUnauthorized: false };
    fastify = Fastify({ https: tls });
    await fastify.register(async (api) => {
      await api.register(fastifyBearerAuth(verifier, { realm: 'orders' }));
      api.get('/orders', async (request) => ({ client_id: request.auth.client_id, cnf: request.auth.cnf }));
    });
    fastifyUrl = await fastify.listen({ host: '127.0.0.1', port: 0 });

    const app = express();
    app.use(expressBearerAuth(verifier, { realm: 'orders' }));
    app.get('/orders', (req, res) => {
      res.json({ client_id: req.auth!.client_id });
    });
    expressServer = createHttpsServer(tls, app);
    await new Promise<void>((resolve) => expressServer.listen(0, '127.0.0.1', () => resolve()));
    expressUrl = `https://127.0.0.1:${(expressServer.address() as AddressInfo).port}`;

    // Behind a TLS-terminating proxy: plain HTTP, the certificate in Client-Cert (RFC 9440).
    const listen = async (trustedProxies: string[]): Promise<[Server, string]> => {
      const a = express();
      a.use(expressBearerAuth(verifier, { realm: 'orders', trustedProxies }));
      a.get('/orders', (req, res) => {
        res.json({ client_id: req.auth!.client_id });
      });
      const srv: Server = await new Promise((resolve) => {
        const s = a.listen(0, '127.0.0.1', () => resolve(s));
      });
      return [srv, `http://127.0.0.1:${(srv.address() as AddressInfo).port}`];
    };
    [proxied, proxiedUrl] = await listen(['127.0.0.1']);
    [untrusting, untrustingUrl] = await listen(['10.0.0.7']);
  });
  afterAll(async () => {
    await fastify.close();
    for (const s of [expressServer, proxied, untrusting]) {
      s.closeAllConnections();
      await new Promise((resolve) => s.close(resolve));
    }
  });

  for (const [name, url] of [['Fastify', () => fastifyUrl], ['Express', () => expressUrl]] as const) {
    it(`${name}: accepts the token over a connection with the bound certificate`, async () => {
      const res = await call(`${url()}/orders`, certBound, billing);
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ client_id: 'cl_billing' });
    });
    it(`${name}: refuses it without a client certificate, and with another certificate of the same CA`, async () => {
      for (const client of [undefined, other]) {
        const res = await call(`${url()}/orders`, certBound, client);
        expect(res.status).toBe(401);
        expect(res.challenge).toBe('Bearer realm="orders", error="invalid_token", error_description="The access token is bound to another client certificate"');
      }
    });
  }

  it('a Client-Cert header alone does not count on a TLS connection from a client', async () => {
    const res = await call(`${fastifyUrl}/orders`, certBound, other, { 'client-cert': `:${billing.der.toString('base64')}:` });
    expect(res.status).toBe(401);
  });

  it('believes Client-Cert from a trusted proxy address, and ignores it from any other', async () => {
    const header = { authorization: `Bearer ${certBound}`, 'client-cert': `:${billing.der.toString('base64')}:` };
    const trusted = await fetch(`${proxiedUrl}/orders`, { headers: header });
    expect(trusted.status).toBe(200);
    const untrusted = await fetch(`${untrustingUrl}/orders`, { headers: header });
    expect(untrusted.status).toBe(401);
    expect(untrusted.headers.get('www-authenticate')).toContain('error="invalid_token"');
    const another = await fetch(`${proxiedUrl}/orders`, { headers: { ...header, 'client-cert': `:${other.der.toString('base64')}:` } });
    expect(another.status).toBe(401);
    const garbage = await fetch(`${proxiedUrl}/orders`, { headers: { ...header, 'client-cert': 'not a byte sequence' } });
    expect(garbage.status).toBe(401);
  });

  it('tlsClientAuth + mtlsEndpointAliases: the token request goes to the mTLS alias with client_id alone, over the certificate', async () => {
    const seen: { path: string; form: string; peer: string | undefined }[] = [];
    const tokenServer = createHttpsServer({ key: ca.server.key, cert: ca.server.cert, ca: ca.ca.cert, requestCert: true, rejectUnauthorized: false }, (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const base = `https://127.0.0.1:${(tokenServer.address() as AddressInfo).port}`;
        res.setHeader('content-type', 'application/json');
        if (req.url === '/.well-known/oauth-authorization-server') {
          res.end(JSON.stringify({ issuer: base, token_endpoint: `${base}/token`, mtls_endpoint_aliases: { token_endpoint: `${base}/mtls/token` } }));
          return;
        }
        const cert = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
        seen.push({ path: req.url ?? '', form: body, peer: cert.raw === undefined ? undefined : String(cert.subject?.CN) });
        res.end(JSON.stringify({ access_token: certBound, token_type: 'Bearer', expires_in: 600 }));
      });
    });
    await new Promise<void>((resolve) => tokenServer.listen(0, '127.0.0.1', () => resolve()));
    const dispatcher = agent(billing);
    const mtlsFetch = ((input: string | URL | Request, init?: RequestInit) =>
      undiciFetch(input as string, { ...(init as object), dispatcher } as Parameters<typeof undiciFetch>[1])) as unknown as FetchLike;
    try {
      const provider = createTokenProvider({
        issuer: `https://127.0.0.1:${(tokenServer.address() as AddressInfo).port}`, clientId: 'cl_billing',
        tlsClientAuth: true, fetch: mtlsFetch, mtlsEndpointAliases: true,
      });
      const res = await createAuthFetch(provider, mtlsFetch)(`${expressUrl}/orders`);
      expect(res.status).toBe(200);
      expect(seen).toEqual([{ path: '/mtls/token', form: 'grant_type=client_credentials&client_id=cl_billing', peer: 'billing' }]);
    } finally {
      await dispatcher.close();
      tokenServer.closeAllConnections();
      await new Promise((resolve) => tokenServer.close(resolve));
    }
  });

  it('the SDK client with its own fetch bound to an undici dispatcher holding the certificate', async () => {
    const dispatcher = agent(billing);
    const mtlsFetch = ((input: string | URL | Request, init?: RequestInit) =>
      undiciFetch(input as string, { ...(init as object), dispatcher } as Parameters<typeof undiciFetch>[1])) as unknown as FetchLike;
    try {
      iss.intercept = () => ({ status: 200, body: { access_token: certBound, token_type: 'Bearer', expires_in: 600 } });
      const provider = createTokenProvider({ issuer: iss.issuer, clientId: 'cl_billing', clientSecret: 'unused-here-secret', fetch: mtlsFetch });
      const res = await createAuthFetch(provider, mtlsFetch)(`${expressUrl}/orders`);
      expect(res.status).toBe(200);
    } finally {
      iss.intercept = undefined;
      await dispatcher.close();
    }
  });
});
