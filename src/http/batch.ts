// Requests read in one event-loop turn are handled together, after all of them have been read.
//
// Under load, one turn of the event loop reads many requests (one per ready connection). Handling
// each one as soon as it is parsed interleaves the handlers (a signature, a response write) with
// the reads, so every signature starts with caches cold from the network stack, and every early
// response wakes its client, which sends its next request into the turn still being read. Taking
// the handlers to the check phase of the same turn (setImmediate, which adds no timer delay) runs
// them back to back: measured on a 2-core VM, a Fastify server that signs one ES256 token per POST
// went from 106 to 60 µs of CPU per request (bench/README: "Batching by event-loop turn").
// An idle server sees a batch of one, answered in the same turn it was read.

type Release = () => void;

let waiting: Release[] = [];

function releaseAll(): void {
  const batch = waiting;
  waiting = [];
  for (const release of batch) release();
}

/** Resolves in the check phase of the current event-loop turn, together with every request read in it. */
export function afterReads(): Promise<void> {
  return new Promise<void>((resolve) => {
    if (waiting.length === 0) setImmediate(releaseAll);
    waiting.push(resolve);
  });
}
