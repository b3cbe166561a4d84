// `serve --workers N`: node:cluster worker processes sharing the listeners and the database.
// The primary prepares the database (migrations, data files, first signing key) once, then
// forks; workers keep their caches coherent through the change log like separate instances, and
// the primary relays every change from one worker to the others at once (src/sync/ipc-notifier.ts).

import cluster, { type Worker } from 'node:cluster';
import { availableParallelism } from 'node:os';
import type { Config } from '../config/schema.js';
import { createLogger } from '../observability/logger.js';
import { RELAY_WORKER_ENV, serveClusterMetrics } from '../observability/metrics-relay.js';
import { relayWorkerChanges } from '../sync/ipc-notifier.js';

export function workerCount(config: Config): number {
  return config.workers === 'auto' ? availableParallelism() : Number(config.workers);
}

/**
 * Runs the primary: prepares, forks `count` workers, restarts a worker that dies unexpectedly,
 * and on SIGTERM/SIGINT stops every worker gracefully and resolves.
 */
/** What SIGTERM and SIGINT (`stop`) and SIGHUP (`reload`) do. */
export interface SignalHandlers {
  stop(signal: NodeJS.Signals): void;
  reload(): void;
}

/** Points the process's signals at `handlers`: by default with listeners of their own. */
function listenForSignals(handlers: SignalHandlers): void {
  process.on('SIGINT', handlers.stop);
  process.on('SIGTERM', handlers.stop);
  process.on('SIGHUP', handlers.reload);
}

export async function runPrimary(
  config: Config, count: number, route: (handlers: SignalHandlers) => void = listenForSignals, options: { init?: boolean } = {},
): Promise<void> {
  const logger = createLogger({ level: config.logLevel, format: config.logFormat });
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
  // Workers that listen handle SIGHUP; one that is still starting (its handlers not yet in place,
  // so SIGHUP would end it) gets the SIGHUP when it listens.
  const listening = new WeakSet<Worker>();
  const reloadWhenListening = new Set<Worker>();
  cluster.on('listening', (worker) => {
    listening.add(worker);
    if (reloadWhenListening.delete(worker)) worker.process.kill('SIGHUP');
  });
  const restarts = new Set<NodeJS.Timeout>();
  cluster.on('exit', (worker, code, signal) => {
    reloadWhenListening.delete(worker);
    if (stopping) return;
    logger.error({ pid: worker.process.pid, code, signal }, 'worker exited; starting a new one');
    // Not unref'd: when every worker has gone, this timer is what keeps the primary alive.
    const restart = setTimeout(() => {
      restarts.delete(restart);
      fork();
    }, 500);
    restarts.add(restart);
  });
  for (let i = 0; i < count; i++) fork();
  logger.info({ workers: count }, 'm2m-auth primary started workers');

  await new Promise<void>((resolve) => {
    route({
      stop(signal) {
        if (stopping) {
          logger.warn({ signal }, `${signal} while the workers shut down: exiting at once`);
          process.exit(1);
        }
        stopping = true;
        for (const restart of restarts) clearTimeout(restart);
        const workers = Object.values(cluster.workers ?? {});
        logger.info({ signal, workers: workers.length }, `${signal} received: stopping the workers gracefully`);
        let left = workers.length;
        if (left === 0) resolve();
        for (const w of workers) {
          w?.once('exit', () => {
            if (--left === 0) resolve();
          });
          w?.process.kill('SIGTERM');
        }
      },
      // Each worker reloads its own TLS listener (and SIGHUP must not end the primary).
      reload() {
        for (const w of Object.values(cluster.workers ?? {})) {
          if (!w) continue;
          if (listening.has(w)) w.process.kill('SIGHUP');
          else reloadWhenListening.add(w);
        }
      },
    });
  });
  logger.info('every worker has stopped; the primary exits');
  logger.flush?.();
}

export function isWorker(): boolean {
  return cluster.isWorker;
}
