// `m2m-auth profile`: a real server in a child process, the load test against it over HTTP, and
// the measurements of the origin report taken for real around the load, by the server itself
// through the debug endpoints of its admin listener (M2M_AUTH_PPROF): latency and throughput,
// memory and bytes allocated per request, GC pauses, CPU by component, event-loop delay and
// utilisation, active handles before/during/after, and the CPU and heap profiles as files.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startServerProcess } from '../loadtest/server-process.js';
import { runLoadTest, type LoadTestMode, type LoadTestProgress, type LoadTestResult } from '../loadtest/run.js';
import { Attribution, cpuBreakdown, heapBreakdown, serverCodeRoot } from './components.js';
import { DebugEndpoints, type Recording } from './debug-client.js';
import type { CpuProfile, SamplingHeapProfile } from './devtools-profile.js';
import { cpuProfileToPprof, encodePprof, heapProfileToPprof } from './pprof.js';
import { renderHtmlReport } from './report-html.js';
import { renderMarkdownReport } from './report-md.js';
import { resourcesAbove, type ResourceCounts, type RuntimeWindow } from './runtime-window.js';
import type { Kpi, ProfileData, ProfileFile } from './profile-data.js';

export type { Kpi, ProfileData, ProfileFile } from './profile-data.js';

export interface ProfileOptions {
  /** The m2m-auth command to start the server with, e.g. [process.execPath, '/path/to/m2m-auth/dist/cli/main.js']. */
  command: readonly string[];
  /** Report folder; default ./profile-report-<timestamp>. */
  out?: string;
  clients?: number;
  requests?: number;
  clientCount?: number;
  mode?: LoadTestMode;
  timeoutMs?: number;
  durationLimitMs?: number;
  signingAlg?: string;
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

const MS_WAIT = 50;
/** The longest load profiled: the longest profile a server's debug endpoints take (60 s). */
export const MAX_PROFILED_LOAD_MS = 60_000;

/** The last window's `after` resources, compared with the baseline's, until they are back or `timeoutMs` passed. */
async function settle(debug: DebugEndpoints, baseline: ResourceCounts, timeoutMs: number): Promise<{ window: RuntimeWindow; settledMs: number }> {
  const start = performance.now();
  for (;;) {
    const recording = debug.record('/debug/runtime');
    await sleep(250);
    const window = JSON.parse((await recording.end()).toString('utf8')) as RuntimeWindow;
    const settledMs = performance.now() - start;
    if (resourcesAbove(baseline, window.resources.after).length === 0 || settledMs >= timeoutMs) return { window, settledMs };
    await sleep(MS_WAIT);
  }
}

export async function runProfile(options: ProfileOptions): Promise<ProfileResult> {
  const generated = new Date();
  const outDir = resolve(options.out ?? `profile-report-${timestamp(generated)}`);
  const phase = options.onPhase ?? (() => undefined);
  const loadAverageBefore = loadavg();
  const signingAlg = options.signingAlg ?? 'ES256';

  phase('starting a server (SQLite in memory, ephemeral ports, the debug endpoints on)');
  const running = await startServerProcess({
    command: options.command,
    env: { M2M_AUTH_PPROF: 'true', M2M_AUTH_SIGNING_ALG: signingAlg },
  });
  const debug = new DebugEndpoints(running.adminUrl, running.adminToken);
  const attribution = new Attribution(serverCodeRoot(options.command[options.command.length - 1]!));
  let during: { runtime: Recording; cpu: Recording; heap: Recording } | undefined;
  try {
    phase('measuring the idle baseline');
    const baselineRecording = debug.record('/debug/runtime');
    await sleep(options.baselineMs ?? 1000);
    const baseline = JSON.parse((await baselineRecording.end()).toString('utf8')) as RuntimeWindow;
    const resourcesBefore = baseline.resources.after;

    let duringWindow: RuntimeWindow | undefined;
    let cpu: CpuProfile | undefined;
    let heap: SamplingHeapProfile | undefined;
    let cpuStartedAt = new Date();
    let heapStartedAt = new Date();
    let loadStart = 0;
    let loadEnd = 0;
    const cpuIntervalUs = options.cpuIntervalUs ?? 1000;
    const heapInterval = options.heapSamplingInterval ?? 32 * 1024;
    const endDuring = async (): Promise<void> => {
      if (during === undefined) return;
      const { runtime, cpu: c, heap: h } = during;
      during = undefined;
      const [r, cp, hp] = await Promise.all([runtime.end(), c.end(), h.end()]);
      duringWindow = JSON.parse(r.toString('utf8')) as RuntimeWindow;
      cpu = JSON.parse(cp.toString('utf8')) as CpuProfile;
      heap = JSON.parse(hp.toString('utf8')) as SamplingHeapProfile;
    };

    phase('running the load');
    const load = await runLoadTest({
      url: running.issuer,
      admin: { url: running.adminUrl, token: running.adminToken },
      ...(options.clients !== undefined && { clients: options.clients }),
      ...(options.requests !== undefined && { requests: options.requests }),
      ...(options.clientCount !== undefined && { clientCount: options.clientCount }),
      ...(options.mode !== undefined && { mode: options.mode }),
      ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
      // The server's profiles and windows last 60 s at most: no request starts after that.
      durationLimitMs: Math.min(options.durationLimitMs ?? MAX_PROFILED_LOAD_MS, MAX_PROFILED_LOAD_MS),
      ...(options.onProgress !== undefined && { onProgress: options.onProgress }),
      ...(options.signal !== undefined && { signal: options.signal }),
      beforeLoad: () => {
        heapStartedAt = new Date();
        cpuStartedAt = new Date();
        during = {
          runtime: debug.record('/debug/runtime'),
          heap: debug.record('/debug/pprof/allocs', { format: 'devtools', interval: String(heapInterval) }),
          cpu: debug.record('/debug/pprof/profile', { format: 'devtools', interval: String(cpuIntervalUs) }),
        };
        loadStart = performance.now();
      },
      afterLoad: async () => {
        loadEnd = performance.now();
        await endDuring();
      },
    });
    await endDuring();

    phase('waiting for connections and timers to close');
    const { window: afterWindow, settledMs } = await settle(debug, resourcesBefore, options.settleTimeoutMs ?? 5000);
    const loadAverageAfter = loadavg();

    if (cpu === undefined || heap === undefined || duringWindow === undefined) throw new Error('The server did not return its CPU or heap profile');
    const cpuProfile: CpuProfile = cpu;
    const heapProfile: SamplingHeapProfile = heap;
    const window: RuntimeWindow = duringWindow;

    phase('writing the report');
    const cpuInfo = cpuBreakdown(cpuProfile, attribution);
    const heapInfo = heapBreakdown(heapProfile, attribution);
    const generatorBytes = heapInfo.components.find((c) => c.component === 'load_generator')?.value ?? 0;
    const memoryBefore = baseline.memory.after;
    const memoryAfter = afterWindow.memory.after;
    const samples = window.samples;
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
      server: { issuer: running.issuer, signingAlg, database: 'sqlite::memory:' },
      load,
      kpis: evaluateKpis(load, memoryAfter.rss, window.gc.maxMs),
      memory: {
        before: memoryBefore,
        after: memoryAfter,
        peakRss: Math.max(memoryBefore.rss, memoryAfter.rss, ...samples.map((x) => x.rss)),
        peakHeapUsed: Math.max(memoryBefore.heapUsed, memoryAfter.heapUsed, ...samples.map((x) => x.heapUsed)),
        allocation: {
          method: `V8's sampling heap profiler ran in the server during the load with collected objects kept (includeObjectsCollectedByMajorGC/MinorGC), one sample every ${heapInterval} bytes on average; the sum of its scaled sample sizes estimates every byte the server allocated on the JavaScript heap during the load, divided by the requests finished. Off-heap memory (Buffers' backing stores, native) is not included.`,
          totalBytes: heapInfo.totalBytes,
          perRequestBytes: load.totalRequests > 0 ? heapInfo.totalBytes / load.totalRequests : 0,
          serverPerRequestBytes: load.totalRequests > 0 ? (heapInfo.totalBytes - generatorBytes) / load.totalRequests : 0,
          byComponent: heapInfo.components,
        },
      },
      gc: { ...window.gc, perThousandRequests: load.totalRequests > 0 ? (window.gc.count * 1000) / load.totalRequests : 0 },
      cpu: {
        ...cpuInfo,
        samplingIntervalUs: cpuIntervalUs,
        sampleCount: cpuProfile.samples?.length ?? 0,
        durationMs: (cpuProfile.endTime - cpuProfile.startTime) / 1000,
      },
      eventLoop: { before: baseline.eventLoop, during: window.eventLoop, after: afterWindow.eventLoop },
      resources: {
        before: resourcesBefore,
        duringMax: { ...window.resources.max },
        after: afterWindow.resources.after,
        leaked: resourcesAbove(resourcesBefore, afterWindow.resources.after),
        settledMs,
      },
      timeline: {
        intervalMs: load.timeline.intervalMs,
        throughput: load.timeline.completed.map((n) => n / (load.timeline.intervalMs / 1000)),
        failed: load.timeline.failed,
        memory: samples.map((x) => ({ t: x.t / 1000, heapUsed: x.heapUsed, rss: x.rss })),
        loadEndS: (loadEnd - loadStart) / 1000,
      },
      files: profileFiles(),
    };

    mkdirSync(outDir, { recursive: true });
    const comments = [`m2m-auth profile ${generated.toISOString()}`, `${load.mode} load: ${load.config.clients} clients x ${load.config.requests} requests`];
    writeFileSync(join(outDir, 'cpu.pb.gz'), encodePprof(cpuProfileToPprof(cpuProfile, { startedAt: cpuStartedAt, comments })));
    writeFileSync(join(outDir, 'heap.pb.gz'), encodePprof(heapProfileToPprof(heapProfile, 'alloc', { startedAt: heapStartedAt, samplingInterval: heapInterval, comments })));
    writeFileSync(join(outDir, 'cpu.cpuprofile'), JSON.stringify(cpuProfile));
    writeFileSync(join(outDir, 'heap.heapprofile'), JSON.stringify(heapProfile));
    writeFileSync(join(outDir, 'results.json'), JSON.stringify(data, null, 2));
    writeFileSync(join(outDir, 'report.md'), renderMarkdownReport(data));
    writeFileSync(join(outDir, 'report.html'), renderHtmlReport(data));
    return { outDir, data };
  } finally {
    if (during !== undefined) {
      const pending = during;
      await Promise.allSettled([pending.runtime.end(), pending.cpu.end(), pending.heap.end()]);
    }
    await debug.close();
    await running.close();
  }
}
