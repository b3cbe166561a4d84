// A federated_jwt client (issue 17) before its authenticator is plugged into the client-auth chain:
// every way of presenting itself is refused with the one invalid_client answer, never a 500 and
// never a token. The chain is driven at unit level with a lookup that holds such a client.

import { generateKeyPair, SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { ClientAuthentication } from '../../src/oauth/client-auth/authenticate.js';
import { OAuthError } from '../../src/ground/errors.js';
import { CLIENT_ASSERTION_TYPE } from '../../src/ground/names.js';
import type { ClientRecord } from '../../src/ground/records.js';
import { basic } from '../helpers/server.js';

const clientId = 'cl_federated';
const issuer = 'http://localhost:8080';
const federated: ClientRecord = {
  clientId, clientName: 'billing', scope: ['a'], defaultScope: null, audience: ['https://api.example.com'], defaultAudience: null,
  tokenEndpointAuthMethod: 'federated_jwt',
  federation: { trust: 'prod-cluster', subject: 'system:serviceaccount:payments:billing', claims: {} },
  grantTypes: ['client_credentials'], resourceUris: [], jwks: null, accessTokenTtl: null, rateLimit: null, tokenReuse: false,
  dpopBoundAccessTokens: false, fapi2: false, disabled: false, claims: {}, tlsClientAuth: null, tlsClientCertificateBoundAccessTokens: false, secrets: [], tokensRevokedAt: null, createdAt: 0, updatedAt: 0,
};

const authentication = new ClientAuthentication({
  clients: { get: async (id: string) => (id === clientId ? federated : undefined) },
  replay: { consumeOnce: async () => true, listReplay: async () => [] },
  issuer: () => issuer, tokenEndpoint: () => `${issuer}/oauth2/token`,
});

async function attempt(form: Record<string, string>, authorization?: string): Promise<OAuthError> {
  const req = { contentType: 'application/x-www-form-urlencoded', body: undefined, authorization, ip: '127.0.0.1', requestId: 'r' };
  const params = new Map(Object.entries(form).map(([k, v]) => [k, [v]]));
  const err = await authentication.authenticate(req, params).then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(OAuthError);
  return err as OAuthError;
}

async function signed(claims: Record<string, unknown>): Promise<string> {
  const { privateKey } = await generateKeyPair('ES256');
  return new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuedAt().setExpirationTime('10m').sign(privateKey);
}

describe('a federated_jwt client before federation is plugged in', () => {
  it('is refused invalid_client for a platform token sent with its client_id', async () => {
    const token = await signed({ iss: 'https://kubernetes.default.svc', sub: 'system:serviceaccount:payments:billing', aud: issuer });
    const err = await attempt({ client_id: clientId, client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: token });
    expect(err.error).toBe('invalid_client');
    expect(err.status).toBe(401);
    expect(err.description).toBe('Client authentication failed.');
  });

  it('is refused invalid_client for an assertion naming the client itself', async () => {
    const token = await signed({ iss: clientId, sub: clientId, aud: `${issuer}/oauth2/token`, jti: 'j1' });
    const err = await attempt({ client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: token });
    expect([err.error, err.status, err.detail]).toEqual(['invalid_client', 401, 'client is registered for federated_jwt, used private_key_jwt']);
  });

  it('is refused invalid_client for any secret: it has none', async () => {
    const post = await attempt({ client_id: clientId, client_secret: 'm2m_cs_' + 'a'.repeat(43) });
    expect([post.error, post.status]).toEqual(['invalid_client', 401]);
    const viaBasic = await attempt({}, basic(clientId, 'm2m_cs_' + 'b'.repeat(43)));
    expect([viaBasic.error, viaBasic.status]).toEqual(['invalid_client', 401]);
  });
});
