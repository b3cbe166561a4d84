// DPoP proofs (RFC 9449 §4.2) for the benchmark's DPoP stage: each token request needs one of its
// own (a fresh jti), and wrk cannot sign, so they are made here, right before each load, one a line
// in a file the wrk script reads. Signed with raw node:crypto ES256; iat is now, good for the
// server's window of a minute either way.

import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';

/** A client's DPoP key: ES256 on P-256, with the protected header of every proof it signs. */
export function dpopKey() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const { kty, crv, x, y } = publicKey.export({ format: 'jwk' });
  const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'dpop+jwt', jwk: { kty, crv, x, y } })).toString('base64url');
  return { header, signOptions: { key: privateKey, dsaEncoding: 'ieee-p1363' } };
}

/** One proof for POST `htu`. */
export function dpopProof(key, htu, iat = Math.floor(Date.now() / 1000)) {
  const payload = Buffer.from(JSON.stringify({ htm: 'POST', htu, iat, jti: randomBytes(16).toString('base64url') })).toString('base64url');
  const input = `${key.header}.${payload}`;
  return `${input}.${sign('sha256', Buffer.from(input), key.signOptions).toString('base64url')}`;
}

/** Writes `count` proofs to `file`, one a line; returns the length of one. */
export function writeDpopProofs(file, key, htu, count) {
  const iat = Math.floor(Date.now() / 1000);
  const lines = new Array(count);
  for (let i = 0; i < count; i++) lines[i] = dpopProof(key, htu, iat);
  writeFileSync(file, lines.join('\n') + '\n');
  return lines[0].length;
}
