// src/observability/metrics-relay.ts with real node:cluster processes: whichever worker is asked, the
// answer has every worker's series, each labelled with its worker, and none combined.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ensureBuilt, REPO } from '../helpers/process.js';

const relay = pathToFileURL(join(REPO, 'dist/observability/metrics-relay.js')).href;
const promClient = pathToFileURL(createRequire(join(REPO, 'package.json')).resolve('prom-client')).href;

// The primary forks three workers; worker n counts n requests, reports a gauge of n and a
// histogram observation of n. Each worker asks for the cluster's metrics and sends the text to the
// primary, which prints them. A worker that never offers its metrics must not hold a scrape up, and one that asks and exits must not bring the primary down.
const script = `
import cluster from 'node:cluster';
const { Counter, Gauge, Histogram, Registry } = (await import(${JSON.stringify(promClient)})).default;
const { serveClusterMetrics, offerWorkerMetrics, clusterMetricsText, inClusterWorker, RELAY_WORKER_ENV } = await import(${JSON.stringify(relay)});
if (cluster.isPrimary) {
  serveClusterMetrics();
  const texts = [];
  cluster.fork({ ...RELAY_WORKER_ENV, N: '0' });
  cluster.fork({ ...RELAY_WORKER_ENV, N: '-1' });
  for (let i = 1; i <= 3; i++) {
    const w = cluster.fork({ ...RELAY_WORKER_ENV, N: String(i) });
    w.on('message', (m) => {
      if (m?.type !== 'text') return;
      texts.push({ from: w.id, text: m.text, inWorker: m.inWorker });
      if (texts.length === 3) {
        console.log(JSON.stringify({ inPrimary: inClusterWorker(), texts, ids: Object.values(cluster.workers).map((x) => x.id) }));
        for (const x of Object.values(cluster.workers)) x.kill();
      }
    });
  }
} else {
  const n = Number(process.env.N);
  if (n > 0) {
    const registry = new Registry();
    new Counter({ name: 'requests_total', help: 'h', registers: [registry] }).inc(n);
    new Gauge({ name: 'storage_up', help: 'h', aggregator: 'min', registers: [registry] }).set(n === 2 ? 0 : 1);
    new Gauge({ name: 'started_seconds', help: 'h', aggregator: 'omit', registers: [registry] }).set(n);
    new Histogram({ name: 'took_seconds', help: 'h', buckets: [1, 2], registers: [registry] }).observe(n);
    offerWorkerMetrics([registry]);
    // Ask once every worker has offered its registries.
    setTimeout(async () => process.send({ type: 'text', inWorker: inClusterWorker(), text: await clusterMetricsText() }), 500);
  } else if (n === 0) {
    setInterval(() => undefined, 1000); // running, but silent
  } else {
    // Asks, and is gone before the answer: the primary must not fall over sending it.
    process.send({ type: 'm2m-auth:metrics-ask', id: 0 }, () => process.exit(0));
  }
}
`;

// A worker of a cluster primary other than \`serve --workers\` (PM2's, an application's own).
const foreignScript = `
import cluster from 'node:cluster';
const { inClusterWorker } = await import(${JSON.stringify(relay)});
if (cluster.isPrimary) {
  const w = cluster.fork();
  w.on('message', (m) => { console.log(JSON.stringify(m)); w.kill(); });
} else {
  process.send({ inWorker: inClusterWorker() });
}
`;

function runCluster(source: string): { status: number | null; stdout: string; stderr: string } {
  ensureBuilt();
  // A file, not -e: cluster.fork() runs the primary's script again in each worker.
  const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-relay-'));
  const file = join(dir, 'cluster.mjs');
  writeFileSync(file, source);
  const run = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 30_000 });
  rmSync(dir, { recursive: true, force: true });
  return run;
}

describe('cluster metrics relay', () => {
  it('stays off in a worker that another cluster primary forked: that worker serves its own metrics', () => {
    const run = runCluster(foreignScript);
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout.trim())).toEqual({ inWorker: false });
  });

  it('answers every worker with every worker\'s series, labelled worker="<id>", none combined or dropped', () => {
    const run = runCluster(script);
    expect(run.status, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { inPrimary: boolean; texts: { from: number; text: string; inWorker: boolean }[]; ids: number[] };
    expect(out.inPrimary).toBe(false);
    expect(out.texts).toHaveLength(3);
    // Workers 3, 4 and 5 (cluster ids) have N = 1, 2, 3; worker 1 never offered its metrics and
    // worker 2 asked and exited.
    for (const { text, inWorker } of out.texts) {
      expect(inWorker).toBe(true);
      for (const [id, n] of [[3, 1], [4, 2], [5, 3]] as const) {
        expect(text).toContain(`requests_total{worker="${id}"} ${n}\n`);
        expect(text).toContain(`storage_up{worker="${id}"} ${n === 2 ? 0 : 1}\n`);
        expect(text).toContain(`started_seconds{worker="${id}"} ${n}\n`);
        expect(text).toContain(`took_seconds_count{worker="${id}"} 1\n`);
        expect(text).toContain(`took_seconds_bucket{le="2",worker="${id}"} ${n <= 2 ? 1 : 0}\n`);
      }
      expect(text).not.toContain('worker="1"');
      expect(text).not.toContain('worker="2"');
      expect(text).toMatch(/^m2m_auth_cluster_workers 4$/m);
      expect(text).toMatch(/^m2m_auth_cluster_workers_answered 3$/m);
    }
  });
});
