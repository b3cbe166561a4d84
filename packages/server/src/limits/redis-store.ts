// The limiters' shared state in Redis (M2M_AUTH_REDIS_URL), so every instance counts against the
// same limits. Each operation is one Lua script, atomic in Redis: GCRA for request rates, a fixed
// window (a hash of count and end, with a PEXPIRE) for failed authentications.
//
// Times come from the instance's clock (ARGV), not Redis's, so an injected clock drives both stores
// alike; instances are expected to keep NTP time. Keys expire a second after they stop mattering.
//
// Redis being slow or away must not slow the token endpoint: commands are never queued while
// disconnected, time out after a short while, and after any failure the store stays out of use for
// a cool-down while the caller uses its per-process limiter. Each outage is logged once.

import { Redis } from 'ioredis';
import type { Logger } from 'pino';

export interface RedisLimitStoreOptions {
  url: string;
  logger: Logger;
  /** Longest a command may take before the caller falls back (ms). */
  commandTimeoutMs?: number;
  /** How long the store stays out of use after a failed command (ms). */
  coolDownMs?: number;
  /** Longest start() waits for the first connection (ms). */
  connectWaitMs?: number;
}

const KEY_SLACK_MS = 1000;

// KEYS[1] the cell; ARGV now, interval, tolerance (ms). Returns 0 (counted) or the ms to wait.
const GCRA = `
local now = tonumber(ARGV[1])
local interval = tonumber(ARGV[2])
local tolerance = tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]))
if tat == nil or tat < now then tat = now end
local nxt = tat + interval
local wait = nxt - now - tolerance
if wait > 0.000001 then return math.ceil(wait) end
redis.call('SET', KEYS[1], string.format('%.3f', nxt), 'PX', math.ceil(nxt - now) + ${KEY_SLACK_MS})
return 0`;

// KEYS the windows to check; ARGV now, then one limit per key. Returns the longest wait (ms) or 0.
const WINDOW_WAIT = `
local now = tonumber(ARGV[1])
local wait = 0
for i, key in ipairs(KEYS) do
  local v = redis.call('HMGET', key, 'n', 'e')
  local n = tonumber(v[1])
  local e = tonumber(v[2])
  if n ~= nil and e ~= nil and e > now and n >= tonumber(ARGV[i + 1]) and e - now > wait then wait = e - now end
end
return math.ceil(wait)`;

// KEYS the windows to count a failure in; ARGV now, window (ms).
const WINDOW_FAIL = `
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
for _, key in ipairs(KEYS) do
  local e = tonumber(redis.call('HGET', key, 'e'))
  if e == nil or e <= now then
    redis.call('HSET', key, 'n', 1, 'e', string.format('%.0f', now + window))
    redis.call('PEXPIRE', key, window + ${KEY_SLACK_MS})
  else
    redis.call('HINCRBY', key, 'n', 1)
  end
end
return 0`;

interface LimitCommands {
  m2mGcra(key: string, now: number, interval: number, tolerance: number): Promise<number>;
  m2mWindowWait(numKeys: number, ...args: Array<string | number>): Promise<number>;
  m2mWindowFail(numKeys: number, ...args: Array<string | number>): Promise<number>;
}

export class RedisLimitStore {
  readonly #opts: Required<RedisLimitStoreOptions>;
  #redis: (Redis & LimitCommands) | undefined;
  /** performance.now() before which the store is not used after a failure. */
  #coolUntil = 0;
  /** True while an outage has been logged and not yet recovered from. */
  #down = false;
  #closed = false;

  constructor(opts: RedisLimitStoreOptions) {
    this.#opts = { commandTimeoutMs: 100, coolDownMs: 2000, connectWaitMs: 1000, ...opts };
  }

  /** Connects; resolves once connected, refused or after connectWaitMs, whichever is first. Never rejects. */
  async start(): Promise<void> {
    if (this.#redis || this.#closed) return;
    const redis = new Redis(this.#opts.url, {
      lazyConnect: true,
      enableOfflineQueue: false,
      enableAutoPipelining: true,
      maxRetriesPerRequest: 0,
      commandTimeout: this.#opts.commandTimeoutMs,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(times * 200, 2000),
    }) as Redis & LimitCommands;
    redis.defineCommand('m2mGcra', { numberOfKeys: 1, lua: GCRA });
    redis.defineCommand('m2mWindowWait', { lua: WINDOW_WAIT });
    redis.defineCommand('m2mWindowFail', { lua: WINDOW_FAIL });
    redis.on('error', (err: Error) => this.#outage(err));
    // A dropped connection may say nothing else until the next reconnect attempt fails.
    redis.on('close', () => this.#outage(new Error('connection closed')));
    redis.on('ready', () => this.#recovered());
    this.#redis = redis;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      redis.connect().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, this.#opts.connectWaitMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    if (redis.status !== 'ready') this.#outage(new Error(`not connected (${redis.status})`));
  }

  /** Whether callers should use the store now (connected, and not cooling down after a failure). */
  get available(): boolean {
    return this.#redis?.status === 'ready' && performance.now() >= this.#coolUntil;
  }

  /** GCRA on the shared cell: 0 when counted, else the ms to wait. Rejects when Redis fails. */
  async take(key: string, interval: number, tolerance: number, now: number): Promise<number> {
    const wait = await this.#redis!.m2mGcra(key, now, interval, tolerance);
    if (this.#down) this.#recovered();
    return wait;
  }

  /** The longest wait (ms) of the windows whose failures reached their limit; 0 when none did. */
  async wait(keys: readonly string[], limits: readonly number[], now: number): Promise<number> {
    const wait = await this.#redis!.m2mWindowWait(keys.length, ...keys, now, ...limits);
    if (this.#down) this.#recovered();
    return wait;
  }

  /** Counts one failure in each window. */
  async fail(keys: readonly string[], windowMs: number, now: number): Promise<void> {
    await this.#redis!.m2mWindowFail(keys.length, ...keys, now, windowMs);
    if (this.#down) this.#recovered();
  }

  /** Sets `key` for `ttlMs` unless it exists: true the first time (a single-use jti), false after. */
  async once(key: string, ttlMs: number): Promise<boolean> {
    const set = await this.#redis!.set(key, '1', 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX');
    if (this.#down) this.#recovered();
    return set === 'OK';
  }

  /** Redis answers (again): say so once, and use it from now on. */
  #recovered(): void {
    this.#coolUntil = 0;
    if (!this.#down) return;
    this.#down = false;
    this.#opts.logger.info('rate limit store (Redis) reachable again: limits are shared between instances');
  }

  /** A command failed: use the local limiter for a while, and say so once per outage. */
  failed(err: unknown): void {
    this.#outage(err);
  }

  #outage(err: unknown): void {
    if (this.#closed) return;
    this.#coolUntil = performance.now() + this.#opts.coolDownMs;
    if (this.#down) return;
    this.#down = true;
    this.#opts.logger.warn(
      { err: err instanceof Error ? err.message : String(err) },
      'rate limit store (Redis) unreachable: limits are per process until it answers',
    );
  }

  async close(): Promise<void> {
    this.#closed = true;
    const redis = this.#redis;
    if (!redis) return;
    if (redis.status === 'ready') await redis.quit().catch(() => undefined);
    redis.disconnect();
  }
}
