// A platform token issuer the tests start: real HTTPS with a certificate of a throwaway test CA,
// serving OIDC discovery and a JWKS (a Kubernetes cluster's service-account issuer, GitHub
// Actions) or a SPIFFE bundle endpoint, and signing tokens with real keys. The test steers it:
// rotate its key, slow it down, make it redirect, serve a huge JWKS, or stop it.

import { createServer, type Server } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import type { ServerCertificate } from '../tls/test-ca.js';

export interface IssuerKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

export async function newKey(kid: string, alg = 'ES256'): Promise<IssuerKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg } };
}

export interface LocalIssuer {
  /** https://127.0.0.1:<port> */
  url: string;
  keys: IssuerKey[];
  /** Requests served, by path. */
  hits: Map<string, number>;
  /** Extra behaviour: delay every answer, redirect, a huge JWKS, a Cache-Control value. */
  delayMs: number;
  redirectTo: string | undefined;
  huge: boolean;
  cacheControl: string | undefined;
  spiffeRefreshHint: number | undefined;
  spiffeSequence: number;
  /** The x5c of the SPIFFE bundle's x509-svid key (empty: a key no certificate backs). */
  x509Authority: string[];
  /** Signs `claims` with the current key (the first). */
  sign(claims: JWTPayload, header?: Record<string, unknown>): Promise<string>;
  rotate(kid: string): Promise<IssuerKey>;
  close(): Promise<void>;
}

/** Starts an issuer at https://127.0.0.1:<port>; `issuerPath` is appended to form its issuer URL. */
export async function startIssuer(cert: ServerCertificate, options: { spiffe?: boolean } = {}): Promise<LocalIssuer> {
  const issuer: LocalIssuer = {
    url: '',
    keys: [await newKey('k1')],
    hits: new Map(),
    delayMs: 0,
    redirectTo: undefined,
    huge: false,
    cacheControl: undefined,
    spiffeRefreshHint: undefined,
    spiffeSequence: 1,
    x509Authority: [],
    async sign(claims, header = {}) {
      const key = issuer.keys[0]!;
      return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: key.kid, ...header }).sign(key.privateKey);
    },
    async rotate(kid) {
      const key = await newKey(kid);
      issuer.keys.unshift(key);
      return key;
    },
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  const jwks = (): Record<string, unknown> => {
    const keys: Record<string, unknown>[] = issuer.keys.map((k) => (options.spiffe ? { ...k.jwk, use: 'jwt-svid' } : k.jwk));
    if (options.spiffe) keys.push({ kty: 'EC', crv: 'P-256', x: issuer.keys[0]!.jwk.x, y: issuer.keys[0]!.jwk.y, use: 'x509-svid', x5c: issuer.x509Authority });
    if (issuer.huge) for (let i = 0; i < 5000; i++) keys.push({ ...issuer.keys[0]!.jwk, kid: `filler-${i}` });
    return options.spiffe
      ? { keys, ...(issuer.spiffeRefreshHint !== undefined && { spiffe_refresh_hint: issuer.spiffeRefreshHint }), spiffe_sequence: issuer.spiffeSequence }
      : { keys };
  };
  const server: Server = createServer({ cert: readFileSync(cert.certPath), key: readFileSync(cert.keyPath) }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    issuer.hits.set(path, (issuer.hits.get(path) ?? 0) + 1);
    const answer = (): void => {
      if (issuer.redirectTo !== undefined) {
        res.writeHead(302, { location: issuer.redirectTo }).end();
        return;
      }
      let body: unknown;
      if (path === '/.well-known/openid-configuration') body = { issuer: issuer.url, jwks_uri: `${issuer.url}/openid/v1/jwks` };
      else if (path === '/openid/v1/jwks' || path === '/bundle') body = jwks();
      else {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', ...(issuer.cacheControl !== undefined && { 'cache-control': issuer.cacheControl }) });
      res.end(JSON.stringify(body));
    };
    if (issuer.delayMs > 0) setTimeout(answer, issuer.delayMs);
    else answer();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer.url = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return issuer;
}
