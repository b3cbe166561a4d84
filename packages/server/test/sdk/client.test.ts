// m2m-auth/client against the real server on sockets: discovery, caching, single flight, refresh
// ahead of expiry, retry rules, client authentication methods and the authenticating fetch.

import { generateKeyPairSync } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify } from 'jose';
import {
  createAuthFetch,
  createTokenProvider,
  DiscoveryError,
  SdkOptionsError,
  TokenRequestError,
  type TokenProvider,
  type TokenProviderOptions,
} from '@m2m-auth/sdk/client';
import {
  decodePart,
  ORDERS,
  registerClient,
  startAuthServer,
  startStub,
  type AuthServer,
  type StubServer,
} from './helpers.js';

const TOKEN_PATH = '/oauth2/token';
const FAST_RETRY = { attempts: 3, baseDelayMs: 5, maxDelayMs: 20 };

async function expectRejection<E>(promise: Promise<unknown>, type: new (...args: never[]) => E): Promise<E> {
  const err = await promise.then(
    () => expect.fail('expected a rejection'),
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(type);
  return err as E;
}

describe('discovery and a first token', () => {
  let s: AuthServer;
  let billing: { clientId: string; clientSecret: string };
  beforeAll(async () => {
    s = await startAuthServer();
    billing = await registerClient(s);
  });
  afterAll(() => s.close());

  it('finds the token endpoint through RFC 8414 and returns a token the issuer signed', async () => {
    const provider = createTokenProvider({ issuer: s.issuer, ...billing });
    const token = await provider.getToken();
    const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(`${s.issuer}/oauth2/jwks`)), {
      issuer: s.issuer,
      audience: ORDERS,
      typ: 'at+jwt',
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload.client_id).toBe(billing.clientId);
    expect(payload.scope).toBe('orders:read orders:write');
    expect(s.count('/.well-known/oauth-authorization-server')).toBe(1);
    expect(s.count(TOKEN_PATH)).toBe(1);
    // client_secret_basic by default, nothing secret in the body.
    const seen = s.seen.find((r) => r.url === TOKEN_PATH)!;
    expect(seen.headers.authorization).toMatch(/^Basic /);
    expect(seen.form?.get('grant_type')).toBe('client_credentials');
    expect(seen.form?.has('client_secret')).toBe(false);
  });

  it('sends scope, resource and audience parameters', async () => {
    const provider = createTokenProvider({ issuer: s.issuer, ...billing, scope: ['orders:read'], resource: ORDERS });
    const claims = decodePart(await provider.getToken(), 1);
    expect(claims.scope).toBe('orders:read');
    expect(claims.aud).toBe(ORDERS);
    const form = s.seen.filter((r) => r.url === TOKEN_PATH).at(-1)!.form!;
    expect(form.get('scope')).toBe('orders:read');
    expect(form.getAll('resource')).toEqual([ORDERS]);
  });

  it('authenticates with client_secret_post when asked to', async () => {
    const poster = await registerClient(s, { token_endpoint_auth_method: 'client_secret_post' });
    const provider = createTokenProvider({ issuer: s.issuer, ...poster, tokenEndpointAuthMethod: 'client_secret_post' });
    expect(decodePart(await provider.getToken(), 1).client_id).toBe(poster.clientId);
    const seen = s.seen.filter((r) => r.url === TOKEN_PATH).at(-1)!;
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.form?.get('client_id')).toBe(poster.clientId);
    expect(seen.form?.get('client_secret')).toBe(poster.clientSecret);
  });

  it('refuses a metadata document that names another issuer (RFC 8414 §3.3) and asks for no token', async () => {
    const before = s.count(TOKEN_PATH);
    const other = s.issuer.replace('127.0.0.1', 'localhost');
    const provider = createTokenProvider({ issuer: other, ...billing, retry: FAST_RETRY });
    const err = await expectRejection(provider.getToken(), DiscoveryError);
    expect(err.code).toBe('issuer_mismatch');
    expect(s.count(TOKEN_PATH)).toBe(before);
  });

  it('reports the RFC 6749 §5.2 error of a 4xx without retrying it', async () => {
    const before = s.count(TOKEN_PATH);
    const wrong = createTokenProvider({ issuer: s.issuer, clientId: billing.clientId, clientSecret: 'm2m_cs_wrong', retry: FAST_RETRY });
    const err = await expectRejection(wrong.getToken(), TokenRequestError);
    expect(err.status).toBe(401);
    expect(err.error).toBe('invalid_client');
    expect(typeof err.error_description).toBe('string');
    expect(s.count(TOKEN_PATH)).toBe(before + 1);

    const scoped = createTokenProvider({ issuer: s.issuer, ...billing, scope: 'admin:everything', retry: FAST_RETRY });
    const scopeErr = await expectRejection(scoped.getToken(), TokenRequestError);
    expect([scopeErr.status, scopeErr.error]).toEqual([400, 'invalid_scope']);
    expect(s.count(TOKEN_PATH)).toBe(before + 2);
  });
});

describe('caching and single flight', () => {
  let s: AuthServer;
  let billing: { clientId: string; clientSecret: string };
  beforeAll(async () => {
    s = await startAuthServer();
    billing = await registerClient(s);
  });
  afterAll(() => s.close());

  it('serves 20 concurrent callers with one token request, and later callers from the cache', async () => {
    const provider = createTokenProvider({ issuer: s.issuer, ...billing });
    const tokens = await Promise.all(Array.from({ length: 20 }, () => provider.getToken()));
    expect(new Set(tokens).size).toBe(1);
    expect(s.count(TOKEN_PATH)).toBe(1);
    expect(s.count('/.well-known/oauth-authorization-server')).toBe(1);
    for (let i = 0; i < 5; i++) expect(await provider.getToken()).toBe(tokens[0]);
    expect(s.count(TOKEN_PATH)).toBe(1);
  });

  it('invalidate() drops the cache; invalidate(token) only when that token is still cached', async () => {
    const provider = createTokenProvider({ issuer: s.issuer, ...billing });
    const first = await provider.getToken();
    const before = s.count(TOKEN_PATH);
    provider.invalidate('some other token');
    expect(await provider.getToken()).toBe(first);
    provider.invalidate(first);
    const second = await provider.getToken();
    expect(second).not.toBe(first);
    provider.invalidate();
    const third = await provider.getToken();
    expect(third).not.toBe(second);
    expect(s.count(TOKEN_PATH)).toBe(before + 2);
  });
});

describe('refresh ahead of expiry (one clock for the server and the provider)', () => {
  let clock = Date.now();
  const now = (): number => clock;
  let s: AuthServer;
  let billing: { clientId: string; clientSecret: string };
  beforeAll(async () => {
    s = await startAuthServer({ now, behindProxy: true });
    billing = await registerClient(s, { access_token_ttl: 100 });
  });
  afterAll(() => s.close());
  afterEach(() => {
    s.proxy!.behave = () => 'forward';
  });

  it('keeps the token until ~80 % of its lifetime, then gets a new one', async () => {
    const provider = createTokenProvider({ issuer: s.issuer, ...billing, now });
    const first = await provider.getToken();
    expect(decodePart(first, 1).exp).toBe(Math.floor(clock / 1000) + 100);
    const requests = s.count(TOKEN_PATH);
    clock += 71_000; // below the jittered refresh point (72 s to 80 s)
    expect(await provider.getToken()).toBe(first);
    expect(s.count(TOKEN_PATH)).toBe(requests);
    clock += 10_000; // 81 s: past it, still 19 s before exp
    const second = await provider.getToken();
    expect(second).not.toBe(first);
    expect(s.count(TOKEN_PATH)).toBe(requests + 1);
    expect(decodePart(second, 1).exp).toBe(Math.floor(clock / 1000) + 100);
  });

  it('while the server fails, keeps using a token that is still valid, and fails once it is not', async () => {
    const provider = createTokenProvider({ issuer: s.issuer, ...billing, now, retry: FAST_RETRY });
    const token = await provider.getToken();
    const proxied = s.proxy!.seen.length;
    s.proxy!.behave = ({ url }) => (url === TOKEN_PATH ? { status: 503, body: { error: 'temporarily_unavailable' } } : 'forward');
    clock += 85_000; // due for refresh; usable until 90 s (exp minus a tenth of the lifetime)
    expect(await provider.getToken()).toBe(token);
    expect(s.proxy!.seen.length - proxied).toBe(3); // one refresh, three attempts
    expect(await provider.getToken()).toBe(token); // the failure is not retried at once
    expect(s.proxy!.seen.length - proxied).toBe(3);
    clock += 6_000; // 91 s: no longer handed out
    const err = await expectRejection(provider.getToken(), TokenRequestError);
    expect(err.status).toBe(503);
    expect(err.error).toBe('temporarily_unavailable');
    s.proxy!.behave = () => 'forward';
    expect(await provider.getToken()).not.toBe(token);
  });
});

describe('retries', () => {
  let s: AuthServer;
  let billing: { clientId: string; clientSecret: string };
  beforeAll(async () => {
    s = await startAuthServer({ behindProxy: true });
    billing = await registerClient(s);
  });
  afterAll(() => s.close());
  afterEach(() => {
    s.proxy!.behave = () => 'forward';
  });

  function tokenAttempts(from: number): number {
    return s.proxy!.seen.slice(from).filter((r) => r.url === TOKEN_PATH).length;
  }

  it('retries 5xx answers with backoff and succeeds: 503, 503, then the server', async () => {
    const from = s.proxy!.seen.length;
    const direct = s.count(TOKEN_PATH);
    let failures = 0;
    s.proxy!.behave = ({ url }) => (url === TOKEN_PATH && failures++ < 2 ? { status: 503 } : 'forward');
    const provider = createTokenProvider({ issuer: s.issuer, ...billing, retry: FAST_RETRY });
    expect(decodePart(await provider.getToken(), 1).client_id).toBe(billing.clientId);
    expect(tokenAttempts(from)).toBe(3);
    expect(s.count(TOKEN_PATH)).toBe(direct + 1);
  });

  it('retries a dropped connection', async () => {
    const from = s.proxy!.seen.length;
    let drops = 0;
    s.proxy!.behave = ({ url }) => (url === TOKEN_PATH && drops++ < 1 ? 'reset' : 'forward');
    const provider = createTokenProvider({ issuer: s.issuer, ...billing, retry: FAST_RETRY });
    expect(typeof (await provider.getToken())).toBe('string');
    expect(tokenAttempts(from)).toBe(2);
  });

  it('gives up after the configured attempts with the last status', async () => {
    const from = s.proxy!.seen.length;
    s.proxy!.behave = ({ url }) => (url === TOKEN_PATH ? { status: 502, body: '<html>bad gateway</html>' } : 'forward');
    const provider = createTokenProvider({ issuer: s.issuer, ...billing, retry: { ...FAST_RETRY, attempts: 4 } });
    const err = await expectRejection(provider.getToken(), TokenRequestError);
    expect([err.status, err.error, err.transient]).toEqual([502, 'server_error', true]);
    expect(tokenAttempts(from)).toBe(4);
  });

  it('reports network_error when no answer ever comes', async () => {
    const from = s.proxy!.seen.length;
    s.proxy!.behave = ({ url }) => (url === TOKEN_PATH ? 'reset' : 'forward');
    const provider = createTokenProvider({ issuer: s.issuer, ...billing, retry: FAST_RETRY });
    const err = await expectRejection(provider.getToken(), TokenRequestError);
    expect([err.error, err.status]).toEqual(['network_error', undefined]);
    expect(tokenAttempts(from)).toBe(3);
  });

  it('never retries a 400', async () => {
    const from = s.proxy!.seen.length;
    s.proxy!.behave = ({ url }) =>
      url === TOKEN_PATH ? { status: 400, body: { error: 'invalid_client', error_description: 'Client authentication failed.' } } : 'forward';
    const provider = createTokenProvider({ issuer: s.issuer, ...billing, retry: FAST_RETRY });
    const err = await expectRejection(provider.getToken(), TokenRequestError);
    expect([err.status, err.error, err.error_description, err.transient]).toEqual([400, 'invalid_client', 'Client authentication failed.', false]);
    expect(tokenAttempts(from)).toBe(1);
  });

  it('waits as long as a 429 asks (Retry-After) before trying again, then succeeds', async () => {
    const from = s.proxy!.seen.length;
    let limited = 0;
    s.proxy!.behave = ({ url }) =>
      url === TOKEN_PATH && limited++ < 1
        ? { status: 429, body: { error: 'temporarily_unavailable', error_description: 'Too many requests.' }, headers: { 'retry-after': '1' } }
        : 'forward';
    const provider = createTokenProvider({ issuer: s.issuer, ...billing, retry: { attempts: 3, baseDelayMs: 5, maxDelayMs: 2000 } });
    const started = performance.now();
    expect(decodePart(await provider.getToken(), 1).client_id).toBe(billing.clientId);
    expect(performance.now() - started).toBeGreaterThanOrEqual(990);
    expect(tokenAttempts(from)).toBe(2);
  });

  it('does not wait out a Retry-After longer than maxDelayMs: the error says how long to wait', async () => {
    const from = s.proxy!.seen.length;
    s.proxy!.behave = ({ url }) =>
      url === TOKEN_PATH ? { status: 429, body: { error: 'temporarily_unavailable' }, headers: { 'retry-after': '60' } } : 'forward';
    const provider = createTokenProvider({ issuer: s.issuer, ...billing, retry: FAST_RETRY });
    const err = await expectRejection(provider.getToken(), TokenRequestError);
    expect([err.status, err.error, err.transient, err.retryAfterMs]).toEqual([429, 'temporarily_unavailable', true, 60_000]);
    expect(tokenAttempts(from)).toBe(1);
  });

  it('retries a 429 without Retry-After with its usual backoff', async () => {
    const from = s.proxy!.seen.length;
    let limited = 0;
    s.proxy!.behave = ({ url }) => (url === TOKEN_PATH && limited++ < 2 ? { status: 429, body: { error: 'temporarily_unavailable' } } : 'forward');
    const provider = createTokenProvider({ issuer: s.issuer, ...billing, retry: FAST_RETRY });
    expect(decodePart(await provider.getToken(), 1).client_id).toBe(billing.clientId);
    expect(tokenAttempts(from)).toBe(3);
  });

  it('rides out the server\'s own per-client rate limit', async () => {
    // rate_limit 1/s with the default burst of 2 s: the third request in a row gets 429 Retry-After.
    const limited = await registerClient(s, { rate_limit: 1 });
    const retry = { attempts: 3, baseDelayMs: 5, maxDelayMs: 3000 };
    const providers = [0, 1, 2].map(() => createTokenProvider({ issuer: s.issuer, ...limited, retry }));
    const from = s.proxy!.seen.length;
    const direct = s.count(TOKEN_PATH);
    const tokens = await Promise.all(providers.map((p) => p.getToken()));
    expect(tokens.map((t) => decodePart(t, 1).client_id)).toEqual([limited.clientId, limited.clientId, limited.clientId]);
    // Three requests, one of them refused with 429 and sent again after its Retry-After.
    expect(tokenAttempts(from)).toBe(4);
    expect(s.count(TOKEN_PATH) - direct).toBe(4);
  });

  it('retries discovery on a 5xx too', async () => {
    const from = s.proxy!.seen.length;
    let failures = 0;
    s.proxy!.behave = ({ url }) => (url.startsWith('/.well-known/') && failures++ < 1 ? { status: 500 } : 'forward');
    const provider = createTokenProvider({ issuer: s.issuer, ...billing, retry: FAST_RETRY });
    expect(typeof (await provider.getToken())).toBe('string');
    expect(s.proxy!.seen.slice(from).filter((r) => r.url.startsWith('/.well-known/')).length).toBe(2);
  });

  it('shares one failing request among concurrent callers', async () => {
    const from = s.proxy!.seen.length;
    s.proxy!.behave = ({ url }) => (url === TOKEN_PATH ? { status: 503 } : 'forward');
    const provider = createTokenProvider({ issuer: s.issuer, ...billing, retry: FAST_RETRY });
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => provider.getToken()));
    expect(results.every((r) => r.status === 'rejected' && r.reason instanceof TokenRequestError)).toBe(true);
    expect(tokenAttempts(from)).toBe(3);
  });
});

describe('client_secret_basic encoding (RFC 6749 §2.3.1)', () => {
  let stub: StubServer;
  beforeAll(async () => {
    stub = await startStub((req, base) =>
      req.url.startsWith('/.well-known/')
        ? { status: 200, body: { issuer: base, token_endpoint: `${base}/token` } }
        : { status: 200, body: { access_token: 'opaque', token_type: 'bearer', expires_in: 60 } },
    );
  });
  afterAll(() => stub.close());

  it('form-urlencodes the client_id and secret before base64', async () => {
    const provider = createTokenProvider({ issuer: stub.url, clientId: 'svc:1 a', clientSecret: 'p+q/r%s ü*~' });
    expect(await provider.getToken()).toBe('opaque');
    const header = stub.seen.find((r) => r.url === '/token')!.headers.authorization as string;
    expect(Buffer.from(header.slice('Basic '.length), 'base64').toString('utf8')).toBe('svc%3A1+a:p%2Bq%2Fr%25s+%C3%BC*%7E');
  });
});

describe('private_key_jwt (RFC 7523)', () => {
  let s: AuthServer;
  beforeAll(async () => {
    s = await startAuthServer();
  });
  afterAll(() => s.close());

  async function expectWorks(options: TokenProviderOptions, clientId: string): Promise<void> {
    const provider = createTokenProvider(options);
    const first = await provider.getToken();
    expect(decodePart(first, 1).client_id).toBe(clientId);
    provider.invalidate();
    await provider.getToken();
    const assertions = s.seen
      .filter((r) => r.url === TOKEN_PATH && r.form?.get('client_id') === clientId)
      .map((r) => {
        expect(r.form?.get('client_assertion_type')).toBe('urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
        expect(r.headers.authorization).toBeUndefined();
        return decodePart(r.form!.get('client_assertion')!, 1);
      });
    expect(assertions).toHaveLength(2);
    for (const a of assertions) {
      expect(a.iss).toBe(clientId);
      expect(a.sub).toBe(clientId);
      expect(a.aud).toBe(s.issuer);
      expect((a.exp as number) - (a.iat as number)).toBe(60);
      expect(Math.abs((a.iat as number) - Date.now() / 1000)).toBeLessThan(5);
    }
    expect(assertions[0]!.jti).not.toBe(assertions[1]!.jti);
  }

  it('signs with an ES256 KeyObject', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...publicKey.export({ format: 'jwk' }), kid: 'k-es256', alg: 'ES256', use: 'sig' };
    const { clientId } = await registerClient(s, { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } });
    await expectWorks({ issuer: s.issuer, clientId, privateKey, alg: 'ES256', kid: 'k-es256' }, clientId);
  });

  it('signs with an EdDSA CryptoKey', async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA');
    expect(privateKey.constructor.name).toBe('CryptoKey');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k-ed', use: 'sig' };
    const { clientId } = await registerClient(s, { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } });
    await expectWorks({ issuer: s.issuer, clientId, privateKey, alg: 'EdDSA', kid: 'k-ed' }, clientId);
  });

  it('signs with a private RS256 JWK, taking its kid', async () => {
    const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
    const publicJwk = { ...(await exportJWK(publicKey)), kid: 'k-rsa', alg: 'RS256', use: 'sig' };
    const privateJwk = { ...(await exportJWK(privateKey)), kid: 'k-rsa' };
    const { clientId } = await registerClient(s, { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicJwk] } });
    await expectWorks({ issuer: s.issuer, clientId, privateKey: privateJwk, alg: 'RS256' }, clientId);
    const sent = s.seen.filter((r) => r.form?.get('client_id') === clientId).at(-1)!;
    expect(decodePart(sent.form!.get('client_assertion')!, 0)).toEqual({ alg: 'RS256', kid: 'k-rsa' });
  });

  it('gets invalid_client for a key the client did not register, once', async () => {
    const registered = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = { ...registered.publicKey.export({ format: 'jwk' }), kid: 'k1', alg: 'ES256' };
    const { clientId } = await registerClient(s, { token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } });
    const before = s.count(TOKEN_PATH);
    const provider = createTokenProvider({ issuer: s.issuer, clientId, privateKey: other.privateKey, alg: 'ES256', kid: 'k1', retry: FAST_RETRY });
    const err = await expectRejection(provider.getToken(), TokenRequestError);
    expect([err.status, err.error]).toEqual([401, 'invalid_client']);
    expect(s.count(TOKEN_PATH)).toBe(before + 1);
  });
});

describe('options', () => {
  const base = { issuer: 'https://as.example.com', clientId: 'c' };
  it.each<[string, unknown]>([
    ['no credentials', base],
    ['both a secret and a key', { ...base, clientSecret: 's', privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, alg: 'ES256' }],
    ['an HMAC assertion algorithm', { ...base, privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, alg: 'HS256' }],
    ['a public key as privateKey', { ...base, privateKey: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey, alg: 'ES256' }],
    ['an issuer with a query', { ...base, issuer: 'https://as.example.com?x=1', clientSecret: 's' }],
    ['a refreshRatio above 1', { ...base, clientSecret: 's', refreshRatio: 1.5 }],
    ['zero attempts', { ...base, clientSecret: 's', retry: { attempts: 0 } }],
  ])('rejects %s synchronously', (_name, options) => {
    expect(() => createTokenProvider(options as TokenProviderOptions)).toThrow(SdkOptionsError);
  });
});

describe('createAuthFetch', () => {
  let s: AuthServer;
  let billing: { clientId: string; clientSecret: string };
  let api: StubServer;
  /** Tokens the API has stopped accepting. */
  const refused = new Set<string>();
  let refuseAll = false;
  beforeAll(async () => {
    s = await startAuthServer();
    billing = await registerClient(s);
    api = await startStub((req) => {
      const token = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
      if (refuseAll || refused.has(token)) return { status: 401, headers: { 'www-authenticate': 'Bearer error="invalid_token"' } };
      return { status: 200, body: { echo: req.body, method: req.method } };
    });
  });
  afterAll(async () => {
    await api.close();
    await s.close();
  });

  it('sends the cached token as a Bearer header', async () => {
    const provider = createTokenProvider({ issuer: s.issuer, ...billing });
    const authFetch = createAuthFetch(provider);
    const from = api.seen.length;
    const res = await authFetch(`${api.url}/orders`, { headers: { 'x-trace': '1' } });
    expect(res.status).toBe(200);
    await res.json();
    await authFetch(`${api.url}/orders`).then((r) => r.text());
    const seen = api.seen.slice(from);
    expect(seen.map((r) => r.headers.authorization)).toEqual([`Bearer ${await provider.getToken()}`, `Bearer ${await provider.getToken()}`]);
    expect(seen[0]!.headers['x-trace']).toBe('1');
  });

  it('on a 401 gets a new token and sends the request (and its body) once more', async () => {
    const provider: TokenProvider = createTokenProvider({ issuer: s.issuer, ...billing });
    const old = await provider.getToken();
    refused.add(old);
    const tokenRequests = s.count(TOKEN_PATH);
    const from = api.seen.length;
    const res = await createAuthFetch(provider)(`${api.url}/orders`, { method: 'POST', body: '{"amount":12}' });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ echo: '{"amount":12}', method: 'POST' });
    const seen = api.seen.slice(from);
    expect(seen).toHaveLength(2);
    expect(seen[0]!.headers.authorization).toBe(`Bearer ${old}`);
    expect(seen[1]!.headers.authorization).not.toBe(`Bearer ${old}`);
    expect(seen[1]!.body).toBe('{"amount":12}');
    expect(s.count(TOKEN_PATH)).toBe(tokenRequests + 1);
  });

  it('retries only once, and not for other statuses', async () => {
    const provider = createTokenProvider({ issuer: s.issuer, ...billing });
    refuseAll = true;
    try {
      const from = api.seen.length;
      const res = await createAuthFetch(provider)(`${api.url}/orders`);
      expect(res.status).toBe(401);
      expect(api.seen.length - from).toBe(2);
    } finally {
      refuseAll = false;
    }
    const from = api.seen.length;
    const res = await createAuthFetch(provider)(`${api.url}/missing`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    expect(api.seen.length - from).toBe(1);
  });
});
