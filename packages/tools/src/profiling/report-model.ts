// The profiling report as a document (sections of paragraphs, lists, tables, code and charts),
// built once from the measurements and rendered to Markdown and to self-contained HTML. Its
// sections are those of a capacity review, each filled with what this run measured.

import { formatBytes, formatInt, formatMs, formatPercent } from '../loadtest/format.js';
import type { LoadPhase, ProfileData } from './profile-data.js';
import { capacity, CORES_PER_INSTANCE, CPU_HEADROOM_BUSY, MIN_INSTANCES, PG_LISTEN_PER_PROCESS, PG_POOL_PER_PROCESS } from './capacity.js';
import { totalResources, type DelaySummary, type ResourceCounts } from './runtime-window.js';

/** Inline text: `code` and **bold** are the only markup, in both renderings. */
export type Block =
  | { kind: 'p'; text: string }
  | { kind: 'list'; items: string[] }
  | { kind: 'table'; head: string[]; rows: string[][]; align?: Array<'l' | 'r'> }
  | { kind: 'code'; text: string }
  | { kind: 'chart'; chart: ChartRef };

export type ChartRef =
  | { type: 'latency-histogram' }
  | { type: 'throughput' }
  | { type: 'heap' }
  | { type: 'cpu-components' };

export interface Section {
  id: string;
  title: string;
  blocks: Block[];
}

export interface ReportDocument {
  title: string;
  subtitle: string;
  sections: Section[];
}

/** The sections in order; each but the summary is numbered in the report ("1. Load test", ...). */
export const SECTION_TITLES = [
  'Executive summary',
  'Load test',
  'Latency distribution',
  'Throughput over time',
  'Memory',
  'Garbage collection',
  'CPU profile',
  'Event loop',
  'Active handles and leak check',
  'Profile files',
  'KPIs against targets',
  'Alert rules',
  'Capacity planning',
  'Recommendations',
  'Environment and method',
] as const;

/** The headings as the report shows them. */
export const NUMBERED_TITLES: readonly string[] = SECTION_TITLES.map((t, i) => (i === 0 ? t : `${i}. ${t}`));

/** The status words of a KPI row; report-html colours them. */
export const MET = 'met';
export const NOT_MET = 'not met';
const mark = (met: boolean): string => (met ? MET : NOT_MET);

function ms(value: number): string {
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(2)} ms`;
}

function delayRow(name: string, d: DelaySummary): string[] {
  return [name, ms(d.mean), ms(d.p50), ms(d.p99), ms(d.max), formatPercent(d.utilization), `${(d.durationMs / 1000).toFixed(2)} s`];
}

function resourceRows(before: ResourceCounts, during: ResourceCounts, after: ResourceCounts): string[][] {
  const types = [...new Set([...Object.keys(before), ...Object.keys(during), ...Object.keys(after)])].sort();
  return types.map((t) => [`\`${t}\``, String(before[t] ?? 0), String(during[t] ?? 0), String(after[t] ?? 0)]);
}

/** The generator's CPU at or above this share of one core (or its event loop this busy): it may have been the bottleneck. */
export const GENERATOR_SATURATED = 0.9;

export function generatorSaturated(d: ProfileData): boolean {
  return generatorBusy(d) >= GENERATOR_SATURATED;
}

/** How busy the load generator was where the maximum rate is measured (the max-rate phase, else the profiled load). */
export function generatorBusy(d: ProfileData): number {
  const g = d.phases?.find((p) => p.name === 'max-rate')?.generator ?? d.generator;
  return Math.max(g.cpuShareOfOneCore, g.eventLoopUtilization);
}

const PHASE_WHAT: Record<LoadPhase['name'], string> = {
  'closed-loop': 'the profiles, memory, GC, event loop, handles, alert-rule series and CPU per request; zero failures and max latency at this shape',
  'max-rate': 'the maximum sustainable rate of one server process',
  'open-loop': 'the latency percentiles of the KPIs: requests arrive at a steady rate below the maximum, so they hardly queue',
};

function phaseRows(d: ProfileData): string[][] {
  return (d.phases ?? []).map((p) => {
    const c = p.load.config;
    const shape = p.name === 'open-loop'
      ? `open loop, ${formatInt(c.ratePerSecond ?? 0)}/s (${Math.round((p.fraction ?? 0) * 100)} % of the max) over ${formatInt(c.clients)} connections`
      : `closed loop, ${formatInt(c.clients)} clients${p.name === 'closed-loop' ? ` × ${formatInt(c.requests)} requests` : ` for ${(c.durationLimitMs / 1000).toFixed(0)} s`}`;
    const verified = c.verifyOneIn > 1 ? `1 in ${c.verifyOneIn}` : 'all';
    return [
      p.name, shape, formatInt(p.load.totalRequests), `${(p.load.durationMs / 1000).toFixed(2)} s`, `${formatInt(p.load.requestsPerSecond)}/s`,
      formatMs(p.load.latencyUs.p50), formatMs(p.load.latencyUs.p99), formatMs(p.load.latencyUs.max), formatInt(p.load.failures), verified,
      p.server.cpuShareOfOneCore !== undefined ? formatPercent(p.server.cpuShareOfOneCore) : '—',
      formatPercent(Math.max(p.generator.cpuShareOfOneCore, p.generator.eventLoopUtilization)),
      PHASE_WHAT[p.name],
    ];
  });
}

function summaryPhases(d: ProfileData): string[] {
  const out: string[] = [];
  const max = d.phases?.find((p) => p.name === 'max-rate');
  const open = d.phases?.find((p) => p.name === 'open-loop');
  if (max !== undefined) out.push(generatorSaturated(d) ? `Maximum sustainable rate: **not measurable here** (the load generator was ${formatPercent(generatorBusy(d))} busy at ${formatInt(max.load.requestsPerSecond)}/s)` : `Maximum sustainable rate: **${formatInt(max.load.requestsPerSecond)} requests/second** (max-rate phase, server at ${formatPercent(max.server.cpuShareOfOneCore ?? 0)} of one core)`);
  if (open !== undefined) out.push(`The server's own latency (open loop at ${formatInt(open.load.config.ratePerSecond ?? 0)}/s, ${Math.round((open.fraction ?? 0) * 100)} % of the maximum): p50 **${formatMs(open.load.latencyUs.p50)}**, p95 ${formatMs(open.load.latencyUs.p95)}, p99 ${formatMs(open.load.latencyUs.p99)}; the latency KPIs are judged on it`);
  return out;
}

function serverCpuLine(d: ProfileData): string {
  const s = d.server;
  if (s.cpuSeconds === undefined) return 'Server CPU: not read (its /metrics did not answer)';
  return `Server CPU: **${(s.cpuSecondsPerRequest! * 1e6).toFixed(0)} µs per request**, ${s.cpuSeconds.toFixed(2)} CPU-seconds over the load (${formatPercent(s.cpuShareOfOneCore ?? 0)} of one core${s.cpus !== undefined ? `, pinned to CPU ${s.cpus}` : ''}), from the server process's own metrics`;
}

function generatorLine(d: ProfileData): string {
  const g = d.generator;
  const figures = `${formatPercent(g.cpuShareOfOneCore)} of one core, event loop ${formatPercent(g.eventLoopUtilization)} busy${g.cpus !== undefined ? `, pinned to CPU ${g.cpus}` : ''}`;
  return Math.max(g.cpuShareOfOneCore, g.eventLoopUtilization) >= GENERATOR_SATURATED
    ? `Load generator during the profiled load (another process): **${figures}: at or above ${formatPercent(GENERATOR_SATURATED, 0)}, so this load's throughput is the generator's limit**, not the server's (see the max-rate phase)`
    : `Load generator during the profiled load (another process): ${figures}: below ${formatPercent(GENERATOR_SATURATED, 0)}, not the bottleneck`;
}

export function buildReport(d: ProfileData): ReportDocument {
  const l = d.load;
  const errorRate = l.totalRequests > 0 ? l.failures / l.totalRequests : 0;
  const kpisMet = d.kpis.filter((k) => k.met).length;
  const seconds = l.durationMs / 1000;
  const littleMs = l.requestsPerSecond > 0 ? (l.config.clients / l.requestsPerSecond) * 1000 : 0;
  const alloc = d.memory.allocation;
  const leaked = d.resources.leaked;

  const summary: Section = {
    id: 'summary',
    title: 'Executive summary',
    blocks: [
      { kind: 'p', text: `A ${l.mode} load of **${formatInt(l.config.clients)} concurrent clients × ${formatInt(l.config.requests)} requests** against a real m2m-auth server in a child process (HTTP over loopback, ${d.server.signingAlg} signatures, ${d.server.database}), with every answer checked: a token counts as a success only when its signature verifies against the published JWKS and its \`typ\`, \`iss\`, \`aud\`, \`exp\` and \`client_id\` are right.` },
      {
        kind: 'list',
        items: [
          `**${formatInt(l.requestsPerSecond)} requests/second** (${formatInt(l.totalRequests)} requests in ${seconds.toFixed(2)} s)`,
          `Latency with ${formatInt(l.config.clients)} requests in flight: p50 **${formatMs(l.latencyUs.p50)}**, p95 ${formatMs(l.latencyUs.p95)}, p99 ${formatMs(l.latencyUs.p99)}, max ${formatMs(l.latencyUs.max)}${l.latencyUs.avg / 1000 > 0.5 * littleMs && littleMs > 0 ? ' (mostly queueing: see Latency distribution)' : ''}`,
          ...summaryPhases(d),
          `**${formatInt(l.successes)} successes, ${formatInt(l.failures)} failures** (error rate ${formatPercent(errorRate, 3)})${l.notSent > 0 ? `; ${formatInt(l.notSent)} planned requests not sent (${l.stoppedBy.replace('_', ' ')})` : ''}`,
          `Memory: RSS ${formatBytes(d.memory.before.rss)} before, ${formatBytes(d.memory.after.rss)} after; about **${formatBytes(alloc.perRequestBytes)} allocated per request** by the server`,
          serverCpuLine(d),
          generatorLine(d),
          `Garbage collection: ${formatInt(d.gc.count)} pauses, ${ms(d.gc.totalMs)} in total, longest ${ms(d.gc.maxMs)}`,
          leaked.length === 0
            ? `Active handles: ${totalResources(d.resources.before)} before, up to ${totalResources(d.resources.duringMax)} during, **${totalResources(d.resources.after)} after: back to the baseline**`
            : `Active handles: **not back to the baseline** after ${(d.resources.settledMs / 1000).toFixed(1)} s: ${leaked.map((x) => `${x.type} ${x.before} → ${x.after}`).join(', ')}`,
          `KPIs: **${kpisMet} of ${d.kpis.length} met**${kpisMet < d.kpis.length ? ` (not met: ${d.kpis.filter((k) => !k.met).map((k) => k.name).join(', ')})` : ''}`,
        ],
      },
      { kind: 'p', text: `Figures are from one run on the machine named under Environment and method, with the load generator in another process on the same machine${d.server.cpus !== undefined ? ` (the server pinned to CPU ${d.server.cpus}, the generator to CPU ${d.generator.cpus})` : ' (sharing its CPUs with the server)'}. Compare runs on the same machine (\`m2m-auth profile --compare A B\`), not against other machines.` },
    ],
  };

  const byOp = Object.entries(l.latencyByOperation).filter(([, v]) => v !== undefined);
  const loadSection: Section = {
    id: 'load',
    title: 'Load test',
    blocks: [
      {
        kind: 'table', head: ['Configuration', 'Value'], align: ['l', 'r'],
        rows: [
          ['Mode', l.mode],
          ['Concurrent clients', formatInt(l.config.clients)],
          ['Requests per client', formatInt(l.config.requests)],
          ['Planned requests', formatInt(l.planned)],
          ['Keep-alive connections', formatInt(l.config.connections)],
          ['Registered OAuth clients', formatInt(l.config.clientCount)],
          ['Per-request timeout', `${formatInt(l.config.timeoutMs)} ms`],
          ['Duration limit', `${formatInt(l.config.durationLimitMs / 1000)} s`],
          ['Connection warm-up (not measured)', `${(l.warmUpMs / 1000).toFixed(2)} s`],
        ],
      },
      {
        kind: 'table', head: ['Metric', 'Value'], align: ['l', 'r'],
        rows: [
          ['Total requests', formatInt(l.totalRequests)],
          ['Duration', `${seconds.toFixed(3)} s`],
          ['Requests/second', formatInt(l.requestsPerSecond)],
          ['Average latency', formatMs(l.latencyUs.avg)],
          ['p50 latency', formatMs(l.latencyUs.p50)],
          ['p90 latency', formatMs(l.latencyUs.p90)],
          ['p95 latency', formatMs(l.latencyUs.p95)],
          ['p99 latency', formatMs(l.latencyUs.p99)],
          ['p99.9 latency', formatMs(l.latencyUs.p999)],
          ['Max latency', formatMs(l.latencyUs.max)],
          ['Successes', `${formatInt(l.successes)} (${formatPercent(l.totalRequests > 0 ? l.successes / l.totalRequests : 0, 2)})`],
          ['Failures', `${formatInt(l.failures)} (${formatPercent(errorRate, 3)})`],
        ],
      },
      ...(byOp.length > 1
        ? [{
          kind: 'table' as const, head: ['Operation', 'Requests', 'avg', 'p50', 'p95', 'p99', 'max'], align: ['l', 'r', 'r', 'r', 'r', 'r', 'r'] as Array<'l' | 'r'>,
          rows: byOp.map(([op, s]) => [op, formatInt(s!.count), formatMs(s!.avg), formatMs(s!.p50), formatMs(s!.p95), formatMs(s!.p99), formatMs(s!.max)]),
        }]
        : []),
      Object.keys(l.failuresByCause).length === 0
        ? { kind: 'p', text: 'Failures by cause: **none**. Every response was a valid, verifiable token or a correct introspection answer.' }
        : {
          kind: 'table', head: ['Failure cause', 'Count', 'First seen'], align: ['l', 'r', 'l'],
          rows: Object.entries(l.failuresByCause).map(([cause, n]) => [`\`${cause}\``, formatInt(n), l.failureSamples[cause] ?? '']),
        },
      ...((d.phases ?? []).length > 1
        ? [
          { kind: 'p' as const, text: 'The run has three load phases, each measured for what it can show. Server CPU is the server process\'s share of one core (its metrics); the generator\'s is the larger of its CPU and its event-loop utilisation: at 90 % or more the generator, not the server, set the pace.' },
          {
            kind: 'table' as const, head: ['Phase', 'Shape', 'Requests', 'Duration', 'Throughput', 'p50', 'p99', 'max', 'Failures', 'Tokens verified', 'Server CPU', 'Generator', 'Figures taken from it'],
            align: ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'r', 'l'] as Array<'l' | 'r'>,
            rows: phaseRows(d),
          },
        ]
        : []),
    ],
  };

  const serverUs = d.server.cpuSecondsPerRequest !== undefined ? d.server.cpuSecondsPerRequest * 1e6 : undefined;
  const queueing = littleMs > 0 && l.latencyUs.avg / 1000 > 0.5 * littleMs;
  const open = d.phases?.find((p) => p.name === 'open-loop');
  const pct = (x: typeof l.latencyUs): string[] => [formatMs(x.avg), formatMs(x.p50), formatMs(x.p90), formatMs(x.p95), formatMs(x.p99), formatMs(x.p999), formatMs(x.max)];
  const names = ['average', 'p50', 'p90', 'p95', 'p99', 'p99.9', 'max'];
  const closedCol = pct(l.latencyUs);
  const openCol = open !== undefined ? pct(open.load.latencyUs) : undefined;
  const latencySection: Section = {
    id: 'latency',
    title: 'Latency distribution',
    blocks: [
      {
        kind: 'table',
        head: ['Percentile', `Closed loop (${formatInt(l.config.clients)} in flight)`, ...(open !== undefined ? [`Open loop (${formatInt(open.load.config.ratePerSecond ?? 0)}/s): the server's latency`] : [])],
        align: ['l', 'r', 'r'],
        rows: names.map((n, i) => [n, closedCol[i]!, ...(openCol !== undefined ? [openCol[i]!] : [])]),
      },
      ...(open !== undefined
        ? [{ kind: 'p' as const, text: `The latency KPIs are judged on the open-loop phase: requests arrive at ${formatInt(open.load.config.ratePerSecond ?? 0)}/s, ${Math.round((open.fraction ?? 0) * 100)} % of the maximum rate, so its percentiles are the server's own latency (plus loopback), counted from each request's scheduled time. The histogram below is the closed loop's.` }]
        : []),
      { kind: 'chart', chart: { type: 'latency-histogram' } },
      { kind: 'p', text: `Latency is the request time only (request sent to body read) for every finished request, successes and failures; checking the token happens outside that window. Each virtual client waits for its answer before sending the next request (a closed loop), so with ${formatInt(l.config.clients)} requests always in flight the average latency is about clients ÷ throughput (Little's law): ${formatInt(l.config.clients)} ÷ ${formatInt(l.requestsPerSecond)}/s ≈ ${littleMs.toFixed(1)} ms here (measured average: ${formatMs(l.latencyUs.avg)}).${queueing ? ` **These percentiles are mostly queueing** in front of the server's event loop, not the work of a request${serverUs !== undefined ? `, which takes about ${serverUs.toFixed(0)} µs of server CPU` : ''}: the latency KPIs are met or missed by the concurrency chosen. Run with fewer clients (e.g. \`--clients 10\`) to see the server's own latency.` : ' Queueing is a small part of these figures: they are close to the server\'s own latency.'}` },
    ],
  };

  const throughputSection: Section = {
    id: 'throughput',
    title: 'Throughput over time',
    blocks: [
      { kind: 'chart', chart: { type: 'throughput' } },
      { kind: 'p', text: `${formatInt(l.requestsPerSecond)} requests/second on average over ${seconds.toFixed(2)} s; the chart shows requests finished per 250 ms slot. The server answers the requests read in one turn of its event loop together, and the load generator (another process) reads them in turns of its own, so completions arrive in bursts and some slots may see none.${generatorSaturated(d) ? ` The maximum sustainable rate of the server is **not measurable here**: the load generator was ${formatPercent(generatorBusy(d))} busy, so the rates measured are the generator's limit as much as the server's.` : ''}` },
    ],
  };

  const kpiSection: Section = {
    id: 'kpis',
    title: 'KPIs against targets',
    blocks: [
      { kind: 'p', text: 'The monitoring targets (the same as those set for the Go server this project replaced), against this run. The latency targets are judged on the load above: at high concurrency they measure queueing too (see Latency distribution).' },
      { kind: 'table', head: ['KPI', 'Target', 'Measured', 'Status'], align: ['l', 'l', 'r', 'l'], rows: d.kpis.map((k) => [k.name, k.target, k.value, mark(k.met)]) },
    ],
  };

  const m = d.memory;
  const memoryRow = (name: string, key: 'heapUsed' | 'heapTotal' | 'rss' | 'external' | 'arrayBuffers'): string[] =>
    [name, formatBytes(m.before[key]), formatBytes(m.after[key]), `${m.after[key] - m.before[key] >= 0 ? '+' : '−'}${formatBytes(Math.abs(m.after[key] - m.before[key]))}`];
  const memorySection: Section = {
    id: 'memory',
    title: 'Memory',
    blocks: [
      {
        kind: 'table', head: ['', 'Before the load', 'After the load', 'Change'], align: ['l', 'r', 'r', 'r'],
        rows: [
          memoryRow('Heap used', 'heapUsed'),
          memoryRow('Heap total', 'heapTotal'),
          memoryRow('RSS', 'rss'),
          memoryRow('External', 'external'),
          memoryRow('Array buffers', 'arrayBuffers'),
          ['Peak during the load', '', `heap ${formatBytes(m.peakHeapUsed)}, RSS ${formatBytes(m.peakRss)}`, ''],
        ],
      },
      {
        kind: 'table', head: ['Allocation', 'Value'], align: ['l', 'r'],
        rows: [
          ['Allocated on the JS heap during the load', formatBytes(alloc.totalBytes)],
          ['Per request (the server process)', formatBytes(alloc.perRequestBytes)],
          ['Per request (server code only, its profiler excluded)', formatBytes(alloc.serverPerRequestBytes)],
        ],
      },
      { kind: 'p', text: `Method: ${alloc.method}` },
      {
        kind: 'table', head: ['Allocated by', 'Bytes', 'Share', 'Per request'], align: ['l', 'r', 'r', 'r'],
        rows: alloc.byComponent.map((c) => [c.label, formatBytes(c.value), formatPercent(c.share), formatBytes(l.totalRequests > 0 ? c.value / l.totalRequests : 0)]),
      },
      { kind: 'chart', chart: { type: 'heap' } },
    ],
  };

  const gcSection: Section = {
    id: 'gc',
    title: 'Garbage collection',
    blocks: [
      {
        kind: 'table', head: ['Metric', 'Value'], align: ['l', 'r'],
        rows: [
          ['GC pauses during the load', formatInt(d.gc.count)],
          ['Per 1000 requests', d.gc.perThousandRequests.toFixed(2)],
          ['Total pause time', ms(d.gc.totalMs)],
          ['Share of the load duration', formatPercent(l.durationMs > 0 ? d.gc.totalMs / l.durationMs : 0, 2)],
          ['Longest pause', ms(d.gc.maxMs)],
        ],
      },
      Object.keys(d.gc.byKind).length === 0
        ? { kind: 'p', text: 'No garbage collection ran during the load.' }
        : {
          kind: 'table', head: ['Kind', 'Count', 'Total', 'Longest'], align: ['l', 'r', 'r', 'r'],
          rows: Object.entries(d.gc.byKind).map(([kind, k]) => [kind, formatInt(k.count), ms(k.totalMs), ms(k.maxMs)]),
        },
      { kind: 'p', text: 'Measured in the server with a PerformanceObserver on `gc` entries between the first and the last request of the load (its runtime window, GET /debug/runtime).' },
    ],
  };

  const cpu = d.cpu;
  const cpuSection: Section = {
    id: 'cpu',
    title: 'CPU profile',
    blocks: [
      { kind: 'p', text: `V8's CPU profiler (node:inspector, Profiler.start/stop) sampled the server's main thread every ${cpu.samplingIntervalUs} µs during the load (GET /debug/pprof/profile): ${formatInt(cpu.sampleCount)} samples over ${(cpu.durationMs / 1000).toFixed(2)} s, of which ${formatPercent(cpu.totalUs > 0 ? cpu.busyUs / cpu.totalUs : 0)} busy. Self time is attributed to a component by the source file of the frames on each sample's stack (the frame nearest the leaf that names one; any profiler frame makes it the profiler's), the server's modules by a table the tools package tests against the server's source tree.` },
      {
        kind: 'table', head: ['Component', 'Self time', 'Share of profile', 'Share of busy time'], align: ['l', 'r', 'r', 'r'],
        rows: cpu.components.map((c) => [c.label, ms(c.value / 1000), formatPercent(c.share), c.component === 'idle' ? '—' : formatPercent(cpu.busyUs > 0 ? c.value / cpu.busyUs : 0)]),
      },
      { kind: 'chart', chart: { type: 'cpu-components' } },
      {
        kind: 'table', head: ['Function (self time)', 'Location', 'Component', 'Self time', 'Share of busy'], align: ['l', 'l', 'l', 'r', 'r'],
        rows: cpu.topFunctions.map((f) => [`\`${f.name}\``, `\`${f.location}\``, f.component, ms(f.selfUs / 1000), formatPercent(f.share)]),
      },
      { kind: 'p', text: `Per request: ${l.totalRequests > 0 ? `${((cpu.busyUs / l.totalRequests)).toFixed(1)} µs` : 'n/a'} of the server's main-thread CPU in this profile${d.server.cpuSecondsPerRequest !== undefined ? `; ${(d.server.cpuSecondsPerRequest * 1e6).toFixed(1)} µs of the server process's CPU (all its threads, from its process_cpu_seconds_total)` : ''}. The load generator runs in another process and is not in this profile.` },
    ],
  };

  const el = d.eventLoop;
  const eventLoopSection: Section = {
    id: 'event-loop',
    title: 'Event loop',
    blocks: [
      { kind: 'p', text: 'Node runs the server on one event loop (measured in the server process): contention shows up as event-loop delay (how late timers fire; monitorEventLoopDelay) and utilisation (the share of time the loop was busy; performance.eventLoopUtilization), which take the place of the goroutine, block and mutex profiles of the Go server this project replaced (a Node server has one thread running its code, so no locks to contend on). The delay is how much later than asked a 10 ms timer fired.' },
      { kind: 'table', head: ['Phase', 'Delay mean', 'p50', 'p99', 'max', 'Utilisation', 'Duration'], align: ['l', 'r', 'r', 'r', 'r', 'r', 'r'], rows: [delayRow('Before (idle baseline)', el.before), delayRow('During the load', el.during), delayRow('After the load', el.after)] },
    ],
  };

  const resourcesSection: Section = {
    id: 'resources',
    title: 'Active handles and leak check',
    blocks: [
      { kind: 'p', text: 'Active handles and requests that keep the server\'s event loop alive (process.getActiveResourcesInfo() in the server, counted by type): the counterpart of the goroutine counts of the Go server this project replaced. "During" is the largest count of each type seen in the samples taken every 250 ms. The profiler\'s own requests to the debug endpoints hold up to two connections at each count.' },
      { kind: 'table', head: ['Type', 'Before', 'During (max)', 'After'], align: ['l', 'r', 'r', 'r'], rows: [...resourceRows(d.resources.before, d.resources.duringMax, d.resources.after), ['**Total**', String(totalResources(d.resources.before)), String(totalResources(d.resources.duringMax)), String(totalResources(d.resources.after))]] },
      leaked.length === 0
        ? { kind: 'p', text: `**No leak:** every type is back to its baseline count ${(d.resources.settledMs / 1000).toFixed(2)} s after the last response (the load generator's connections are closed, the server's sockets with them).` }
        : { kind: 'p', text: `**Leak:** after waiting ${(d.resources.settledMs / 1000).toFixed(1)} s these types are still above their baseline: ${leaked.map((x) => `\`${x.type}\` ${x.before} → ${x.after}`).join(', ')}.` },
    ],
  };

  const filesSection: Section = {
    id: 'files',
    title: 'Profile files',
    blocks: [
      { kind: 'table', head: ['File', 'What'], align: ['l', 'l'], rows: d.files.map((f) => [`\`${f.name}\``, f.description]) },
      { kind: 'p', text: 'Open them from this folder:' },
      { kind: 'code', text: d.files.flatMap((f) => f.commands.map((c) => (c.startsWith('Chrome:') ? `# ${c}` : c))).join('\n') },
      { kind: 'p', text: 'A running server exposes the same profiles when started with `--pprof` (`M2M_AUTH_PPROF=true`), on the admin listener and behind the admin token:' },
      { kind: 'code', text: 'curl -sH "Authorization: Bearer $ADMIN_TOKEN" -o cpu.pb.gz "http://127.0.0.1:8081/debug/pprof/profile?seconds=30"\ncurl -sH "Authorization: Bearer $ADMIN_TOKEN" -o heap.pb.gz http://127.0.0.1:8081/debug/pprof/heap\ngo tool pprof -top cpu.pb.gz' },
    ],
  };

  const env = d.environment;
  const envSection: Section = {
    id: 'environment',
    title: 'Environment and method',
    blocks: [
      {
        kind: 'table', head: ['', 'Value'], align: ['l', 'l'],
        rows: [
          ['Generated', d.generatedAt],
          ['Node.js', `${env.node} (V8 ${env.v8})`],
          ['Platform', env.platform],
          ['CPUs', `${env.cpuCount} × ${env.cpuModel}`],
          ['Memory', formatBytes(env.totalMemory)],
          ['Load average before / after', `${env.loadAverageBefore.map((x) => x.toFixed(2)).join(' ')} / ${env.loadAverageAfter.map((x) => x.toFixed(2)).join(' ')}`],
          ['Server', `${d.server.issuer}, ${d.server.signingAlg}, ${d.server.database}, JSON logs at info level to a pipe the profiler drains`],
        ],
      },
      {
        kind: 'list',
        items: [
          `${d.server.startedByProfiler ? `The server is the real one (\`m2m-auth serve\`) on ${d.server.database}, on loopback ports, in a child process with \`M2M_AUTH_PPROF=true\`` : `The server is one already running at ${d.server.issuer}, started with \`M2M_AUTH_PPROF=true\``}: it takes its own profiles and runtime measurements (the debug endpoints of its admin listener), and its CPU seconds, memory and the alert rules' series come from its /metrics. The load generator runs in this command's process (undici) with one keep-alive connection per virtual client, opened before the clock starts (at most 64 connection attempts at a time).`,
          'Clients are registered through the admin API and authenticate with `client_secret_basic`; each virtual client uses one of them.',
          'A failure is anything but a 200 with a verifiable token (or an active introspection answer for the right client): it is counted once, under its cause (`http_<status>`, `oauth_<error>`, `network_<code>`, `timeout`, `bad_json`, `bad_token_<reason>`, `introspection_inactive`).',
          'The CPU profiler and the sampling heap profiler run during the measured load, so their overhead is part of these figures; `m2m-auth loadtest` runs the same load without them.',
          `The load average above says how busy the machine was: with other processes on ${env.cpuCount} CPU${env.cpuCount === 1 ? '' : 's'}, absolute figures vary from run to run.`,
        ],
      },
    ],
  };

  return {
    title: 'm2m-auth performance profile',
    subtitle: `${l.mode} load, ${formatInt(l.config.clients)} clients × ${formatInt(l.config.requests)} requests, ${d.generatedAt}`,
    sections: [summary, loadSection, latencySection, throughputSection, memorySection, gcSection, cpuSection, eventLoopSection, resourcesSection, filesSection, kpiSection, alertsSection(d), capacitySection(d), recommendationsSection(d), envSection]
      .map((sec, i) => ({ ...sec, title: i === 0 ? sec.title : `${i}. ${sec.title}` })),
  };
}

function duration(seconds: number): string {
  if (seconds >= 86400 && seconds % 86400 === 0) return `${seconds / 86400}d`;
  if (seconds >= 60 && seconds % 60 === 0) return `${seconds / 60}m`;
  return `${seconds}s`;
}

function alertsSection(d: ProfileData): Section {
  const a = d.alerts;
  if (a.file === undefined || a.evaluations.length === 0) {
    return {
      id: 'alerts', title: 'Alert rules',
      blocks: [{ kind: 'p', text: d.series === undefined ? 'Not evaluated: the server\'s /metrics was not read during the load.' : 'Not evaluated: no alert rules file was given (`--alert-rules deploy/prometheus/alerts.yml`).' }],
    };
  }
  const held = a.evaluations.filter((e) => e.evaluated && e.held);
  return {
    id: 'alerts',
    title: 'Alert rules',
    blocks: [
      { kind: 'p', text: `Each rule of \`${a.file.replace(/^.*\/(deploy\/)/, '$1')}\` evaluated against this run's series: the server's own /metrics at the first and the last request (${a.runSeconds.toFixed(1)} s apart), as if the run's traffic went on for the rule's window (a rate is the run's rate, an increase is scaled to the window, a gauge is its value at the end). A rule whose \`for:\` or look-back is longer than the run is marked **condition only**: its condition is evaluated, but Prometheus would fire it only if the condition held that long.` },
      {
        kind: 'table', head: ['Rule', 'Severity', 'Value', 'Threshold', 'Condition', 'Alert'], align: ['l', 'l', 'r', 'l', 'l', 'l'],
        rows: a.evaluations.map((e) => {
          const rule = `\`${e.alert}\``;
          if (!e.evaluated) return [rule, e.severity ?? '', '—', '—', 'not evaluated', e.note ?? ''];
          const alert = e.conditionOnly
            ? `condition only (for: ${duration(e.forSeconds)}, look-back ${duration(e.lookBackSeconds)}, run ${a.runSeconds.toFixed(0)}s)`
            : e.held ? 'would fire' : 'would not fire';
          return [rule, e.severity ?? '', e.shown, e.threshold, e.held ? 'held' : 'not held', `${alert}${e.note ? `; ${e.note}` : ''}`];
        }),
      },
      held.length === 0
        ? { kind: 'p', text: '**No rule\'s condition held** on this run\'s series.' }
        : { kind: 'p', text: `**Conditions that held:** ${held.map((e) => `\`${e.alert}\` (${e.shown})`).join(', ')}. Sustained, this traffic would page.` },
    ],
  };
}

const OPERATION_WORD = { token: 'token', introspect: 'introspection', mixed: 'mixed (token and introspection alternating)' } as const;

function capacitySection(d: ProfileData): Section {
  const c = capacity(d);
  const op = OPERATION_WORD[c.operation];
  const saturated = generatorSaturated(d);
  const rateRows: string[][] = [
    [`Server CPU per ${op} request`, c.cpuSecondsPerRequest !== undefined ? `${(c.cpuSecondsPerRequest * 1e6).toFixed(0)} µs` : 'not read'],
    [`${op[0]!.toUpperCase()}${op.slice(1)} requests per core (100 % busy)`, c.perCoreRate !== undefined ? formatInt(c.perCoreRate) : 'not read'],
    [c.operation === 'token' ? 'Introspection requests per core' : 'Token requests per core', `not measured in this run (run with \`--mode ${c.operation === 'token' ? 'introspect' : 'token'}\`)`],
    ['Maximum sustainable rate of one server process (measured)', saturated ? `not measurable here (the load generator was ${formatPercent(generatorBusy(d))} busy)` : `${formatInt(maxRate(d).rate)}/s at ${formatPercent(maxRate(d).serverShare)} of one core (${maxRate(d).phase})`],
    ['Memory per server process (RSS after the load)', formatBytes(c.memoryPerProcess)],
    ['Memory per 1,000 connections (RSS growth from idle to the peak)', `at most ${formatBytes(c.memoryPer1000Connections)} (${formatInt(c.connections)} connections held; the growth includes the heap's under load${c.connections < 1000 ? ', so measure with 1,000 clients or more' : ''})`],
    ['Database reads on the token path (client-cache misses per request)', c.cacheMissesPerRequest !== undefined ? c.cacheMissesPerRequest.toFixed(4) : 'not read'],
  ];
  return {
    id: 'capacity',
    title: 'Capacity planning',
    blocks: [
      { kind: 'p', text: `Per-core rates come from the server's CPU-seconds per request (its own \`process_cpu_seconds_total\`, all its threads) ${c.source === 'max-rate' ? 'over the max-rate phase, when no profiler runs in it' : `over the profiled load, with the share of its own profiler (${formatPercent(c.profilerShare)} of its busy time) taken out; the CPU profiler's sampling overhead stays in, so they are a lower bound`}. They hold whatever the load generator could do, because they do not depend on how fast requests arrived.` },
      { kind: 'table', head: ['Measured here', 'Value'], align: ['l', 'r'], rows: rateRows },
      c.rows.length === 0
        ? { kind: 'p', text: 'No table of target loads: the server\'s CPU seconds were not read.' }
        : {
          kind: 'table', head: ['Target load', 'Cores', `Instances (${CORES_PER_INSTANCE} cores each)`, 'Memory (all instances)', 'PostgreSQL connections'], align: ['r', 'r', 'r', 'r', 'r'],
          rows: c.rows.map((r) => [`${formatInt(r.tokensPerSecond)} ${c.operation === 'token' ? 'tokens' : 'requests'}/s`, formatInt(r.cores), formatInt(r.instances), formatBytes(r.memoryBytes), formatInt(r.postgresConnections)]),
        },
      {
        kind: 'list',
        items: [
          `**Headroom:** cores are counted for each to be at most ${formatPercent(CPU_HEADROOM_BUSY, 0)} busy at the target load (room for bursts, GC, and one instance lost); never fewer than ${MIN_INSTANCES} instances. An instance is \`m2m-auth serve --workers ${CORES_PER_INSTANCE}\`: one process per core, since one Node process runs its requests on one core.`,
          `**Memory** per instance is ${CORES_PER_INSTANCE} × the RSS of one process measured here; add the per-1,000-connections figure for each 1,000 client connections an instance holds beyond the ${formatInt(c.connections)} of this run.`,
          `**Database:** ${d.server.database.startsWith('postgres') ? 'this run used PostgreSQL. On the embedded SQLite database' : 'on the embedded SQLite database (this run)'} there are no connections to plan, but one instance only: SQLite is one file on one host. On **PostgreSQL** every server process holds a pool of up to ${PG_POOL_PER_PROCESS} connections and ${PG_LISTEN_PER_PROCESS} LISTEN connection for changes from other instances, as in the last column (size \`max_connections\` or put PgBouncer in front). Tokens are issued from the client cache, so at ${c.cacheMissesPerRequest !== undefined ? c.cacheMissesPerRequest.toFixed(4) : 'the measured'} database reads per request the database sees a small fraction of the token rate; its latency shows only on a cache miss, after a client change, and in revocation and introspection of revoked tokens.`,
          'What changes on PostgreSQL: a cache miss and every write (client changes, revocations) cost a network round trip instead of a local call, and several instances share one database. Measure it with `m2m-auth profile --database-url postgres://…`.',
          'The Go server this project replaced claimed over a million requests per second per server from an in-process simulation; the figures here are real HTTP requests with every token verified, and are the ones to plan with.',
        ],
      },
    ],
  };
}

function maxRate(d: ProfileData): { rate: number; serverShare: number; phase: string } {
  const p = d.phases?.find((x) => x.name === 'max-rate');
  return p !== undefined
    ? { rate: p.load.requestsPerSecond, serverShare: p.server.cpuShareOfOneCore ?? 0, phase: 'max-rate phase' }
    : { rate: d.load.requestsPerSecond, serverShare: d.server.cpuShareOfOneCore ?? 0, phase: 'profiled load' };
}

function recommendationsSection(d: ProfileData): Section {
  const l = d.load;
  const items: string[] = [];
  const c = capacity(d);
  const littleMs = l.requestsPerSecond > 0 ? (l.config.clients / l.requestsPerSecond) * 1000 : 0;
  if (l.failures > 0) items.push(`**${formatInt(l.failures)} of ${formatInt(l.totalRequests)} requests failed** (${Object.entries(l.failuresByCause).map(([k, v]) => `${k} ${v}`).join(', ')}): find the cause before reading any other figure.`);
  if (generatorSaturated(d)) items.push(`The load generator was ${formatPercent(generatorBusy(d))} busy while the maximum rate was measured: that rate is its limit. Run it from another machine against this server (\`m2m-auth profile --url … --admin-url …\`) to find the server's.`);
  const p50 = d.kpis.find((k) => k.name === 'p50 latency');
  if (p50 !== undefined && !p50.met && littleMs > 0 && l.latencyUs.avg / 1000 > 0.5 * littleMs) {
    items.push(`p50 latency ${formatMs(l.latencyUs.p50)} misses its target because ${formatInt(l.config.clients)} requests wait in line (Little's law: ${littleMs.toFixed(0)} ms), not because a request is slow (${d.server.cpuSecondsPerRequest !== undefined ? `${(d.server.cpuSecondsPerRequest * 1e6).toFixed(0)} µs of CPU` : 'see CPU'}). ${c.perCoreRate !== undefined ? ` ${formatInt(l.config.clients)} requests in flight drain in under 5 ms only at ${formatInt(l.config.clients / 0.005)} requests/s: about ${formatInt(Math.ceil(l.config.clients / 0.005 / c.perCoreRate))} cores at ${formatInt(c.perCoreRate)} per core. Real clients with fewer requests in flight queue less.` : ''}`);
  }
  if ((d.server.cpuShareOfOneCore ?? 0) >= 0.9) items.push(`The server process was CPU-bound (${formatPercent(d.server.cpuShareOfOneCore ?? 0)} of one core): throughput grows with processes (\`serve --workers\`), not with a faster event loop.`);
  const busy = d.cpu.components.filter((x) => !['idle', 'other', 'profiler', 'load_generator'].includes(x.component));
  const top = busy.sort((a, b) => b.value - a.value)[0];
  if (top !== undefined && d.cpu.busyUs > 0) {
    const hottest = d.cpu.topFunctions.find((f) => f.component === top.component);
    items.push(`The largest attributable share of the server's busy CPU is ${top.label.split(' (')[0]!.toLowerCase()}: ${formatPercent(top.value / d.cpu.busyUs)}${hottest ? `, hottest function \`${hottest.name}\` (${formatPercent(hottest.share)})` : ''}. That is where an optimisation pays most.`);
  }
  const gcShare = l.durationMs > 0 ? d.gc.totalMs / l.durationMs : 0;
  if (gcShare >= 0.05 || d.gc.maxMs >= 10) items.push(`Garbage collection took ${formatPercent(gcShare)} of the load (longest pause ${d.gc.maxMs.toFixed(1)} ms) at ${formatBytes(d.memory.allocation.perRequestBytes)} allocated per request: cutting allocations on the request path cuts both.`);
  const rssMb = d.memory.after.rss / 1_000_000;
  items.push(rssMb >= 100
    ? `RSS after the load is ${rssMb.toFixed(0)} MB, above the 100 MB target: set the memory limit of an instance process to at least ${formatBytes(d.memory.peakRss * 1.25)} (peak RSS + 25 %) and keep the HighMemory alert below it.`
    : `RSS after the load is ${rssMb.toFixed(0)} MB (peak ${formatBytes(d.memory.peakRss)}): a memory limit of ${formatBytes(d.memory.peakRss * 1.25)} per process (peak + 25 %) leaves room.`);
  if (d.resources.leaked.length > 0) items.push(`Active handles did not return to the baseline (${d.resources.leaked.map((x) => `${x.type} ${x.before} → ${x.after}`).join(', ')}): look for connections or timers kept after the load.`);
  const held = d.alerts.evaluations.filter((e) => e.evaluated && e.held);
  if (held.length > 0) items.push(`Sustained, this load would fire ${held.map((e) => `\`${e.alert}\``).join(', ')}: either the load is beyond one process's capacity or the rule's threshold is too tight for it.`);
  if (c.cacheMissesPerRequest !== undefined && c.cacheMissesPerRequest > 0.01) items.push(`${(c.cacheMissesPerRequest * 100).toFixed(1)} % of requests missed the client cache and read the database: with many clients, that is a cost per request on PostgreSQL.`);
  const mid = c.rows.find((r) => r.tokensPerSecond === 10_000);
  if (mid !== undefined && c.perCoreRate !== undefined) items.push(`For 10,000 ${c.operation === 'token' ? 'tokens' : 'requests'}/s plan ${formatInt(mid.cores)} cores (${formatInt(mid.instances)} instances of ${CORES_PER_INSTANCE}), from ${formatInt(c.perCoreRate)} per core at ${formatPercent(CPU_HEADROOM_BUSY, 0)} busy.`);
  return { id: 'recommendations', title: 'Recommendations', blocks: [{ kind: 'p', text: 'Each follows from a figure of this run.' }, { kind: 'list', items }] };
}
