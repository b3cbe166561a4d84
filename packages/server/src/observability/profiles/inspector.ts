// V8's CPU profiler and sampling heap profiler of this process, through node:inspector sessions
// (the Chrome DevTools Protocol's Profiler and HeapProfiler domains). V8 has one sampling interval
// and one sampling heap profiler per isolate, so each profiler runs at most once at a time here.

import { Session } from 'node:inspector/promises';

/** Profiler.Profile of the DevTools protocol (what a .cpuprofile file holds). */
export interface CpuProfile {
  nodes: CpuProfileNode[];
  /** Microseconds, monotonic clock. */
  startTime: number;
  endTime: number;
  samples?: number[];
  /** Microseconds between consecutive samples (the first is from startTime). */
  timeDeltas?: number[];
}

export interface CallFrame {
  functionName: string;
  scriptId: string;
  url: string;
  /** 0-based. */
  lineNumber: number;
  columnNumber: number;
}

export interface CpuProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

/** HeapProfiler.SamplingHeapProfile (what a .heapprofile file holds). */
export interface SamplingHeapProfile {
  head: SamplingHeapProfileNode;
  samples?: Array<{ size: number; nodeId: number; ordinal: number }>;
}

export interface SamplingHeapProfileNode {
  callFrame: CallFrame;
  /** Bytes of the sampled allocations at this frame (already scaled by V8 to estimate the total). */
  selfSize: number;
  id: number;
  children: SamplingHeapProfileNode[];
}

export class ProfilerBusyError extends Error {
  constructor(what: string) {
    super(`A ${what} is already running in this process`);
    this.name = 'ProfilerBusyError';
  }
}

let cpuBusy = false;
let heapBusy = false;

export interface CpuProfiling {
  readonly startedAt: Date;
  stop(): Promise<CpuProfile>;
}

/** Starts V8's CPU profiler; throws ProfilerBusyError when one is already running. */
export async function startCpuProfile(samplingIntervalUs = 1000): Promise<CpuProfiling> {
  if (cpuBusy) throw new ProfilerBusyError('CPU profile');
  cpuBusy = true;
  const session = new Session();
  try {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.setSamplingInterval', { interval: samplingIntervalUs });
    await session.post('Profiler.start');
  } catch (err) {
    session.disconnect();
    cpuBusy = false;
    throw err;
  }
  const startedAt = new Date();
  let stopped: Promise<CpuProfile> | undefined;
  return {
    startedAt,
    stop() {
      stopped ??= (async () => {
        try {
          const { profile } = await session.post('Profiler.stop');
          await session.post('Profiler.disable');
          return profile as CpuProfile;
        } finally {
          session.disconnect();
          cpuBusy = false;
        }
      })();
      return stopped;
    },
  };
}

export interface HeapSampling {
  readonly startedAt: Date;
  /** The profile so far, without stopping. */
  snapshot(): Promise<SamplingHeapProfile>;
  stop(): Promise<SamplingHeapProfile>;
}

export interface HeapSamplingOptions {
  /** Mean bytes between samples (V8's default is 32 KiB). */
  samplingInterval?: number;
  /**
   * Keep samples of objects the garbage collector has since freed: the profile then shows every
   * allocation (an allocation profile) instead of what is still alive (an in-use profile).
   */
  includeCollected?: boolean;
}

/** Starts V8's sampling heap profiler; throws ProfilerBusyError when it already runs. */
export async function startHeapSampling(options: HeapSamplingOptions = {}): Promise<HeapSampling> {
  if (heapBusy) throw new ProfilerBusyError('heap profile');
  heapBusy = true;
  const session = new Session();
  try {
    session.connect();
    await session.post('HeapProfiler.enable');
    const params = {
      samplingInterval: options.samplingInterval ?? 32 * 1024,
      ...(options.includeCollected === true && { includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true }),
    };
    await session.post('HeapProfiler.startSampling', params);
  } catch (err) {
    session.disconnect();
    heapBusy = false;
    throw err;
  }
  const startedAt = new Date();
  let stopped: Promise<SamplingHeapProfile> | undefined;
  return {
    startedAt,
    async snapshot() {
      if (stopped !== undefined) return stopped;
      const { profile } = await session.post('HeapProfiler.getSamplingProfile');
      return profile as SamplingHeapProfile;
    },
    stop() {
      stopped ??= (async () => {
        try {
          const { profile } = await session.post('HeapProfiler.stopSampling');
          await session.post('HeapProfiler.disable');
          return profile as SamplingHeapProfile;
        } finally {
          session.disconnect();
          heapBusy = false;
        }
      })();
      return stopped;
    },
  };
}
