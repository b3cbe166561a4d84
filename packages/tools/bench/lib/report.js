// Formatting of benchmark results: rates, durations, aligned tables, and each target printed
// as MET / NOT MET beside the measured value.

/** 12345.6 -> "12,346/s" */
export function formatRate(opsPerSec) {
  if (!Number.isFinite(opsPerSec)) return 'n/a';
  return `${Math.round(opsPerSec).toLocaleString('en-US')}/s`;
}

/** Seconds to a short human unit: "850 ns", "23.4 µs", "1.23 ms", "2.50 s". */
export function formatDuration(seconds) {
  if (!Number.isFinite(seconds)) return 'n/a';
  const abs = Math.abs(seconds);
  if (abs < 1e-6) return `${(seconds * 1e9).toFixed(0)} ns`;
  if (abs < 1e-3) return `${(seconds * 1e6).toFixed(abs < 1e-5 ? 2 : 1)} µs`;
  if (abs < 1) return `${(seconds * 1e3).toFixed(abs < 1e-2 ? 3 : 2)} ms`;
  return `${seconds.toFixed(2)} s`;
}

export function formatRatio(ratio) {
  if (!Number.isFinite(ratio)) return 'n/a';
  return ratio >= 100 ? ratio.toFixed(0) : ratio >= 10 ? ratio.toFixed(1) : ratio.toFixed(2);
}

/** Decimal megabytes (10^6 bytes), as the targets are written. */
export function formatBytes(bytes) {
  if (!Number.isFinite(bytes)) return 'n/a';
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/**
 * The floor of a token endpoint on this machine: an HTTP round trip of the framework (the
 * hello-world POST, time = 1 / its rate) plus one raw signature, in requests per second.
 */
export function floorRate(helloRate, signSeconds) {
  return 1 / (1 / helloRate + signSeconds);
}

const COMPARISONS = {
  higher: { op: '>=', met: (v, t) => v >= t },
  lower: { op: '<', met: (v, t) => v < t },
  'at-most': { op: '<=', met: (v, t) => v <= t },
};

/**
 * One target, judged. `better` says which way is good: 'higher' is MET when value >= target,
 * 'lower' when value < target, 'at-most' when value <= target (counts of failures: at most 0).
 * A value that could not be measured (null, NaN) is NOT MET.
 *
 * @param {{ name: string, value: number | null | undefined, target: number,
 *           better: 'higher' | 'lower' | 'at-most', format?: (v: number) => string, note?: string }} t
 * @returns {{ name: string, met: boolean, value: number | null, target: number, line: string }}
 */
export function checkTarget(t) {
  const format = t.format ?? formatRatio;
  const measured = typeof t.value === 'number' && Number.isFinite(t.value);
  const comparison = COMPARISONS[t.better];
  if (!comparison) throw new Error(`unknown comparison ${t.better}`);
  const met = measured && comparison.met(t.value, t.target);
  const op = comparison.op;
  const shown = measured ? format(t.value) : 'not measured';
  const note = t.note ? `  ${t.note}` : '';
  const line = `${(met ? 'MET' : 'NOT MET').padEnd(8)} ${t.name.padEnd(46)} ${shown.padStart(12)}  (target ${op} ${format(t.target)})${note}`;
  return { name: t.name, met, value: measured ? t.value : null, target: t.target, line };
}

/** Left-aligned first column, right-aligned others. */
export function table(headers, rows) {
  const all = [headers, ...rows].map((r) => r.map((c) => String(c)));
  const widths = headers.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const fmt = (r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ').trimEnd();
  return [fmt(all[0]), widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map(fmt)].join('\n');
}
