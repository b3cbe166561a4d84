// The profiling report as a document (sections of paragraphs, lists, tables, code and charts),
// built once from the measurements and rendered to Markdown and to self-contained HTML. Its
// sections follow the origin report, each filled with what this run measured.

import { formatBytes, formatInt, formatMs, formatPercent } from '../loadtest/format.js';
import type { ProfileData } from './profile-data.js';
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

export const SECTION_TITLES = [
  'Executive summary',
  '1. Load test results',
  '2. KPIs against targets',
  '3. Memory',
  '4. Garbage collection',
  '5. CPU profile',
  '6. Event loop',
  '7. Active handles and leak check',
  '8. Profile files',
  '9. Environment and method',
] as const;

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
  return d.generator.cpuShareOfOneCore >= GENERATOR_SATURATED || d.generator.eventLoopUtilization >= GENERATOR_SATURATED;
}

function serverCpuLine(d: ProfileData): string {
  const s = d.server;
  if (s.cpuSeconds === undefined) return 'Server CPU: not read (its /metrics did not answer)';
  return `Server CPU: **${(s.cpuSecondsPerRequest! * 1e6).toFixed(0)} µs per request**, ${s.cpuSeconds.toFixed(2)} CPU-seconds over the load (${formatPercent(s.cpuShareOfOneCore ?? 0)} of one core${s.cpus !== undefined ? `, pinned to CPU ${s.cpus}` : ''}), from the server process's own metrics`;
}

function generatorLine(d: ProfileData): string {
  const g = d.generator;
  const figures = `${formatPercent(g.cpuShareOfOneCore)} of one core, event loop ${formatPercent(g.eventLoopUtilization)} busy${g.cpus !== undefined ? `, pinned to CPU ${g.cpus}` : ''}`;
  return generatorSaturated(d)
    ? `Load generator (another process): **${figures}: at or above ${formatPercent(GENERATOR_SATURATED, 0)}, it may have been the bottleneck**, so the rates measured here are the generator's limit as much as the server's`
    : `Load generator (another process): ${figures}: below ${formatPercent(GENERATOR_SATURATED, 0)}, not the bottleneck`;
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
    title: SECTION_TITLES[0],
    blocks: [
      { kind: 'p', text: `A ${l.mode} load of **${formatInt(l.config.clients)} concurrent clients × ${formatInt(l.config.requests)} requests** against a real m2m-auth server in a child process (HTTP over loopback, ${d.server.signingAlg} signatures, ${d.server.database}), with every answer checked: a token counts as a success only when its signature verifies against the published JWKS and its \`typ\`, \`iss\`, \`aud\`, \`exp\` and \`client_id\` are right.` },
      {
        kind: 'list',
        items: [
          `**${formatInt(l.requestsPerSecond)} requests/second** (${formatInt(l.totalRequests)} requests in ${seconds.toFixed(2)} s)`,
          `Latency p50 **${formatMs(l.latencyUs.p50)}**, p95 ${formatMs(l.latencyUs.p95)}, p99 ${formatMs(l.latencyUs.p99)}, max ${formatMs(l.latencyUs.max)}`,
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
      { kind: 'p', text: 'Figures are from one run on the machine named in section 9, with the load generator in another process on the same machine (sharing its CPUs with the server). Compare runs on the same machine, not against other machines.' },
    ],
  };

  const byOp = Object.entries(l.latencyByOperation).filter(([, v]) => v !== undefined);
  const loadSection: Section = {
    id: 'load',
    title: SECTION_TITLES[1],
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
      { kind: 'p', text: `Latency is the request time only (request sent to body read) for every finished request, successes and failures; checking the token happens outside that window, on libuv's thread pool. Each virtual client waits for its answer before sending the next request (a closed loop), so with ${formatInt(l.config.clients)} requests always in flight the average latency is about clients ÷ throughput (Little's law): ${formatInt(l.config.clients)} ÷ ${formatInt(l.requestsPerSecond)}/s ≈ ${littleMs.toFixed(0)} ms here (measured average: ${formatMs(l.latencyUs.avg)}). Latency at this concurrency measures queueing in front of one event loop as much as the work of a request.` },
      { kind: 'chart', chart: { type: 'latency-histogram' } },
      { kind: 'chart', chart: { type: 'throughput' } },
      { kind: 'p', text: 'The server answers the requests read in one turn of its event loop together, and the load generator (another process on the same machine) reads them in turns of its own, so completions arrive in bursts and some 250 ms slots may see none.' },
    ],
  };

  const kpiSection: Section = {
    id: 'kpis',
    title: SECTION_TITLES[2],
    blocks: [
      { kind: 'p', text: 'The monitoring targets of the origin report, against this run.' },
      { kind: 'table', head: ['KPI', 'Target', 'Measured', 'Status'], align: ['l', 'l', 'r', 'l'], rows: d.kpis.map((k) => [k.name, k.target, k.value, mark(k.met)]) },
    ],
  };

  const m = d.memory;
  const memoryRow = (name: string, key: 'heapUsed' | 'heapTotal' | 'rss' | 'external' | 'arrayBuffers'): string[] =>
    [name, formatBytes(m.before[key]), formatBytes(m.after[key]), `${m.after[key] - m.before[key] >= 0 ? '+' : '−'}${formatBytes(Math.abs(m.after[key] - m.before[key]))}`];
  const memorySection: Section = {
    id: 'memory',
    title: SECTION_TITLES[3],
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
    title: SECTION_TITLES[4],
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
    title: SECTION_TITLES[5],
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
    title: SECTION_TITLES[6],
    blocks: [
      { kind: 'p', text: 'Node runs the server on one event loop (measured in the server process): contention shows up as event-loop delay (how late timers fire; monitorEventLoopDelay) and utilisation (the share of time the loop was busy; performance.eventLoopUtilization), which take the place of the origin report\'s lock-contention profile. The delay is how much later than asked a 10 ms timer fired.' },
      { kind: 'table', head: ['Phase', 'Delay mean', 'p50', 'p99', 'max', 'Utilisation', 'Duration'], align: ['l', 'r', 'r', 'r', 'r', 'r', 'r'], rows: [delayRow('Before (idle baseline)', el.before), delayRow('During the load', el.during), delayRow('After the load', el.after)] },
    ],
  };

  const resourcesSection: Section = {
    id: 'resources',
    title: SECTION_TITLES[7],
    blocks: [
      { kind: 'p', text: 'Active handles and requests that keep the server\'s event loop alive (process.getActiveResourcesInfo() in the server, counted by type): the counterpart of the origin report\'s goroutine counts. "During" is the largest count of each type seen in the samples taken every 250 ms. The profiler\'s own requests to the debug endpoints hold up to two connections at each count.' },
      { kind: 'table', head: ['Type', 'Before', 'During (max)', 'After'], align: ['l', 'r', 'r', 'r'], rows: [...resourceRows(d.resources.before, d.resources.duringMax, d.resources.after), ['**Total**', String(totalResources(d.resources.before)), String(totalResources(d.resources.duringMax)), String(totalResources(d.resources.after))]] },
      leaked.length === 0
        ? { kind: 'p', text: `**No leak:** every type is back to its baseline count ${(d.resources.settledMs / 1000).toFixed(2)} s after the last response (the load generator's connections are closed, the server's sockets with them).` }
        : { kind: 'p', text: `**Leak:** after waiting ${(d.resources.settledMs / 1000).toFixed(1)} s these types are still above their baseline: ${leaked.map((x) => `\`${x.type}\` ${x.before} → ${x.after}`).join(', ')}.` },
    ],
  };

  const filesSection: Section = {
    id: 'files',
    title: SECTION_TITLES[8],
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
    title: SECTION_TITLES[9],
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
          'The server is the real one (`m2m-auth serve`) on the embedded default, on loopback ports, in a child process with `M2M_AUTH_PPROF=true`: it takes its own profiles and runtime measurements (the debug endpoints of its admin listener). The load generator is undici with one keep-alive connection per virtual client, opened before the clock starts (at most 64 connection attempts at a time).',
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
    sections: [summary, loadSection, kpiSection, memorySection, gcSection, cpuSection, eventLoopSection, resourcesSection, filesSection, envSection],
  };
}
