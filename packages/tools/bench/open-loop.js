// Load generators for what wrk cannot do (open loop and sequential on raw sockets, see
// bench/lib/raw-http.js; the closed loop on undici):
//
//   open loop   requests scheduled at a fixed rate whatever the responses do, latency measured
//               from the time a request was SCHEDULED, not sent: a server that stalls is charged
//               for every request that should have gone out meanwhile (no coordinated omission,
//               as wrk2 does it; wrk2 is not packaged in Debian);
//   sequential  one request at a time on one keep-alive connection (an idle server's latency);
//   closed      N connections sending back to back (the stand-in for wrk when wrk is missing).
//
//   BENCH_BODY=... BENCH_AUTHORIZATION='Basic ...' node bench/open-loop.js --url URL
//       [--mode open|sequential|closed] [--rate R] [--duration s] [--connections N]
//       [--requests N] [--json]
// The body and credentials come from the environment so that they do not show in `ps`.

import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { formPost, RawConnection } from './lib/raw-http.js';
import { latencySummary } from './lib/stats.js';

/**
 * @typedef {{ url: string, body: string, authorization?: string }} Target  url includes the path
 * @typedef {{ count: number, p50: number, p90: number, p99: number, p999: number, max: number }} Latency  in ms
 */

function requestOptions(target) {
  const url = new URL(target.url);
  const headers = { 'content-type': 'application/x-www-form-urlencoded' };
  if (target.authorization) headers.authorization = target.authorization;
  return { origin: url.origin, options: { method: 'POST', path: url.pathname + url.search, headers, body: target.body } };
}

/** Milliseconds since the epoch, sub-millisecond. */
const clock = () => performance.timeOrigin + performance.now();

/**
 * Open loop: `rate` requests per second for `durationS` seconds over up to `connections`
 * keep-alive connections (bench/lib/raw-http.js). A request that finds every connection busy
 * waits in a queue, and that wait counts: latency runs from the scheduled instant to the last
 * byte of the response.
 *
 * @returns {Promise<{ mode: 'open', rate: number, scheduled: number, completed: number, ok: number,
 *   non2xx: number, errors: number, achievedRate: number, latency: Latency, sendLag: Latency }>}
 */
export async function openLoop(target, { rate, durationS, connections = 64 }) {
  if (!(rate > 0) || !(durationS > 0)) throw new Error('openLoop needs rate > 0 and durationS > 0');
  const request = formPost(target);
  const total = Math.max(1, Math.round(rate * durationS));
  const intervalMs = 1000 / rate;
  const latency = new Float64Array(total).fill(NaN);
  const sendLag = new Float64Array(total);
  const idle = [];
  const all = [];
  const queue = [];
  let queueHead = 0;
  let issued = 0;
  let completed = 0;
  let ok = 0;
  let non2xx = 0;
  let errors = 0;

  const startAt = clock() + 50;
  await new Promise((resolve) => {
    const run = (conn, index) => {
      const scheduled = startAt + index * intervalMs;
      sendLag[index] = clock() - scheduled;
      conn.send().then(
        (status) => {
          latency[index] = clock() - scheduled;
          if (status >= 200 && status < 300) ok++;
          else non2xx++;
        },
        () => {
          errors++;
        },
      ).finally(() => {
        if (++completed === total) resolve();
        else if (!conn.closed && queueHead < queue.length) run(conn, queue[queueHead++]);
        else if (!conn.closed) idle.push(conn);
        else all.splice(all.indexOf(conn), 1);
      });
    };
    const issue = (index) => {
      let conn = idle.pop();
      if (!conn && all.length < connections) {
        conn = new RawConnection(request);
        all.push(conn);
      }
      if (conn) run(conn, index);
      else queue.push(index);
    };
    // The schedule is kept by a setImmediate loop: every turn of the generator's event loop
    // reads what has arrived, then sends what has come due. It keeps the generator's core busy
    // (it has a core of its own), and unlike a timer (a millisecond late) or a second thread on
    // the same core (descheduled for milliseconds at a time), it sends on time.
    const tick = () => {
      const due = Math.min(total, Math.floor((clock() - startAt) / intervalMs) + 1);
      while (issued < due) issue(issued++);
      if (issued < total) setImmediate(tick);
    };
    setImmediate(tick);
  });
  const elapsedS = (clock() - startAt) / 1000;
  for (const conn of all) conn.close();
  return {
    mode: 'open', rate, scheduled: total, completed, ok, non2xx, errors,
    achievedRate: completed / elapsedS,
    latency: latencySummary(latency.filter((x) => !Number.isNaN(x))),
    sendLag: latencySummary(sendLag),
  };
}

/** One request at a time on one connection; `requests` timed after `warmup` untimed ones. */
export async function sequential(target, { requests = 2000, warmup = 200 } = {}) {
  const conn = new RawConnection(formPost(target));
  const latency = new Float64Array(requests);
  let non2xx = 0;
  try {
    for (let i = -warmup; i < requests; i++) {
      const t0 = performance.now();
      const status = await conn.send();
      if (i >= 0) {
        latency[i] = performance.now() - t0;
        if (status < 200 || status >= 300) non2xx++;
      }
    }
  } finally {
    conn.close();
  }
  return { mode: 'sequential', requests, non2xx, latency: latencySummary(latency) };
}

/** Closed loop: `connections` connections, each sending its next request when the last answered. */
export async function closedLoop(target, { connections = 64, durationS, requestsPerConnection = Infinity }) {
  const { origin, options } = requestOptions(target);
  const pool = new Pool(origin, { connections, pipelining: 1 });
  const deadline = performance.now() + durationS * 1000;
  const samples = [];
  let ok = 0;
  let non2xx = 0;
  let errors = 0;
  const started = performance.now();
  const worker = async () => {
    for (let n = 0; n < requestsPerConnection && performance.now() < deadline; n++) {
      const t0 = performance.now();
      try {
        const res = await pool.request(options);
        await res.body.dump();
        if (res.statusCode >= 200 && res.statusCode < 300) ok++;
        else non2xx++;
        samples.push(performance.now() - t0);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsedS = (performance.now() - started) / 1000;
  await pool.close();
  return {
    mode: 'closed', connections, requests: ok + non2xx, ok, non2xx, errors,
    rate: (ok + non2xx) / elapsedS, elapsedS, latency: latencySummary(samples),
  };
}

async function main() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      mode: { type: 'string', default: 'open' },
      rate: { type: 'string' },
      duration: { type: 'string', default: '10' },
      connections: { type: 'string', default: '64' },
      requests: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || !values.url) {
    console.log('usage: BENCH_BODY=... [BENCH_AUTHORIZATION=...] node bench/open-loop.js --url URL '
      + '[--mode open|sequential|closed] [--rate R] [--duration s] [--connections N] [--requests N] [--json]');
    if (!values.url && !values.help) process.exitCode = 2;
    return;
  }
  const body = process.env.BENCH_BODY;
  if (body === undefined) throw new Error('set BENCH_BODY to the form body to POST');
  const target = { url: values.url, body, authorization: process.env.BENCH_AUTHORIZATION };
  const durationS = Number(values.duration);
  const connections = Number(values.connections);
  let result;
  switch (values.mode) {
    case 'open':
      if (!values.rate) throw new Error('--mode open needs --rate');
      result = await openLoop(target, { rate: Number(values.rate), durationS, connections });
      break;
    case 'sequential':
      result = await sequential(target, { requests: values.requests ? Number(values.requests) : 2000 });
      break;
    case 'closed':
      result = await closedLoop(target, {
        connections, durationS, requestsPerConnection: values.requests ? Number(values.requests) : Infinity,
      });
      break;
    default:
      throw new Error(`unknown --mode ${values.mode}`);
  }
  if (values.json) {
    console.log(JSON.stringify(result));
    return;
  }
  const l = result.latency;
  const ms = (x) => `${x.toFixed(3)} ms`;
  console.log(`${result.mode}: ${JSON.stringify({ ...result, latency: undefined, sendLag: undefined })}`);
  console.log(`latency: p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p99 ${ms(l.p99)}  p99.9 ${ms(l.p999)}  max ${ms(l.max)}  (n=${l.count})`);
  if (result.sendLag) console.log(`send lag behind schedule: p50 ${ms(result.sendLag.p50)}  p99 ${ms(result.sendLag.p99)}  max ${ms(result.sendLag.max)}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}
