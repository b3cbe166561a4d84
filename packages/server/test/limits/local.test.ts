// The per-process limiters: GCRA arithmetic, fixed failure windows and bounded memory. The cost of
// the token endpoint's check is a benchmark line (npm run bench), not a timed test.

import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { LocalFailureCounter, LocalRateLimiter } from '../../src/limits/local.js';
import { Limits, type LimitsConfig } from '../../src/limits/limits.js';
import { OAuthError } from '../../src/ground/errors.js';
import type { ClientRecord } from '../../src/ground/records.js';

const T0 = Date.UTC(2030, 0, 1);

/** take() arguments for `rate` a second and a burst of `burst` requests: [rate, burst seconds]. */
function gcra(rate: number, burst: number): [number, number] {
  return [rate, burst / rate];
}

describe('LocalRateLimiter (GCRA)', () => {
  it('allows the burst at once, then one request per interval, and reports the wait', () => {
    const l = new LocalRateLimiter();
    const [iv, tol] = gcra(3, 6);
    for (let i = 0; i < 6; i++) expect(l.take('k', iv, tol, T0)).toBe(0);
    expect(l.take('k', iv, tol, T0)).toBeCloseTo(333.333, 2);
    expect(l.take('k', iv, tol, T0 + 333)).toBeCloseTo(0.333, 2);
    expect(l.take('k', iv, tol, T0 + 334)).toBe(0);
    expect(l.take('k', iv, tol, T0 + 334)).toBeGreaterThan(332);
    // A long quiet period gives back the burst, never more.
    for (let i = 0; i < 6; i++) expect(l.take('k', iv, tol, T0 + 60_000)).toBe(0);
    expect(l.take('k', iv, tol, T0 + 60_000)).toBeGreaterThan(0);
  });

  it('keeps keys apart', () => {
    const l = new LocalRateLimiter();
    const [iv, tol] = gcra(1, 1);
    expect(l.take('a', iv, tol, T0)).toBe(0);
    expect(l.take('a', iv, tol, T0)).toBe(1000);
    expect(l.take('b', iv, tol, T0)).toBe(0);
  });

  it('drops entries whose time has passed, and never holds more than its cap', () => {
    const l = new LocalRateLimiter(100);
    const [iv, tol] = gcra(1, 5);
    for (let i = 0; i < 50; i++) l.take(`old-${i}`, iv, tol, T0);
    expect(l.size).toBe(50);
    expect(l.sweep(T0 + 999)).toBe(0);
    expect(l.sweep(T0 + 1000)).toBe(50);
    expect(l.size).toBe(0);

    // At the cap, ended entries go first; then the oldest live ones.
    for (let i = 0; i < 100; i++) l.take(`k-${i}`, iv, tol, T0 + i * 10);
    expect(l.size).toBe(100);
    // k-0 ended at T0 + 1000: it makes room for the newcomer, the 99 live ones stay.
    l.take('new-1', iv, tol, T0 + 1005);
    expect(l.size).toBe(100);
    expect(l.take('k-1', iv, tol, T0 + 1005)).toBe(0);
    // Full of live entries: the oldest sixteenth of the cap goes at once (src/ground/bounded-map.ts).
    for (let i = 0; i < 1000; i++) {
      l.take(`flood-${i}`, iv, tol, T0 + 1005);
      expect(l.size).toBeLessThanOrEqual(100);
    }
    expect(l.size).toBeGreaterThanOrEqual(100 - 100 / 16);
    // The newest entries are kept and still limit.
    l.take('flood-999', iv, tol, T0 + 1005);
    l.take('flood-999', iv, tol, T0 + 1005);
    l.take('flood-999', iv, tol, T0 + 1005);
    l.take('flood-999', iv, tol, T0 + 1005);
    expect(l.take('flood-999', iv, tol, T0 + 1005)).toBeGreaterThan(0);
  });
});

describe('LocalFailureCounter (fixed windows)', () => {
  it('throttles at the limit until the window that opened at the first failure ends', () => {
    const c = new LocalFailureCounter();
    c.fail('ip', 60_000, T0);
    c.fail('ip', 60_000, T0 + 10_000);
    expect(c.wait('ip', 3, T0 + 10_000)).toBe(0);
    c.fail('ip', 60_000, T0 + 20_000);
    expect(c.wait('ip', 3, T0 + 20_000)).toBe(40_000);
    expect(c.wait('ip', 3, T0 + 59_999)).toBe(1);
    expect(c.wait('ip', 3, T0 + 60_000)).toBe(0);
    // A failure after the end opens a new window with one failure.
    c.fail('ip', 60_000, T0 + 61_000);
    expect(c.wait('ip', 1, T0 + 61_000)).toBe(60_000);
    expect(c.wait('ip', 2, T0 + 61_000)).toBe(0);
  });

  it('is swept when windows end and capped', () => {
    const c = new LocalFailureCounter(10);
    for (let i = 0; i < 25; i++) c.fail(`ip-${i}`, 1000, T0 + i);
    expect(c.size).toBe(10);
    expect(c.sweep(T0 + 2000)).toBe(10);
    expect(c.size).toBe(0);
  });
});

const CONFIG: LimitsConfig = {
  tokenRateLimit: 1_000_000, introspectionRateLimit: 1000, rateLimitBurst: 3600,
  authFailuresPerAddress: 10, authFailuresPerClient: 50, authFailureWindow: 60,
  redisUrl: undefined, redisKeyPrefix: 'test:',
};

function client(clientId: string, rateLimit: number | null = null): ClientRecord {
  return { clientId, rateLimit } as ClientRecord;
}

describe('Limits', () => {
  it('throws the 429 OAuthError with Retry-After in whole seconds, at least 1', () => {
    let now = T0;
    const limits = new Limits({ ...CONFIG, tokenRateLimit: 1, rateLimitBurst: 1 }, { logger: pino({ level: 'silent' }), now: () => now });
    const c = client('cl_retryafter');
    limits.tokenRequest(c);
    let err: unknown;
    try {
      limits.tokenRequest(c);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OAuthError);
    expect(err).toMatchObject({ error: 'temporarily_unavailable', status: 429, headers: { 'retry-after': '1' } });
    now += 999;
    expect(() => limits.tokenRequest(c)).toThrow(OAuthError);
    now += 1;
    expect(limits.tokenRequest(c)).toBeUndefined();
    // Low rates: the wait rounds up.
    const slow = client('cl_slow', 0.1);
    limits.tokenRequest(slow);
    expect(() => limits.tokenRequest(slow)).toThrow(expect.objectContaining({ headers: { 'retry-after': '10' } }));
  });

  it('sweeps per-process entries that hold nothing any more', () => {
    let now = T0;
    const limits = new Limits({ ...CONFIG, tokenRateLimit: 10, rateLimitBurst: 1 }, { logger: pino({ level: 'silent' }), now: () => now });
    limits.tokenRequest(client('cl_a'));
    limits.introspectionRequest(client('cl_b'));
    expect(() => limits.authThrottle.check('cl_c', '192.0.2.1')).not.toThrow();
    limits.authThrottle.failed('cl_c', '192.0.2.1');
    expect(limits.sweep()).toBe(0);
    now += 60_000;
    expect(limits.sweep()).toBe(4);
  });
});
