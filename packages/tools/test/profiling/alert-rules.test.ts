// The alert-rule section (src/profiling/alert-rules.ts) against `promtool test rules` on the same
// series: a real server's /metrics around a small load, as it is and made unhealthy (slow token
// answers, refused and failed requests, a large RSS), each repeated until every rule's window and
// `for:` are covered. The rules that promtool fires are the ones whose condition held here.

import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateAlertRules, histogramQuantile, loadAlertRules, lookBack, type RunSeries } from '../../src/profiling/alert-rules.js';
import { runLoadTest } from '../../src/loadtest/run.js';
import type { ServerProcess } from '../../src/loadtest/server-process.js';
import { MetricsScraper, type MetricSample, type Scrape } from '../../src/profiling/server-metrics.js';
import { havePromtool, promtoolFiring } from '../helpers/promtool.js';
import { startServer } from '../helpers/server.js';

const RULES_FILE = fileURLToPath(new URL('../../../../deploy/prometheus/alerts.yml', import.meta.url));
const rules = loadAlertRules(RULES_FILE);

let server: ServerProcess;
let run: RunSeries;

beforeAll(async () => {
  server = await startServer();
  const scraper = new MetricsScraper(server.adminUrl);
  let first: Scrape | undefined;
  await runLoadTest({
    url: server.issuer, admin: { url: server.adminUrl, token: server.adminToken }, clients: 4, requests: 25, clientCount: 2,
    beforeLoad: async () => {
      first = await scraper.scrape();
    },
  });
  const last = await scraper.scrape();
  await scraper.close();
  run = { first: first!, last };
}, 60_000);

afterAll(async () => {
  await server?.close();
});

const held = (r: RunSeries): Set<string> => new Set(evaluateAlertRules(rules, r).filter((e) => e.evaluated && e.held).map((e) => e.alert));

/** The run made unhealthy: token answers all in the 50-100 ms bucket, 5 % refused as invalid_client, 3 % 5xx, RSS 300 MiB. */
function unhealthy(r: RunSeries): RunSeries {
  const tokenCount = (s: Scrape): number => s.samples.filter((x) => x.name === 'm2m_auth_http_request_duration_seconds_count' && x.labels.route === '/oauth2/token').reduce((a, x) => a + x.value, 0);
  const requests = tokenCount(r.last) - tokenCount(r.first);
  const last: MetricSample[] = r.last.samples.map((x) => {
    if (x.name === 'm2m_auth_http_request_duration_seconds_bucket' && x.labels.route === '/oauth2/token') {
      const before = r.first.samples.find((y) => y.name === x.name && JSON.stringify(y.labels) === JSON.stringify(x.labels))?.value ?? 0;
      const le = x.labels.le === '+Inf' ? Infinity : Number(x.labels.le);
      // Every request of the run moved above 50 ms (and under 100 ms).
      return { ...x, value: le <= 0.05 ? before : x.value };
    }
    if (x.name === 'm2m_auth_process_resident_memory_bytes') return { ...x, value: 300 * 1024 * 1024 };
    return x;
  });
  const firstExtra: MetricSample[] = [];
  const add = (name: string, labels: Record<string, string>, firstValue: number, lastValue: number): void => {
    last.push({ name, labels, value: lastValue });
    firstExtra.push({ name, labels, value: firstValue });
  };
  add('m2m_auth_tokens_denied_total', { client_id: 'unknown', error: 'invalid_client' }, 0, Math.ceil(requests * 0.05));
  add('m2m_auth_http_request_duration_seconds_count', { route: '/oauth2/token', method: 'POST', status_class: '5xx' }, 0, Math.ceil(requests * 0.03));
  return { first: { t: r.first.t, samples: [...r.first.samples, ...firstExtra] }, last: { t: r.last.t, samples: last } };
}

describe('the rules of deploy/prometheus/alerts.yml', () => {
  it('are all evaluated: each has an evaluator written for its exact expression', () => {
    expect(rules.length).toBeGreaterThanOrEqual(13);
    const e = evaluateAlertRules(rules, run);
    expect(e.filter((x) => !x.evaluated).map((x) => x.alert)).toEqual([]);
    // A run of a second or two is shorter than every rule's for: or window.
    expect(e.every((x) => x.conditionOnly)).toBe(true);
  });

  it('an expression that changed is not evaluated but said so', () => {
    const changed = rules.map((r) => (r.alert === 'HighLatency' ? { ...r, expr: r.expr.replace('0.05', '0.5') } : r));
    const e = evaluateAlertRules(changed, run).find((x) => x.alert === 'HighLatency')!;
    expect(e).toMatchObject({ evaluated: false, held: false });
    expect(e.note).toMatch(/differs/);
  });

  it('look-back counts ranges and offsets', () => {
    expect(lookBack('rate(x[5m])')).toBe(300);
    expect(lookBack('rate(x[10m] offset 1d) and rate(x[1d] offset 1h)')).toBe(90_000);
  });

  it('histogram_quantile interpolates inside the bucket as Prometheus does', () => {
    const b = [{ le: 0.001, count: 10 }, { le: 0.05, count: 10 }, { le: 0.1, count: 110 }, { le: Infinity, count: 110 }];
    // rank 104.5 of 110: 94.5 of the 100 in (0.05, 0.1]
    expect(histogramQuantile(0.95, b)).toBeCloseTo(0.05 + 0.05 * 0.945, 9);
    expect(histogramQuantile(0.95, [{ le: 0.1, count: 0 }, { le: Infinity, count: 0 }])).toBeUndefined();
  });

  it('the healthy run holds no condition; the unhealthy one holds the latency, error-rate, 5xx and memory conditions', () => {
    expect([...held(run)]).toEqual([]);
    const bad = held(unhealthy(run));
    for (const a of ['HighLatency', 'HighErrorRate', 'HighServerErrorRate', 'HighMemory']) expect(bad.has(a), a).toBe(true);
  });
});

describe('agreement with promtool test rules', () => {
  if (!havePromtool()) {
    it.skip('skipped: promtool is not installed (apt-get install prometheus, or a release from prometheus.io); the evaluations above still ran', () => undefined);
    return;
  }

  it('on the run as it was: promtool fires exactly the rules whose condition held (none)', () => {
    expect([...promtoolFiring(RULES_FILE, rules, run)].sort()).toEqual([...held(run)].sort());
  }, 120_000);

  it('on the run made unhealthy: promtool fires exactly the rules whose condition held, latency and error rate among them', () => {
    const bad = unhealthy(run);
    const fired = promtoolFiring(RULES_FILE, rules, bad);
    expect(fired.has('HighLatency')).toBe(true);
    expect(fired.has('HighErrorRate')).toBe(true);
    expect([...fired].sort()).toEqual([...held(bad)].sort());
  }, 120_000);
});
