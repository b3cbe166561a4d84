// Latency statistics of a load test: every request's latency in microseconds, kept exactly (a
// growable Float64Array: 8 bytes a request), sorted once at the end for nearest-rank percentiles.

export interface LatencySummary {
  /** Number of latencies. */
  count: number;
  avg: number;
  min: number;
  p50: number;
  p90: number;
  p95: number;
  p99: number;
  p999: number;
  max: number;
}

export interface HistogramBin {
  /** Inclusive lower bound, microseconds. */
  fromUs: number;
  /** Exclusive upper bound, microseconds (inclusive for the last bin). */
  toUs: number;
  count: number;
}

const INITIAL_CAPACITY = 1024;

/** Collects latencies in microseconds. */
export class LatencyRecorder {
  #values: Float64Array;
  #length = 0;
  #sorted = true;

  constructor(expected = INITIAL_CAPACITY) {
    this.#values = new Float64Array(Math.max(16, Math.min(expected, 1 << 24)));
  }

  get count(): number {
    return this.#length;
  }

  record(us: number): void {
    if (!Number.isFinite(us) || us < 0) throw new RangeError(`latency must be a finite non-negative number, got ${us}`);
    if (this.#length === this.#values.length) {
      const grown = new Float64Array(this.#values.length * 2);
      grown.set(this.#values);
      this.#values = grown;
    }
    if (this.#length > 0 && us < this.#values[this.#length - 1]!) this.#sorted = false;
    this.#values[this.#length++] = us;
  }

  /** The recorded latencies in ascending order (a view; do not keep it across record calls). */
  sorted(): Float64Array {
    const view = this.#values.subarray(0, this.#length);
    if (!this.#sorted) {
      view.sort();
      this.#sorted = true;
    }
    return view;
  }

  summary(): LatencySummary {
    return summarize(this.sorted());
  }

  histogram(bins?: number): HistogramBin[] {
    return logHistogram(this.sorted(), bins);
  }
}

/**
 * Nearest-rank percentile of an ascending array: the smallest value such that at least p% of the
 * values are less than or equal to it (p in (0, 100]). NaN for an empty array.
 */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  // Rounded first so that binary floating point does not push 99.9% of 1000 to rank 1000.
  const rank = Math.ceil(Number(((p / 100) * n).toPrecision(12)));
  return sorted[Math.min(n, Math.max(1, rank)) - 1]!;
}

export function summarize(sorted: ArrayLike<number>): LatencySummary {
  const n = sorted.length;
  if (n === 0) return { count: 0, avg: 0, min: 0, p50: 0, p90: 0, p95: 0, p99: 0, p999: 0, max: 0 };
  let sum = 0;
  for (let i = 0; i < n; i++) sum += sorted[i]!;
  return {
    count: n,
    avg: sum / n,
    min: sorted[0]!,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    p999: percentile(sorted, 99.9),
    max: sorted[n - 1]!,
  };
}

/**
 * Bins with logarithmically growing widths from the smallest to the largest value, so that a
 * tail of slow requests stays visible next to the bulk. Every value lands in exactly one bin.
 */
export function logHistogram(sorted: ArrayLike<number>, bins = 40): HistogramBin[] {
  const n = sorted.length;
  if (n === 0) return [];
  const lo = Math.max(1, Math.floor(sorted[0]!));
  const hi = Math.max(lo + 1, Math.ceil(sorted[n - 1]!));
  const ratio = Math.pow(hi / lo, 1 / bins);
  const edges: number[] = [lo];
  for (let i = 1; i < bins; i++) edges.push(lo * Math.pow(ratio, i));
  edges.push(hi);
  const out: HistogramBin[] = [];
  for (let i = 0; i < bins; i++) out.push({ fromUs: edges[i]!, toUs: edges[i + 1]!, count: 0 });
  let bin = 0;
  for (let i = 0; i < n; i++) {
    const v = sorted[i]!;
    while (bin < bins - 1 && v >= out[bin]!.toUs) bin++;
    out[bin]!.count++;
  }
  return out;
}
