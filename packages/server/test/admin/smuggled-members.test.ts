// Issue 12 part 2: a private key member smuggled into a client's registered JWKS. Admin bodies with
// a "__proto__", "constructor" or "prototype" member at any depth are refused; a registered JWK is
// stored and served as a canonical public key built fresh, and any private or symmetric member
// anywhere in it is refused. A real server (SQLite in memory) through Fastify inject.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { randomUUID } from 'node:crypto';
import { CLIENT_ASSERTION_TYPE } from '../../src/ground/names.js';
import { keyPair } from '../clients/keys.js';
import { ORDERS, startTestServer, type TestServer } from '../helpers/server.js';

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer();
});
afterAll(() => t?.close());

async function admin(method: 'GET' | 'POST' | 'PATCH', url: string, raw?: string) {
  const res = await t.admin({ method, url, ...(raw !== undefined && { payload: raw, headers: { 'content-type': 'application/json' } }) });
  return { status: res.statusCode, body: res.body, json: JSON.parse(res.body || 'null') as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function clientCount(): Promise<number> {
  return (await admin('GET', '/admin/clients')).json.clients.length;
}

const base = { client_name: 'pk', scope: 'orders:read', audience: [ORDERS], token_endpoint_auth_method: 'private_key_jwt' };

/** `jwk` as JSON with `extra` spliced in as raw JSON members (so "__proto__" stays a member). */
function bodyWithKey(jwk: Record<string, unknown>, extra: string): string {
  const key = JSON.stringify(jwk).replace(/\}$/, `,${extra}}`);
  return JSON.stringify({ ...base, jwks: { keys: ['KEY'] } }).replace('"KEY"', key);
}

describe('the probe of the attack review', () => {
  it('refuses an EC JWK carrying "__proto__": {"d": ...} with 400, and stores nothing', async () => {
    const { publicJwk, privateJwk } = keyPair('ec');
    const before = await clientCount();
    const raw = bodyWithKey({ ...publicJwk, kid: 'k1' }, `"__proto__":{"d":${JSON.stringify(privateJwk.d)}}`);
    const res = await admin('POST', '/admin/clients', raw);
    expect(res.status, res.body).toBe(400);
    expect(res.json).toEqual({ error: 'invalid_request', message: expect.stringMatching(/member named "__proto__" \(at jwks\.keys\[0\]\.__proto__\)/) });
    expect(await clientCount()).toBe(before);
    expect(res.body).not.toContain(privateJwk.d);
  });
});

describe('admin bodies with reserved member names', () => {
  const cases: Array<[string, string, RegExp]> = [
    ['top level', '{"client_name":"a","constructor":{"name":"x"}}', /"constructor" \(at constructor\)/],
    ['inside an array', '{"client_name":"a","audience":[{"prototype":1}]}', /"prototype" \(at audience\[0\]\.prototype\)/],
    ['objects inside arrays inside objects', '{"jwks":{"keys":[{"kty":"EC","x5c":[{"a":{"__proto__":{}}}]}]}}', /"__proto__" \(at jwks\.keys\[0\]\.x5c\[0\]\.a\.__proto__\)/],
    ['a __proto__ that is not an object', '{"client_name":"a","__proto__":null}', /"__proto__" \(at __proto__\)/],
  ];
  for (const [what, raw, message] of cases) {
    it(`answers 400 for one ${what}, on create, update and an action`, async () => {
      const { clientId } = await t.client();
      for (const [method, url] of [['POST', '/admin/clients'], ['PATCH', `/admin/clients/${clientId}`], ['POST', `/admin/clients/${clientId}/secret`]] as const) {
        const res = await admin(method, url, raw);
        expect(res.status, `${method} ${url}: ${res.body}`).toBe(400);
        expect(res.json.error).toBe('invalid_request');
        expect(res.json.message).toMatch(message);
      }
    });
  }

  it('refuses a deeply nested body cleanly (no stack overflow, no 500)', async () => {
    const depth = 20_000;
    const res = await admin('POST', '/admin/clients', `${'['.repeat(depth)}{"constructor":1}${']'.repeat(depth)}`);
    expect(res.status, res.body.slice(0, 200)).toBe(400);
    expect(res.json.message).toMatch(/"constructor"/);
  });

  it('still accepts ordinary bodies, and members whose names merely contain the words', async () => {
    const res = await admin('POST', '/admin/clients', JSON.stringify({ client_name: 'constructor prototype __proto__', scope: 'prototype', audience: [ORDERS] }));
    expect(res.status, res.body).toBe(201);
  });
});

describe('registered keys are stored as canonical public keys', () => {
  it('keeps only the public members of each kty plus kid, alg and use; drops anything else', async () => {
    const ec = { ...keyPair('ec').publicJwk, kid: 'ec', alg: 'ES256', use: 'sig', key_ops: ['verify'], ext: true, x5c: ['MIIB'], note: 'x' };
    const rsa = { ...keyPair('rsa').publicJwk, kid: 'rsa', alg: 'PS256', extra: { nested: [1] } };
    const okp = { ...keyPair('ed25519').publicJwk, kid: 'okp' };
    const res = await admin('POST', '/admin/clients', JSON.stringify({ ...base, jwks: { keys: [ec, rsa, okp] } }));
    expect(res.status, res.body).toBe(201);
    const expected = [
      { kty: 'EC', crv: 'P-256', x: ec.x, y: ec.y, kid: 'ec', alg: 'ES256', use: 'sig' },
      { kty: 'RSA', n: rsa.n, e: rsa.e, kid: 'rsa', alg: 'PS256' },
      { kty: 'OKP', crv: 'Ed25519', x: okp.x, kid: 'okp' },
    ];
    expect(res.json.jwks.keys).toStrictEqual(expected);
    // What is stored, not only what the answer shows.
    const stored = await t.server.storage.clients.getClient(res.json.client_id);
    expect(stored!.jwks!.keys).toStrictEqual(expected);
    expect((await admin('GET', `/admin/clients/${res.json.client_id}`)).json.jwks.keys).toStrictEqual(expected);
  });

  it('refuses a private or symmetric member anywhere in a key, naming it', async () => {
    const { publicJwk, privateJwk } = keyPair('ec');
    const rsaPrivate = keyPair('rsa').privateJwk;
    const cases: Array<[unknown, RegExp]> = [
      [privateJwk, /jwks\.keys\[0\] contains the private key member "d"/],
      [{ ...publicJwk, ext: { d: privateJwk.d } }, /private key member "ext\.d"/],
      [{ ...publicJwk, x5c: [{ p: rsaPrivate.p }] }, /private key member "x5c\[0\]\.p"/],
      [{ ...publicJwk, k: 'c2VjcmV0' }, /private key member "k"/],
      [{ ...publicJwk, oth: [] }, /private key member "oth"/],
      [{ kty: 'oct', k: 'c2VjcmV0' }, /symmetric key/],
    ];
    const before = await clientCount();
    for (const [key, message] of cases) {
      const res = await admin('POST', '/admin/clients', JSON.stringify({ ...base, jwks: { keys: [key] } }));
      expect(res.status, res.body).toBe(400);
      expect(res.json.message).toMatch(message);
    }
    expect(await clientCount()).toBe(before);
  });

  it('the registry itself (below the admin parser) refuses a "__proto__" member holding d', async () => {
    const { publicJwk, privateJwk } = keyPair('ec');
    const key = JSON.parse(`${JSON.stringify(publicJwk).slice(0, -1)},"__proto__":{"d":${JSON.stringify(privateJwk.d)}}}`) as Record<string, unknown>;
    expect(Object.keys(key)).toContain('__proto__');
    await expect(t.server.clients.create({ ...base, jwks: { keys: [key] } } as never)).rejects.toThrow(/private key member "__proto__\.d"/);
  });

  it('checks the public members it keeps', async () => {
    const { publicJwk } = keyPair('ec');
    for (const [key, message] of [
      [{ ...publicJwk, x: 12 }, /x must be a base64url string/],
      [{ ...publicJwk, y: 'not base64url!' }, /y must be a base64url string/],
      [{ kty: 'RSA', e: 'AQAB' }, /n must be a base64url string/],
    ] as const) {
      const res = await admin('POST', '/admin/clients', JSON.stringify({ ...base, jwks: { keys: [key] } }));
      expect(res.status, res.body).toBe(400);
      expect(res.json.message).toMatch(message);
    }
  });

  it('a record stored before this is served, and verifies assertions, as its canonical public keys', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'old' };
    const created = await admin('POST', '/admin/clients', JSON.stringify({ ...base, jwks: { keys: [jwk] } }));
    expect(created.status, created.body).toBe(201);
    const id = created.json.client_id as string;
    // As an earlier version stored it: the key as received, with a member hidden under "__proto__".
    const smuggled = JSON.parse(`${JSON.stringify(jwk).slice(0, -1)},"__proto__":{"d":"c2VjcmV0LXNjYWxhcg"},"extra":1}`) as Record<string, unknown>;
    const record = (await t.server.storage.clients.getClient(id))!;
    expect(await t.server.storage.clients.updateClient({ ...record, jwks: { keys: [smuggled as never] } })).toBe(true);
    t.server.clients.invalidate(id);
    expect(Object.keys((await t.server.storage.clients.getClient(id))!.jwks!.keys[0]!)).toContain('__proto__');

    const served = await admin('GET', `/admin/clients/${id}`);
    expect(served.body).not.toContain('__proto__');
    expect(served.body).not.toContain('c2VjcmV0LXNjYWxhcg');
    expect(served.json.jwks.keys).toStrictEqual([{ kty: 'EC', crv: 'P-256', x: jwk.x, y: jwk.y, kid: 'old' }]);

    const assertion = await new SignJWT({ jti: randomUUID() }).setProtectedHeader({ alg: 'ES256', kid: 'old' })
      .setIssuer(id).setSubject(id).setAudience(t.config.issuer).setIssuedAt().setExpirationTime('2m').sign(privateKey);
    const res = await t.post('/oauth2/token', { grant_type: 'client_credentials', client_id: id, client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: assertion });
    expect(res.statusCode, res.body).toBe(200);
  });
});
