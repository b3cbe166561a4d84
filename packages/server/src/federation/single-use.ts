// Single-use jti of platform tokens (a trust's singleUseJti), without a database write the token
// request waits for: this process remembers each jti until the token's exp and refuses a second
// use at once; the same key is written behind the request to the replay store private_key_jwt
// uses (storage `replay`, RFC 7523 §3 item 7), shared by every instance and worker. A jti first
// used on another instance or worker is refused there by its memory only after that write is
// seen: the write reports it, and `federation.jti_replayed` is announced (a warning line) so the
// replay does not go unnoticed.

import type { ReplayStore } from '../storage/types.js';
import type { EventBus } from '../observability/events.js';

/** jtis remembered per process; past it the expired ones go, then the oldest. */
export const MAX_REMEMBERED_JTIS = 100_000;

export interface SingleUseOptions {
  replay: ReplayStore;
  events: EventBus;
  maxEntries?: number;
}

export class SingleUseJtis {
  readonly #seen = new Map<string, number>();
  readonly #replay: ReplayStore;
  readonly #events: EventBus;
  readonly #max: number;

  constructor(options: SingleUseOptions) {
    this.#replay = options.replay;
    this.#events = options.events;
    this.#max = options.maxEntries ?? MAX_REMEMBERED_JTIS;
  }

  /** True when `jti` of `trust` is used for the first time here (until expMs); records it. */
  firstUse(trust: string, clientId: string, jti: string, expMs: number, now: number): boolean {
    const key = `federated_jwt:${trust}:${jti}`;
    const until = this.#seen.get(key);
    if (until !== undefined && until > now) return false;
    if (this.#seen.size >= this.#max) this.#prune(now);
    this.#seen.set(key, expMs);
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
