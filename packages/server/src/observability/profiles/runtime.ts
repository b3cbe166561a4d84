// Runtime measurements of this process over a window (GET /debug/runtime): memory, garbage collection pauses
// (PerformanceObserver 'gc'), event-loop delay (monitorEventLoopDelay) and utilisation, and the
// active handles and requests that keep the event loop alive (process.getActiveResourcesInfo).

import { constants, monitorEventLoopDelay, performance, PerformanceObserver, type EventLoopUtilization, type IntervalHistogram } from 'node:perf_hooks';

export interface MemorySnapshot {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
}

export function memorySnapshot(): MemorySnapshot {
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers };
}

export type ResourceCounts = Record<string, number>;

/** Active handles and requests by type (TCPSocketWrap, Timeout, FSReqCallback, ...). */
export function activeResources(): ResourceCounts {
  const out: ResourceCounts = {};
  for (const type of process.getActiveResourcesInfo()) out[type] = (out[type] ?? 0) + 1;
  return out;
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

export interface DelaySummary {
  /** Milliseconds. */
  min: number;
  mean: number;
  p50: number;
  p99: number;
  max: number;
  /** Event-loop utilisation over the phase, 0..1. */
  utilization: number;
  durationMs: number;
}

/**
 * Event-loop delay and utilisation over one phase. The histogram records the full interval of a
 * timer that should fire every `resolutionMs`; the delay is what exceeds that interval.
 */
export class LoopPhase {
  readonly #histogram: IntervalHistogram;
  readonly #elu: EventLoopUtilization;
  readonly #start = performance.now();
  readonly #resolutionMs: number;

  constructor(resolutionMs = 10) {
    this.#resolutionMs = resolutionMs;
    this.#histogram = monitorEventLoopDelay({ resolution: resolutionMs });
    this.#histogram.enable();
    this.#elu = performance.eventLoopUtilization();
  }

  end(): DelaySummary {
    this.#histogram.disable();
    const h = this.#histogram;
    const empty = (h as unknown as { count?: number }).count === 0;
    const delay = (ns: number): number => (empty || !Number.isFinite(ns) ? 0 : Math.max(0, ns / 1e6 - this.#resolutionMs));
    return {
      min: delay(h.min),
      mean: delay(h.mean),
      p50: delay(h.percentile(50)),
      p99: delay(h.percentile(99)),
      max: delay(h.max),
      utilization: performance.eventLoopUtilization(this.#elu).utilization,
      durationMs: performance.now() - this.#start,
    };
  }
}

export interface GcEvent {
  /** performance.now() time. */
  startTime: number;
  durationMs: number;
  kind: string;
}

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor (scavenge)',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major (mark-sweep-compact)',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental marking',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak callbacks',
};

export interface GcSummary {
  count: number;
  totalMs: number;
  maxMs: number;
  byKind: Record<string, { count: number; totalMs: number; maxMs: number }>;
}

/** Records every garbage collection pause while started. */
export class GcRecorder {
  readonly events: GcEvent[] = [];
  readonly #observer = new PerformanceObserver((list) => {
    for (const entry of list.getEntries()) {
      const detail = (entry as unknown as { detail?: { kind?: number } }).detail;
      const kind = GC_KINDS[detail?.kind ?? -1] ?? `kind ${String(detail?.kind)}`;
      this.events.push({ startTime: entry.startTime, durationMs: entry.duration, kind });
    }
  });

  start(): void {
    this.#observer.observe({ entryTypes: ['gc'] });
  }

  /** Entries are delivered asynchronously: wait a turn of the event loop before reading the last ones. */
  async stop(): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 20));
    this.#observer.disconnect();
  }

  summary(from = -Infinity, to = Infinity): GcSummary {
    const out: GcSummary = { count: 0, totalMs: 0, maxMs: 0, byKind: {} };
    for (const e of this.events) {
      if (e.startTime < from || e.startTime > to) continue;
      out.count++;
      out.totalMs += e.durationMs;
      out.maxMs = Math.max(out.maxMs, e.durationMs);
      const k = (out.byKind[e.kind] ??= { count: 0, totalMs: 0, maxMs: 0 });
      k.count++;
      k.totalMs += e.durationMs;
      k.maxMs = Math.max(k.maxMs, e.durationMs);
    }
    return out;
  }
}

export interface RuntimeSample {
  /** performance.now() time. */
  at: number;
  heapUsed: number;
  rss: number;
  external: number;
  /** Event-loop utilisation since the previous sample, 0..1. */
  utilization: number;
  activeResources: number;
}

/** Samples memory, utilisation and active resources at a fixed interval. */
export class RuntimeSampler {
  readonly samples: RuntimeSample[] = [];
  /** Largest count of each resource type seen in a sample. */
  readonly maxResources: ResourceCounts = {};
  #timer: NodeJS.Timeout | undefined;
  #elu: EventLoopUtilization | undefined;

  constructor(private readonly intervalMs = 250) {}

  sample(): void {
    const m = process.memoryUsage();
    const elu = performance.eventLoopUtilization();
    const utilization = this.#elu === undefined ? 0 : performance.eventLoopUtilization(elu, this.#elu).utilization;
    this.#elu = elu;
    const resources = activeResources();
    for (const [type, n] of Object.entries(resources)) this.maxResources[type] = Math.max(this.maxResources[type] ?? 0, n);
    this.samples.push({ at: performance.now(), heapUsed: m.heapUsed, rss: m.rss, external: m.external, utilization, activeResources: totalResources(resources) });
  }

  start(): void {
    this.sample();
    this.#timer = setInterval(() => this.sample(), this.intervalMs);
  }

  /** Stops and takes a last sample; idempotent. */
  stop(): void {
    if (this.#timer === undefined) return;
    clearInterval(this.#timer);
    this.#timer = undefined;
    this.sample();
  }
}

/** Everything measured over one window (GET /debug/runtime), as JSON. */
export interface RuntimeWindowResult {
  startedAt: string;
  durationMs: number;
  memory: { before: MemorySnapshot; after: MemorySnapshot };
  /** Active handles and requests by type: at the start, the most seen in a sample, at the end. */
  resources: { before: ResourceCounts; max: ResourceCounts; after: ResourceCounts };
  eventLoop: DelaySummary;
  gc: GcSummary;
  /** Taken every sampling interval; `t` is milliseconds since the window started. */
  samples: Array<Omit<RuntimeSample, 'at'> & { t: number }>;
}

/**
 * Memory, garbage collection, event-loop delay and utilisation, and active resources of this
 * process over a window that ends when stop() is called.
 */
export class RuntimeWindow {
  readonly #startedAt = new Date();
  readonly #start = performance.now();
  readonly #memory = memorySnapshot();
  readonly #resources = activeResources();
  readonly #gc = new GcRecorder();
  readonly #loop = new LoopPhase();
  readonly #sampler: RuntimeSampler;

  constructor(sampleIntervalMs = 250) {
    this.#gc.start();
    this.#sampler = new RuntimeSampler(sampleIntervalMs);
    this.#sampler.start();
  }

  async stop(): Promise<RuntimeWindowResult> {
    this.#sampler.stop();
    const eventLoop = this.#loop.end();
    await this.#gc.stop();
    const after = activeResources();
    const max = { ...this.#sampler.maxResources };
    for (const [type, n] of Object.entries(after)) max[type] = Math.max(max[type] ?? 0, n);
    return {
      startedAt: this.#startedAt.toISOString(),
      durationMs: performance.now() - this.#start,
      memory: { before: this.#memory, after: memorySnapshot() },
      resources: { before: this.#resources, max, after },
      eventLoop,
      gc: this.#gc.summary(),
      samples: this.#sampler.samples.map(({ at, ...rest }) => ({ t: at - this.#start, ...rest })),
    };
  }
}
