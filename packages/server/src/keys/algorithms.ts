// JWS signing algorithms (RFC 7518 §3.3, §3.4, §3.5; RFC 8037 §3.1) on node:crypto KeyObjects,
// and key ids as RFC 7638 JWK thumbprints.

import {
  constants,
  createHash,
  createPublicKey,
  generateKeyPair as generateKeyPairCallback,
  sign,
  verify,
  type JsonWebKey,
  type KeyObject,
  type SignKeyObjectInput,
  type VerifyKeyObjectInput,
} from 'node:crypto';
import { promisify } from 'node:util';
import { ConfigError } from '../ground/errors.js';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../ground/names.js';
import { type PublicJwk } from '../ground/records.js';

const generateKeyPair = promisify(generateKeyPairCallback);

export const RSA_MODULUS_BITS = 2048;

/** Raw signature over the JWS signing input. */
export type RawSigner = (data: string | Buffer) => Buffer;
export type RawVerifier = (data: string | Buffer, signature: Buffer) => boolean;

export function isSigningAlgorithm(value: unknown): value is SigningAlgorithm {
  return typeof value === 'string' && (SIGNING_ALGORITHMS as readonly string[]).includes(value);
}

export interface GeneratedKeyPair {
  kid: string;
  alg: SigningAlgorithm;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** The public JWK with kid, alg and use: "sig". */
  publicJwk: PublicJwk;
}

/** A new key pair: P-256 for ES256, Ed25519 for EdDSA, RSA 2048 (e = 65537) for PS256 and RS256. */
export async function generateSigningKeyPair(alg: SigningAlgorithm): Promise<GeneratedKeyPair> {
  let pair: { publicKey: KeyObject; privateKey: KeyObject };
  switch (alg) {
    case 'ES256':
      pair = await generateKeyPair('ec', { namedCurve: 'P-256' });
      break;
    case 'EdDSA':
      pair = await generateKeyPair('ed25519');
      break;
    case 'PS256':
    case 'RS256':
      // Plain "rsa" keys for PS256 too: the padding is chosen per signature, and rsa-pss keys do not export as JWK.
      pair = await generateKeyPair('rsa', { modulusLength: RSA_MODULUS_BITS, publicExponent: 0x10001 });
      break;
    default:
      throw new ConfigError('SIGNING_ALG_INVALID', `unsupported signing algorithm ${String(alg)}`);
  }
  const publicJwk = publicJwkOf(alg, pair.publicKey);
  return { kid: publicJwk.kid as string, alg, privateKey: pair.privateKey, publicKey: pair.publicKey, publicJwk };
}

/**
 * Throws ConfigError KEY_INVALID unless `key` is the key type `alg` needs (RFC 7518 §3.3 and
 * §3.5: RSA keys of at least 2048 bits; §3.4: P-256 for ES256; RFC 8037: Ed25519 for EdDSA).
 */
export function assertKeyFitsAlgorithm(alg: SigningAlgorithm, key: KeyObject): void {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  const ok =
    alg === 'ES256' ? type === 'ec' && details.namedCurve === 'prime256v1'
    : alg === 'EdDSA' ? type === 'ed25519'
    : type === 'rsa' && (details.modulusLength ?? 0) >= RSA_MODULUS_BITS;
  if (!ok) throw new ConfigError('KEY_INVALID', `a ${String(type)} key cannot be used for ${alg}`);
}

/** The public members of the key (RFC 7518 §6.2.1, §6.3.1; RFC 8037 §2) plus kid, alg and use: "sig". */
export function publicJwkOf(alg: SigningAlgorithm, publicKey: KeyObject): PublicJwk {
  assertKeyFitsAlgorithm(alg, publicKey);
  const jwk = publicKey.export({ format: 'jwk' });
  const members: PublicJwk =
    jwk.kty === 'EC' ? { kty: 'EC', crv: jwk.crv, x: jwk.x, y: jwk.y }
    : jwk.kty === 'OKP' ? { kty: 'OKP', crv: jwk.crv, x: jwk.x }
    : { kty: 'RSA', n: jwk.n, e: jwk.e };
  return { ...members, kid: jwkThumbprint(members), alg, use: 'sig' };
}

/** RFC 7638 §3: base64url SHA-256 of the required members in lexicographic order, no whitespace. */
export function jwkThumbprint(jwk: PublicJwk): string {
  let required: Record<string, unknown>;
  switch (jwk.kty) {
    case 'EC':
      required = { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y };
      break;
    case 'OKP':
      required = { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
      break;
    case 'RSA':
      required = { e: jwk.e, kty: jwk.kty, n: jwk.n };
      break;
    default:
      throw new ConfigError('KEY_INVALID', `no thumbprint for key type ${jwk.kty}`);
  }
  for (const [name, value] of Object.entries(required)) {
    if (typeof value !== 'string') throw new ConfigError('KEY_INVALID', `JWK member ${name} is missing`);
  }
  return createHash('sha256').update(JSON.stringify(required)).digest('base64url');
}

/** The public key of a stored JWK, checked against the algorithm. */
export function importPublicJwk(alg: SigningAlgorithm, jwk: PublicJwk): KeyObject {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch (cause) {
    const err = new ConfigError('KEY_INVALID', `the stored public JWK of a ${alg} key cannot be imported`);
    err.cause = cause;
    throw err;
  }
  assertKeyFitsAlgorithm(alg, key);
  return key;
}

/** A signing function with its node:crypto options built once, so each signature costs one call. */
export function createRawSigner(alg: SigningAlgorithm, privateKey: KeyObject): RawSigner {
  assertKeyFitsAlgorithm(alg, privateKey);
  switch (alg) {
    case 'ES256': {
      // RFC 7518 §3.4: R || S, 32 bytes each, not DER.
      const key: SignKeyObjectInput = { key: privateKey, dsaEncoding: 'ieee-p1363' };
      return (data) => sign('sha256', toBuffer(data), key);
    }
    case 'EdDSA':
      // RFC 8037 §3.1: Ed25519 hashes internally, so no digest is named.
      return (data) => sign(null, toBuffer(data), privateKey);
    case 'PS256': {
      // RFC 7518 §3.5: MGF1 with SHA-256 and a salt as long as the hash (32 bytes).
      const key: SignKeyObjectInput = { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
      return (data) => sign('sha256', toBuffer(data), key);
    }
    case 'RS256': {
      const key: SignKeyObjectInput = { key: privateKey, padding: constants.RSA_PKCS1_PADDING };
      return (data) => sign('sha256', toBuffer(data), key);
    }
  }
}

/** A verifying function for one public key; false for any signature that does not verify, never throws. */
export function createRawVerifier(alg: SigningAlgorithm, publicKey: KeyObject): RawVerifier {
  assertKeyFitsAlgorithm(alg, publicKey);
  let check: RawVerifier;
  switch (alg) {
    case 'ES256': {
      const key: VerifyKeyObjectInput = { key: publicKey, dsaEncoding: 'ieee-p1363' };
      check = (data, signature) => signature.length === 64 && verify('sha256', toBuffer(data), key, signature);
      break;
    }
    case 'EdDSA':
      check = (data, signature) => signature.length === 64 && verify(null, toBuffer(data), publicKey, signature);
      break;
    case 'PS256': {
      const key: VerifyKeyObjectInput = { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
      check = (data, signature) => verify('sha256', toBuffer(data), key, signature);
      break;
    }
    case 'RS256': {
      const key: VerifyKeyObjectInput = { key: publicKey, padding: constants.RSA_PKCS1_PADDING };
      check = (data, signature) => verify('sha256', toBuffer(data), key, signature);
      break;
    }
  }
  return (data, signature) => {
    try {
      return check(data, signature);
    } catch {
      return false;
    }
  };
}

function toBuffer(data: string | Buffer): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/** RFC 7518 §3.3-§3.5, RFC 8037 §3.1, RFC 9864: the digest and signature form of each JWS algorithm a client assertion may use. */
const JWS_VERIFY_PARAMS: Readonly<Record<string, { hash: string | null; kind: 'ec' | 'okp' | 'pss' | 'pkcs1'; sigLength?: number }>> = {
  ES256: { hash: 'sha256', kind: 'ec', sigLength: 64 },
  ES384: { hash: 'sha384', kind: 'ec', sigLength: 96 },
  ES512: { hash: 'sha512', kind: 'ec', sigLength: 132 },
  EdDSA: { hash: null, kind: 'okp' },
  Ed25519: { hash: null, kind: 'okp', sigLength: 64 },
  PS256: { hash: 'sha256', kind: 'pss' },
  PS384: { hash: 'sha384', kind: 'pss' },
  PS512: { hash: 'sha512', kind: 'pss' },
  RS256: { hash: 'sha256', kind: 'pkcs1' },
  RS384: { hash: 'sha384', kind: 'pkcs1' },
  RS512: { hash: 'sha512', kind: 'pkcs1' },
};

/**
 * A node:crypto verifying function for a public key jose has already imported and matched to
 * `alg` (a key of a trusted issuer's JWKS); undefined for an algorithm not listed above or an RSA
 * key under 2048 bits. False for any signature that does not verify, never throws.
 */
export function createJwsVerifier(alg: string, publicKey: KeyObject): RawVerifier | undefined {
  const params = Object.hasOwn(JWS_VERIFY_PARAMS, alg) ? JWS_VERIFY_PARAMS[alg]! : undefined;
  if (params === undefined || publicKey.type !== 'public') return undefined;
  if ((params.kind === 'pss' || params.kind === 'pkcs1') && (publicKey.asymmetricKeyType !== 'rsa' || (publicKey.asymmetricKeyDetails?.modulusLength ?? 0) < RSA_MODULUS_BITS)) return undefined;
  const key: VerifyKeyObjectInput =
    params.kind === 'ec' ? { key: publicKey, dsaEncoding: 'ieee-p1363' }
    : params.kind === 'pss' ? { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
    : params.kind === 'pkcs1' ? { key: publicKey, padding: constants.RSA_PKCS1_PADDING }
    : { key: publicKey };
  const { hash, sigLength } = params;
  return (data, signature) => {
    if (sigLength !== undefined && signature.length !== sigLength) return false;
    try {
      return verify(hash, toBuffer(data), key, signature);
    } catch {
      return false;
    }
  };
}
