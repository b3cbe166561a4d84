// Percentile and histogram math of the load test on inputs whose answers are known.

import { describe, expect, it } from 'vitest';
import { LatencyRecorder, logHistogram, percentile, summarize } from '../../src/loadtest/latency.js';

describe('percentile (nearest rank)', () => {
  const oneToHundred = Float64Array.from({ length: 100 }, (_, i) => i + 1);

  it('is the value at rank ceil(p/100 * n) of 1..100', () => {
    expect(percentile(oneToHundred, 50)).toBe(50);
    expect(percentile(oneToHundred, 95)).toBe(95);
    expect(percentile(oneToHundred, 99)).toBe(99);
    expect(percentile(oneToHundred, 99.9)).toBe(100);
    expect(percentile(oneToHundred, 100)).toBe(100);
    expect(percentile(oneToHundred, 0.5)).toBe(1);
  });

  it('rounds the rank up on small inputs', () => {
    expect(percentile([10, 20, 30, 40], 50)).toBe(20);
    expect(percentile([10, 20, 30, 40], 51)).toBe(30);
    expect(percentile([10, 20, 30, 40], 75)).toBe(30);
    expect(percentile([10, 20, 30, 40], 76)).toBe(40);
    expect(percentile([7], 99)).toBe(7);
  });

  it('is NaN for no values and rejects a percentile outside (0, 100]', () => {
    expect(percentile([], 50)).toBeNaN();
    expect(() => percentile([1], 0)).toThrow(RangeError);
    expect(() => percentile([1], 101)).toThrow(RangeError);
  });
});

describe('summarize and LatencyRecorder', () => {
  it('summarizes known values', () => {
    expect(summarize([1, 2, 3, 4, 100])).toEqual({ count: 5, avg: 22, min: 1, p50: 3, p90: 100, p95: 100, p99: 100, p999: 100, max: 100 });
    expect(summarize([]).count).toBe(0);
  });

  it('sorts unordered input, grows past its initial capacity and keeps every value', () => {
    const r = new LatencyRecorder(16);
    const values = Array.from({ length: 1000 }, (_, i) => ((i * 7919) % 1000) + 1); // a permutation of 1..1000
    for (const v of values) r.record(v);
    expect(r.count).toBe(1000);
    const s = r.summary();
    expect(s).toMatchObject({ count: 1000, min: 1, max: 1000, p50: 500, p95: 950, p99: 990, p999: 999 });
    expect(s.avg).toBeCloseTo(500.5, 10);
    expect(Array.from(r.sorted().subarray(0, 3))).toEqual([1, 2, 3]);
  });

  it('rejects negative and non-finite latencies', () => {
    const r = new LatencyRecorder();
    expect(() => r.record(-1)).toThrow(RangeError);
    expect(() => r.record(Number.NaN)).toThrow(RangeError);
    expect(() => r.record(Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });
});

describe('logHistogram', () => {
  it('puts every value in exactly one bin, with edges growing geometrically', () => {
    const sorted = Float64Array.from([1, 1, 2, 3, 10, 100, 1000, 1000]);
    const bins = logHistogram(sorted, 3);
    expect(bins.map((b) => Math.round(b.fromUs))).toEqual([1, 10, 100]);
    expect(bins.map((b) => b.count)).toEqual([4, 1, 3]);
    expect(bins.reduce((a, b) => a + b.count, 0)).toBe(sorted.length);
    expect(bins[2]!.toUs).toBe(1000);
  });

  it('handles a single value and no values', () => {
    expect(logHistogram([5], 4).reduce((a, b) => a + b.count, 0)).toBe(1);
    expect(logHistogram([], 4)).toEqual([]);
  });
});
