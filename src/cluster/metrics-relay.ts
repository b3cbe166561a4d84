// Metrics of `serve --workers N`: one scrape answers for the whole cluster. The workers share the
// admin port, so a scrape reaches whichever worker accepted the connection; that worker asks the
// primary, which collects every worker's metrics over the cluster IPC channel and combines them
// with prom-client's AggregatorRegistry (counters and histograms summed, each gauge by its own
// `aggregator`), and hands the text back.

import cluster from 'node:cluster';
import { AggregatorRegistry, type Registry } from 'prom-client';

const REQUEST = 'm2m-auth:cluster-metrics-request';
const ANSWER = 'm2m-auth:cluster-metrics-answer';

/** How long a worker waits for the primary's answer (the primary waits 5 s for each worker). */
const ANSWER_TIMEOUT_MS = 6_000;

interface Request {
  type: typeof REQUEST;
  id: number;
}

interface Answer {
  type: typeof ANSWER;
  id: number;
  text?: string;
  error?: string;
}

/** True in a worker process of `serve --workers`: its metrics are the cluster's. */
export function inClusterWorker(): boolean {
  return cluster.isWorker && typeof process.send === 'function';
}

/** Primary: answers the workers' requests for the cluster's metrics. */
export function serveClusterMetrics(): void {
  const aggregator = new AggregatorRegistry();
  cluster.on('message', (worker, message: Partial<Request> | null) => {
    if (message?.type !== REQUEST || typeof message.id !== 'number') return;
    const id = message.id;
    aggregator.clusterMetrics().then(
      (text) => worker.send({ type: ANSWER, id, text } satisfies Answer),
      (err: unknown) => worker.send({ type: ANSWER, id, error: (err as Error).message } satisfies Answer),
    );
  });
}

/** Worker: the registries the primary collects from this process. */
export function offerWorkerMetrics(registries: Registry[]): void {
  AggregatorRegistry.setRegistries(registries);
  // The constructor installs prom-client's handler of the primary's collection requests.
  new AggregatorRegistry();
}

let nextId = 0;

/** Worker: the cluster's metrics, from the primary; rejects when it does not answer in time. */
export function clusterMetricsText(): Promise<string> {
  const id = nextId++;
  return new Promise<string>((resolve, reject) => {
    const onMessage = (message: Partial<Answer> | null): void => {
      if (message?.type !== ANSWER || message.id !== id) return;
      done();
      if (typeof message.text === 'string') resolve(message.text);
      else reject(new Error(`the primary could not collect the workers' metrics: ${message.error ?? 'no answer'}`));
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`the primary did not answer within ${ANSWER_TIMEOUT_MS} ms`));
    }, ANSWER_TIMEOUT_MS);
    const done = (): void => {
      clearTimeout(timer);
      process.off('message', onMessage);
    };
    process.on('message', onMessage);
    process.send!({ type: REQUEST, id } satisfies Request);
  });
}
