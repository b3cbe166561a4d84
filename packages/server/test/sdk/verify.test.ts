// m2m-auth/verify against the real server on sockets: RFC 9068 §4 checks one by one, JWKS caching
// and refetching (key rotation, unknown kids), and RFC 7662 introspection for revoked tokens.

import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { SignJWT } from 'jose';
import {
  createVerifier,
  SdkOptionsError,
  TokenVerificationError,
  type TokenVerificationErrorCode,
  type Verifier,
  type VerifierOptions,
} from '@m2m-auth/sdk/verify';
import { createTokenProvider } from '@m2m-auth/sdk/client';
import {
  ADMIN_TOKEN,
  b64json,
  decodePart,
  ORDERS,
  rawToken,
  registerClient,
  startAuthServer,
  startFakeIssuer,
  type AuthServer,
  type FakeIssuer,
} from './helpers.js';

const JWKS_PATH = '/oauth2/jwks';
const INTROSPECT_PATH = '/oauth2/introspect';

async function rejection(verifier: Verifier, token: string): Promise<TokenVerificationError> {
  const err = await verifier.verify(token).then(
    () => expect.fail('the token was accepted'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TokenVerificationError);
  return err as TokenVerificationError;
}

async function expectCode(verifier: Verifier, token: string, code: TokenVerificationErrorCode): Promise<void> {
  expect((await rejection(verifier, token)).code).toBe(code);
}

const nowS = (): number => Math.floor(Date.now() / 1000);

describe('local verification', () => {
  let s: AuthServer;
  let billing: { clientId: string; clientSecret: string };
  let verifier: Verifier;
  /** Claims as the server would issue them; the tests change one at a time and sign with the server's key. */
  const good = (): Record<string, unknown> => ({
    iss: s.issuer,
    sub: billing.clientId,
    client_id: billing.clientId,
    aud: ORDERS,
    scope: 'orders:read',
    iat: nowS(),
    exp: nowS() + 300,
    jti: randomUUID(),
  });
  const signed = (claims: Record<string, unknown>): string => s.server.keys.sign(claims).token;

  beforeAll(async () => {
    s = await startAuthServer();
    billing = await registerClient(s, { audience: [ORDERS, 'https://billing.example.com'], default_audience: [ORDERS] });
    verifier = createVerifier({ issuer: s.issuer, audience: ORDERS });
  });
  afterAll(() => s.close());

  it('returns typed claims of a token the server issued', async () => {
    const token = await rawToken(s, billing);
    const claims = await verifier.verify(token);
    const payload = decodePart(token, 1);
    expect(claims).toEqual({
      iss: s.issuer,
      sub: billing.clientId,
      client_id: billing.clientId,
      aud: [ORDERS],
      scope: ['orders:read', 'orders:write'],
      exp: payload.exp,
      iat: payload.iat,
      jti: payload.jti,
      raw: payload,
    });
    expect(Object.isFrozen(claims.raw)).toBe(true);
  });

  it('accepts a token with several audiences when one is ours, and a token without scope', async () => {
    const token = await rawToken(s, billing, { resource: [ORDERS, 'https://billing.example.com'] });
    expect(decodePart(token, 1).aud).toEqual([ORDERS, 'https://billing.example.com']);
    expect((await verifier.verify(token)).aud).toEqual([ORDERS, 'https://billing.example.com']);
    const noScope = good();
    delete noScope.scope;
    expect((await verifier.verify(signed(noScope))).scope).toEqual([]);
  });

  it('tolerates clockTolerance (5 s) of expiry, no more', async () => {
    await expect(verifier.verify(signed({ ...good(), exp: nowS() - 2 }))).resolves.toBeDefined();
    await expectCode(verifier, signed({ ...good(), exp: nowS() - 30 }), 'expired');
    const strict = createVerifier({ issuer: s.issuer, audience: ORDERS, clockTolerance: 0 });
    await expectCode(strict, signed({ ...good(), exp: nowS() - 2 }), 'expired');
  });

  it.each<[string, (c: Record<string, unknown>) => Record<string, unknown>, TokenVerificationErrorCode]>([
    ['an expired token', (c) => ({ ...c, iat: nowS() - 7200, exp: nowS() - 3600 }), 'expired'],
    ['a token for another audience', (c) => ({ ...c, aud: 'https://billing.example.com' }), 'invalid_audience'],
    ['a token for several other audiences', (c) => ({ ...c, aud: ['https://a.example.com', 'https://b.example.com'] }), 'invalid_audience'],
    ['a token from another issuer', (c) => ({ ...c, iss: 'https://evil.example.com' }), 'invalid_issuer'],
    ['a token whose nbf is ahead', (c) => ({ ...c, nbf: nowS() + 120 }), 'not_yet_valid'],
    ['a token issued in the future', (c) => ({ ...c, iat: nowS() + 120 }), 'not_yet_valid'],
    ['a token without sub', ({ sub: _sub, ...c }) => c, 'missing_claim'],
    ['a token without client_id', ({ client_id: _id, ...c }) => c, 'missing_claim'],
    ['a token without iat', ({ iat: _iat, ...c }) => c, 'missing_claim'],
    ['a token without jti', ({ jti: _jti, ...c }) => c, 'missing_claim'],
    ['a token without exp', ({ exp: _exp, ...c }) => c, 'missing_claim'],
    ['a token without aud', ({ aud: _aud, ...c }) => c, 'missing_claim'],
    ['a numeric client_id', (c) => ({ ...c, client_id: 42 }), 'invalid_claim'],
    ['a scope array', (c) => ({ ...c, scope: ['orders:read'] }), 'invalid_claim'],
    ['a string exp', (c) => ({ ...c, exp: String(nowS() + 300) }), 'invalid_claim'],
  ])('rejects %s', async (_name, change, code) => {
    await expectCode(verifier, signed(change(good())), code);
  });

  it('rejects a tampered payload (invalid_signature)', async () => {
    const token = await rawToken(s, billing, { scope: 'orders:read' });
    await verifier.verify(token);
    const [header, , signature] = token.split('.');
    const payload = { ...decodePart(token, 1), scope: 'orders:read orders:write admin' };
    await expectCode(verifier, `${header}.${b64json(payload)}.${signature}`, 'invalid_signature');
  });

  it('rejects another typ before looking at the signature', async () => {
    const [, payload, signature] = (await rawToken(s, billing)).split('.');
    const header = decodePart(await rawToken(s, billing), 0);
    for (const typ of ['JWT', 'jwt', 'at+jwe', undefined]) {
      await expectCode(verifier, `${b64json({ ...header, typ })}.${payload}.${signature}`, 'invalid_typ');
    }
  });

  it('rejects alg none without fetching anything', async () => {
    const fresh = createVerifier({ issuer: s.issuer, audience: ORDERS });
    const before = s.count(JWKS_PATH);
    const { kid } = decodePart(await rawToken(s, billing), 0);
    for (const alg of ['none', 'None', 'NONE']) {
      await expectCode(fresh, `${b64json({ alg, typ: 'at+jwt', kid })}.${b64json(good())}.`, 'alg_not_allowed');
    }
    expect(s.count(JWKS_PATH)).toBe(before);
  });

  it('rejects HS256 signed with the bytes of the public key (algorithm confusion)', async () => {
    const res = await fetch(`${s.issuer}${JWKS_PATH}`);
    const { keys } = (await res.json()) as { keys: Record<string, string>[] };
    const jwk = keys[0]!;
    const input = `${b64json({ alg: 'HS256', typ: 'at+jwt', kid: jwk.kid })}.${b64json(good())}`;
    for (const secret of [JSON.stringify(jwk), Buffer.from(jwk.x ?? jwk.n ?? '', 'base64url')]) {
      const token = `${input}.${createHmac('sha256', secret).update(input).digest('base64url')}`;
      await expectCode(verifier, token, 'alg_not_allowed');
    }
  });

  it('rejects an algorithm left out of the allow-list', async () => {
    const rsaOnly = createVerifier({ issuer: s.issuer, audience: ORDERS, algorithms: ['RS256'] });
    await expectCode(rsaOnly, await rawToken(s, billing), 'alg_not_allowed');
  });

  it('rejects garbage as malformed', async () => {
    const header = b64json({ alg: 'ES256', typ: 'at+jwt' });
    for (const token of ['', 'abc', 'a.b.c', 'a.b.c.d.e', header, `${header}.${b64json(good())}`, `${header}.!!.x`, `${header}.e30.${'A'.repeat(20_000)}`]) {
      await expectCode(verifier, token, 'malformed');
    }
  });

  it('rejects a token signed by a key the issuer never published (unknown_kid)', async () => {
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const token = await new SignJWT(good()).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'not-published' }).sign(privateKey);
    await expectCode(verifier, token, 'unknown_kid');
  });

  it.each(['HS256', 'none', 'HS512'])('refuses %s in the options', (alg) => {
    expect(() => createVerifier({ issuer: s.issuer, audience: ORDERS, algorithms: [alg] } as unknown as VerifierOptions)).toThrow(SdkOptionsError);
  });

  it('refuses options without an audience', () => {
    expect(() => createVerifier({ issuer: s.issuer, audience: [] })).toThrow(SdkOptionsError);
  });
});

describe('typ with a valid signature (an issuer whose keys the test holds)', () => {
  let fake: FakeIssuer;
  let verifier: Verifier;
  const claims = (): Record<string, unknown> => ({
    iss: fake.issuer, sub: 'c1', client_id: 'c1', aud: ORDERS, iat: nowS(), exp: nowS() + 60, jti: randomUUID(),
  });
  beforeAll(async () => {
    fake = await startFakeIssuer();
    verifier = createVerifier({ issuer: fake.issuer, audience: ORDERS });
  });
  afterAll(() => fake.close());

  it('accepts at+jwt in any case and application/at+jwt', async () => {
    for (const typ of ['at+jwt', 'AT+JWT', 'application/at+jwt']) {
      expect((await verifier.verify(await fake.sign({ typ }, claims()))).client_id).toBe('c1');
    }
  });

  it('rejects JWT, a missing typ and an ID-token-like typ', async () => {
    for (const typ of ['JWT', 'application/jwt', undefined, 'id_token+jwt']) {
      await expectCode(verifier, await fake.sign({ typ }, claims()), 'invalid_typ');
    }
  });
});

describe('JWKS cache, rotation and unknown kids', () => {
  let s: AuthServer;
  let billing: { clientId: string; clientSecret: string };
  beforeAll(async () => {
    s = await startAuthServer();
    billing = await registerClient(s);
  });
  afterAll(() => s.close());

  it('fetches discovery and the JWKS once for many tokens', async () => {
    const verifier = createVerifier({ issuer: s.issuer, audience: ORDERS });
    const before = s.count(JWKS_PATH);
    const tokens = await Promise.all(Array.from({ length: 5 }, () => rawToken(s, billing)));
    await Promise.all(tokens.map((t) => verifier.verify(t)));
    for (const t of tokens) await verifier.verify(t);
    expect(s.count(JWKS_PATH) - before).toBe(1);
  });

  it('sees a rotated key through its unknown kid, and still accepts tokens of the retired key', async () => {
    const verifier = createVerifier({ issuer: s.issuer, audience: ORDERS, jwks: { cooldownMs: 0 } });
    const old = await rawToken(s, billing);
    await verifier.verify(old);
    const before = s.count(JWKS_PATH);
    await s.server.keys.rotate({ activateAt: Date.now() });
    const rotated = await rawToken(s, billing);
    expect(decodePart(rotated, 0).kid).not.toBe(decodePart(old, 0).kid);
    expect((await verifier.verify(rotated)).client_id).toBe(billing.clientId);
    expect(s.count(JWKS_PATH) - before).toBe(1);
    await verifier.verify(old);
    expect(s.count(JWKS_PATH) - before).toBe(1);
  });

  it('refetches at most once per cooldown however many unknown kids arrive', async () => {
    // A frozen clock (Date only: sockets and timers run as usual), moved past the cooldown by hand:
    // with the real one, a slow machine spends the 300 ms cooldown on the first flood already.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    try {
      const verifier = createVerifier({ issuer: s.issuer, audience: ORDERS, jwks: { cooldownMs: 300 } });
      await verifier.verify(await rawToken(s, billing));
      const before = s.count(JWKS_PATH);
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const forged = (): Promise<string> =>
        new SignJWT({ iss: s.issuer, sub: 'x', client_id: 'x', aud: ORDERS, iat: nowS(), exp: nowS() + 60, jti: randomUUID() })
          .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: randomUUID() })
          .sign(privateKey);
      // Within the cooldown of the first fetch: no fetch at all.
      const flood = await Promise.all(Array.from({ length: 30 }, forged));
      for (const code of await Promise.all(flood.map(async (t) => (await rejection(verifier, t)).code))) expect(code).toBe('unknown_kid');
      expect(s.count(JWKS_PATH) - before).toBe(0);
      // After it: one fetch for the whole flood.
      vi.setSystemTime(Date.now() + 350);
      const second = await Promise.all(Array.from({ length: 30 }, forged));
      await Promise.all(second.map((t) => rejection(verifier, t)));
      expect(s.count(JWKS_PATH) - before).toBe(1);
    } finally {
      vi.useRealTimers();
    }
  });

  it('says jwks_unavailable when the issuer cannot be reached, and refuses a foreign metadata document', async () => {
    const down = createVerifier({ issuer: 'http://127.0.0.1:9', audience: ORDERS });
    const err = await rejection(down, await rawToken(s, billing));
    expect([err.code, err.unavailable]).toEqual(['jwks_unavailable', true]);

    const mismatch = createVerifier({ issuer: s.issuer.replace('127.0.0.1', 'localhost'), audience: ORDERS });
    const err2 = await rejection(mismatch, await rawToken(s, billing));
    expect(err2.code).toBe('jwks_unavailable');
    expect((err2.cause as { code?: string }).code).toBe('issuer_mismatch');
  });
});

describe('a revoked signing key (frozen clock)', () => {
  let s: AuthServer;
  let billing: { clientId: string; clientSecret: string };
  beforeAll(async () => {
    s = await startAuthServer();
    billing = await registerClient(s);
  });
  afterAll(() => s.close());
  afterEach(() => {
    vi.useRealTimers();
  });

  /** Revokes the key that signed `token` through the admin API, with a replacement; its kid. */
  async function revokeSigner(token: string): Promise<{ leaked: string; replacement: string }> {
    const leaked = decodePart(token, 0).kid as string;
    const res = await fetch(`${s.adminUrl}/admin/keys/${encodeURIComponent(leaked)}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ rotate: true }),
    });
    expect(res.status).toBe(200);
    return { leaked, replacement: ((await res.json()) as { replacement: { kid: string } }).replacement.kid };
  }

  it('verifies its tokens until the cached JWKS reaches its age (10 minutes by default), then refuses them', async () => {
    // Only Date is frozen: the verifier's cache age and jose's are read from it; sockets and timers run.
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.now();
    const verifier = createVerifier({ issuer: s.issuer, audience: ORDERS });
    const leakedToken = await rawToken(s, billing);
    await verifier.verify(leakedToken);
    const { leaked } = await revokeSigner(leakedToken);
    const published = (await (await fetch(`${s.directUrl}${JWKS_PATH}`)).json()) as { keys: Array<{ kid: string }> };
    expect(published.keys.map((k) => k.kid)).not.toContain(leaked);
    const fetched = s.count(JWKS_PATH);

    // The JWKS the verifier holds still has the key: it is not asked for again before its age.
    vi.setSystemTime(t0 + 600_000 - 1);
    expect((await verifier.verify(leakedToken)).client_id).toBe(billing.clientId);
    expect(s.count(JWKS_PATH)).toBe(fetched);
    vi.setSystemTime(t0 + 600_000);
    await expectCode(verifier, leakedToken, 'unknown_kid');
    expect(s.count(JWKS_PATH)).toBe(fetched + 1);
  });

  it('refuses them as soon as a token of the replacement makes it refetch the JWKS (an unknown kid, after the cooldown)', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.now();
    const verifier = createVerifier({ issuer: s.issuer, audience: ORDERS, jwks: { cacheMaxAgeMs: 3_600_000 } });
    const leakedToken = await rawToken(s, billing);
    await verifier.verify(leakedToken);
    const fetched = s.count(JWKS_PATH);
    const { replacement } = await revokeSigner(leakedToken);
    const fresh = await rawToken(s, billing);
    expect(decodePart(fresh, 0).kid).toBe(replacement);

    // Within the cooldown (10 s by default) of the last fetch an unknown kid fetches nothing.
    vi.setSystemTime(t0 + 9_999);
    await expectCode(verifier, fresh, 'unknown_kid');
    expect(s.count(JWKS_PATH)).toBe(fetched);
    expect((await verifier.verify(leakedToken)).client_id).toBe(billing.clientId);
    vi.setSystemTime(t0 + 10_000);
    expect((await verifier.verify(fresh)).client_id).toBe(billing.clientId);
    expect(s.count(JWKS_PATH)).toBe(fetched + 1);
    await expectCode(verifier, leakedToken, 'unknown_kid');
    expect(s.count(JWKS_PATH)).toBe(fetched + 1);
  });

  it('jwks.cacheMaxAgeMs shortens how long: 60 s', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.now();
    const verifier = createVerifier({ issuer: s.issuer, audience: ORDERS, jwks: { cacheMaxAgeMs: 60_000 } });
    const leakedToken = await rawToken(s, billing);
    await verifier.verify(leakedToken);
    await revokeSigner(leakedToken);
    vi.setSystemTime(t0 + 59_999);
    await verifier.verify(leakedToken);
    vi.setSystemTime(t0 + 60_000);
    await expectCode(verifier, leakedToken, 'unknown_kid');
  });
});

describe('introspection mode (RFC 7662)', () => {
  let s: AuthServer;
  let billing: { clientId: string; clientSecret: string };
  let api: { clientId: string; clientSecret: string };
  beforeAll(async () => {
    s = await startAuthServer();
    billing = await registerClient(s);
    api = await registerClient(s, { client_name: 'orders api', scope: '', audience: [], grant_types: [], resource_uris: [ORDERS] });
  });
  afterAll(() => s.close());

  async function revoke(token: string): Promise<void> {
    const res = await fetch(`${s.issuer}/oauth2/revoke`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        authorization: 'Basic ' + Buffer.from(`${billing.clientId}:${billing.clientSecret}`).toString('base64'),
      },
      body: new URLSearchParams({ token }).toString(),
    });
    expect(res.status).toBe(200);
  }

  it('rejects a revoked token that local verification still accepts', async () => {
    const provider = createTokenProvider({ issuer: s.issuer, ...billing });
    const token = await provider.getToken();
    const local = createVerifier({ issuer: s.issuer, audience: ORDERS });
    const strict = createVerifier({ issuer: s.issuer, audience: ORDERS, introspection: { ...api, cacheTtlMs: 0 } });
    expect((await strict.verify(token)).client_id).toBe(billing.clientId);
    await revoke(token);
    expect((await local.verify(token)).client_id).toBe(billing.clientId);
    const err = await rejection(strict, token);
    expect([err.code, err.unavailable]).toEqual(['inactive', false]);
  });

  it('reuses an answer for cacheTtlMs, so a revocation takes effect within it', async () => {
    // A frozen clock (Date only), moved past the TTL by hand: with the real one, a slow machine
    // lets the 400 ms pass before the "still cached" check.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() });
    try {
      const token = await rawToken(s, billing);
      const verifier = createVerifier({ issuer: s.issuer, audience: ORDERS, introspection: { ...api, cacheTtlMs: 400 } });
      const before = s.count(INTROSPECT_PATH);
      await Promise.all(Array.from({ length: 10 }, () => verifier.verify(token)));
      await verifier.verify(token);
      expect(s.count(INTROSPECT_PATH) - before).toBe(1);
      await revoke(token);
      await verifier.verify(token); // the cached answer still says active
      expect(s.count(INTROSPECT_PATH) - before).toBe(1);
      vi.setSystemTime(Date.now() + 450);
      await expectCode(verifier, token, 'inactive');
      expect(s.count(INTROSPECT_PATH) - before).toBe(2);
    } finally {
      vi.useRealTimers();
    }
  });

  it('does not introspect a token that fails local checks', async () => {
    const verifier = createVerifier({ issuer: s.issuer, audience: 'https://elsewhere.example.com', introspection: api });
    const before = s.count(INTROSPECT_PATH);
    await expectCode(verifier, await rawToken(s, billing), 'invalid_audience');
    expect(s.count(INTROSPECT_PATH)).toBe(before);
  });

  it('fails closed with introspection_unavailable when the API cannot authenticate', async () => {
    const verifier = createVerifier({ issuer: s.issuer, audience: ORDERS, introspection: { clientId: api.clientId, clientSecret: 'm2m_cs_wrong' } });
    const err = await rejection(verifier, await rawToken(s, billing));
    expect([err.code, err.unavailable]).toEqual(['introspection_unavailable', true]);
  });
});
