import { afterEach, describe, expect, it, vi } from 'vitest';
import { afterReads, afterWrites, beforeWrites, connectionAccepted, STORM_BATCH } from '../../src/http/batch.js';

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

  it('releases every request of one turn together (three immediates per batch, not per request), in arrival order', async () => {
    const spy = vi.spyOn(globalThis, 'setImmediate');
    const order: number[] = [];
    const all = [1, 2, 3, 4].map((n) => afterReads().then(() => order.push(n)));
    expect(spy).toHaveBeenCalledTimes(3);
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

  it('writes after every answer of the batch is computed, and logs after every write', async () => {
    const events: string[] = [];
    const request = async (n: number) => {
      await afterReads();
      events.push(`compute ${n}`);
      // A handler that takes a few more steps than the others still computes before any write.
      for (let i = 0; i < n; i++) await Promise.resolve();
      events.push(`computed ${n}`);
      const writes = beforeWrites();
      expect(writes).toBeDefined();
      await writes;
      events.push(`write ${n}`);
      afterWrites(() => events.push(`log ${n}`));
    };
    await Promise.all([request(3), request(1), request(2)]);
    await checkPhase();
    const phase = (e: string) => e.split(' ')[0];
    expect(events.map(phase)).toEqual(['compute', 'compute', 'compute', 'computed', 'computed', 'computed', 'write', 'write', 'write', 'log', 'log', 'log']);
  });

  it('outside a batch, writes and logs at once', () => {
    expect(beforeWrites()).toBeUndefined();
    let logged = false;
    afterWrites(() => (logged = true));
    expect(logged).toBe(true);
  });

  it('requests left for the next turn by a small batch still write after computing', async () => {
    const writes: (Promise<void> | undefined)[] = [];
    const all = Array.from({ length: STORM_BATCH + 2 }, () => afterReads().then(() => void writes.push(beforeWrites())));
    connectionAccepted();
    await Promise.all(all);
    expect(writes.length).toBe(STORM_BATCH + 2);
    expect(writes.every((w) => w !== undefined)).toBe(true);
    await Promise.all(writes);
  });
});
