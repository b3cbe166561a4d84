// makeRoom (src/ground/bounded-map.ts): the bound every cache and memory of the server keeps.

import { describe, expect, it } from 'vitest';
import { makeRoom } from '../../src/ground/bounded-map.js';

function filled(n: number): Map<number, number> {
  const m = new Map<number, number>();
  for (let i = 0; i < n; i++) m.set(i, i);
  return m;
}

describe('makeRoom', () => {
  it('does nothing while there is room', () => {
    const m = filled(9);
    makeRoom(m, 10);
    expect(m.size).toBe(9);
  });

  it('drops the oldest sixteenth of a full Map, in insertion order', () => {
    const m = filled(320);
    makeRoom(m, 320);
    expect(m.size).toBe(300);
    expect([...m.keys()][0]).toBe(20);
    expect(m.has(319)).toBe(true);
  });

  it('drops one at a time from a Map smaller than sixteen', () => {
    const m = filled(3);
    makeRoom(m, 3);
    expect([...m.keys()]).toEqual([1, 2]);
  });

  it('brings an overfull Map (a lowered bound) back under it', () => {
    const m = filled(100);
    makeRoom(m, 50);
    expect(m.size).toBe(47);
    expect(m.has(99)).toBe(true);
  });

  it('keeps a Map written to forever within its bound, with the newest entries', () => {
    const m = new Map<number, number>();
    for (let i = 0; i < 100_000; i++) {
      makeRoom(m, 5000);
      m.set(i, i);
      expect(m.size).toBeLessThanOrEqual(5000);
    }
    expect(m.has(99_999)).toBe(true);
    expect(m.size).toBeGreaterThan(5000 - 5000 / 16);
  });
});
