// Per-process limiters (RFC 6749 §2.3.1 brute-force protection and request rates) with bounded
// memory: GCRA cells for request rates, fixed-window counters for failed authentications.
//
// Every entry knows when it stops mattering (`until`): a GCRA cell whose theoretical arrival time
// has passed, or a window that has ended, is the same as no entry. Such entries are swept every
// minute and whenever a table reaches its cap; a table still full of live entries drops its oldest
// sixteenth (src/ground/bounded-map.ts).

import { makeRoom } from '../ground/bounded-map.js';

/** Most keys one table tracks; beyond it the oldest entry goes. */
export const DEFAULT_MAX_KEYS = 100_000;

/** Floating-point slack (ms) so that a request exactly at the burst is not refused by rounding. */
const EPSILON_MS = 1e-6;

interface Expiring {
  /** Epoch ms after which the entry holds no information. */
  until: number;
}

class BoundedTable<C extends Expiring> {
  readonly entries = new Map<string, C>();
  readonly #maxKeys: number;

  constructor(maxKeys: number) {
    this.#maxKeys = maxKeys;
  }

  insert(key: string, cell: C, now: number): void {
    if (this.entries.size >= this.#maxKeys) {
      this.sweep(now);
      // Still full of live entries: drop the oldest inserted. Caps memory whatever the traffic.
      makeRoom(this.entries, this.#maxKeys);
    }
    this.entries.set(key, cell);
  }

  /** Drops entries that hold no information at `now`; returns how many went. */
  sweep(now: number): number {
    let n = 0;
    for (const [key, cell] of this.entries) {
      if (cell.until <= now) {
        this.entries.delete(key);
        n++;
      }
    }
    return n;
  }
}

/**
 * GCRA state: `until` is the theoretical arrival time (TAT) of the next request. Entries are object
 * literals, not class instances: a class field declaration starts the field as undefined, and V8
 * would then box every number written to it (an allocation per request); a field that starts as a
 * number is updated in place.
 */
type Cell = Expiring;

/**
 * The generic cell rate algorithm: each request costs an interval of 1000 / rate ms and at most a
 * tolerance of burst × interval ms may be outstanding (burst = rate × burstSeconds, at least 1), so a
 * quiet key may send `burst` requests at once and then one every interval. One number per key,
 * updated in place: no allocation for a key already tracked.
 */
export function gcraInterval(rate: number): number {
  return 1000 / rate;
}

export function gcraTolerance(rate: number, burstSeconds: number): number {
  return (rate * burstSeconds > 1 ? rate * burstSeconds : 1) * (1000 / rate);
}

export class LocalRateLimiter {
  readonly #table: BoundedTable<Cell>;

  constructor(maxKeys = DEFAULT_MAX_KEYS) {
    this.#table = new BoundedTable(maxKeys);
  }

  /**
   * Counts a request and returns 0, or returns the ms until one would be allowed (not counted).
   * Takes the rate rather than precomputed parameters: numbers computed by a caller and passed in
   * would be boxed on every call; computed here they stay in registers.
   */
  take(key: string, rate: number, burstSeconds: number, now: number): number {
    const interval = 1000 / rate;
    const tolerance = (rate * burstSeconds > 1 ? rate * burstSeconds : 1) * interval;
    const cell = this.#table.entries.get(key);
    if (cell === undefined) {
      this.#table.insert(key, { until: now + interval }, now);
      return 0;
    }
    const next = (cell.until > now ? cell.until : now) + interval;
    const wait = next - now - tolerance;
    if (wait > EPSILON_MS) return wait;
    cell.until = next;
    return 0;
  }

  sweep(now: number): number {
    return this.#table.sweep(now);
  }

  get size(): number {
    return this.#table.entries.size;
  }
}

/** A fixed window that starts at the first failure: `count` failures until `until` (a literal, as Cell). */
interface Window extends Expiring {
  count: number;
}

/**
 * Failed authentications per key in fixed windows. A window opens at a key's first failure and
 * lasts `windowMs`; once it holds `limit` failures the key waits for its end. Nothing but the end
 * of the window clears it: a success does not (see docs/endpoints.md, "Limits").
 */
export class LocalFailureCounter {
  readonly #table: BoundedTable<Window>;

  constructor(maxKeys = DEFAULT_MAX_KEYS) {
    this.#table = new BoundedTable(maxKeys);
  }

  /** The ms until `key` may try again, or 0 when it has fewer than `limit` failures in its window. */
  wait(key: string, limit: number, now: number): number {
    const w = this.#table.entries.get(key);
    if (w === undefined || w.until <= now || w.count < limit) return 0;
    return w.until - now;
  }

  fail(key: string, windowMs: number, now: number): void {
    const w = this.#table.entries.get(key);
    if (w === undefined) {
      this.#table.insert(key, { count: 1, until: now + windowMs }, now);
    } else if (w.until <= now) {
      w.count = 1;
      w.until = now + windowMs;
    } else {
      w.count++;
    }
  }

  sweep(now: number): number {
    return this.#table.sweep(now);
  }

  get size(): number {
    return this.#table.entries.size;
  }
}
