// `m2m-auth profile`: a real server in this process, the load test against it over HTTP, and the
// measurements of the origin report taken for real around the load: latency and throughput,
// memory and bytes allocated per request, GC pauses, CPU by component, event-loop delay and
// utilisation, active handles before/during/after, and the CPU and heap profiles as files.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startInProcessServer } from '../loadtest/in-process.js';
import { runLoadTest, type LoadTestMode, type LoadTestProgress, type LoadTestResult } from '../loadtest/run.js';
import type { SigningAlgorithm } from '../ground/names.js';
import { cpuBreakdown, heapBreakdown, type ComponentShare, type CpuBreakdown } from './components.js';
import { startCpuProfile, startHeapSampling, type CpuProfile, type SamplingHeapProfile } from '../observability/profiles/inspector.js';
import { cpuProfileToPprof, encodePprof, heapProfileToPprof } from '../observability/profiles/pprof.js';
import { renderHtmlReport } from './report-html.js';
import { renderMarkdownReport } from './report-md.js';
import {
  activeResources, GcRecorder, LoopPhase, memorySnapshot, resourcesAbove, RuntimeSampler,
  type DelaySummary, type GcSummary, type MemorySnapshot, type ResourceCounts,
} from './runtime.js';

export interface ProfileOptions {
  /** Report folder; default ./profile-report-<timestamp>. */
  out?: string;
  clients?: number;
  requests?: number;
  clientCount?: number;
  mode?: LoadTestMode;
  timeoutMs?: number;
  durationLimitMs?: number;
  signingAlg?: SigningAlgorithm;
  /** CPU profiler sampling interval. Default 1000 µs. */
  cpuIntervalUs?: number;
  /** Mean bytes between heap samples. Default 32 KiB. */
  heapSamplingInterval?: number;
  /** Idle time measured before the load (the baseline). Default 1000 ms. */
  baselineMs?: number;
  /** How long to wait after the load for handles to close. Default 5000 ms. */
  settleTimeoutMs?: number;
  onProgress?: (progress: LoadTestProgress) => void;
  onPhase?: (phase: string) => void;
  signal?: AbortSignal;
}

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
  server: { issuer: string; signingAlg: string; database: string };
  load: LoadTestResult;
  kpis: Kpi[];
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
}

export interface ProfileResult {
  outDir: string;
  data: ProfileData;
}

export const KPI_TARGETS = {
  p50Ms: 5,
  p95Ms: 20,
  p99Ms: 50,
  rssAfterMb: 100,
  gcPauseMaxMs: 10,
} as const;

// Decimal megabytes, as the target is written.
const MB = 1_000_000;

function timestamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z').replace('T', '-');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export function evaluateKpis(load: LoadTestResult, rssAfter: number, gcMaxMs: number): Kpi[] {
  const ms = (us: number): string => `${(us / 1000).toFixed(2)} ms`;
  const errorRate = load.totalRequests > 0 ? load.failures / load.totalRequests : 1;
  return [
    { name: 'p50 latency', target: `< ${KPI_TARGETS.p50Ms} ms`, value: ms(load.latencyUs.p50), met: load.latencyUs.count > 0 && load.latencyUs.p50 < KPI_TARGETS.p50Ms * 1000 },
    { name: 'p95 latency', target: `< ${KPI_TARGETS.p95Ms} ms`, value: ms(load.latencyUs.p95), met: load.latencyUs.count > 0 && load.latencyUs.p95 < KPI_TARGETS.p95Ms * 1000 },
    { name: 'p99 latency', target: `< ${KPI_TARGETS.p99Ms} ms`, value: ms(load.latencyUs.p99), met: load.latencyUs.count > 0 && load.latencyUs.p99 < KPI_TARGETS.p99Ms * 1000 },
    { name: 'Error rate', target: '0', value: `${(errorRate * 100).toFixed(3)} % (${load.failures} of ${load.totalRequests})`, met: load.totalRequests > 0 && load.failures === 0 },
    { name: 'RSS after the load', target: `< ${KPI_TARGETS.rssAfterMb} MB`, value: `${(rssAfter / MB).toFixed(1)} MB`, met: rssAfter < KPI_TARGETS.rssAfterMb * MB },
    { name: 'Longest GC pause', target: `< ${KPI_TARGETS.gcPauseMaxMs} ms`, value: `${gcMaxMs.toFixed(2)} ms`, met: gcMaxMs < KPI_TARGETS.gcPauseMaxMs },
  ];
}

function profileFiles(): ProfileFile[] {
  return [
    {
      name: 'cpu.pb.gz',
      description: 'CPU profile of the load (pprof; sample types samples/count and cpu/nanoseconds; idle time left out)',
      commands: ['go tool pprof -top cpu.pb.gz', 'go tool pprof -http=localhost:8080 cpu.pb.gz', 'npx speedscope cpu.pb.gz'],
    },
    {
      name: 'heap.pb.gz',
      description: 'Allocation profile of the load (pprof from V8\'s sampling heap profiler, collected objects included; alloc_space/bytes)',
      commands: ['go tool pprof -sample_index=alloc_space -top heap.pb.gz', 'go tool pprof -http=localhost:8080 heap.pb.gz'],
    },
    {
      name: 'cpu.cpuprofile',
      description: 'The same CPU profile for Chrome DevTools (Performance panel) and speedscope',
      commands: ['Chrome: chrome://inspect → Open dedicated DevTools for Node → Performance → Load profile… → cpu.cpuprofile', 'npx speedscope cpu.cpuprofile'],
    },
    {
      name: 'heap.heapprofile',
      description: 'The same sampling heap profile for Chrome DevTools (Memory panel)',
      commands: ['Chrome: chrome://inspect → Open dedicated DevTools for Node → Memory → Load… → heap.heapprofile'],
    },
    {
      name: 'results.json',
      description: 'Every measurement of this report as JSON',
      commands: ['node -e "console.log(require(\'./results.json\').load.latencyUs)"'],
    },
  ];
}

export async function runProfile(options: ProfileOptions = {}): Promise<ProfileResult> {
  const generated = new Date();
  const outDir = resolve(options.out ?? `profile-report-${timestamp(generated)}`);
  const phase = options.onPhase ?? (() => undefined);
  const loadAverageBefore = loadavg();

  phase('starting an in-process server (SQLite in memory, ephemeral ports)');
  const running = await startInProcessServer(options.signingAlg ? { overrides: { signingAlg: options.signingAlg } } : {});
  const gc = new GcRecorder();
  const sampler = new RuntimeSampler(250);
  let cpu: CpuProfile | undefined;
  let cpuStartedAt = new Date();
  let heap: SamplingHeapProfile | undefined;
  let heapStartedAt = new Date();
  let stopProfilers: (() => Promise<void>) | undefined;
  try {
    phase('measuring the idle baseline');
    gc.start();
    const beforePhase = new LoopPhase();
    await sleep(options.baselineMs ?? 1000);
    const eventLoopBefore = beforePhase.end();
    const resourcesBefore = activeResources();
    const memoryBefore = memorySnapshot();

    sampler.start();
    let duringPhase: LoopPhase | undefined;
    let eventLoopDuring: DelaySummary | undefined;
    let loadStart = 0;
    let loadEnd = 0;
    const cpuIntervalUs = options.cpuIntervalUs ?? 1000;
    const heapInterval = options.heapSamplingInterval ?? 32 * 1024;

    phase('running the load');
    const load = await runLoadTest({
      url: running.issuer,
      admin: { url: running.adminUrl, token: running.adminToken },
      ...(options.clients !== undefined && { clients: options.clients }),
      ...(options.requests !== undefined && { requests: options.requests }),
      ...(options.clientCount !== undefined && { clientCount: options.clientCount }),
      ...(options.mode !== undefined && { mode: options.mode }),
      ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
      ...(options.durationLimitMs !== undefined && { durationLimitMs: options.durationLimitMs }),
      ...(options.onProgress !== undefined && { onProgress: options.onProgress }),
      ...(options.signal !== undefined && { signal: options.signal }),
      beforeLoad: async () => {
        const heapSampling = await startHeapSampling({ samplingInterval: heapInterval, includeCollected: true });
        heapStartedAt = heapSampling.startedAt;
        const cpuProfiling = await startCpuProfile(cpuIntervalUs);
        cpuStartedAt = cpuProfiling.startedAt;
        stopProfilers = async () => {
          stopProfilers = undefined;
          const [c, h] = await Promise.allSettled([cpuProfiling.stop(), heapSampling.stop()]);
          if (c.status === 'fulfilled') cpu = c.value;
          if (h.status === 'fulfilled') heap = h.value;
        };
        duringPhase = new LoopPhase();
        loadStart = performance.now();
      },
      afterLoad: async () => {
        loadEnd = performance.now();
        // The client's connections are still open here: a short load may have ended between two timed samples.
        sampler.sample();
        eventLoopDuring = duringPhase?.end();
        await stopProfilers?.();
      },
    });

    phase('waiting for connections and timers to close');
    const afterPhase = new LoopPhase();
    const settleStart = performance.now();
    const settleTimeout = options.settleTimeoutMs ?? 5000;
    sampler.stop();
    let resourcesAfter = activeResources();
    while (resourcesAbove(resourcesBefore, resourcesAfter).length > 0 && performance.now() - settleStart < settleTimeout) {
      await sleep(50);
      resourcesAfter = activeResources();
    }
    const settledMs = performance.now() - settleStart;
    await sleep(Math.max(0, 250 - settledMs));
    const eventLoopAfter = afterPhase.end();
    const memoryAfter = memorySnapshot();
    await gc.stop();
    const loadAverageAfter = loadavg();

    if (cpu === undefined || heap === undefined) throw new Error('The CPU or heap profiler did not return a profile');

    phase('writing the report');
    const cpuInfo = cpuBreakdown(cpu);
    const heapInfo = heapBreakdown(heap);
    const generatorBytes = heapInfo.components.find((c) => c.component === 'load_generator')?.value ?? 0;
    const gcDuring = gc.summary(loadStart, loadEnd);
    const samples = sampler.samples;
    const data: ProfileData = {
      generatedAt: generated.toISOString(),
      outDir,
      environment: {
        node: process.version,
        v8: process.versions.v8,
        platform: `${process.platform} ${process.arch}`,
        cpuCount: cpus().length,
        cpuModel: cpus()[0]?.model ?? 'unknown',
        totalMemory: totalmem(),
        loadAverageBefore,
        loadAverageAfter,
      },
      server: { issuer: running.issuer, signingAlg: running.server.config.signingAlg, database: running.server.config.databaseUrl },
      load,
      kpis: evaluateKpis(load, memoryAfter.rss, gcDuring.maxMs),
      memory: {
        before: memoryBefore,
        after: memoryAfter,
        peakRss: Math.max(memoryBefore.rss, memoryAfter.rss, ...samples.map((s) => s.rss)),
        peakHeapUsed: Math.max(memoryBefore.heapUsed, memoryAfter.heapUsed, ...samples.map((s) => s.heapUsed)),
        allocation: {
          method: `V8's sampling heap profiler ran during the load with collected objects kept (includeObjectsCollectedByMajorGC/MinorGC), one sample every ${heapInterval} bytes on average; the sum of its scaled sample sizes estimates every byte allocated on the JavaScript heap during the load (server and load generator in this process), divided by the requests finished. Off-heap memory (Buffers' backing stores, native) is not included.`,
          totalBytes: heapInfo.totalBytes,
          perRequestBytes: load.totalRequests > 0 ? heapInfo.totalBytes / load.totalRequests : 0,
          serverPerRequestBytes: load.totalRequests > 0 ? (heapInfo.totalBytes - generatorBytes) / load.totalRequests : 0,
          byComponent: heapInfo.components,
        },
      },
      gc: { ...gcDuring, perThousandRequests: load.totalRequests > 0 ? (gcDuring.count * 1000) / load.totalRequests : 0 },
      cpu: {
        ...cpuInfo,
        samplingIntervalUs: cpuIntervalUs,
        sampleCount: cpu.samples?.length ?? 0,
        durationMs: (cpu.endTime - cpu.startTime) / 1000,
      },
      eventLoop: { before: eventLoopBefore, during: eventLoopDuring ?? eventLoopAfter, after: eventLoopAfter },
      resources: {
        before: resourcesBefore,
        duringMax: { ...sampler.maxResources },
        after: resourcesAfter,
        leaked: resourcesAbove(resourcesBefore, resourcesAfter),
        settledMs,
      },
      timeline: {
        intervalMs: load.timeline.intervalMs,
        throughput: load.timeline.completed.map((n) => n / (load.timeline.intervalMs / 1000)),
        failed: load.timeline.failed,
        memory: samples.filter((s) => s.at >= loadStart).map((s) => ({ t: (s.at - loadStart) / 1000, heapUsed: s.heapUsed, rss: s.rss })),
        loadEndS: (loadEnd - loadStart) / 1000,
      },
      files: profileFiles(),
    };

    mkdirSync(outDir, { recursive: true });
    const comments = [`m2m-auth profile ${generated.toISOString()}`, `${load.mode} load: ${load.config.clients} clients x ${load.config.requests} requests`];
    writeFileSync(join(outDir, 'cpu.pb.gz'), encodePprof(cpuProfileToPprof(cpu, { startedAt: cpuStartedAt, comments })));
    writeFileSync(join(outDir, 'heap.pb.gz'), encodePprof(heapProfileToPprof(heap, 'alloc', { startedAt: heapStartedAt, samplingInterval: heapInterval, comments })));
    writeFileSync(join(outDir, 'cpu.cpuprofile'), JSON.stringify(cpu));
    writeFileSync(join(outDir, 'heap.heapprofile'), JSON.stringify(heap));
    writeFileSync(join(outDir, 'results.json'), JSON.stringify(data, null, 2));
    writeFileSync(join(outDir, 'report.md'), renderMarkdownReport(data));
    writeFileSync(join(outDir, 'report.html'), renderHtmlReport(data));
    return { outDir, data };
  } finally {
    await stopProfilers?.();
    sampler.stop();
    await gc.stop();
    await running.close();
  }
}
