// src/sync/ipc-notifier.ts with real node:cluster processes: a worker's publish() resolves only
// after every other worker has read its change log, is not held up beyond the timeout by a
// worker that never answers, and the writer itself is not woken.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { ensureBuilt, REPO } from '../helpers/process.js';

const notifier = pathToFileURL(join(REPO, 'dist/sync/ipc-notifier.js')).href;

// Worker 1 writes; workers 2 and 3 read the change log (taking 50 ms) when woken; worker 4
// (when forked) joins but never finishes reading. Each worker reports what happened to the primary.
const script = (withSilentWorker: boolean): string => `
import cluster from 'node:cluster';
const { relayWorkerChanges, WorkerNotifier, WORKER_TIMEOUT_MS } = await import(${JSON.stringify(notifier)});
if (cluster.isPrimary) {
  relayWorkerChanges();
  const events = [];
  const roles = ['writer', 'reader', 'reader', ${withSilentWorker ? "'silent'" : ''}].filter(Boolean);
  let joined = 0;
  const workers = roles.map((role) => cluster.fork({ ROLE: role }));
  for (const w of workers) w.on('message', (m) => {
    if (m?.type === 'joined' && ++joined === workers.length) workers[0].send({ type: 'go' });
    if (m?.type === 'event') events.push(m.event);
    if (m?.type === 'published') {
      setTimeout(() => {
        console.log(JSON.stringify({ events, tookMs: m.tookMs, timeoutMs: WORKER_TIMEOUT_MS }));
        for (const x of workers) x.kill();
      }, 300);
    }
  });
} else {
  const role = process.env.ROLE;
  const n = new WorkerNotifier();
  await n.subscribe(() => {
    if (role === 'writer') process.send({ type: 'event', event: 'writer woken' });
    if (role === 'silent') return new Promise(() => undefined);
    return new Promise((resolve) => setTimeout(() => {
      process.send({ type: 'event', event: 'reader read' });
      resolve();
    }, 50));
  }, () => undefined);
  // Joined once the primary has our join message, which was sent before this.
  process.send({ type: 'joined' });
  process.on('message', async (m) => {
    if (m?.type !== 'go') return;
    const started = Date.now();
    await n.publish();
    process.send({ type: 'event', event: 'published' });
    process.send({ type: 'published', tookMs: Date.now() - started });
  });
}
`;

function runCluster(source: string): { status: number | null; stdout: string; stderr: string } {
  ensureBuilt();
  const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-ipc-'));
  const file = join(dir, 'cluster.mjs');
  writeFileSync(file, source);
  const run = spawnSync(process.execPath, [file], { encoding: 'utf8', timeout: 30_000 });
  rmSync(dir, { recursive: true, force: true });
  return run;
}

describe('changes relayed between the workers of one server', () => {
  it('resolves a publish once every other worker has read the change log, and wakes not the writer', () => {
    const run = runCluster(script(false));
    expect(run.status, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout.trim()) as { events: string[]; tookMs: number; timeoutMs: number };
    expect(out.events).toEqual(['reader read', 'reader read', 'published']);
    expect(out.tookMs).toBeGreaterThanOrEqual(50);
    expect(out.tookMs).toBeLessThan(out.timeoutMs);
  });

  it('does not wait beyond the timeout for a worker that never answers', () => {
    const run = runCluster(script(true));
    expect(run.status, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout.trim()) as { events: string[]; tookMs: number; timeoutMs: number };
    expect(out.events).toEqual(['reader read', 'reader read', 'published']);
    expect(out.tookMs).toBeGreaterThanOrEqual(out.timeoutMs);
    expect(out.tookMs).toBeLessThan(out.timeoutMs + 2000);
  });
});
