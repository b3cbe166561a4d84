// What a profile run measured (results.json), from which report.md and report.html are written.

import type { LoadTestResult } from '../loadtest/run.js';
import type { AlertEvaluation } from './alert-rules.js';
import type { ComponentShare, CpuBreakdown } from './components.js';
import type { Scrape } from './server-metrics.js';
import type { DelaySummary, GcSummary, MemorySnapshot, ResourceCounts } from './runtime-window.js';

export interface Kpi {
  name: string;
  target: string;
  value: string;
  met: boolean;
}

export interface ProfileFile {
  name: string;
  description: string;
  commands: string[];
}

/** One load phase: the profiled closed loop, the max-rate search, the open loop at a fraction of it. */
export interface LoadPhase {
  name: 'closed-loop' | 'max-rate' | 'open-loop';
  /** open-loop: its rate as a fraction of the max rate. */
  fraction?: number;
  load: Pick<LoadTestResult, 'mode' | 'config' | 'durationMs' | 'totalRequests' | 'requestsPerSecond' | 'successes' | 'failures' | 'failuresByCause' | 'latencyUs'>;
  server: { cpuSeconds?: number; cpuSecondsPerRequest?: number; cpuShareOfOneCore?: number };
  generator: { cpuShareOfOneCore: number; eventLoopUtilization: number };
}

export interface ProfileData {
  generatedAt: string;
  outDir: string;
  environment: {
    node: string;
    v8: string;
    platform: string;
    cpuCount: number;
    cpuModel: string;
    totalMemory: number;
    loadAverageBefore: number[];
    loadAverageAfter: number[];
  };
  /** Which build of m2m-auth measured this (for --compare). */
  version?: string;
  server: {
    issuer: string;
    signingAlg: string;
    database: string;
    startedByProfiler: boolean;
    /** The child's process id when the run started it. */
    pid?: number;
    /** CPUs it was pinned to (taskset list). */
    cpus?: string;
    /** From its /metrics at the first and last request: process CPU seconds, per request, and as a share of one core. */
    cpuSeconds?: number;
    cpuSecondsPerRequest?: number;
    cpuShareOfOneCore?: number;
    /** process_resident_memory_bytes at the last request. */
    rssAtEnd?: number;
  };
  /** The load generator (this process): its own CPU during the load, to show it was not the bottleneck. */
  generator: {
    cpus?: string;
    cpuSeconds: number;
    /** CPU seconds per second of load: 1 is one core busy the whole time (its thread pool can add more). */
    cpuShareOfOneCore: number;
    /** Its main thread's event-loop utilisation during the load, 0..1. */
    eventLoopUtilization: number;
  };
  load: LoadTestResult;
  kpis: Kpi[];
  /** The phases of the run in order; the first is the profiled closed loop (`load`). */
  phases: LoadPhase[];
  memory: {
    before: MemorySnapshot;
    after: MemorySnapshot;
    peakRss: number;
    peakHeapUsed: number;
    allocation: {
      method: string;
      totalBytes: number;
      perRequestBytes: number;
      /** Without the load generator's own allocations. */
      serverPerRequestBytes: number;
      byComponent: ComponentShare[];
    };
  };
  gc: GcSummary & { perThousandRequests: number };
  cpu: CpuBreakdown & { samplingIntervalUs: number; sampleCount: number; durationMs: number };
  eventLoop: { before: DelaySummary; during: DelaySummary; after: DelaySummary };
  resources: {
    before: ResourceCounts;
    duringMax: ResourceCounts;
    after: ResourceCounts;
    leaked: Array<{ type: string; before: number; after: number }>;
    settledMs: number;
  };
  timeline: {
    intervalMs: number;
    /** Requests finished per second, per slot of the load. */
    throughput: number[];
    failed: number[];
    /** Seconds since the load started. */
    memory: Array<{ t: number; heapUsed: number; rss: number }>;
    loadEndS: number;
  };
  files: ProfileFile[];
  /** The server's /metrics at the first and the last request of the load. */
  series?: { first: Scrape; last: Scrape };
  /** The alert rules evaluated against `series`; `file` absent when no rules file was given. */
  alerts: { file?: string; runSeconds: number; evaluations: AlertEvaluation[] };
}
