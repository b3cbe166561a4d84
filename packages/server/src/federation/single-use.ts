// Single-use jti of platform tokens (a trust's singleUseJti), without a database write the token
// request waits for. This process remembers each jti until the token's exp and refuses a second
// use at once. Then:
// - with Redis (M2M_AUTH_REDIS_URL, the store the rate limits share), one SET NX per new jti decides
//   for every instance and worker: a jti used anywhere is refused everywhere;
// - without Redis, or while it does not answer, the key is written behind the request to the
//   replay store private_key_jwt uses (storage `replay`, RFC 7523 §3 item 7), which every
//   instance and worker shares. A jti first used in another process is accepted once more here;
//   the write finds the key taken and `federation.jti_replayed` is announced (a warning line), so
//   such a replay is detected, not prevented.

import type { ReplayStore } from '../storage/types.js';
import type { EventBus } from '../observability/events.js';

/** jtis remembered per process; past it the expired ones go, then the oldest. */
export const MAX_REMEMBERED_JTIS = 100_000;

/** The shared decision (Redis): true first use, false used before, undefined when it cannot say. */
export type SharedFirstUse = (key: string, expMs: number, now: number) => Promise<boolean | undefined> | undefined;

export interface SingleUseOptions {
  replay: ReplayStore;
  events: EventBus;
  shared?: SharedFirstUse;
  maxEntries?: number;
}

export class SingleUseJtis {
  readonly #seen = new Map<string, number>();
  readonly #replay: ReplayStore;
  readonly #events: EventBus;
  readonly #max: number;
  readonly #shared: SharedFirstUse | undefined;

  constructor(options: SingleUseOptions) {
    this.#replay = options.replay;
    this.#events = options.events;
    this.#shared = options.shared;
    this.#max = options.maxEntries ?? MAX_REMEMBERED_JTIS;
  }

  /** True when `jti` of `trust` is used for the first time (until expMs); records it. */
  firstUse(trust: string, clientId: string, jti: string, expMs: number, now: number): boolean | Promise<boolean> {
    const key = `federated_jwt:${trust}:${jti}`;
    const until = this.#seen.get(key);
    if (until !== undefined && until > now) return false;
    if (this.#seen.size >= this.#max) this.#prune(now);
    this.#seen.set(key, expMs);
    const shared = this.#shared?.(key, expMs, now);
    if (shared === undefined) return this.#writeBehind(key, trust, clientId, jti, expMs, now);
    return shared.then((first) => first ?? this.#writeBehind(key, trust, clientId, jti, expMs, now));
  }

  #writeBehind(key: string, trust: string, clientId: string, jti: string, expMs: number, now: number): true {
    this.#replay.consumeOnce(key, expMs, now).then((first) => {
      if (!first) this.#events.emit('federation.jti_replayed', { trust, clientId, jti });
    }, () => {
      // The database did not answer: this process's memory still refuses a replay here.
    });
    return true;
  }

  #prune(now: number): void {
    for (const [key, until] of this.#seen) if (until <= now) this.#seen.delete(key);
    for (const key of this.#seen.keys()) {
      if (this.#seen.size < this.#max) break;
      this.#seen.delete(key);
    }
  }
}
