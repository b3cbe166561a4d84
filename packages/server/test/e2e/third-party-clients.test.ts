// End to end over real sockets with clients someone else wrote: openid-client 6 and oauth4webapi 3
// get tokens (client_secret_basic, client_secret_post, private_key_jwt), introspect and revoke;
// jose verifies every token against the JWKS found through the RFC 8414 discovery document.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as client from 'openid-client';
import * as oauth from 'oauth4webapi';
import { createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify, type CryptoKey } from 'jose';
import { registerClient, startListening, type ListeningServer } from './listening-server.js';

const ORDERS = 'https://orders.example.com';
const BILLING = 'https://billing.example.com';
const insecure = { execute: [client.allowInsecureRequests] };

let s: ListeningServer;
/** client_secret_basic, audiences ORDERS and BILLING. */
let basicClient: { id: string; secret: string };
/** client_secret_post, audience ORDERS. */
let postClient: { id: string; secret: string };
/** private_key_jwt with an ES256 key whose public JWK is registered. */
let jwtClient: { id: string; privateKey: CryptoKey; kid: string };

beforeAll(async () => {
  s = await startListening();
  const b = await registerClient(s, {
    client_name: 'basic', scope: 'orders:read orders:write', audience: [ORDERS, BILLING],
  });
  basicClient = { id: b.client_id, secret: b.client_secret! };
  const p = await registerClient(s, {
    client_name: 'post', scope: 'orders:read', audience: [ORDERS], token_endpoint_auth_method: 'client_secret_post',
  });
  postClient = { id: p.client_id, secret: p.client_secret! };

  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const kid = 'client-key-1';
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' };
  const j = await registerClient(s, {
    client_name: 'jwt', scope: 'orders:read', audience: [ORDERS],
    token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] },
  });
  expect(j.client_secret).toBeUndefined();
  jwtClient = { id: j.client_id, privateKey, kid };
});
afterAll(() => s?.close());

interface Expected {
  clientId: string;
  scope: string;
  aud: string | string[];
  expiresIn: number;
}

/**
 * Verifies a token as an API would: the JWKS named by the discovery document, then typ, iss, aud,
 * exp and the RFC 9068 claims.
 */
async function verifyAccessToken(
  token: string,
  metadata: { issuer: string; jwks_uri?: string },
  expected: Expected,
): Promise<void> {
  expect(metadata.issuer).toBe(s.issuer);
  expect(metadata.jwks_uri).toBe(`${s.issuer}/oauth2/jwks`);
  const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri!));
  const audience = Array.isArray(expected.aud) ? expected.aud[0]! : expected.aud;
  const before = Math.floor(Date.now() / 1000);
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: metadata.issuer, audience, typ: 'at+jwt' });
  expect(protectedHeader.typ).toBe('at+jwt');
  expect(protectedHeader.kid).toEqual(expect.any(String));
  expect(protectedHeader.alg).toBe('ES256');
  expect(payload.iss).toBe(s.issuer);
  expect(payload.aud).toEqual(expected.aud);
  expect(payload.sub).toBe(expected.clientId);
  expect(payload.client_id).toBe(expected.clientId);
  expect(payload.scope).toBe(expected.scope);
  expect(payload.jti).toEqual(expect.any(String));
  expect(payload.exp).toBeGreaterThan(before);
  expect(payload.exp).toBe(payload.iat! + expected.expiresIn);
}

describe('openid-client 6', () => {
  it('client_secret_basic: discovery, client credentials, token verified through the JWKS', async () => {
    const config = await client.discovery(new URL(s.issuer), basicClient.id, undefined, client.ClientSecretBasic(basicClient.secret), insecure);
    const as = config.serverMetadata();
    expect(as.token_endpoint).toBe(`${s.issuer}/oauth2/token`);

    const tokens = await client.clientCredentialsGrant(config, { scope: 'orders:read' });
    expect(tokens.token_type).toBe('bearer'); // openid-client lowercases token_type
    expect(tokens.scope).toBe('orders:read');
    expect(tokens.expires_in).toBe(3600);
    expect(tokens.refresh_token).toBeUndefined();
    await verifyAccessToken(tokens.access_token, as, { clientId: basicClient.id, scope: 'orders:read', aud: [ORDERS, BILLING], expiresIn: 3600 });
  });

  it('a resource parameter (RFC 8707) narrows aud to that resource', async () => {
    const config = await client.discovery(new URL(s.issuer), basicClient.id, undefined, client.ClientSecretBasic(basicClient.secret), insecure);
    const tokens = await client.clientCredentialsGrant(config, { resource: BILLING });
    expect(tokens.scope).toBe('orders:read orders:write');
    await verifyAccessToken(tokens.access_token, config.serverMetadata(), {
      clientId: basicClient.id, scope: 'orders:read orders:write', aud: BILLING, expiresIn: 3600,
    });
  });

  it('a resource the client may not use is surfaced as invalid_target', async () => {
    const config = await client.discovery(new URL(s.issuer), basicClient.id, undefined, client.ClientSecretBasic(basicClient.secret), insecure);
    const err = await client.clientCredentialsGrant(config, { resource: 'https://elsewhere.example.com' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(client.ResponseBodyError);
    expect((err as client.ResponseBodyError).error).toBe('invalid_target');
    expect((err as client.ResponseBodyError).status).toBe(400);
  });

  it('private_key_jwt: openid-client builds and signs the assertion', async () => {
    const config = await client.discovery(
      new URL(s.issuer), jwtClient.id, undefined,
      client.PrivateKeyJwt({ key: jwtClient.privateKey, kid: jwtClient.kid }), insecure,
    );
    const first = await client.clientCredentialsGrant(config);
    await verifyAccessToken(first.access_token, config.serverMetadata(), { clientId: jwtClient.id, scope: 'orders:read', aud: ORDERS, expiresIn: 3600 });
    // Each request carries a fresh assertion (new jti), so a second token request works too.
    const second = await client.clientCredentialsGrant(config);
    expect(second.access_token).not.toBe(first.access_token);
  });

  it('a wrong secret with Basic: 401, the Basic challenge, and invalid_client in the body', async () => {
    const config = await client.discovery(new URL(s.issuer), basicClient.id, undefined, client.ClientSecretBasic('m2m_cs_wrong'), insecure);
    const err = await client.clientCredentialsGrant(config).catch((e: unknown) => e);
    // RFC 6749 §5.2: with Basic, 401 and WWW-Authenticate; openid-client surfaces the challenge.
    expect(err).toBeInstanceOf(client.WWWAuthenticateChallengeError);
    const challenge = err as client.WWWAuthenticateChallengeError;
    expect(challenge.status).toBe(401);
    expect(challenge.cause[0]?.scheme).toBe('basic');
    expect(await challenge.response.json()).toEqual({ error: 'invalid_client', error_description: 'Client authentication failed.' });
  });

  it('an assertion signed by an unregistered key is surfaced as invalid_client', async () => {
    const other = await generateKeyPair('ES256');
    const config = await client.discovery(
      new URL(s.issuer), jwtClient.id, undefined, client.PrivateKeyJwt({ key: other.privateKey, kid: jwtClient.kid }), insecure,
    );
    const err = await client.clientCredentialsGrant(config).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(client.ResponseBodyError);
    expect((err as client.ResponseBodyError).error).toBe('invalid_client');
    expect((err as client.ResponseBodyError).status).toBe(401);
  });
});

describe('oauth4webapi 3', () => {
  let as: oauth.AuthorizationServer;

  beforeAll(async () => {
    const issuer = new URL(s.issuer);
    const res = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', [oauth.allowInsecureRequests]: true });
    as = await oauth.processDiscoveryResponse(issuer, res);
  });

  async function grant(c: oauth.Client, auth: oauth.ClientAuth, params: Record<string, string> = {}) {
    const res = await oauth.clientCredentialsGrantRequest(as, c, auth, params, { [oauth.allowInsecureRequests]: true });
    return oauth.processClientCredentialsResponse(as, c, res);
  }

  it('discovers the RFC 8414 document at /.well-known/oauth-authorization-server', () => {
    expect(as.issuer).toBe(s.issuer);
    expect(as.token_endpoint).toBe(`${s.issuer}/oauth2/token`);
    expect(as.introspection_endpoint).toBe(`${s.issuer}/oauth2/introspect`);
    expect(as.revocation_endpoint).toBe(`${s.issuer}/oauth2/revoke`);
    expect(as.grant_types_supported).toEqual(['client_credentials']);
    expect(as.token_endpoint_auth_methods_supported).toEqual(
      expect.arrayContaining(['client_secret_basic', 'client_secret_post', 'private_key_jwt']),
    );
  });

  it('client_secret_basic', async () => {
    const tokens = await grant({ client_id: basicClient.id }, oauth.ClientSecretBasic(basicClient.secret), { scope: 'orders:write' });
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.scope).toBe('orders:write');
    await verifyAccessToken(tokens.access_token, as, { clientId: basicClient.id, scope: 'orders:write', aud: [ORDERS, BILLING], expiresIn: tokens.expires_in! });
    expect(tokens.expires_in).toBe(3600);
  });

  it('client_secret_post', async () => {
    const tokens = await grant({ client_id: postClient.id }, oauth.ClientSecretPost(postClient.secret));
    await verifyAccessToken(tokens.access_token, as, { clientId: postClient.id, scope: 'orders:read', aud: ORDERS, expiresIn: 3600 });
  });

  it('private_key_jwt', async () => {
    const tokens = await grant({ client_id: jwtClient.id }, oauth.PrivateKeyJwt({ key: jwtClient.privateKey, kid: jwtClient.kid }));
    await verifyAccessToken(tokens.access_token, as, { clientId: jwtClient.id, scope: 'orders:read', aud: ORDERS, expiresIn: 3600 });
  });

  it('a wrong secret with client_secret_post is surfaced as invalid_client (401, no challenge)', async () => {
    const err = await grant({ client_id: postClient.id }, oauth.ClientSecretPost('m2m_cs_wrong')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(oauth.ResponseBodyError);
    const body = err as oauth.ResponseBodyError;
    expect(body.error).toBe('invalid_client');
    expect(body.status).toBe(401);
    expect(body.response.headers.get('www-authenticate')).toBeNull();
  });

  it('the wrong method for the client is the same invalid_client (post client using Basic)', async () => {
    const err = await grant({ client_id: postClient.id }, oauth.ClientSecretBasic(postClient.secret)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(oauth.WWWAuthenticateChallengeError);
    const challenge = err as oauth.WWWAuthenticateChallengeError;
    expect(challenge.status).toBe(401);
    expect(((await challenge.response.json()) as { error: string }).error).toBe('invalid_client');
  });

  it('introspection and revocation (RFC 7662, RFC 7009)', async () => {
    const c = { client_id: basicClient.id };
    const auth = oauth.ClientSecretBasic(basicClient.secret);
    const opts = { [oauth.allowInsecureRequests]: true } as const;
    const tokens = await grant(c, auth, { resource: ORDERS });

    const active = await oauth.processIntrospectionResponse(as, c, await oauth.introspectionRequest(as, c, auth, tokens.access_token, opts));
    const claims = await jwtVerify(tokens.access_token, createRemoteJWKSet(new URL(as.jwks_uri!)), { issuer: as.issuer, audience: ORDERS, typ: 'at+jwt' });
    expect(active).toEqual({
      active: true,
      scope: 'orders:read orders:write',
      client_id: basicClient.id,
      sub: basicClient.id,
      aud: ORDERS,
      iss: s.issuer,
      exp: claims.payload.exp,
      iat: claims.payload.iat,
      jti: claims.payload.jti,
      token_type: 'Bearer',
    });

    // Another client may not see this token (RFC 7662 §4): inactive for it.
    const other = await oauth.processIntrospectionResponse(
      as, { client_id: postClient.id },
      await oauth.introspectionRequest(as, { client_id: postClient.id }, oauth.ClientSecretPost(postClient.secret), tokens.access_token, opts),
    );
    expect(other).toEqual({ active: false });

    // Nor revoke it: RFC 7009 §2.1 refuses a token issued to another client (400 invalid_request).
    const refused = await oauth.processRevocationResponse(
      await oauth.revocationRequest(as, { client_id: postClient.id }, oauth.ClientSecretPost(postClient.secret), tokens.access_token, opts),
    ).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(oauth.ResponseBodyError);
    expect((refused as oauth.ResponseBodyError).error).toBe('invalid_request');
    expect((refused as oauth.ResponseBodyError).status).toBe(400);
    const still = await oauth.processIntrospectionResponse(as, c, await oauth.introspectionRequest(as, c, auth, tokens.access_token, opts));
    expect(still.active).toBe(true);

    await expect(oauth.processRevocationResponse(await oauth.revocationRequest(as, c, auth, tokens.access_token, opts))).resolves.toBeUndefined();
    const inactive = await oauth.processIntrospectionResponse(as, c, await oauth.introspectionRequest(as, c, auth, tokens.access_token, opts));
    expect(inactive).toEqual({ active: false });

    // Revoking again, or revoking garbage, is still 200 (RFC 7009 §2.2).
    await expect(oauth.processRevocationResponse(await oauth.revocationRequest(as, c, auth, tokens.access_token, opts))).resolves.toBeUndefined();
    await expect(oauth.processRevocationResponse(await oauth.revocationRequest(as, c, auth, 'not-a-token', opts))).resolves.toBeUndefined();
  });

  it('introspection with a wrong secret is surfaced as invalid_client', async () => {
    const c = { client_id: postClient.id };
    const res = await oauth.introspectionRequest(as, c, oauth.ClientSecretPost('m2m_cs_wrong'), 'whatever', { [oauth.allowInsecureRequests]: true });
    const err = await oauth.processIntrospectionResponse(as, c, res).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(oauth.ResponseBodyError);
    expect((err as oauth.ResponseBodyError).error).toBe('invalid_client');
    expect((err as oauth.ResponseBodyError).status).toBe(401);
  });
});
