// Custom claims per client (issue 16): set through the admin API, refused when reserved, oversized
// or not JSON, counted in the default token's size, copied into every access token of the client
// and shown by introspection.

import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_CLAIMS_JSON } from '../../src/clients/metadata.js';
import { RESERVED_CLAIM_NAMES } from '../../src/ground/names.js';
import { ORDERS, basic, startTestServer, type TestServer } from '../helpers/server.js';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t.close());

const base = { client_name: 'claims', scope: 'orders:read', audience: [ORDERS] };

function create(body: unknown) {
  return t.admin({ method: 'POST', url: '/admin/clients', payload: body as object });
}

function patch(id: string, body: unknown) {
  return t.admin({ method: 'PATCH', url: `/admin/clients/${id}`, payload: body as object });
}

async function refused(res: Awaited<ReturnType<typeof create>>, pattern: RegExp): Promise<void> {
  expect(res.statusCode).toBe(400);
  expect(res.json().error).toBe('invalid_request');
  expect(res.json().message).toMatch(pattern);
}

async function token(clientId: string, secret: string): Promise<string> {
  const res = await t.token(clientId, secret);
  expect(res.statusCode).toBe(200);
  return res.json().access_token as string;
}

describe('setting claims', () => {
  it('stores them with the client and shows them in the wire form; {} when none', async () => {
    const claims = { tenant: 'acme', roles: ['reader', 'auditor'], limits: { orders: 10 }, beta: true, quota: 2.5, none: null };
    const res = await create({ ...base, claims });
    expect(res.statusCode).toBe(201);
    expect(res.json().claims).toStrictEqual(claims);
    const got = await t.admin({ method: 'GET', url: `/admin/clients/${res.json().client_id}` });
    expect(JSON.stringify(got.json().claims)).toBe(JSON.stringify(claims));

    const plain = await create(base);
    expect(plain.json().claims).toStrictEqual({});
  });

  it('refuses reserved names with a 400 that names each of them, and writes nothing', async () => {
    const before = (await t.server.clients.list({ limit: 1000 })).clients.length;
    await refused(await create({ ...base, claims: { tenant: 'a', sub: 'x', scope: 'admin', active: true } }),
      /claims may not set "sub", "scope", "active": these names are set by the server or reserved/);
    for (const name of RESERVED_CLAIM_NAMES) {
      await refused(await create({ ...base, claims: { [name]: 1 } }), new RegExp(`claims may not set "${name}": this name is`));
    }
    expect((await t.server.clients.list({ limit: 1000 })).clients.length).toBe(before);
  });

  it('refuses what is not a JSON object of bounded names and values', async () => {
    await refused(await create({ ...base, claims: ['tenant'] }), /claims must be a JSON object of claim names to JSON values, got an array/);
    await refused(await create({ ...base, claims: 'tenant=acme' }), /claims must be a JSON object.*got a string/);
    await refused(await create({ ...base, claims: { '': 1 } }), /claims names must not be empty/);
    await refused(await create({ ...base, claims: { ['n'.repeat(65)]: 1 } }), /claims names must be at most 64 characters/);
    await refused(await create({ ...base, claims: { 'a\nb': 1 } }), /must not contain control characters/);
    await refused(await create({ ...base, claims: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`c${i}`, i])) }),
      /claims must have at most 50 names/);
    await refused(await create({ ...base, claims: { blob: 'x'.repeat(MAX_CLAIMS_JSON) } }), /claims take 4107 bytes of JSON, more than the 4096 allowed/);
    // Multi-byte characters count as the bytes a token carries.
    await refused(await create({ ...base, claims: { blob: 'é'.repeat(2100) } }), /claims take 42\d\d bytes/);
    await refused(await create({ ...base, claims: { deep: [[[[[[[[[1]]]]]]]]] } }), /claims.deep nests arrays and objects more than 8 deep/);
    await refused(await create({ ...base, claims: { nul: 'a\u0000b' } }), /claims.nul must not contain the NUL character/);
    await refused(await create({ ...base, claims: { nul: { 'a\u0000': 1 } } }), /claims.nul must not contain the NUL character/);
    // JSON.parse reads 1e400 as Infinity, which JSON cannot write back.
    const huge = await t.admin({
      method: 'POST', url: '/admin/clients', headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(base).replace(/}$/, ',"claims":{"n":1e400}}'),
    });
    await refused(huge, /claims.n holds a number that does not fit in JSON/);
    const proto = await t.admin({
      method: 'POST', url: '/admin/clients', headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(base).replace(/}$/, ',"claims":{"__proto__":{"x":1}}}'),
    });
    // The admin API refuses the member anywhere in a body; the registry refuses it as a claim name too.
    await refused(proto, /The request body has a member named "__proto__"/);
    await expect(t.server.clients.create({ ...base, claims: JSON.parse('{"__proto__":{"x":1}}') } as never))
      .rejects.toThrow('claims may not set "__proto__"');
  });

  it('counts the claims in the default token size when they are set, on create and on update', async () => {
    // Audiences of 1,900 characters: four of them and 3 KB of claims pass apart, not together.
    const audience = Array.from({ length: 4 }, (_, i) => `https://api${i}.example.com/${'p'.repeat(1900)}`);
    const claims = { blob: 'x'.repeat(3000) };
    await refused(await create({ ...base, audience, claims }),
      /claims take 3011 bytes and a token request that names no scope and no resource gets every scope and every audience, which take \d+: together more than the 10000/);
    const ok = await create({ ...base, audience, claims, default_audience: audience.slice(0, 1) });
    expect(ok.statusCode).toBe(201);
    const id = ok.json().client_id as string;
    // The token that fits is issued with its claims.
    const payload = decodeJwt(await token(id, ok.json().client_secret));
    expect(payload.blob).toBe(claims.blob);
    // An update that would make the default token too long is refused, and changes nothing.
    await refused(await patch(id, { default_audience: null }), /claims take 3011 bytes/);
    const small = await create({ ...base, audience });
    await refused(await patch(small.json().client_id, { claims }), /claims take 3011 bytes/);
    expect((await t.server.clients.read(small.json().client_id)).claims).toStrictEqual({});
  });
});

describe('tokens of a client with claims', () => {
  it('carry them after the RFC 9068 claims, on every request of a connection, and introspection shows them', async () => {
    const res = await create({ ...base, claims: { tenant: 'acme', roles: ['reader'] } });
    const { client_id: id, client_secret: secret } = res.json();
    const first = await token(id, secret);
    const second = await token(id, secret);
    for (const tok of [first, second]) {
      const payload = decodeJwt(tok);
      expect(Object.keys(payload)).toStrictEqual(['iss', 'sub', 'aud', 'client_id', 'scope', 'tenant', 'roles', 'exp', 'iat', 'jti']);
      expect(payload).toMatchObject({ sub: id, client_id: id, scope: 'orders:read', tenant: 'acme', roles: ['reader'] });
    }
    const intro = await t.post('/oauth2/introspect', { token: first }, { authorization: basic(id, secret) });
    expect(intro.statusCode).toBe(200);
    expect(intro.json()).toMatchObject({ active: true, client_id: id, tenant: 'acme', roles: ['reader'], token_type: 'Bearer' });
  });

  it('take a change of the claims at the next token; tokens issued before keep theirs', async () => {
    const res = await create({ ...base, claims: { tenant: 'acme' } });
    const { client_id: id, client_secret: secret } = res.json();
    const before = await token(id, secret);
    expect((await patch(id, { claims: { tenant: 'globex', team: 'billing' } })).statusCode).toBe(200);
    expect(decodeJwt(await token(id, secret))).toMatchObject({ tenant: 'globex', team: 'billing' });
    expect(decodeJwt(before).tenant).toBe('acme');
    const intro = await t.post('/oauth2/introspect', { token: before }, { authorization: basic(id, secret) });
    expect(intro.json().tenant).toBe('acme');
    expect(intro.json().team).toBeUndefined();

    // null and {} both clear them.
    expect((await patch(id, { claims: null })).json().claims).toStrictEqual({});
    const cleared = decodeJwt(await token(id, secret));
    expect(cleared.tenant).toBeUndefined();
    expect(Object.keys(cleared)).toStrictEqual(['iss', 'sub', 'aud', 'client_id', 'scope', 'exp', 'iat', 'jti']);
  });

  it('with token reuse: a change of the claims ends the reuse of a token carrying the old ones', async () => {
    const res = await create({ ...base, claims: { tenant: 'acme' }, token_reuse: true });
    const { client_id: id, client_secret: secret } = res.json();
    const first = await token(id, secret);
    expect(await token(id, secret)).toBe(first);
    await patch(id, { claims: { tenant: 'globex' } });
    const next = await token(id, secret);
    expect(next).not.toBe(first);
    expect(decodeJwt(next).tenant).toBe('globex');
  });

  it('an update that repeats the claims changes nothing', async () => {
    const res = await create({ ...base, claims: { a: 1, b: [2] } });
    const id = res.json().client_id as string;
    const updatedAt = (await t.server.clients.read(id)).updatedAt;
    t.clock.advance(5000);
    await patch(id, { claims: { a: 1, b: [2] } });
    expect((await t.server.clients.read(id)).updatedAt).toBe(updatedAt);
  });
});
