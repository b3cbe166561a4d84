// The floor of every token: one raw node:crypto signature (and, for readers, one verification)
// with the options built once and the input already a Buffer. Nothing cheaper produces the same bytes.

import { constants, generateKeyPairSync, sign, verify } from 'node:crypto';
import { measureSync, measureSyncInterleaved } from './measure.js';

export const ALGS = ['ES256', 'EdDSA', 'PS256', 'RS256'];

/** sign(data) and verify(data, signature) for `alg` with node:crypto KeyObjects. */
export function rawCrypto(alg, privateKey, publicKey) {
  switch (alg) {
    case 'ES256': {
      // RFC 7518 §3.4: JWS wants R || S (ieee-p1363), not DER.
      const s = { key: privateKey, dsaEncoding: 'ieee-p1363' };
      const v = { key: publicKey, dsaEncoding: 'ieee-p1363' };
      return { sign: (data) => sign('sha256', data, s), verify: (data, sig) => verify('sha256', data, v, sig) };
    }
    case 'EdDSA':
      return { sign: (data) => sign(null, data, privateKey), verify: (data, sig) => verify(null, data, publicKey, sig) };
    case 'PS256': {
      const s = { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
      const v = { key: publicKey, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 };
      return { sign: (data) => sign('sha256', data, s), verify: (data, sig) => verify('sha256', data, v, sig) };
    }
    case 'RS256': {
      const s = { key: privateKey, padding: constants.RSA_PKCS1_PADDING };
      const v = { key: publicKey, padding: constants.RSA_PKCS1_PADDING };
      return { sign: (data) => sign('sha256', data, s), verify: (data, sig) => verify('sha256', data, v, sig) };
    }
    default:
      throw new Error(`unknown algorithm ${alg}; use one of ${ALGS.join(', ')}`);
  }
}

/** A typical access token's signing input (header.payload, about 330 bytes). */
export const SAMPLE_SIGNING_INPUT = Buffer.from(
  'eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6IjNxVXZ3bXdjS0dzVjVpT0xqUWJNR1lKc0Z6dEt4bV9wUzFtOE1VUFZ0d2MifQ.' +
    Buffer.from(JSON.stringify({
      iss: 'https://auth.example.com', sub: 'cl_OJrtc_v1fRQGDKTz', aud: 'https://orders.example.com',
      exp: 1795781792, iat: 1795778192, jti: 'AaIcuKSZ-_tmw3Q69MP_7Q', client_id: 'cl_OJrtc_v1fRQGDKTz',
      scope: 'orders:read orders:write',
    })).toString('base64url'),
  'utf8',
);

/** A key pair of the type `alg` signs with (RSA keys of 2048 bits, as m2m-auth generates them). */
export function keyPairFor(alg) {
  switch (alg) {
    case 'ES256': return generateKeyPairSync('ec', { namedCurve: 'P-256' });
    case 'EdDSA': return generateKeyPairSync('ed25519');
    case 'PS256':
    case 'RS256': return generateKeyPairSync('rsa', { modulusLength: 2048 });
    default: throw new Error(`unknown algorithm ${alg}; use one of ${ALGS.join(', ')}`);
  }
}

/** Seconds per raw signature of `alg` on this machine, measured now. */
export async function rawSignSeconds(alg = 'ES256', options = {}) {
  const pair = keyPairFor(alg);
  const raw = rawCrypto(alg, pair.privateKey, pair.publicKey);
  return measureSync(() => raw.sign(SAMPLE_SIGNING_INPUT), options).nsPerOp / 1e9;
}

/**
 * Seconds per raw signature and per raw verification of `alg`, measured interleaved now: the floor
 * of a federated token request (one check of the platform token's signature, one signature).
 */
export function rawSignVerifySeconds(alg = 'ES256', options = {}) {
  const pair = keyPairFor(alg);
  const raw = rawCrypto(alg, pair.privateKey, pair.publicKey);
  const signature = raw.sign(SAMPLE_SIGNING_INPUT);
  const [s, v] = measureSyncInterleaved([() => raw.sign(SAMPLE_SIGNING_INPUT), () => raw.verify(SAMPLE_SIGNING_INPUT, signature)], options);
  return { signS: s.nsPerOp / 1e9, verifyS: v.nsPerOp / 1e9 };
}

/** Seconds per raw verification of a signature of `alg` (a DPoP proof's check), measured now. */
export async function rawVerifySeconds(alg = 'ES256', options = {}) {
  const pair = keyPairFor(alg);
  const raw = rawCrypto(alg, pair.privateKey, pair.publicKey);
  const signature = raw.sign(SAMPLE_SIGNING_INPUT);
  return measureSync(() => raw.verify(SAMPLE_SIGNING_INPUT, signature), options).nsPerOp / 1e9;
}
