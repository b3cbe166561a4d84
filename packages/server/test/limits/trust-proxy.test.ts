// M2M_AUTH_TRUST_PROXY: with it, request.ip is the client's address from X-Forwarded-For when the
// connection comes from a trusted proxy; without it, X-Forwarded-For is ignored. Shown through the
// per-address failure throttle and the request log.

import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/schema.js';
import { ConfigError } from '../../src/ground/errors.js';
import { addressKey } from '../../src/limits/address-key.js';
import { fastifyTrustProxy } from '../../src/http/trusted-proxies.js';
import { parseTrustProxy } from '../../src/config/trust-proxy.js';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { expectTooMany, logLines, tokenFrom } from './helpers.js';

const LB = '10.0.0.5';
const ALICE = '203.0.113.7';
const BOB = '203.0.113.8';

let t: TestServer | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
});

async function server(trustProxy?: string): Promise<TestServer> {
  t = await startTestServer({ authFailuresPerAddress: 2, authFailuresPerClient: 0, ...(trustProxy !== undefined && { trustProxy }) });
  return t;
}

function requestLines(s: TestServer): Array<Record<string, unknown>> {
  return s.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === 'request');
}

describe('without M2M_AUTH_TRUST_PROXY', () => {
  it('ignores X-Forwarded-For: everyone behind the proxy shares its address', async () => {
    const s = await server();
    const c = await s.client();
    for (let i = 0; i < 2; i++) expect((await tokenFrom(s, LB, c.clientId, 'wrong', { 'x-forwarded-for': ALICE })).statusCode).toBe(401);
    // Bob's request comes through the same proxy: throttled with Alice.
    expectTooMany(await tokenFrom(s, LB, c.clientId, c.clientSecret, { 'x-forwarded-for': BOB }), 60);
    expect(requestLines(s).map((l) => l.ip)).toStrictEqual([LB, LB, LB]);
  });

  it('cannot be fooled by a forged X-Forwarded-For from a direct client', async () => {
    const s = await server();
    const c = await s.client();
    for (let i = 0; i < 2; i++) {
      expect((await tokenFrom(s, ALICE, c.clientId, 'wrong', { 'x-forwarded-for': `192.0.2.${i}` })).statusCode).toBe(401);
    }
    expectTooMany(await tokenFrom(s, ALICE, c.clientId, c.clientSecret, { 'x-forwarded-for': '192.0.2.99' }), 60);
  });

  it('logs once that requests carry X-Forwarded-For while no proxy is trusted', async () => {
    const s = await server();
    const c = await s.client();
    expect(logLines(s.logs, 'X-Forwarded-For')).toHaveLength(0);
    await tokenFrom(s, LB, c.clientId, c.clientSecret);
    expect(logLines(s.logs, 'X-Forwarded-For')).toHaveLength(0);
    for (let i = 0; i < 3; i++) await tokenFrom(s, LB, c.clientId, c.clientSecret, { 'x-forwarded-for': ALICE });
    expect(logLines(s.logs, 'X-Forwarded-For')).toHaveLength(1);
  });
});

describe('with M2M_AUTH_TRUST_PROXY', () => {
  it('a CIDR of proxies: the address before the proxy is the client, each with its own allowance', async () => {
    const s = await server('10.0.0.0/8');
    const c = await s.client();
    for (let i = 0; i < 2; i++) expect((await tokenFrom(s, LB, c.clientId, 'wrong', { 'x-forwarded-for': ALICE })).statusCode).toBe(401);
    expectTooMany(await tokenFrom(s, LB, c.clientId, c.clientSecret, { 'x-forwarded-for': ALICE }), 60);
    expect((await tokenFrom(s, LB, c.clientId, c.clientSecret, { 'x-forwarded-for': BOB })).statusCode).toBe(200);
    expect(requestLines(s).map((l) => l.ip)).toStrictEqual([ALICE, ALICE, ALICE, BOB]);
    // No warning: the header is expected here.
    expect(logLines(s.logs, 'X-Forwarded-For')).toHaveLength(0);
  });

  it('takes the rightmost untrusted address, so a client cannot choose its own by prepending one', async () => {
    const s = await server('10.0.0.0/8');
    const c = await s.client();
    for (let i = 0; i < 2; i++) {
      expect((await tokenFrom(s, LB, c.clientId, 'wrong', { 'x-forwarded-for': `192.0.2.${i}, ${ALICE}` })).statusCode).toBe(401);
    }
    expectTooMany(await tokenFrom(s, LB, c.clientId, c.clientSecret, { 'x-forwarded-for': `192.0.2.99, ${ALICE}` }), 60);
    expect(requestLines(s).at(-1)?.ip).toBe(ALICE);
  });

  it('ignores X-Forwarded-For from a connection that is not a trusted proxy', async () => {
    const s = await server('10.0.0.0/8');
    const c = await s.client();
    for (let i = 0; i < 2; i++) {
      expect((await tokenFrom(s, ALICE, c.clientId, 'wrong', { 'x-forwarded-for': `192.0.2.${i}` })).statusCode).toBe(401);
    }
    expectTooMany(await tokenFrom(s, ALICE, c.clientId, c.clientSecret, { 'x-forwarded-for': BOB }), 60);
    expect(requestLines(s).map((l) => l.ip)).toStrictEqual([ALICE, ALICE, ALICE]);
  });

  it('a hop count: trusts that many hops from the connection', async () => {
    const s = await server('1');
    const c = await s.client();
    for (let i = 0; i < 2; i++) {
      expect((await tokenFrom(s, LB, c.clientId, 'wrong', { 'x-forwarded-for': `192.0.2.${i}, ${ALICE}` })).statusCode).toBe(401);
    }
    expectTooMany(await tokenFrom(s, LB, c.clientId, c.clientSecret, { 'x-forwarded-for': ALICE }), 60);
    expect((await tokenFrom(s, LB, c.clientId, c.clientSecret, { 'x-forwarded-for': BOB })).statusCode).toBe(200);
    expect(requestLines(s).map((l) => l.ip)).toStrictEqual([ALICE, ALICE, ALICE, BOB]);
  });
});

describe('parsing M2M_AUTH_TRUST_PROXY', () => {
  it('reads off, hop counts and address lists', () => {
    expect(parseTrustProxy('')).toBe(false);
    expect(parseTrustProxy('false')).toBe(false);
    expect(parseTrustProxy('0')).toBe(false);
    expect(parseTrustProxy('2')).toBe(2);
    expect(parseTrustProxy(' 10.0.0.0/8, 192.168.1.1 ,fd00::/8, loopback ')).toStrictEqual(['10.0.0.0/8', '192.168.1.1', 'fd00::/8', 'loopback']);
    expect(fastifyTrustProxy(false)).toBe(false);
    expect(fastifyTrustProxy(['10.0.0.1'])).toStrictEqual(['10.0.0.1']);
    const hops = fastifyTrustProxy(2) as (a: string, i: number) => boolean;
    expect([0, 1, 2].map((i) => hops('x', i))).toStrictEqual([true, true, false]);
    expect(loadConfig({ M2M_AUTH_TRUST_PROXY: '10.0.0.0/8' }).trustProxy).toBe('10.0.0.0/8');
  });

  it.each(['true', 'everyone', '10.0.0.0/33', '::/129', '10.0.0.1/x', '300.1.1.1', '101'])('refuses %o', (value) => {
    expect(() => parseTrustProxy(value)).toThrow(ConfigError);
    expect(() => loadConfig({ M2M_AUTH_TRUST_PROXY: value })).toThrow(/M2M_AUTH_TRUST_PROXY/);
  });

  it('keys IPv6 addresses by their /64 and IPv4-mapped ones by the IPv4 address', () => {
    expect(addressKey('192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('::ffff:192.0.2.1')).toBe('192.0.2.1');
    expect(addressKey('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:0DB8:0001:0002:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(addressKey('2001:db8:1:3::1')).not.toBe(addressKey('2001:db8:1:2::1'));
  });
});
