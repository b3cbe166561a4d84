// src/cluster/metrics-relay.ts with real node:cluster processes: whichever worker is asked, the
// answer is the cluster's, combined as each metric says (counters summed, gauges by aggregator).

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ensureBuilt } from '../helpers/process.js';

const relay = pathToFileURL(join(process.cwd(), 'dist/cluster/metrics-relay.js')).href;
const promClient = pathToFileURL(createRequire(join(process.cwd(), 'package.json')).resolve('prom-client')).href;

// The primary forks three workers; worker n counts n requests and reports a gauge of n. Each
// worker then asks for the cluster's metrics and sends the text to the primary, which prints them.
const script = `
import cluster from 'node:cluster';
const { Counter, Gauge, Registry } = (await import(${JSON.stringify(promClient)})).default;
const { serveClusterMetrics, offerWorkerMetrics, clusterMetricsText, inClusterWorker } = await import(${JSON.stringify(relay)});
if (cluster.isPrimary) {
  serveClusterMetrics();
  const texts = [];
  for (let i = 1; i <= 3; i++) {
    const w = cluster.fork({ N: String(i) });
    w.on('message', (m) => {
      if (m?.type !== 'text') return;
      texts.push(m.text);
      if (texts.length === 3) {
        console.log(JSON.stringify({ inPrimary: inClusterWorker(), texts }));
        for (const x of Object.values(cluster.workers)) x.kill();
      }
    });
  }
} else {
  const n = Number(process.env.N);
  const registry = new Registry();
  new Counter({ name: 'requests_total', help: 'h', registers: [registry] }).inc(n);
  new Gauge({ name: 'storage_up', help: 'h', aggregator: 'min', registers: [registry] }).set(n === 2 ? 0 : 1);
  new Gauge({ name: 'lag_seconds', help: 'h', aggregator: 'max', registers: [registry] }).set(n * 10);
  offerWorkerMetrics([registry]);
  // Ask once every worker has offered its registries.
  setTimeout(async () => process.send({ type: 'text', inWorker: inClusterWorker(), text: await clusterMetricsText() }), 500);
}
`;

describe('cluster metrics relay', () => {
  it('answers every worker with the whole cluster: counters summed, gauges by their aggregator', () => {
    ensureBuilt();
    // A file, not -e: cluster.fork() runs the primary's script again in each worker.
    const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-relay-'));
    const file = join(dir, 'cluster.mjs');
    writeFileSync(file, script);
    const run = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 30_000 });
    rmSync(dir, { recursive: true, force: true });
    expect(run.status, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout.trim().split('\n').at(-1)!) as { inPrimary: boolean; texts: string[] };
    expect(out.inPrimary).toBe(false);
    expect(out.texts).toHaveLength(3);
    for (const text of out.texts) {
      expect(text).toMatch(/^requests_total 6$/m);
      expect(text).toMatch(/^storage_up 0$/m);
      expect(text).toMatch(/^lag_seconds 30$/m);
    }
  });
});
