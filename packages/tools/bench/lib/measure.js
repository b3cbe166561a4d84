// In-process micro-benchmark loop: warm up, size a batch, run timed batches, report the median.
//
// The median of batch rates rather than the mean of one long run: a GC pause or a neighbouring
// process stealing the core spoils one batch, not the result.

import { performance } from 'node:perf_hooks';
import { median } from './stats.js';

/** Results land here so the optimiser cannot drop the work being measured. */
export let sink;

const MIN_BATCHES = 5;

/**
 * Runs `fn` for about `durationMs` (after `warmupMs` of warm-up) in batches of about
 * durationMs / 20 and returns the median batch rate.
 *
 * @param {() => unknown} fn  one operation
 * @param {{ durationMs?: number, warmupMs?: number }} [options]
 * @returns {{ opsPerSec: number, nsPerOp: number, batches: number, opsPerBatch: number }}
 */
export function measureSync(fn, options = {}) {
  return measureSyncInterleaved([fn], options)[0];
}

/**
 * Measures several operations by alternating their batches (a, b, a, b, ...) for about
 * `durationMs` each, so that a neighbour stealing the core slows all of them alike and their
 * ratio stays meaningful on a busy machine.
 *
 * @param {Array<() => unknown>} fns
 * @param {{ durationMs?: number, warmupMs?: number }} [options]
 */
export function measureSyncInterleaved(fns, options = {}) {
  const { durationMs, warmupMs, batchMs } = settings(options);
  const batch = (fn, n) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) sink = fn();
    return performance.now() - t0;
  };
  const sizes = fns.map((fn) => {
    let n = 1;
    let elapsed;
    const warmEnd = performance.now() + warmupMs;
    for (;;) {
      elapsed = batch(fn, n);
      if (elapsed >= batchMs && performance.now() >= warmEnd) break;
      if (elapsed < batchMs) n *= 2;
    }
    return Math.max(1, Math.round((n * batchMs) / elapsed));
  });
  const rates = fns.map(() => []);
  const end = performance.now() + durationMs * fns.length;
  while (rates[0].length < MIN_BATCHES || performance.now() < end) {
    fns.forEach((fn, i) => rates[i].push((sizes[i] * 1000) / batch(fn, sizes[i])));
  }
  return rates.map((r, i) => result(r, sizes[i]));
}

/** measureSync for an operation that returns a promise; each call is awaited before the next. */
export async function measureAsync(fn, options = {}) {
  const { durationMs, warmupMs, batchMs } = settings(options);
  const batch = async (n) => {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) sink = await fn();
    return performance.now() - t0;
  };
  let n = 1;
  let elapsed;
  const warmEnd = performance.now() + warmupMs;
  for (;;) {
    elapsed = await batch(n);
    if (elapsed >= batchMs && performance.now() >= warmEnd) break;
    if (elapsed < batchMs) n *= 2;
  }
  n = Math.max(1, Math.round((n * batchMs) / elapsed));
  const rates = [];
  const end = performance.now() + durationMs;
  while (rates.length < MIN_BATCHES || performance.now() < end) rates.push((n * 1000) / (await batch(n)));
  return result(rates, n);
}

function settings({ durationMs = 1000, warmupMs = Math.min(300, durationMs / 2) }) {
  return { durationMs, warmupMs, batchMs: Math.max(5, durationMs / 20) };
}

function result(rates, opsPerBatch) {
  const opsPerSec = median(rates);
  return { opsPerSec, nsPerOp: 1e9 / opsPerSec, batches: rates.length, opsPerBatch };
}
