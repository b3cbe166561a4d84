// deploy/prometheus: the alerting rules name only metrics a real server exports and each carries
// `for`, a severity and a summary and description; each alert has a unit test that fires it and one
// where it does not. With promtool installed (Debian package `prometheus`), the rules, their unit
// tests, the example configuration and a real scrape are checked by Prometheus itself.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { exportedByRealServer, metricNamesIn } from './exposition.js';

const DIR = fileURLToPath(new URL('../../../../deploy/prometheus/', import.meta.url));
const RULES = readFileSync(`${DIR}alerts.yml`, 'utf8');
const RULE_TESTS = readFileSync(`${DIR}alerts.test.yml`, 'utf8');

const PROMTOOL = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
const SKIP = 'skipped: promtool not found (apt-get install prometheus; .ci/run installs it)';
if (!PROMTOOL) console.warn(`test/deploy/prometheus.test.ts: promtool checks ${SKIP}`);

function promtool(args: string[], input?: string): { status: number | null; output: string } {
  const r = spawnSync('promtool', args, { cwd: DIR, encoding: 'utf8', input, timeout: 120_000 });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

interface Alert {
  name: string;
  text: string;
}

/** The rules, one block of text per `- alert:` entry (no YAML parser in the dependencies). */
function alerts(): Alert[] {
  const parts = RULES.split(/^\s*- alert: /m).slice(1);
  return parts.map((p) => ({ name: p.split('\n')[0]!.trim(), text: p }));
}

describe('alerts.yml', () => {
  let exported: Set<string>;

  beforeAll(async () => {
    exported = (await exportedByRealServer()).names;
  });

  it('has the origin report\'s alerts and ours', () => {
    expect(alerts().map((a) => a.name).sort()).toEqual([
      'HighErrorRate', 'HighGCPause', 'HighLatency', 'HighMemory', 'HighServerErrorRate', 'InstanceDown', 'InvalidClientSpike',
      'KeyRotationFailed', 'LowThroughput', 'NoActiveSigningKey', 'SigningKeyNearExpiry', 'StorageUnreachable', 'SyncLagging',
    ]);
  });

  it('refers only to metrics the server exports', () => {
    const used = metricNamesIn(RULES);
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((n) => !exported.has(n))).toEqual([]);
  });

  it('gives every alert an expr, a for, a severity and a summary and description', () => {
    for (const a of alerts()) {
      expect(a.text, a.name).toMatch(/^\s+expr: \S/m);
      expect(a.text, a.name).toMatch(/^\s+for: \d+[smhd]$/m);
      expect(a.text, a.name).toMatch(/^\s+severity: (warning|critical)$/m);
      expect(a.text, a.name).toMatch(/^\s+summary: "[^"]+/m);
      expect(a.text, a.name).toMatch(/^\s+description: "[^"]{40,}/m);
    }
  });

  it('has a unit test per alert that fires it and one where it stays quiet', () => {
    for (const { name } of alerts()) {
      const cases = RULE_TESTS.split(/^\s*- eval_time: /m).slice(1).filter((c) => c.includes(`alertname: ${name}\n`));
      expect(cases.some((c) => /exp_alerts: \[\]/.test(c)), `${name}: a case without alerts`).toBe(true);
      expect(cases.some((c) => c.includes(`- exp_labels:`)), `${name}: a case that fires`).toBe(true);
    }
  });
});

describe('promtool', () => {
  it.skipIf(!PROMTOOL)(`check rules deploy/prometheus/alerts.yml${PROMTOOL ? '' : ` (${SKIP})`}`, () => {
    const r = promtool(['check', 'rules', 'alerts.yml']);
    expect(r.output).toContain('SUCCESS');
    expect(r.status, r.output).toBe(0);
  });

  it.skipIf(!PROMTOOL)(`test rules deploy/prometheus/alerts.test.yml${PROMTOOL ? '' : ` (${SKIP})`}`, () => {
    const r = promtool(['test', 'rules', 'alerts.test.yml']);
    expect(r.output).toContain('SUCCESS');
    expect(r.status, r.output).toBe(0);
  });

  it.skipIf(!PROMTOOL)(`check config deploy/prometheus/prometheus.yml${PROMTOOL ? '' : ` (${SKIP})`}`, () => {
    const r = promtool(['check', 'config', 'prometheus.yml']);
    expect(r.status, r.output).toBe(0);
  });

  it.skipIf(!PROMTOOL)(`check metrics: a real scrape parses and our metrics pass the lint${PROMTOOL ? '' : ` (${SKIP})`}`, async () => {
    const { text } = await exportedByRealServer();
    const r = promtool(['check', 'metrics'], text);
    // prom-client's default collector names three gauges *_total; everything else must be clean.
    const KNOWN = /^m2m_auth_nodejs_active_(handles|requests|resources)_total non-counter metrics should not have "_total" suffix$/;
    const problems = r.output.split('\n').filter((l) => l.trim() !== '' && !KNOWN.test(l.trim()));
    expect(problems).toEqual([]);
    // Exit status 3 is "lint problems" (the known ones); 1 would be a parse error.
    expect([0, 3], r.output).toContain(r.status);
  });
});
