// Platform tokens whose signature was already checked. A Kubernetes projected service-account
// token or a JWT-SVID is reused by design, for an hour or more: the same bytes come with every
// token request of the workload. Their claims, once verified with a trust's key set, are kept
// until the token's exp, so a repeated token costs a Map lookup instead of a signature check.
// An entry counts only with the key set it was verified with: keys fetched again (rotation, a
// changed trust) check the token again. Every claim rule still runs on every request.
//
// A token is kept the second time it is verified, not the first: most tokens seen once are never
// seen again (a CI job's token), and keeping each one (the token and its claims, 2 to 3 KB) until
// 5,000 newer ones push it out made every such request pay for copying it through the young
// generation: 13 µs a request on the first-seen federated benchmark (BENCHMARKS.md). What marks
// the first time is a number taken from the signature's last characters, kept in a Set without a
// heap object per entry. Two tokens that share it only make the second one kept on its first
// verification: this decides what is cached, never what is accepted.

import { makeRoom } from '../ground/bounded-map.js';

/** Entries kept; the oldest go first. */
export const MAX_VERIFIED_TOKENS = 5_000;
/** Tokens verified once and not kept, remembered by their mark; the oldest go first. */
const MAX_MARKED = 4 * MAX_VERIFIED_TOKENS;
/** Longer tokens are not kept (a projected service-account token is 1 to 2 KB). */
export const MAX_KEPT_TOKEN_LENGTH = 4_096;

interface Entry {
  keys: object;
  claims: Readonly<Record<string, unknown>>;
  expMs: number;
}

/**
 * A number from the last characters of `token` (its signature's): 28 bits, so a small integer
 * that a Set holds without allocating. Not a hash of the whole token: it chooses what is cached only.
 */
export function tokenMark(token: string): number {
  const n = token.length;
  return token.charCodeAt(n - 2) | (token.charCodeAt(n - 3) << 7) | (token.charCodeAt(n - 4) << 14) | ((token.charCodeAt(n - 5) & 0x7f) << 21);
}

export class VerifiedTokens {
  readonly #entries = new Map<string, Entry>();
  /** Marks of tokens verified once and not kept. */
  readonly #once = new Set<number>();
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

  /** Keeps `claims` of `token`, verified with `keys`, until `expMs`, if it was verified before (see above). */
  remember(token: string, keys: object, claims: Readonly<Record<string, unknown>>, expMs: number): void {
    if (token.length > MAX_KEPT_TOKEN_LENGTH || token.length < 8 || !Number.isFinite(expMs)) return;
    const mark = tokenMark(token);
    if (!this.#once.delete(mark)) {
      makeRoom(this.#once, MAX_MARKED);
      this.#once.add(mark);
      return;
    }
    makeRoom(this.#entries, this.#max);
    this.#entries.set(token, { keys, claims, expMs });
  }
}
