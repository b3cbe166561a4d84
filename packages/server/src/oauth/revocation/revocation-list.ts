// The revoked-jti list (RFC 7009 §2): persisted in storage until each token's exp, and held in
// memory so that introspection answers without a storage round trip.

import type { RevocationRecord } from '../../ground/records.js';
import type { RevocationStore } from '../../storage/types.js';
import type { RevocationCheck } from '../access-token.js';

export class RevocationList implements RevocationCheck {
  readonly #store: RevocationStore;
  /** jti -> expiresAt (ms). */
  readonly #revoked = new Map<string, number>();

  constructor(store: RevocationStore) {
    this.#store = store;
  }

  /** Loads every unexpired revocation from storage (at start, and to resynchronise). */
  async load(now: number): Promise<void> {
    const records = await this.#store.listRevocations(now);
    this.#revoked.clear();
    for (const r of records) this.#revoked.set(r.jti, r.expiresAt);
  }

  has(jti: string): boolean {
    return this.#revoked.has(jti);
  }

  /** Persists first, so a failed write reaches the caller and nothing is acknowledged unsaved. */
  async revoke(record: RevocationRecord): Promise<void> {
    await this.#store.revokeToken(record);
    this.#revoked.set(record.jti, record.expiresAt);
  }

  /** Records a revocation another instance made (already persisted there). */
  remember(jti: string, expiresAt: number): void {
    this.#revoked.set(jti, expiresAt);
  }

  /** Forgets revocations of tokens that have expired anyway. */
  prune(now: number): number {
    let n = 0;
    for (const [jti, exp] of this.#revoked) {
      if (exp <= now) {
        this.#revoked.delete(jti);
        n++;
      }
    }
    return n;
  }

  get size(): number {
    return this.#revoked.size;
  }
}
