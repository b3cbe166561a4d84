// The admin API through Fastify inject: every route, bearer auth, input validation, no leaks.

import Fastify, { type FastifyInstance } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { bearerChecker } from '../../src/admin/bearer.js';
import { registerAdminRoutes } from '../../src/admin/routes.js';
import { ClientRegistry } from '../../src/clients/registry.js';
import { verifyClientSecret } from '../../src/clients/secrets.js';
import { KeyNotFoundError, KeyRevocationRefusedError } from '../../src/keys/keyring.js';
import { EventBus, type AuditContext, type EventMap, type EventName } from '../../src/observability/events.js';
import { keyPair } from '../clients/keys.js';
import { MemoryClientStore } from '../clients/memory-client-store.js';
import { TrustRegistry } from '../../src/trusts/registry.js';
import { openStorage } from '../../src/storage/open.js';

const TOKEN = 'admin-token-for-tests-0123456789abcdef';
const T0 = 1_700_000_000_000;
const API = 'https://api.example.com';

interface Reply {
  status: number;
  headers: Record<string, unknown>;
  body: string;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

let app: FastifyInstance;
let store: MemoryClientStore;
let events: EventBus;
let seen: Array<{ name: EventName; payload: unknown }>;
let now: number;
let keyList: Array<Record<string, unknown>>;
let rotateImpl: (opts?: { activateAt?: number }) => Promise<unknown>;
let revokeImpl: (kid: string, opts: { rotate: boolean; audit: AuditContext }) => Promise<{ revoked: unknown; replacement: unknown }>;

async function build(opts: { bodyLimit?: number } = {}): Promise<FastifyInstance> {
  const instance = Fastify({ logger: false, ...(opts.bodyLimit ? { bodyLimit: opts.bodyLimit } : {}) });
  const registry = new ClientRegistry(store, events, { tokenTtlMin: 60, tokenTtlMax: 86_400, secretGracePeriod: 3600, now: () => now });
  // Trusts have their own tests (trusted-issuers-api.test.ts); an empty embedded store serves them here.
  const trusts = new TrustRegistry((await openStorage('sqlite::memory:')).trusts, events);
  await registerAdminRoutes(instance, {
    registry,
    trusts,
    keys: { list: () => keyList, rotate: (opts) => rotateImpl(opts), revoke: (kid, opts) => revokeImpl(kid, opts) },
    adminToken: TOKEN,
    events,
  });
  await instance.ready();
  return instance;
}

beforeEach(async () => {
  store = new MemoryClientStore();
  events = new EventBus();
  seen = [];
  events.onAny((name, payload) => seen.push({ name, payload }));
  now = T0;
  keyList = [
    {
      kid: 'k1', alg: 'ES256', status: 'active', createdAt: T0 - 7_200_500, activatesAt: T0 - 3_600_000, retiredAt: null, expiresAt: null,
      privateKeyEncrypted: 'SECRET-KEY-MATERIAL', publicJwk: { kty: 'EC', d: 'PRIVATE-D' },
    },
  ];
  rotateImpl = async (opts) => {
    const activatesAt = opts?.activateAt === undefined ? now + 3_600_000 : Math.max(now, opts.activateAt);
    const key = {
      kid: 'k2', alg: 'ES256', status: activatesAt > now ? 'pending' : 'active', createdAt: now, activatesAt, retiredAt: null, expiresAt: null,
      privateKeyEncrypted: 'SECRET-KEY-MATERIAL',
    };
    keyList = [key, ...keyList];
    return key;
  };
  // The rules of KeyRing.revoke (tested with the real ring in test/keys/keyring.test.ts).
  revokeImpl = async (kid, opts) => {
    const key = keyList.find((k) => k.kid === kid);
    if (!key) throw new KeyNotFoundError(kid);
    if (key.status === 'active' && !opts.rotate) throw new KeyRevocationRefusedError(kid);
    const replacement = opts.rotate ? await rotateImpl({ activateAt: now }) : undefined;
    Object.assign(key, { status: 'revoked', retiredAt: now, revokedAt: now, expiresAt: now + 86_400_000 });
    events.emit('key.revoked', { kid, ...opts.audit });
    return { revoked: key, replacement };
  };
  app = await build();
});

afterEach(async () => {
  await app.close();
});

async function call(
  method: 'GET' | 'POST' | 'PATCH' | 'DELETE' | 'PUT',
  url: string,
  opts: { body?: unknown; raw?: string; contentType?: string; token?: string | null; authorization?: string; on?: FastifyInstance } = {},
): Promise<Reply> {
  const headers: Record<string, string> = {};
  if (opts.authorization !== undefined) headers.authorization = opts.authorization;
  else if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? TOKEN}`;
  let payload: string | undefined;
  if (opts.raw !== undefined) payload = opts.raw;
  else if (opts.body !== undefined) payload = JSON.stringify(opts.body);
  if (opts.contentType !== undefined) headers['content-type'] = opts.contentType;
  else if (payload !== undefined) headers['content-type'] = 'application/json';
  const res = await (opts.on ?? app).inject({ method, url, headers, ...(payload !== undefined ? { payload } : {}) });
  // Every admin response, errors included, is no-store.
  expect(res.headers['cache-control']).toBe('no-store');
  let json: unknown;
  try {
    json = res.body === '' ? undefined : JSON.parse(res.body);
  } catch {
    json = undefined;
  }
  return { status: res.statusCode, headers: res.headers, body: res.body, json };
}

function expectBadRequest(res: Reply, message: RegExp, status = 400): void {
  expect(res.status).toBe(status);
  expect(res.json.error).toBe('invalid_request');
  expect(res.json.message).toMatch(message);
  expect(Object.keys(res.json).sort()).toEqual(['error', 'message']);
}

const metadata = { client_name: 'billing', scope: 'read write', audience: [API] };

async function createClient(extra: Record<string, unknown> = {}): Promise<Reply> {
  const res = await call('POST', '/admin/clients', { body: { ...metadata, ...extra } });
  expect(res.status).toBe(201);
  return res;
}

function named<E extends EventName>(name: E): EventMap[E][] {
  return seen.filter((e) => e.name === name).map((e) => e.payload as EventMap[E]);
}

describe('bearer authentication', () => {
  const routes: Array<['GET' | 'POST' | 'PATCH' | 'DELETE', string]> = [
    ['POST', '/admin/clients'], ['GET', '/admin/clients'], ['GET', '/admin/clients/cl_x'], ['PATCH', '/admin/clients/cl_x'],
    ['DELETE', '/admin/clients/cl_x'], ['POST', '/admin/clients/cl_x/secret'], ['POST', '/admin/clients/cl_x/revoke-tokens'],
    ['POST', '/admin/clients/cl_x/disable'], ['POST', '/admin/clients/cl_x/enable'], ['GET', '/admin/keys'], ['POST', '/admin/keys/rotate'],
    ['POST', '/admin/keys/k1/revoke'],
    ['GET', '/admin/nowhere'],
  ];

  it('every route answers 401 without the token, with a Bearer challenge', async () => {
    for (const [method, url] of routes) {
      const res = await call(method, url, { token: null });
      expect(res.status, `${method} ${url}`).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer realm="m2m-auth admin"');
      expect(res.json).toEqual({ error: 'unauthorized', message: expect.stringMatching(/Authorization: Bearer/) });
    }
    expect(named('admin.auth_failed')).toHaveLength(routes.length);
    expect(named('admin.auth_failed')[0]).toMatchObject({ reason: 'missing_token', ip: '127.0.0.1' });
    expect(store.calls.create + store.calls.get + store.calls.list).toBe(0);
  });

  it('refuses a wrong token, another scheme and near misses, and never records the presented token', async () => {
    const wrong = [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, `Bearer x${TOKEN}`, 'Bearer ', `Basic ${Buffer.from(`a:${TOKEN}`).toString('base64')}`, TOKEN, `Bearer ${TOKEN} extra`];
    for (const authorization of wrong) {
      const res = await call('GET', '/admin/clients', { authorization });
      expect(res.status, authorization).toBe(401);
    }
    const bad = await call('GET', '/admin/clients', { authorization: 'Bearer nope-nope' });
    expect(bad.headers['www-authenticate']).toBe('Bearer realm="m2m-auth admin", error="invalid_token"');
    expect(bad.json).toEqual({ error: 'unauthorized', message: 'The admin token is not valid' });
    const failures = named('admin.auth_failed');
    expect(failures.map((f) => f.reason)).toEqual(['invalid_token', 'invalid_token', 'invalid_token', 'invalid_token', 'wrong_scheme', 'wrong_scheme', 'invalid_token', 'invalid_token']);
    expect(failures.every((f) => f.ip === '127.0.0.1' && typeof f.requestId === 'string')).toBe(true);
    expect(JSON.stringify(seen)).not.toContain('nope-nope');
    expect(JSON.stringify(seen)).not.toContain(TOKEN.slice(0, 20));
  });

  it('accepts the scheme in any case', async () => {
    expect((await call('GET', '/admin/clients', { authorization: `bearer ${TOKEN}` })).status).toBe(200);
    expect((await call('GET', '/admin/clients', { authorization: `BEARER ${TOKEN}` })).status).toBe(200);
  });

  it('checks the token before reading the body', async () => {
    const res = await call('POST', '/admin/clients', { token: 'wrong', raw: '{not json' });
    expect(res.status).toBe(401);
  });

  it('refuses to start with a short admin token', () => {
    expect(() => bearerChecker('short')).toThrow(/at least 32 characters/);
  });
});

describe('POST /admin/clients', () => {
  it('creates a client and shows its secret once', async () => {
    const res = await createClient({ default_scope: 'read', access_token_ttl: 600 });
    const id = res.json.client_id as string;
    expect(res.headers.location).toBe(`/admin/clients/${id}`);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json).toEqual({
      client_id: expect.stringMatching(/^cl_/),
      client_name: 'billing',
      scope: 'read write',
      default_scope: 'read',
      audience: [API],
      default_audience: null,
      grant_types: ['client_credentials'],
      resource_uris: [],
      token_endpoint_auth_method: 'client_secret_basic',
      jwks: null,
      access_token_ttl: 600,
      rate_limit: null,
      token_reuse: false,
      dpop_bound_access_tokens: false,
      fapi2: false,
      disabled: false,
      claims: {},
      federated_issuer: null,
      federated_subject: null,
      federated_claims: null,
      tls_client_auth_subject_dn: null,
      tls_client_auth_san_dns: null,
      tls_client_auth_san_uri: null,
      tls_client_auth_san_ip: null,
      tls_client_auth_san_email: null,
      tls_client_certificate_bound_access_tokens: false,
      tokens_revoked_at: null,
      created_at: T0 / 1000,
      updated_at: T0 / 1000,
      client_secret: expect.stringMatching(/^m2m_cs_/),
      client_secret_expires_at: 0,
    });
    expect(verifyClientSecret(store.rows.get(id), res.json.client_secret, now)).toBe(true);
    expect(named('client.created')).toEqual([{ clientId: id, ip: '127.0.0.1', requestId: expect.any(String) }]);
  });

  it('creates a private_key_jwt client without a secret', async () => {
    const jwk = { ...keyPair('ec').publicJwk, kid: 'k1' };
    const res = await createClient({ token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } });
    expect(res.json.client_secret).toBeUndefined();
    expect(res.json.client_secret_expires_at).toBeUndefined();
    expect(res.json.jwks).toEqual({ keys: [jwk] });
  });

  it('answers 400 with a clear message for every kind of bad input', async () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ ...metadata, client_secret: 'my-own-secret-1234567890' }, /client_secret cannot be chosen/],
      [{ ...metadata, client_id: 'mine' }, /client_id must be "cl_" followed by 1 to 64/],
      [{ ...metadata, colour: 'red' }, /Unknown field "colour"/],
      [{ scope: 'a', audience: [API] }, /client_name is required/],
      [{ ...metadata, client_name: 7 }, /client_name must be a string, got a number/],
      [{ ...metadata, scope: 'a  b' }, /single spaces/],
      [{ ...metadata, scope: ['a'] }, /scope must be a space-delimited string/],
      [{ client_name: 'x', scope: 'a' }, /audience is required/],
      [{ ...metadata, audience: 'https://x' }, /audience must be an array/],
      [{ ...metadata, audience: ['https://x/#f'] }, /must not have a fragment/],
      [{ ...metadata, audience: ['relative/path'] }, /is not an absolute URI/],
      [{ ...metadata, default_scope: 'admin' }, /default_scope "admin" is not in scope/],
      [{ ...metadata, default_audience: ['https://other'] }, /is not in audience/],
      [{ ...metadata, access_token_ttl: 10 }, /between 60 and 86400/],
      [{ ...metadata, access_token_ttl: '600' }, /access_token_ttl must be a whole number/],
      [{ ...metadata, disabled: 'no' }, /disabled must be true or false/],
      [{ ...metadata, token_endpoint_auth_method: 'none' }, /token_endpoint_auth_method must be one of/],
      [{ ...metadata, token_endpoint_auth_method: 'private_key_jwt' }, /jwks with at least one public key is required/],
      [{ ...metadata, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [keyPair('ec').privateJwk] } }, /private key member "d"/],
      [{ ...metadata, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [{ kty: 'oct', k: 'AAAA' }] } }, /symmetric key/],
      [{ ...metadata, grant_types: ['password'] }, /grant_types may only contain/],
    ];
    for (const [body, message] of cases) {
      const res = await call('POST', '/admin/clients', { body });
      expectBadRequest(res, message);
    }
    expect(store.rows.size).toBe(0);
  });

  it('rejects bodies that are not a JSON object', async () => {
    expectBadRequest(await call('POST', '/admin/clients', { raw: '{"client_name": ' }), /not valid JSON/);
    expectBadRequest(await call('POST', '/admin/clients', { raw: '' , contentType: 'application/json' }), /must be a JSON object/);
    expectBadRequest(await call('POST', '/admin/clients', {}), /must be a JSON object/);
    expectBadRequest(await call('POST', '/admin/clients', { body: [metadata] }), /must be a JSON object, got an array/);
    expectBadRequest(await call('POST', '/admin/clients', { raw: '"text"' }), /must be a JSON object, got a string/);
    expectBadRequest(await call('POST', '/admin/clients', { raw: 'null' }), /must be a JSON object, got null/);
    expectBadRequest(await call('POST', '/admin/clients', { raw: '{"__proto__": {"x": 1}, "client_name": "a"}' }), /member named "__proto__" \(at __proto__\)/);
  });

  it('answers 415 for a body that is not JSON', async () => {
    const form = await call('POST', '/admin/clients', { raw: 'client_name=x', contentType: 'application/x-www-form-urlencoded' });
    expectBadRequest(form, /must be JSON \(Content-Type: application\/json\)/, 415);
    expectBadRequest(await call('POST', '/admin/clients', { raw: JSON.stringify(metadata), contentType: 'text/plain' }), /must be JSON/, 415);
    const res = await app.inject({ method: 'POST', url: '/admin/clients', headers: { authorization: `Bearer ${TOKEN}` }, payload: JSON.stringify(metadata) });
    expect(res.statusCode).toBe(415);
    expect((await call('POST', '/admin/clients', { body: metadata, contentType: 'application/json; charset=utf-8' })).status).toBe(201);
  });

  it('answers 413 for a body over the limit', async () => {
    const small = await build({ bodyLimit: 1024 });
    try {
      const res = await call('POST', '/admin/clients', { on: small, body: { ...metadata, client_name: 'x'.repeat(2000) } });
      expectBadRequest(res, /too large/, 413);
    } finally {
      await small.close();
    }
  });
});

describe('GET /admin/clients', () => {
  it('pages with limit and after, and never shows secrets or digests', async () => {
    const created: Reply[] = [];
    for (let i = 0; i < 3; i++) created.push(await createClient({ client_name: `c${i}` }));
    const ids = created.map((r) => r.json.client_id as string).sort();
    const p1 = await call('GET', '/admin/clients?limit=2');
    expect(p1.status).toBe(200);
    expect(p1.json.clients.map((c: { client_id: string }) => c.client_id)).toEqual(ids.slice(0, 2));
    expect(p1.json.next).toBe(ids[1]);
    const p2 = await call('GET', `/admin/clients?limit=2&after=${encodeURIComponent(p1.json.next)}`);
    expect(p2.json).toEqual({ clients: [expect.objectContaining({ client_id: ids[2] })], next: null });
    const all = await call('GET', '/admin/clients');
    expect(all.json.clients).toHaveLength(3);
    for (const c of all.json.clients) {
      expect(c).not.toHaveProperty('client_secret');
      expect(c).not.toHaveProperty('secrets');
    }
    for (const r of created) {
      expect(all.body).not.toContain(r.json.client_secret);
      for (const s of store.rows.get(r.json.client_id)!.secrets) expect(all.body).not.toContain(s.digest);
    }
  });

  it('validates the query', async () => {
    expectBadRequest(await call('GET', '/admin/clients?limit=0'), /limit must be a whole number between 1 and 1000/);
    expectBadRequest(await call('GET', '/admin/clients?limit=1001'), /limit must be/);
    expectBadRequest(await call('GET', '/admin/clients?limit=ten'), /limit must be/);
    expectBadRequest(await call('GET', '/admin/clients?limit=-1'), /limit must be/);
    expectBadRequest(await call('GET', '/admin/clients?limit=1&limit=2'), /limit must appear once/);
    expectBadRequest(await call('GET', '/admin/clients?after='), /after must be a client_id/);
    expectBadRequest(await call('GET', '/admin/clients?page=2'), /Unknown query parameter "page" \(allowed: limit, after\)/);
  });
});

describe('/admin/clients/:id', () => {
  it('GET shows the client without secrets; unknown ids are 404', async () => {
    const created = await createClient();
    const id = created.json.client_id as string;
    const res = await call('GET', `/admin/clients/${id}`);
    expect(res.status).toBe(200);
    const { client_secret: _s, client_secret_expires_at: _e, ...rest } = created.json;
    expect(res.json).toEqual(rest);
    expect(res.body).not.toContain(store.rows.get(id)!.secrets[0]!.digest);
    const missing = await call('GET', '/admin/clients/cl_missing');
    expect(missing.status).toBe(404);
    expect(missing.json).toEqual({ error: 'not_found', message: 'Client "cl_missing" not found' });
    expectBadRequest(await call('GET', `/admin/clients/${id}?x=1`), /Unknown query parameter "x"/);
    expect((await call('GET', `/admin/clients/${'x'.repeat(100)}`)).status).toBe(404);
  });

  it('PATCH updates, validates and issues a secret when switching to a secret method', async () => {
    const jwks = { keys: [keyPair('ec').publicJwk] };
    const created = await createClient({ token_endpoint_auth_method: 'private_key_jwt', jwks });
    const id = created.json.client_id as string;
    now = T0 + 60_000;
    const res = await call('PATCH', `/admin/clients/${id}`, { body: { client_name: 'renamed', default_audience: [API] } });
    expect(res.status).toBe(200);
    expect(res.json).toMatchObject({ client_name: 'renamed', default_audience: [API], updated_at: (T0 + 60_000) / 1000 });
    expect(res.json).not.toHaveProperty('client_secret');
    expectBadRequest(await call('PATCH', `/admin/clients/${id}`, { body: { default_scope: 'admin' } }), /default_scope "admin" is not in scope/);
    expectBadRequest(await call('PATCH', `/admin/clients/${id}`, { body: { audience: [] } }), /audience is required/);
    expectBadRequest(await call('PATCH', `/admin/clients/${id}`, { body: { client_secret: 'x' } }), /client_secret cannot be chosen/);
    expectBadRequest(await call('PATCH', `/admin/clients/${id}`, { body: { jwks: null } }), /jwks with at least one public key is required/);
    expectBadRequest(await call('PATCH', `/admin/clients/${id}`, {}), /must be a JSON object/);
    const switched = await call('PATCH', `/admin/clients/${id}`, { body: { token_endpoint_auth_method: 'client_secret_basic' } });
    expect(switched.status).toBe(200);
    expect(switched.json).toMatchObject({ token_endpoint_auth_method: 'client_secret_basic', jwks: null, client_secret: expect.stringMatching(/^m2m_cs_/), client_secret_expires_at: 0 });
    expect(verifyClientSecret(store.rows.get(id), switched.json.client_secret, now)).toBe(true);
    expect((await call('PATCH', '/admin/clients/cl_missing', { body: { client_name: 'x' } })).status).toBe(404);
  });

  it('DELETE answers 204, then the client is gone', async () => {
    const id = (await createClient()).json.client_id as string;
    const res = await call('DELETE', `/admin/clients/${id}`);
    expect(res.status).toBe(204);
    expect(res.body).toBe('');
    expect((await call('GET', `/admin/clients/${id}`)).status).toBe(404);
    expect((await call('DELETE', `/admin/clients/${id}`)).status).toBe(404);
    expect(named('client.deleted')).toEqual([{ clientId: id, ip: '127.0.0.1', requestId: expect.any(String) }]);
  });

  it('POST /secret rotates with the default or a given grace period', async () => {
    const created = await createClient();
    const id = created.json.client_id as string;
    const first = created.json.client_secret as string;
    now = T0 + 1000;
    const rotated = await call('POST', `/admin/clients/${id}/secret`);
    expect(rotated.status).toBe(200);
    expect(rotated.json).toMatchObject({ client_id: id, client_secret: expect.stringMatching(/^m2m_cs_/), client_secret_expires_at: 0, previous_secret_expires_at: (T0 + 1000) / 1000 + 3600 });
    expect(verifyClientSecret(store.rows.get(id), first, now)).toBe(true);
    const again = await call('POST', `/admin/clients/${id}/secret`, { body: { grace_period: 0 } });
    expect(again.json.previous_secret_expires_at).toBe((T0 + 1000) / 1000);
    const row = store.rows.get(id)!;
    expect(verifyClientSecret(row, rotated.json.client_secret, now)).toBe(false);
    expect(verifyClientSecret(row, again.json.client_secret, now)).toBe(true);
    // Grace 0 ends every earlier secret, the one still in its grace period too.
    expect(verifyClientSecret(row, first, now)).toBe(false);
    expect(row.secrets).toHaveLength(1);
    expectBadRequest(await call('POST', `/admin/clients/${id}/secret`, { body: { grace_period: '10' } }), /grace_period must be a non-negative whole number of seconds/);
    expectBadRequest(await call('POST', `/admin/clients/${id}/secret`, { body: { grace_period: -5 } }), /grace_period must be a non-negative/);
    expectBadRequest(await call('POST', `/admin/clients/${id}/secret`, { body: { grace_period: 1e12 } }), /grace_period must be a whole number of seconds between 0 and/);
    expectBadRequest(await call('POST', `/admin/clients/${id}/secret`, { body: { grace: 5 } }), /Unknown field "grace" \(allowed: grace_period\)/);
    expectBadRequest(await call('POST', `/admin/clients/${id}/secret`, { raw: '[1]' }), /must be a JSON object/);
    expect((await call('POST', '/admin/clients/cl_missing/secret')).status).toBe(404);
    const pk = await createClient({ token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [keyPair('ec').publicJwk] } });
    expectBadRequest(await call('POST', `/admin/clients/${pk.json.client_id}/secret`), /has no secret to rotate/);
  });

  it('POST /revoke-tokens sets the kill switch', async () => {
    const id = (await createClient()).json.client_id as string;
    now = T0 + 5000;
    const res = await call('POST', `/admin/clients/${id}/revoke-tokens`);
    expect(res.status).toBe(200);
    expect(res.json.tokens_revoked_at).toBe((T0 + 5000) / 1000);
    expect(res.json).not.toHaveProperty('client_secret');
    expect(store.rows.get(id)!.tokensRevokedAt).toBe(T0 + 5000);
    expect((await call('POST', '/admin/clients/cl_missing/revoke-tokens')).status).toBe(404);
    expectBadRequest(await call('POST', `/admin/clients/${id}/revoke-tokens`, { body: { before: 1 } }), /takes no body members; got "before"/);
  });

  it('POST /disable and /enable flip the flag', async () => {
    const id = (await createClient()).json.client_id as string;
    const off = await call('POST', `/admin/clients/${id}/disable`, { body: {} });
    expect(off.status).toBe(200);
    expect(off.json.disabled).toBe(true);
    expect(store.rows.get(id)!.disabled).toBe(true);
    const on = await call('POST', `/admin/clients/${id}/enable`);
    expect(on.json.disabled).toBe(false);
    expect(store.rows.get(id)!.disabled).toBe(false);
    expect((await call('POST', '/admin/clients/cl_missing/disable')).status).toBe(404);
    expectBadRequest(await call('POST', `/admin/clients/${id}/enable`, { body: { now: true } }), /takes no body members/);
  });

  it('unknown admin paths and methods are 404 JSON', async () => {
    const res = await call('PUT', '/admin/clients');
    expect(res.status).toBe(404);
    expect(res.json).toEqual({ error: 'not_found', message: 'No admin endpoint PUT /admin/clients' });
  });
});

describe('keys', () => {
  it('GET /admin/keys lists keys without private material', async () => {
    const res = await call('GET', '/admin/keys');
    expect(res.status).toBe(200);
    expect(res.json).toEqual({
      keys: [{ kid: 'k1', alg: 'ES256', status: 'active', created_at: Math.floor((T0 - 7_200_500) / 1000), activates_at: (T0 - 3_600_000) / 1000, retired_at: null, expires_at: null, revoked_at: null }],
    });
    expect(res.body).not.toContain('SECRET-KEY-MATERIAL');
    expect(res.body).not.toContain('PRIVATE-D');
    expectBadRequest(await call('GET', '/admin/keys?all=1'), /Unknown query parameter "all"/);
  });

  it('POST /admin/keys/rotate returns the new key and the list', async () => {
    const res = await call('POST', '/admin/keys/rotate');
    expect(res.status).toBe(200);
    expect(res.json.key).toEqual({ kid: 'k2', alg: 'ES256', status: 'pending', created_at: T0 / 1000, activates_at: T0 / 1000 + 3600, retired_at: null, expires_at: null, revoked_at: null });
    expect(res.json.keys.map((k: { kid: string }) => k.kid)).toEqual(['k2', 'k1']);
    expect(res.body).not.toContain('SECRET-KEY-MATERIAL');
    expectBadRequest(await call('POST', '/admin/keys/rotate', { body: { alg: 'RS256' } }), /Unknown field "alg" \(allowed: now\)/);
  });

  it('POST /admin/keys/rotate with {"now": true} asks for a key that signs at once', async () => {
    let asked: unknown = 'not called';
    const original = rotateImpl;
    rotateImpl = async (opts) => {
      asked = opts;
      return original(opts);
    };
    const res = await call('POST', '/admin/keys/rotate', { body: { now: true } });
    expect(res.status).toBe(200);
    expect(asked).toEqual({ activateAt: 0 });
    expect(res.json.key).toMatchObject({ kid: 'k2', status: 'active', activates_at: T0 / 1000 });
    asked = 'not called';
    expect((await call('POST', '/admin/keys/rotate', { body: { now: false } })).status).toBe(200);
    expect(asked).toBeUndefined();
    expectBadRequest(await call('POST', '/admin/keys/rotate', { body: { now: 'yes' } }), /now must be true or false, got a string/);
    expectBadRequest(await call('POST', '/admin/keys/rotate', { body: { now: 1 } }), /now must be true or false/);
  });

  it('POST /admin/keys/{kid}/revoke revokes a key that does not sign, with the audit context', async () => {
    await call('POST', '/admin/keys/rotate');
    const res = await call('POST', '/admin/keys/k2/revoke');
    expect(res.status).toBe(200);
    expect(res.json.key).toEqual({
      kid: 'k2', alg: 'ES256', status: 'revoked', created_at: T0 / 1000, activates_at: T0 / 1000 + 3600,
      retired_at: T0 / 1000, expires_at: T0 / 1000 + 86_400, revoked_at: T0 / 1000,
    });
    expect(res.json.replacement).toBeNull();
    expect(res.json.keys.map((k: { kid: string; status: string }) => [k.kid, k.status])).toEqual([['k2', 'revoked'], ['k1', 'active']]);
    expect(res.body).not.toContain('SECRET-KEY-MATERIAL');
    expect(named('key.revoked')).toEqual([{ kid: 'k2', ip: '127.0.0.1', requestId: expect.any(String) }]);
  });

  it('POST /admin/keys/{kid}/revoke of the signing key: 409 without rotate, a replacement with it', async () => {
    const refused = await call('POST', '/admin/keys/k1/revoke');
    expect(refused.status).toBe(409);
    expect(refused.json.error).toBe('conflict');
    expect(refused.json.message).toMatch(/is the key that signs tokens now.*\{"rotate": true\}.*--rotate/);
    const res = await call('POST', '/admin/keys/k1/revoke', { body: { rotate: true } });
    expect(res.status).toBe(200);
    expect(res.json.key).toMatchObject({ kid: 'k1', status: 'revoked', revoked_at: T0 / 1000 });
    expect(res.json.replacement).toMatchObject({ kid: 'k2', status: 'active', activates_at: T0 / 1000 });
  });

  it('POST /admin/keys/{kid}/revoke: 404 for an unknown kid, 400 for a bad body', async () => {
    const missing = await call('POST', '/admin/keys/k-unknown/revoke');
    expect(missing.status).toBe(404);
    expect(missing.json).toEqual({ error: 'not_found', message: 'Signing key "k-unknown" not found' });
    expect((await call('POST', `/admin/keys/${'k'.repeat(100)}/revoke`)).status).toBe(404);
    expectBadRequest(await call('POST', '/admin/keys/k1/revoke', { body: { rotate: 'true' } }), /rotate must be true or false/);
    expectBadRequest(await call('POST', '/admin/keys/k1/revoke', { body: { now: true } }), /Unknown field "now" \(allowed: rotate\)/);
    expect(named('key.revoked')).toEqual([]);
  });

  it('a failure of the server is a 500 that says nothing more', async () => {
    rotateImpl = async () => {
      throw new Error('KEK mismatch at /secret/path');
    };
    const res = await call('POST', '/admin/keys/rotate');
    expect(res.status).toBe(500);
    expect(res.json).toEqual({ error: 'server_error', message: 'The server encountered an unexpected condition' });
  });
});
