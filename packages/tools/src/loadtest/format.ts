// Human-readable load-test results: numbers with units, the result as text lines, and a progress
// line for stderr (a bar on a terminal, a plain periodic line otherwise).

import type { LatencySummary } from './latency.js';
import type { LoadTestProgress, LoadTestResult } from './run.js';

export function formatInt(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

/** Microseconds as milliseconds with a precision that suits the size. */
export function formatMs(us: number): string {
  const ms = us / 1000;
  if (ms < 10) return `${ms.toFixed(3)} ms`;
  if (ms < 1000) return `${ms.toFixed(1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export function formatBytes(bytes: number): string {
  const abs = Math.abs(bytes);
  if (abs < 1024) return `${Math.round(bytes)} B`;
  if (abs < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  if (abs < 1024 * 1024 * 1024) return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
  return `${(bytes / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}

export function formatPercent(share: number, digits = 1): string {
  return `${(share * 100).toFixed(digits)} %`;
}

export function latencyLine(l: LatencySummary): string {
  return `avg ${formatMs(l.avg)}  p50 ${formatMs(l.p50)}  p95 ${formatMs(l.p95)}  p99 ${formatMs(l.p99)}  max ${formatMs(l.max)}`;
}

const STOPPED: Record<LoadTestResult['stoppedBy'], string> = {
  completed: 'every planned request was sent',
  duration_limit: 'stopped by the duration limit',
  aborted: 'stopped on request',
};

export function resultLines(r: LoadTestResult, target: string): string[] {
  const pad = (s: string): string => s.padEnd(16);
  const errorRate = r.totalRequests > 0 ? r.failures / r.totalRequests : 0;
  const lines = [
    `Load test: ${r.mode} against ${target}`,
    `  ${formatInt(r.config.clients)} concurrent clients x ${formatInt(r.config.requests)} requests over ${formatInt(r.config.connections)} keep-alive connections, ${formatInt(r.config.clientCount)} registered OAuth client${r.config.clientCount === 1 ? '' : 's'}`,
    '',
    `${pad('Total requests')}${formatInt(r.totalRequests)} of ${formatInt(r.planned)} (${STOPPED[r.stoppedBy]})`,
    `${pad('Duration')}${(r.durationMs / 1000).toFixed(2)} s`,
    `${pad('Requests/s')}${formatInt(r.requestsPerSecond)}`,
    `${pad('Latency')}${latencyLine(r.latencyUs)}`,
  ];
  for (const [op, l] of Object.entries(r.latencyByOperation)) {
    if (Object.keys(r.latencyByOperation).length > 1 && l !== undefined) lines.push(`${pad(`  ${op}`)}${latencyLine(l)}`);
  }
  lines.push(
    `${pad('Successes')}${formatInt(r.successes)}`,
    `${pad('Failures')}${formatInt(r.failures)} (${formatPercent(errorRate, 3)})`,
  );
  for (const [cause, n] of Object.entries(r.failuresByCause)) {
    lines.push(`  ${cause.padEnd(28)}${formatInt(n).padStart(10)}  ${r.failureSamples[cause] ?? ''}`.trimEnd());
  }
  return lines;
}

/** One progress line; `width` is the bar's width (0 for a plain line). */
export function progressLine(p: LoadTestProgress, width: number): string {
  const fraction = p.planned > 0 ? Math.min(1, p.completed / p.planned) : 0;
  const rate = p.elapsedMs > 0 ? p.completed / (p.elapsedMs / 1000) : 0;
  const counts = `${formatInt(p.completed)}/${formatInt(p.planned)}  ${formatInt(rate)} req/s  ${formatInt(p.failures)} failed  ${(p.elapsedMs / 1000).toFixed(1)} s`;
  if (width <= 0) return `loadtest: ${formatPercent(fraction, 0)} ${counts}`;
  const filled = Math.round(fraction * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${formatPercent(fraction, 0).padStart(5)}  ${counts}`;
}
