// VerifiedTokens (src/federation/verified-tokens.ts): a platform token is kept the second time it
// is verified, with the key set it was verified with, until its exp; a token seen once is not kept.

import { describe, expect, it } from 'vitest';
import { MAX_VERIFIED_TOKENS, tokenMark, VerifiedTokens } from '../../src/federation/verified-tokens.js';

const token = (n: number): string => `eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.sig-${n.toString(36).padStart(6, '0')}x`;
const claims = Object.freeze({ sub: 'x' });
const NOW = 1_000_000;

describe('VerifiedTokens', () => {
  it('keeps a token the second time it is verified, not the first', () => {
    const v = new VerifiedTokens();
    const keys = {};
    v.remember(token(1), keys, claims, NOW + 60_000);
    expect(v.get(token(1), keys, NOW)).toBeUndefined();
    v.remember(token(1), keys, claims, NOW + 60_000);
    expect(v.get(token(1), keys, NOW)).toBe(claims);
  });

  it('answers only for the key set it was verified with, and only until exp', () => {
    const v = new VerifiedTokens();
    const keys = {};
    v.remember(token(2), keys, claims, NOW + 60_000);
    v.remember(token(2), keys, claims, NOW + 60_000);
    expect(v.get(token(2), {}, NOW)).toBeUndefined();
    v.remember(token(2), keys, claims, NOW + 60_000);
    v.remember(token(2), keys, claims, NOW + 60_000);
    expect(v.get(token(2), keys, NOW + 60_000)).toBeUndefined();
  });

  it('never keeps more than its bound, however many tokens come twice', () => {
    const v = new VerifiedTokens(100);
    const keys = {};
    for (let i = 0; i < 1000; i++) {
      v.remember(token(i), keys, claims, NOW + 60_000);
      v.remember(token(i), keys, claims, NOW + 60_000);
    }
    expect(v.get(token(999), keys, NOW)).toBe(claims);
    expect(v.get(token(0), keys, NOW)).toBeUndefined();
    let kept = 0;
    for (let i = 0; i < 1000; i++) if (v.get(token(i), keys, NOW) !== undefined) kept++;
    expect(kept).toBeLessThanOrEqual(100);
    expect(MAX_VERIFIED_TOKENS).toBe(5000);
  });

  it('marks a token with a small integer from its last characters', () => {
    const m = tokenMark(token(12345));
    expect(Number.isInteger(m) && m >= 0 && m < 2 ** 28).toBe(true);
    expect(tokenMark(token(12345))).toBe(m);
    expect(tokenMark(token(12346))).not.toBe(m);
  });
});
