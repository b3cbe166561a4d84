// JWS Compact Serialization (RFC 7515 §3.1, §5.1, §5.2) of RFC 9068 access tokens: minting with a
// precomputed header, and a strict decode-and-verify that never throws on bad input.

import type { KeyObject } from 'node:crypto';
import type { SigningAlgorithm } from '../ground/names.js';
import { createRawSigner, createRawVerifier, type RawVerifier } from './algorithms.js';

/** RFC 9068 §2.1: the `typ` of every access token. */
export const ACCESS_TOKEN_TYP = 'at+jwt';

/** Longer strings are rejected before any parsing, so garbage cannot cost more than a few microseconds. */
export const MAX_TOKEN_LENGTH = 16 * 1024;

export type JwtHeader = { alg: SigningAlgorithm; typ: typeof ACCESS_TOKEN_TYP; kid: string } & Record<string, unknown>;
export type JwtPayload = Record<string, unknown>;

/**
 * Mints compact JWS strings with one key: one base64url and one signature per token. `claims` is
 * the claims set, or its JSON already written (the token endpoint writes the members all tokens
 * of a grant share once, src/oauth/token/token-endpoint.ts).
 */
export type JwtSigner = (claims: object | string) => string;

export function createJwtSigner(alg: SigningAlgorithm, kid: string, privateKey: KeyObject): JwtSigner {
  const signRaw = createRawSigner(alg, privateKey);
  const prefix = base64url(JSON.stringify({ alg, typ: ACCESS_TOKEN_TYP, kid })) + '.';
  return (claims) => {
    const signingInput = prefix + base64url(typeof claims === 'string' ? claims : JSON.stringify(claims));
    return signingInput + '.' + signRaw(signingInput).toString('base64url');
  };
}

function base64url(json: string): string {
  return Buffer.from(json, 'utf8').toString('base64url');
}

/** What verifyJwt needs of a key: its kid, its one algorithm and a verifier built once. */
export interface JwtVerificationKey {
  readonly kid: string;
  readonly alg: SigningAlgorithm;
  readonly verifySignature: RawVerifier;
}

export function createVerificationKey(alg: SigningAlgorithm, kid: string, publicKey: KeyObject): JwtVerificationKey {
  return { kid, alg, verifySignature: createRawVerifier(alg, publicKey) };
}

export type JwtRejection =
  | 'malformed' // not three base64url parts, too long, or a non-canonical signature encoding
  | 'header' // the header is not a JSON object with a string kid
  | 'typ'
  | 'crit'
  | 'unknown_kid'
  | 'alg'
  | 'signature'
  | 'payload'; // the payload is not a JSON object

export type JwtVerifyResult =
  | { ok: true; header: JwtHeader; payload: JwtPayload }
  | { ok: false; reason: JwtRejection };

const SEGMENT = /^[A-Za-z0-9_-]+$/;
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes and verifies a compact JWS signed by one of our keys. Checks the signature only: the
 * caller checks exp, iss, aud and revocation. `keyFor` returns the key for a kid, or undefined
 * when the kid is unknown or no longer published.
 */
export function verifyJwt(token: unknown, keyFor: (kid: string) => JwtVerificationKey | undefined): JwtVerifyResult {
  if (typeof token !== 'string' || token.length > MAX_TOKEN_LENGTH) return reject('malformed');
  const firstDot = token.indexOf('.');
  const secondDot = token.indexOf('.', firstDot + 1);
  if (firstDot <= 0 || secondDot <= firstDot + 1 || token.indexOf('.', secondDot + 1) !== -1) return reject('malformed');
  const headerSegment = token.slice(0, firstDot);
  const payloadSegment = token.slice(firstDot + 1, secondDot);
  const signatureSegment = token.slice(secondDot + 1);
  if (!SEGMENT.test(headerSegment) || !SEGMENT.test(payloadSegment) || !SEGMENT.test(signatureSegment)) {
    return reject('malformed');
  }

  const header = parseJsonObject(headerSegment);
  if (!header || typeof header.kid !== 'string') return reject('header');
  // RFC 9068 §4: the resource server MUST check typ; we only ever mint "at+jwt".
  if (header.typ !== ACCESS_TOKEN_TYP) return reject('typ');
  // RFC 7515 §4.1.11: we understand no extension, so any crit is rejected.
  if ('crit' in header) return reject('crit');
  const key = keyFor(header.kid);
  if (!key) return reject('unknown_kid');
  // RFC 8725 §3.1: the key decides the algorithm; the header must name the same one ("none", HS256 fail here).
  if (header.alg !== key.alg) return reject('alg');

  const signature = Buffer.from(signatureSegment, 'base64url');
  // Only one encoding of a signature is accepted, so a token cannot be altered into another valid string.
  if (signature.toString('base64url') !== signatureSegment) return reject('malformed');
  if (!key.verifySignature(token.slice(0, secondDot), signature)) return reject('signature');

  const payload = parseJsonObject(payloadSegment);
  if (!payload) return reject('payload');
  return { ok: true, header: header as JwtHeader, payload };
}

function reject(reason: JwtRejection): JwtVerifyResult {
  return { ok: false, reason };
}

function parseJsonObject(segment: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(utf8.decode(Buffer.from(segment, 'base64url')));
    return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
