// Client authentication at the token endpoint: client_secret_basic and client_secret_post
// (RFC 6749 §2.3.1) and private_key_jwt (RFC 7523 §2.2, assertion rules of §3).

import { randomBytes, type KeyObject } from 'node:crypto';
import { SignJWT, type CryptoKey, type JWK } from 'jose';
import { basicAuthorization } from '../shared/basic-auth.js';
import { SdkOptionsError } from '../shared/errors.js';

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Asymmetric algorithms only: an HMAC assertion would need the server to hold a shared secret. */
export const ASSERTION_ALGORITHMS = [
  'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512',
] as const;
export type AssertionAlgorithm = (typeof ASSERTION_ALGORITHMS)[number];

export type PrivateKeyInput = KeyObject | CryptoKey | JWK;

/** Lifetime of an assertion: short, as it is made fresh for every request. */
const ASSERTION_TTL_S = 60;

/** What one token request adds to the headers and to the form. */
export interface ClientAuthentication {
  headers: Record<string, string>;
  form: [string, string][];
}

/** Builds the authentication of one request; called again for every attempt. */
export type Authenticate = (nowMs: number) => Promise<ClientAuthentication>;

export function secretAuthentication(
  clientId: string,
  clientSecret: string,
  method: 'client_secret_basic' | 'client_secret_post',
): Authenticate {
  if (method === 'client_secret_post') {
    const form: [string, string][] = [['client_id', clientId], ['client_secret', clientSecret]];
    return () => Promise.resolve({ headers: {}, form });
  }
  const headers = { authorization: basicAuthorization(clientId, clientSecret) };
  return () => Promise.resolve({ headers, form: [] });
}

function isPrivateKey(key: PrivateKeyInput): boolean {
  if (typeof key !== 'object' || key === null) return false;
  if ('kty' in key) return typeof (key as JWK).d === 'string' && key.kty !== 'oct';
  return (key as { type?: unknown }).type === 'private';
}

export function privateKeyJwtAuthentication(
  clientId: string,
  issuer: string,
  privateKey: PrivateKeyInput,
  alg: string,
  kid: string | undefined,
): Authenticate {
  if (!(ASSERTION_ALGORITHMS as readonly string[]).includes(alg)) {
    throw new SdkOptionsError(`alg must be one of ${ASSERTION_ALGORITHMS.join(', ')} for private_key_jwt, got ${JSON.stringify(alg)}`);
  }
  if (!isPrivateKey(privateKey)) {
    throw new SdkOptionsError('privateKey must be an asymmetric private key (a KeyObject, CryptoKey or JWK with "d")');
  }
  const keyId = kid ?? ('kty' in privateKey && typeof privateKey.kid === 'string' ? privateKey.kid : undefined);
  return async (nowMs) => {
    const iat = Math.floor(nowMs / 1000);
    // RFC 7523 §3: iss and sub are the client_id, aud identifies the authorization server, exp is
    // required; a fresh jti per assertion lets the server refuse replays.
    const assertion = await new SignJWT({})
      .setProtectedHeader(keyId === undefined ? { alg } : { alg, kid: keyId })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(issuer)
      .setJti(randomBytes(16).toString('base64url'))
      .setIssuedAt(iat)
      .setExpirationTime(iat + ASSERTION_TTL_S)
      .sign(privateKey);
    return {
      headers: {},
      form: [['client_id', clientId], ['client_assertion_type', CLIENT_ASSERTION_TYPE], ['client_assertion', assertion]],
    };
  };
}
