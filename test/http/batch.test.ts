import { afterEach, describe, expect, it, vi } from 'vitest';
import { afterReads, connectionAccepted, STORM_BATCH } from '../../src/http/batch.js';

const checkPhase = () => new Promise<void>((resolve) => setImmediate(resolve));

describe('afterReads (handlers batched by event-loop turn)', () => {
  afterEach(() => vi.restoreAllMocks());

  it('releases in the check phase of the turn, not in the microtasks of the caller', async () => {
    let released = false;
    const done = afterReads().then(() => (released = true));
    await Promise.resolve();
    await new Promise((resolve) => process.nextTick(resolve));
    expect(released).toBe(false);
    await checkPhase();
    expect(released).toBe(true);
    await done;
  });

  it('releases every request of one turn with one setImmediate, in arrival order', async () => {
    const spy = vi.spyOn(globalThis, 'setImmediate');
    const order: number[] = [];
    const all = [1, 2, 3, 4].map((n) => afterReads().then(() => order.push(n)));
    expect(spy).toHaveBeenCalledTimes(1);
    await Promise.all(all);
    expect(order).toEqual([1, 2, 3, 4]);
  });

  it('a request that arrives while a batch is released waits for the next turn', async () => {
    await afterReads();
    // Now inside the release of a batch.
    let released = false;
    const next = afterReads().then(() => (released = true));
    for (let i = 0; i < 10; i++) await Promise.resolve();
    expect(released).toBe(false);
    await next;
    expect(released).toBe(true);
  });

  it('while connections are being accepted, releases a few per turn so that the next accept is not kept waiting', async () => {
    const order: number[] = [];
    const n = STORM_BATCH * 2 + 1;
    const all = Array.from({ length: n }, (_, i) => afterReads().then(() => order.push(i)));
    connectionAccepted();
    await checkPhase();
    expect(order).toEqual(Array.from({ length: STORM_BATCH }, (_, i) => i));
    // No new connection in this turn: everything left goes in the next one, still in order.
    await Promise.all(all);
    expect(order).toEqual(Array.from({ length: n }, (_, i) => i));
  });
});
