// Limits shared through Redis: two server instances (createServer twice, one Redis URL and key
// prefix, one database file, one clock) count against the same limits. When Redis goes away, each
// instance falls back to its own limits without errors or added latency, and says so once.
//
// The shared-Redis tests need M2M_AUTH_TEST_REDIS_URL and use a random key prefix, deleted after.
// The outage tests start a private redis-server on a free port and stop or kill only that one.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { reservedPort } from '../helpers/process.js';
import { startTestServer, testClock, type TestServer } from '../helpers/server.js';
import {
  REDIS_URL, deleteKeysUnder, expectTooMany, keysUnder, logLines, randomPrefix, startPrivateRedis, tokenFrom,
  type PrivateRedis,
} from './helpers.js';

if (!REDIS_URL) console.warn('Shared Redis rate limit tests skipped: set M2M_AUTH_TEST_REDIS_URL');

const LIMITS = { tokenRateLimit: 1, rateLimitBurst: 3, authFailuresPerAddress: 3, authFailuresPerClient: 5, authFailureWindow: 60 };

/** Two instances on one SQLite file and one clock, sharing `redisUrl` under `prefix`. */
async function twoInstances(redisUrl: string, prefix: string): Promise<{ a: TestServer; b: TestServer; dir: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-ratelimit-'));
  const clock = testClock();
  const overrides = { ...LIMITS, redisUrl, redisKeyPrefix: prefix, databaseUrl: `sqlite:${join(dir, 'shared.db')}` };
  const a = await startTestServer(overrides, { dataDir: dir, clock });
  const b = await startTestServer(overrides, { dataDir: dir, clock });
  return { a, b, dir };
}

describe.skipIf(!REDIS_URL)('two instances sharing Redis', () => {
  const prefix = randomPrefix();
  let a: TestServer;
  let b: TestServer;
  let dir: string;

  beforeAll(async () => {
    ({ a, b, dir } = await twoInstances(REDIS_URL!, prefix));
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
    await deleteKeysUnder(REDIS_URL!, prefix);
    expect((await keysUnder(REDIS_URL!, prefix)).size).toBe(0);
  });

  it('share the token request rate of a client', async () => {
    const c = await a.client();
    expect((await a.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
    expect((await b.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
    expect((await a.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
    // The burst of 3 is spent across both instances.
    expectTooMany(await b.token(c.clientId, c.clientSecret), 1);
    expectTooMany(await a.token(c.clientId, c.clientSecret), 1);
    a.clock.advance(1000);
    expect((await b.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
    expectTooMany(await a.token(c.clientId, c.clientSecret), 1);
    a.clock.advance(5000);
  });

  it('share the failed-authentication counters per address and per client_id', async () => {
    const c = await a.client();
    const ip = '198.51.100.40';
    expect((await tokenFrom(a, ip, c.clientId, 'wrong')).statusCode).toBe(401);
    expect((await tokenFrom(b, ip, c.clientId, 'wrong')).statusCode).toBe(401);
    expect((await tokenFrom(a, ip, c.clientId, 'wrong')).statusCode).toBe(401);
    // b saw one failure from this address itself; the other two are in Redis.
    expectTooMany(await tokenFrom(b, ip, c.clientId, c.clientSecret), 60);

    const d = await a.client();
    for (let i = 0; i < 5; i++) {
      const on = i % 2 === 0 ? a : b;
      expect((await tokenFrom(on, `198.51.100.${50 + i}`, d.clientId, 'wrong')).statusCode).toBe(401);
    }
    expectTooMany(await tokenFrom(b, '198.51.100.60', d.clientId, d.clientSecret), 60);
    a.clock.advance(60_000);
    expect((await tokenFrom(b, ip, c.clientId, c.clientSecret)).statusCode).toBe(200);
    expect((await tokenFrom(a, '198.51.100.60', d.clientId, d.clientSecret)).statusCode).toBe(200);
  });

  it('keep the state under the key prefix, every key with an expiry', async () => {
    const keys = await keysUnder(REDIS_URL!, prefix);
    const names = [...keys.keys()];
    expect(names.some((k) => k.startsWith(`${prefix}rate:token:cl_`))).toBe(true);
    expect(names.some((k) => k.startsWith(`${prefix}authfail:client:cl_`))).toBe(true);
    expect(names).toContain(`${prefix}authfail:address:198.51.100.40`);
    for (const [key, ttl] of keys) {
      expect(ttl, key).toBeGreaterThan(0);
      // A failure window (60 s) plus a second of slack at most.
      expect(ttl, key).toBeLessThanOrEqual(61_000);
    }
  });
});

describe('Redis unreachable', () => {
  let redis: PrivateRedis | undefined;
  const servers: TestServer[] = [];
  afterEach(async () => {
    for (const s of servers.splice(0)) await s.close();
    await redis?.stop();
    redis = undefined;
  });

  it('at start: the limits work per process, and the outage is logged once', async () => {
    const port = await reservedPort(); // nothing listens there
    const started = Date.now();
    const t = await startTestServer({ ...LIMITS, redisUrl: `redis://127.0.0.1:${port}`, redisKeyPrefix: randomPrefix() });
    servers.push(t);
    expect(Date.now() - started).toBeLessThan(3000);
    const c = await t.client();
    for (let i = 0; i < 3; i++) expect((await t.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
    expectTooMany(await t.token(c.clientId, c.clientSecret), 1);
    for (let i = 0; i < 3; i++) expect((await tokenFrom(t, '198.51.100.9', c.clientId, 'wrong')).statusCode).toBe(401);
    expectTooMany(await tokenFrom(t, '198.51.100.9', c.clientId, c.clientSecret), 60);
    expect(logLines(t.logs, 'rate limit store (Redis) unreachable')).toHaveLength(1);
  });

  it('when Redis dies: no errors, brute-force throttling goes on locally, and it is logged once', async () => {
    redis = await startPrivateRedis();
    const prefix = randomPrefix();
    const t = await startTestServer({ ...LIMITS, redisUrl: redis.url, redisKeyPrefix: prefix });
    servers.push(t);
    const c = await t.client();
    const ip = '198.51.100.20';
    expect((await t.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
    expect((await tokenFrom(t, ip, c.clientId, 'wrong')).statusCode).toBe(401);
    expect((await tokenFrom(t, ip, c.clientId, 'wrong')).statusCode).toBe(401);
    // The state was in Redis (the private one).
    expect((await keysUnder(redis.url, prefix)).size).toBeGreaterThanOrEqual(3);

    await redis.stop();
    const started = performance.now();
    // The third failure is counted locally: this instance counted all three itself as well.
    expect((await tokenFrom(t, ip, c.clientId, 'wrong')).statusCode).toBe(401);
    expectTooMany(await tokenFrom(t, ip, c.clientId, c.clientSecret), 60);
    // Token requests keep being served, limited per process (fail open to the local limit).
    const other = await t.client();
    for (let i = 0; i < 3; i++) expect((await t.token(other.clientId, other.clientSecret)).statusCode).toBe(200);
    expectTooMany(await t.token(other.clientId, other.clientSecret), 1);
    for (let i = 0; i < 20; i++) await t.token(other.clientId, other.clientSecret);
    expect(performance.now() - started).toBeLessThan(1500);
    expect(logLines(t.logs, 'rate limit store (Redis) unreachable')).toHaveLength(1);
    expect(t.logs.map((l) => JSON.parse(l)).filter((l) => l.msg === 'request' && l.status >= 500)).toHaveLength(0);
  });

  it('when Redis hangs: a request waits at most the short command timeout, then the local limits answer at once', async () => {
    redis = await startPrivateRedis();
    const t = await startTestServer({ ...LIMITS, redisUrl: redis.url, redisKeyPrefix: randomPrefix() });
    servers.push(t);
    const c = await t.client();
    expect((await t.token(c.clientId, c.clientSecret)).statusCode).toBe(200);

    redis.pause();
    let started = performance.now();
    expect((await t.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
    const first = performance.now() - started;
    expect(first).toBeLessThan(1000);
    // Cooling down: no more waiting on Redis. Five waits of the 100-ms command timeout would take
    // 500 ms at least; the margin below that is for a loaded machine.
    started = performance.now();
    for (let i = 0; i < 5; i++) await t.token(c.clientId, c.clientSecret);
    expect(performance.now() - started).toBeLessThan(450);
    expect(logLines(t.logs, 'rate limit store (Redis) unreachable')).toHaveLength(1);
    redis.resume();
  });

  it('when Redis comes back: the limits are shared again, and that is logged', async () => {
    redis = await startPrivateRedis();
    const prefix = randomPrefix();
    const t = await startTestServer({ ...LIMITS, redisUrl: redis.url, redisKeyPrefix: prefix });
    servers.push(t);
    const c = await t.client();
    redis.pause();
    await t.token(c.clientId, c.clientSecret);
    expect(logLines(t.logs, 'rate limit store (Redis) unreachable')).toHaveLength(1);
    redis.resume();
    // The store is used again after the cool-down (2 s).
    const deadline = Date.now() + 6000;
    let keys = 0;
    while (Date.now() < deadline && keys === 0) {
      await new Promise((r) => setTimeout(r, 200));
      t.clock.advance(5000);
      await t.token(c.clientId, c.clientSecret);
      keys = (await keysUnder(redis.url, prefix)).size;
    }
    expect(keys).toBeGreaterThan(0);
    expect(logLines(t.logs, 'rate limit store (Redis) reachable again')).toHaveLength(1);
  });
});
