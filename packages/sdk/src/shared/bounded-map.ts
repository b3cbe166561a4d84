// Bounded Maps for the SDK's caches (the server's src/ground/bounded-map.ts, kept apart: the SDK
// is installed without the server).
//
// Dropped a sixteenth at a time, not one per insert: V8 keeps a Map's deleted slots until its next
// rehash, and every iterator walks over them from the front, so keys().next() on each insert walks
// over every entry dropped since that rehash (about 4 µs an insert for a Map of 5,000, 17 µs for
// 50,000, against about 0.3 µs this way).

/**
 * Makes room for one more entry in `map` when it holds `max` or more: drops its oldest entries
 * (insertion order), a sixteenth of `max` at once (at least one). Nothing when there is room.
 */
export function makeRoom<K, V>(map: Map<K, V>, max: number): void {
  if (map.size < max) return;
  let n = map.size - max + Math.max(1, max >> 4);
  for (const key of map.keys()) {
    map.delete(key);
    if (--n <= 0) break;
  }
}
