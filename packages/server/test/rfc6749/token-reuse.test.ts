// Per-client token reuse (issue 3) through Fastify inject: a client with token_reuse on gets its
// last token back for the same scope and audience while more than half its lifetime is left.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BILLING, ORDERS, basic, startTestServer, testClock, type TestServer } from '../helpers/server.js';

const TTL = 600;
// A whole second, so remaining lifetimes are whole seconds too.
const clock = testClock(1_800_000_000_000);

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer({}, { clock });
});
afterAll(() => t.close());

interface Issued {
  token: string;
  expiresIn: number;
  scope: string | undefined;
}

async function token(id: string, secret: string, form: Record<string, string | string[]> = {}): Promise<Issued> {
  const res = await t.token(id, secret, form);
  expect(res.statusCode, res.body).toBe(200);
  expect(res.headers['cache-control']).toBe('no-store');
  const body = res.json();
  return { token: body.access_token, expiresIn: body.expires_in, scope: body.scope };
}

function reuseClient(extra: Record<string, unknown> = {}) {
  return t.client({ audience: [ORDERS, BILLING], access_token_ttl: TTL, token_reuse: true, ...extra });
}

describe('token reuse off (the default)', () => {
  it('signs a new token for every request', async () => {
    const { clientId, clientSecret } = await t.client({ access_token_ttl: TTL });
    expect((await t.server.clients.read(clientId)).tokenReuse).toBe(false);
    const a = await token(clientId, clientSecret);
    const b = await token(clientId, clientSecret);
    expect(b.token).not.toBe(a.token);
    expect(b.expiresIn).toBe(TTL);
  });
});

describe('token reuse on', () => {
  it('answers the same scope and audience with the same token and its remaining lifetime', async () => {
    const { clientId, clientSecret } = await reuseClient();
    const a = await token(clientId, clientSecret, { scope: 'orders:read', resource: ORDERS });
    expect(a.expiresIn).toBe(TTL);
    clock.advance(100_000);
    const b = await token(clientId, clientSecret, { scope: 'orders:read', resource: ORDERS });
    expect(b.token).toBe(a.token);
    expect(b.expiresIn).toBe(TTL - 100);
    expect(b.scope).toBe('orders:read');
  });

  it('signs a new token for a different scope or audience, and keeps each one', async () => {
    const { clientId, clientSecret } = await reuseClient();
    const read = await token(clientId, clientSecret, { scope: 'orders:read', resource: ORDERS });
    const write = await token(clientId, clientSecret, { scope: 'orders:write', resource: ORDERS });
    const billing = await token(clientId, clientSecret, { scope: 'orders:read', resource: BILLING });
    expect(new Set([read.token, write.token, billing.token]).size).toBe(3);
    expect((await token(clientId, clientSecret, { scope: 'orders:read', resource: ORDERS })).token).toBe(read.token);
    expect((await token(clientId, clientSecret, { scope: 'orders:write', resource: ORDERS })).token).toBe(write.token);
    expect((await token(clientId, clientSecret, { scope: 'orders:read', resource: BILLING })).token).toBe(billing.token);
  });

  it('signs a new token once half the lifetime is gone', async () => {
    const { clientId, clientSecret } = await reuseClient();
    const a = await token(clientId, clientSecret);
    clock.advance((TTL / 2 - 1) * 1000);
    const b = await token(clientId, clientSecret);
    expect(b.token).toBe(a.token);
    expect(b.expiresIn).toBe(TTL / 2 + 1);
    clock.advance(1000);
    const c = await token(clientId, clientSecret);
    expect(c.token).not.toBe(a.token);
    expect(c.expiresIn).toBe(TTL);
    expect((await token(clientId, clientSecret)).token).toBe(c.token);
  });

  it('never hands out a token revoked at /oauth2/revoke', async () => {
    const { clientId, clientSecret } = await reuseClient();
    const a = await token(clientId, clientSecret);
    const revoked = await t.post('/oauth2/revoke', { token: a.token }, { authorization: basic(clientId, clientSecret) });
    expect(revoked.statusCode).toBe(200);
    const b = await token(clientId, clientSecret);
    expect(b.token).not.toBe(a.token);
    expect(b.expiresIn).toBe(TTL);
    expect((await token(clientId, clientSecret)).token).toBe(b.token);
  });

  it('signs a new token after the kill switch', async () => {
    const { clientId, clientSecret } = await reuseClient();
    const a = await token(clientId, clientSecret);
    clock.advance(1000);
    const res = await t.admin({ method: 'POST', url: `/admin/clients/${clientId}/revoke-tokens` });
    expect(res.statusCode).toBe(200);
    clock.advance(1000);
    const b = await token(clientId, clientSecret);
    expect(b.token).not.toBe(a.token);
    expect(b.expiresIn).toBe(TTL);
  });

  it('signs a new token after an update, or a disable and enable, of the client', async () => {
    const { clientId, clientSecret } = await reuseClient();
    const a = await token(clientId, clientSecret);
    expect((await token(clientId, clientSecret)).token).toBe(a.token);
    const patched = await t.admin({ method: 'PATCH', url: `/admin/clients/${clientId}`, payload: { client_name: 'renamed' } });
    expect(patched.statusCode).toBe(200);
    const b = await token(clientId, clientSecret);
    expect(b.token).not.toBe(a.token);
    expect((await token(clientId, clientSecret)).token).toBe(b.token);

    expect((await t.admin({ method: 'POST', url: `/admin/clients/${clientId}/disable` })).statusCode).toBe(200);
    expect((await t.token(clientId, clientSecret)).statusCode).toBe(401);
    expect((await t.admin({ method: 'POST', url: `/admin/clients/${clientId}/enable` })).statusCode).toBe(200);
    const c = await token(clientId, clientSecret);
    expect(c.token).not.toBe(b.token);
  });

  it('stops reusing when token_reuse is turned off', async () => {
    const { clientId, clientSecret } = await reuseClient();
    const a = await token(clientId, clientSecret);
    await t.server.clients.update(clientId, { token_reuse: false });
    const b = await token(clientId, clientSecret);
    const c = await token(clientId, clientSecret);
    expect(new Set([a.token, b.token, c.token]).size).toBe(3);
  });
});

describe('token_reuse in the admin API', () => {
  it('is accepted on create and update, returned, and validated', async () => {
    const created = await t.admin({
      method: 'POST', url: '/admin/clients',
      payload: { client_name: 'reuse', scope: 'orders:read', audience: [ORDERS], token_reuse: true },
    });
    expect(created.statusCode).toBe(201);
    const id = created.json().client_id as string;
    expect(created.json().token_reuse).toBe(true);
    expect((await t.admin({ method: 'GET', url: `/admin/clients/${id}` })).json().token_reuse).toBe(true);

    const off = await t.admin({ method: 'PATCH', url: `/admin/clients/${id}`, payload: { token_reuse: false } });
    expect(off.statusCode).toBe(200);
    expect(off.json().token_reuse).toBe(false);

    const bad = await t.admin({ method: 'PATCH', url: `/admin/clients/${id}`, payload: { token_reuse: 'true' } });
    expect(bad.statusCode).toBe(400);
    expect(JSON.stringify(bad.json())).toMatch(/token_reuse must be true or false/);

    const plain = await t.admin({ method: 'POST', url: '/admin/clients', payload: { client_name: 'plain', scope: 'a', audience: [ORDERS] } });
    expect(plain.json().token_reuse).toBe(false);
  });
});
