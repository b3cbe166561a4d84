// DPoP proofs at the token endpoint (RFC 9449 §4.2, §4.3): one `DPoP` header, a JWT of type
// dpop+jwt signed with an asymmetric algorithm by the public key in its own `jwk` header, for this
// method and URL, fresh, and used once. The answer is the key's RFC 7638 thumbprint (`jkt`), which
// the token is bound to.
//
// jose reads the protected header, imports the `jwk` (refusing what is not a public key of the
// alg's type) and computes the thumbprint; the signature is checked by the node:crypto verifier
// the server checks its own tokens with (src/keys/algorithms.ts), built once per key: jose's
// WebCrypto verification costs about 60 µs more per proof on this path, which is the one a DPoP
// token request cannot skip (BENCHMARKS.md).

import { KeyObject } from 'node:crypto';
import { calculateJwkThumbprint, decodeProtectedHeader, importJWK, type JWK } from 'jose';
import { OAuthError } from '../../ground/errors.js';
import { isPlainObject } from '../../ground/json.js';
import { DPOP_SIGNING_ALGS, type SigningAlgorithm } from '../../ground/names.js';
import { createRawVerifier, isSigningAlgorithm, type RawVerifier } from '../../keys/algorithms.js';
import { makeRoom } from '../../ground/bounded-map.js';

/** How far a proof's iat may be from now, either way, in seconds (RFC 9449 §4.3 item 11, §11.1). */
export const DPOP_IAT_WINDOW_S = 60;
/** Longest proof read: a proof with an RSA-4096 key is about 1.5 KB. */
const MAX_PROOF_LENGTH = 8192;
const MAX_JTI_LENGTH = 256;
/** Private JWK members (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2): a proof's key must carry none (RFC 9449 §4.2). */
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
/**
 * Protected headers already checked, with their key's thumbprint and verifier: a client signs every
 * proof with one key for a long time, and so sends the same protected header each time.
 */
const HEADER_CACHE_SIZE = 1000;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

export interface DpopCheckContext {
  /** The URLs the proof's htu may name (the token endpoint, as the issuer gives it). */
  htu: readonly string[];
  /** The algorithms allowed for this client. */
  algorithms: readonly string[];
  now: number;
  /** Records the proof's jti as used until its window ends; false when it was used already. */
  consumeOnce(key: string, expiresAt: number, now: number): boolean | Promise<boolean>;
  /** Checks the proof's nonce (RFC 9449 §8); throws use_dpop_nonce. Absent: nonces are off. */
  nonce?: (nonce: unknown) => void;
}

/** The one public answer for a bad proof; the detail reaches only the log. */
export function invalidProof(detail: string): OAuthError {
  return new OAuthError('invalid_dpop_proof', 'The DPoP proof is invalid.', { detail });
}

/** The header as one string; more than one header, or a value holding several (joined with commas), is refused (§4.3 item 1). */
export function singleProof(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  if (Array.isArray(header)) {
    if (header.length !== 1) throw invalidProof('more than one DPoP header');
    header = header[0]!;
  }
  // A JWS compact serialization has no comma: a comma means headers joined by the HTTP layer.
  if (header.includes(',')) throw invalidProof('more than one DPoP header');
  return header;
}

/** What a checked protected header gives every proof that carries it. */
interface CheckedHeader {
  alg: string;
  jkt: string;
  verifier: RawVerifier;
}

export class DpopProofs {
  /** The protected header, as sent (base64url) -> what it was found to hold; the oldest goes first when full. */
  readonly #headers = new Map<string, CheckedHeader>();

  /**
   * The RFC 7638 thumbprint of the proof's key; throws invalid_dpop_proof (or use_dpop_nonce). A
   * string when it could answer at once (a header seen lately, a replay check in memory), else a
   * promise: a DPoP token request takes no more turns of the event loop than a plain one.
   */
  check(proof: string, ctx: DpopCheckContext): string | Promise<string> {
    if (proof.length === 0 || proof.length > MAX_PROOF_LENGTH) throw invalidProof('DPoP proof empty or too long');
    const parts = proof.split('.');
    if (parts.length !== 3) throw invalidProof('DPoP proof is not a JWS');
    const known = this.#headers.get(parts[0]!);
    if (known === undefined) return this.#header(proof, parts[0]!).then((checked) => this.#checkWith(proof, parts, checked, ctx));
    return this.#checkWith(proof, parts, known, ctx);
  }

  /** The checks of the payload and signature (§4.3 items 7-12) under a checked header. */
  #checkWith(proof: string, parts: string[], { alg, jkt, verifier }: CheckedHeader, ctx: DpopCheckContext): string | Promise<string> {
    // Checked on every proof: a header cached for one client may come from a fapi2 client next.
    if (!ctx.algorithms.includes(alg)) throw invalidProof(`DPoP proof alg ${alg} not allowed`);
    if (!BASE64URL.test(parts[1]!) || !BASE64URL.test(parts[2]!)) throw invalidProof('DPoP proof is not a JWS');
    const signature = Buffer.from(parts[2]!, 'base64url');
    if (!verifier(proof.slice(0, proof.length - parts[2]!.length - 1), signature)) throw invalidProof('DPoP proof signature not verified');
    let claims: unknown;
    try {
      claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
    } catch {
      throw invalidProof('DPoP proof payload is not JSON');
    }
    if (!isPlainObject(claims)) throw invalidProof('DPoP proof payload is not a JSON object');
    // §4.3 items 7-11.
    if (claims.htm !== 'POST') throw invalidProof('DPoP proof htm is not POST');
    const htu = claims.htu;
    if (typeof htu !== 'string' || !(ctx.htu.includes(htu) || ctx.htu.includes(withoutQuery(htu)))) throw invalidProof('DPoP proof htu is not this endpoint');
    const iat = claims.iat;
    if (typeof iat !== 'number' || !Number.isFinite(iat)) throw invalidProof('DPoP proof has no numeric iat');
    const nowS = ctx.now / 1000;
    if (iat < nowS - DPOP_IAT_WINDOW_S) throw invalidProof('DPoP proof iat too old');
    if (iat > nowS + DPOP_IAT_WINDOW_S) throw invalidProof('DPoP proof iat in the future');
    const jti = claims.jti;
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) throw invalidProof('DPoP proof has no usable jti');
    // §8: the nonce before the jti is spent, so the retry with the server's nonce is not a replay.
    ctx.nonce?.(claims.nonce);
    // §11.1: single use while the proof could be accepted, per key (another key's jti is another proof).
    const used = ctx.consumeOnce(`dpop:${jkt}:${jti}`, Math.ceil((iat + DPOP_IAT_WINDOW_S) * 1000), ctx.now);
    if (typeof used !== 'boolean') return used.then((first) => firstUse(first, jkt));
    return firstUse(used, jkt);
  }

  /** The checks of a protected header not seen lately (§4.3 items 2-6), and its key's thumbprint and verifier. */
  async #header(proof: string, encoded: string): Promise<CheckedHeader> {
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(proof);
    } catch {
      throw invalidProof('DPoP proof is not a JWS');
    }
    if (header.typ !== 'dpop+jwt') throw invalidProof('DPoP proof typ is not dpop+jwt');
    const alg = header.alg;
    const verifyAlg = alg === 'Ed25519' ? 'EdDSA' : alg;
    if (typeof alg !== 'string' || !DPOP_SIGNING_ALGS.includes(alg) || !isSigningAlgorithm(verifyAlg)) {
      throw invalidProof(`DPoP proof alg ${String(alg).slice(0, 20)} not allowed`);
    }
    // RFC 7515 §4.1.11: no extension this server would have to understand.
    if (header.crit !== undefined || header.b64 !== undefined) throw invalidProof('DPoP proof has crit or b64');
    const jwk = header.jwk;
    if (!isPlainObject(jwk)) throw invalidProof('DPoP proof has no jwk header');
    for (const m of PRIVATE_MEMBERS) if (m in jwk) throw invalidProof('DPoP proof jwk holds a private key');
    let checked: CheckedHeader;
    try {
      const jkt = await calculateJwkThumbprint(jwk as JWK, 'sha256');
      checked = { alg, jkt, verifier: await this.#verifier(alg, verifyAlg, jwk as JWK) };
    } catch {
      throw invalidProof('DPoP proof jwk is not a usable public key for its alg');
    }
    makeRoom(this.#headers, HEADER_CACHE_SIZE);
    this.#headers.set(encoded, checked);
    return checked;
  }

  async #verifier(alg: string, verifyAlg: SigningAlgorithm, jwk: JWK): Promise<RawVerifier> {
    // jose refuses a key that is not of the alg's type; createRawVerifier refuses a curve or an RSA
    // size the alg does not allow (P-256 for ES256, 2048 bits or more for RSA).
    const key = await importJWK({ ...jwk, ext: true }, alg);
    if (key instanceof Uint8Array || key.type !== 'public') throw new Error('not a public key');
    return createRawVerifier(verifyAlg, KeyObject.from(key));
  }
}

function firstUse(first: boolean, jkt: string): string {
  if (!first) throw invalidProof('DPoP proof jti was already used');
  return jkt;
}

/** RFC 9449 §4.3 item 9: htu compared without its query and fragment, after URL normalisation. */
function withoutQuery(htu: string): string {
  let url: URL;
  try {
    url = new URL(htu);
  } catch {
    return '';
  }
  url.search = '';
  url.hash = '';
  return url.href;
}

/** The token endpoint URL as a proof's htu is compared with it. */
export function normalisedHtu(url: string): string {
  return withoutQuery(url);
}
