// The load generator's token check on JWTs minted by jose: what passes, and the reason for each
// token that must not.

import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { exportJWK, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { TokenChecker, type Jwk, type JwkSet } from '../../src/loadtest/token-check.js';

const ISSUER = 'https://as.example.com';
const CLIENT = 'cl_1';
const AUD = 'https://api.example.com';

interface Key {
  kid: string;
  alg: string;
  privateKey: KeyObject;
  jwk: Jwk;
}

async function key(kid: string, alg: 'ES256' | 'EdDSA' | 'PS256' | 'RS256'): Promise<Key> {
  const pair = alg === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
    : alg === 'EdDSA' ? generateKeyPairSync('ed25519')
    : generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { kid, alg, privateKey: pair.privateKey, jwk: { ...(await exportJWK(pair.publicKey)), kid, alg, use: 'sig' } };
}

interface Overrides {
  header?: Record<string, unknown>;
  claims?: Record<string, unknown>;
  signWith?: Key;
}

async function mint(k: Key, o: Overrides = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ iss: ISSUER, sub: CLIENT, aud: AUD, client_id: CLIENT, iat: now, exp: now + 300, jti: 'j', ...o.claims })
    .setProtectedHeader({ alg: (o.signWith ?? k).alg, typ: 'at+jwt', kid: k.kid, ...o.header })
    .sign((o.signWith ?? k).privateKey);
}

const expectations = { issuer: ISSUER, clientId: CLIENT, audience: AUD };

describe('TokenChecker', () => {
  it.each(['ES256', 'EdDSA', 'PS256', 'RS256'] as const)('accepts a valid %s token', async (alg) => {
    const k = await key(`k-${alg}`, alg);
    const checker = new TokenChecker({ keys: [k.jwk] }, async () => ({ keys: [k.jwk] }));
    expect(await checker.check(await mint(k), expectations)).toBeUndefined();
    // Without an expected audience, any non-empty aud will do.
    expect(await checker.check(await mint(k, { claims: { aud: ['x', 'y'] } }), { issuer: ISSUER, clientId: CLIENT })).toBeUndefined();
  });

  it('names the first reason a token fails', async () => {
    const k = await key('k1', 'ES256');
    const other = await key('k1', 'ES256'); // same kid, another key
    const checker = new TokenChecker({ keys: [k.jwk] }, async () => ({ keys: [k.jwk] }));
    const cases: Array<[Promise<string> | string, string]> = [
      ['not a jwt', 'malformed'],
      ['a.b', 'malformed'],
      [mint(k, { header: { typ: 'JWT' } }), 'typ'],
      [mint(k, { signWith: other }), 'signature'],
      [mint(k, { claims: { iss: 'https://evil.example.com' } }), 'iss'],
      [mint(k, { claims: { aud: 'https://other.example.com' } }), 'aud'],
      [mint(k, { claims: { aud: [] } }), 'aud'],
      [mint(k, { claims: { exp: Math.floor(Date.now() / 1000) - 1 } }), 'exp'],
      [mint(k, { claims: { client_id: 'cl_2' } }), 'client_id'],
      [mint(k, { claims: { sub: '' } }), 'sub'],
    ];
    for (const [token, reason] of cases) expect(await checker.check(await token, expectations), reason).toBe(reason);
    // The header's alg must be the key's: an RS256 token under an ES256 kid is refused before any signature check.
    const rsa = await key('k1', 'RS256');
    expect(await checker.check(await mint(k, { signWith: rsa }), expectations)).toBe('alg');
    expect(await checker.check(42, expectations)).toBe('malformed');
  });

  it('fetches the JWKS again for an unknown kid, at most once per interval', async () => {
    const k1 = await key('k1', 'ES256');
    const k2 = await key('k2', 'ES256');
    let fetches = 0;
    let published: JwkSet = { keys: [k1.jwk] };
    let clock = Date.now();
    const checker = new TokenChecker({ keys: [k1.jwk] }, async () => {
      fetches++;
      return published;
    }, () => clock);
    const t2 = await mint(k2);
    clock += 1000;
    expect(await checker.check(t2, expectations)).toBe('unknown_kid'); // too soon after the first fetch
    expect(fetches).toBe(0);
    clock += 5000;
    published = { keys: [k1.jwk, k2.jwk] };
    expect(await checker.check(t2, expectations)).toBeUndefined(); // published now
    expect(fetches).toBe(1);
  });
});
