// `runProfile` end to end with a small load against the built server in a child process: the report
// folder, its profile files read back by their own formats' readers, the report's sections, and
// the HTML report opened in a headless browser.

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import { Profile } from 'pprof-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { evaluateKpis, runProfile, type ProfileData, type ProfileResult } from '../../src/profiling/profile-run.js';
import { serverCommand } from '../helpers/server.js';
import { renderHtmlReport } from '../../src/profiling/report-html.js';
import { renderMarkdownReport } from '../../src/profiling/report-md.js';
import { NUMBERED_TITLES } from '../../src/profiling/report-model.js';
import { compareResults, comparisonLines, readResults, type ComparisonRow } from '../../src/profiling/compare.js';

const SECTIONS = NUMBERED_TITLES;
const CHARTS = ['latency-histogram', 'throughput', 'heap', 'cpu-components'];
const CHROMIUM = '/usr/bin/chromium';
const ALERT_RULES = fileURLToPath(new URL('../../../../deploy/prometheus/alerts.yml', import.meta.url));

let work: string;
let result: ProfileResult;
let out: string;
let serverPid: number | undefined;
/** The server child's VmRSS from /proc, read once the profiled load has settled (the server still running). */
let procRss: number | undefined;

function vmRss(pid: number): number | undefined {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : undefined;
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'm2m-profile-test-'));
  out = join(work, 'report');
  result = await runProfile({
    command: serverCommand(), out, alertRulesFile: ALERT_RULES, clients: 12, requests: 6, clientCount: 3, baselineMs: 200, heapSamplingInterval: 8192, scrapeIntervalMs: 100, phaseMs: 1000,
    onServer: (s) => {
      serverPid = s.pid;
    },
    onPhase: (phase) => {
      // Read right after the profiled load has settled, where the report's memory figures are taken
      // (the server idle): the max-rate and open-loop phases that follow grow its RSS by a quarter
      // or more, so a read at 'writing the report' compared two different moments.
      if (procRss === undefined && (phase.startsWith('searching for the maximum') || phase === 'writing the report')
        && serverPid !== undefined && existsSync('/proc/self/status')) procRss = vmRss(serverPid);
    },
  });
}, 120_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

function pprof(name: string): Profile {
  return Profile.decode(gunzipSync(readFileSync(join(out, name))));
}

function sampleTypes(p: Profile): string[] {
  return p.sampleType.map((t) => `${p.stringTable.strings[Number(t.type)]}/${p.stringTable.strings[Number(t.unit)]}`);
}

describe('the measurements', () => {
  it('ran the whole load with no failure and came back to the baseline', () => {
    const d = result.data;
    expect(result.outDir).toBe(out);
    expect(d.load).toMatchObject({ totalRequests: 72, successes: 72, failures: 0, stoppedBy: 'completed' });
    expect(d.resources.leaked).toEqual([]);
    // Sampled while the load ran: at least one open connection was seen (a short load may end between samples of the peak).
    expect(d.resources.duringMax.TCPSocketWrap ?? 0).toBeGreaterThan(0);
    expect(d.cpu.sampleCount).toBeGreaterThan(0);
    expect(d.cpu.components.length).toBeGreaterThan(0);
    expect(d.memory.allocation.totalBytes).toBeGreaterThan(0);
    expect(d.memory.allocation.perRequestBytes).toBeCloseTo(d.memory.allocation.totalBytes / 72, 5);
    expect(d.kpis.map((k) => k.name)).toEqual(['p50 latency', 'p95 latency', 'p99 latency', 'Error rate', 'RSS after the load', 'Longest GC pause']);
    expect(d.kpis.find((k) => k.name === 'Error rate')?.met).toBe(true);
    expect(d.timeline.throughput.reduce((a, b) => a + b, 0) * (d.timeline.intervalMs / 1000)).toBeCloseTo(72, 5);
  });
});

describe('the server measured in its own process', () => {
  it('the CPU and heap profiles hold the server\'s frames and none of the load generator\'s', () => {
    const cpu = JSON.parse(readFileSync(join(out, 'cpu.cpuprofile'), 'utf8')) as { nodes: Array<{ callFrame: { url: string } }> };
    const urls = cpu.nodes.map((n) => n.callFrame.url);
    // The control: the server's own modules are there.
    expect(urls.some((u) => u.includes('/packages/server/dist/oauth/'))).toBe(true);
    const generator = urls.filter((u) => /\/node_modules\/undici\/|node:internal\/deps\/undici|\/packages\/tools\//.test(u));
    expect(generator).toEqual([]);
    expect(result.data.cpu.components.map((c) => c.component)).not.toContain('load_generator');
    expect(result.data.memory.allocation.byComponent.map((c) => c.component)).not.toContain('load_generator');
  });

  it('the RSS figures are the server child\'s (its /proc/<pid>/status), not this process\'s', () => {
    const d = result.data;
    expect(serverPid).toBeGreaterThan(0);
    expect(serverPid).not.toBe(process.pid);
    expect(d.server.pid).toBe(serverPid);
    if (procRss === undefined) return; // no /proc here: the pid checks above still ran
    // Read a moment apart, so within 25 % of each other (this process's RSS is another figure).
    expect(Math.abs(d.memory.after.rss - procRss) / procRss).toBeLessThan(0.25);
    expect(Math.abs(d.server.rssAtEnd! - procRss) / procRss).toBeLessThan(0.25);
  });

  it('reports the server\'s CPU seconds from its metrics and the generator\'s own CPU apart', () => {
    const d = result.data;
    expect(d.server.cpuSeconds).toBeGreaterThan(0);
    expect(d.server.cpuSecondsPerRequest).toBeCloseTo(d.server.cpuSeconds! / d.load.totalRequests, 9);
    expect(d.generator.cpuSeconds).toBeGreaterThan(0);
    expect(d.generator.eventLoopUtilization).toBeGreaterThan(0);
    expect(d.generator.eventLoopUtilization).toBeLessThanOrEqual(1);
  });
});

describe('the profile files', () => {
  it('writes every file', () => {
    for (const f of ['report.md', 'report.html', 'cpu.pb.gz', 'heap.pb.gz', 'cpu.cpuprofile', 'heap.heapprofile', 'results.json']) {
      expect(existsSync(join(out, f)), f).toBe(true);
      expect(statSync(join(out, f)).size, f).toBeGreaterThan(0);
    }
  });

  it('cpu.pb.gz is a pprof CPU profile with samples and functions', () => {
    const p = pprof('cpu.pb.gz');
    expect(sampleTypes(p)).toEqual(['samples/count', 'cpu/nanoseconds']);
    expect(p.sample.length).toBeGreaterThan(0);
    expect(p.function.length).toBeGreaterThan(0);
  });

  it('heap.pb.gz is a pprof allocation profile with samples and functions', () => {
    const p = pprof('heap.pb.gz');
    expect(sampleTypes(p)).toEqual(['alloc_samples/count', 'alloc_space/bytes']);
    expect(p.sample.length).toBeGreaterThan(0);
    expect(p.function.length).toBeGreaterThan(0);
  });

  it('cpu.cpuprofile is a DevTools CPU profile (nodes, samples, timeDeltas)', () => {
    const p = JSON.parse(readFileSync(join(out, 'cpu.cpuprofile'), 'utf8')) as { nodes: unknown[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };
    expect(p.nodes.length).toBeGreaterThan(1);
    expect(p.samples.length).toBeGreaterThan(0);
    expect(p.timeDeltas).toHaveLength(p.samples.length);
    expect(p.endTime).toBeGreaterThan(p.startTime);
  });

  it('heap.heapprofile is a DevTools sampling heap profile (head)', () => {
    const p = JSON.parse(readFileSync(join(out, 'heap.heapprofile'), 'utf8')) as { head: { callFrame: { functionName: string }; children: unknown[] } };
    expect(p.head.callFrame.functionName).toBe('(root)');
    expect(p.head.children.length).toBeGreaterThan(0);
  });

  it('results.json holds the same data', () => {
    const data = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as { load: { totalRequests: number } };
    expect(data.load.totalRequests).toBe(72);
  });
});

describe('report.md', () => {
  it('has every section heading, in order', () => {
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    const headings = [...md.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    expect(headings).toEqual(SECTIONS);
  });

  it('states KPI status and the commands to open the profiles', () => {
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    const all = result.data.phases.reduce((a, p) => a + p.load.totalRequests, 0);
    expect(all).toBeGreaterThan(72);
    expect(md).toContain(`| Error rate | 0 | 0.000 % (0 of ${all}) | met |`);
    expect(md).toContain('go tool pprof -top cpu.pb.gz');
    expect(md).toContain('heap.heapprofile');
    expect(md).toMatch(/Failures by cause: \*\*none\*\*/);
    expect(md).toMatch(/back to the baseline/);
  });
});

describe('the capacity-review sections', () => {
  const md = (): string => readFileSync(join(out, 'report.md'), 'utf8');
  const section = (text: string, title: string): string => text.split(/^## /m).find((x) => x.startsWith(title)) ?? '';

  it('stands alone: no reference to documents outside it', () => {
    expect(md()).not.toMatch(/origin/i);
    expect(md()).toContain('the Go server this project replaced');
  });

  it('evaluates every alert rule of deploy/prometheus/alerts.yml, marking rules longer than the run "condition only"', () => {
    const alerts = section(md(), '11. Alert rules');
    for (const rule of ['HighLatency', 'HighErrorRate', 'HighServerErrorRate', 'HighMemory', 'LowThroughput', 'HighGCPause', 'InstanceDown']) {
      expect(alerts).toMatch(new RegExp(`\\| \`${rule}\` \\| \\w+ \\| .+ \\| (held|not held) \\| condition only`));
    }
    expect(result.data.alerts.evaluations.every((e) => e.evaluated)).toBe(true);
  });

  it('plans capacity from the server\'s CPU-seconds per request, for 1k, 10k and 100k tokens/s', () => {
    const cap = section(md(), '12. Capacity planning');
    // From the max-rate phase, where no profiler runs.
    const perRequest = result.data.phases.find((p) => p.name === 'max-rate')!.server.cpuSecondsPerRequest!;
    expect(cap).toMatch(/\| Token requests per core \(100 % busy\) \| [\d,]+ \|/);
    for (const target of ['1,000', '10,000', '100,000']) expect(cap).toMatch(new RegExp(`\\| ${target} tokens/s \\| [\\d,]+ \\| [\\d,]+ \\|`));
    // 100k tokens/s at 50 % busy: the cores follow from the CPU per request.
    const row = new RegExp('\\| 100,000 tokens/s \\| ([\\d,]+) \\|').exec(cap)!;
    const cores = Number(row[1]!.replace(/,/g, ''));
    expect(cores).toBe(Math.ceil((100_000 * perRequest) / 0.5));
    expect(cap).toContain('PostgreSQL');
    expect(cap).toMatch(/Memory per 1,000 connections/);
  });

  it('recommends from the numbers', () => {
    const rec = section(md(), '13. Recommendations');
    expect(rec).toMatch(/For 10,000 tokens\/s plan [\d,]+ cores/);
    expect(rec).toMatch(/RSS after the load is \d+ MB/);
  });

  it('says "not measurable here" for the rate when the load generator was 90 % busy or more', () => {
    const d = structuredClone(result.data);
    expect(renderMarkdownReport(d)).not.toContain('not measurable here');
    d.phases.find((p) => p.name === 'max-rate')!.generator.cpuShareOfOneCore = 0.93;
    const text = renderMarkdownReport(d);
    expect(text).toMatch(/Maximum sustainable rate of one server process \(measured\) \| not measurable here \(the load generator was 93\.0 % busy\)/);
    expect(text).toMatch(/Maximum sustainable rate: \*\*not measurable here\*\*/);
    // The profiled load's own generator figure is said apart.
    const closed = structuredClone(result.data);
    closed.generator.eventLoopUtilization = 0.99;
    expect(renderMarkdownReport(closed)).toMatch(/Load generator during the profiled load .*99\.0 % busy.*: at or above 90 %, so this load's throughput is the generator's limit/);
    closed.generator.eventLoopUtilization = 0.5;
    closed.generator.cpuShareOfOneCore = 0.5;
    expect(renderMarkdownReport(closed)).toMatch(/Load generator during the profiled load .*: below 90 %, not the bottleneck/);
  });

  it('runs the three load phases and judges the latency KPIs on the open loop', () => {
    const d = result.data;
    expect(d.phases.map((p) => p.name)).toEqual(['closed-loop', 'max-rate', 'open-loop']);
    const max = d.phases[1]!;
    const open = d.phases[2]!;
    expect(max.load.failures).toBe(0);
    expect(open.load.failures).toBe(0);
    expect(max.load.config.verifyOneIn).toBe(20);
    expect(open.load.config.ratePerSecond).toBeCloseTo(max.load.requestsPerSecond * 0.5, 6);
    expect(d.kpis.find((k) => k.name === 'p50 latency')!.value).toBe(`${(open.load.latencyUs.p50 / 1000).toFixed(2)} ms`);
    const md = readFileSync(join(out, 'report.md'), 'utf8');
    expect(md).toMatch(/\| open-loop \| open loop, [\d,]+\/s \(50 % of the max\)/);
    expect(md).toContain('The latency KPIs are judged on the open-loop phase');
  });
});

describe('comparing two runs', () => {
  it('shows each KPI\'s change from A to B, better or worse', () => {
    const a = result.data;
    const b = structuredClone(a);
    b.version = '0.2.0 (git abc1234)';
    b.load.requestsPerSecond = a.load.requestsPerSecond * 1.1;
    b.load.latencyUs = { ...a.load.latencyUs, p99: a.load.latencyUs.p99 * 2 };
    const c = compareResults(a, b, { a: 'A', b: 'B' });
    const row = (m: string): ComparisonRow => c.rows.find((r) => r.metric === m)!;
    expect(row('Throughput').relative).toBeCloseTo(0.1, 9);
    expect(row('Throughput').verdict).toBe('better');
    expect(row('p99 latency').verdict).toBe('worse');
    expect(row('p50 latency').verdict).toBe('same');
    expect(row('Server CPU per request').a).toBeCloseTo(a.server.cpuSecondsPerRequest! * 1e6, 6);
    const lines = comparisonLines(c);
    expect(lines[1]).toContain('0.2.0 (git abc1234)');
    expect(lines.find((l) => l.startsWith('Throughput'))).toMatch(/\+10\.0 %\)\s+better$/);
  });

  it('refuses a folder that is not a report, in one sentence', () => {
    expect(() => readResults(work)).toThrow(/is not a profile report folder/);
  });
});

describe('a run that went wrong', () => {
  function broken(): ProfileData {
    const d = structuredClone(result.data);
    d.load.failures = 5;
    d.load.successes = d.load.totalRequests - 5;
    d.load.failuresByCause = { oauth_invalid_client: 3, timeout: 2 };
    d.load.failureSamples = { oauth_invalid_client: 'HTTP 401: {"error":"invalid_client"}', timeout: 'HeadersTimeoutError: Headers Timeout Error' };
    d.resources.after = { ...d.resources.after, TCPSocketWrap: (d.resources.after.TCPSocketWrap ?? 0) + 3 };
    d.resources.leaked = [{ type: 'TCPSocketWrap', before: d.resources.before.TCPSocketWrap ?? 0, after: d.resources.after.TCPSocketWrap! }];
    d.kpis = evaluateKpis(d.load, d.memory.after.rss, d.gc.maxMs);
    return d;
  }

  it('says so: failures by cause, the error-rate KPI not met, and what leaked', () => {
    const md = renderMarkdownReport(broken());
    expect(md).toMatch(/\| `oauth_invalid_client` \| 3 \| HTTP 401/);
    expect(md).toMatch(/\| `timeout` \| 2 \|/);
    expect(md).toMatch(/\| Error rate \| 0 \| 6\.944 % \(5 of 72\) \| not met \|/);
    expect(md).toMatch(/\*\*Leak:\*\* after waiting .* `TCPSocketWrap` \d+ → \d+/);
    expect(md).toMatch(/\*\*not back to the baseline\*\*/);
    const html = renderHtmlReport(broken());
    expect(html).toContain('<span class="not-met">not met</span>');
    expect(html).toContain('&quot;error&quot;:&quot;invalid_client&quot;');
  });
});

describe('evaluateKpis', () => {
  it('meets a target only strictly below it', () => {
    const load = structuredClone(result.data.load);
    load.latencyUs = { ...load.latencyUs, p50: 4999, p95: 20_000, p99: 49_999.9 };
    const k = Object.fromEntries(evaluateKpis(load, 99_999_999, 10).map((x) => [x.name, x.met]));
    expect(k).toEqual({
      'p50 latency': true, 'p95 latency': false, 'p99 latency': true, 'Error rate': true, 'RSS after the load': true, 'Longest GC pause': false,
    });
    expect(evaluateKpis(load, 100_000_000, 9.99).find((x) => x.name === 'RSS after the load')?.met).toBe(false);
  });
});

describe('report.html without a browser', () => {
  const html = (): string => readFileSync(join(out, 'report.html'), 'utf8');

  it('is one self-contained document: no script, nothing loaded from elsewhere', () => {
    const h = html();
    expect(h.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(h).not.toMatch(/<script/i);
    expect(h).not.toMatch(/<(link|img|iframe)\b/i);
    expect(h).not.toMatch(/\b(src|href)\s*=\s*["'](https?:)?\/\//i);
    expect(h).not.toMatch(/url\(/i);
    expect(h).toContain("default-src 'none'");
  });

  it('has every section and the four inline SVG charts with data in them', () => {
    const h = html();
    for (const s of SECTIONS) expect(h).toContain(`<h2>${s}</h2>`);
    for (const id of CHARTS) {
      const svg = new RegExp(`<svg class="chart" id="${id}"[\\s\\S]*?</svg>`).exec(h)?.[0];
      expect(svg, id).toBeDefined();
      expect(svg!).toMatch(/<rect class="bar"|<path class="series"/);
    }
    expect((h.match(/<svg\b/g) ?? []).length).toBe((h.match(/<\/svg>/g) ?? []).length);
    expect((h.match(/<section\b/g) ?? []).length).toBe(SECTIONS.length);
  });
});

describe('report.html in a headless browser', () => {
  const haveChromium = existsSync(CHROMIUM);
  if (!haveChromium) {
    it.skip(`skipped: ${CHROMIUM} is not installed (apt-get install chromium to run it); the structural checks above still ran`, () => undefined);
    return;
  }

  function chromium(args: string[]): { stdout: string; stderr: string; status: number | null } {
    const profileDir = mkdtempSync(join(tmpdir(), 'm2m-chromium-'));
    try {
      const r = spawnSync(CHROMIUM, [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
        '--disable-sync', '--no-first-run', `--user-data-dir=${profileDir}`, ...args,
      ], { encoding: 'utf8', timeout: 60_000, maxBuffer: 64 * 1024 * 1024 });
      return { stdout: r.stdout, stderr: r.stderr, status: r.status };
    } finally {
      rmSync(profileDir, { recursive: true, force: true });
    }
  }

  it('parses into a DOM with every section and chart', () => {
    const r = chromium(['--dump-dom', `file://${join(out, 'report.html')}`]);
    expect(r.status, r.stderr).toBe(0);
    for (const id of CHARTS) expect(r.stdout).toMatch(new RegExp(`<svg class="chart" id="${id}"`));
    expect((r.stdout.match(/<rect class="bar"/g) ?? []).length).toBeGreaterThan(3);
    for (const s of SECTIONS) expect(r.stdout).toContain(`<h2>${s}</h2>`);
  }, 90_000);

  it('renders to a screenshot', () => {
    const png = join(work, 'report.png');
    const r = chromium(['--window-size=1000,3000', `--screenshot=${png}`, `file://${join(out, 'report.html')}`]);
    expect(r.status, r.stderr).toBe(0);
    const bytes = readFileSync(png);
    expect(bytes.subarray(1, 4).toString('ascii')).toBe('PNG');
    expect(bytes.readUInt32BE(16)).toBe(1000); // IHDR width
    expect(bytes.length).toBeGreaterThan(50_000); // a page with text and charts, not a blank one
  }, 90_000);
});
