// Requests read in one event-loop turn are handled together, after all of them have been read.
//
// Under load, one turn of the event loop reads many requests (one per ready connection). Handling
// each one as soon as it is parsed interleaves the handlers (a signature, a response write) with
// the reads, so every signature starts with caches cold from the network stack, and every early
// response wakes its client, which sends its next request into the turn still being read. Taking
// the handlers to the check phase of the same turn (setImmediate, which adds no timer delay) runs
// them back to back: measured on a 2-core VM, a Fastify server that signs one ES256 token per POST
// went from 106 to 60 µs of CPU per request (BENCHMARKS.md, "Batching by event-loop turn").
// An idle server sees a batch of one, answered in the same turn it was read. While new connections
// are arriving, batches are kept small so that the turns, and so the accepts, keep coming. The
// queue is one per process, shared by every public listener in it.

type Release = () => void;

/**
 * Requests released in a turn in which a listener accepted a connection. libuv accepts one
 * connection per turn, so while connections keep arriving the turns must stay short: with 64
 * busy keep-alive connections, a whole batch per turn let a storm of 1000 new connections wait
 * up to 6 s to be accepted; four per turn had all of them answered within 1 s (BENCHMARKS.md).
 */
export const STORM_BATCH = 4;

let waiting: Release[] = [];
let accepted = false;

function releaseSome(): void {
  const limit = accepted ? STORM_BATCH : Infinity;
  accepted = false;
  let batch = waiting;
  if (batch.length <= limit) {
    waiting = [];
  } else {
    batch = waiting.splice(0, limit);
    setImmediate(releaseSome);
  }
  for (const release of batch) release();
}

/** Resolves in the check phase of the current event-loop turn, together with every request read in it. */
export function afterReads(): Promise<void> {
  return new Promise<void>((resolve) => {
    if (waiting.length === 0) setImmediate(releaseSome);
    waiting.push(resolve);
  });
}

/** A listener accepted a connection (one per turn: libuv accepts one at a time). */
export function connectionAccepted(): void {
  accepted = true;
}
