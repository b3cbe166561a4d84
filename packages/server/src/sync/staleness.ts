// How long cached clients stay trusted without the change log (M2M_AUTH_STALENESS_BOUND).
//
// The token endpoint and introspection answer from the client cache and the in-memory revocation
// list. Those are only as fresh as the last successful read of the change log: while it cannot be
// read, a revocation, disabled client or rotated secret made on another instance is not seen here.
// So cached state is trusted for a bounded time after that read and beyond it every request that
// needs it gets 503 with Retry-After instead of a stale answer.

import { temporarilyUnavailable } from '../ground/errors.js';
import type { ClientLookup, ClientRecord } from '../ground/records.js';

export interface StalenessGuardOptions {
  clients: ClientLookup;
  /** When the change log was last read successfully (epoch ms): ClusterSync.lastSuccess. */
  lastSuccess: () => number;
  /** How long after that read cached state is still trusted (ms). */
  boundMs: number;
  /** Wall clock in epoch ms; the same clock lastSuccess is measured on. */
  now?: () => number;
}

/**
 * The client lookup of the OAuth endpoints: the registry's cache, refused once the change log has
 * not been read for longer than the bound, so no decision rests on state that may be stale beyond it.
 */
export class StalenessGuard implements ClientLookup {
  readonly #o: StalenessGuardOptions;
  readonly #now: () => number;

  constructor(options: StalenessGuardOptions) {
    if (!(options.boundMs > 0)) throw new RangeError('StalenessGuard boundMs must be > 0');
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Milliseconds since the change log was last read. */
  age(): number {
    return this.#now() - this.#o.lastSuccess();
  }

  /** True while cached clients and revocations may be used. */
  fresh(): boolean {
    return this.age() <= this.#o.boundMs;
  }

  /** Throws temporarily_unavailable when cached state is past the bound. */
  check(): void {
    const age = this.age();
    if (age > this.#o.boundMs) {
      throw temporarilyUnavailable(`change log not read for ${age} ms (bound ${this.#o.boundMs} ms): cached clients and revocations not trusted`);
    }
  }

  /** The registry's lookup, or a rejection when cached state is past the bound (not an async function: one promise a lookup, not two). */
  get(clientId: string): Promise<ClientRecord | undefined> {
    try {
      this.check();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#o.clients.get(clientId);
  }
}
