// federated_jwt: a client authenticates with the signed identity its platform gave it (a
// Kubernetes service-account token, a SPIFFE JWT-SVID, a CI job's OIDC token) as an RFC 7523 §2.2
// client assertion (type jwt-bearer, or jwt-spiffe per draft-ietf-oauth-spiffe-client-auth),
// verified with the keys of the client's trusted issuer. Every failure is invalid_client; the
// reason goes to the log only.

import type { X509Certificate } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { KeyObject } from 'node:crypto';
import { decodeProtectedHeader, errors as joseErrors, type CryptoKey, type JWSHeaderParameters } from 'jose';
import { OAuthError } from '../../ground/errors.js';
import { CLIENT_ASSERTION_ALGS, CLIENT_ASSERTION_TYPE } from '../../ground/names.js';
import { CLIENT_ASSERTION_TYPE_SPIFFE, type FederatedIdentity, type TrustedIssuerRecord, type TrustLookup } from '../../ground/trusts.js';
import { KeysUnavailableError, type KeySet } from '../../federation/trust-keys.js';
import { createJwsVerifier, type RawVerifier } from '../../keys/algorithms.js';
import type { VerifiedTokens } from '../../federation/verified-tokens.js';
import { verifiedByAnyKey } from './private-key-jwt.js';
import { makeRoom } from '../../ground/bounded-map.js';

/** iat and nbf may be this far ahead of our clock. */
const MAX_FUTURE_SKEW_S = 60;
const MAX_JTI_LENGTH = 512;
const ALGS: readonly string[] = CLIENT_ASSERTION_ALGS;

/** The key cache of the trusts (src/federation/trust-keys.ts). */
export interface TrustKeySource {
  keySet(trust: TrustedIssuerRecord): Promise<KeySet>;
  refreshForUnknownKid(trust: TrustedIssuerRecord, kid: string | undefined): Promise<boolean>;
  /** A spiffe trust's X.509-SVID authorities (its bundle's x509-svid keys). */
  x509Authorities(trust: TrustedIssuerRecord): Promise<readonly X509Certificate[]>;
}

/** Single-use jti (src/federation/single-use.ts). */
export interface JtiLedger {
  firstUse(trust: string, clientId: string, jti: string, expMs: number, now: number): boolean | Promise<boolean>;
}

export interface FederationPorts {
  trusts: TrustLookup;
  keys: TrustKeySource;
  jtis: JtiLedger;
  /** Tokens already verified (reused platform tokens); none = every request checks the signature. */
  verified?: VerifiedTokens;
}

export interface FederatedContext {
  issuer: string;
  tokenEndpoint: string;
  now: number;
}

function fail(detail: string): never {
  throw new OAuthError('invalid_client', 'Client authentication failed.', { detail });
}

/** node:crypto verifiers of the trusts' keys, per key jose imported (its key set imports each JWK once per alg). */
const verifiers = new WeakMap<CryptoKey, RawVerifier | null>();
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const PAYLOAD_AND_SIGNATURE = /^[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*$/;
/**
 * Per key set, the protected headers (as sent, base64url) that selected one key of it and verified
 * a token, with that key's verifier: an issuer signs its tokens with one header for as long as it
 * keeps a key, so a token with a header seen before skips decoding it and jose's key selection.
 * A new key set (keys fetched again, a changed trust) starts empty.
 */
const checkedHeaders = new WeakMap<KeySet, Map<string, RawVerifier>>();
const MAX_HEADERS_PER_SET = 64;

function headersOf(keys: KeySet): Map<string, RawVerifier> {
  let headers = checkedHeaders.get(keys);
  if (headers === undefined) {
    headers = new Map();
    checkedHeaders.set(keys, headers);
  }
  return headers;
}

function verifierOf(alg: string, key: CryptoKey): RawVerifier | undefined {
  let verifier = verifiers.get(key);
  if (verifier === undefined) {
    verifier = createJwsVerifier(alg, KeyObject.from(key)) ?? null;
    verifiers.set(key, verifier);
  }
  return verifier ?? undefined;
}

/**
 * The payload of `assertion` if a key of `keys` verifies its signature. jose chooses the key (alg,
 * kid, kty, crv, use) and imports it; node:crypto checks the signature (jose's WebCrypto check costs
 * about 60 µs more per token, BENCHMARKS.md). A header with crit or b64, or a key node:crypto is not
 * given, goes through jose's compactVerify whole.
 */
async function verifyWith(assertion: string, header: JWSHeaderParameters, keys: KeySet): Promise<Buffer | Uint8Array> {
  const parts = assertion.split('.');
  if (header.crit !== undefined || header.b64 !== undefined || parts.length !== 3 || !BASE64URL.test(parts[1]!) || !BASE64URL.test(parts[2]!)) {
    return joseVerify(assertion, keys);
  }
  const alg = header.alg as string;
  const input = `${parts[0]}.${parts[1]}`;
  const signature = Buffer.from(parts[2]!, 'base64url');
  const verifies = (key: CryptoKey): boolean | undefined => verifierOf(alg, key)?.(input, signature);
  let key: CryptoKey;
  try {
    key = await keys(header);
  } catch (err) {
    if (!(err instanceof joseErrors.JWKSMultipleMatchingKeys)) throw err;
    // No kid and several keys of the alg (an issuer mid-rotation): try each.
    for await (const candidate of err) {
      const ok = verifies(candidate);
      if (ok === undefined) return joseVerify(assertion, keys);
      if (ok) return Buffer.from(parts[1]!, 'base64url');
    }
    throw new joseErrors.JWSSignatureVerificationFailed();
  }
  const verifier = verifierOf(alg, key);
  if (verifier === undefined) return joseVerify(assertion, keys);
  if (!verifier(input, signature)) throw new joseErrors.JWSSignatureVerificationFailed();
  // This header selects this key of this set: the next token with the same header goes the short way.
  const headers = headersOf(keys);
  makeRoom(headers, MAX_HEADERS_PER_SET);
  headers.set(parts[0]!, verifier);
  return Buffer.from(parts[1]!, 'base64url');
}

/**
 * The payload of `assertion` if its protected header is one that selected a key of `keys` before
 * and that key verifies its signature; undefined when the header was not seen with this key set.
 */
function verifyKnownHeader(assertion: string, keys: KeySet): Buffer | undefined {
  const headers = checkedHeaders.get(keys);
  if (headers === undefined) return undefined;
  const first = assertion.indexOf('.');
  const second = assertion.indexOf('.', first + 1);
  if (first <= 0 || second < 0) return undefined;
  const verifier = headers.get(assertion.slice(0, first));
  if (verifier === undefined) return undefined;
  // Payload and signature in one pass: base64url, one dot between them.
  if (!PAYLOAD_AND_SIGNATURE.test(assertion.slice(first + 1))) return undefined;
  if (!verifier(assertion.slice(0, second), Buffer.from(assertion.slice(second + 1), 'base64url'))) throw new joseErrors.JWSSignatureVerificationFailed();
  return Buffer.from(assertion.slice(first + 1, second), 'base64url');
}

const JOSE_OPTIONS = { algorithms: [...ALGS] };

/** jose's own verification of the whole JWS. */
function joseVerify(assertion: string, keys: KeySet): Promise<Uint8Array> {
  return verifiedByAnyKey(assertion, keys, JOSE_OPTIONS);
}

function claimsOf(payload: Buffer | Uint8Array): Record<string, unknown> {
  try {
    const bytes = Buffer.isBuffer(payload) ? payload : Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    const claims = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) throw new Error('not an object');
    return Object.freeze(claims);
  } catch {
    fail('platform token payload is not a JSON object');
  }
}

/**
 * The verified claims, signed by a current key of the trust (fetched again for an unknown kid),
 * or remembered from an earlier request that carried the same token under the same keys.
 */
async function verifiedClaims(trust: TrustedIssuerRecord, assertion: string, ports: FederationPorts, now: number): Promise<Readonly<Record<string, unknown>>> {
  let set: KeySet;
  try {
    set = await ports.keys.keySet(trust);
  } catch (err) {
    if (err instanceof KeysUnavailableError) fail(`keys of trust ${trust.name} unavailable: ${err.message}`);
    throw err;
  }
  const known = ports.verified?.get(assertion, set, now);
  if (known !== undefined) return known;
  let fast: Buffer | undefined;
  try {
    fast = verifyKnownHeader(assertion, set);
  } catch {
    fail(`platform token signature not verified by trust ${trust.name} (${joseErrors.JWSSignatureVerificationFailed.code})`);
  }
  if (fast !== undefined) return kept(assertion, set, ports, fast);
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(assertion);
  } catch {
    fail('client assertion is not a JWS');
  }
  // RFC 7523 §3 item 9 leaves algorithms to us: asymmetric only, never none, never HMAC (the
  // trust's public key is not a shared secret).
  if (typeof header.alg !== 'string' || !ALGS.includes(header.alg)) fail(`platform token alg ${String(header.alg).slice(0, 16)} is not an accepted asymmetric algorithm`);
  const kid = typeof header.kid === 'string' ? header.kid : undefined;
  let payload: Buffer | Uint8Array;
  try {
    payload = await verifyWith(assertion, header, set);
  } catch (err) {
    let cause = err;
    if (err instanceof joseErrors.JWKSNoMatchingKey && await ports.keys.refreshForUnknownKid(trust, kid)) {
      try {
        set = await ports.keys.keySet(trust);
        payload = await verifyWith(assertion, header, set);
        cause = undefined;
      } catch (again) {
        cause = again;
      }
    }
    if (cause !== undefined) {
      const code = cause instanceof joseErrors.JOSEError ? cause.code : 'unknown';
      fail(`platform token signature not verified by trust ${trust.name} (${code})`);
    }
  }
  return kept(assertion, set, ports, payload!);
}

/** The claims of a verified payload, remembered for the next request with the same token. */
function kept(assertion: string, set: KeySet, ports: FederationPorts, payload: Buffer | Uint8Array): Readonly<Record<string, unknown>> {
  const claims = claimsOf(payload);
  if (typeof claims.exp === 'number') ports.verified?.remember(assertion, set, claims, claims.exp * 1000);
  return claims;
}

function numeric(claims: Record<string, unknown>, name: string): number | undefined {
  const v = claims[name];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(`platform token ${name} is not numeric`);
  return v;
}

/** Checks `assertion` as the platform token of `client`'s identity `federation`; throws invalid_client. */
export async function verifyFederatedAssertion(
  clientId: string,
  federation: FederatedIdentity,
  assertion: string,
  assertionType: string,
  ports: FederationPorts,
  ctx: FederatedContext,
): Promise<void> {
  const trust = await ports.trusts.get(federation.trust);
  if (trust === undefined) fail(`trust ${federation.trust} does not exist`);
  const spiffe = trust.kind === 'spiffe';
  // draft-ietf-oauth-spiffe-client-auth: a JWT-SVID comes as jwt-spiffe; other platform tokens as jwt-bearer.
  if (assertionType !== (spiffe ? CLIENT_ASSERTION_TYPE_SPIFFE : CLIENT_ASSERTION_TYPE)) {
    fail(`client assertion type ${assertionType.slice(0, 64)} does not fit trust kind ${trust.kind}`);
  }
  const claims = await verifiedClaims(trust, assertion, ports, ctx.now);
  const nowS = ctx.now / 1000;
  const sub = claims.sub;
  if (spiffe) {
    // The trust domain is in the SPIFFE ID; a JWT-SVID's iss is not checked (the draft).
    if (typeof sub !== 'string' || !sub.startsWith(`spiffe://${trust.trustDomain}/`)) fail(`platform token sub is not a SPIFFE ID of trust domain ${trust.trustDomain}`);
  } else if (claims.iss !== trust.issuer) {
    fail(`platform token iss is not the issuer of trust ${trust.name}`);
  }
  // RFC 7523 §3 item 3: aud names this server; a SPIFFE JWT-SVID our issuer only (the draft).
  const aud = claims.aud;
  const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
  const accepted = spiffe ? [ctx.issuer] : [ctx.issuer, ctx.tokenEndpoint, ...trust.audiences];
  if (!auds.some((a) => typeof a === 'string' && accepted.includes(a))) fail('platform token aud does not name this server');
  // §3 item 4: exp required; the lifetime bounded by the trust.
  const exp = numeric(claims, 'exp');
  if (exp === undefined) fail('platform token has no exp');
  if (exp <= nowS) fail('platform token expired');
  const iat = numeric(claims, 'iat');
  const nbf = numeric(claims, 'nbf');
  const lifetime = exp - Math.min(nowS, iat ?? nowS);
  if (lifetime > trust.maxTokenLifetime) fail(`platform token lifetime ${Math.round(lifetime)} s is over the trust's maximum of ${trust.maxTokenLifetime} s`);
  if (iat !== undefined && iat > nowS + MAX_FUTURE_SKEW_S) fail('platform token iat is in the future');
  if (nbf !== undefined && nbf > nowS + MAX_FUTURE_SKEW_S) fail('platform token is not valid yet (nbf)');
  // The exact external subject: a prefix or pattern would let every workload under it in.
  if (sub !== federation.subject) fail('platform token sub is not the client\'s federated subject');
  for (const [name, value] of Object.entries(federation.claims)) {
    if (!isDeepStrictEqual(claims[name], value)) fail(`platform token claim ${name.slice(0, 64)} does not hold the required value`);
  }
  const singleUse = trust.singleUseJti ?? trust.kind === 'oidc';
  const jti = claims.jti;
  if (singleUse && (jti !== undefined || trust.singleUseJti === true)) {
    if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH) fail('platform token has no usable jti');
    if (!await ports.jtis.firstUse(trust.name, clientId, jti, Math.ceil(exp * 1000), ctx.now)) fail('platform token jti was already used');
  }
}
