// RFC 9068 JWT access tokens: the claims we mint, and the checks that decide whether one is
// still active (RFC 7662 §2.2): signature and issuer, expiry, revocation, client state, kill switch.

import { randomFillSync } from 'node:crypto';
import type { ClientRecord } from '../ground/records.js';
import type { ClientLookup } from '../ground/records.js';
import { MAX_TOKEN_LENGTH } from '../keys/jwt.js';
import { isConfirmation, type Confirmation } from './request/binding.js';
import { makeRoom } from '../ground/bounded-map.js';

/** RFC 9068 §2.2 claims. */
export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string | string[];
  exp: number;
  iat: number;
  jti: string;
  client_id: string;
  scope?: string;
  /** RFC 7800 §3.1: the key (RFC 9449 §6.1 jkt) or certificate (RFC 8705 §3.1 x5t#S256) the token is bound to. */
  cnf?: Confirmation;
}

/** What signs and verifies tokens (the KeyRing). */
export interface TokenSigner {
  /** Signs a claims set written as JSON. */
  sign(claimsJson: string): { token: string; kid: string };
  /** The payload of a token signed by one of our published keys, or null. Checks the signature only. */
  verifyPayload(token: string): Record<string, unknown> | null;
  /** Grows each time a signing key is revoked (here or learnt from storage): verified tokens must be checked again. */
  revocationEpoch(): number;
}

/** What knows about revoked jtis (in memory, backed by storage). */
export interface RevocationCheck {
  has(jti: string): boolean;
}

/**
 * A jti that carries its issuance time: 6 bytes of epoch milliseconds then 10 random bytes,
 * base64url. The kill switch compares this instant, finer than `iat`'s whole seconds.
 */
export function newJti(nowMs: number): string {
  const buf = Buffer.allocUnsafe(16);
  buf.writeUIntBE(nowMs, 0, 6);
  takeRandom(buf, 6, 10);
  return buf.toString('base64url');
}

// Random bytes drawn from a pool refilled 4 KiB at a time: one randomFillSync per ~400 tokens
// instead of one per token.
const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;

function takeRandom(target: Buffer, offset: number, length: number): void {
  if (poolOffset + length > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  pool.copy(target, offset, poolOffset, poolOffset + length);
  // Never hand out the same bytes twice.
  pool.fill(0, poolOffset, poolOffset + length);
  poolOffset += length;
}

export function jtiIssuedAt(claims: Pick<AccessTokenClaims, 'jti' | 'iat'>): number {
  if (claims.jti.length === 22) {
    const buf = Buffer.from(claims.jti, 'base64url');
    if (buf.length === 16) {
      const ms = buf.readUIntBE(0, 6);
      // Trust it only when it agrees with iat (same second); otherwise fall back to iat.
      if (Math.floor(ms / 1000) === claims.iat) return ms;
    }
  }
  return claims.iat * 1000;
}

function isClaims(p: Record<string, unknown>): p is Record<string, unknown> & AccessTokenClaims {
  return (
    typeof p.iss === 'string' && typeof p.sub === 'string' && typeof p.client_id === 'string' &&
    typeof p.jti === 'string' && typeof p.exp === 'number' && typeof p.iat === 'number' &&
    (typeof p.aud === 'string' || (Array.isArray(p.aud) && p.aud.every((a) => typeof a === 'string'))) &&
    (p.scope === undefined || typeof p.scope === 'string') &&
    (p.cnf === undefined || isConfirmation(p.cnf))
  );
}

export function audiences(claims: AccessTokenClaims): string[] {
  return typeof claims.aud === 'string' ? [claims.aud] : claims.aud;
}

export interface AccessTokenReaderOptions {
  /** Read on every check: the issuer is final once the public listener listens. */
  issuer: () => string;
  signer: TokenSigner;
  revocations: RevocationCheck;
  clients: ClientLookup;
  /** How many verified tokens to remember (so repeated introspection skips the signature check). */
  cacheSize?: number;
  now?: () => number;
}

export type TokenState =
  | { active: true; claims: AccessTokenClaims; client: ClientRecord }
  | { active: false; claims?: AccessTokenClaims; reason: string };

export class AccessTokenReader {
  readonly #issuer: () => string;
  readonly #signer: TokenSigner;
  readonly #revocations: RevocationCheck;
  readonly #clients: ClientLookup;
  readonly #now: () => number;
  readonly #cacheSize: number;
  /** token -> claims whose signature and issuer were verified. Revocation and expiry are checked on every read. */
  readonly #verified = new Map<string, AccessTokenClaims>();
  /** The signer's revocationEpoch() when #verified was last emptied. */
  #epoch = 0;

  constructor(opts: AccessTokenReaderOptions) {
    this.#issuer = opts.issuer;
    this.#signer = opts.signer;
    this.#revocations = opts.revocations;
    this.#clients = opts.clients;
    this.#now = opts.now ?? Date.now;
    this.#cacheSize = opts.cacheSize ?? 10_000;
  }

  /** Claims of a token we signed for this issuer, whatever its expiry or revocation; else null. */
  claims(token: string): AccessTokenClaims | null {
    // A revoked signing key: its tokens must fail the signature check again, so forget every verification.
    const epoch = this.#signer.revocationEpoch();
    if (epoch !== this.#epoch) {
      this.#verified.clear();
      this.#epoch = epoch;
    }
    const cached = this.#verified.get(token);
    if (cached) return cached;
    if (token.length > MAX_TOKEN_LENGTH) return null;
    const payload = this.#signer.verifyPayload(token);
    if (!payload || !isClaims(payload) || payload.iss !== this.#issuer()) return null;
    makeRoom(this.#verified, this.#cacheSize);
    this.#verified.set(token, payload);
    return payload;
  }

  /** RFC 7662 §2.2: is this token active right now? */
  async state(token: string): Promise<TokenState> {
    const claims = this.claims(token);
    if (!claims) return { active: false, reason: 'not a token of this issuer' };
    const now = this.#now();
    if (claims.exp * 1000 <= now) {
      this.#verified.delete(token);
      return { active: false, claims, reason: 'expired' };
    }
    if (this.#revocations.has(claims.jti)) return { active: false, claims, reason: 'revoked' };
    const client = await this.#clients.get(claims.client_id);
    if (!client) return { active: false, claims, reason: 'client deleted' };
    if (client.disabled) return { active: false, claims, reason: 'client disabled' };
    if (client.tokensRevokedAt !== null && jtiIssuedAt(claims) <= client.tokensRevokedAt) {
      return { active: false, claims, reason: 'client tokens revoked' };
    }
    return { active: true, claims, client };
  }
}
