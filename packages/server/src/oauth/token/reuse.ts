// Token reuse (the client's `token_reuse`): a repeated request for the same scope and audience
// gets the client's last token again, with its remaining lifetime, while more than half of that
// lifetime is left and the token is still active; otherwise a new one is signed.

import type { ClientRecord } from '../../ground/records.js';
import type { RevocationCheck } from '../access-token.js';
import type { GrantResult } from './grants/grant.js';
import { bindingReuseKey, type TokenBinding } from '../request/binding.js';
import { makeRoom } from '../../ground/bounded-map.js';

/** A token kept for a client with token reuse on. */
export interface ReusableToken {
  /** The record it was minted for: the registry replaces the record on every change (update, disable, kill switch), which ends reuse. */
  client: ClientRecord;
  token: string;
  jti: string;
  issuedAtMs: number;
  expMs: number;
  /** Its lifetime, in seconds. */
  ttl: number;
  scope: string;
  /** "DPoP" for a DPoP-bound token, else "Bearer". */
  tokenType: 'DPoP' | 'Bearer';
}

/** Most (client, scope, audience) tokens remembered. */
const REUSE_CACHE_SIZE = 10_000;

export class TokenReuse {
  /** JSON [clientId, scope, audience, binding] -> token; insertion order is recency order (LRU). */
  readonly #tokens = new Map<string, ReusableToken>();
  readonly #revocations: RevocationCheck;
  readonly #now: () => number;

  constructor(revocations: RevocationCheck, now: () => number) {
    this.#revocations = revocations;
    this.#now = now;
  }

  /**
   * What a token is remembered under. The binding is part of it: a bound token goes only to a
   * request that proved the same key or certificate, never to an unbound one (RFC 9449 §6, RFC 8705 §3).
   */
  key(client: ClientRecord, result: GrantResult, binding: TokenBinding | undefined): string {
    return JSON.stringify([client.clientId, result.scope, result.audience, bindingReuseKey(binding)]);
  }

  /**
   * The remembered token and its remaining whole seconds, while more than half of its lifetime is
   * left and it is still active; else undefined (and the entry is dropped).
   */
  take(key: string, client: ClientRecord): { entry: ReusableToken; expiresIn: number } | undefined {
    const entry = this.#tokens.get(key);
    if (!entry) return undefined;
    this.#tokens.delete(key);
    const remainingMs = entry.expMs - this.#now();
    if (
      entry.client !== client
      || remainingMs * 2 <= entry.ttl * 1000
      || this.#revocations.has(entry.jti)
      || (client.tokensRevokedAt !== null && entry.issuedAtMs <= client.tokensRevokedAt)
    ) {
      return undefined;
    }
    this.#tokens.set(key, entry);
    // Never promise more than is left: round the remaining lifetime down.
    return { entry, expiresIn: Math.floor(remainingMs / 1000) };
  }

  remember(key: string, entry: ReusableToken): void {
    this.#tokens.delete(key);
    makeRoom(this.#tokens, REUSE_CACHE_SIZE);
    this.#tokens.set(key, entry);
  }

  /** Forgets every token (a newly active signing key should sign the next one). */
  clear(): void {
    this.#tokens.clear();
  }
}
