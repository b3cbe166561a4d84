// JWKs for client registration tests, made with node:crypto.

import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';

export type Jwk = JsonWebKey & { kty: string };

export function keyPair(type: 'ec' | 'rsa' | 'ed25519' | 'x25519' | 'rsa1024'): { publicJwk: Jwk; privateJwk: Jwk } {
  const pair =
    type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : type === 'rsa' ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : type === 'rsa1024' ? generateKeyPairSync('rsa', { modulusLength: 1024 })
    : type === 'ed25519' ? generateKeyPairSync('ed25519')
    : generateKeyPairSync('x25519');
  return {
    publicJwk: pair.publicKey.export({ format: 'jwk' }) as Jwk,
    privateJwk: pair.privateKey.export({ format: 'jwk' }) as Jwk,
  };
}
