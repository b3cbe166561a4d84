// `promtool test rules` on a run's series: the run's first and last scrape turned into promtool
// input series, repeated (a counter rises at the run's rate, by the run's increase every run's
// length; a gauge keeps its last value) until every rule's window and `for:` are covered, with no
// alert expected; the alerts promtool reports as unexpected are the ones that fire.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { AlertRule, RunSeries } from '../../src/profiling/alert-rules.js';
import type { MetricSample } from '../../src/profiling/server-metrics.js';

export function havePromtool(): boolean {
  return spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
}

const COUNTER = /_(total|bucket|count|sum)$/;

function num(x: number): string {
  if (!Number.isFinite(x)) return '0';
  return Math.abs(x) < 1e-6 && x !== 0 ? x.toFixed(12) : String(Number(x.toPrecision(12)));
}

function seriesName(s: MetricSample, extra: Record<string, string>): string {
  const labels = { ...s.labels, ...extra };
  const inner = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',');
  return `${s.name}{${inner}}`;
}

const key = (s: MetricSample): string => `${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`;

/** The alerts promtool fires at the end of the repeated run, by name. */
export function promtoolFiring(rulesFile: string, rules: readonly AlertRule[], run: RunSeries): Set<string> {
  const seconds = Math.max((run.last.t - run.first.t) / 1000, 0.001);
  // One sample every 10 s at least (promtool bounds the samples a query loads); a counter rises by
  // the run's increase scaled to the interval, so its rate is the run's rate.
  const intervalMs = Math.max(10_000, Math.round(seconds * 1000));
  const scale = intervalMs / 1000 / seconds;
  // Ranges only (an offset's series would be a day old, which the run never has).
  const longestRange = Math.max(...rules.map((r) => Math.max(0, ...[...r.expr.matchAll(/\[(\d+)([smhd])\](?!\s+offset)/g)].map((m) => Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's']))));
  const longestFor = Math.max(...rules.map((r) => r.forSeconds));
  const evalSeconds = longestRange + longestFor + 120;
  const samples = Math.ceil((evalSeconds * 1000) / intervalMs) + 1;
  const names = new Set(rules.flatMap((r) => [...r.expr.matchAll(/\b(m2m_auth_[a-z0-9_]+)/g)].map((m) => m[1]!)));
  const first = new Map(run.first.samples.map((s) => [key(s), s]));
  const extra = { job: 'm2m-auth', instance: 'profile:0' };
  const input: string[] = [];
  for (const s of run.last.samples) {
    if (!names.has(s.name) && !names.has(s.name.replace(/_(bucket|count|sum)$/, ''))) continue;
    if (!Number.isFinite(s.value)) continue;
    if (COUNTER.test(s.name)) {
      const start = first.get(key(s))?.value ?? 0;
      input.push(`      - series: '${seriesName(s, extra)}'\n        values: '${num(start)}+${num(Math.max(0, s.value - start) * scale)}x${samples}'`);
    } else {
      input.push(`      - series: '${seriesName(s, extra)}'\n        values: '${num(s.value)}x${samples}'`);
    }
  }
  input.push(`      - series: 'up{job="m2m-auth",instance="profile:0"}'\n        values: '1x${samples}'`);
  const dir = mkdtempSync(join(tmpdir(), 'm2m-promtool-'));
  try {
    writeFileSync(join(dir, basename(rulesFile)), readFileSync(rulesFile));
    const test = [
      `rule_files:\n  - ${basename(rulesFile)}`,
      'evaluation_interval: 1m',
      'tests:',
      `  - interval: ${intervalMs}ms`,
      '    input_series:',
      ...input,
      '    alert_rule_test:',
      ...rules.map((r) => `      - eval_time: ${evalSeconds}s\n        alertname: ${r.alert}\n        exp_alerts: []`),
    ].join('\n');
    writeFileSync(join(dir, 'run.test.yml'), `${test}\n`);
    const r = spawnSync('promtool', ['test', 'rules', 'run.test.yml'], { cwd: dir, encoding: 'utf8', timeout: 120_000 });
    const out = `${r.stdout}\n${r.stderr}`;
    if (r.status !== 0 && !/alertname: /.test(out)) throw new Error(`promtool failed: ${out.slice(0, 2000)}`);
    return new Set([...out.matchAll(/alertname: ([A-Za-z0-9_]+), time:/g)].map((m) => m[1]!));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
