// Runs the project's own load generator (src/loadtest, behind `m2m-auth loadtest`) from dist/ and
// prints a compact JSON result on stdout. bench/run.js starts it pinned to the generator's core
// for the "1000 clients x 100 requests" check; every token it gets back is verified.
//
//   BENCH_ADMIN_TOKEN=... node bench/loadtest-helper.js --url ISSUER --admin-url URL
//       [--clients 1000] [--requests 100] [--duration-limit-ms 60000]
// Exits with 3 when dist/loadtest is not built (the caller falls back to wrk).

import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: {
    url: { type: 'string' },
    'admin-url': { type: 'string' },
    clients: { type: 'string', default: '1000' },
    requests: { type: 'string', default: '100' },
    'client-count': { type: 'string', default: '10' },
    'duration-limit-ms': { type: 'string', default: '60000' },
    'timeout-ms': { type: 'string', default: '10000' },
  },
});

let runLoadTest;
try {
  ({ runLoadTest } = await import('../dist/loadtest/run.js'));
} catch {
  runLoadTest = undefined;
}
if (typeof runLoadTest !== 'function') {
  console.error('dist/loadtest/run.js (runLoadTest) is not available');
  process.exit(3);
}
if (!values.url || !values['admin-url'] || !process.env.BENCH_ADMIN_TOKEN) {
  console.error('usage: BENCH_ADMIN_TOKEN=... node bench/loadtest-helper.js --url ISSUER --admin-url URL [--clients N] [--requests N]');
  process.exit(2);
}

const r = await runLoadTest({
  url: values.url,
  admin: { url: values['admin-url'], token: process.env.BENCH_ADMIN_TOKEN },
  clients: Number(values.clients),
  requests: Number(values.requests),
  clientCount: Number(values['client-count']),
  durationLimitMs: Number(values['duration-limit-ms']),
  timeoutMs: Number(values['timeout-ms']),
});
console.log(JSON.stringify({
  planned: r.planned,
  totalRequests: r.totalRequests,
  notSent: r.notSent,
  stoppedBy: r.stoppedBy,
  successes: r.successes,
  failures: r.failures,
  failuresByCause: r.failuresByCause,
  failureSamples: r.failureSamples,
  requestsPerSecond: r.requestsPerSecond,
  durationMs: r.durationMs,
  connections: r.config?.connections,
  latencyUs: { p50: r.latencyUs.p50, p99: r.latencyUs.p99, max: r.latencyUs.max },
}));
