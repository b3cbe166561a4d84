// Bounded retries with exponential backoff and jitter, for failures that are not the caller's fault.

export interface RetryOptions {
  /** Attempts in all, the first one included (default 3). */
  attempts?: number;
  /** Delay before the first retry, doubled for each further one (default 250 ms). */
  baseDelayMs?: number;
  /** Ceiling of one delay (default 5000 ms). */
  maxDelayMs?: number;
}

export interface RetryPolicy {
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = Object.freeze({ attempts: 3, baseDelayMs: 250, maxDelayMs: 5000 });

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Delay before retry number `retry` (0-based): half of the exponential step plus a random half, so
 * many clients that failed together do not come back together.
 */
export function backoffDelay(policy: RetryPolicy, retry: number, random: () => number = Math.random): number {
  const step = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** retry);
  return step / 2 + random() * (step / 2);
}

/**
 * Runs `fn` until it succeeds, throws an error `isTransient` rejects, or the attempts run out.
 * `askedWait` gives the wait the server asked for with an error (its Retry-After), if any: the
 * retry waits at least that long, and an error whose wait is longer than `maxDelayMs` is thrown at
 * once instead of being waited out.
 */
export async function withRetry<T>(
  policy: RetryPolicy,
  isTransient: (err: unknown) => boolean,
  fn: () => Promise<T>,
  askedWait: (err: unknown) => number | undefined,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= policy.attempts || !isTransient(err)) throw err;
      const asked = askedWait(err);
      if (asked !== undefined && asked > policy.maxDelayMs) throw err;
      await sleep(Math.max(backoffDelay(policy, attempt - 1), asked ?? 0));
    }
  }
}

/** RFC 9110 §5.6.7 IMF-fixdate, the HTTP-date a server sends: `Sun, 06 Nov 1994 08:49:37 GMT`. */
const IMF_FIXDATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/**
 * RFC 9110 §10.2.3 Retry-After: delay-seconds or an HTTP-date, as milliseconds from `now`;
 * undefined when absent or not one of the two (a server that sends something else asked nothing).
 */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (header === null) return undefined;
  const value = header.trim();
  if (/^\d{1,9}$/.test(value)) return Number(value) * 1000;
  if (!IMF_FIXDATE.test(value)) return undefined;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
