// What a keep-alive connection remembers between its requests (src/oauth/connection-memo.ts: the
// last form body and its parse, the last client_secret_basic header and the client it proved, the
// grant's answer per parse): every change that must take effect at once does, on the same
// connection, over a real socket with a real HTTP client.

import { Agent, request } from 'node:http';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { basic, formBody, startTestServer, type TestServer } from '../helpers/server.js';
import { ClientAuthentication } from '../../src/oauth/client-auth/authenticate.js';
import { ConnectionMemos } from '../../src/oauth/connection-memo.js';
import { plainSteps } from '../../src/oauth/steps.js';
import { secretDigest } from '../../src/clients/secrets.js';
import type { ClientRecord } from '../../src/ground/records.js';
import { clientCredentialsGrant } from '../../src/oauth/token/grants/client-credentials.js';
import { wrongSecret } from '../helpers/secrets.js';

let t: TestServer;
let url: URL;
let agent: Agent;

beforeAll(async () => {
  t = await startTestServer();
  url = new URL((await t.server.listen()).publicUrl);
});
afterAll(() => t.close());

afterEach(() => agent?.destroy());

interface Answer {
  status: number;
  body: Record<string, unknown>;
  /** The client side of the connection: the same port means the same connection. */
  localPort: number;
}

/** One connection, kept alive: every request of a test goes over the same socket. */
function oneConnection(): void {
  agent = new Agent({ keepAlive: true, maxSockets: 1 });
}

function post(path: string, form: Record<string, string | string[]>, authorization?: string): Promise<Answer> {
  const payload = formBody(form);
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, url), {
      method: 'POST', agent,
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        'content-length': Buffer.byteLength(payload),
        ...(authorization !== undefined && { authorization }),
      },
    }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({
        status: res.statusCode!, body: JSON.parse(Buffer.concat(chunks).toString()), localPort: req.socket!.localPort!,
      }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

const tokenForm = { grant_type: 'client_credentials', scope: 'orders:read' };

function claims(token: unknown): Record<string, unknown> {
  return JSON.parse(Buffer.from(String(token).split('.')[1]!, 'base64url').toString());
}

describe('client_secret_basic on a keep-alive connection', () => {
  it('the same header twice is the same client; another client\'s header on the same connection is that client', async () => {
    oneConnection();
    const a = await t.client();
    const b = await t.client();
    const first = await post('/oauth2/token', tokenForm, basic(a.clientId, a.clientSecret));
    const second = await post('/oauth2/token', tokenForm, basic(a.clientId, a.clientSecret));
    const other = await post('/oauth2/token', tokenForm, basic(b.clientId, b.clientSecret));
    expect([first.status, second.status, other.status]).toEqual([200, 200, 200]);
    expect(new Set([first.localPort, second.localPort, other.localPort]).size).toBe(1);
    expect(claims(second.body.access_token).client_id).toBe(a.clientId);
    expect(claims(other.body.access_token).client_id).toBe(b.clientId);
    // And back: the remembered header is b's now, a's is checked again from scratch.
    const again = await post('/oauth2/token', tokenForm, basic(a.clientId, a.clientSecret));
    expect(claims(again.body.access_token).client_id).toBe(a.clientId);
  });

  it('a wrong secret after a success is refused', async () => {
    oneConnection();
    const a = await t.client();
    expect((await post('/oauth2/token', tokenForm, basic(a.clientId, a.clientSecret))).status).toBe(200);
    const wrong = await post('/oauth2/token', tokenForm, basic(a.clientId, wrongSecret(a.clientSecret)));
    expect(wrong.status).toBe(401);
    expect(wrong.body.error).toBe('invalid_client');
  });

  it('a secret rotated with no grace period stops working at once on the connection that used it', async () => {
    oneConnection();
    const a = await t.client();
    expect((await post('/oauth2/token', tokenForm, basic(a.clientId, a.clientSecret))).status).toBe(200);
    const rotated = await t.server.clients.rotateSecret(a.clientId, 0);
    const old = await post('/oauth2/token', tokenForm, basic(a.clientId, a.clientSecret));
    expect(old.status).toBe(401);
    expect((await post('/oauth2/token', tokenForm, basic(a.clientId, rotated.clientSecret))).status).toBe(200);
  });

  it('the old secret of a rotation stops working when its grace period ends, on a connection that kept using it', async () => {
    oneConnection();
    const a = await t.client();
    await t.server.clients.rotateSecret(a.clientId, 60);
    const during = [
      await post('/oauth2/token', tokenForm, basic(a.clientId, a.clientSecret)),
      await post('/oauth2/token', tokenForm, basic(a.clientId, a.clientSecret)),
    ];
    expect(during.map((r) => r.status)).toEqual([200, 200]);
    t.clock.advance(61_000);
    const after = await post('/oauth2/token', tokenForm, basic(a.clientId, a.clientSecret));
    expect(after.localPort).toBe(during[0]!.localPort);
    expect(after.status).toBe(401);
  });

  it('a disabled client is refused at once, and so are its introspection calls', async () => {
    oneConnection();
    const a = await t.client();
    const ok = await post('/oauth2/token', tokenForm, basic(a.clientId, a.clientSecret));
    expect((await post('/oauth2/introspect', { token: String(ok.body.access_token) }, basic(a.clientId, a.clientSecret))).status).toBe(200);
    await t.server.clients.update(a.clientId, { disabled: true });
    expect((await post('/oauth2/token', tokenForm, basic(a.clientId, a.clientSecret))).status).toBe(401);
    expect((await post('/oauth2/introspect', { token: String(ok.body.access_token) }, basic(a.clientId, a.clientSecret))).status).toBe(401);
  });

});

describe('the failed-authentication throttle', () => {
  let throttled: TestServer;
  beforeAll(async () => {
    throttled = await startTestServer({ authFailuresPerAddress: 3 });
  });
  afterAll(() => throttled.close());

  it('a throttled address gets 429 on a connection that authenticated before', async () => {
    const publicUrl = new URL((await throttled.server.listen()).publicUrl);
    const saved = url;
    url = publicUrl;
    try {
      oneConnection();
      const a = await throttled.client();
      const b = await throttled.client();
      expect((await post('/oauth2/token', tokenForm, basic(a.clientId, a.clientSecret))).status).toBe(200);
      // Three failures from this address, on other connections, throttle it.
      const kept = agent;
      agent = new Agent({ keepAlive: false });
      for (let i = 0; i < 3; i++) expect((await post('/oauth2/token', tokenForm, basic(b.clientId, 'wrong'))).status).toBe(401);
      agent.destroy();
      agent = kept;
      const refused = await post('/oauth2/token', tokenForm, basic(a.clientId, a.clientSecret));
      expect(refused.status).toBe(429);
      expect(refused.body.error).toBe('temporarily_unavailable');
    } finally {
      url = saved;
    }
  });
});

describe('the same form body on a keep-alive connection', () => {
  it('a changed body of the same length is read anew: the token has the scope asked for', async () => {
    oneConnection();
    const a = await t.client({ scope: 'orders:read orders:list' });
    const auth = basic(a.clientId, a.clientSecret);
    const read = await post('/oauth2/token', { grant_type: 'client_credentials', scope: 'orders:read' }, auth);
    const list = await post('/oauth2/token', { grant_type: 'client_credentials', scope: 'orders:list' }, auth);
    expect(read.localPort).toBe(list.localPort);
    expect(claims(read.body.access_token).scope).toBe('orders:read');
    expect(claims(list.body.access_token).scope).toBe('orders:list');
  });

  it('repeated requests get tokens with the same leading claims and their own exp, iat and jti; a changed client gets its new claims', async () => {
    oneConnection();
    const a = await t.client({ scope: 'orders:read orders:write', audience: ['https://orders.example.com', 'https://b.example.com/\u00e9t\u00e9'] });
    const auth = basic(a.clientId, a.clientSecret);
    const form = { grant_type: 'client_credentials' };
    const answers = [];
    const issuedAt: number[] = [];
    for (let i = 0; i < 3; i++) {
      issuedAt.push(Math.floor(t.clock.now() / 1000));
      answers.push(await post('/oauth2/token', form, auth));
      t.clock.advance(1500);
    }
    expect(new Set(answers.map((x) => x.localPort)).size).toBe(1);
    const tokens = answers.map((x) => claims(x.body.access_token));
    for (const [i, c] of tokens.entries()) {
      expect(Object.keys(c).sort()).toEqual(['aud', 'client_id', 'exp', 'iat', 'iss', 'jti', 'scope', 'sub']);
      expect(c).toMatchObject({
        iss: t.config.issuer, sub: a.clientId, client_id: a.clientId, scope: 'orders:read orders:write',
        aud: ['https://orders.example.com', 'https://b.example.com/\u00e9t\u00e9'],
      });
      expect(c.exp).toBe((c.iat as number) + 3600);
      expect(c.iat).toBe(issuedAt[i]);
    }
    expect(new Set(tokens.map((c) => c.jti)).size).toBe(3);
    await t.server.clients.update(a.clientId, { scope: 'orders:read', access_token_ttl: 600 });
    const changed = claims((await post('/oauth2/token', form, auth)).body.access_token);
    expect(changed.scope).toBe('orders:read');
    expect(changed.exp).toBe((changed.iat as number) + 600);
  });

  it('a scope taken from the client is refused on the next identical request', async () => {
    oneConnection();
    const a = await t.client({ scope: 'orders:read orders:write' });
    const auth = basic(a.clientId, a.clientSecret);
    const form = { grant_type: 'client_credentials', scope: 'orders:write' };
    expect((await post('/oauth2/token', form, auth)).status).toBe(200);
    await t.server.clients.update(a.clientId, { scope: 'orders:read' });
    const refused = await post('/oauth2/token', form, auth);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe('invalid_scope');
  });

  it('client_secret_post bodies, remembered or not, authenticate by the secret they carry', async () => {
    oneConnection();
    const a = await t.client({ token_endpoint_auth_method: 'client_secret_post' });
    const form = { ...tokenForm, client_id: a.clientId, client_secret: a.clientSecret };
    expect((await post('/oauth2/token', form)).status).toBe(200);
    expect((await post('/oauth2/token', form)).status).toBe(200);
    await t.server.clients.rotateSecret(a.clientId, 0);
    expect((await post('/oauth2/token', form)).status).toBe(401);
  });
});

describe('the Basic memo of a connection (unit level)', () => {
  const secret = 'm2m_cs_' + 'a'.repeat(43);
  const clientId = 'cl_AAAAAAAAAAAAAAAA';
  function record(digest: string): ClientRecord {
    return {
      clientId, clientName: 'memo', scope: ['a'], defaultScope: null, audience: ['https://api.example.com'], defaultAudience: null,
      tokenEndpointAuthMethod: 'client_secret_basic', federation: null, grantTypes: ['client_credentials'], resourceUris: [], jwks: null,
      accessTokenTtl: null, rateLimit: null, tokenReuse: false, dpopBoundAccessTokens: false, fapi2: false, disabled: false, claims: {}, tlsClientAuth: null, tlsClientCertificateBoundAccessTokens: false,
      secrets: [{ digest, createdAt: 0, expiresAt: null }], tokensRevokedAt: null, createdAt: 0, updatedAt: 0,
    };
  }

  function setup() {
    // Not frozen, unlike the registry's records: changing the secret under the same record object
    // (which the registry never does) shows whether a request took the memo path.
    const state = { current: record(secretDigest(secret)) };
    let lookups = 0;
    const authentication = new ClientAuthentication({
      clients: { get: async (id: string) => (lookups++, id === clientId ? state.current : undefined) },
      replay: { consumeOnce: async () => true, listReplay: async () => [] },
      issuer: () => 'http://localhost:8080', tokenEndpoint: () => 'http://localhost:8080/oauth2/token',
    });
    const memos = new ConnectionMemos({ steps: plainSteps({ authentication, issuer: () => 'http://localhost:8080' }), authentication });
    const request = (connection: object, form: Record<string, string> = {}) =>
      memos.for(connection).authenticate(
        { contentType: 'application/x-www-form-urlencoded', body: undefined, authorization: basic(clientId, secret), ip: '127.0.0.1', requestId: 'r' },
        new Map(Object.entries(form).map(([k, v]) => [k, [v]])),
      );
    return { state, request, lookups: () => lookups, steps: memos };
  }

  it('a repeated header on the same connection skips the secret check; another connection does not', async () => {
    const { state, request } = setup();
    const connection = {};
    const { current } = state;
    expect((await request(connection)).client).toBe(current);
    current.secrets = [{ digest: secretDigest('m2m_cs_other'), createdAt: 0, expiresAt: null }];
    expect((await request(connection)).client).toBe(current);
    await expect(request({})).rejects.toMatchObject({ error: 'invalid_client' });
  });

  it('a body client_id that disagrees with the header is invalid_request on the memo path too', async () => {
    const { request } = setup();
    const connection = {};
    await request(connection);
    await expect(request(connection, { client_id: 'cl_BBBBBBBBBBBBBBBB' })).rejects.toMatchObject({ error: 'invalid_request' });
    await expect(request(connection, { client_id: clientId })).resolves.toMatchObject({ method: 'client_secret_basic' });
  });

  it('hands out the last grant answer for params equal but for their credentials, and a new one for any other change', () => {
    const { steps } = setup();
    const connection = {};
    const client = record(secretDigest(secret));
    const params = (over: Record<string, string | string[]>) => new Map(Object.entries({
      grant_type: 'client_credentials', scope: 'a', client_id: clientId, client_assertion: 'platform-token-1', ...over,
    }).map(([k, v]) => [k, Array.isArray(v) ? v : [v]]));
    const first = steps.for(connection).grant(clientCredentialsGrant, client, params({}));
    // A new platform token in the same body otherwise: the same answer.
    expect(steps.for(connection).grant(clientCredentialsGrant, client, params({ client_assertion: 'platform-token-2' }))).toBe(first);
    // Anything else that differs is granted anew.
    const other = steps.for(connection).grant(clientCredentialsGrant, client, params({ resource: 'https://api.example.com' }));
    expect(other).not.toBe(first);
    expect(steps.for(connection).grant(clientCredentialsGrant, client, params({ resource: 'https://api.example.com', scope: '' }))).not.toBe(other);
    const noScope = params({});
    noScope.delete('scope');
    const withoutScope = steps.for(connection).grant(clientCredentialsGrant, client, noScope);
    expect(withoutScope.scope).toBe('a');
    expect(steps.for(connection).grant(clientCredentialsGrant, client, params({ scope: 'a', client_assertion: 'x' }))).not.toBe(withoutScope);
    // Another record of the client (any change to it) is granted anew.
    expect(steps.for(connection).grant(clientCredentialsGrant, record(secretDigest(secret)), params({}))).not.toBe(first);
  });

  it('looks the client up once per request: memo, full path, or a memo whose record was replaced', async () => {
    const { state, request, lookups } = setup();
    const connection = {};
    await request(connection);
    await request(connection);
    state.current = record(secretDigest(secret));
    expect((await request(connection)).client).toBe(state.current);
    await request(connection);
    expect(lookups()).toBe(4);
    state.current = record(secretDigest('m2m_cs_other'));
    await expect(request(connection)).rejects.toMatchObject({ error: 'invalid_client' });
    expect(lookups()).toBe(5);
  });
});
