// Retry-After as the token provider reads it (RFC 9110 §10.2.3); the retries themselves are tested
// against the real server in the server package (test/sdk/client.test.ts).

import { describe, expect, it } from 'vitest';
import { retryAfterMs } from '../src/client/retry.js';

describe('Retry-After (RFC 9110 §10.2.3)', () => {
  const now = Date.parse('Sun, 06 Nov 1994 08:49:37 GMT');
  it('reads delay-seconds and an IMF-fixdate, and nothing else', () => {
    expect(retryAfterMs('120', now)).toBe(120_000);
    expect(retryAfterMs(' 0 ', now)).toBe(0);
    expect(retryAfterMs('Sun, 06 Nov 1994 08:50:07 GMT', now)).toBe(30_000);
    expect(retryAfterMs('Sun, 06 Nov 1994 08:00:00 GMT', now)).toBe(0);
    for (const garbage of ['1.5', '-1', 'soon 1', '', 'Sunday, 06-Nov-94 08:49:37 GMT', '1994-11-06T08:50:07Z', '99999999999']) {
      expect(retryAfterMs(garbage, now), garbage).toBeUndefined();
    }
    expect(retryAfterMs(null, now)).toBeUndefined();
  });
});
