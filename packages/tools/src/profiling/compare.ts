// `m2m-auth profile --compare A B`: the KPIs and headline figures of two report folders side by
// side (their results.json), with the change from A to B and whether it is better or worse.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { capacity } from './capacity.js';
import type { ProfileData } from './profile-data.js';

export interface ComparisonRow {
  metric: string;
  unit: string;
  a: number | undefined;
  b: number | undefined;
  /** b - a */
  delta: number | undefined;
  /** (b - a) / a */
  relative: number | undefined;
  /** Whether B is better than A, worse, or the same (within 0.5 %). */
  verdict: 'better' | 'worse' | 'same' | 'n/a';
}

export interface Comparison {
  a: { dir: string; version?: string; generatedAt: string };
  b: { dir: string; version?: string; generatedAt: string };
  rows: ComparisonRow[];
}

export class CompareError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CompareError';
  }
}

export function readResults(dir: string): ProfileData {
  let text: string;
  try {
    text = readFileSync(join(dir, 'results.json'), 'utf8');
  } catch {
    throw new CompareError(`${dir} is not a profile report folder (no results.json)`);
  }
  try {
    const data = JSON.parse(text) as ProfileData;
    if (typeof data !== 'object' || data === null || data.load === undefined || data.memory === undefined) throw new Error('shape');
    return data;
  } catch {
    throw new CompareError(`${join(dir, 'results.json')} is not the results of m2m-auth profile`);
  }
}

type Metric = { metric: string; unit: string; higherIsBetter: boolean; value: (d: ProfileData) => number | undefined };

const METRICS: Metric[] = [
  { metric: 'Throughput', unit: 'req/s', higherIsBetter: true, value: (d) => d.load.requestsPerSecond },
  { metric: 'p50 latency', unit: 'ms', higherIsBetter: false, value: (d) => d.load.latencyUs.p50 / 1000 },
  { metric: 'p95 latency', unit: 'ms', higherIsBetter: false, value: (d) => d.load.latencyUs.p95 / 1000 },
  { metric: 'p99 latency', unit: 'ms', higherIsBetter: false, value: (d) => d.load.latencyUs.p99 / 1000 },
  { metric: 'Max latency', unit: 'ms', higherIsBetter: false, value: (d) => d.load.latencyUs.max / 1000 },
  { metric: 'Error rate', unit: '%', higherIsBetter: false, value: (d) => (d.load.totalRequests > 0 ? (d.load.failures / d.load.totalRequests) * 100 : undefined) },
  { metric: 'Server CPU per request', unit: 'µs', higherIsBetter: false, value: (d) => (d.server?.cpuSecondsPerRequest !== undefined ? d.server.cpuSecondsPerRequest * 1e6 : undefined) },
  { metric: 'Requests per core', unit: 'req/s', higherIsBetter: true, value: (d) => (d.server?.cpuSecondsPerRequest !== undefined ? capacity(d).perCoreRate : undefined) },
  { metric: 'RSS after the load', unit: 'MB', higherIsBetter: false, value: (d) => d.memory.after.rss / 1e6 },
  { metric: 'Peak RSS', unit: 'MB', higherIsBetter: false, value: (d) => d.memory.peakRss / 1e6 },
  { metric: 'Allocated per request', unit: 'KB', higherIsBetter: false, value: (d) => d.memory.allocation.perRequestBytes / 1e3 },
  { metric: 'GC pauses per 1000 requests', unit: '', higherIsBetter: false, value: (d) => d.gc.perThousandRequests },
  { metric: 'Longest GC pause', unit: 'ms', higherIsBetter: false, value: (d) => d.gc.maxMs },
  { metric: 'Event-loop delay p99 (load)', unit: 'ms', higherIsBetter: false, value: (d) => d.eventLoop.during.p99 },
  { metric: 'KPIs met', unit: '', higherIsBetter: true, value: (d) => d.kpis.filter((k) => k.met).length },
];

export function compareResults(a: ProfileData, b: ProfileData, dirs: { a: string; b: string }): Comparison {
  const rows = METRICS.map((m): ComparisonRow => {
    const va = safe(() => m.value(a));
    const vb = safe(() => m.value(b));
    if (va === undefined || vb === undefined) return { metric: m.metric, unit: m.unit, a: va, b: vb, delta: undefined, relative: undefined, verdict: 'n/a' };
    const delta = vb - va;
    const relative = va !== 0 ? delta / Math.abs(va) : undefined;
    const same = relative !== undefined ? Math.abs(relative) < 0.005 : delta === 0;
    const verdict = same ? 'same' : (delta > 0) === m.higherIsBetter ? 'better' : 'worse';
    return { metric: m.metric, unit: m.unit, a: va, b: vb, delta, relative, verdict };
  });
  const side = (d: ProfileData, dir: string): Comparison['a'] => ({ dir, ...(d.version !== undefined && { version: d.version }), generatedAt: d.generatedAt });
  return { a: side(a, dirs.a), b: side(b, dirs.b), rows };
}

function safe(f: () => number | undefined): number | undefined {
  try {
    const v = f();
    return v !== undefined && Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function fmt(x: number | undefined): string {
  if (x === undefined) return '—';
  const abs = Math.abs(x);
  return abs >= 1000 ? Math.round(x).toLocaleString('en-US') : abs >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** The comparison as text lines (a table). */
export function comparisonLines(c: Comparison): string[] {
  const head = ['Metric', 'A', 'B', 'Change', ''];
  const rows = c.rows.map((r) => [
    `${r.metric}${r.unit ? ` (${r.unit})` : ''}`,
    fmt(r.a),
    fmt(r.b),
    r.delta === undefined ? '—' : `${r.delta >= 0 ? '+' : ''}${fmt(r.delta)}${r.relative !== undefined ? ` (${r.relative >= 0 ? '+' : ''}${(r.relative * 100).toFixed(1)} %)` : ''}`,
    r.verdict === 'n/a' ? '' : r.verdict,
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]): string => cells.map((x, i) => (i === 0 || i === 4 ? x.padEnd(widths[i]!) : x.padStart(widths[i]!))).join('  ').trimEnd();
  return [
    `A: ${c.a.dir} (${c.a.version ?? 'version not recorded'}, ${c.a.generatedAt})`,
    `B: ${c.b.dir} (${c.b.version ?? 'version not recorded'}, ${c.b.generatedAt})`,
    '',
    line(head),
    ...rows.map(line),
  ];
}
