// Platform tokens whose signature was already checked. A Kubernetes projected service-account
// token or a JWT-SVID is reused by design, for an hour or more: the same bytes come with every
// token request of the workload. Their claims, once verified with a trust's key set, are kept
// until the token's exp, so a repeated token costs a Map lookup instead of a signature check.
// An entry counts only with the key set it was verified with: keys fetched again (rotation, a
// changed trust) check the token again. Every claim rule still runs on every request.

import { makeRoom } from '../ground/bounded-map.js';

/** Entries kept; the oldest go first. */
export const MAX_VERIFIED_TOKENS = 5_000;
/** Longer tokens are not kept (a projected service-account token is 1 to 2 KB). */
export const MAX_KEPT_TOKEN_LENGTH = 4_096;

interface Entry {
  keys: object;
  claims: Readonly<Record<string, unknown>>;
  expMs: number;
}

export class VerifiedTokens {
  readonly #entries = new Map<string, Entry>();
  readonly #max: number;

  constructor(max = MAX_VERIFIED_TOKENS) {
    this.#max = max;
  }

  /** The claims of `token` if it was verified with `keys` and has not expired. */
  get(token: string, keys: object, now: number): Readonly<Record<string, unknown>> | undefined {
    const e = this.#entries.get(token);
    if (e === undefined) return undefined;
    if (e.keys !== keys || e.expMs <= now) {
      this.#entries.delete(token);
      return undefined;
    }
    return e.claims;
  }

  /** Keeps `claims` of `token`, verified with `keys`, until `expMs`. */
  remember(token: string, keys: object, claims: Readonly<Record<string, unknown>>, expMs: number): void {
    if (token.length > MAX_KEPT_TOKEN_LENGTH || !Number.isFinite(expMs)) return;
    makeRoom(this.#entries, this.#max);
    this.#entries.set(token, { keys, claims, expMs });
  }
}
