// What the load generator accepts as a success: an RFC 9068 access token whose JWS (RFC 7515)
// verifies against the server's published JWKS, or an RFC 7662 introspection answer that is
// active for the expected client. Signatures are verified on node:crypto KeyObjects with the
// callback form of crypto.verify, which runs on libuv's thread pool: the event loop that drives
// the requests (and, in-process, the server) does not pay for the verification.

import { constants, createPublicKey, verify, type JsonWebKey, type KeyObject } from 'node:crypto';

export interface Jwk extends JsonWebKey {
  kid?: string;
  alg?: string;
  use?: string;
}

export interface JwkSet {
  keys: Jwk[];
}

export type TokenRejection =
  | 'malformed'
  | 'header'
  | 'typ'
  | 'unknown_kid'
  | 'alg'
  | 'signature'
  | 'payload'
  | 'iss'
  | 'aud'
  | 'exp'
  | 'client_id'
  | 'sub';

export interface TokenExpectations {
  issuer: string;
  clientId: string;
  /** When set, `aud` must be or contain it; otherwise any non-empty audience is accepted. */
  audience?: string | undefined;
}

interface VerificationKey {
  alg: string;
  key: KeyObject;
}

const SEGMENT = /^[A-Za-z0-9_-]+$/;
// Refetch the JWKS for an unknown kid at most this often (a rotation during the test).
const JWKS_REFETCH_INTERVAL_MS = 5_000;

function parseSegment(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(segment, 'base64url').toString('utf8'));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function keysOf(jwks: JwkSet): Map<string, VerificationKey> {
  const out = new Map<string, VerificationKey>();
  for (const jwk of jwks.keys ?? []) {
    if (typeof jwk.kid !== 'string' || typeof jwk.alg !== 'string') continue;
    if (jwk.use !== undefined && jwk.use !== 'sig') continue;
    try {
      out.set(jwk.kid, { alg: jwk.alg, key: createPublicKey({ key: jwk, format: 'jwk' }) });
    } catch {
      // a key node:crypto cannot import cannot have signed a token we accept
    }
  }
  return out;
}

function verifySignature(alg: string, key: KeyObject, data: Buffer, signature: Buffer): Promise<boolean> {
  return new Promise((resolve) => {
    const done = (err: Error | null, ok: boolean): void => resolve(err === null && ok);
    switch (alg) {
      case 'ES256':
        verify('sha256', data, { key, dsaEncoding: 'ieee-p1363' }, signature, done);
        return;
      case 'PS256':
        verify('sha256', data, { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 }, signature, done);
        return;
      case 'RS256':
        verify('sha256', data, key, signature, done);
        return;
      case 'EdDSA':
        verify(null, data, key, signature, done);
        return;
      default:
        resolve(false);
    }
  });
}

export class TokenChecker {
  #keys: Map<string, VerificationKey>;
  readonly #fetchJwks: () => Promise<JwkSet>;
  readonly #now: () => number;
  #lastFetch = 0;
  #refetching: Promise<void> | undefined;

  constructor(jwks: JwkSet, fetchJwks: () => Promise<JwkSet>, now: () => number = Date.now) {
    this.#keys = keysOf(jwks);
    this.#fetchJwks = fetchJwks;
    this.#now = now;
    this.#lastFetch = now();
  }

  get keyCount(): number {
    return this.#keys.size;
  }

  async #keyFor(kid: string): Promise<VerificationKey | undefined> {
    const known = this.#keys.get(kid);
    if (known !== undefined) return known;
    if (this.#refetching === undefined && this.#now() - this.#lastFetch >= JWKS_REFETCH_INTERVAL_MS) {
      this.#lastFetch = this.#now();
      this.#refetching = this.#fetchJwks()
        .then((jwks) => { this.#keys = keysOf(jwks); })
        .catch(() => undefined)
        .finally(() => { this.#refetching = undefined; });
    }
    if (this.#refetching !== undefined) await this.#refetching;
    return this.#keys.get(kid);
  }

  /** Resolves to undefined for a valid token, or to the first reason it is not. */
  async check(token: unknown, expect: TokenExpectations): Promise<TokenRejection | undefined> {
    if (typeof token !== 'string') return 'malformed';
    const parts = token.split('.');
    if (parts.length !== 3 || !parts.every((p) => SEGMENT.test(p))) return 'malformed';
    const [h, p, s] = parts as [string, string, string];
    const header = parseSegment(h);
    if (header === undefined || typeof header.kid !== 'string' || typeof header.alg !== 'string') return 'header';
    // RFC 9068 §4: the resource server must check that typ is at+jwt.
    if (typeof header.typ !== 'string' || header.typ.toLowerCase().replace(/^application\//, '') !== 'at+jwt') return 'typ';
    const key = await this.#keyFor(header.kid);
    if (key === undefined) return 'unknown_kid';
    // RFC 8725 §3.1: the algorithm is the key's, never the one the token names.
    if (header.alg !== key.alg) return 'alg';
    const ok = await verifySignature(key.alg, key.key, Buffer.from(`${h}.${p}`, 'ascii'), Buffer.from(s, 'base64url'));
    if (!ok) return 'signature';
    const claims = parseSegment(p);
    if (claims === undefined) return 'payload';
    return checkClaims(claims, expect, this.#now());
  }
}

export function checkClaims(claims: Record<string, unknown>, expect: TokenExpectations, nowMs: number): TokenRejection | undefined {
  if (claims.iss !== expect.issuer) return 'iss';
  const aud = claims.aud;
  const audiences = typeof aud === 'string' ? [aud] : Array.isArray(aud) && aud.every((a) => typeof a === 'string') ? (aud as string[]) : [];
  if (audiences.length === 0 || audiences.some((a) => a === '')) return 'aud';
  if (expect.audience !== undefined && !audiences.includes(expect.audience)) return 'aud';
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= nowMs) return 'exp';
  if (claims.client_id !== expect.clientId) return 'client_id';
  // RFC 9068 §2.2: sub is the client itself when no resource owner is involved.
  if (typeof claims.sub !== 'string' || claims.sub === '') return 'sub';
  return undefined;
}
