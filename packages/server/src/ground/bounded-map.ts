// Bounded Maps: the caches and memories of every floor keep at most so many entries and drop the
// oldest inserted when full.
//
// Dropped a sixteenth at a time, not one per insert: V8 keeps a Map's deleted slots until its next
// rehash, and every iterator walks over them from the front. Taking keys().next() on each insert
// walks over every entry dropped since that rehash: about 4 µs an insert for a Map of 5,000 and
// 17 µs for 50,000, against about 0.3 µs this way (BENCHMARKS.md, "Bounded maps").

/** Share of a full Map dropped at once: its oldest sixteenth. */
const DROP_SHIFT = 4;

/**
 * Makes room for one more entry in `map` (a Map or a Set) when it holds `max` or more: drops its
 * oldest entries (insertion order), a sixteenth of `max` at once (at least one). Nothing when
 * there is room.
 */
export function makeRoom<K>(map: { readonly size: number; keys(): Iterable<K>; delete(key: K): boolean }, max: number): void {
  if (map.size < max) return;
  let n = map.size - max + Math.max(1, max >> DROP_SHIFT);
  for (const key of map.keys()) {
    map.delete(key);
    if (--n <= 0) break;
  }
}
