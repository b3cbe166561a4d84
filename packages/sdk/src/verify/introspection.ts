// RFC 7662 token introspection for revocation-sensitive APIs: the API, registered as a client,
// asks whether a locally valid token is still active. Answers are cached briefly per token.

import { basicAuthorization } from '../shared/basic-auth.js';
import type { FetchLike } from '../shared/discovery.js';
import { TokenVerificationError } from './errors.js';
import { makeRoom } from '../shared/bounded-map.js';

export interface IntrospectionOptions {
  /** The API's own client_id (registered with grant_types [] and resource_uris [its audience]). */
  clientId: string;
  clientSecret: string;
  /** How long an answer is reused: the longest a revoked token keeps working (default 5000 ms). */
  cacheTtlMs?: number;
  /** Timeout of one introspection request (default 5000 ms). */
  timeoutMs?: number;
}

const DEFAULT_CACHE_TTL_MS = 5_000;
const DEFAULT_TIMEOUT_MS = 5_000;
/** Answers kept at most; the oldest go first. */
const MAX_ENTRIES = 10_000;

interface Answer {
  active: boolean;
  expiresAt: number;
}

export class IntrospectionClient {
  readonly #authorization: string;
  readonly #cacheTtlMs: number;
  readonly #timeoutMs: number;
  readonly #fetch: FetchLike;
  readonly #answers = new Map<string, Answer>();
  readonly #pending = new Map<string, Promise<boolean>>();

  constructor(options: IntrospectionOptions, fetchImpl: FetchLike) {
    this.#authorization = basicAuthorization(options.clientId, options.clientSecret);
    this.#cacheTtlMs = options.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.#fetch = fetchImpl;
  }

  /**
   * Whether the server calls the token active. `key` names the token in the cache (its issuer's
   * jti, unique per token and already authenticated by the signature).
   */
  isActive(endpointUrl: string, token: string, key: string): Promise<boolean> {
    const now = Date.now();
    const known = this.#answers.get(key);
    if (known !== undefined) {
      if (now < known.expiresAt) return Promise.resolve(known.active);
      this.#answers.delete(key);
    }
    let pending = this.#pending.get(key);
    if (pending === undefined) {
      pending = this.#ask(endpointUrl, token)
        .then((active) => {
          this.#remember(key, active);
          return active;
        })
        .finally(() => this.#pending.delete(key));
      this.#pending.set(key, pending);
    }
    return pending;
  }

  #remember(key: string, active: boolean): void {
    if (this.#cacheTtlMs <= 0) return;
    makeRoom(this.#answers, MAX_ENTRIES);
    this.#answers.set(key, { active, expiresAt: Date.now() + this.#cacheTtlMs });
  }

  async #ask(endpointUrl: string, token: string): Promise<boolean> {
    let res: Response;
    try {
      res = await this.#fetch(endpointUrl, {
        method: 'POST',
        headers: {
          authorization: this.#authorization,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }).toString(),
        signal: AbortSignal.timeout(this.#timeoutMs),
      });
    } catch (err) {
      throw new TokenVerificationError('introspection_unavailable', `cannot reach ${endpointUrl}: ${(err as Error).message}`, { cause: err });
    }
    let body: unknown;
    try {
      body = await res.json();
    } catch {
      body = undefined;
    }
    if (res.status !== 200) {
      const error = typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined;
      throw new TokenVerificationError(
        'introspection_unavailable',
        `${endpointUrl} answered HTTP ${res.status}${typeof error === 'string' ? ` ${error}` : ''}`,
      );
    }
    // RFC 7662 §2.2: `active` is the one REQUIRED member.
    const active = typeof body === 'object' && body !== null ? (body as { active?: unknown }).active : undefined;
    if (typeof active !== 'boolean') {
      throw new TokenVerificationError('introspection_unavailable', `${endpointUrl} did not answer an RFC 7662 response`);
    }
    return active;
  }
}
