// Metrics of `serve --workers N`: one scrape answers for every worker of the instance. The workers
// share the admin port, so a scrape reaches whichever worker accepted the connection; that worker
// asks the primary, which collects every worker's metrics over the cluster IPC channel and renders
// them together, each series labelled with its worker (`worker="<cluster worker id>"`). Series are
// not summed: a restarted worker's counters start again from zero in series of their own, which
// rate() and increase() read correctly, and per-process alerts (memory, signing keys) keep their
// meaning; `sum by (job)` gives the instance's totals.

import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, Gauge, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';

const ASK = 'm2m-auth:metrics-ask';
const ANSWER = 'm2m-auth:metrics-answer';
const COLLECT = 'm2m-auth:metrics-collect';
const COLLECTED = 'm2m-auth:metrics-collected';
const READY = 'm2m-auth:metrics-ready';
const GONE = 'm2m-auth:metrics-gone';

/** How long the primary waits for each worker; one that does not answer is left out of the scrape. */
const WORKER_TIMEOUT_MS = 4_000;
/** How long a worker waits for the primary's answer: within Prometheus's default scrape timeout of 10 s. */
const PRIMARY_TIMEOUT_MS = 8_000;

type WorkerMetrics = MetricObjectWithValues<MetricValue<string>>[][];

interface Message {
  type?: string;
  id?: number;
  text?: string;
  metrics?: WorkerMetrics;
  error?: string;
}

/**
 * The environment the primary of `serve --workers` forks its workers with. Other cluster
 * primaries (PM2's, or an application running the server in node:cluster workers of its own) do
 * not answer for metrics, so their workers keep serving their own; nor do they relay changes
 * (src/sync/ipc-notifier.ts), so their workers do not wait for one another.
 */
export const RELAY_WORKER_ENV: Readonly<Record<string, string>> = Object.freeze({ M2M_AUTH_METRICS_RELAY: '1' });

/** True in a worker process of `serve --workers`: its metrics are the cluster's, its changes relayed to the other workers. */
export function inClusterWorker(): boolean {
  return cluster.isWorker && typeof process.send === 'function' && process.env.M2M_AUTH_METRICS_RELAY === '1';
}

function isMessage(message: Message | null, type: string): message is Message & { id: number } {
  return message?.type === type && typeof message.id === 'number';
}

/** Where answers come from: a worker (seen from the primary), or the primary (`process`, seen from a worker). */
interface MessageSource {
  on(event: 'message' | 'disconnect', listener: (message: Message | null) => void): unknown;
  off(event: 'message' | 'disconnect', listener: (message: Message | null) => void): unknown;
}

/** The message of `type` and `id` that `source` delivers next; undefined when the channel closes first or `timeoutMs` passes. */
function answerOf(source: MessageSource, type: string, id: number, timeoutMs: number): Promise<Message | undefined> {
  return new Promise((resolve) => {
    const onMessage = (message: Message | null): void => {
      if (isMessage(message, type) && message.id === id) done(message);
    };
    const onEnd = (): void => done(undefined);
    const done = (message: Message | undefined): void => {
      clearTimeout(timer);
      source.off('message', onMessage);
      source.off('disconnect', onEnd);
      resolve(message);
    };
    const timer = setTimeout(onEnd, timeoutMs);
    source.on('message', onMessage);
    source.on('disconnect', onEnd);
  });
}

/** Sends to a worker that may have exited meanwhile (a failed send is an 'error' event otherwise). */
function sendTo(worker: Worker, message: Message): void {
  if (worker.isConnected()) worker.send(message, () => undefined);
}

/** Primary: answers the workers' requests for the cluster's metrics. */
export function serveClusterMetrics(): void {
  const ready = new Set<Worker>();
  let nextId = 0;

  const collectFrom = async (worker: Worker): Promise<WorkerMetrics | undefined> => {
    const id = nextId++;
    const answer = answerOf(worker, COLLECTED, id, WORKER_TIMEOUT_MS);
    sendTo(worker, { type: COLLECT, id });
    return (await answer)?.metrics;
  };

  const render = async (): Promise<string> => {
    const workers = [...ready].filter((w) => w.isConnected());
    const answers = await Promise.all(workers.map(collectFrom));
    const labelled: WorkerMetrics = [];
    answers.forEach((metrics, i) => {
      if (metrics !== undefined) labelled.push(...withWorkerLabel(metrics, String(workers[i]!.id)));
    });
    // Made per scrape, so that two scrapes at once cannot report each other's counts.
    const own = new Registry();
    new Gauge({ name: 'm2m_auth_cluster_workers', help: 'Worker processes running (serve --workers).', registers: [own] })
      .set(Object.keys(cluster.workers ?? {}).length);
    new Gauge({
      name: 'm2m_auth_cluster_workers_answered',
      help: `Workers whose metrics are in this scrape (the others did not answer within ${WORKER_TIMEOUT_MS / 1000} s).`,
      registers: [own],
    }).set(answers.filter((a) => a !== undefined).length);
    return (await AggregatorRegistry.aggregate(labelled).metrics()) + (await own.metrics());
  };

  // A worker that stops serving, or whose channel closes, is asked no more (and holds no scrape up).
  cluster.on('disconnect', (worker) => ready.delete(worker));
  cluster.on('message', (worker: Worker, message: Message | null) => {
    if (message?.type === READY) ready.add(worker);
    else if (message?.type === GONE) ready.delete(worker);
    else if (isMessage(message, ASK)) {
      const id = message.id;
      render().then(
        (text) => sendTo(worker, { type: ANSWER, id, text }),
        (err: unknown) => sendTo(worker, { type: ANSWER, id, error: (err as Error).message }),
      );
    }
  });
}

/** Every series of one worker with its `worker` label; nothing is combined across workers. */
function withWorkerLabel(metrics: WorkerMetrics, worker: string): WorkerMetrics {
  return metrics.map((registry) =>
    registry.map((metric) => ({
      ...metric,
      // Series of different workers never share labels, so this sums nothing; it only keeps
      // prom-client from dropping ('omit') or merging ('first', 'average') them.
      aggregator: 'sum' as const,
      values: metric.values.map((v) => ({ ...v, labels: { ...v.labels, worker } })),
    })),
  );
}

/**
 * Worker: answers the primary's collection requests with these registries, and says it is ready.
 * Returns the function that stops answering: call it when the server closes, since a 'message'
 * listener keeps the worker's IPC channel, and so the worker, alive.
 */
export function offerWorkerMetrics(registries: Registry[]): () => void {
  const onMessage = (message: Message | null): void => {
    if (!isMessage(message, COLLECT)) return;
    const id = message.id;
    Promise.all(registries.map((r) => r.getMetricsAsJSON())).then(
      (metrics) => process.send?.({ type: COLLECTED, id, metrics } satisfies Message),
      () => process.send?.({ type: COLLECTED, id } satisfies Message),
    );
  };
  process.on('message', onMessage);
  process.send?.({ type: READY } satisfies Message);
  return () => {
    process.off('message', onMessage);
    if (process.connected) process.send?.({ type: GONE } satisfies Message);
  };
}

let nextAsk = 0;

/** Worker: the cluster's metrics, from the primary; rejects when it does not answer in time. */
export async function clusterMetricsText(): Promise<string> {
  if (!process.connected || process.send === undefined) throw new Error('not connected to the primary');
  const id = nextAsk++;
  const answer = answerOf(process as MessageSource, ANSWER, id, PRIMARY_TIMEOUT_MS);
  process.send({ type: ASK, id } satisfies Message, () => undefined);
  const message = await answer;
  if (message === undefined) throw new Error(`the primary did not answer within ${PRIMARY_TIMEOUT_MS} ms`);
  if (typeof message.text !== 'string') throw new Error(`the primary could not collect the workers' metrics: ${message.error ?? 'no answer'}`);
  return message.text;
}
