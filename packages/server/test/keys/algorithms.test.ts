import { generateKeyPairSync } from 'node:crypto';
import { calculateJwkThumbprint, CompactSign, compactVerify, generateKeyPair as joseKeyPair, importJWK } from 'jose';
import { KeyObject } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  assertKeyFitsAlgorithm,
  createRawSigner,
  createJwsVerifier,
  createRawVerifier,
  generateSigningKeyPair,
  jwkThumbprint,
} from '../../src/keys/algorithms.js';
import { createJwtSigner, createVerificationKey, verifyJwt } from '../../src/keys/jwt.js';
import { ConfigError } from '../../src/ground/errors.js';
import { SIGNING_ALGORITHMS } from '../../src/ground/names.js';

const PUBLIC_MEMBERS = {
  ES256: ['alg', 'crv', 'kid', 'kty', 'use', 'x', 'y'],
  EdDSA: ['alg', 'crv', 'kid', 'kty', 'use', 'x'],
  PS256: ['alg', 'e', 'kid', 'kty', 'n', 'use'],
  RS256: ['alg', 'e', 'kid', 'kty', 'n', 'use'],
};

describe.each(SIGNING_ALGORITHMS)('%s', (alg) => {
  it('generates a key whose kid is the RFC 7638 thumbprint (as jose computes it) and whose JWK is public only', async () => {
    const pair = await generateSigningKeyPair(alg);
    expect(Object.keys(pair.publicJwk).sort()).toEqual(PUBLIC_MEMBERS[alg]);
    expect(pair.publicJwk).toMatchObject({ alg, use: 'sig', kid: pair.kid });
    expect(pair.kid).toBe(await calculateJwkThumbprint(pair.publicJwk as Parameters<typeof calculateJwkThumbprint>[0], 'sha256'));
    expect(jwkThumbprint(pair.publicJwk)).toBe(pair.kid);
  });

  it('signs JWS that jose verifies, and verifies its own signatures only', async () => {
    const pair = await generateSigningKeyPair(alg);
    const token = createJwtSigner(alg, pair.kid, pair.privateKey)({ sub: 'x', n: 1 });
    const joseKey = await importJWK(pair.publicJwk as Parameters<typeof importJWK>[0], alg);
    const verified = await compactVerify(token, joseKey, { algorithms: [alg] });
    expect(verified.protectedHeader).toEqual({ alg, typ: 'at+jwt', kid: pair.kid });
    expect(JSON.parse(new TextDecoder().decode(verified.payload))).toEqual({ sub: 'x', n: 1 });

    const sign = createRawSigner(alg, pair.privateKey);
    const check = createRawVerifier(alg, pair.publicKey);
    const sig = sign('payload');
    expect(check('payload', sig)).toBe(true);
    expect(check('payloaD', sig)).toBe(false);
    expect(check('payload', Buffer.alloc(sig.length))).toBe(false);
    expect(check('payload', Buffer.alloc(3))).toBe(false);
    const other = await generateSigningKeyPair(alg);
    expect(createRawVerifier(alg, other.publicKey)('payload', sig)).toBe(false);
  });
});

it('uses the RFC-mandated signature encodings and paddings', async () => {
  const es = await generateSigningKeyPair('ES256');
  // RFC 7518 §3.4: R || S, 64 bytes (DER would be 70-72).
  expect(createRawSigner('ES256', es.privateKey)('x')).toHaveLength(64);
  const ps = await generateSigningKeyPair('PS256');
  // PSS is randomised, PKCS#1 v1.5 deterministic: tells the two paddings apart.
  const psSign = createRawSigner('PS256', ps.privateKey);
  expect(psSign('x').equals(psSign('x'))).toBe(false);
  const rsSign = createRawSigner('RS256', ps.privateKey);
  expect(rsSign('x').equals(rsSign('x'))).toBe(true);
  // A PS256 signature does not pass as RS256 and vice versa.
  expect(createRawVerifier('RS256', ps.publicKey)('x', psSign('x'))).toBe(false);
  expect(createRawVerifier('PS256', ps.publicKey)('x', rsSign('x'))).toBe(false);
});

it('rejects keys that do not fit the algorithm', () => {
  const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const ed = generateKeyPairSync('ed25519');
  expect(() => assertKeyFitsAlgorithm('ES256', p384.publicKey)).toThrow(ConfigError);
  expect(() => assertKeyFitsAlgorithm('RS256', rsa1024.publicKey)).toThrow(ConfigError);
  expect(() => assertKeyFitsAlgorithm('PS256', ed.publicKey)).toThrow(ConfigError);
  expect(() => assertKeyFitsAlgorithm('EdDSA', p384.privateKey)).toThrow(ConfigError);
  expect(() => assertKeyFitsAlgorithm('EdDSA', ed.privateKey)).not.toThrow();
});

it('verifyJwt names why it rejects', async () => {
  const pair = await generateSigningKeyPair('ES256');
  const key = createVerificationKey('ES256', pair.kid, pair.publicKey);
  const keyFor = (kid: string) => (kid === pair.kid ? key : undefined);
  const token = createJwtSigner('ES256', pair.kid, pair.privateKey)({ sub: 'a' });
  const [h, p, s] = token.split('.') as [string, string, string];
  const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

  expect(verifyJwt(token, keyFor)).toEqual({ ok: true, header: { alg: 'ES256', typ: 'at+jwt', kid: pair.kid }, payload: { sub: 'a' } });
  expect(verifyJwt(`${h}.${p}`, keyFor)).toEqual({ ok: false, reason: 'malformed' });
  expect(verifyJwt(`${h}.${p}.${s}.${s}`, keyFor)).toEqual({ ok: false, reason: 'malformed' });
  expect(verifyJwt(`${h}.${p}.`, keyFor)).toEqual({ ok: false, reason: 'malformed' });
  expect(verifyJwt(`${h}.${p}.${s}=`, keyFor)).toEqual({ ok: false, reason: 'malformed' });
  expect(verifyJwt(`${h}.${p}.${s}`.padEnd(20_000, 'A'), keyFor)).toEqual({ ok: false, reason: 'malformed' });
  expect(verifyJwt(42, keyFor)).toEqual({ ok: false, reason: 'malformed' });
  expect(verifyJwt(`${b64([1])}.${p}.${s}`, keyFor)).toEqual({ ok: false, reason: 'header' });
  expect(verifyJwt(`${Buffer.from('{"alg":').toString('base64url')}.${p}.${s}`, keyFor)).toEqual({ ok: false, reason: 'header' });
  expect(verifyJwt(`${b64({ alg: 'ES256', kid: pair.kid })}.${p}.${s}`, keyFor)).toEqual({ ok: false, reason: 'typ' });
  expect(verifyJwt(`${b64({ alg: 'ES256', typ: 'JWT', kid: pair.kid })}.${p}.${s}`, keyFor)).toEqual({ ok: false, reason: 'typ' });
  expect(verifyJwt(`${b64({ alg: 'ES256', typ: 'at+jwt', kid: pair.kid, crit: ['exp'], exp: 1 })}.${p}.${s}`, keyFor))
    .toEqual({ ok: false, reason: 'crit' });
  expect(verifyJwt(`${b64({ alg: 'ES256', typ: 'at+jwt', kid: 'nope' })}.${p}.${s}`, keyFor)).toEqual({ ok: false, reason: 'unknown_kid' });
  expect(verifyJwt(`${b64({ alg: 'ES384', typ: 'at+jwt', kid: pair.kid })}.${p}.${s}`, keyFor)).toEqual({ ok: false, reason: 'alg' });
  expect(verifyJwt(`${h}.${b64({ sub: 'b' })}.${s}`, keyFor)).toEqual({ ok: false, reason: 'signature' });

  // A signed payload that is not a JSON object is still rejected.
  const signer = createRawSigner('ES256', pair.privateKey);
  const arrayPayload = `${h}.${b64([1, 2])}`;
  expect(verifyJwt(`${arrayPayload}.${signer(arrayPayload).toString('base64url')}`, keyFor)).toEqual({ ok: false, reason: 'payload' });
});

describe('createJwsVerifier (platform tokens)', () => {
  const algs = ['ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512'];
  it.each(algs)('%s: verifies what jose signed, refuses a changed input or signature', async (alg) => {
    const { privateKey, publicKey } = await joseKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {});
    const jws = await new CompactSign(new TextEncoder().encode('{"sub":"x"}')).setProtectedHeader({ alg }).sign(privateKey);
    const [h, p, s] = jws.split('.') as [string, string, string];
    const verifier = createJwsVerifier(alg, KeyObject.from(publicKey))!;
    const sig = Buffer.from(s, 'base64url');
    expect(verifier(`${h}.${p}`, sig)).toBe(true);
    expect(verifier(`${h}.${p}x`, sig)).toBe(false);
    const bad = Buffer.from(sig);
    bad[5]! ^= 1;
    expect(verifier(`${h}.${p}`, bad)).toBe(false);
    expect(verifier(`${h}.${p}`, sig.subarray(1))).toBe(false);
  });

  it('gives none for an unknown alg, a private key or an RSA key under 2048 bits', () => {
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    expect(createJwsVerifier('HS256', ec.publicKey)).toBeUndefined();
    expect(createJwsVerifier('none', ec.publicKey)).toBeUndefined();
    expect(createJwsVerifier('toString', ec.publicKey)).toBeUndefined();
    expect(createJwsVerifier('ES256', ec.privateKey)).toBeUndefined();
    const small = generateKeyPairSync('rsa', { modulusLength: 1024 });
    expect(createJwsVerifier('RS256', small.publicKey)).toBeUndefined();
    expect(createJwsVerifier('PS256', small.publicKey)).toBeUndefined();
    expect(createJwsVerifier('PS256', ec.publicKey)).toBeUndefined();
  });
});
