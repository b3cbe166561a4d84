// federated_jwt through the client-authentication chain, with real signed platform tokens from
// local issuers over real HTTPS (a test CA made here): a Kubernetes-shaped service-account issuer
// with OIDC discovery, a GitHub-Actions-shaped OIDC issuer, and a SPIFFE bundle endpoint. The
// issuers rotate keys, stop, slow down, redirect and bloat; every hostile token is refused with
// the one invalid_client answer, its reason only in the detail.

import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SignJWT, type JWTPayload } from 'jose';
import { ClientAuthentication } from '../../src/oauth/client-auth/authenticate.js';
import { OAuthError } from '../../src/ground/errors.js';
import { CLIENT_ASSERTION_TYPE } from '../../src/ground/names.js';
import type { ClientRecord } from '../../src/ground/records.js';
import { CLIENT_ASSERTION_TYPE_SPIFFE, DEFAULT_MAX_TOKEN_LIFETIME, type TrustedIssuerRecord } from '../../src/ground/trusts.js';
import { KEYS_STALE_BOUND_MS, RETRY_AFTER_FAILURE_MS, TrustKeys, UNKNOWN_KID_INTERVAL_MS } from '../../src/federation/trust-keys.js';
import { SingleUseJtis } from '../../src/federation/single-use.js';
import { VerifiedTokens } from '../../src/federation/verified-tokens.js';
import { EventBus, type EventMap } from '../../src/observability/events.js';
import { createTestCa, opensslMissing, type TestCa } from '../tls/test-ca.js';
import { newKey, startIssuer, type LocalIssuer } from './local-issuer.js';
import { testClock } from '../helpers/server.js';
import { memoryReplay } from '../helpers/replay.js';

const OUR_ISSUER = 'https://auth.example.com';
const TOKEN_ENDPOINT = `${OUR_ISSUER}/oauth2/token`;
const K8S_SUB = 'system:serviceaccount:payments:billing';
const SPIFFE_SUB = 'spiffe://prod.example.org/ns/payments/sa/billing';
const GH_SUB = 'repo:acme/billing:environment:production';

const skip = opensslMissing();
if (skip) console.warn(`federated_jwt tests skipped: ${skip}`);

function trustOf(name: string, over: Partial<TrustedIssuerRecord>): TrustedIssuerRecord {
  return {
    name, kind: 'kubernetes', issuer: null, trustDomain: null, jwksUri: null, jwks: null, caBundle: null,
    allowedPrivateHosts: ['127.0.0.1'], audiences: [], maxTokenLifetime: DEFAULT_MAX_TOKEN_LIFETIME, singleUseJti: null,
    createdAt: 0, updatedAt: 0, ...over,
  };
}

function clientOf(clientId: string, trust: string, subject: string, claims: Record<string, unknown> = {}): ClientRecord {
  return {
    clientId, clientName: clientId, scope: ['a'], defaultScope: null, audience: [], defaultAudience: null,
    tokenEndpointAuthMethod: 'federated_jwt', federation: { trust, subject, claims },
    grantTypes: ['client_credentials'], resourceUris: [], jwks: null, accessTokenTtl: null, rateLimit: null, tokenReuse: false,
    dpopBoundAccessTokens: false, fapi2: false, disabled: false, claims: {}, tlsClientAuth: null, tlsClientCertificateBoundAccessTokens: false, secrets: [], tokensRevokedAt: null, createdAt: 0, updatedAt: 0,
  };
}

describe.skipIf(skip)('federated_jwt with local issuers over HTTPS', () => {
  let ca: TestCa;
  let k8s: LocalIssuer;
  let gh: LocalIssuer;
  let spiffe: LocalIssuer;
  const trusts = new Map<string, TrustedIssuerRecord>();
  const clients = new Map<string, ClientRecord>();
  const clock = testClock();
  let events: EventBus;
  let seen: Array<{ name: string; payload: unknown }>;
  let keys: TrustKeys;
  let replay: ReturnType<typeof memoryReplay>;
  let auth: ClientAuthentication;

  beforeAll(async () => {
    ca = createTestCa();
    const cert = ca.issue('issuer', '0a17');
    [k8s, gh, spiffe] = await Promise.all([startIssuer(cert), startIssuer(cert), startIssuer(cert, { spiffe: true })]);
    trusts.set('prod-cluster', trustOf('prod-cluster', { kind: 'kubernetes', issuer: k8s.url, caBundle: ca.ca }));
    trusts.set('github', trustOf('github', { kind: 'oidc', issuer: gh.url, caBundle: ca.ca, audiences: ['https://github.com/acme'] }));
    trusts.set('spire', trustOf('spire', { kind: 'spiffe', trustDomain: 'prod.example.org', jwksUri: `${spiffe.url}/bundle`, caBundle: ca.ca }));
    clients.set('cl_billing', clientOf('cl_billing', 'prod-cluster', K8S_SUB));
    clients.set('cl_deploy', clientOf('cl_deploy', 'github', GH_SUB, { repository: 'acme/billing', environment: 'production' }));
    clients.set('cl_svid', clientOf('cl_svid', 'spire', SPIFFE_SUB));
  });

  afterAll(async () => {
    await Promise.all([k8s?.close(), gh?.close(), spiffe?.close()]);
    ca?.cleanup();
  });

  beforeEach(() => {
    clock.set(Date.now());
    events = new EventBus();
    seen = [];
    events.onAny((name, payload) => seen.push({ name, payload }));
    keys = new TrustKeys({ events, now: clock.now, timeoutMs: 1000, maxBytes: 64 * 1024 });
    replay = memoryReplay();
    auth = new ClientAuthentication({
      clients: { get: async (id) => clients.get(id) },
      replay,
      issuer: () => OUR_ISSUER,
      tokenEndpoint: () => TOKEN_ENDPOINT,
      now: clock.now,
      federation: { trusts: { get: async (name) => trusts.get(name) }, keys, jtis: new SingleUseJtis({ replay, events }), verified: new VerifiedTokens() },
    });
    for (const i of [k8s, gh, spiffe]) {
      i.delayMs = 0;
      i.redirectTo = undefined;
      i.huge = false;
      i.cacheControl = undefined;
      i.hits.clear();
    }
  });

  const nowS = (): number => Math.floor(clock.now() / 1000);
  const k8sClaims = (over: JWTPayload = {}): JWTPayload => ({
    iss: k8s.url, sub: K8S_SUB, aud: [OUR_ISSUER], iat: nowS(), nbf: nowS(), exp: nowS() + 3600,
    'kubernetes.io': { namespace: 'payments', pod: { name: 'billing-7d9f', uid: 'u1' }, serviceaccount: { name: 'billing', uid: 'u2' } },
    ...over,
  });
  // Each GitHub-shaped token gets its own jti, by count: a chance collision would read as a replay.
  let jtiCount = 0;
  const ghClaims = (over: JWTPayload = {}): JWTPayload => ({
    iss: gh.url, sub: GH_SUB, aud: 'https://github.com/acme', iat: nowS(), exp: nowS() + 300, jti: `j-${++jtiCount}`,
    repository: 'acme/billing', environment: 'production', ref: 'refs/heads/main', ...over,
  });
  const svidClaims = (over: JWTPayload = {}): JWTPayload => ({ sub: SPIFFE_SUB, aud: OUR_ISSUER, exp: nowS() + 300, iat: nowS(), ...over });

  function request(clientId: string | undefined, assertion: string, type = CLIENT_ASSERTION_TYPE) {
    const params = new Map<string, string[]>([['client_assertion_type', [type]], ['client_assertion', [assertion]]]);
    if (clientId !== undefined) params.set('client_id', [clientId]);
    return auth.authenticate({ contentType: 'application/x-www-form-urlencoded', body: undefined, authorization: undefined, ip: '127.0.0.1', requestId: 'r' }, params);
  }

  async function refused(clientId: string | undefined, assertion: string, type = CLIENT_ASSERTION_TYPE): Promise<string> {
    const err = await request(clientId, assertion, type).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(OAuthError);
    const e = err as OAuthError;
    expect([e.error, e.status, e.description]).toEqual(['invalid_client', 401, 'Client authentication failed.']);
    // The platform token never reaches the reason.
    expect(e.detail ?? '').not.toContain(assertion.split('.')[1]!);
    return e.detail ?? '';
  }

  describe('a Kubernetes service-account token (OIDC discovery, then the JWKS)', () => {
    it('authenticates the client whose federated_subject it carries, and again (tokens are reused by design)', async () => {
      const token = await k8s.sign(k8sClaims());
      const first = await request('cl_billing', token);
      expect([first.client.clientId, first.method, first.secret]).toEqual(['cl_billing', 'federated_jwt', undefined]);
      expect((await request('cl_billing', token)).client.clientId).toBe('cl_billing');
      expect([k8s.hits.get('/.well-known/openid-configuration'), k8s.hits.get('/openid/v1/jwks')]).toEqual([1, 1]);
      expect(seen).toContainEqual({ name: 'federation.keys_fetched', payload: { trust: 'prod-cluster', result: 'ok', keys: 1 } });
    });

    it('follows a key rotation at the issuer: an unknown kid fetches the keys again, at most once per interval', async () => {
      expect((await request('cl_billing', await k8s.sign(k8sClaims()))).client.clientId).toBe('cl_billing');
      await k8s.rotate('k2');
      // Right after a fetch the new kid waits for the interval; then it fetches.
      await refused('cl_billing', await k8s.sign(k8sClaims()));
      expect(k8s.hits.get('/openid/v1/jwks')).toBe(1);
      clock.advance(UNKNOWN_KID_INTERVAL_MS);
      expect((await request('cl_billing', await k8s.sign(k8sClaims()))).client.clientId).toBe('cl_billing');
      expect(k8s.hits.get('/openid/v1/jwks')).toBe(2);
      // A kid nobody published: refused, and within the interval no new fetch.
      const stranger = await k8s.sign(k8sClaims(), { kid: 'nobody' });
      expect(await refused('cl_billing', stranger)).toMatch(/signature not verified by trust prod-cluster \(ERR_JWKS_NO_MATCHING_KEY\)/);
      expect(k8s.hits.get('/openid/v1/jwks')).toBe(2);
      clock.advance(UNKNOWN_KID_INTERVAL_MS);
      await refused('cl_billing', stranger);
      expect(k8s.hits.get('/openid/v1/jwks')).toBe(3);
      k8s.keys.splice(1);
    });

    it('refuses every hostile token with invalid_client, the reason in the detail only', async () => {
      const t = (over: JWTPayload) => k8s.sign(k8sClaims(over));
      expect(await refused('cl_billing', await t({ iss: 'https://evil.example.com' }))).toBe('platform token iss is not the issuer of trust prod-cluster');
      expect(await refused('cl_billing', await t({ aud: 'https://other.example.com' }))).toBe('platform token aud does not name this server');
      expect(await refused('cl_billing', await t({ aud: undefined }))).toBe('platform token aud does not name this server');
      expect(await refused('cl_billing', await t({ exp: nowS() - 1, iat: nowS() - 3600 }))).toBe('platform token expired');
      expect(await refused('cl_billing', await t({ exp: undefined }))).toBe('platform token has no exp');
      expect(await refused('cl_billing', await t({ exp: nowS() + DEFAULT_MAX_TOKEN_LIFETIME + 10 }))).toMatch(/lifetime \d+ s is over the trust's maximum of 86400 s/);
      expect(await refused('cl_billing', await t({ iat: nowS() + 600, exp: nowS() + 3600 }))).toBe('platform token iat is in the future');
      expect(await refused('cl_billing', await t({ sub: 'system:serviceaccount:payments:default' }))).toBe("platform token sub is not the client's federated subject");
      expect(await refused('cl_billing', await t({ sub: 'system:serviceaccount:payments:billing-2' }))).toBe("platform token sub is not the client's federated subject");
    });

    it('refuses alg none and HS256 signed with the issuer\'s public key', async () => {
      const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const none = `${b64({ alg: 'none', kid: 'k1' })}.${b64(k8sClaims())}.`;
      expect(await refused('cl_billing', none)).toMatch(/alg none is not an accepted asymmetric algorithm/);
      // The classic confusion: the public key's bytes used as an HMAC secret.
      const publicBytes = new TextEncoder().encode(JSON.stringify(k8s.keys[0]!.jwk));
      const hs = await new SignJWT(k8sClaims()).setProtectedHeader({ alg: 'HS256', kid: 'k1' }).sign(publicBytes);
      expect(await refused('cl_billing', hs)).toMatch(/alg HS256 is not an accepted asymmetric algorithm/);
    });

    it('refuses a token whose signature or payload was altered, whether node:crypto or jose checks it', async () => {
      const token = await k8s.sign(k8sClaims());
      const [h, p, sig] = token.split('.') as [string, string, string];
      const flipped = Buffer.from(sig, 'base64url');
      flipped[10]! ^= 1;
      expect(await refused('cl_billing', `${h}.${p}.${flipped.toString('base64url')}`)).toMatch(/signature not verified by trust prod-cluster \(ERR_JWS_SIGNATURE_VERIFICATION_FAILED\)/);
      const other = Buffer.from(JSON.stringify(k8sClaims({ sub: 'system:serviceaccount:payments:other' }))).toString('base64url');
      expect(await refused('cl_billing', `${h}.${other}.${sig}`)).toMatch(/ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);
      expect(await refused('cl_billing', `${h}.${p}.${sig.slice(0, -4)}`)).toMatch(/ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);
      // A header with crit goes through jose's compactVerify whole: b64 true is understood, a changed signature is not accepted.
      const withCrit = await k8s.sign(k8sClaims(), { crit: ['b64'], b64: true });
      expect((await request('cl_billing', withCrit)).client.clientId).toBe('cl_billing');
      const [ch, cp, csig] = withCrit.split('.') as [string, string, string];
      const cflipped = Buffer.from(csig, 'base64url');
      cflipped[10]! ^= 1;
      expect(await refused('cl_billing', `${ch}.${cp}.${cflipped.toString('base64url')}`)).toMatch(/ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);
    });

    it('refuses an altered or forged token whose header it already knows (the short way for a known header)', async () => {
      const token = await k8s.sign(k8sClaims());
      expect((await request('cl_billing', token)).client.clientId).toBe('cl_billing');
      const [h, p, sig] = token.split('.') as [string, string, string];
      const flipped = Buffer.from(sig, 'base64url');
      flipped[10]! ^= 1;
      expect(await refused('cl_billing', `${h}.${p}.${flipped.toString('base64url')}`)).toMatch(/signature not verified by trust prod-cluster \(ERR_JWS_SIGNATURE_VERIFICATION_FAILED\)/);
      const other = Buffer.from(JSON.stringify(k8sClaims({ sub: 'system:serviceaccount:payments:other' }))).toString('base64url');
      expect(await refused('cl_billing', `${h}.${other}.${sig}`)).toMatch(/ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);
      // The same header (alg and kid), signed by a key the issuer never published.
      const impostor = await newKey(k8s.keys[0]!.kid);
      const forged = await new SignJWT(k8sClaims()).setProtectedHeader({ alg: 'ES256', kid: impostor.kid }).sign(impostor.privateKey);
      expect(forged.split('.')[0]).toBe(h);
      expect(await refused('cl_billing', forged)).toMatch(/ERR_JWS_SIGNATURE_VERIFICATION_FAILED/);
      // New tokens under the known header still pass, each with its own claims checked.
      expect((await request('cl_billing', await k8s.sign(k8sClaims({ jti: 'another' })))).client.clientId).toBe('cl_billing');
      expect(await refused('cl_billing', await k8s.sign(k8sClaims({ aud: 'https://other.example.com' })))).toBe('platform token aud does not name this server');
    });

    it('refuses a token for another client\'s subject, a token without client_id, and a disabled client', async () => {
      clients.set('cl_other', clientOf('cl_other', 'prod-cluster', 'system:serviceaccount:payments:ledger'));
      expect(await refused('cl_other', await k8s.sign(k8sClaims()))).toBe("platform token sub is not the client's federated subject");
      // Without client_id the token's sub is no client of ours.
      expect(await refused(undefined, await k8s.sign(k8sClaims()))).toBe('unknown client');
      clients.set('cl_off', { ...clientOf('cl_off', 'prod-cluster', K8S_SUB), disabled: true });
      expect(await refused('cl_off', await k8s.sign(k8sClaims()))).toBe('client is disabled');
    });
  });

  describe('a GitHub-Actions-shaped OIDC issuer', () => {
    it('needs the client\'s required claims and takes each jti once', async () => {
      const token = await gh.sign(ghClaims());
      expect((await request('cl_deploy', token)).client.clientId).toBe('cl_deploy');
      expect(await refused('cl_deploy', token)).toBe('platform token jti was already used');
      expect(await refused('cl_deploy', await gh.sign(ghClaims({ environment: 'staging' })))).toBe('platform token claim environment does not hold the required value');
      expect(await refused('cl_deploy', await gh.sign(ghClaims({ repository: undefined })))).toBe('platform token claim repository does not hold the required value');
      // Written behind the request to the shared replay store, under the trust's name.
      await new Promise((resolve) => setImmediate(resolve));
      expect([...replay.keys.keys()].some((k) => k.startsWith('federated_jwt:github:j-'))).toBe(true);
    });

    it('announces a jti another instance used first (found by the write behind the request)', async () => {
      const token = await gh.sign(ghClaims({ jti: 'used-elsewhere' }));
      await replay.consumeOnce('federated_jwt:github:used-elsewhere', clock.now() + 300_000, clock.now());
      expect((await request('cl_deploy', token)).client.clientId).toBe('cl_deploy');
      await expect.poll(() => seen.find((s) => s.name === 'federation.jti_replayed')?.payload).toEqual({ trust: 'github', clientId: 'cl_deploy', jti: 'used-elsewhere' });
    });

    it('accepts a token without jti twice (single use applies when a jti is present), and the trust\'s audience', async () => {
      const token = await gh.sign(ghClaims({ jti: undefined }));
      await request('cl_deploy', token);
      expect((await request('cl_deploy', token)).client.clientId).toBe('cl_deploy');
    });

    it('refuses a token over a shorter maximum lifetime of its trust', async () => {
      trusts.set('github', { ...trusts.get('github')!, maxTokenLifetime: 600 });
      try {
        expect(await refused('cl_deploy', await gh.sign(ghClaims({ exp: nowS() + 900 })))).toBe("platform token lifetime 900 s is over the trust's maximum of 600 s");
      } finally {
        trusts.set('github', { ...trusts.get('github')!, maxTokenLifetime: DEFAULT_MAX_TOKEN_LIFETIME });
      }
    });
  });

  describe('a SPIFFE JWT-SVID from the bundle endpoint', () => {
    it('authenticates with jwt-spiffe and our issuer as audience; jwt-svid keys only', async () => {
      const svid = await spiffe.sign(svidClaims());
      expect((await request('cl_svid', svid, CLIENT_ASSERTION_TYPE_SPIFFE)).client.clientId).toBe('cl_svid');
      // Reused by design: single use is off for spiffe.
      expect((await request('cl_svid', svid, CLIENT_ASSERTION_TYPE_SPIFFE)).client.clientId).toBe('cl_svid');
      expect(seen).toContainEqual({ name: 'federation.keys_fetched', payload: { trust: 'spire', result: 'ok', keys: 1 } });
    });

    it('refuses the token endpoint as audience, another trust domain, jwt-bearer, and a missing client_id', async () => {
      expect(await refused('cl_svid', await spiffe.sign(svidClaims({ aud: TOKEN_ENDPOINT })), CLIENT_ASSERTION_TYPE_SPIFFE)).toBe('platform token aud does not name this server');
      expect(await refused('cl_svid', await spiffe.sign(svidClaims({ sub: 'spiffe://evil.example.org/ns/payments/sa/billing' })), CLIENT_ASSERTION_TYPE_SPIFFE))
        .toBe('platform token sub is not a SPIFFE ID of trust domain prod.example.org');
      expect(await refused('cl_svid', await spiffe.sign(svidClaims()))).toMatch(/client assertion type .* does not fit trust kind spiffe/);
      const err = await request(undefined, await spiffe.sign(svidClaims()), CLIENT_ASSERTION_TYPE_SPIFFE).then(() => undefined, (e: unknown) => e as OAuthError);
      expect([err?.error, err?.status]).toEqual(['invalid_request', 400]);
    });

    it('keeps the fetched bundle\'s x509-svid authorities (their x5c CA certificate) beside its keys', async () => {
      const { X509Certificate } = await import('node:crypto');
      expect(await keys.x509Authorities(trusts.get('spire')!)).toStrictEqual([]);
      keys.forget('spire');
      spiffe.x509Authority = [new X509Certificate(ca.ca).raw.toString('base64')];
      try {
        const authorities = await keys.x509Authorities(trusts.get('spire')!);
        expect(authorities.map((c) => c.fingerprint256)).toStrictEqual([new X509Certificate(ca.ca).fingerprint256]);
        // The JWT-SVID keys are unchanged by it.
        await request('cl_svid', await spiffe.sign(svidClaims()), CLIENT_ASSERTION_TYPE_SPIFFE);
      } finally {
        spiffe.x509Authority = [];
        keys.forget('spire');
      }
    });

    it('refreshes on the bundle\'s spiffe_refresh_hint, bounded below by a minute', async () => {
      spiffe.spiffeRefreshHint = 5;
      try {
        await request('cl_svid', await spiffe.sign(svidClaims()), CLIENT_ASSERTION_TYPE_SPIFFE);
        expect(spiffe.hits.get('/bundle')).toBe(1);
        clock.advance(30_000);
        await request('cl_svid', await spiffe.sign(svidClaims()), CLIENT_ASSERTION_TYPE_SPIFFE);
        expect(spiffe.hits.get('/bundle')).toBe(1);
        clock.advance(31_000);
        await request('cl_svid', await spiffe.sign(svidClaims()), CLIENT_ASSERTION_TYPE_SPIFFE);
        await expect.poll(() => spiffe.hits.get('/bundle')).toBe(2);
      } finally {
        spiffe.spiffeRefreshHint = undefined;
      }
    });
  });

  describe('fetching keys safely', () => {
    const fresh = (over: Partial<TrustedIssuerRecord>) => {
      trusts.set('probe', trustOf('probe', { kind: 'kubernetes', issuer: k8s.url, caBundle: ca.ca, ...over }));
      clients.set('cl_probe', clientOf('cl_probe', 'probe', K8S_SUB));
    };
    const lastFailure = () => (seen.filter((s) => s.name === 'federation.keys_fetched').at(-1)?.payload as EventMap['federation.keys_fetched'] | undefined)?.reason;

    it('answers the requests that waited for a fetch even when the trust is forgotten meanwhile; a changed trust keeps its keys until the new fetch', async () => {
      fresh({});
      k8s.delayMs = 200;
      const pending = request('cl_probe', await k8s.sign(k8sClaims()));
      // The trust changes while its keys are being fetched (as when the change log brings it).
      await new Promise((resolve) => setTimeout(resolve, 50));
      keys.forget('probe');
      expect((await pending).client.clientId).toBe('cl_probe');
      k8s.delayMs = 0;
      // Fetched again for the next request, after which invalidate() (a changed trust) refetches
      // behind the requests: the held keys answer at once.
      expect((await request('cl_probe', await k8s.sign(k8sClaims()))).client.clientId).toBe('cl_probe');
      const discovered = k8s.hits.get('/.well-known/openid-configuration')!;
      keys.invalidate('probe');
      // Not sooner than RETRY_AFTER_FAILURE_MS after the last fetch (an issuer is not asked again
      // on every change).
      clock.advance(RETRY_AFTER_FAILURE_MS);
      // The issuer now answers after 5 s, past the 1 s fetch timeout: a request that waited for the
      // new fetch would be refused; this one is answered with the held keys.
      k8s.delayMs = 5000;
      expect((await request('cl_probe', await k8s.sign(k8sClaims()))).client.clientId).toBe('cl_probe');
      k8s.delayMs = 0;
      // The refetch went to the issuer behind that request.
      await expect.poll(() => k8s.hits.get('/.well-known/openid-configuration'), { timeout: 5000 }).toBe(discovered + 1);
    });

    it('refuses a private address the trust does not name (checked at connect time)', async () => {
      fresh({ allowedPrivateHosts: [] });
      expect(await refused('cl_probe', await k8s.sign(k8sClaims()))).toMatch(/keys of trust probe unavailable/);
      expect(lastFailure()).toBe('127.0.0.1 is a private, loopback or link-local address the trust does not allow');
      // By name too: localhost resolves to loopback, refused by the socket's lookup.
      const byName = k8s.url.replace('127.0.0.1', 'localhost');
      fresh({ allowedPrivateHosts: [], issuer: byName });
      await refused('cl_probe', await k8s.sign(k8sClaims({ iss: byName })));
      expect(lastFailure()).toMatch(/localhost resolves to a private, loopback or link-local address the trust does not allow/);
      expect(k8s.hits.size).toBe(0);
    });

    it('refuses plain http, and a server certificate the trust\'s CA bundle did not sign', async () => {
      fresh({ issuer: k8s.url.replace('https:', 'http:') });
      await refused('cl_probe', await k8s.sign(k8sClaims({ iss: k8s.url.replace('https:', 'http:') })));
      expect(lastFailure()).toBe('not an https URL');
      fresh({ caBundle: null });
      await refused('cl_probe', await k8s.sign(k8sClaims()));
      expect(lastFailure()).toMatch(/^(UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT_LOCALLY)/);
    });

    it('refuses a redirect to another origin, a huge JWKS and a slow issuer', async () => {
      fresh({});
      k8s.redirectTo = 'https://169.254.169.254/latest/meta-data';
      await refused('cl_probe', await k8s.sign(k8sClaims()));
      expect(lastFailure()).toBe('redirect to another origin (https://169.254.169.254) refused');
      k8s.redirectTo = undefined;
      fresh({ jwksUri: `${k8s.url}/openid/v1/jwks` });
      k8s.huge = true;
      await refused('cl_probe', await k8s.sign(k8sClaims()));
      expect(lastFailure()).toMatch(/over the limit of 65536 bytes/);
      k8s.huge = false;
      fresh({ jwksUri: `${k8s.url}/openid/v1/jwks?slow` });
      k8s.delayMs = 3000;
      await refused('cl_probe', await k8s.sign(k8sClaims()));
      expect(lastFailure()).toBe('no complete answer within 1000 ms');
    });

    it('keeps serving cached keys while the issuer is down, within the bound; then refuses with a clear event', async () => {
      const cert = ca.issue('down', '0b17');
      const doomed = await startIssuer(cert);
      trusts.set('doomed', trustOf('doomed', { issuer: doomed.url, caBundle: ca.ca, jwksUri: `${doomed.url}/openid/v1/jwks` }));
      clients.set('cl_doomed', clientOf('cl_doomed', 'doomed', K8S_SUB));
      const claims = (): JWTPayload => k8sClaims({ iss: doomed.url });
      expect((await request('cl_doomed', await doomed.sign(claims()))).client.clientId).toBe('cl_doomed');
      await doomed.close();
      clock.advance(KEYS_STALE_BOUND_MS - 60_000);
      expect((await request('cl_doomed', await doomed.sign(claims()))).client.clientId).toBe('cl_doomed');
      await expect.poll(() => lastFailure()).toMatch(/^ECONNREFUSED/);
      expect(keys.keyAges()).toContainEqual({ trust: 'doomed', ageSeconds: (KEYS_STALE_BOUND_MS - 60_000) / 1000 });
      clock.advance(120_000);
      expect(await refused('cl_doomed', await doomed.sign(claims()))).toMatch(/keys of trust doomed unavailable: keys last fetched \d+ min ago, past the 6 h bound \(ECONNREFUSED/);
      expect(seen.map((s) => s.name)).toContain('federation.keys_unavailable');
    });

    it('checks a reused token again once the trust\'s keys changed, and every claim rule on every request', async () => {
      fresh({ jwks: { keys: [k8s.keys[0]!.jwk as never] }, allowedPrivateHosts: [] });
      const token = await k8s.sign(k8sClaims());
      expect((await request('cl_probe', token)).client.clientId).toBe('cl_probe');
      expect((await request('cl_probe', token)).client.clientId).toBe('cl_probe');
      // The client's subject changed: the remembered token no longer fits it.
      clients.set('cl_probe', clientOf('cl_probe', 'probe', 'system:serviceaccount:payments:other'));
      expect(await refused('cl_probe', token)).toBe("platform token sub is not the client's federated subject");
      clients.set('cl_probe', clientOf('cl_probe', 'probe', K8S_SUB));
      // The trust's key replaced: the same bytes are verified again, and refused.
      trusts.set('probe', { ...trusts.get('probe')!, jwks: { keys: [(await newKey('k1')).jwk as never] } });
      expect(await refused('cl_probe', token)).toMatch(/signature not verified by trust probe/);
      // And past its exp the remembered token is expired like any other.
      trusts.set('probe', { ...trusts.get('probe')!, jwks: { keys: [k8s.keys[0]!.jwk as never] } });
      expect((await request('cl_probe', token)).client.clientId).toBe('cl_probe');
      clock.advance(3600_000);
      expect(await refused('cl_probe', token)).toBe('platform token expired');
    });

    it('uses keys given by value without fetching anything', async () => {
      fresh({ issuer: k8s.url, jwks: { keys: [k8s.keys[0]!.jwk as never] }, allowedPrivateHosts: [] });
      expect((await request('cl_probe', await k8s.sign(k8sClaims()))).client.clientId).toBe('cl_probe');
      expect(k8s.hits.size).toBe(0);
    });
  });
});
