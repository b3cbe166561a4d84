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

/** Runs `fn` until it succeeds, throws an error `isTransient` rejects, or the attempts run out. */
export async function withRetry<T>(policy: RetryPolicy, isTransient: (err: unknown) => boolean, fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= policy.attempts || !isTransient(err)) throw err;
      await sleep(backoffDelay(policy, attempt - 1));
    }
  }
}
