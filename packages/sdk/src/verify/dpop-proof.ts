// RFC 9449 §4.3 and §7.1 at a resource server: checking the DPoP proof that comes with a
// DPoP-bound access token, with a replay cache of bounded size and optional resource nonces (§9).

import { randomBytes } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, errors as joseErrors, jwtVerify, type JWK, type JWTPayload } from 'jose';
import { accessTokenHash, DPOP_ALGORITHMS, DPOP_TYP, htuOf, type DPoPAlgorithm } from '../shared/dpop.js';
import { SdkOptionsError } from '../shared/errors.js';
import { TokenVerificationError } from './errors.js';
import { makeRoom } from '../shared/bounded-map.js';

export interface DPoPVerifierOptions {
  /** Proof algorithms accepted, and advertised in the `algs` of challenges (default ES256, EdDSA, PS256, RS256). */
  algorithms?: readonly DPoPAlgorithm[];
  /** Seconds a proof stays acceptable after its `iat` (default 60); its `jti` is remembered that long. */
  maxAgeS?: number;
  /** Proofs remembered at most for the replay check (default 100000, a few MB). */
  replayCacheSize?: number;
  /**
   * Require a nonce this resource issues (§9): a proof without the current one gets 401
   * use_dpop_nonce with a `DPoP-Nonce` header. `true`, or how often the nonce changes (default 5 minutes).
   */
  nonce?: boolean | { rotateMs?: number };
}

export const DEFAULT_DPOP_ALGORITHMS: readonly DPoPAlgorithm[] = Object.freeze(['ES256', 'EdDSA', 'PS256', 'RS256']);
const DEFAULT_MAX_AGE_S = 60;
const DEFAULT_REPLAY_CACHE_SIZE = 100_000;
const DEFAULT_NONCE_ROTATE_MS = 300_000;
/** Longer proofs are refused before any decoding (an RSA-4096 jwk fits well within). */
const MAX_PROOF_LENGTH = 8 * 1024;
const MAX_JTI_LENGTH = 256;

/** The request a proof must describe, and the token it must be bound to. */
export interface ProofContext {
  method: string;
  /** The request's `htu` form (shared/dpop.ts htuOf). */
  htu: string;
  accessToken: string;
  /** The token's `cnf.jkt`. */
  jkt: string;
}

function invalid(detail: string, cause?: unknown): never {
  throw new TokenVerificationError('invalid_dpop_proof', `The DPoP proof is invalid: ${detail}`, { cause });
}

/**
 * jti values seen, each until its proof would be too old anyway. Insertion order is nearly expiry
 * order (every proof's iat lies within the same window), so expired entries leave from the front,
 * swept every sixteenth of `maxEntries` insertions and when full (an expired entry still held
 * counts as unseen). When full of live entries the oldest sixteenth is dropped: a replay of one
 * of those proofs within the rest of its window becomes possible, rather than memory growing
 * without bound.
 */
export class ReplayCache {
  readonly #seen = new Map<string, number>();
  readonly #sweepEvery: number;
  #inserts = 0;
  constructor(readonly maxEntries: number) {
    this.#sweepEvery = Math.max(1, maxEntries >> 4);
  }

  /** True when `key` was seen and is still remembered; remembers it until `expiresAt` otherwise. */
  seenBefore(key: string, expiresAt: number, now: number): boolean {
    const known = this.#seen.get(key);
    if (known !== undefined && known > now) return true;
    // Not on every call: each walk from the front passes every slot deleted since the Map's last
    // rehash (shared/bounded-map.ts).
    if (++this.#inserts >= this.#sweepEvery || this.#seen.size >= this.maxEntries) {
      this.#inserts = 0;
      for (const [k, exp] of this.#seen) {
        if (exp > now) break;
        this.#seen.delete(k);
      }
    }
    makeRoom(this.#seen, this.maxEntries);
    this.#seen.set(key, expiresAt);
    return false;
  }

  get size(): number {
    return this.#seen.size;
  }
}

/** Resource nonces (§9): a random value replaced every rotateMs; the previous one is still accepted. */
class Nonces {
  #current = randomBytes(18).toString('base64url');
  #previous: string | undefined;
  #rotatedAt: number;
  constructor(readonly rotateMs: number, now: number) {
    this.#rotatedAt = now;
  }
  current(now: number): string {
    if (now - this.#rotatedAt >= this.rotateMs) {
      // Two periods or more without a request: nothing issued before is worth keeping.
      this.#previous = now - this.#rotatedAt < 2 * this.rotateMs ? this.#current : undefined;
      this.#current = randomBytes(18).toString('base64url');
      this.#rotatedAt = now;
    }
    return this.#current;
  }
  accepts(nonce: unknown, now: number): boolean {
    const current = this.current(now);
    return typeof nonce === 'string' && (nonce === current || (this.#previous !== undefined && nonce === this.#previous));
  }
}

export interface ProofChecker {
  readonly algorithms: readonly DPoPAlgorithm[];
  /** The nonce a use_dpop_nonce answer hands out; undefined when nonces are off. */
  nonce(): string | undefined;
  /** Resolves when `proof` is a valid, first-seen proof for `ctx`; rejects with TokenVerificationError. */
  check(proof: string, ctx: ProofContext, toleranceS: number): Promise<void>;
}

export function createProofChecker(options: DPoPVerifierOptions = {}, now: () => number = Date.now): ProofChecker {
  if (typeof options !== 'object' || options === null) throw new SdkOptionsError('dpop must be an options object');
  const algorithms = Object.freeze([...(options.algorithms ?? DEFAULT_DPOP_ALGORITHMS)]);
  if (algorithms.length === 0) throw new SdkOptionsError('dpop.algorithms must not be empty');
  for (const alg of algorithms) {
    // §4.2: asymmetric only; `none` or a MAC would prove nothing about a key.
    if (!(DPOP_ALGORITHMS as readonly string[]).includes(alg)) {
      throw new SdkOptionsError(`dpop.algorithms may only contain ${DPOP_ALGORITHMS.join(', ')}; got ${JSON.stringify(alg)}`);
    }
  }
  const maxAgeS = options.maxAgeS ?? DEFAULT_MAX_AGE_S;
  if (!(maxAgeS > 0 && Number.isFinite(maxAgeS))) throw new SdkOptionsError('dpop.maxAgeS must be a number of seconds > 0');
  const size = options.replayCacheSize ?? DEFAULT_REPLAY_CACHE_SIZE;
  if (!(Number.isInteger(size) && size > 0)) throw new SdkOptionsError('dpop.replayCacheSize must be a whole number > 0');
  let nonces: Nonces | undefined;
  if (options.nonce !== undefined && options.nonce !== false) {
    const rotateMs = options.nonce === true ? DEFAULT_NONCE_ROTATE_MS : (options.nonce.rotateMs ?? DEFAULT_NONCE_ROTATE_MS);
    if (!(rotateMs > 0)) throw new SdkOptionsError('dpop.nonce.rotateMs must be > 0');
    nonces = new Nonces(rotateMs, now());
  }
  const replays = new ReplayCache(size);
  const allowed = new Set<string>(algorithms);

  return {
    algorithms,
    nonce: () => nonces?.current(now()),
    async check(proof, ctx, toleranceS) {
      // §4.3 step 2: a single well-formed JWT.
      if (typeof proof !== 'string' || proof.length > MAX_PROOF_LENGTH || proof.split('.').length !== 3) invalid('not a single compact JWT');
      let header: ReturnType<typeof decodeProtectedHeader>;
      try {
        header = decodeProtectedHeader(proof);
      } catch (err) {
        return invalid('the header is not JSON', err);
      }
      // §4.3 steps 4-6: typ, an allowed asymmetric alg, a public jwk (a private one would mean the
      // client published its key; jose's EmbeddedJWK refuses it too).
      if (header.typ !== DPOP_TYP) invalid('typ is not dpop+jwt');
      if (typeof header.alg !== 'string' || !allowed.has(header.alg)) invalid(`alg ${JSON.stringify(header.alg)} is not allowed`);
      const jwk = header.jwk as JWK | undefined;
      if (typeof jwk !== 'object' || jwk === null || Array.isArray(jwk)) invalid('no jwk in the header');
      if ('d' in jwk || 'p' in jwk || 'k' in jwk || jwk.kty === 'oct') invalid('the jwk is not a public key');
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(proof, EmbeddedJWK, { typ: DPOP_TYP, algorithms: [...algorithms] }));
      } catch (err) {
        const what = err instanceof joseErrors.JWSSignatureVerificationFailed ? 'bad signature' : 'cannot be verified';
        return invalid(what, err);
      }
      const { htm, htu, iat, jti, ath, nonce } = payload as Record<string, unknown>;
      // §4.3 step 7-9.
      if (typeof jti !== 'string' || jti === '' || jti.length > MAX_JTI_LENGTH) invalid('jti is missing');
      if (htm !== ctx.method) invalid('htm is not the method of this request');
      // Compared after the syntax-based normalisation the section recommends (case, default port).
      if (typeof htu !== 'string' || htuOf(htu) !== ctx.htu) invalid('htu is not the URL of this request');
      // §4.3 step 11: iat within the window, the clock tolerance applying on both sides.
      const t = now() / 1000;
      if (typeof iat !== 'number' || !Number.isFinite(iat)) invalid('iat is missing');
      if (iat > t + toleranceS) invalid('iat is in the future');
      if (iat < t - maxAgeS - toleranceS) invalid('iat is too old');
      // §7.1: the proof is bound to this token (ath) and made by its key (jkt).
      if (typeof ath !== 'string' || ath !== accessTokenHash(ctx.accessToken)) invalid(ath === undefined ? 'ath is missing' : 'ath does not match the access token');
      const thumbprint = await calculateJwkThumbprint(jwk, 'sha256');
      if (thumbprint !== ctx.jkt) invalid('the proof is signed by another key than the token is bound to');
      // §9: a nonce of ours, checked before the jti is spent, so the retry with the nonce is not a replay.
      if (nonces !== undefined && !nonces.accepts(nonce, now())) {
        throw new TokenVerificationError('use_dpop_nonce', 'The DPoP proof lacks the current nonce of this resource');
      }
      // §11.1: each proof once, for as long as its iat keeps it acceptable.
      if (replays.seenBefore(`${thumbprint}:${jti}`, (iat + maxAgeS + toleranceS) * 1000, now())) invalid('the proof was used before (jti replayed)');
    },
  };
}
