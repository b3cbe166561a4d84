// V8's profiles as the Chrome DevTools protocol writes them (what .cpuprofile and .heapprofile
// files hold, and what a server's debug endpoints answer with format=devtools).

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
