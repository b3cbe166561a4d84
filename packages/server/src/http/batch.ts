// Requests read in one event-loop turn are handled together, after all of them have been read,
// in three phases: compute every answer, write every answer, then log every request line.
//
// Under load, one turn of the event loop reads many requests (one per ready connection). Handling
// each one as soon as it is parsed interleaves the handlers (a signature, a response write) with
// the reads, so every signature starts with caches cold from the network stack, and every early
// response wakes its client, which sends its next request into the turn still being read. Taking
// the handlers to the check phase of the same turn (setImmediate, which adds no timer delay) runs
// them back to back: measured on a 2-core VM, a Fastify server that signs one ES256 token per POST
// went from 106 to 60 µs of CPU per request (BENCHMARKS.md, "Batching by event-loop turn"). The
// same holds inside the batch: a write between every two signatures cost that server 20 µs a
// request more than all signatures first and then all writes, hence the phases, which are three
// immediates queued together and so run one after the other in the same check phase.
// An idle server sees a batch of one, answered in the same turn it was read. While new connections
// are arriving, batches are kept small so that the turns, and so the accepts, keep coming. The
// queue is one per process, shared by every public listener in it.

type Callback = () => void;

/**
 * Requests released in a turn when a listener accepted a connection since the last release.
 * libuv (1.46, Node 20) accepts one connection per turn here (strace: one accept4 per epoll_wait),
 * so while connections keep arriving the turns must stay short: with 64 busy keep-alive
 * connections, a whole batch per turn let a storm of 1000 new connections wait up to 6 s to be
 * accepted; four per turn had all of them answered within 1 s (BENCHMARKS.md). Clients that open
 * a connection per request keep batches this small all the time: slower, never stalled.
 */
export const STORM_BATCH = 4;

/** Callbacks run together in a check phase, in the order they were added. */
class Phase {
  #fns: Callback[] = [];
  /** Runs queued and not yet run (a release may queue the next turn's while this turn's is pending). */
  #queued = 0;

  /** A run of this phase is queued: `add` joins it. */
  get pending(): boolean {
    return this.#queued > 0;
  }

  schedule(): void {
    this.#queued++;
    setImmediate(this.#run);
  }

  add(fn: Callback): void {
    this.#fns.push(fn);
  }

  readonly #run = (): void => {
    this.#queued--;
    const fns = this.#fns;
    this.#fns = [];
    for (const fn of fns) fn();
  };
}

let waiting: Callback[] = [];
let accepted = false;
const writes = new Phase();
const logs = new Phase();

/** Queues a release and, right behind it in the same check phase, the write and log phases of that batch. */
function scheduleRelease(): void {
  setImmediate(releaseSome);
  writes.schedule();
  logs.schedule();
}

function releaseSome(): void {
  const limit = accepted ? STORM_BATCH : Infinity;
  accepted = false;
  let batch = waiting;
  if (batch.length <= limit) {
    waiting = [];
  } else {
    batch = waiting.splice(0, limit);
    scheduleRelease();
  }
  for (const release of batch) release();
}

/** Resolves in the check phase of the current event-loop turn, together with every request read in it. */
export function afterReads(): Promise<void> {
  return new Promise<void>((resolve) => {
    if (waiting.length === 0) scheduleRelease();
    waiting.push(resolve);
  });
}

/**
 * Resolves when every request of the current batch has its answer ready, so that the answers
 * are written together after the computing (the signatures) is done, instead of a write between
 * every two signatures; undefined (write now) when no batch is being handled.
 */
export function beforeWrites(): Promise<void> | undefined {
  return writes.pending ? new Promise<void>((resolve) => writes.add(resolve)) : undefined;
}

/** A listener accepted a connection (one per turn: libuv accepts one at a time). */
export function connectionAccepted(): void {
  accepted = true;
}

/**
 * Runs `fn` once the current batch's answers are written (the request log lines of a batch go
 * out together after its writes, not one between every two writes); at once outside a batch.
 */
export function afterWrites(fn: () => void): void {
  if (logs.pending) logs.add(fn);
  else fn();
}
