// Changes between the workers of one `serve --workers` server, through their primary's IPC channel.
// A worker that wrote tells the primary; the primary wakes every other worker, each reads the
// change log and says it has, and only then does the primary answer the writer, whose write is
// acknowledged after that (src/sync/change-log-sync.ts, `propagate`). So once a revocation, a client change
// or a key change is acknowledged, every worker of the server applies it, whichever takes the next
// request. A worker that does not answer within WORKER_TIMEOUT_MS is not waited for (it applies the
// change at its next poll of the change log, as separate instances do). Other servers learn of
// changes through PostgreSQL LISTEN/NOTIFY, Redis or the poll, as before.

import cluster, { type Worker } from 'node:cluster';
import type { Notifier } from './change-log-sync.js';

const JOIN = 'm2m-auth:sync-join';
const LEAVE = 'm2m-auth:sync-leave';
const CHANGED = 'm2m-auth:sync-changed';
const APPLIED = 'm2m-auth:sync-applied';
const WAKE = 'm2m-auth:sync-wake';
const WOKEN = 'm2m-auth:sync-woken';

/** How long the primary waits for each other worker to read the change log. */
export const WORKER_TIMEOUT_MS = 1_000;
/** How long a writing worker waits for the primary: a little more, so that the primary answers first. */
const PRIMARY_TIMEOUT_MS = WORKER_TIMEOUT_MS + 500;

interface Message {
  type?: string;
  id?: number;
}

function isMessage(message: Message | null | undefined, type: string): message is { type: string; id: number } {
  return message?.type === type && typeof message.id === 'number';
}

/** Sends to a worker that may have exited meanwhile (a failed send is an 'error' event otherwise). */
function sendTo(worker: Worker, message: Message): void {
  if (worker.isConnected()) worker.send(message, () => undefined);
}

/** Primary: relays every worker's changes to the others, and answers the writer once they have read them. */
export function relayWorkerChanges(): void {
  const joined = new Set<Worker>();
  /** Wake-ups in flight: the workers still to answer each, and what to do when none is left. */
  const waits = new Map<number, { workers: Set<Worker>; done: () => void }>();
  let nextWake = 0;

  const answered = (worker: Worker, id?: number): void => {
    for (const [wakeId, wait] of waits) {
      if (id !== undefined && wakeId !== id) continue;
      if (wait.workers.delete(worker) && wait.workers.size === 0) wait.done();
    }
  };
  const leave = (worker: Worker): void => {
    joined.delete(worker);
    answered(worker);
  };

  cluster.on('disconnect', leave);
  cluster.on('message', (worker: Worker, message: Message | null) => {
    if (message?.type === JOIN) joined.add(worker);
    else if (message?.type === LEAVE) leave(worker);
    else if (isMessage(message, WOKEN)) answered(worker, message.id);
    else if (isMessage(message, CHANGED)) {
      const changeId = message.id;
      const others = [...joined].filter((w) => w !== worker && w.isConnected());
      if (others.length === 0) {
        sendTo(worker, { type: APPLIED, id: changeId });
        return;
      }
      const wakeId = nextWake++;
      const done = (): void => {
        if (!waits.delete(wakeId)) return;
        clearTimeout(timer);
        sendTo(worker, { type: APPLIED, id: changeId });
      };
      const timer = setTimeout(done, WORKER_TIMEOUT_MS);
      waits.set(wakeId, { workers: new Set(others), done });
      for (const w of others) sendTo(w, { type: WAKE, id: wakeId });
    }
  });
}

/**
 * Worker: the other workers of this server as a Notifier. `publish` resolves once every other
 * worker has read the change log (or WORKER_TIMEOUT_MS has passed, or the primary is gone);
 * `subscribe` reads the change log when the primary asks, and answers once it has.
 */
export class WorkerNotifier implements Notifier {
  readonly #pending = new Map<number, () => void>();
  #nextId = 0;
  #onMessage: ((message: Message | null) => void) | undefined;
  readonly #onDisconnect = (): void => this.#settleAll();

  async publish(): Promise<void> {
    if (!process.connected || process.send === undefined) return;
    const id = this.#nextId++;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => settle(), PRIMARY_TIMEOUT_MS);
      const settle = (): void => {
        clearTimeout(timer);
        this.#pending.delete(id);
        resolve();
      };
      this.#pending.set(id, settle);
      process.send!({ type: CHANGED, id } satisfies Message, (err: Error | null) => {
        if (err) settle();
      });
    });
  }

  async subscribe(onWake: () => unknown): Promise<void> {
    const onMessage = (message: Message | null): void => {
      if (isMessage(message, APPLIED)) this.#pending.get(message.id)?.();
      else if (isMessage(message, WAKE)) {
        const id = message.id;
        const answer = (): void => {
          if (process.connected) process.send?.({ type: WOKEN, id } satisfies Message, () => undefined);
        };
        Promise.resolve(onWake()).then(answer, answer);
      }
    };
    this.#onMessage = onMessage;
    process.on('message', onMessage);
    process.once('disconnect', this.#onDisconnect);
    process.send?.({ type: JOIN } satisfies Message, () => undefined);
  }

  async close(): Promise<void> {
    // A 'message' listener keeps the worker's IPC channel, and so the worker, alive.
    if (this.#onMessage) process.off('message', this.#onMessage);
    process.off('disconnect', this.#onDisconnect);
    if (process.connected) process.send?.({ type: LEAVE } satisfies Message, () => undefined);
    this.#settleAll();
  }

  #settleAll(): void {
    for (const settle of [...this.#pending.values()]) settle();
  }
}
