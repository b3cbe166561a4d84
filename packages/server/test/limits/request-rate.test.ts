// Per-client request rates at the token endpoint (M2M_AUTH_TOKEN_RATE_LIMIT, a client's
// rate_limit) and at introspection (M2M_AUTH_INTROSPECTION_RATE_LIMIT), with an injected clock.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, startTestServer, type TestServer } from '../helpers/server.js';
import { expectTooMany } from './helpers.js';

describe('token request rate per client', () => {
  let t: TestServer;

  beforeAll(async () => {
    // 2 a second with a burst of 2 s: 4 at once, then one every 500 ms.
    t = await startTestServer({ tokenRateLimit: 2, rateLimitBurst: 2 });
  });
  afterAll(() => t.close());

  it('answers 429 with Retry-After past the burst, and serves again once time has passed', async () => {
    const c = await t.client();
    for (let i = 0; i < 4; i++) expect((await t.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
    const refused = await t.token(c.clientId, c.clientSecret);
    expectTooMany(refused, 1);

    // A refused request is not counted: 500 ms later exactly one more fits.
    t.clock.advance(500);
    expect((await t.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
    expectTooMany(await t.token(c.clientId, c.clientSecret), 1);

    // After 2 s of quiet the whole burst is back.
    t.clock.advance(2000);
    for (let i = 0; i < 4; i++) expect((await t.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
    expectTooMany(await t.token(c.clientId, c.clientSecret), 1);
    t.clock.advance(5000);
  });

  it('counts each client on its own', async () => {
    const a = await t.client();
    const b = await t.client();
    for (let i = 0; i < 4; i++) expect((await t.token(a.clientId, a.clientSecret)).statusCode).toBe(200);
    expectTooMany(await t.token(a.clientId, a.clientSecret), 1);
    expect((await t.token(b.clientId, b.clientSecret)).statusCode).toBe(200);
    t.clock.advance(5000);
  });

  it('counts requests with client_secret_post and private token errors alike, but not failed authentication', async () => {
    const c = await t.client({ token_endpoint_auth_method: 'client_secret_post' });
    const post = (form: Record<string, string> = {}) =>
      t.post('/oauth2/token', { grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret, ...form });
    // Wrong secrets do not spend the client's rate (they meet the failure throttle instead).
    expect((await t.post('/oauth2/token', { grant_type: 'client_credentials', client_id: c.clientId, client_secret: 'wrong' })).statusCode).toBe(401);
    expect((await post()).statusCode).toBe(200);
    expect((await post({ scope: 'not-allowed' })).statusCode).toBe(400);
    expect((await post()).statusCode).toBe(200);
    expect((await post()).statusCode).toBe(200);
    expectTooMany(await post(), 1);
    t.clock.advance(5000);
  });

  it('uses a client\'s rate_limit instead of the default, and 0 means no limit', async () => {
    // 0.25 a second: a burst of max(1, 0.25 × 2) = 1, then one every 4 s.
    const slow = await t.client({ rate_limit: 0.25 });
    expect((await t.token(slow.clientId, slow.clientSecret)).statusCode).toBe(200);
    expectTooMany(await t.token(slow.clientId, slow.clientSecret), 4);
    t.clock.advance(3000);
    expectTooMany(await t.token(slow.clientId, slow.clientSecret), 1);
    t.clock.advance(1000);
    expect((await t.token(slow.clientId, slow.clientSecret)).statusCode).toBe(200);

    const fast = await t.client({ rate_limit: 10 });
    for (let i = 0; i < 20; i++) expect((await t.token(fast.clientId, fast.clientSecret)).statusCode).toBe(200);
    expectTooMany(await t.token(fast.clientId, fast.clientSecret), 1);

    const unlimited = await t.client({ rate_limit: 0 });
    for (let i = 0; i < 50; i++) expect((await t.token(unlimited.clientId, unlimited.clientSecret)).statusCode).toBe(200);
    t.clock.advance(10_000);
  });

  it('takes a rate_limit changed through the admin API on the next request', async () => {
    const c = await t.client();
    const patch = (rate_limit: unknown) =>
      t.admin({ method: 'PATCH', url: `/admin/clients/${c.clientId}`, payload: { rate_limit } });
    const res = await patch(0.5);
    expect(res.statusCode).toBe(200);
    expect(res.json().rate_limit).toBe(0.5);
    expect((await t.admin({ method: 'GET', url: `/admin/clients/${c.clientId}` })).json().rate_limit).toBe(0.5);
    expect((await t.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
    expectTooMany(await t.token(c.clientId, c.clientSecret), 2);

    // Back to the server default (null): the default's burst applies again.
    expect((await patch(null)).json().rate_limit).toBeNull();
    t.clock.advance(2000);
    for (let i = 0; i < 4; i++) expect((await t.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
    expectTooMany(await t.token(c.clientId, c.clientSecret), 1);
    t.clock.advance(5000);
  });

  it.each([
    [-1, /rate_limit must be a number of token requests per second from 0/],
    ['10', /rate_limit must be a number/],
    [1_000_001, /to 1000000/],
    [true, /rate_limit must be a number/],
  ])('refuses rate_limit %o', async (value, message) => {
    const res = await t.admin({
      method: 'POST', url: '/admin/clients',
      payload: { client_name: 'x', scope: 'a', audience: ['https://a.example.com'], rate_limit: value },
    });
    expect(res.statusCode).toBe(400);
    expect(JSON.stringify(res.json())).toMatch(message);
  });

  it('shows rate_limit in the wire form, null by default', async () => {
    const c = await t.client();
    expect((await t.admin({ method: 'GET', url: `/admin/clients/${c.clientId}` })).json().rate_limit).toBeNull();
  });
});

describe('token rate limit off', () => {
  it('M2M_AUTH_TOKEN_RATE_LIMIT=0 limits nobody without a rate_limit of their own', async () => {
    const t = await startTestServer({ tokenRateLimit: 0 });
    try {
      const c = await t.client();
      for (let i = 0; i < 300; i++) expect((await t.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
      const own = await t.client({ rate_limit: 1 });
      expect((await t.token(own.clientId, own.clientSecret)).statusCode).toBe(200);
      expect((await t.token(own.clientId, own.clientSecret)).statusCode).toBe(200);
      expectTooMany(await t.token(own.clientId, own.clientSecret), 1);
    } finally {
      await t.close();
    }
  });

  it('the default is generous: 100 a second with a burst of 200', async () => {
    const t = await startTestServer();
    try {
      const c = await t.client();
      for (let i = 0; i < 200; i++) expect((await t.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
      expectTooMany(await t.token(c.clientId, c.clientSecret), 1);
      t.clock.advance(10);
      expect((await t.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });
});

describe('introspection rate per calling client', () => {
  let t: TestServer;

  beforeAll(async () => {
    t = await startTestServer({ introspectionRateLimit: 1, rateLimitBurst: 3 });
  });
  afterAll(() => t.close());

  it('answers 429 past the burst, per caller, and serves again after a second', async () => {
    const api = await t.client({ grant_types: [], audience: [], resource_uris: ['https://orders.example.com'] });
    const other = await t.client({ grant_types: [], audience: [] });
    const c = await t.client();
    const token = (await t.token(c.clientId, c.clientSecret)).json().access_token as string;
    const introspect = (who: { clientId: string; clientSecret: string }) =>
      t.post('/oauth2/introspect', { token }, { authorization: basic(who.clientId, who.clientSecret) });

    for (let i = 0; i < 3; i++) {
      const res = await introspect(api);
      expect(res.statusCode).toBe(200);
      expect(res.json().active).toBe(true);
    }
    expectTooMany(await introspect(api), 1);
    // Another caller has its own allowance.
    expect((await introspect(other)).json()).toStrictEqual({ active: false });
    t.clock.advance(1000);
    expect((await introspect(api)).statusCode).toBe(200);
    expectTooMany(await introspect(api), 1);
  });

  it('does not count introspection against the token endpoint rate, nor the other way round', async () => {
    const c = await t.client({ rate_limit: 1 });
    const token = (await t.token(c.clientId, c.clientSecret)).json().access_token as string;
    for (let i = 0; i < 3; i++) {
      expect((await t.post('/oauth2/introspect', { token }, { authorization: basic(c.clientId, c.clientSecret) })).statusCode).toBe(200);
    }
    expect((await t.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
  });
});
