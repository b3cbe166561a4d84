// The Prometheus alert rules (deploy/prometheus/alerts.yml) evaluated against the series of one
// profile run: the server's /metrics read at the first and the last request of the load. Each rule
// is evaluated as if the run's traffic went on for the rule's whole window: a rate is the run's
// rate, an increase is the run's increase scaled to the window, a gauge is its value at the end.
// That is what Prometheus would compute from the run's series repeated until the window and the
// rule's `for:` are covered, which is how a test checks this module against `promtool test rules`.
//
// Each rule has an evaluator here written for its exact expression; a rule whose expression
// changed, or a new rule, is listed as "not evaluated" until this table follows it.

import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { select, total, type MetricSample, type Scrape } from './server-metrics.js';

export interface AlertRule {
  alert: string;
  expr: string;
  /** Seconds; 0 when the rule has no for:. */
  forSeconds: number;
  /** The longest range or offset in the expression, in seconds. */
  lookBackSeconds: number;
  severity?: string;
}

export interface AlertEvaluation {
  alert: string;
  severity?: string;
  /** The expression's value for this run (the worst series), undefined when there was nothing to compute it from. */
  value?: number;
  /** How the value is shown (unit). */
  shown: string;
  /** The threshold, in words. */
  threshold: string;
  /** Whether the condition held on this run's series. */
  held: boolean;
  /** The run was shorter than the rule's for: or look-back: the condition is evaluated, not the alert. */
  conditionOnly: boolean;
  forSeconds: number;
  lookBackSeconds: number;
  evaluated: boolean;
  note?: string;
}

const UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };

/** Seconds of a Prometheus duration such as 5m, 1h30m, 1d. */
export function durationSeconds(text: string): number {
  let s = 0;
  for (const m of text.matchAll(/(\d+)(ms|s|m|h|d|w|y)/g)) s += Number(m[1]) * UNITS[m[2]!]!;
  return s;
}

/** The longest range ([5m]) or offset plus range in an expression. */
export function lookBack(expr: string): number {
  let longest = 0;
  for (const m of expr.matchAll(/\[(\w+)\](?:\s+offset\s+(\w+))?/g)) longest = Math.max(longest, durationSeconds(m[1]!) + (m[2] ? durationSeconds(m[2]) : 0));
  return longest;
}

export function normalizeExpr(expr: string): string {
  return expr.replace(/\s+/g, ' ').replace(/\(\s/g, '(').replace(/\s\)/g, ')').trim();
}

export function loadAlertRules(file: string): AlertRule[] {
  const doc = parse(readFileSync(file, 'utf8')) as { groups?: Array<{ rules?: Array<{ alert?: string; expr?: string; for?: string; labels?: Record<string, string> }> }> };
  const rules: AlertRule[] = [];
  for (const g of doc.groups ?? []) {
    for (const r of g.rules ?? []) {
      if (r.alert === undefined || r.expr === undefined) continue;
      rules.push({
        alert: r.alert,
        expr: String(r.expr),
        forSeconds: r.for !== undefined ? durationSeconds(String(r.for)) : 0,
        lookBackSeconds: lookBack(String(r.expr)),
        ...(r.labels?.severity !== undefined && { severity: r.labels.severity }),
      });
    }
  }
  return rules;
}

/** The run's series: the first and last scrape of the load. */
export interface RunSeries {
  first: Scrape;
  last: Scrape;
}

type Match = Record<string, string | RegExp>;

class Series {
  readonly seconds: number;
  constructor(readonly run: RunSeries) {
    this.seconds = Math.max((run.last.t - run.first.t) / 1000, 1e-3);
  }
  /** Increase of a counter over the run (summed over the matching series). */
  delta(name: string, match: Match = {}): number {
    return Math.max(0, total(this.run.last.samples, name, match) - total(this.run.first.samples, name, match));
  }
  rate(name: string, match: Match = {}): number {
    return this.delta(name, match) / this.seconds;
  }
  /** Increase over `window` seconds at the run's rate. */
  increase(name: string, windowSeconds: number, match: Match = {}): number {
    return this.rate(name, match) * windowSeconds;
  }
  gauge(name: string, match: Match = {}): MetricSample[] {
    return select(this.run.last.samples, name, match);
  }
}

/** Prometheus's histogram_quantile over cumulative bucket counts keyed by `le`. */
export function histogramQuantile(q: number, buckets: Array<{ le: number; count: number }>): number | undefined {
  const b = [...buckets].sort((x, y) => x.le - y.le);
  if (b.length < 2 || b[b.length - 1]!.le !== Infinity) return undefined;
  const totalCount = b[b.length - 1]!.count;
  if (totalCount === 0) return undefined;
  const rank = q * totalCount;
  let i = b.findIndex((x) => x.count >= rank);
  if (i === -1) i = b.length - 1;
  if (i === b.length - 1) return b[b.length - 2]!.le;
  if (i === 0 && b[0]!.le <= 0) return b[0]!.le;
  const lower = i === 0 ? 0 : b[i - 1]!.le;
  const below = i === 0 ? 0 : b[i - 1]!.count;
  const inBucket = b[i]!.count - below;
  return inBucket === 0 ? b[i]!.le : lower + (b[i]!.le - lower) * ((rank - below) / inBucket);
}

type Result = Pick<AlertEvaluation, 'value' | 'shown' | 'threshold' | 'held' | 'note'>;
const pct = (x: number | undefined): string => (x === undefined ? 'no data' : `${(x * 100).toFixed(3)} %`);
const num = (x: number | undefined, unit = ''): string => (x === undefined ? 'no data' : `${Number(x.toPrecision(4))}${unit}`);
const worst = (xs: number[]): number | undefined => (xs.length === 0 ? undefined : Math.max(...xs));
const least = (xs: number[]): number | undefined => (xs.length === 0 ? undefined : Math.min(...xs));
const MIB = 1024 * 1024;

/** The expressions this module evaluates, each as written in alerts.yml (whitespace aside). */
const EVALUATORS: Record<string, { expr: string; evaluate: (s: Series) => Result }> = {
  HighLatency: {
    expr: 'histogram_quantile(0.95, sum by (job, route, le) (rate(m2m_auth_http_request_duration_seconds_bucket{route=~"/oauth2/.*"}[5m]))) > 0.05',
    evaluate(s) {
      const buckets = select(s.run.last.samples, 'm2m_auth_http_request_duration_seconds_bucket', { route: /^\/oauth2\/.*$/ });
      const routes = [...new Set(buckets.map((b) => b.labels.route!))];
      const byRoute = routes.map((route) => {
        const les = [...new Set(buckets.filter((b) => b.labels.route === route).map((b) => b.labels.le!))];
        const q = histogramQuantile(0.95, les.map((le) => ({ le: le === '+Inf' ? Infinity : Number(le), count: s.delta('m2m_auth_http_request_duration_seconds_bucket', { route, le }) })));
        return { route, q };
      }).filter((x): x is { route: string; q: number } => x.q !== undefined);
      const value = worst(byRoute.map((x) => x.q));
      const top = byRoute.find((x) => x.q === value);
      return { value, shown: value === undefined ? 'no requests' : `${(value * 1000).toFixed(2)} ms (p95 of ${top!.route})`, threshold: '> 50 ms', held: value !== undefined && value > 0.05 };
    },
  },
  HighErrorRate: {
    expr: '(sum by (job) (rate(m2m_auth_tokens_denied_total[5m])) / sum by (job) (rate(m2m_auth_http_request_duration_seconds_count{route="/oauth2/token"}[5m]))) > 0.01 and sum by (job) (rate(m2m_auth_http_request_duration_seconds_count{route="/oauth2/token"}[5m])) > 0.05',
    evaluate(s) {
      const requests = s.rate('m2m_auth_http_request_duration_seconds_count', { route: '/oauth2/token' });
      const value = requests > 0 ? s.rate('m2m_auth_tokens_denied_total') / requests : undefined;
      return { value, shown: `${pct(value)} of ${num(requests, '/s')} token requests refused`, threshold: '> 1 % with over 0.05 token requests/s', held: value !== undefined && value > 0.01 && requests > 0.05 };
    },
  },
  HighServerErrorRate: {
    expr: '(sum by (job) (rate(m2m_auth_http_request_duration_seconds_count{status_class="5xx"}[5m])) / sum by (job) (rate(m2m_auth_http_request_duration_seconds_count[5m]))) > 0.01',
    evaluate(s) {
      const all = s.rate('m2m_auth_http_request_duration_seconds_count');
      const value = all > 0 ? s.rate('m2m_auth_http_request_duration_seconds_count', { status_class: '5xx' }) / all : undefined;
      return { value, shown: `${pct(value)} of responses 5xx`, threshold: '> 1 %', held: value !== undefined && value > 0.01 };
    },
  },
  HighMemory: {
    expr: 'm2m_auth_process_resident_memory_bytes > 200 * 1024 * 1024',
    evaluate(s) {
      const value = worst(s.gauge('m2m_auth_process_resident_memory_bytes').map((x) => x.value));
      return { value, shown: value === undefined ? 'no data' : `${(value / MIB).toFixed(1)} MiB`, threshold: '> 200 MiB', held: value !== undefined && value > 200 * MIB };
    },
  },
  LowThroughput: {
    expr: '(sum by (job) (rate(m2m_auth_tokens_issued_total[10m])) or sum by (job) (rate(m2m_auth_tokens_issued_total[10m] offset 1d)) * 0) < 0.5 * sum by (job) (rate(m2m_auth_tokens_issued_total[10m] offset 1d)) and sum by (job) (rate(m2m_auth_tokens_issued_total[10m] offset 1d)) > 0.1',
    evaluate(s) {
      const value = s.rate('m2m_auth_tokens_issued_total');
      return { value, shown: `${num(value, '/s')} tokens issued`, threshold: '< half of the same 10 minutes a day earlier', held: false, note: 'compares with the day before, which a run has no series for, so the condition cannot hold' };
    },
  },
  HighGCPause: {
    expr: 'sum by (job, instance) (increase(m2m_auth_nodejs_gc_duration_seconds_count[15m])) - sum by (job, instance) (increase(m2m_auth_nodejs_gc_duration_seconds_bucket{le="0.1"}[15m])) > 1',
    evaluate(s) {
      const value = s.increase('m2m_auth_nodejs_gc_duration_seconds_count', 900) - s.increase('m2m_auth_nodejs_gc_duration_seconds_bucket', 900, { le: '0.1' });
      const inRun = s.delta('m2m_auth_nodejs_gc_duration_seconds_count') - s.delta('m2m_auth_nodejs_gc_duration_seconds_bucket', { le: '0.1' });
      return { value, shown: `${num(value)} pauses over 100 ms in 15 min at this run's rate (${num(inRun)} in the run)`, threshold: '> 1 in 15 min', held: value > 1 };
    },
  },
  SigningKeyNearExpiry: {
    expr: 'm2m_auth_signing_key_age_seconds > m2m_auth_signing_key_rotation_interval_seconds and m2m_auth_signing_key_rotation_interval_seconds > 0',
    evaluate(s) {
      const age = worst(s.gauge('m2m_auth_signing_key_age_seconds').map((x) => x.value));
      const interval = least(s.gauge('m2m_auth_signing_key_rotation_interval_seconds').map((x) => x.value));
      return { value: age, shown: `key age ${num(age, ' s')} (rotation interval ${num(interval, ' s')})`, threshold: '> the rotation interval', held: age !== undefined && interval !== undefined && interval > 0 && age > interval };
    },
  },
  KeyRotationFailed: {
    expr: 'increase(m2m_auth_signing_key_rotation_failures_total[30m]) > 0',
    evaluate(s) {
      const value = s.increase('m2m_auth_signing_key_rotation_failures_total', 1800);
      return { value, shown: `${num(value)} failures in 30 min at this run's rate`, threshold: '> 0', held: value > 0 };
    },
  },
  NoActiveSigningKey: {
    expr: 'm2m_auth_signing_keys{status="active"} < 1',
    evaluate(s) {
      const value = least(s.gauge('m2m_auth_signing_keys', { status: 'active' }).map((x) => x.value));
      return { value, shown: `${num(value)} active keys`, threshold: '< 1', held: value !== undefined && value < 1 };
    },
  },
  StorageUnreachable: {
    expr: 'm2m_auth_storage_up == 0',
    evaluate(s) {
      const value = least(s.gauge('m2m_auth_storage_up').map((x) => x.value));
      return { value, shown: value === undefined ? 'no data' : value === 1 ? 'up (1)' : `${value}`, threshold: '== 0', held: value === 0 };
    },
  },
  SyncLagging: {
    expr: 'm2m_auth_sync_lag_seconds > 30',
    evaluate(s) {
      const value = worst(s.gauge('m2m_auth_sync_lag_seconds').map((x) => x.value));
      return { value, shown: num(value, ' s'), threshold: '> 30 s', held: value !== undefined && value > 30 };
    },
  },
  InvalidClientSpike: {
    expr: 'sum by (job) (rate(m2m_auth_tokens_denied_total{error="invalid_client"}[5m])) > 0.1 and sum by (job) (rate(m2m_auth_tokens_denied_total{error="invalid_client"}[5m])) > 5 * (sum by (job) (rate(m2m_auth_tokens_denied_total{error="invalid_client"}[1d] offset 1h)) or sum by (job) (rate(m2m_auth_tokens_denied_total{error="invalid_client"}[5m])) * 0)',
    evaluate(s) {
      const value = s.rate('m2m_auth_tokens_denied_total', { error: 'invalid_client' });
      return { value, shown: `${num(value, '/s')} invalid_client`, threshold: '> 0.1/s and 5 × the day before (none in a run: 0)', held: value > 0.1 };
    },
  },
  InstanceDown: {
    expr: 'up{job="m2m-auth"} == 0',
    evaluate() {
      // Every scrape of the run answered (a failed one would have stopped the run's measurements).
      return { value: 1, shown: 'up (1): every scrape of the run answered', threshold: '== 0', held: false };
    },
  },
};

/** Each rule against the run's series, in the order of the file. */
export function evaluateAlertRules(rules: readonly AlertRule[], run: RunSeries): AlertEvaluation[] {
  const series = new Series(run);
  return rules.map((rule) => {
    const known = EVALUATORS[rule.alert];
    const conditionOnly = rule.forSeconds > series.seconds || rule.lookBackSeconds > series.seconds;
    const base = { alert: rule.alert, ...(rule.severity !== undefined && { severity: rule.severity }), conditionOnly, forSeconds: rule.forSeconds, lookBackSeconds: rule.lookBackSeconds };
    if (known === undefined || normalizeExpr(known.expr) !== normalizeExpr(rule.expr)) {
      return { ...base, shown: '—', threshold: '—', held: false, evaluated: false, note: known === undefined ? 'a rule this profiler has no evaluator for' : 'its expression differs from the one this profiler evaluates' };
    }
    const r = known.evaluate(series);
    return { ...base, ...r, evaluated: true };
  });
}
