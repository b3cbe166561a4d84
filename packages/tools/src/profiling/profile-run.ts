// `m2m-auth profile`: a real server in a child process (or one already running elsewhere, --url),
// the load test against it over HTTP from this process, and everything about the server measured
// by the server itself: CPU and heap profiles, memory, GC pauses, event-loop delay and utilisation
// and active handles through the debug endpoints of its admin listener (M2M_AUTH_PPROF), CPU
// seconds, RSS and the alert rules' series from its /metrics. The load generator's own CPU is
// measured apart, as a check that it was not the bottleneck.

import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { startServerProcess } from '../loadtest/server-process.js';
import { runLoadTest, type LoadTestMode, type LoadTestProgress, type LoadTestResult } from '../loadtest/run.js';
import { Attribution, cpuBreakdown, heapBreakdown, serverCodeRoot } from './components.js';
import { DebugEndpoints, type Recording } from './debug-client.js';
import { pinApart, type Pinning } from './pinning.js';
import { MetricsScraper, total, type Scrape } from './server-metrics.js';
import { evaluateAlertRules, loadAlertRules } from './alert-rules.js';
import type { CpuProfile, SamplingHeapProfile } from './devtools-profile.js';
import { cpuProfileToPprof, encodePprof, heapProfileToPprof } from './pprof.js';
import { renderHtmlReport } from './report-html.js';
import { renderMarkdownReport } from './report-md.js';
import { resourcesAbove, type ResourceCounts, type RuntimeWindow } from './runtime-window.js';
import type { Kpi, LoadPhase, ProfileData, ProfileFile } from './profile-data.js';

export type { Kpi, ProfileData, ProfileFile } from './profile-data.js';

export interface ProfileOptions {
  /** The m2m-auth command to start the server with, e.g. [process.execPath, '/path/to/m2m-auth/dist/cli/main.js']. */
  command?: readonly string[];
  /** Or a server already running, started with M2M_AUTH_PPROF=true: its issuer, admin listener and admin token. */
  target?: { url: string; adminUrl: string; adminToken: string };
  /** The database of the server the run starts; default the embedded one in memory. */
  databaseUrl?: string;
  /** Pin the server and the load generator to separate CPUs where there are two or more (Linux, taskset). Default true. */
  pin?: boolean;
  /** Called once the server is known (pid: the child's, when the run started it). */
  onServer?: (server: { pid?: number; issuer: string; adminUrl: string }) => void;
  /** Which build is measured, recorded in results.json for --compare (e.g. "0.1.0 (git 1a2b3c4)"). */
  version?: string;
  /** Prometheus alert rules to evaluate against the run's series (deploy/prometheus/alerts.yml). */
  alertRulesFile?: string;
  /** After the profiled closed loop: a max-rate phase and an open-loop phase of this long each (0: none). Default 5000 ms. */
  phaseMs?: number;
  /** The open-loop phase's rate as a fraction of the max rate found. Default 0.5. */
  openLoopFraction?: number;
  /** How often the server's /metrics is read during the load. Default 1000 ms. */
  scrapeIntervalMs?: number;
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

/** A server to profile that cannot be (its pprof routes are off, its admin token is refused). */
export class ProfileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProfileError';
  }
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

/** KPIs: error rate over `load` (all phases' requests), latency from `latencyFrom` (default `load`). */
export function evaluateKpis(load: Pick<LoadTestResult, 'latencyUs' | 'totalRequests' | 'failures'>, rssAfter: number, gcMaxMs: number, latencyFrom: Pick<LoadTestResult, 'latencyUs'> = load): Kpi[] {
  const ms = (us: number): string => `${(us / 1000).toFixed(2)} ms`;
  const errorRate = load.totalRequests > 0 ? load.failures / load.totalRequests : 1;
  return [
    { name: 'p50 latency', target: `< ${KPI_TARGETS.p50Ms} ms`, value: ms(latencyFrom.latencyUs.p50), met: latencyFrom.latencyUs.count > 0 && latencyFrom.latencyUs.p50 < KPI_TARGETS.p50Ms * 1000 },
    { name: 'p95 latency', target: `< ${KPI_TARGETS.p95Ms} ms`, value: ms(latencyFrom.latencyUs.p95), met: latencyFrom.latencyUs.count > 0 && latencyFrom.latencyUs.p95 < KPI_TARGETS.p95Ms * 1000 },
    { name: 'p99 latency', target: `< ${KPI_TARGETS.p99Ms} ms`, value: ms(latencyFrom.latencyUs.p99), met: latencyFrom.latencyUs.count > 0 && latencyFrom.latencyUs.p99 < KPI_TARGETS.p99Ms * 1000 },
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

  let own: Awaited<ReturnType<typeof startServerProcess>> | undefined;
  let pinning: Pinning | undefined;
  let target: { url: string; adminUrl: string; adminToken: string };
  const database = options.target !== undefined ? 'as configured on that server' : options.databaseUrl !== undefined ? redactUrl(options.databaseUrl) : 'sqlite::memory: (embedded)';
  if (options.target !== undefined) {
    target = options.target;
    phase(`checking the debug endpoints of ${target.adminUrl}`);
  } else {
    if (options.command === undefined) throw new Error('runProfile: give a command to start the server with, or a target');
    if (options.pin !== false) pinning = pinApart();
    phase(`starting a server (${database}, ephemeral ports, the debug endpoints on${pinning ? `, pinned to CPU ${pinning.server}, the load generator to CPU ${pinning.generator}` : ''})`);
    try {
      own = await startServerProcess({
        command: options.command,
        env: { M2M_AUTH_PPROF: 'true', M2M_AUTH_SIGNING_ALG: signingAlg },
        ...(options.databaseUrl !== undefined && { databaseUrl: options.databaseUrl }),
        ...(pinning !== undefined && { cpus: pinning.server }),
      });
    } catch (err) {
      pinning?.restore();
      throw err;
    }
    target = { url: own.issuer, adminUrl: own.adminUrl, adminToken: own.adminToken };
  }
  options.onServer?.({ ...(own !== undefined && { pid: own.pid }), issuer: target.url, adminUrl: target.adminUrl });
  const debug = new DebugEndpoints(target.adminUrl, target.adminToken);
  const scraper = new MetricsScraper(target.adminUrl);
  const entry = options.command?.[options.command.length - 1];
  let attribution = new Attribution(entry !== undefined ? serverCodeRoot(entry) : undefined);
  let during: { runtime: Recording; cpu: Recording; heap: Recording } | undefined;
  try {
    const probe = await debug.probe();
    if (probe === 'off') throw new ProfileError(`The server's pprof routes are off (${target.adminUrl}/debug/pprof answers 404): start it with M2M_AUTH_PPROF=true (serve --pprof) to profile it`);
    if (probe === 'unauthorized') throw new ProfileError(`The admin listener at ${target.adminUrl} refused the admin token`);
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

    let generatorCpu = { user: 0, system: 0 };
    let generatorElu = performance.eventLoopUtilization();
    let serverScrapes: { first: Scrape; last: Scrape } | undefined;
    let firstScrape: Scrape | undefined;
    const scrapeIntervalMs = options.scrapeIntervalMs ?? 1000;

    phase('running the load');
    const load = await runLoadTest({
      url: target.url,
      admin: { url: target.adminUrl, token: target.adminToken },
      ...(options.clients !== undefined && { clients: options.clients }),
      ...(options.requests !== undefined && { requests: options.requests }),
      ...(options.clientCount !== undefined && { clientCount: options.clientCount }),
      ...(options.mode !== undefined && { mode: options.mode }),
      ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
      // The server's profiles and windows last 60 s at most: no request starts after that.
      durationLimitMs: Math.min(options.durationLimitMs ?? MAX_PROFILED_LOAD_MS, MAX_PROFILED_LOAD_MS),
      ...(options.onProgress !== undefined && { onProgress: options.onProgress }),
      ...(options.signal !== undefined && { signal: options.signal }),
      beforeLoad: async () => {
        firstScrape = await scraper.scrape();
        scraper.every(scrapeIntervalMs);
        generatorCpu = process.cpuUsage();
        generatorElu = performance.eventLoopUtilization();
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
        generatorCpu = process.cpuUsage(generatorCpu);
        generatorElu = performance.eventLoopUtilization(generatorElu);
        await scraper.stop();
        const last = await scraper.scrape();
        if (firstScrape !== undefined) serverScrapes = { first: firstScrape, last };
        await endDuring();
      },
    });
    await endDuring();
    await scraper.stop();

    phase('waiting for connections and timers to close');
    const { window: afterWindow, settledMs } = await settle(debug, resourcesBefore, options.settleTimeoutMs ?? 5000);
    const phases: LoadPhase[] = [];
    const phaseMs = options.phaseMs ?? 5000;
    if (phaseMs > 0 && load.failures === 0 && !options.signal?.aborted) {
      const common = {
        url: target.url,
        admin: { url: target.adminUrl, token: target.adminToken },
        ...(options.clientCount !== undefined && { clientCount: options.clientCount }),
        ...(options.mode !== undefined && { mode: options.mode }),
        ...(options.timeoutMs !== undefined && { timeoutMs: options.timeoutMs }),
        ...(options.signal !== undefined && { signal: options.signal }),
        verifyOneIn: SAMPLE_VERIFY_ONE_IN,
        durationLimitMs: phaseMs,
      };
      phase(`searching for the maximum sustainable rate (${MAX_RATE_CLIENTS} clients in a closed loop for ${phaseMs / 1000} s, one token in ${SAMPLE_VERIFY_ONE_IN} verified)`);
      const maxRate = await measuredPhase(scraper, (hooks) => runLoadTest({ ...common, ...hooks, clients: MAX_RATE_CLIENTS, requests: 10_000_000 }));
      phases.push({ name: 'max-rate', ...maxRate });
      const fraction = options.openLoopFraction ?? 0.5;
      const rate = Math.max(1, maxRate.load.requestsPerSecond * fraction);
      const perClient = Math.max(1, Math.ceil((rate * phaseMs) / 1000 / OPEN_LOOP_CLIENTS));
      phase(`open loop at ${Math.round(rate)} requests/s (${Math.round(fraction * 100)} % of the maximum) for ${phaseMs / 1000} s`);
      const open = await measuredPhase(scraper, (hooks) => runLoadTest({ ...common, ...hooks, clients: OPEN_LOOP_CLIENTS, requests: perClient, ratePerSecond: rate, durationLimitMs: phaseMs * 2 }));
      phases.push({ name: 'open-loop', fraction, ...open });
    }
    const loadAverageAfter = loadavg();

    if (cpu === undefined || heap === undefined || duringWindow === undefined) throw new Error('The server did not return its CPU or heap profile');
    const cpuProfile: CpuProfile = cpu;
    const heapProfile: SamplingHeapProfile = heap;
    const window: RuntimeWindow = duringWindow;

    phase('writing the report');
    if (entry === undefined) attribution = new Attribution(serverCodeRootFromProfile(cpuProfile));
    const cpuInfo = cpuBreakdown(cpuProfile, attribution);
    const heapInfo = heapBreakdown(heapProfile, attribution);
    const generatorBytes = heapInfo.components.filter((c) => c.component === 'profiler' || c.component === 'load_generator').reduce((a, c) => a + c.value, 0);
    const memoryBefore = baseline.memory.after;
    const memoryAfter = afterWindow.memory.after;
    const samples = window.samples;
    const data: ProfileData = {
      ...(options.version !== undefined && { version: options.version }),
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
      server: {
        issuer: target.url,
        signingAlg: options.target !== undefined ? 'as configured on that server' : signingAlg,
        database,
        startedByProfiler: own !== undefined,
        ...(own !== undefined && { pid: own.pid }),
        ...(pinning !== undefined && { cpus: pinning.server }),
        ...(serverScrapes !== undefined && serverSide(serverScrapes.first, serverScrapes.last, load.totalRequests)),
      },
      generator: {
        ...(pinning !== undefined && { cpus: pinning.generator }),
        cpuSeconds: (generatorCpu.user + generatorCpu.system) / 1e6,
        cpuShareOfOneCore: loadEnd > loadStart ? (generatorCpu.user + generatorCpu.system) / 1000 / (loadEnd - loadStart) : 0,
        eventLoopUtilization: generatorElu.utilization,
      },
      load,
      kpis: evaluateKpis(
        { latencyUs: load.latencyUs, totalRequests: load.totalRequests + phases.reduce((a, p) => a + p.load.totalRequests, 0), failures: load.failures + phases.reduce((a, p) => a + p.load.failures, 0) },
        memoryAfter.rss, window.gc.maxMs, phases.find((p) => p.name === 'open-loop')?.load ?? load,
      ),
      phases: [
        { name: 'closed-loop', load: phaseSummary(load), server: serverScrapes !== undefined ? serverSide(serverScrapes.first, serverScrapes.last, load.totalRequests) : {}, generator: { cpuShareOfOneCore: loadEnd > loadStart ? (generatorCpu.user + generatorCpu.system) / 1000 / (loadEnd - loadStart) : 0, eventLoopUtilization: generatorElu.utilization } },
        ...phases,
      ],
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
      ...(serverScrapes !== undefined && { series: serverScrapes }),
      alerts: options.alertRulesFile === undefined || serverScrapes === undefined
        ? { evaluations: [], runSeconds: 0 }
        : {
          file: options.alertRulesFile,
          runSeconds: (serverScrapes.last.t - serverScrapes.first.t) / 1000,
          evaluations: evaluateAlertRules(loadAlertRules(options.alertRulesFile), serverScrapes),
        },
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
    await scraper.close();
    await debug.close();
    await own?.close();
    pinning?.restore();
  }
}

/** Clients of the max-rate phase: enough requests in flight to keep one server process busy. */
const MAX_RATE_CLIENTS = 64;
/** Connections of the open-loop phase, each with its share of the schedule. */
const OPEN_LOOP_CLIENTS = 32;
/** Tokens verified in the max-rate and open-loop phases: one in this many (the generator's CPU goes to sending). */
const SAMPLE_VERIFY_ONE_IN = 20;

function phaseSummary(l: LoadTestResult): LoadPhase['load'] {
  return {
    mode: l.mode, config: l.config, durationMs: l.durationMs, totalRequests: l.totalRequests, requestsPerSecond: l.requestsPerSecond,
    successes: l.successes, failures: l.failures, failuresByCause: l.failuresByCause, latencyUs: l.latencyUs,
  };
}

/** A load phase with the server's CPU (its /metrics at the first and the last request) and the generator's own over the same window. */
async function measuredPhase(scraper: MetricsScraper, run: (hooks: { beforeLoad: () => Promise<void>; afterLoad: () => Promise<void> }) => Promise<LoadTestResult>): Promise<Omit<LoadPhase, 'name'>> {
  let first: Scrape | undefined;
  let last: Scrape | undefined;
  let cpu = process.cpuUsage();
  let elu = performance.eventLoopUtilization();
  let started = 0;
  let ms = 0;
  const load = await run({
    beforeLoad: async () => {
      first = await scraper.scrape();
      cpu = process.cpuUsage();
      elu = performance.eventLoopUtilization();
      started = performance.now();
    },
    afterLoad: async () => {
      ms = performance.now() - started;
      cpu = process.cpuUsage(cpu);
      elu = performance.eventLoopUtilization(elu);
      last = await scraper.scrape();
    },
  });
  return {
    load: phaseSummary(load),
    server: first !== undefined && last !== undefined ? serverSide(first, last, load.totalRequests) : {},
    generator: { cpuShareOfOneCore: ms > 0 ? (cpu.user + cpu.system) / 1000 / ms : 0, eventLoopUtilization: elu.utilization },
  };
}

function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return url;
  }
}

/** The server's CPU seconds and RSS from its /metrics at the start and end of the load. */
function serverSide(first: Scrape, last: Scrape, requests: number): { cpuSeconds: number; cpuSecondsPerRequest: number; cpuShareOfOneCore: number; rssAtEnd: number } {
  const cpu = total(last.samples, 'm2m_auth_process_cpu_seconds_total') - total(first.samples, 'm2m_auth_process_cpu_seconds_total');
  const seconds = (last.t - first.t) / 1000;
  return {
    cpuSeconds: cpu,
    cpuSecondsPerRequest: requests > 0 ? cpu / requests : 0,
    cpuShareOfOneCore: seconds > 0 ? cpu / seconds : 0,
    rssAtEnd: total(last.samples, 'm2m_auth_process_resident_memory_bytes'),
  };
}

/** The server's code folder guessed from the frames of its CPU profile (a server profiled by URL). */
export function serverCodeRootFromProfile(profile: CpuProfile): string | undefined {
  for (const n of profile.nodes) {
    const m = /^(?:file:\/\/)?(\/.*\/)oauth\/token\/[^/]+\.[cm]?js$/.exec(n.callFrame.url);
    if (m) return m[1];
  }
  return undefined;
}
