// The verifying side's DPoP replay cache (src/verify/dpop-proof.ts): bounded, expired entries
// swept in batches, live ones always found.

import { describe, expect, it } from 'vitest';
import { ReplayCache } from '../src/verify/dpop-proof.js';

describe('ReplayCache', () => {
  it('finds a jti seen before while it lives, and not after it expired', () => {
    const c = new ReplayCache(100);
    expect(c.seenBefore('a', 2000, 1000)).toBe(false);
    expect(c.seenBefore('a', 2000, 1500)).toBe(true);
    expect(c.seenBefore('a', 4000, 2000)).toBe(false);
    expect(c.seenBefore('a', 4000, 3000)).toBe(true);
  });

  it('sweeps expired entries every sixteenth of its size in insertions', () => {
    const c = new ReplayCache(1600);
    for (let i = 0; i < 500; i++) c.seenBefore(`old-${i}`, 1000, 0);
    expect(c.size).toBe(500);
    // 100 insertions (a sixteenth of 1600) after they expired: the expired ones are gone.
    for (let i = 0; i < 100; i++) c.seenBefore(`new-${i}`, 10_000, 5000);
    expect(c.size).toBeLessThanOrEqual(100);
    expect(c.seenBefore('new-99', 10_000, 5000)).toBe(true);
  });

  it('stays within its size when every entry is live, dropping the oldest first', () => {
    const c = new ReplayCache(320);
    for (let i = 0; i < 10_000; i++) {
      expect(c.seenBefore(`jti-${i}`, 1e9, 0)).toBe(false);
      expect(c.size).toBeLessThanOrEqual(320);
    }
    expect(c.seenBefore('jti-9999', 1e9, 0)).toBe(true);
    expect(c.seenBefore('jti-9700', 1e9, 0)).toBe(true);
    expect(c.seenBefore('jti-0', 1e9, 0)).toBe(false);
  });
});
