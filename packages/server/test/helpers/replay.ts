// The replay store's contract in memory, for unit tests (the real stores pass
// src/storage/conformance.ts): each key once until it expires; `calls` counts consumeOnce.

import type { ReplayStore } from '../../src/storage/types.js';

export function memoryReplay(): ReplayStore & { keys: Map<string, number>; calls: number } {
  const keys = new Map<string, number>();
  return {
    keys,
    calls: 0,
    async consumeOnce(key, expiresAt, now) {
      this.calls++;
      const until = keys.get(key);
      if (until !== undefined && until > now) return false;
      keys.set(key, expiresAt);
      return true;
    },
    async listReplay() {
      return [];
    },
  };
}
