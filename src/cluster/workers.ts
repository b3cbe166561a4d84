// `serve --workers N`: node:cluster worker processes sharing the listeners and the database.
// The primary prepares the database (migrations, data files, first signing key) once, then
// forks; workers keep their caches coherent through the change log like separate instances, and
// the primary relays every change from one worker to the others at once (src/cluster/ipc-notifier.ts).

import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Config } from '../config/schema.js';
import { createLogger } from '../observability/logger.js';
import { RELAY_WORKER_ENV, serveClusterMetrics } from './metrics-relay.js';
import { relayWorkerChanges } from './ipc-notifier.js';

export function workerCount(config: Config): number {
  return config.workers === 'auto' ? availableParallelism() : Number(config.workers);
}

/**
 * Runs the primary: prepares, forks `count` workers, restarts a worker that dies unexpectedly,
 * and on SIGTERM/SIGINT stops every worker gracefully and resolves.
 */
export async function runPrimary(config: Config, count: number, options: { init?: boolean } = {}): Promise<void> {
  const logger = createLogger({ level: config.logLevel });
  const { prepareServer } = await import('../server.js');
  // Create the schema, data files and first key before any worker races to do it.
  await prepareServer(config, { logger, ...(options.init !== undefined && { init: options.init }) });

  // Workers accept connections themselves: the primary does no per-connection work.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  // A scrape of any worker's /metrics answers for all of them.
  serveClusterMetrics();
  // A write on one worker is acknowledged once the others have applied it.
  relayWorkerChanges();
  let stopping = false;
  const fork = (): void => {
    cluster.fork(RELAY_WORKER_ENV);
  };
  cluster.on('exit', (worker, code, signal) => {
    if (stopping) return;
    logger.error({ pid: worker.process.pid, code, signal }, 'worker exited; starting a new one');
    setTimeout(fork, 500).unref();
  });
  for (let i = 0; i < count; i++) fork();
  logger.info({ workers: count }, 'm2m-auth primary started workers');

  await new Promise<void>((resolve) => {
    const stop = (): void => {
      if (stopping) process.exit(1);
      stopping = true;
      const workers = Object.values(cluster.workers ?? {});
      let left = workers.length;
      if (left === 0) resolve();
      for (const w of workers) {
        w?.once('exit', () => {
          if (--left === 0) resolve();
        });
        w?.process.kill('SIGTERM');
      }
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    // Each worker reloads its own TLS listener (and SIGHUP must not end the primary).
    process.on('SIGHUP', () => {
      for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
    });
  });
  logger.flush?.();
}

export function isWorker(): boolean {
  return cluster.isWorker;
}
