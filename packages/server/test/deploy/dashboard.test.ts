// deploy/grafana/dashboard.json: valid JSON that Grafana can import, showing the KPIs, and whose
// queries name only metrics a real server exports.

import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportedByRealServer, metricNamesIn } from './exposition.js';

const TEXT = readFileSync(new URL('../../../../deploy/grafana/dashboard.json', import.meta.url), 'utf8');

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { h: number; w: number; x: number; y: number };
  targets?: Array<{ expr: string; refId: string }>;
}

describe('deploy/grafana/dashboard.json', () => {
  let exported: Set<string>;
  let dashboard: { title: string; uid: string; schemaVersion: number; panels: Panel[]; templating: { list: Array<{ name: string }> } };

  beforeAll(async () => {
    exported = (await exportedByRealServer()).names;
    dashboard = JSON.parse(TEXT);
  });

  it('is a Grafana dashboard: title, uid, panels with unique ids inside the 24-column grid', () => {
    expect(dashboard.title).toBe('m2m-auth');
    expect(dashboard.uid).toMatch(/^[a-z0-9-]{1,40}$/);
    expect(dashboard.schemaVersion).toBeGreaterThanOrEqual(30);
    const ids = dashboard.panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      if (p.type !== 'row') {
        expect(p.targets?.length, p.title).toBeGreaterThan(0);
        for (const t of p.targets!) expect(t.expr, p.title).toMatch(/m2m_auth_/);
      }
    }
    expect(dashboard.templating.list.map((v) => v.name)).toEqual(['datasource', 'job']);
  });

  it('queries only metrics the server exports', () => {
    const used = metricNamesIn(TEXT);
    expect([...used].filter((n) => !exported.has(n))).toEqual([]);
  });

  it('shows the KPIs: tokens, errors, latency, introspection, revocation, cache, memory, GC, event loop, storage, keys', () => {
    const exprs = dashboard.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr).join('\n');
    for (const name of [
      'm2m_auth_tokens_issued_total', 'm2m_auth_tokens_denied_total', 'm2m_auth_http_request_duration_seconds_bucket',
      'm2m_auth_introspections_total', 'm2m_auth_tokens_revoked_total', 'm2m_auth_client_cache_hits_total',
      'm2m_auth_client_cache_misses_total', 'm2m_auth_process_resident_memory_bytes', 'm2m_auth_nodejs_gc_duration_seconds_bucket',
      'm2m_auth_nodejs_eventloop_lag_p99_seconds', 'm2m_auth_storage_up', 'm2m_auth_signing_key_age_seconds',
    ]) {
      expect(exprs, name).toContain(name);
    }
    for (const q of ['0.5', '0.95', '0.99']) expect(exprs).toContain(`histogram_quantile(${q}, sum by (le) (rate(m2m_auth_http_request_duration_seconds_bucket`);
    expect(exprs).toContain('sum by (error) (rate(m2m_auth_tokens_denied_total');
  });
});
