// The DPoP proof replay check of the embedded default (src/oauth/dpop/replay.ts, processReplay):
// each jti once within its window, in this process's memory, the database only when memory is full.

import { describe, expect, it } from 'vitest';
import { processReplay } from '../../src/oauth/dpop/replay.js';
import { memoryReplay } from '../helpers/replay.js';

describe('processReplay', () => {
  it('takes each key once until it expires, in memory', () => {
    const store = memoryReplay();
    const consume = processReplay(store);
    expect(consume('dpop:k:1', 2000, 1000)).toBe(true);
    expect(consume('dpop:k:1', 2000, 1500)).toBe(false);
    expect(consume('dpop:k:2', 2000, 1500)).toBe(true);
    // Past its window the proof would be refused for its iat anyway; the key is free again.
    expect(consume('dpop:k:1', 3000, 2000)).toBe(true);
    expect(store.calls).toBe(0);
  });

  it('keeps refusing replays of live keys while expired ones are dropped behind', () => {
    const store = memoryReplay();
    const consume = processReplay(store);
    for (let i = 0; i < 10_000; i++) expect(consume(`old-${i}`, 1000, 0)).toBe(true);
    // 10,000 more after the first ones expired: the expired prefix goes, the live ones stay.
    for (let i = 0; i < 10_000; i++) expect(consume(`new-${i}`, 10_000, 5000)).toBe(true);
    for (let i = 0; i < 10_000; i += 997) expect(consume(`new-${i}`, 10_000, 5000)).toBe(false);
    expect(store.calls).toBe(0);
  });
});
