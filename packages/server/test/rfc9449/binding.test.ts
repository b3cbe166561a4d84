// The sender-constraint plumbing DPoP (RFC 9449) and mutual TLS (RFC 8705) share, at unit level:
// a binding set on the request by an earlier step becomes the token's cnf and its token_type;
// token reuse keeps tokens of different bindings apart; introspection answers cnf and token_type.

import { describe, expect, it } from 'vitest';
import type { ClientRecord } from '../../src/ground/records.js';
import { EventBus } from '../../src/observability/events.js';
import { AccessTokenReader, type TokenSigner } from '../../src/oauth/access-token.js';
import { IntrospectionEndpoint } from '../../src/oauth/introspection/introspection-endpoint.js';
import type { OAuthRequest } from '../../src/oauth/request/context.js';
import { parseRequest } from '../../src/oauth/request/parse.js';
import type { Steps } from '../../src/oauth/steps.js';
import type { TokenBinding } from '../../src/oauth/request/binding.js';
import { grantAnswer } from '../../src/oauth/token/granted.js';
import { TokenEndpoint } from '../../src/oauth/token/token-endpoint.js';

const ISSUER = 'https://as.example.com';
const NOW = 1_800_000_000_000;

const client: ClientRecord = {
  clientId: 'svc', clientName: 'svc', scope: ['orders:read'], defaultScope: null, audience: ['https://orders.example.com'],
  defaultAudience: null, tokenEndpointAuthMethod: 'client_secret_basic', federation: null, grantTypes: ['client_credentials'], resourceUris: [],
  jwks: null, accessTokenTtl: 600, rateLimit: null, tokenReuse: true, dpopBoundAccessTokens: false, fapi2: false, disabled: false, claims: {}, tlsClientAuth: null,
  tlsClientCertificateBoundAccessTokens: false, secrets: [],
  tokensRevokedAt: null, createdAt: NOW, updatedAt: NOW,
};

// A signer that does not sign: the "token" is the claims JSON in base64url between two dots.
const signer: TokenSigner = {
  sign: (claimsJson) => ({ token: `h.${Buffer.from(claimsJson).toString('base64url')}.s`, kid: 'k' }),
  verifyPayload: (token) => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>,
  revocationEpoch: () => 0,
};

const steps: Steps = {
  parse: parseRequest,
  authenticate: async () => ({ client, method: 'client_secret_basic', secret: undefined }),
  grant: (grant, c, params) => grantAnswer(ISSUER, grant, c, params),
};

function request(body: string, binding?: TokenBinding): OAuthRequest {
  return {
    contentType: 'application/x-www-form-urlencoded', body: Buffer.from(body), authorization: 'Basic x',
    ip: '127.0.0.1', requestId: 'r', ...(binding !== undefined && { binding }),
  };
}

function endpoint(): TokenEndpoint {
  return new TokenEndpoint({
    steps, signer, events: new EventBus(), tokenTtl: 600, tokenTtlMin: 60, tokenTtlMax: 3600,
    now: () => NOW, revocations: { has: () => false },
  });
}

async function issue(e: TokenEndpoint, binding?: TokenBinding): Promise<{ access_token: string; token_type: string }> {
  const answer = await e.handle(request('grant_type=client_credentials', binding));
  expect(answer.response.status, answer.response.body).toBe(200);
  return JSON.parse(answer.response.body) as { access_token: string; token_type: string };
}

const JKT_A = 'NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs';
const JKT_B = 'oKIywvGUpTVTyxMQ3bwIIeQUudfr_CkLMjCE19ECD-U';
const X5T = 'bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2';

describe('the binding becomes cnf and token_type', () => {
  it('writes cnf.jkt and answers token_type DPoP for a DPoP key', async () => {
    const body = await issue(endpoint(), { jkt: JKT_A });
    expect(body.token_type).toBe('DPoP');
    expect(signer.verifyPayload(body.access_token)).toMatchObject({ cnf: { jkt: JKT_A } });
  });

  it('writes cnf x5t#S256 and keeps token_type Bearer for a certificate', async () => {
    const body = await issue(endpoint(), { x5tS256: X5T });
    expect(body.token_type).toBe('Bearer');
    expect(signer.verifyPayload(body.access_token)).toMatchObject({ cnf: { 'x5t#S256': X5T } });
  });

  it('writes no cnf for an unbound request', async () => {
    const body = await issue(endpoint());
    expect(body.token_type).toBe('Bearer');
    expect(signer.verifyPayload(body.access_token)!.cnf).toBeUndefined();
  });
});

describe('token reuse keeps bindings apart', () => {
  it('hands a bound token only to a request that proves the same key or certificate', async () => {
    const e = endpoint();
    const unbound = (await issue(e)).access_token;
    const a = (await issue(e, { jkt: JKT_A })).access_token;
    const b = (await issue(e, { jkt: JKT_B })).access_token;
    const cert = (await issue(e, { x5tS256: X5T })).access_token;
    expect(new Set([unbound, a, b, cert]).size).toBe(4);
    expect(await issue(e, { jkt: JKT_A })).toEqual(expect.objectContaining({ access_token: a, token_type: 'DPoP' }));
    expect((await issue(e, { jkt: JKT_B })).access_token).toBe(b);
    expect(await issue(e, { x5tS256: X5T })).toEqual(expect.objectContaining({ access_token: cert, token_type: 'Bearer' }));
    expect((await issue(e)).access_token).toBe(unbound);
  });
});

describe('introspection answers cnf and token_type', () => {
  const tokens = new AccessTokenReader({
    issuer: () => ISSUER, signer, revocations: { has: () => false }, clients: { get: async () => client }, now: () => NOW,
  });
  const introspection = new IntrospectionEndpoint({ steps, tokens, events: new EventBus() });

  async function introspect(token: string): Promise<Record<string, unknown>> {
    const answer = await introspection.handle(request(`token=${token}`));
    expect(answer.response.status).toBe(200);
    return JSON.parse(answer.response.body) as Record<string, unknown>;
  }

  it('for a DPoP-bound, a certificate-bound and an unbound token', async () => {
    const e = endpoint();
    expect(await introspect((await issue(e, { jkt: JKT_A })).access_token)).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: JKT_A } });
    expect(await introspect((await issue(e, { x5tS256: X5T })).access_token)).toMatchObject({ active: true, token_type: 'Bearer', cnf: { 'x5t#S256': X5T } });
    const plain = await introspect((await issue(e)).access_token);
    expect(plain).toMatchObject({ active: true, token_type: 'Bearer' });
    expect(plain).not.toHaveProperty('cnf');
  });

  it('refuses a token whose cnf is not of our shape', async () => {
    const forged = signer.sign(JSON.stringify({
      iss: ISSUER, sub: 'svc', aud: 'x', client_id: 'svc', exp: NOW / 1000 + 60, iat: NOW / 1000, jti: 'j', cnf: { jkt: 5 },
    })).token;
    expect(await introspect(forged)).toEqual({ active: false });
  });
});
