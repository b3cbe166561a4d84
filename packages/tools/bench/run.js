// The HTTP benchmark of issue 3 ("Part 2: the speed"), in one run on one machine: every rate
// and latency, every ratio to its floor or rival, every target printed as MET / NOT MET.
//
//   npm run bench:http            (from the repository root: builds, then runs this file with the
//                                  server's command and its sign-only reference)
//   node bench/run.js --server <m2m-auth dist/cli/main.js> --sign-only <sign-only-server.js>
//                     [--quick] [--json results.json] [--no-pin] [--skip-oidc] [--no-loadtest]
//
// The server is driven through its command only (`serve`, `clients`, `--help`): this benchmark
// imports nothing of it.
//
// The servers under test are pinned to CPU 0 (taskset -c 0), the load generator to CPU 1
// (taskset -c 1 wrk -t1 ...). Only 127.0.0.1 is ever loaded, and every step is bounded in time:
// about 4 minutes in all, about a minute with --quick. Needs wrk (`apt-get install wrk`);
// without it an undici closed-loop generator stands in and says so.
//
// What is measured, in order:
//   1. one raw node:crypto ES256 signature, in this process, on CPU 0 (again at the end);
//   2. closed-loop rates at 64 connections, in interleaved rounds (a raw signature, hello, m2m-auth
//      token, sign-only, introspection, oidc-provider, m2m-auth without request log; again), so
//      that load from other processes hits every server alike; the median round counts, and the
//      token target is judged on the median of each round's token rate / that round's floor:
//        - a Fastify hello-world POST (bench/hello-server.js): the floor of a token endpoint is
//          1 / (1 / hello rate + one raw signature);
//        - a sign-only reference (the server package's bench/sign-only-server.js, --sign-only):
//          Fastify, m2m-auth's batching and one raw signature per POST, nothing else; the most a
//          token endpoint on Fastify does here;
//        - m2m-auth (the real CLI, logging at info to a file): token endpoint with
//          client_secret_basic and ES256, and introspection of an active token;
//        - node-oidc-provider 9 with the same grant, client authentication and ES256 JWT access
//          tokens (bench/oidc-provider-server.js);
//        - m2m-auth with --log-level warn, to show what the request log costs (no target);
//   3. m2m-auth latency and robustness: an open loop at half the token rate (p50/p99); one
//      request at a time on the idle server (p50); both again on hello-world, for reference; 1000 connections x 100 requests (failures,
//      max latency, RSS after; the project's own generator from dist/loadtest when built, else
//      wrk -c1000); 1000 sockets opened at once while wrk loads the server;
//   4. `serve --workers 1` and `--workers 2` (on a shared SQLite file), when the CLI has it;
//   5. federated clients (`federated_jwt`), when the server has trusted issuers: a local issuer
//      (OIDC discovery and a JWKS on loopback), a trust and a federated client; the token rate
//      with a platform token as client assertion, in interleaved rounds against its own floor,
//      1 / (1 / hello rate + one raw signature + one raw verification), hello-world getting the
//      same request body: the same platform token in every request (a projected service-account
//      token is reused until the kubelet replaces it), and, with wrk, a platform token never seen
//      before in every request (each GitHub Actions job's token; made here before each load). The
//      target is judged on the first-seen one, which pays the verification its floor counts.
//      `--federated-only` runs this step alone (about two minutes).
//   6. DPoP (RFC 9449), with wrk only: m2m-auth's token endpoint with a new ES256 proof per request
//      (made here before each load, bench/lib/dpop-proofs.js) against its own floor, 1 / (1 /
//      hello-world rate with a DPoP header of the same size + one raw signature + one raw
//      verification), in interleaved rounds as in step 2. `--dpop-only` runs this step alone.
// Each server's token response is checked to be an RFC 9068 JWT (signature, typ, iss, aud)
// before it is measured; a server that answers anything else stops the run.

import { spawnSync } from 'node:child_process';
import { createServer as createHttpServer } from 'node:http';
import { generateKeyPairSync, randomBytes, sign as rawSign } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { createLocalJWKSet, jwtVerify } from 'jose';
import pg from 'pg';
import { rawSignSeconds, rawSignVerifySeconds, rawVerifySeconds } from './lib/crypto-floor.js';
import { dpopKey, dpopProof, writeDpopProofs } from './lib/dpop-proofs.js';
import {
  firstJsonLine, freePort, haveTaskset, killAll, pinSelf, readMemory, runNodeJson, startNode, stop, waitForHttp,
} from './lib/processes.js';
import { checkTarget, floorRate, formatBytes, formatDuration, formatRate, formatRatio, table } from './lib/report.js';
import { median } from './lib/stats.js';
import { haveWrk, runWrk } from './lib/wrk.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const BENCH = (name) => join(ROOT, 'bench', name);
const USAGE = 'usage: node bench/run.js [--quick] [--json results.json] [--no-pin] [--skip-oidc] [--no-loadtest] [--federated-only | --dpop-only] --server <m2m-auth dist/cli/main.js> --sign-only <sign-only-server.js>';

const SERVER_CPU = 0;
const LOAD_CPU = 1;
const CONNECTIONS = 64;
const RESOURCE = 'https://orders.example.com';
const SCOPE = 'orders:read orders:write';
const TOKEN_BODY = new URLSearchParams({ grant_type: 'client_credentials', scope: SCOPE, resource: RESOURCE }).toString();
/** Rates of one server that vary more than this between rounds mean the machine was not quiet. */
const MAX_SPREAD = 0.15;

const PLANS = {
  full: {
    signMs: 1500, roundSignMs: 400, warmupS: 3, rounds: 5, roundS: 3, openLoopS: 10, sequential: 2000,
    perConnection: 100, manyMaxS: 60, burstLoadS: 8, burstDelayMs: 2000, watchdogS: 480,
  },
  quick: {
    signMs: 300, roundSignMs: 100, warmupS: 1, rounds: 2, roundS: 1, openLoopS: 3, sequential: 300,
    perConnection: 10, manyMaxS: 20, burstLoadS: 4, burstDelayMs: 1500, watchdogS: 180,
  },
};

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'string' },
    'no-pin': { type: 'boolean', default: false },
    'skip-oidc': { type: 'boolean', default: false },
    'no-loadtest': { type: 'boolean', default: false },
    'federated-only': { type: 'boolean', default: false },
    'dpop-only': { type: 'boolean', default: false },
    server: { type: 'string' },
    'sign-only': { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
/** The server's command (its CLI's entry) and its sign-only reference, as given. */
const CLI = args.server === undefined ? '' : resolve(args.server);
const SIGN_ONLY = args['sign-only'] === undefined ? '' : resolve(args['sign-only']);

function log(msg) {
  process.stderr.write(`${msg}\n`);
}

/** RFC 6749 §2.3.1: client_id and secret form-encoded, then HTTP Basic. */
function basic(id, secret) {
  return `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/** The hello-world server gets the same request bytes as a token endpoint: a Basic header of the same length. */
const SAME_SIZE_BASIC = basic(`cl_${'x'.repeat(16)}`, `m2m_cs_${'x'.repeat(43)}`);

/** Environment for children: without M2M_AUTH_* from the caller's shell, so flags alone configure the server. */
function cleanEnv(extra = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('M2M_AUTH_') && !k.startsWith('BENCH_')) env[k] = v;
  return { ...env, ...extra };
}

function formPost(target, body = target.body) {
  return fetch(target.url, {
    method: 'POST',
    headers: { ...(target.authorization !== undefined && { authorization: target.authorization }), 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
}

class Runner {
  constructor(plan, { pin, wrk }) {
    this.plan = plan;
    this.pin = pin;
    this.wrk = wrk;
    this.tmp = mkdtempSync(join(tmpdir(), 'm2m-auth-bench-'));
  }

  cpu(which) {
    return this.pin ? which : null;
  }

  /**
   * Closed-loop load: wrk when installed, else the undici generator. Times in seconds. A target
   * with `dpop` ({ key, htu, perSecond }) gets a new proof per request, and one with `bodies`
   * ({ write(file, count), perSecond }) a new body per request (wrk only): written before the load
   * for `perSecond` x `durationS` requests and more.
   */
  async load(target, { connections, durationS, timeoutS = 2, maxRequests }) {
    if (this.wrk) {
      const count = (perSecond) => Math.ceil(perSecond * (durationS + 1) * 1.5) + 1000;
      let dpopFile;
      let bodyFile;
      if (target.dpop) {
        dpopFile = join(this.tmp, 'dpop-proofs.txt');
        writeDpopProofs(dpopFile, target.dpop.key, target.dpop.htu, count(target.dpop.perSecond));
      }
      if (target.bodies) {
        bodyFile = join(this.tmp, 'bodies.txt');
        target.bodies.write(bodyFile, count(target.bodies.perSecond));
      }
      const r = await runWrk({ ...target, dpopFile, bodyFile, connections, durationS, timeoutS, maxRequests, cpu: this.cpu(LOAD_CPU) });
      const errors = r.socketErrors.connect + r.socketErrors.read + r.socketErrors.write + r.socketErrors.timeout;
      return { tool: 'wrk', rate: r.rate, requests: r.requests, elapsedS: r.elapsedS, non2xx: r.non2xx, errors, socketErrors: r.socketErrors, latency: r.latency };
    }
    const perConnection = maxRequests === undefined ? [] : ['--requests', String(Math.ceil(maxRequests / connections))];
    const r = await runNodeJson(
      [BENCH('open-loop.js'), '--mode', 'closed', '--url', target.url, '--connections', String(connections), '--duration', String(durationS), ...perConnection, '--json'],
      { cpu: this.cpu(LOAD_CPU), env: cleanEnv({ BENCH_BODY: target.body, BENCH_AUTHORIZATION: target.authorization ?? '' }), timeoutMs: (durationS + 60) * 1000 },
    );
    if (target.dpop || target.bodies) throw new Error('a new proof or body per request needs wrk');
    const s = (ms) => ms / 1000;
    return {
      tool: 'undici closed loop', rate: r.rate, requests: r.requests, elapsedS: r.elapsedS, non2xx: r.non2xx, errors: r.errors,
      latency: { avg: NaN, max: s(r.latency.max), p50: s(r.latency.p50), p75: NaN, p90: s(r.latency.p90), p99: s(r.latency.p99) },
    };
  }

  /** One measured closed-loop run; the rate counts successful (2xx) responses only. */
  async measure(label, target, durationS) {
    const r = await this.load(target, { connections: CONNECTIONS, durationS });
    const okShare = r.requests > 0 ? (r.requests - r.non2xx) / r.requests : 0;
    if (r.non2xx > 0 || r.errors > 0) log(`  WARNING ${label}: ${r.non2xx} non-2xx responses and ${r.errors} socket errors`);
    if (okShare < 0.99) throw new Error(`${label}: only ${(okShare * 100).toFixed(1)}% of the responses were 2xx; the rate would not be of ${label}`);
    return { ...r, okRate: r.rate * okShare };
  }

  /**
   * Rates of several servers at 64 connections: each warmed up once, then `rounds` rounds in
   * which every server gets `roundS` seconds in turn. Returns, per key, the median round rate
   * and the rounds themselves; `beforeRound` (optional) runs at the start of each round and its
   * results come back as `roundResults`, one per round.
   */
  async rates(entries, { beforeRound } = {}) {
    const { warmupS, rounds, roundS } = this.plan;
    const roundResults = [];
    for (const e of entries) {
      log(`  warm-up ${warmupS} s: ${e.label}`);
      await this.load(e.target, { connections: CONNECTIONS, durationS: warmupS });
    }
    const runs = Object.fromEntries(entries.map((e) => [e.key, []]));
    for (let round = 1; round <= rounds; round++) {
      if (beforeRound) roundResults.push(await beforeRound(round));
      for (const e of entries) {
        const m = await this.measure(e.label, e.target, roundS);
        runs[e.key].push(m);
        log(`  round ${round}/${rounds} ${e.label}: ${formatRate(m.okRate)}`);
      }
    }
    const out = {};
    for (const e of entries) {
      const okRates = runs[e.key].map((m) => m.okRate);
      const mid = median(okRates);
      out[e.key] = {
        label: e.label, okRate: mid, rounds: okRates, spread: (Math.max(...okRates) - Math.min(...okRates)) / mid,
        non2xx: runs[e.key].reduce((n, m) => n + m.non2xx, 0), errors: runs[e.key].reduce((n, m) => n + m.errors, 0),
      };
    }
    return { ...out, roundResults };
  }

  /** `like`: the request the hello-world server gets (the same bytes as the token request it is the floor of). */
  async startHello(like = { body: TOKEN_BODY, authorization: SAME_SIZE_BASIC }) {
    const proc = startNode([BENCH('hello-server.js')], { cpu: this.cpu(SERVER_CPU), env: cleanEnv() });
    const { url } = await firstJsonLine(proc);
    const target = { url: `${url}/hello`, body: like.body, authorization: like.authorization };
    const res = await formPost(target);
    if (res.status !== 200) throw new Error(`hello-server answered ${res.status}`);
    await res.arrayBuffer();
    return { proc, target };
  }

  /** The sign-only reference (--sign-only): the most a Fastify token endpoint does here. */
  async startSignOnly() {
    const proc = startNode([SIGN_ONLY], { cpu: this.cpu(SERVER_CPU), env: cleanEnv() });
    const info = await firstJsonLine(proc);
    const target = { url: `${info.url}/token`, body: TOKEN_BODY, authorization: SAME_SIZE_BASIC };
    await verifiedAccessToken('sign-only reference', target, info.issuer);
    return { proc, target };
  }

  /** `fileDb`: a SQLite file instead of sqlite::memory: (workers must share one database). */
  async startM2mAuth({ extraArgs = [], cpu = this.cpu(SERVER_CPU), fileDb = false } = {}) {
    const port = await freePort();
    const adminPort = await freePort();
    const dataDir = join(this.tmp, `m2m-auth-${port}`);
    mkdirSync(dataDir, { mode: 0o700 });
    const logFile = join(this.tmp, `m2m-auth-${port}.log`);
    const adminToken = randomBytes(32).toString('base64url');
    const fd = openSync(logFile, 'a', 0o600);
    const base = `http://127.0.0.1:${port}`;
    // As in production: logs at info, written to a file (stdout redirected), never to a terminal.
    const proc = startNode([
      CLI, 'serve', '--listen', `127.0.0.1:${port}`, '--admin-listen', `127.0.0.1:${adminPort}`, '--issuer', base,
      '--database-url', fileDb ? `sqlite:${join(dataDir, 'm2m-auth.db')}` : 'sqlite::memory:', '--data-dir', dataDir,
      ...(extraArgs.includes('--log-level') ? [] : ['--log-level', 'info']),
      // The benchmark's one client introspects far beyond the default per-caller limit.
      '--introspection-rate-limit', '0', ...extraArgs,
    ], { cpu, env: cleanEnv({ M2M_AUTH_ADMIN_TOKEN: adminToken }), stdout: fd });
    closeSync(fd);
    await waitForHttp(`${base}/readyz`, proc);
    const res = await fetch(`http://127.0.0.1:${adminPort}/admin/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      // rate_limit 0: the benchmark client is exempt from the per-client token rate limit.
      body: JSON.stringify({ client_name: 'bench', scope: SCOPE, audience: [RESOURCE], rate_limit: 0 }),
    });
    const created = await res.json();
    if (res.status !== 201 || typeof created.client_secret !== 'string') {
      throw new Error(`m2m-auth: registering the benchmark client failed with ${res.status}: ${JSON.stringify(created)}`);
    }
    const authorization = basic(created.client_id, created.client_secret);
    const m2m = {
      proc, base, issuer: base, logFile, adminUrl: `http://127.0.0.1:${adminPort}`, adminToken,
      token: { url: `${base}/oauth2/token`, body: TOKEN_BODY, authorization },
    };
    const { token } = await verifiedAccessToken(`m2m-auth ${extraArgs.join(' ')}`.trim(), m2m.token, m2m.issuer);
    m2m.introspect = { url: `${base}/oauth2/introspect`, body: `token=${token}`, authorization };
    return m2m;
  }

  async startOidcProvider() {
    const proc = startNode([BENCH('oidc-provider-server.js')], { cpu: this.cpu(SERVER_CPU), env: cleanEnv({ NODE_ENV: 'production' }) });
    const info = await firstJsonLine(proc);
    const target = { url: info.token_endpoint, body: TOKEN_BODY, authorization: basic(info.client_id, info.client_secret) };
    await verifiedAccessToken('node-oidc-provider', target, info.issuer);
    return { proc, target, version: info.version };
  }

  /**
   * N clients x M sequential requests with the project's own generator (src/loadtest), which
   * verifies every token; undefined when it is not built or fails (the caller uses wrk).
   */
  async loadtest(m2m, { clients, requests, boundS }) {
    try {
      const r = await runNodeJson([
        BENCH('loadtest-helper.js'), '--url', m2m.base, '--admin-url', m2m.adminUrl, '--clients', String(clients),
        '--requests', String(requests), '--duration-limit-ms', String(boundS * 1000),
      ], { cpu: this.cpu(LOAD_CPU), env: cleanEnv({ BENCH_ADMIN_TOKEN: m2m.adminToken }), timeoutMs: (boundS + 90) * 1000 });
      const us = (x) => x / 1e6;
      return {
        tool: 'm2m-auth loadtest (dist/loadtest)', rate: r.requestsPerSecond, requests: r.totalRequests, elapsedS: r.durationMs / 1000,
        non2xx: r.failures, errors: 0, notSent: r.notSent, failuresByCause: r.failuresByCause, failureSamples: r.failureSamples,
        latency: { avg: NaN, max: us(r.latencyUs.max), p50: us(r.latencyUs.p50), p75: NaN, p90: NaN, p99: us(r.latencyUs.p99) },
      };
    } catch (err) {
      log(`  m2m-auth loadtest not usable (${err.message.split('\n')[0]}); using ${this.wrk ? 'wrk' : 'the undici closed loop'}`);
      return undefined;
    }
  }

  cleanup() {
    killAll();
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

/**
 * Asks for one token and checks it is an RFC 9068 JWT access token signed with ES256 by a key of
 * the server's JWKS, for the right issuer and audience. Throws otherwise: the numbers of a
 * server that answers something else would measure the wrong thing.
 */
async function verifiedAccessToken(name, target, issuer) {
  const res = await formPost(target);
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  if (res.status !== 200 || typeof body?.access_token !== 'string') {
    throw new Error(`${name}: the token request answered ${res.status} without an access_token: ${text.slice(0, 300)}`);
  }
  try {
    const meta = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
    const jwks = await (await fetch(meta.jwks_uri)).json();
    const { payload, protectedHeader } = await jwtVerify(body.access_token, createLocalJWKSet(jwks), {
      issuer, audience: RESOURCE, typ: 'at+jwt', algorithms: ['ES256'],
    });
    for (const claim of ['sub', 'client_id', 'exp', 'iat', 'jti']) {
      if (payload[claim] === undefined) throw new Error(`the ${claim} claim is missing`);
    }
    return { token: body.access_token, header: protectedHeader, payload };
  } catch (err) {
    throw new Error(`${name}: the access token is not an RFC 9068 ES256 JWT from this issuer: ${err.message}`);
  }
}

function cliHas(args, needle) {
  const r = spawnSync(process.execPath, [CLI, ...args, '--help'], { encoding: 'utf8', timeout: 20_000 });
  return r.status === 0 && `${r.stdout}${r.stderr}`.includes(needle);
}

const FEDERATED_SUBJECT = 'system:serviceaccount:bench:loader';

/**
 * A platform token issuer on loopback: OIDC discovery and a JWKS over plain http, one ES256 key.
 * Its tokens are signed with raw node:crypto, fast enough to make tens of thousands before a load.
 */
async function startLocalIssuer() {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = randomBytes(8).toString('base64url');
  const jwks = JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' }] });
  const header = Buffer.from(JSON.stringify({ alg: 'ES256', kid, typ: 'JWT' })).toString('base64url');
  const signOptions = { key: privateKey, dsaEncoding: 'ieee-p1363' };
  let url = '';
  const server = createHttpServer((req, res) => {
    if (req.url === '/.well-known/openid-configuration') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer: url, jwks_uri: `${url}/openid/v1/jwks` }));
    } else if (req.url === '/openid/v1/jwks') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=3600' }).end(jwks);
    } else {
      res.writeHead(404).end();
    }
  });
  await new Promise((done) => server.listen(0, '127.0.0.1', done));
  url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    sign: (claims) => {
      const input = `${header}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}`;
      return `${input}.${rawSign('sha256', Buffer.from(input), signOptions).toString('base64url')}`;
    },
    close: () => new Promise((done) => server.close(done)),
  };
}

async function adminPost(m2m, path, body) {
  const res = await fetch(`${m2m.adminUrl}${path}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${m2m.adminToken}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: await res.json().catch(() => undefined) };
}

/**
 * Step 5: the federated token request against its floor, in interleaved rounds (a raw signature
 * and verification, hello-world with the same body, m2m-auth). Undefined when the server has no
 * trusted issuers yet.
 */
async function federatedStage(runner, plan, pin) {
  const issuer = await startLocalIssuer();
  try {
    const m2m = await runner.startM2mAuth({ extraArgs: ['--unsafe-federation-http-loopback', 'true'] });
    const trust = await adminPost(m2m, '/admin/trusted-issuers', {
      name: 'bench', kind: 'kubernetes', issuer: issuer.url, allowed_private_hosts: ['127.0.0.1'],
    });
    if (trust.status === 404) {
      await stop(m2m.proc);
      return undefined;
    }
    if (trust.status !== 201) throw new Error(`m2m-auth: creating the trust answered ${trust.status}: ${JSON.stringify(trust.body)}`);
    const client = await adminPost(m2m, '/admin/clients', {
      client_name: 'bench federated', scope: SCOPE, audience: [RESOURCE], rate_limit: 0,
      token_endpoint_auth_method: 'federated_jwt', federated_issuer: 'bench', federated_subject: FEDERATED_SUBJECT,
    });
    if (client.status !== 201) throw new Error(`m2m-auth: registering the federated client answered ${client.status}: ${JSON.stringify(client.body)}`);
    // A projected service-account token as the kubelet writes it (a jti of fixed length, so that
    // every token of the step, and so every request body, has the same length).
    const platformToken = (iat = Math.floor(Date.now() / 1000)) => issuer.sign({
      iss: issuer.url, sub: FEDERATED_SUBJECT, aud: [m2m.issuer], iat, nbf: iat, exp: iat + 3600, jti: randomBytes(16).toString('base64url'),
      'kubernetes.io': { namespace: 'bench', serviceaccount: { name: 'loader', uid: '5f0c8a7e-4c1d-4a6b-9d53-0b7e6f2a1c9d' } },
    });
    const bodyWith = (assertion) => new URLSearchParams({
      grant_type: 'client_credentials', scope: SCOPE, resource: RESOURCE, client_id: client.body.client_id,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion,
    }).toString();
    const body = bodyWith(platformToken());
    const target = { url: `${m2m.base}/oauth2/token`, body };
    await verifiedAccessToken('m2m-auth federated', target, m2m.issuer);
    const hello = await runner.startHello({ body });
    try {
      // A new platform token in every request: bodies of the reused one's length, made before each
      // load for more requests than the floor allows (a hello-world rate of 40,000/s, above this
      // machine's, and this machine's signature and verification).
      let firstSeen;
      if (runner.wrk) {
        const c = rawSignVerifySeconds('ES256', { durationMs: plan.roundSignMs });
        const perSecond = 1 / (1 / 40_000 + c.signS + c.verifyS);
        const write = (file, count) => {
          const iat = Math.floor(Date.now() / 1000);
          const lines = new Array(count);
          for (let i = 0; i < count; i++) lines[i] = bodyWith(platformToken(iat));
          if (lines.some((l) => l.length !== body.length)) throw new Error('a first-seen request body is not of the reused one\'s length');
          writeFileSync(file, lines.join('\n') + '\n');
        };
        firstSeen = { ...target, bodies: { write, perSecond } };
        await verifiedAccessToken('m2m-auth federated, first-seen token', { ...target, body: bodyWith(platformToken()) }, m2m.issuer);
      } else {
        log('  federated_jwt with a first-seen token in every request: skipped (needs wrk)');
      }
      const { roundResults, ...rates } = await runner.rates([
        { key: 'hello', label: 'hello-world POST, federated request body', target: hello.target },
        { key: 'federated', label: 'm2m-auth token, federated_jwt, reused platform token', target },
        ...(firstSeen ? [{ key: 'firstSeen', label: 'm2m-auth token, federated_jwt, first-seen platform token', target: firstSeen }] : []),
      ], {
        beforeRound: async (round) => {
          if (pin) pinSelf(SERVER_CPU);
          const c = rawSignVerifySeconds('ES256', { durationMs: plan.roundSignMs });
          if (pin) pinSelf(LOAD_CPU);
          log(`  round ${round}/${plan.rounds} raw signature ${formatDuration(c.signS)}, verification ${formatDuration(c.verifyS)}`);
          return c;
        },
      });
      const floors = roundResults.map((c, i) => 1 / (1 / rates.hello.rounds[i] + c.signS + c.verifyS));
      const ratios = floors.map((f, i) => rates.federated.rounds[i] / f);
      const firstSeenRatios = rates.firstSeen ? floors.map((f, i) => rates.firstSeen.rounds[i] / f) : undefined;
      return {
        ...rates, crypto: roundResults, floors, ratios, ratioMedian: median(ratios), bodyBytes: body.length,
        ...(firstSeenRatios && { firstSeenRatios, firstSeenRatioMedian: median(firstSeenRatios) }),
      };
    } finally {
      await Promise.all([stop(hello.proc), stop(m2m.proc)]);
    }
  } finally {
    await issuer.close();
  }
}

/**
 * Step 6: a DPoP token request (a new ES256 proof each) against its floor, in interleaved rounds
 * (a raw signature and verification, hello-world with a DPoP header, m2m-auth). `perSecond`: more
 * requests a second than the machine can make, to size the proof files. Undefined without wrk.
 */
async function dpopStage(runner, plan, pin, { hello, m2m, perSecond }) {
  if (!runner.wrk) {
    log('DPoP: skipped (needs wrk: its script sends a new proof per request)');
    return undefined;
  }
  log(`DPoP: ${plan.rounds} interleaved rounds of ${plan.roundS} s (a signature and a verification, hello-world with a DPoP header, m2m-auth with a new proof per request)`);
  const key = dpopKey();
  const htu = m2m.token.url;
  const check = await fetch(htu, {
    method: 'POST', body: m2m.token.body,
    headers: { authorization: m2m.token.authorization, 'content-type': 'application/x-www-form-urlencoded', dpop: dpopProof(key, htu) },
  });
  const answer = await check.json();
  if (check.status !== 200 || answer.token_type !== 'DPoP') throw new Error(`m2m-auth: a DPoP token request answered ${check.status} ${JSON.stringify(answer)}`);
  const entries = [
    // The same request bytes: a DPoP header of a proof's length that hello-world ignores.
    { key: 'helloDpop', label: 'hello-world POST with a DPoP header', target: { ...hello.target, dpopHeader: dpopProof(key, htu) } },
    { key: 'm2mDpop', label: 'm2m-auth token with DPoP', target: { ...m2m.token, dpop: { key, htu, perSecond } } },
  ];
  const { roundResults, ...rates } = await runner.rates(entries, {
    beforeRound: async (round) => {
      if (pin) pinSelf(SERVER_CPU);
      const signS = await rawSignSeconds('ES256', { durationMs: plan.roundSignMs });
      const verifyS = await rawVerifySeconds('ES256', { durationMs: plan.roundSignMs });
      if (pin) pinSelf(LOAD_CPU);
      log(`  round ${round}/${plan.rounds} raw signature ${formatDuration(signS)}, raw verification ${formatDuration(verifyS)}`);
      return { signS, verifyS };
    },
  });
  const floors = roundResults.map((c, i) => floorRate(rates.helloDpop.rounds[i], c.signS + c.verifyS));
  const ratios = floors.map((f, i) => rates.m2mDpop.rounds[i] / f);
  return { ...rates, rounds: roundResults, floors, ratios, ratioMedian: median(ratios) };
}

/** The DPoP step's line and its target. */
function reportDpop(d) {
  const target = { name: 'DPoP token endpoint / its floor (median of rounds)', target: 0.8, better: 'higher' };
  if (d === undefined) return [checkTarget({ ...target, value: null, note: 'DPoP needs wrk' })];
  const list = (xs, fmt) => xs.map(fmt).join(' / ');
  console.log(`DPoP round by round: hello-world with a DPoP header ${list(d.helloDpop.rounds, (x) => Math.round(x))} /s; `
    + `signature ${list(d.rounds, (c) => formatDuration(c.signS))}; verification ${list(d.rounds, (c) => formatDuration(c.verifyS))}; `
    + `floor ${list(d.floors, (x) => Math.round(x))} /s; m2m-auth ${list(d.m2mDpop.rounds, (x) => Math.round(x))} /s; `
    + `DPoP token / DPoP floor ${list(d.ratios, formatRatio)} (median ${formatRatio(d.ratioMedian)})`);
  return [checkTarget({ ...target, value: d.ratioMedian })];
}

/** The federated step's lines and its target. */
function reportFederated(f) {
  if (f === undefined) {
    console.log('federated clients: not available yet (no /admin/trusted-issuers in this build)');
    return [];
  }
  const list = (xs, fmt) => xs.map(fmt).join(' / ');
  console.log(`federated_jwt (a ${f.bodyBytes}-byte request with a projected service-account token, keys from a local issuer): `
    + `hello-world with the same body ${formatRate(f.hello.okRate)}; raw signature ${list(f.crypto, (c) => formatDuration(c.signS))}, `
    + `verification ${list(f.crypto, (c) => formatDuration(c.verifyS))}; floor = 1 / (1/hello + signature + verification) `
    + `${list(f.floors, (x) => Math.round(x))} /s`);
  console.log(`  reused platform token (verified twice, then its claims kept until exp): m2m-auth ${formatRate(f.federated.okRate)} `
    + `(rounds ${list(f.federated.rounds, (x) => Math.round(x))}); / floor ${list(f.ratios, formatRatio)} (median ${formatRatio(f.ratioMedian)})`);
  if (f.firstSeen === undefined) {
    console.log('  first-seen platform token: not measured (needs wrk)');
    return [checkTarget({ name: 'federated token / its floor (reused platform token; first-seen needs wrk)', value: f.ratioMedian, target: 0.8, better: 'higher' })];
  }
  console.log(`  first-seen platform token (a new one in every request): m2m-auth ${formatRate(f.firstSeen.okRate)} `
    + `(rounds ${list(f.firstSeen.rounds, (x) => Math.round(x))}); / floor ${list(f.firstSeenRatios, formatRatio)} (median ${formatRatio(f.firstSeenRatioMedian)})`);
  return [
    checkTarget({ name: 'federated token, first-seen platform token / its floor (median of rounds)', value: f.firstSeenRatioMedian, target: 0.8, better: 'higher' }),
    checkTarget({ name: 'federated token, reused platform token / its floor (median of rounds)', value: f.ratioMedian, target: 0.8, better: 'higher' }),
  ];
}

async function main() {
  if (args.help) {
    log(USAGE);
    return;
  }
  if (CLI === '' || SIGN_ONLY === '') throw new Error(`--server and --sign-only are required\n${USAGE}`);
  const plan = args.quick ? PLANS.quick : PLANS.full;
  const wrk = haveWrk();
  const cores = cpus().length;
  let pin = !args['no-pin'];
  if (pin && !haveTaskset()) {
    log('taskset not found (Debian: apt-get install util-linux): running unpinned');
    pin = false;
  }
  if (pin && cores < 2) {
    log('fewer than 2 cores: running unpinned');
    pin = false;
  }
  if (!wrk) log('wrk not found: install it with `apt-get install wrk`. Using the undici closed-loop generator instead (less efficient: rates are lower).');
  for (const file of [CLI, SIGN_ONLY]) {
    try {
      statSync(file);
    } catch {
      throw new Error(`${file} is missing: run \`npm run build\` first (npm run bench:http does)`);
    }
  }

  const startedAt = new Date();
  const loadStart = loadavg();
  const runner = new Runner(plan, { pin, wrk });
  const onSignal = () => {
    runner.cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const watchdog = setTimeout(() => {
    console.error(`bench/run.js: still running after ${plan.watchdogS} s; stopping.`);
    runner.cleanup();
    process.exit(1);
  }, plan.watchdogS * 1000);
  watchdog.unref();

  /** One step alone (--federated-only, --dpop-only): `measure` runs it, `report` prints its lines and returns its targets. */
  const stepAlone = async (key, title, measure, report) => {
    try {
      const result = await measure();
      console.log(`m2m-auth ${title} benchmark, ${startedAt.toISOString()}; ${cores} cores, Node ${process.version}; `
        + `${pin ? 'pinned' : 'NOT pinned'}; load average (1 min) at start ${loadStart[0].toFixed(2)}, at end ${loadavg()[0].toFixed(2)}`);
      const targets = report(result);
      for (const t of targets) console.log(t.line);
      if (args.json) writeFileSync(args.json, JSON.stringify({ [key]: result, targets: targets.map(({ line, ...rest }) => rest) }, null, 2) + '\n');
    } finally {
      runner.cleanup();
    }
  };

  if (args['federated-only']) {
    log(`federated_jwt: ${plan.rounds} interleaved rounds of ${plan.roundS} s against its floor`);
    await stepAlone('federated', 'federated', () => federatedStage(runner, plan, pin), reportFederated);
    return;
  }

  if (args['dpop-only']) {
    await stepAlone('dpop', 'DPoP', async () => {
      const hello = await runner.startHello();
      const m2m = await runner.startM2mAuth();
      // The proof files' size: this run's own floor without a verification, from a short load.
      const helloRate = (await runner.measure('hello-world POST', hello.target, 1)).okRate;
      if (pin) pinSelf(SERVER_CPU);
      const signS = await rawSignSeconds('ES256', { durationMs: plan.roundSignMs });
      if (pin) pinSelf(LOAD_CPU);
      const d = await dpopStage(runner, plan, pin, { hello, m2m, perSecond: floorRate(helloRate, signS) });
      await Promise.all([stop(hello.proc), stop(m2m.proc)]);
      return d;
    }, reportDpop);
    return;
  }

  const r = {
    startedAt: startedAt.toISOString(), node: process.version, cores, cpuModel: cpus()[0]?.model, pinned: pin,
    generator: wrk ? 'wrk' : 'undici', quick: args.quick, plan,
  };
  const signature = async (durationMs = plan.signMs) => {
    if (pin) pinSelf(SERVER_CPU);
    const s = await rawSignSeconds('ES256', { durationMs });
    if (pin) pinSelf(LOAD_CPU);
    return s;
  };
  try {
    log(`1/5 raw node:crypto ES256 signature (${plan.signMs} ms, on CPU ${SERVER_CPU})`);
    r.rawSignFirstS = await signature();
    log(`  ${formatDuration(r.rawSignFirstS)} per signature`);

    log(`2/5 rates at ${CONNECTIONS} connections: warm-up, then ${plan.rounds} interleaved rounds of ${plan.roundS} s`);
    const hello = await runner.startHello();
    const signOnly = await runner.startSignOnly();
    const m2m = await runner.startM2mAuth();
    const check = await formPost(m2m.introspect);
    const answer = await check.json();
    if (check.status !== 200 || answer.active !== true) throw new Error(`m2m-auth: introspection of a fresh token answered ${check.status} ${JSON.stringify(answer)}`);
    const quiet = await runner.startM2mAuth({ extraArgs: ['--log-level', 'warn'] });
    const oidc = args['skip-oidc'] ? undefined : await runner.startOidcProvider();
    r.oidcVersion = oidc?.version;
    // The same server on PostgreSQL (a schema of its own, dropped afterwards), when one is given.
    const pgUrl = process.env.BENCH_DATABASE_URL ?? process.env.M2M_AUTH_TEST_DATABASE_URL;
    const pgSchema = `m2m_bench_${randomBytes(6).toString('hex')}`;
    let onPg;
    if (pgUrl) {
      const c = new pg.Client({ connectionString: pgUrl });
      await c.connect();
      await c.query(`CREATE SCHEMA ${pgSchema}`);
      await c.end();
      const url = `${pgUrl}${pgUrl.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${pgSchema}`)}`;
      onPg = await runner.startM2mAuth({ extraArgs: ['--database-url', url] });
    } else {
      log('  PostgreSQL: skipped (set BENCH_DATABASE_URL or M2M_AUTH_TEST_DATABASE_URL)');
    }
    // The floor's two parts and the token endpoint back to back in every round (a signature, then
    // hello-world, then m2m-auth, then the sign-only reference): a VM whose speed drifts over
    // minutes gives each round its own floor, and the ratio is judged round by round.
    const entries = [
      { key: 'hello', label: 'hello-world POST', target: hello.target },
      { key: 'm2mToken', label: 'm2m-auth token', target: m2m.token },
      { key: 'signOnly', label: 'sign-only reference', target: signOnly.target },
      { key: 'introspection', label: 'm2m-auth introspection', target: m2m.introspect },
      ...(oidc ? [{ key: 'oidc', label: `oidc-provider ${oidc.version} token`, target: oidc.target }] : []),
      { key: 'm2mTokenQuiet', label: 'm2m-auth token, --log-level warn', target: quiet.token },
      ...(onPg ? [{ key: 'm2mTokenPg', label: 'm2m-auth token, PostgreSQL', target: onPg.token }] : []),
    ];
    const { roundResults, ...rates } = await runner.rates(entries, {
      beforeRound: async (round) => {
        const seconds = await signature(plan.roundSignMs);
        log(`  round ${round}/${plan.rounds} raw signature: ${formatDuration(seconds)}`);
        return seconds;
      },
    });
    Object.assign(r, rates);
    r.roundSignS = roundResults;

    // Step 6 (run here, while hello-world and m2m-auth are up): DPoP against its own floor.
    // Enough proofs for more than this machine could do: the floor of step 2 has no verification.
    r.dpop = await dpopStage(runner, plan, pin, { hello, m2m, perSecond: floorRate(r.hello.okRate, r.roundSignS[0]) });
    await Promise.all([stop(signOnly.proc), stop(quiet.proc), oidc && stop(oidc.proc), onPg && stop(onPg.proc)]);
    if (onPg) {
      const c = new pg.Client({ connectionString: pgUrl });
      await c.connect();
      await c.query(`DROP SCHEMA ${pgSchema} CASCADE`);
      await c.end();
    }

    log('3/5 m2m-auth latency and robustness');
    const openRate = Math.max(1, Math.floor(r.m2mToken.okRate / 2));
    log(`  open loop at ${openRate}/s (half the token rate) for ${plan.openLoopS} s`);
    const tokenEnv = cleanEnv({ BENCH_BODY: m2m.token.body, BENCH_AUTHORIZATION: m2m.token.authorization });
    // Each latency is measured on the hello-world server too, right after, with the same generator:
    // a reference, not a target, showing how much of a tail is the machine's own (a VM whose
    // neighbours take the core for tens of ms gives hello-world the same tail).
    const openLoop = (target) => runNodeJson(
      [BENCH('open-loop.js'), '--mode', 'open', '--url', target.url, '--rate', String(openRate), '--duration', String(plan.openLoopS), '--connections', String(CONNECTIONS), '--json'],
      { cpu: runner.cpu(LOAD_CPU), env: cleanEnv({ BENCH_BODY: target.body, BENCH_AUTHORIZATION: target.authorization }), timeoutMs: (plan.openLoopS + 60) * 1000 },
    );
    const oneAtATime = async (target) => {
      await sleep(500);
      return runNodeJson(
        [BENCH('open-loop.js'), '--mode', 'sequential', '--url', target.url, '--requests', String(plan.sequential), '--json'],
        { cpu: runner.cpu(LOAD_CPU), env: cleanEnv({ BENCH_BODY: target.body, BENCH_AUTHORIZATION: target.authorization }) },
      );
    };
    r.openLoop = await openLoop(m2m.token);
    log(`  open loop: p50 ${r.openLoop.latency.p50.toFixed(3)} ms, p99 ${r.openLoop.latency.p99.toFixed(3)} ms`);
    r.openLoopHello = await openLoop(hello.target);
    log(`  hello-world at the same rate: p50 ${r.openLoopHello.latency.p50.toFixed(3)} ms, p99 ${r.openLoopHello.latency.p99.toFixed(3)} ms`);

    log(`  one request at a time on the idle server (${plan.sequential} requests), then on hello-world`);
    r.sequential = await oneAtATime(m2m.token);
    r.sequentialHello = await oneAtATime(hello.target);
    await stop(hello.proc);
    log(`  idle: p50 ${r.sequential.latency.p50.toFixed(3)} ms (hello-world ${r.sequentialHello.latency.p50.toFixed(3)} ms)`);

    const total = 1000 * plan.perConnection;
    // Room for the whole run at a third of the measured token rate, within the plan's bound: the
    // generator verifies every token on its one core (about 6,000/s here), so a bound from the
    // server's rate alone would cut it short.
    const boundS = Math.min(plan.manyMaxS, Math.max(30, Math.ceil((total / r.m2mToken.okRate) * 3) + 5));
    // On a server of its own, as the origin report measures memory: its RSS before the load (with
    // one token issued) and right after. The server above has been through every other step, and
    // its heap holds what they left until V8's next full collection.
    log(`  1000 connections x ${plan.perConnection} requests (closed loop, at most ${boundS} s), on a new server`);
    const fresh = await runner.startM2mAuth();
    const before = readMemory(fresh.proc.pid);
    r.many = args['no-loadtest'] ? undefined : await runner.loadtest(fresh, { clients: 1000, requests: plan.perConnection, boundS });
    // wrk runs for a fixed time; the script stops its thread after `total` answers.
    r.many ??= await runner.load(fresh.token, { connections: 1000, durationS: boundS, timeoutS: 5, maxRequests: total });
    r.many.target = total;
    r.many.memory = { ...readMemory(fresh.proc.pid), before: before.rss };
    await stop(fresh.proc);
    r.many.memoryOfTheLongRunningServer = readMemory(m2m.proc.pid);
    log(`  ${r.many.requests} requests, max latency ${formatDuration(r.many.latency.max)}, RSS ${formatBytes(r.many.memory.before)} before, ${formatBytes(r.many.memory.rss)} after`);

    log(`  1000 sockets at once while the server is under load (${CONNECTIONS} connections)`);
    const background = runner.load(m2m.token, { connections: CONNECTIONS, durationS: plan.burstLoadS });
    await sleep(plan.burstDelayMs);
    r.burst = await runNodeJson(
      [BENCH('burst.js'), '--url', m2m.token.url, '--sockets', '1000', '--deadline-ms', '2000', '--json'],
      { cpu: runner.cpu(LOAD_CPU), env: tokenEnv },
    );
    r.burst.backgroundLoad = await background;
    r.memoryAtEnd = readMemory(m2m.proc.pid);
    log(`  burst: ${r.burst.answered} answered, ${r.burst.late} late, ${r.burst.failed} failed, max ${r.burst.latency.max?.toFixed(0)} ms`);
    await stop(m2m.proc);
    r.logBytes = statSync(m2m.logFile).size;
    if (r.logBytes === 0) log('  WARNING: m2m-auth wrote no log lines: was logging really on?');

    r.workersAvailable = cliHas(['serve'], '--workers');
    if (!r.workersAvailable) {
      log('4/5 workers: not available yet (`serve --workers` is not in this build)');
    } else {
      log('4/5 serve --workers 1 and --workers 2, interleaved');
      r.workers = {};
      const servers = {};
      try {
        for (const n of [1, 2]) {
          // One worker stays on the server's core; two get both cores (and share one with the
          // generator). Workers share a SQLite file: each would have its own sqlite::memory:.
          const cpu = !pin ? null : n === 1 ? String(SERVER_CPU) : `${SERVER_CPU},${LOAD_CPU}`;
          servers[n] = await runner.startM2mAuth({ extraArgs: ['--workers', String(n)], cpu, fileDb: true });
        }
        const workerRates = await runner.rates([1, 2].map((n) => ({ key: n, label: `m2m-auth token, --workers ${n}`, target: servers[n].token })));
        r.workers = { 1: workerRates[1], 2: workerRates[2] };
      } catch (err) {
        r.workers = { error: err.message };
        log(`  workers could not be measured: ${err.message}`);
      } finally {
        await Promise.all(Object.values(servers).map((s) => stop(s.proc)));
      }
    }

    log('5/5 federated clients (federated_jwt) against their floor');
    r.federated = await federatedStage(runner, plan, pin);

    log(`again: raw node:crypto ES256 signature (${plan.signMs} ms)`);
    r.rawSignLastS = await signature();
    r.rawSignS = (r.rawSignFirstS + r.rawSignLastS) / 2;
    r.floorRate = floorRate(r.hello.okRate, r.rawSignS);
    r.perRound = perRoundRatios(r);
  } finally {
    runner.cleanup();
  }

  r.loadAverage = { start: loadStart, end: loadavg() };
  report(r);
  if (args.json) writeFileSync(args.json, JSON.stringify(r, null, 2) + '\n');
}

/**
 * Each round's floor (its own signature and hello-world rate) and each round's ratios to it; the
 * medians of those are what the token target is judged on.
 */
function perRoundRatios(r) {
  const floors = r.roundSignS.map((signS, i) => floorRate(r.hello.rounds[i], signS));
  const token = floors.map((f, i) => r.m2mToken.rounds[i] / f);
  const signOnly = floors.map((f, i) => r.signOnly.rounds[i] / f);
  return { floors, token, signOnly, tokenMedian: median(token), signOnlyMedian: median(signOnly) };
}

/** Prints the measurements and the targets; keeps the judged targets in r.targets. */
function report(r) {
  const ms = (x) => (Number.isFinite(x) ? `${x.toFixed(3)} ms` : 'n/a');
  const perRequest = (rate) => formatDuration(1 / rate);
  const rounds = (x) => x.rounds.map((v) => Math.round(v)).join(' / ');
  const rateKeys = ['hello', 'signOnly', 'm2mToken', 'introspection', 'oidc', 'm2mTokenQuiet'].filter((k) => r[k]);
  const workerRates = r.workers?.[1] ? [r.workers[1], r.workers[2]] : [];
  const maxSpread = Math.max(...[...rateKeys.map((k) => r[k]), ...workerRates].map((x) => x.spread));
  const busy = r.loadAverage.start[0] > 0.5 || maxSpread > MAX_SPREAD;

  console.log('');
  console.log(`m2m-auth HTTP benchmark, ${r.startedAt}${r.quick ? ' (--quick)' : ''}`);
  console.log(`machine: ${r.cores} cores (${r.cpuModel}), Node ${r.node}; `
    + `${r.pinned ? `servers on CPU ${SERVER_CPU}, load generator on CPU ${LOAD_CPU}` : 'NOT pinned'}; generator: ${r.generator}`);
  console.log(`load average (1 min) at start ${r.loadAverage.start[0].toFixed(2)}, at end ${r.loadAverage.end[0].toFixed(2)}; `
    + `largest spread between rounds ${(maxSpread * 100).toFixed(0)}%`
    + (busy ? ': OTHER PROCESSES WERE RUNNING, these numbers are not final' : ''));
  console.log('');

  const rows = [
    ['raw node:crypto ES256 signature (in-process)', '', formatDuration(r.rawSignS), `${formatDuration(r.rawSignFirstS)} / ${formatDuration(r.rawSignLastS)}`],
    ['hello-world POST, Fastify', formatRate(r.hello.okRate), perRequest(r.hello.okRate), rounds(r.hello)],
    ['floor = 1 / (1/hello + 1 signature)', formatRate(r.floorRate), perRequest(r.floorRate), ''],
    ['sign-only reference (batched, no auth/log)', formatRate(r.signOnly.okRate), perRequest(r.signOnly.okRate), rounds(r.signOnly)],
    ['m2m-auth token, basic + ES256, info log', formatRate(r.m2mToken.okRate), perRequest(r.m2mToken.okRate), rounds(r.m2mToken)],
    ['m2m-auth introspection, active token', formatRate(r.introspection.okRate), perRequest(r.introspection.okRate), rounds(r.introspection)],
  ];
  if (r.oidc) rows.push([`oidc-provider ${r.oidcVersion} token, same setup`, formatRate(r.oidc.okRate), perRequest(r.oidc.okRate), rounds(r.oidc)]);
  rows.push(['m2m-auth token, --log-level warn', formatRate(r.m2mTokenQuiet.okRate), perRequest(r.m2mTokenQuiet.okRate), rounds(r.m2mTokenQuiet)]);
  if (r.dpop) {
    const d = r.dpop;
    const floor = median(d.floors);
    rows.push(['hello-world POST with a DPoP header', formatRate(d.helloDpop.okRate), perRequest(d.helloDpop.okRate), rounds(d.helloDpop)]);
    rows.push(['DPoP floor = 1 / (1/hello + 1 signature + 1 verification)', formatRate(floor), perRequest(floor), d.floors.map((x) => Math.round(x)).join(' / ')]);
    rows.push(['m2m-auth token with DPoP (ES256 proof)', formatRate(d.m2mDpop.okRate), perRequest(d.m2mDpop.okRate), rounds(d.m2mDpop)]);
  }
  if (r.m2mTokenPg) rows.push(['m2m-auth token, PostgreSQL (SQLite above)', formatRate(r.m2mTokenPg.okRate), perRequest(r.m2mTokenPg.okRate), rounds(r.m2mTokenPg)]);
  for (const [n, w] of workerRates.entries()) rows.push([`m2m-auth token, --workers ${n + 1} (SQLite file)`, formatRate(w.okRate), perRequest(w.okRate), rounds(w)]);
  console.log(table(['closed loop, 64 connections', 'rate', 'time/request', 'rounds (/s)'], rows));
  console.log('');

  const o = r.openLoop;
  console.log(`open loop at ${o.rate}/s for ${o.scheduled} requests (achieved ${formatRate(o.achievedRate)}; ${o.non2xx} non-2xx, ${o.errors} errors): `
    + `p50 ${ms(o.latency.p50)}, p90 ${ms(o.latency.p90)}, p99 ${ms(o.latency.p99)}, max ${ms(o.latency.max)}; `
    + `generator lateness p99 ${ms(o.sendLag.p99)}`);
  const oh = r.openLoopHello;
  console.log(`  hello-world at the same rate, for reference: p50 ${ms(oh.latency.p50)}, p90 ${ms(oh.latency.p90)}, p99 ${ms(oh.latency.p99)}, `
    + `max ${ms(oh.latency.max)}; generator lateness p99 ${ms(oh.sendLag.p99)}`);
  const s = r.sequential;
  console.log(`idle, one at a time (${s.requests} requests): p50 ${ms(s.latency.p50)}, p99 ${ms(s.latency.p99)}; `
    + `hello-world for reference: p50 ${ms(r.sequentialHello.latency.p50)}, p99 ${ms(r.sequentialHello.latency.p99)}`);
  const m = r.many;
  const manyFailures = m.failuresByCause ? `${m.non2xx} failed ${JSON.stringify(m.failuresByCause)}, ${m.notSent} not sent in time`
    : `${m.non2xx} non-2xx, ${m.errors} socket errors${m.socketErrors ? ` ${JSON.stringify(m.socketErrors)}` : ''}`;
  console.log(`1000 connections x ${m.target / 1000} requests: ${m.requests} answered (${m.tool}; `
    + `${m.failuresByCause ? `in ${formatDuration(m.elapsedS)}` : `bounded at ${formatDuration(m.elapsedS)}`}); ${manyFailures}; `
    + `p50 ${formatDuration(m.latency.p50)}, p99 ${formatDuration(m.latency.p99)}, max ${formatDuration(m.latency.max)}; `
    + `server RSS ${formatBytes(m.memory.before)} before, ${formatBytes(m.memory.rss)} after (peak ${formatBytes(m.memory.peak)}); `
    + `the server of the other steps: RSS ${formatBytes(m.memoryOfTheLongRunningServer.rss)}`);
  const b = r.burst;
  console.log(`1000 sockets at once under load: ${b.answered} answered (${b.ok} 2xx), ${b.late} after 2 s, ${b.refused} refused, `
    + `${b.failed} failed ${JSON.stringify(b.errorCodes)}; complete answers p50 ${ms(b.latency.p50)}, max ${ms(b.latency.max)}; `
    + `background load ${formatRate(b.backgroundLoad.rate)}; listen queue overflows ${b.listenOverflows}`
    + (b.listenOverflows > 0 ? ' (the listen backlog is smaller than the storm: those clients wait for a SYN retransmission, 1 s or more)' : ''));
  console.log(`m2m-auth request log written: ${formatBytes(r.logBytes)}`);
  if (!r.workersAvailable) console.log('workers: not available yet');
  else if (r.workers?.error) console.log(`workers: could not be measured: ${r.workers.error}`);
  else console.log(`workers: 2 workers / 1 worker = ${formatRatio(r.workers[2].okRate / r.workers[1].okRate)} `
    + '(2 cores: the second worker shares CPU 1 with the load generator)');
  console.log(`request log cost: token rate with --log-level warn / with info = ${formatRatio(r.m2mTokenQuiet.okRate / r.m2mToken.okRate)}`);
  console.log(`sign-only reference / floor = ${formatRatio(r.signOnly.okRate / r.floorRate)} (the most a Fastify token endpoint scores on this machine); `
    + `m2m-auth token / sign-only reference = ${formatRatio(r.m2mToken.okRate / r.signOnly.okRate)}`);
  const pr = r.perRound;
  const list = (xs) => xs.map((x) => formatRatio(x)).join(' / ');
  console.log(`round by round (a signature, hello-world, m2m-auth and the sign-only reference back to back): `
    + `signature ${r.roundSignS.map((x) => formatDuration(x)).join(' / ')}; floor ${pr.floors.map((x) => Math.round(x)).join(' / ')} /s; `
    + `token / floor ${list(pr.token)} (median ${formatRatio(pr.tokenMedian)}); sign-only / floor ${list(pr.signOnly)} (median ${formatRatio(pr.signOnlyMedian)})`);
  console.log(`token / floor from the medians of the whole stage (rates above): ${formatRatio(r.m2mToken.okRate / r.floorRate)}`);
  const federatedTargets = reportFederated(r.federated);
  const dpopTargets = reportDpop(r.dpop);
  console.log('');

  const burstBad = b.sockets - b.ok + b.late;
  const targets = [
    checkTarget({ name: 'token endpoint / floor (median of rounds)', value: pr.tokenMedian, target: 0.8, better: 'higher' }),
    ...dpopTargets,
    checkTarget({
      name: 'm2m-auth / oidc-provider (token endpoint)', value: r.oidc ? r.m2mToken.okRate / r.oidc.okRate : null, target: 3.5, better: 'higher',
      ...(r.oidc ? {} : { note: 'oidc-provider skipped' }),
    }),
    checkTarget({ name: 'introspection / hello-world POST', value: r.introspection.okRate / r.hello.okRate, target: 0.6, better: 'higher' }),
    checkTarget({
      name: `1000x${m.target / 1000}: failed requests`, value: m.non2xx + m.errors, target: 0, better: 'at-most', format: String,
      ...(m.requests < m.target ? { note: `only ${m.requests} of ${m.target} done within the time bound` } : {}),
    }),
    checkTarget({ name: `1000x${m.target / 1000}: max latency`, value: m.latency.max, target: 1, better: 'lower', format: formatDuration }),
    checkTarget({ name: `1000x${m.target / 1000}: server RSS after`, value: m.memory.rss, target: 150e6, better: 'lower', format: formatBytes }),
    checkTarget({ name: '1000 sockets at once: stalled > 2 s or refused', value: burstBad, target: 0, better: 'at-most', format: String }),
    checkTarget({ name: 'open loop at half max rate: p99', value: o.latency.p99 / 1000, target: 0.005, better: 'lower', format: formatDuration }),
    checkTarget({ name: 'idle, one at a time: p50', value: s.latency.p50 / 1000, target: 0.0003, better: 'lower', format: formatDuration }),
    ...federatedTargets,
  ];
  console.log('targets:');
  for (const t of targets) console.log(t.line);
  r.targets = targets.map(({ line, ...rest }) => rest);
}

main().catch((err) => {
  console.error(`bench/run.js failed: ${err instanceof Error ? err.message : err}`);
  killAll();
  process.exitCode = 1;
});
