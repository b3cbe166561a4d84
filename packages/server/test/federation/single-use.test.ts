// Single-use jti of platform tokens across processes (src/federation/single-use.ts): refused at
// once within a process; with Redis, refused in every instance; without it, detected by the write
// behind the request to the shared replay store (here two "processes" share one SQLite file).

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { SingleUseJtis } from '../../src/federation/single-use.js';
import { Limits } from '../../src/limits/limits.js';
import { EventBus, type EventMap } from '../../src/observability/events.js';
import { openStorage } from '../../src/storage/open.js';
import { deleteKeysUnder, keysUnder, randomPrefix, REDIS_URL } from '../limits/helpers.js';

const NOW = Date.now();
const EXP = NOW + 300_000;
const LIMITS = { tokenRateLimit: 0, introspectionRateLimit: 0, rateLimitBurst: 1, authFailuresPerAddress: 0, authFailuresPerClient: 0, authFailureWindow: 60 };

if (!REDIS_URL) console.warn('single-use jti over Redis skipped: set M2M_AUTH_TEST_REDIS_URL');

describe('single-use jti without Redis', () => {
  const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-jti-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('refuses a second use in the process at once, and reports one seen first by another process', async () => {
    const url = `sqlite:${join(dir, 'shared.db')}`;
    const [s1, s2] = [await openStorage(url, { migrate: true }), await openStorage(url, { migrate: true })];
    try {
      const events = new EventBus();
      const replayed: Array<EventMap['federation.jti_replayed']> = [];
      events.on('federation.jti_replayed', (e) => replayed.push(e));
      const one = new SingleUseJtis({ replay: s1.replay, events });
      const two = new SingleUseJtis({ replay: s2.replay, events });
      expect(one.firstUse('github', 'cl_a', 'j1', EXP, NOW)).toBe(true);
      expect(one.firstUse('github', 'cl_a', 'j1', EXP, NOW)).toBe(false);
      // The key reaches the shared table behind the request.
      await expect.poll(async () => (await s1.replay.listReplay(NOW)).map((r) => r.key)).toContain('federated_jwt:github:j1');
      expect(two.firstUse('github', 'cl_a', 'j1', EXP, NOW)).toBe(true);
      await expect.poll(() => replayed).toEqual([{ trust: 'github', clientId: 'cl_a', jti: 'j1' }]);
      // Another trust's jti of the same value is another token.
      expect(one.firstUse('gitlab', 'cl_a', 'j1', EXP, NOW)).toBe(true);
      // Past its exp the jti is forgotten.
      expect(one.firstUse('github', 'cl_a', 'j1', EXP + 1000, EXP + 1)).toBe(true);
    } finally {
      await s1.close();
      await s2.close();
    }
  });

  it('keeps at most its bound of jtis, the expired ones going first', () => {
    const replay = { consumeOnce: async () => true, listReplay: async () => [] };
    const jtis = new SingleUseJtis({ replay, events: new EventBus(), maxEntries: 2 });
    expect(jtis.firstUse('t', 'c', 'old', NOW + 10, NOW)).toBe(true);
    expect(jtis.firstUse('t', 'c', 'a', EXP, NOW)).toBe(true);
    expect(jtis.firstUse('t', 'c', 'b', EXP, NOW + 20)).toBe(true);
    expect(jtis.firstUse('t', 'c', 'a', EXP, NOW + 20)).toBe(false);
    expect(jtis.firstUse('t', 'c', 'b', EXP, NOW + 20)).toBe(false);
  });
});

describe.skipIf(!REDIS_URL)('single-use jti over Redis', () => {
  const prefix = randomPrefix();
  afterAll(async () => {
    await deleteKeysUnder(REDIS_URL!, prefix);
  });

  it('refuses a jti in every instance once one used it, without the database', async () => {
    const logger = pino({ level: 'silent' });
    const config = { ...LIMITS, redisUrl: REDIS_URL, redisKeyPrefix: prefix };
    const [la, lb] = [new Limits(config, { logger }), new Limits(config, { logger })];
    await Promise.all([la.start(), lb.start()]);
    try {
      const writes: string[] = [];
      const replay = { consumeOnce: async (key: string) => (writes.push(key), true), listReplay: async () => [] };
      const a = new SingleUseJtis({ replay, events: new EventBus(), shared: la.sharedFirstUse });
      const b = new SingleUseJtis({ replay, events: new EventBus(), shared: lb.sharedFirstUse });
      expect(await a.firstUse('github', 'cl_a', 'j1', EXP, NOW)).toBe(true);
      expect(await b.firstUse('github', 'cl_a', 'j1', EXP, NOW)).toBe(false);
      expect(await a.firstUse('github', 'cl_a', 'j1', EXP, NOW)).toBe(false);
      expect(await b.firstUse('github', 'cl_a', 'j2', EXP, NOW)).toBe(true);
      expect(writes).toEqual([]);
      // Kept in Redis until the token's exp (and a second).
      const ttl = (await keysUnder(REDIS_URL!, prefix)).get(`${prefix}once:federated_jwt:github:j1`);
      expect(ttl).toBeGreaterThan(290_000);
      expect(ttl).toBeLessThanOrEqual(301_000);
    } finally {
      await la.close();
      await lb.close();
    }
  });
});
