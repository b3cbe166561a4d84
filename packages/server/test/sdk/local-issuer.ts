// A local issuer for the sender-constrained and federated SDK tests: metadata, a JWKS and a token
// endpoint that checks DPoP proofs with jose (RFC 9449 §4.3), can demand its nonce, and issues
// RFC 9068 tokens bound to the proof's key (cnf.jkt), or hands the request to the test.

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, EmbeddedJWK, exportJWK, generateKeyPair, jwtVerify, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

export interface TokenRequest {
  headers: IncomingMessage['headers'];
  form: URLSearchParams;
  /** The DPoP proof's header and payload, when a valid proof came. */
  proof?: { header: Record<string, unknown>; payload: JWTPayload };
}

export interface LocalIssuer {
  issuer: string;
  tokenEndpoint: string;
  requests: TokenRequest[];
  /** Demand this nonce in proofs (RFC 9449 §8); undefined: none. */
  nonce: string | undefined;
  /** The token_type to answer (default DPoP when a proof came, else Bearer). */
  tokenType: string | undefined;
  /** Decides a request before the default handling; return an answer to send it instead. */
  intercept: ((req: TokenRequest) => { status: number; body: unknown; headers?: Record<string, string> } | undefined) | undefined;
  /** An RFC 9068 token signed by the issuer's key. */
  sign(claims: JWTPayload, header?: Record<string, unknown>): Promise<string>;
  close(): Promise<void>;
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

function send(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(value));
}

export async function startLocalIssuer(options: { audience: string }): Promise<LocalIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'local-1', alg: 'ES256', use: 'sig' };
  let base = '';
  const sign = (claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> => {
    const t = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss: base, aud: options.audience, iat: t, exp: t + 600, jti: randomUUID(), ...claims })
      .setProtectedHeader({ alg: 'ES256', kid: 'local-1', typ: 'at+jwt', ...header })
      .sign(privateKey as CryptoKey);
  };
  const issuer: LocalIssuer = {
    issuer: '',
    tokenEndpoint: '',
    requests: [],
    nonce: undefined,
    tokenType: undefined,
    intercept: undefined,
    sign,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  const server: Server = createServer((req, res) => {
    void (async () => {
      if (req.url === '/.well-known/oauth-authorization-server') {
        return send(res, 200, { issuer: base, token_endpoint: `${base}/token`, jwks_uri: `${base}/jwks`, dpop_signing_alg_values_supported: ['ES256', 'EdDSA', 'PS256'] });
      }
      if (req.url === '/jwks') return send(res, 200, { keys: [jwk] });
      if (req.url !== '/token' || req.method !== 'POST') return send(res, 404, { error: 'not_found' });
      const request: TokenRequest = { headers: req.headers, form: new URLSearchParams(await body(req)) };
      issuer.requests.push(request);
      const proof = req.headers.dpop;
      if (typeof proof === 'string') {
        try {
          const { payload, protectedHeader } = await jwtVerify(proof, EmbeddedJWK, { typ: 'dpop+jwt', algorithms: ['ES256', 'EdDSA', 'PS256', 'RS256'], maxTokenAge: 60 });
          if (payload.htm !== 'POST' || payload.htu !== `${base}/token` || typeof payload.jti !== 'string') throw new Error('htm, htu or jti');
          request.proof = { header: protectedHeader as Record<string, unknown>, payload };
        } catch {
          return send(res, 400, { error: 'invalid_dpop_proof', error_description: 'bad proof' });
        }
        if (issuer.nonce !== undefined && request.proof.payload.nonce !== issuer.nonce) {
          return send(res, 400, { error: 'use_dpop_nonce', error_description: 'nonce required' }, { 'dpop-nonce': issuer.nonce });
        }
      }
      const answer = issuer.intercept?.(request);
      if (answer !== undefined) return send(res, answer.status, answer.body, answer.headers);
      const clientId = request.form.get('client_id') ?? 'cl_local';
      const claims: JWTPayload = { sub: clientId, client_id: clientId, scope: 'orders:read orders:write' };
      if (request.proof !== undefined) claims.cnf = { jkt: await calculateJwkThumbprint(request.proof.header.jwk as JWK, 'sha256') };
      const token = await sign(claims);
      send(res, 200, { access_token: token, token_type: issuer.tokenType ?? (request.proof ? 'DPoP' : 'Bearer'), expires_in: 600 },
        issuer.nonce === undefined ? {} : { 'dpop-nonce': issuer.nonce });
    })().catch((err: unknown) => send(res, 500, { error: 'server_error', error_description: String(err) }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  issuer.issuer = base;
  issuer.tokenEndpoint = `${base}/token`;
  return issuer;
}
