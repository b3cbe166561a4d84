// Request limits of the public endpoints: the per-client token request rate, the per-caller
// introspection rate, and the throttling of failed client authentication that RFC 6749 §2.3.1
// asks for ("MUST protect against brute force attacks").
//
// Over a limit the answer is 429 with Retry-After (RFC 6585 §4, RFC 9110 §10.2.3) and the OAuth
// body {"error":"temporarily_unavailable"}: the registered OAuth code for "cannot handle the request
// now, try later", where invalid_request would tell the client its request is malformed.
//
// With M2M_AUTH_REDIS_URL the state is shared by every instance (./redis-store.ts); otherwise, and
// while Redis cannot be reached, each process keeps its own (./local.ts). Failed authentications
// are always counted in the process too, so throttling goes on through a Redis outage and a
// throttled address is turned away without a round trip.

import type { Logger } from 'pino';
import { OAuthError } from '../ground/errors.js';
import type { ClientRecord } from '../ground/records.js';
import type { Config } from '../config/schema.js';
import { DEFAULT_MAX_KEYS, gcraInterval, gcraTolerance, LocalFailureCounter, LocalRateLimiter } from './local.js';
import type { RedisLimitStore } from './redis-store.js';
import { addressKey } from './address-key.js';

/** The settings the limits read (documented in src/config/schema.ts and docs/endpoints.md, "Limits"). */
export type LimitsConfig = Pick<Config,
  | 'tokenRateLimit' | 'introspectionRateLimit' | 'rateLimitBurst'
  | 'authFailuresPerAddress' | 'authFailuresPerClient' | 'authFailureWindow'
  | 'redisUrl' | 'redisKeyPrefix'>;

export interface LimitsOptions {
  logger: Logger;
  /** Clock in epoch ms (tests). */
  now?: () => number;
  /** Most keys each per-process table tracks. */
  maxKeys?: number;
}

/**
 * RFC 6749 §2.3.1: the server MUST protect against brute force. `check` runs before any secret or
 * assertion is checked and throws a 429 OAuthError while the client_id or the address has failed
 * too often; `failed` counts every invalid_client answer. The client_id is given only when it has
 * our shape. Both return a promise only when they have to wait for a shared store.
 */
export interface AuthThrottle {
  check(clientId: string | undefined, ip: string | undefined): void | Promise<void>;
  failed(clientId: string | undefined, ip: string | undefined): void | Promise<void>;
}

const SWEEP_INTERVAL_MS = 60_000;
const DESCRIPTION = 'Too many requests; retry after the number of seconds in Retry-After.';

/** The 429 answer; `waitMs` becomes Retry-After in whole seconds, at least 1. */
export function tooManyRequests(waitMs: number, detail: string, clientId?: string): OAuthError {
  return new OAuthError('temporarily_unavailable', DESCRIPTION, {
    status: 429,
    detail,
    headers: { 'retry-after': String(Math.max(1, Math.ceil(waitMs / 1000))) },
    ...(clientId !== undefined && { clientId }),
  });
}

export class Limits {
  readonly #c: LimitsConfig;
  readonly #now: () => number;
  readonly #logger: Logger;
  /** Made by start() when Redis is configured (ioredis is loaded only then). */
  #store: RedisLimitStore | undefined;
  readonly #token: LocalRateLimiter;
  readonly #introspection: LocalRateLimiter;
  readonly #failedClients: LocalFailureCounter;
  readonly #failedAddresses: LocalFailureCounter;
  readonly #windowMs: number;
  readonly #keys: { token: string; introspection: string; client: string; address: string; once: string };
  #sweep: NodeJS.Timeout | undefined;

  constructor(config: LimitsConfig, options: LimitsOptions) {
    // Only the limit keys: the server passes its whole Config, secrets included.
    this.#c = {
      tokenRateLimit: config.tokenRateLimit,
      introspectionRateLimit: config.introspectionRateLimit,
      rateLimitBurst: config.rateLimitBurst,
      authFailuresPerAddress: config.authFailuresPerAddress,
      authFailuresPerClient: config.authFailuresPerClient,
      authFailureWindow: config.authFailureWindow,
      redisUrl: config.redisUrl,
      redisKeyPrefix: config.redisKeyPrefix,
    };
    this.#now = options.now ?? Date.now;
    const maxKeys = options.maxKeys ?? DEFAULT_MAX_KEYS;
    this.#token = new LocalRateLimiter(maxKeys);
    this.#introspection = new LocalRateLimiter(maxKeys);
    this.#failedClients = new LocalFailureCounter(maxKeys);
    this.#failedAddresses = new LocalFailureCounter(maxKeys);
    this.#windowMs = config.authFailureWindow * 1000;
    const p = config.redisKeyPrefix;
    this.#keys = {
      token: `${p}rate:token:`, introspection: `${p}rate:introspection:`, client: `${p}authfail:client:`, address: `${p}authfail:address:`,
      once: `${p}once:`,
    };
    this.#logger = options.logger;
  }

  /**
   * Connects to Redis when configured (a bounded wait; never fails) and starts the sweeper. Until
   * then the limits are per process.
   */
  async start(): Promise<void> {
    this.#sweep ??= setInterval(() => this.sweep(), SWEEP_INTERVAL_MS);
    this.#sweep.unref();
    if (this.#c.redisUrl && this.#store === undefined) {
      const { RedisLimitStore } = await import('./redis-store.js');
      this.#store = new RedisLimitStore({ url: this.#c.redisUrl, logger: this.#logger });
    }
    await this.#store?.start();
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
    await this.#store?.close();
  }

  /**
   * A key used once across every instance and worker (a single-use platform token jti), in Redis
   * until `expMs`: true the first time, false after. Undefined when Redis is not configured or not
   * answering: the caller keeps its own memory then.
   */
  readonly sharedFirstUse = (key: string, expMs: number, now: number): Promise<boolean | undefined> | undefined => {
    const store = this.#store;
    if (!store?.available) return undefined;
    return store.once(`${this.#keys.once}${key}`, expMs - now + 1000).catch((err: unknown) => {
      store.failed(err);
      return undefined;
    });
  };

  /** Drops per-process entries that hold no information any more; returns how many. */
  sweep(now = this.#now()): number {
    return this.#token.sweep(now) + this.#introspection.sweep(now) + this.#failedClients.sweep(now) + this.#failedAddresses.sweep(now);
  }

  /**
   * The token endpoint step: throws the 429 OAuthError when the client is over its rate. In the
   * per-process case this is a clock read, one Map lookup and a few flops (no allocation).
   */
  readonly tokenRequest = (client: ClientRecord): void | Promise<void> => {
    const rate = client.rateLimit ?? this.#c.tokenRateLimit;
    if (rate === 0) return;
    const now = this.#now();
    if (this.#store?.available) return this.#sharedTake(this.#token, this.#keys.token, 'token', client.clientId, rate, now);
    const wait = this.#token.take(client.clientId, rate, this.#c.rateLimitBurst, now);
    if (wait > 0) throw tooManyRequests(wait, 'token request rate limit', client.clientId);
  };

  /** The introspection endpoint step: throws the 429 OAuthError when the caller is over its rate. */
  readonly introspectionRequest = (caller: ClientRecord): void | Promise<void> => {
    const rate = this.#c.introspectionRateLimit;
    if (rate === 0) return;
    const now = this.#now();
    if (this.#store?.available) return this.#sharedTake(this.#introspection, this.#keys.introspection, 'introspection', caller.clientId, rate, now);
    const wait = this.#introspection.take(caller.clientId, rate, this.#c.rateLimitBurst, now);
    if (wait > 0) throw tooManyRequests(wait, 'introspection rate limit', caller.clientId);
  };

  async #sharedTake(local: LocalRateLimiter, prefix: string, what: string, clientId: string, rate: number, now: number): Promise<void> {
    const burst = this.#c.rateLimitBurst;
    let wait: number;
    try {
      wait = await this.#store!.take(prefix + clientId, gcraInterval(rate), gcraTolerance(rate, burst), now);
    } catch (err) {
      // Fail open to the per-process limit: an outage neither refuses requests nor slows them.
      this.#store!.failed(err);
      wait = local.take(clientId, rate, burst, now);
    }
    if (wait > 0) throw tooManyRequests(wait, `${what} rate limit`, clientId);
  }

  /**
   * The client authenticator's throttle. `clientId` is the presented one when it has our shape
   * (anything else cannot be a client, and may be a secret sent in the wrong field: never a key).
   */
  readonly authThrottle: AuthThrottle = {
    check: (clientId, ip) => {
      const perClient = clientId !== undefined && this.#c.authFailuresPerClient > 0;
      const perAddress = ip !== undefined && ip !== '' && this.#c.authFailuresPerAddress > 0;
      if (!perClient && !perAddress) return;
      const now = this.#now();
      const address = perAddress ? addressKey(ip) : '';
      let wait = 0;
      if (perClient) wait = this.#failedClients.wait(clientId, this.#c.authFailuresPerClient, now);
      if (perAddress) wait = Math.max(wait, this.#failedAddresses.wait(address, this.#c.authFailuresPerAddress, now));
      if (wait > 0) throw tooManyRequests(wait, 'too many failed client authentications', clientId);
      if (this.#store?.available) return this.#sharedCheck(perClient ? clientId : undefined, perAddress ? address : undefined, now);
    },
    failed: (clientId, ip) => {
      const perClient = clientId !== undefined && this.#c.authFailuresPerClient > 0;
      const perAddress = ip !== undefined && ip !== '' && this.#c.authFailuresPerAddress > 0;
      if (!perClient && !perAddress) return;
      const now = this.#now();
      const address = perAddress ? addressKey(ip) : '';
      if (perClient) this.#failedClients.fail(clientId, this.#windowMs, now);
      if (perAddress) this.#failedAddresses.fail(address, this.#windowMs, now);
      if (this.#store?.available) return this.#sharedFail(perClient ? clientId : undefined, perAddress ? address : undefined, now);
    },
  };

  async #sharedCheck(clientId: string | undefined, address: string | undefined, now: number): Promise<void> {
    const keys: string[] = [];
    const limits: number[] = [];
    if (clientId !== undefined) {
      keys.push(this.#keys.client + clientId);
      limits.push(this.#c.authFailuresPerClient);
    }
    if (address !== undefined) {
      keys.push(this.#keys.address + address);
      limits.push(this.#c.authFailuresPerAddress);
    }
    let wait = 0;
    try {
      wait = await this.#store!.wait(keys, limits, now);
    } catch (err) {
      // The per-process counters were checked already: they keep throttling through the outage.
      this.#store!.failed(err);
    }
    if (wait > 0) throw tooManyRequests(wait, 'too many failed client authentications', clientId);
  }

  async #sharedFail(clientId: string | undefined, address: string | undefined, now: number): Promise<void> {
    const keys: string[] = [];
    if (clientId !== undefined) keys.push(this.#keys.client + clientId);
    if (address !== undefined) keys.push(this.#keys.address + address);
    try {
      await this.#store!.fail(keys, this.#windowMs, now);
    } catch (err) {
      this.#store!.failed(err);
    }
  }
}
