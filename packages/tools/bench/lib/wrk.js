// Running wrk (https://github.com/wg/wrk, Debian package `wrk`) and reading its summary.

import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { track } from './processes.js';

export const FORM_POST_SCRIPT = fileURLToPath(new URL('../wrk/form-post.lua', import.meta.url));
/** The form POST with a new DPoP proof or a new body per request, from a file (or one constant DPoP value). */
export const FRESH_POST_SCRIPT = fileURLToPath(new URL('../wrk/fresh-post.lua', import.meta.url));

/** True when `wrk` is on the PATH. */
export function haveWrk() {
  const r = spawnSync('wrk', ['--version'], { stdio: 'ignore' });
  return !r.error;
}

const TIME_UNITS = { us: 1e-6, ms: 1e-3, s: 1, m: 60, h: 3600 };

/** wrk's durations ("812.00us", "1.23ms", "2.00s", "1.50m") in seconds. */
export function parseWrkDuration(text) {
  const m = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (!m) return NaN;
  return Number(m[1]) * TIME_UNITS[m[2]];
}

/**
 * The numbers of a wrk summary (run with --latency). Times in seconds.
 * @returns {{ requests: number, elapsedS: number, rate: number, latency: { avg: number, max: number,
 *   p50: number, p75: number, p90: number, p99: number }, socketErrors: { connect: number, read: number,
 *   write: number, timeout: number }, non2xx: number }}
 */
export function parseWrkOutput(text) {
  const num = (re) => {
    const m = re.exec(text);
    return m ? Number(m[1]) : NaN;
  };
  const done = /(\d+) requests in ([\d.]+(?:us|ms|s|m|h))/.exec(text);
  const lat = /^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)/m.exec(text);
  const pct = (p) => {
    const m = new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(text);
    return m ? parseWrkDuration(m[1]) : NaN;
  };
  const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    requests: done ? Number(done[1]) : NaN,
    elapsedS: done ? parseWrkDuration(done[2]) : NaN,
    rate: num(/Requests\/sec:\s+([\d.]+)/),
    latency: {
      avg: lat ? parseWrkDuration(lat[1]) : NaN,
      max: lat ? parseWrkDuration(lat[3]) : NaN,
      p50: pct(50),
      p75: pct(75),
      p90: pct(90),
      p99: pct(99),
    },
    socketErrors: {
      connect: errors ? Number(errors[1]) : 0,
      read: errors ? Number(errors[2]) : 0,
      write: errors ? Number(errors[3]) : 0,
      timeout: errors ? Number(errors[4]) : 0,
    },
    non2xx: Number.isNaN(num(/Non-2xx or 3xx responses:\s+(\d+)/)) ? 0 : num(/Non-2xx or 3xx responses:\s+(\d+)/),
  };
}

/**
 * Runs wrk -t1 (one thread: the generator gets one core) with the form-post script.
 * @param {{ url: string, body: string, authorization?: string, connections: number, durationS: number,
 *   timeoutS?: number, maxRequests?: number, cpu?: number | null, dpopFile?: string, dpopHeader?: string, bodyFile?: string }} o
 * With dpopFile or dpopHeader, the fresh-post script sends a DPoP header (the next proof of the file, or the constant);
 * with bodyFile, the next line of the file as each request's body.
 */
export function runWrk(o) {
  const args = [
    '-t1', `-c${o.connections}`, `-d${Math.max(1, Math.round(o.durationS))}s`, `--timeout`, `${o.timeoutS ?? 2}s`,
    '--latency', '-s', o.dpopFile || o.dpopHeader || o.bodyFile ? FRESH_POST_SCRIPT : FORM_POST_SCRIPT, o.url,
  ];
  const [cmd, argv] = o.cpu === null || o.cpu === undefined ? ['wrk', args] : ['taskset', ['-c', String(o.cpu), 'wrk', ...args]];
  const env = {
    ...process.env, BENCH_BODY: o.body, BENCH_AUTHORIZATION: o.authorization ?? '',
    BENCH_DPOP_FILE: o.dpopFile ?? '', BENCH_DPOP_HEADER: o.dpopHeader ?? '', BENCH_BODY_FILE: o.bodyFile ?? '',
  };
  if (o.maxRequests !== undefined) env.BENCH_MAX_REQUESTS = String(o.maxRequests);
  else delete env.BENCH_MAX_REQUESTS;
  return new Promise((resolve, reject) => {
    const child = track(spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] }));
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`wrk exited with ${code}: ${err || out}`));
      const parsed = parseWrkOutput(out);
      if (!Number.isFinite(parsed.rate)) return reject(new Error(`could not read wrk's output:\n${out}${err}`));
      resolve({ ...parsed, raw: out });
    });
  });
}
