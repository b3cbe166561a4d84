// Where DPoP proof jtis are spent (RFC 9449 §11.1). On PostgreSQL, the shared replay table
// (storage's ReplayStore, one atomic statement), so a proof is single-use across every instance.
// On the embedded SQLite, this process's memory: a proof lives for two minutes at most, and a
// synchronous database write per token request would cost more than the proof check itself.

import type { ReplayStore } from '../../storage/types.js';

/** Most jtis kept in memory; beyond it, new ones go to the database (still single-use, slower). */
const MAX_IN_MEMORY = 500_000;
/**
 * Every this many insertions, the expired entries at the front are dropped: a proof's window ends
 * a minute after its iat, so insertion order is nearly expiry order. The whole map is swept only
 * when it is full (a walk over 300,000 entries every 4,096 insertions cost about 1 µs a request).
 */
const PRUNE_EVERY = 4096;

export type ConsumeOnce = (key: string, expiresAt: number, now: number) => boolean | Promise<boolean>;

/** The database's check: shared by every instance on it. */
export function sharedReplay(store: ReplayStore): ConsumeOnce {
  return (key, expiresAt, now) => store.consumeOnce(key, expiresAt, now);
}

/** This process's check, falling back to the database when memory is full. */
export function processReplay(store: ReplayStore): ConsumeOnce {
  const used = new Map<string, number>();
  let inserts = 0;
  /** While a jti that went to the database may still be replayed, unknown jtis are checked there too. */
  let overflowUntil = 0;
  return (key, expiresAt, now) => {
    const until = used.get(key);
    if (until !== undefined && until > now) return false;
    if (used.size >= MAX_IN_MEMORY) {
      for (const [k, t] of used) if (t <= now) used.delete(k);
    } else if (++inserts % PRUNE_EVERY === 0) {
      for (const [k, t] of used) {
        if (t > now) break;
        used.delete(k);
      }
    }
    if (used.size >= MAX_IN_MEMORY || now < overflowUntil) {
      overflowUntil = Math.max(overflowUntil, expiresAt);
      return store.consumeOnce(key, expiresAt, now);
    }
    used.set(key, expiresAt);
    return true;
  };
}
