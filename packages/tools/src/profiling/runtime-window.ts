// What a server's runtime window (GET /debug/runtime on its admin listener) answers: memory, GC
// pauses, event-loop delay and utilisation, and active handles over the window, as JSON.

export interface MemorySnapshot {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

/** Active handles and requests by type (TCPSocketWrap, Timeout, FSReqCallback, ...). */
export type ResourceCounts = Record<string, number>;

export interface DelaySummary {
  /** Milliseconds. */
  min: number;
  mean: number;
  p50: number;
  p99: number;
  max: number;
  /** Event-loop utilisation over the window, 0..1. */
  utilization: number;
  durationMs: number;
}

export interface GcSummary {
  count: number;
  totalMs: number;
  maxMs: number;
  byKind: Record<string, { count: number; totalMs: number; maxMs: number }>;
}

export interface RuntimeWindow {
  startedAt: string;
  durationMs: number;
  memory: { before: MemorySnapshot; after: MemorySnapshot };
  resources: { before: ResourceCounts; max: ResourceCounts; after: ResourceCounts };
  eventLoop: DelaySummary;
  gc: GcSummary;
  /** `t`: milliseconds since the window started. */
  samples: Array<{ t: number; heapUsed: number; rss: number; external: number; utilization: number; activeResources: number }>;
}

export function totalResources(counts: ResourceCounts): number {
  return Object.values(counts).reduce((a, b) => a + b, 0);
}

/** Types with more active resources now than in the baseline. */
export function resourcesAbove(baseline: ResourceCounts, now: ResourceCounts): Array<{ type: string; before: number; after: number }> {
  return Object.keys(now)
    .filter((type) => now[type]! > (baseline[type] ?? 0))
    .sort()
    .map((type) => ({ type, before: baseline[type] ?? 0, after: now[type]! }));
}
