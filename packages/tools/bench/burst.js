// A connection storm: N clients open their connections at the same instant (say while the server
// is under load from wrk) and send one request each. Every one must be answered; none may stall
// past the deadline or be refused or reset.
//
//   BENCH_BODY=... BENCH_AUTHORIZATION='Basic ...' node bench/burst.js --url URL
//       [--sockets 1000] [--deadline-ms 2000] [--timeout-ms 10000] [--json]
// Raw sockets, not an HTTP client library: a client library would queue or pool the requests,
// which is exactly what this check must not do.

import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { latencySummary } from './lib/stats.js';

/**
 * The kernel's count of connections dropped because a listen queue was full (TcpExt
 * ListenOverflows, system-wide; Linux only, NaN elsewhere). A rise during the storm means the
 * server's listen backlog is smaller than the storm: those clients wait for a SYN retransmission.
 */
export function listenOverflows() {
  try {
    const lines = readFileSync('/proc/net/netstat', 'utf8').split('\n').filter((l) => l.startsWith('TcpExt:'));
    const names = lines[0].split(/\s+/);
    const values = lines[1].split(/\s+/);
    return Number(values[names.indexOf('ListenOverflows')]);
  } catch {
    return NaN;
  }
}

/**
 * @param {{ url: string, body: string, authorization?: string }} target
 * @param {{ sockets?: number, deadlineMs?: number, timeoutMs?: number }} [options]
 */
export async function burst(target, { sockets = 1000, deadlineMs = 2000, timeoutMs = 10_000 } = {}) {
  const url = new URL(target.url);
  const port = Number(url.port || 80);
  const head = [
    `POST ${url.pathname}${url.search} HTTP/1.1`,
    `Host: ${url.host}`,
    'Content-Type: application/x-www-form-urlencoded',
    `Content-Length: ${Buffer.byteLength(target.body)}`,
    ...(target.authorization ? [`Authorization: ${target.authorization}`] : []),
    'Connection: close',
    '',
    '',
  ].join('\r\n');
  const request = Buffer.concat([Buffer.from(head, 'latin1'), Buffer.from(target.body, 'utf8')]);

  const outcomes = [];
  const overflowsBefore = listenOverflows();
  const start = performance.now();
  const all = [];
  // All sockets are opened in one synchronous loop: the SYNs leave together.
  for (let i = 0; i < sockets; i++) {
    all.push(new Promise((resolve) => {
      const socket = connect({ host: url.hostname, port });
      const chunks = [];
      let settled = false;
      const done = (outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        outcomes.push({ ...outcome, ms: performance.now() - start });
        resolve();
      };
      const timer = setTimeout(() => done({ kind: 'timeout' }), timeoutMs);
      socket.on('connect', () => socket.write(request));
      socket.on('data', (chunk) => chunks.push(chunk));
      socket.on('end', () => {
        const text = Buffer.concat(chunks).toString('latin1');
        const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1]);
        done(Number.isFinite(status) ? { kind: 'answered', status } : { kind: 'garbled' });
      });
      socket.on('error', (err) => done({ kind: err.code === 'ECONNREFUSED' ? 'refused' : 'error', code: err.code }));
    }));
  }
  await Promise.all(all);
  const overflows = listenOverflows() - overflowsBefore;

  const answered = outcomes.filter((o) => o.kind === 'answered');
  const errorCodes = {};
  for (const o of outcomes) if (o.kind !== 'answered') errorCodes[o.code ?? o.kind] = (errorCodes[o.code ?? o.kind] ?? 0) + 1;
  return {
    sockets,
    deadlineMs,
    answered: answered.length,
    ok: answered.filter((o) => o.status >= 200 && o.status < 300).length,
    non2xx: answered.filter((o) => o.status < 200 || o.status >= 300).length,
    late: answered.filter((o) => o.ms > deadlineMs).length,
    refused: outcomes.filter((o) => o.kind === 'refused').length,
    failed: outcomes.filter((o) => o.kind !== 'answered').length,
    errorCodes,
    /** Listen queue overflows counted by the kernel during the storm (any process's). */
    listenOverflows: overflows,
    /** Time from the storm's start to each complete answer, in ms. */
    latency: latencySummary(answered.map((o) => o.ms)),
  };
}

async function main() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      sockets: { type: 'string', default: '1000' },
      'deadline-ms': { type: 'string', default: '2000' },
      'timeout-ms': { type: 'string', default: '10000' },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.url || process.env.BENCH_BODY === undefined) {
    console.error('usage: BENCH_BODY=... [BENCH_AUTHORIZATION=...] node bench/burst.js --url URL [--sockets N] [--deadline-ms ms] [--json]');
    process.exitCode = 2;
    return;
  }
  const result = await burst(
    { url: values.url, body: process.env.BENCH_BODY, authorization: process.env.BENCH_AUTHORIZATION },
    { sockets: Number(values.sockets), deadlineMs: Number(values['deadline-ms']), timeoutMs: Number(values['timeout-ms']) },
  );
  if (values.json) {
    console.log(JSON.stringify(result));
    return;
  }
  const l = result.latency;
  console.log(`${result.sockets} sockets at once: ${result.answered} answered (${result.ok} 2xx, ${result.non2xx} other), `
    + `${result.late} later than ${result.deadlineMs} ms, ${result.refused} refused, ${result.failed} failed ${JSON.stringify(result.errorCodes)}`);
  console.log(`time to a complete answer: p50 ${l.p50?.toFixed(1)} ms  p99 ${l.p99?.toFixed(1)} ms  max ${l.max?.toFixed(1)} ms`);
  console.log(`listen queue overflows during the storm (kernel, system-wide): ${result.listenOverflows}`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    console.error(err instanceof Error ? err.message : err);
    process.exitCode = 1;
  });
}
