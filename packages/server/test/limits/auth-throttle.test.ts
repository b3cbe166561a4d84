// RFC 6749 §2.3.1 brute-force protection: failed client authentication throttled per source address
// and per client_id, before any secret is checked, until the window ends (injected clock).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, startTestServer, type TestServer } from '../helpers/server.js';
import { expectTooMany, postFrom, tokenFrom } from './helpers.js';

const WINDOW = 60;

describe('failed client authentication', () => {
  let t: TestServer;
  let n = 0;
  /** A fresh documentation address per call, so tests do not share an address allowance. */
  const address = () => `198.51.100.${++n}`;

  beforeAll(async () => {
    t = await startTestServer({ authFailuresPerAddress: 3, authFailuresPerClient: 5, authFailureWindow: WINDOW, tokenRateLimit: 0 });
  });
  afterAll(() => t.close());

  it('throttles an address after N failures: even a correct secret gets 429 until the window ends', async () => {
    const c = await t.client();
    const ip = address();
    for (let i = 0; i < 3; i++) expect((await tokenFrom(t, ip, c.clientId, 'wrong')).statusCode).toBe(401);
    t.clock.advance(10_000);
    // The window opened at the first failure: 50 s are left.
    expectTooMany(await tokenFrom(t, ip, c.clientId, c.clientSecret), 50);
    // Throttled attempts are refused before the secret is looked at, and are not counted.
    expectTooMany(await tokenFrom(t, ip, c.clientId, 'wrong'), 50);
    // The same client from another address is served (the client_id has 3 of its 5).
    expect((await tokenFrom(t, address(), c.clientId, c.clientSecret)).statusCode).toBe(200);

    t.clock.advance(49_000);
    expectTooMany(await tokenFrom(t, ip, c.clientId, c.clientSecret), 1);
    t.clock.advance(1_000);
    expect((await tokenFrom(t, ip, c.clientId, c.clientSecret)).statusCode).toBe(200);
  });

  it('throttles every client from a throttled address, and fewer than N failures throttle nothing', async () => {
    const a = await t.client();
    const b = await t.client();
    const ip = address();
    for (let i = 0; i < 2; i++) expect((await tokenFrom(t, ip, a.clientId, 'wrong')).statusCode).toBe(401);
    expect((await tokenFrom(t, ip, a.clientId, a.clientSecret)).statusCode).toBe(200);
    expect((await tokenFrom(t, ip, b.clientId, 'wrong')).statusCode).toBe(401);
    expectTooMany(await tokenFrom(t, ip, b.clientId, b.clientSecret), WINDOW);
    t.clock.advance(WINDOW * 1000);
  });

  it('does not let a success reset the window', async () => {
    const c = await t.client();
    const ip = address();
    expect((await tokenFrom(t, ip, c.clientId, 'wrong')).statusCode).toBe(401);
    expect((await tokenFrom(t, ip, c.clientId, 'wrong')).statusCode).toBe(401);
    expect((await tokenFrom(t, ip, c.clientId, c.clientSecret)).statusCode).toBe(200);
    expect((await tokenFrom(t, ip, c.clientId, 'wrong')).statusCode).toBe(401);
    expectTooMany(await tokenFrom(t, ip, c.clientId, c.clientSecret), WINDOW);
    t.clock.advance(WINDOW * 1000);
  });

  it('throttles a client_id after N failures from any addresses together', async () => {
    const c = await t.client();
    const other = await t.client();
    for (let i = 0; i < 5; i++) expect((await tokenFrom(t, address(), c.clientId, 'wrong')).statusCode).toBe(401);
    const fresh = address();
    expectTooMany(await tokenFrom(t, fresh, c.clientId, c.clientSecret), WINDOW);
    // The address itself is fine: another client from it is served.
    expect((await tokenFrom(t, fresh, other.clientId, other.clientSecret)).statusCode).toBe(200);
    t.clock.advance(WINDOW * 1000);
    expect((await tokenFrom(t, fresh, c.clientId, c.clientSecret)).statusCode).toBe(200);
  });

  it('counts an unknown client_id of our shape like a known one (no enumeration through the throttle)', async () => {
    const unknown = 'cl_doesnotexist0001';
    for (let i = 0; i < 5; i++) expect((await tokenFrom(t, address(), unknown, 'wrong')).statusCode).toBe(401);
    expectTooMany(await tokenFrom(t, address(), unknown, 'wrong'), WINDOW);
    t.clock.advance(WINDOW * 1000);
  });

  it('counts every invalid_client the same: disabled client, wrong method, no credentials, bad assertion', async () => {
    const disabled = await t.client({ disabled: true });
    const post = await t.client({ token_endpoint_auth_method: 'client_secret_post' });
    const ip = address();
    expect((await tokenFrom(t, ip, disabled.clientId, disabled.clientSecret)).statusCode).toBe(401);
    expect((await tokenFrom(t, ip, post.clientId, post.clientSecret)).statusCode).toBe(401);
    expect((await postFrom(t, ip, '/oauth2/token', {
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: 'not-a-jwt',
    })).statusCode).toBe(401);
    const ok = await t.client();
    expectTooMany(await tokenFrom(t, ip, ok.clientId, ok.clientSecret), WINDOW);

    // Requests without credentials count per address too.
    const ip2 = address();
    for (let i = 0; i < 3; i++) expect((await postFrom(t, ip2, '/oauth2/token', { grant_type: 'client_credentials' })).statusCode).toBe(401);
    expectTooMany(await tokenFrom(t, ip2, ok.clientId, ok.clientSecret), WINDOW);
    t.clock.advance(WINDOW * 1000);
  });

  it('does not count malformed requests (invalid_request) as failed authentication', async () => {
    const c = await t.client();
    const ip = address();
    for (let i = 0; i < 5; i++) {
      const res = await postFrom(t, ip, '/oauth2/token', { grant_type: 'client_credentials', client_id: c.clientId, client_secret: c.clientSecret }, {
        authorization: basic(c.clientId, c.clientSecret),
      });
      expect(res.json().error).toBe('invalid_request');
    }
    expect((await tokenFrom(t, ip, c.clientId, c.clientSecret)).statusCode).toBe(200);
  });

  it('keeps a client_id of another shape (perhaps a secret in the wrong field) out of the per-client counters', async () => {
    const c = await t.client();
    // A secret sent as the client_id, from 5 addresses: counted per address only.
    for (let i = 0; i < 5; i++) expect((await tokenFrom(t, address(), c.clientSecret, c.clientId)).statusCode).toBe(401);
    expect((await tokenFrom(t, address(), c.clientSecret, c.clientId)).statusCode).toBe(401);
    t.clock.advance(WINDOW * 1000);
  });

  it('throttles introspection and revocation callers too (one authenticator)', async () => {
    const c = await t.client();
    const token = (await tokenFrom(t, address(), c.clientId, c.clientSecret)).json().access_token as string;
    const ip = address();
    for (let i = 0; i < 3; i++) {
      expect((await postFrom(t, ip, '/oauth2/introspect', { token }, { authorization: basic(c.clientId, 'wrong') })).statusCode).toBe(401);
    }
    expectTooMany(await postFrom(t, ip, '/oauth2/introspect', { token }, { authorization: basic(c.clientId, c.clientSecret) }), WINDOW);
    expectTooMany(await postFrom(t, ip, '/oauth2/revoke', { token }, { authorization: basic(c.clientId, c.clientSecret) }), WINDOW);
    expectTooMany(await tokenFrom(t, ip, c.clientId, c.clientSecret), WINDOW);
    t.clock.advance(WINDOW * 1000);
    expect((await postFrom(t, ip, '/oauth2/revoke', { token }, { authorization: basic(c.clientId, c.clientSecret) })).statusCode).toBe(200);
  });

  it('throttles an IPv6 /64 as one address, and IPv4-mapped IPv6 as the IPv4 address', async () => {
    const c = await t.client();
    await tokenFrom(t, '2001:db8:1:2::1', c.clientId, 'wrong');
    await tokenFrom(t, '2001:db8:1:2:ffff::9', c.clientId, 'wrong');
    await tokenFrom(t, '2001:0db8:0001:0002:abcd::', c.clientId, 'wrong');
    expectTooMany(await tokenFrom(t, '2001:db8:1:2:1:2:3:4', c.clientId, c.clientSecret), WINDOW);
    expect((await tokenFrom(t, '2001:db8:1:3::1', c.clientId, c.clientSecret)).statusCode).toBe(200);

    const d = await t.client();
    const v4 = address();
    for (let i = 0; i < 3; i++) expect((await tokenFrom(t, `::ffff:${v4}`, d.clientId, 'wrong')).statusCode).toBe(401);
    expectTooMany(await tokenFrom(t, v4, d.clientId, d.clientSecret), WINDOW);
    t.clock.advance(WINDOW * 1000);
  });

  it('records the throttled client_id in the request log and the token.denied event', async () => {
    const c = await t.client();
    const ip = address();
    const denied: Array<{ clientId?: string; error: string }> = [];
    const off = t.server.events.on('token.denied', (e) => denied.push(e));
    for (let i = 0; i < 3; i++) await tokenFrom(t, ip, c.clientId, 'wrong');
    await tokenFrom(t, ip, c.clientId, c.clientSecret);
    off();
    expect(denied.at(-1)).toMatchObject({ clientId: c.clientId, error: 'temporarily_unavailable' });
    const line = t.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request' && l.status === 429).at(-1);
    expect(line).toMatchObject({ client_id: c.clientId, outcome: 'temporarily_unavailable', ip });
    t.clock.advance(WINDOW * 1000);
  });
});

describe('failed-authentication throttling off', () => {
  it('M2M_AUTH_AUTH_FAILURES_PER_ADDRESS=0 and _PER_CLIENT=0 never throttle', async () => {
    const t = await startTestServer({ authFailuresPerAddress: 0, authFailuresPerClient: 0 });
    try {
      const c = await t.client();
      for (let i = 0; i < 30; i++) expect((await tokenFrom(t, '203.0.113.1', c.clientId, 'wrong')).statusCode).toBe(401);
      expect((await tokenFrom(t, '203.0.113.1', c.clientId, c.clientSecret)).statusCode).toBe(200);
    } finally {
      await t.close();
    }
  });

  it('by default throttles an address after 10 failures a minute', async () => {
    // undefined: the schema defaults, not the test helper's "off".
    const t = await startTestServer({ authFailuresPerAddress: undefined, authFailuresPerClient: undefined });
    try {
      const c = await t.client();
      for (let i = 0; i < 10; i++) expect((await tokenFrom(t, '203.0.113.2', c.clientId, 'wrong')).statusCode).toBe(401);
      expectTooMany(await tokenFrom(t, '203.0.113.2', c.clientId, c.clientSecret), 60);
    } finally {
      await t.close();
    }
  });
});
