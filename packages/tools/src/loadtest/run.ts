// The load generator: N virtual clients, each sending M sequential requests over its own
// keep-alive connection (an undici Pool with one connection per virtual client), as real
// registered OAuth clients, against one server URL. Every response is checked (a verifiable
// RFC 9068 token, or an active RFC 7662 introspection answer for the right client); anything else
// is a failure counted once under its cause. Latency is the request time only: from sending the
// request to having read the whole body; checking the answer happens outside that window.

import { performance } from 'node:perf_hooks';
import { buildConnector, Pool } from 'undici';
import { errorCause, errorDetail, httpCause } from './causes.js';
import { LatencyRecorder, type HistogramBin, type LatencySummary } from './latency.js';
import { TokenChecker, type JwkSet } from './token-check.js';

export type LoadTestMode = 'token' | 'introspect' | 'mixed';
export const LOAD_TEST_MODES: readonly LoadTestMode[] = ['token', 'introspect', 'mixed'];

export interface ClientCredentials {
  clientId: string;
  clientSecret: string;
}

export interface LoadTestProgress {
  completed: number;
  planned: number;
  successes: number;
  failures: number;
  elapsedMs: number;
}

export interface LoadTestOptions {
  /** The issuer URL of the server under test; the only origin the load goes to. */
  url: string;
  /** Registered clients to use (client_secret_basic). */
  credentials?: ClientCredentials[];
  /** Or an admin API to register `clientCount` clients on (deleted again at the end). */
  admin?: { url: string; token: string };
  /** Concurrent virtual clients, one keep-alive connection each. Default 1000. */
  clients?: number;
  /** Sequential requests per virtual client. Default 100. */
  requests?: number;
  /** Distinct OAuth clients to register through `admin`. Default 10. */
  clientCount?: number;
  mode?: LoadTestMode;
  /** Per request (headers, then body). Default 10 000 ms. */
  timeoutMs?: number;
  /** No new request starts after this. Default 120 000 ms. */
  durationLimitMs?: number;
  /** Requested as `resource` and expected in `aud`. */
  audience?: string;
  /** Expected `iss`; default the `issuer` of the server's RFC 8414 metadata. */
  issuer?: string;
  /** Get one token per client before the load, so bad credentials stop the test early. Default true. */
  preflight?: boolean;
  onProgress?: (progress: LoadTestProgress) => void;
  progressIntervalMs?: number;
  /** Width of a throughput timeline slot. Default 250 ms. */
  timelineIntervalMs?: number;
  /** Stops starting new requests (the ones in flight finish). */
  signal?: AbortSignal;
  /**
   * Open loop: requests are sent at this many per second in all (each virtual client keeps its
   * share of the schedule), whatever the answers; latency counts from the scheduled time, so a
   * request that waited for its connection counts its wait. Default: closed loop (each virtual
   * client sends its next request when the last one is answered).
   */
  ratePerSecond?: number;
  /** Check the signature and claims of one token in this many (the others: status and shape only). Default 1: every token. */
  verifyOneIn?: number;
  /** Runs after setup, right before the first measured request (profilers start here). */
  beforeLoad?: () => unknown;
  /** Runs after the last measured request, before the connections close. */
  afterLoad?: () => unknown;
}

export interface LoadTestResult {
  mode: LoadTestMode;
  url: string;
  issuer: string;
  config: {
    clients: number;
    requests: number;
    clientCount: number;
    timeoutMs: number;
    durationLimitMs: number;
    /** Keep-alive connections open when the measured load started. */
    connections: number;
    /** Open loop at this rate; absent for a closed loop. */
    ratePerSecond?: number;
    /** One token in this many was verified. */
    verifyOneIn: number;
  };
  /** Opening the connections before the load (not measured). */
  warmUpMs: number;
  startedAt: string;
  /** First request sent to last response read. */
  durationMs: number;
  planned: number;
  /** Requests sent and finished (successes + failures). */
  totalRequests: number;
  /** Planned requests never sent because the duration limit passed or the run was stopped. */
  notSent: number;
  stoppedBy: 'completed' | 'duration_limit' | 'aborted';
  requestsPerSecond: number;
  successes: number;
  failures: number;
  failuresByCause: Record<string, number>;
  /** The first detail seen for each cause. */
  failureSamples: Record<string, string>;
  /** Microseconds, over every finished request (successes and failures). */
  latencyUs: LatencySummary;
  latencyByOperation: Partial<Record<'token' | 'introspect', LatencySummary>>;
  histogram: HistogramBin[];
  timeline: { intervalMs: number; completed: number[]; failed: number[] };
}

export class LoadTestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LoadTestError';
  }
}

const DEFAULTS = {
  clients: 1000,
  requests: 100,
  clientCount: 10,
  timeoutMs: 10_000,
  durationLimitMs: 120_000,
  progressIntervalMs: 250,
  timelineIntervalMs: 250,
} as const;

export const LOADTEST_AUDIENCE = 'https://loadtest.m2m-auth.invalid';
const LOADTEST_SCOPE = 'loadtest';
const FORM = 'application/x-www-form-urlencoded';
// Connection attempts in flight at once. A burst of a thousand SYNs overflows a listen backlog
// (Node's default is 511) and the dropped ones come back seconds later as TCP retransmissions,
// which would measure the kernel's retry timer instead of the server.
const MAX_PARALLEL_CONNECTS = 64;

function positiveInt(value: number, name: string, max: number): number {
  if (!Number.isInteger(value) || value < 1 || value > max) throw new LoadTestError(`${name} must be a whole number from 1 to ${max}, got ${value}`);
  return value;
}

/** RFC 6749 §2.3.1: client_id and secret are form-encoded before Basic encoding. */
export function basicAuthorization(c: ClientCredentials): string {
  const enc = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');
  return `Basic ${Buffer.from(`${enc(c.clientId)}:${enc(c.clientSecret)}`).toString('base64')}`;
}

interface Target {
  issuer: string;
  tokenPath: string;
  introspectionPath: string | undefined;
  jwksPath: string;
}

interface HttpAnswer {
  status: number;
  text: string;
}

async function request(pool: Pool, method: 'GET' | 'POST' | 'DELETE', path: string, headers: Record<string, string>, body?: string): Promise<HttpAnswer> {
  const res = await pool.request({ method, path, headers, ...(body !== undefined && { body }) });
  return { status: res.statusCode, text: await res.body.text() };
}

function jsonObject(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** The path of an endpoint URL, sent to the origin under test whatever host the metadata names. */
function pathOf(endpoint: unknown, name: string): string {
  if (typeof endpoint !== 'string') throw new LoadTestError(`The server metadata has no ${name}`);
  try {
    const u = new URL(endpoint);
    return u.pathname + u.search;
  } catch {
    throw new LoadTestError(`The server metadata ${name} is not a URL: ${endpoint}`);
  }
}

async function discover(pool: Pool, base: URL, issuerOverride: string | undefined): Promise<Target> {
  const prefix = base.pathname.replace(/\/+$/, '');
  // RFC 8414 §3.1: the well-known segment goes between the host and the issuer's path.
  const candidates = [`/.well-known/oauth-authorization-server${prefix}`];
  if (prefix !== '') candidates.push(`${prefix}/.well-known/oauth-authorization-server`);
  let lastError = '';
  for (const path of candidates) {
    let answer: HttpAnswer;
    try {
      answer = await request(pool, 'GET', path, { accept: 'application/json' });
    } catch (err) {
      throw new LoadTestError(`Cannot reach ${base.origin}: ${errorDetail(err)}`);
    }
    if (answer.status !== 200) {
      lastError = `GET ${path} answered ${answer.status}`;
      continue;
    }
    const metadata = jsonObject(answer.text);
    if (metadata === undefined || typeof metadata.issuer !== 'string') throw new LoadTestError(`GET ${path} is not RFC 8414 metadata`);
    return {
      issuer: issuerOverride ?? metadata.issuer,
      tokenPath: pathOf(metadata.token_endpoint, 'token_endpoint'),
      introspectionPath: metadata.introspection_endpoint === undefined ? undefined : pathOf(metadata.introspection_endpoint, 'introspection_endpoint'),
      jwksPath: pathOf(metadata.jwks_uri, 'jwks_uri'),
    };
  }
  throw new LoadTestError(`Cannot read the server metadata: ${lastError}`);
}

async function fetchJwks(pool: Pool, path: string): Promise<JwkSet> {
  const answer = await request(pool, 'GET', path, { accept: 'application/json' });
  const jwks = jsonObject(answer.text);
  if (answer.status !== 200 || jwks === undefined || !Array.isArray(jwks.keys)) throw new LoadTestError(`GET ${path} did not return a JWK Set (status ${answer.status})`);
  return jwks as unknown as JwkSet;
}

interface RegisteredClients {
  credentials: ClientCredentials[];
  remove(): Promise<void>;
}

async function registerClients(admin: { url: string; token: string }, count: number, audience: string): Promise<RegisteredClients> {
  const base = new URL(admin.url);
  const prefix = base.pathname.replace(/\/+$/, '');
  const pool = new Pool(base.origin, { connections: 4 });
  const headers = { authorization: `Bearer ${admin.token}`, 'content-type': 'application/json', accept: 'application/json' };
  const credentials: ClientCredentials[] = [];
  const remove = async (): Promise<void> => {
    try {
      for (const c of credentials) {
        await request(pool, 'DELETE', `${prefix}/admin/clients/${encodeURIComponent(c.clientId)}`, { authorization: headers.authorization }).catch(() => undefined);
      }
    } finally {
      await pool.close();
    }
  };
  try {
    for (let i = 0; i < count; i++) {
      let answer: HttpAnswer;
      try {
        answer = await request(pool, 'POST', `${prefix}/admin/clients`, headers, JSON.stringify({
          client_name: `m2m-auth loadtest ${i + 1}`,
          scope: LOADTEST_SCOPE,
          audience: [audience],
          // A load test measures capacity, not the per-client token rate limit (0 = none).
          rate_limit: 0,
        }));
      } catch (err) {
        throw new LoadTestError(`Cannot reach the admin API at ${base.origin}: ${errorDetail(err)}`);
      }
      const body = jsonObject(answer.text);
      if (answer.status !== 201 || typeof body?.client_id !== 'string' || typeof body.client_secret !== 'string') {
        const message = typeof body?.message === 'string' ? `: ${body.message}` : '';
        throw new LoadTestError(`The admin API refused to register a load-test client (status ${answer.status}${message})`);
      }
      credentials.push({ clientId: body.client_id, clientSecret: body.client_secret });
    }
  } catch (err) {
    await remove();
    throw err;
  }
  return { credentials, remove };
}

/** undici's connector with at most `limit` connection attempts in flight. */
function limitedConnector(timeoutMs: number, limit: number): buildConnector.connector {
  const connect = buildConnector({ timeout: timeoutMs });
  let active = 0;
  const waiting: Array<() => void> = [];
  return (options, callback) => {
    const attempt = (): void => {
      active++;
      connect(options, (err, socket) => {
        active--;
        waiting.shift()?.();
        if (err === null) callback(null, socket!);
        else callback(err, null);
      });
    };
    if (active < limit) attempt();
    else waiting.push(attempt);
  };
}

/** Counters shared by the virtual clients. */
class Tally {
  successes = 0;
  failures = 0;
  completed = 0;
  readonly causes = new Map<string, number>();
  readonly samples = new Map<string, string>();
  readonly slotsCompleted: number[] = [];
  readonly slotsFailed: number[] = [];

  constructor(private readonly t0: number, private readonly intervalMs: number) {}

  slot(at: number): number {
    return Math.max(0, Math.floor((at - this.t0) / this.intervalMs));
  }

  finished(slot: number): void {
    this.completed++;
    this.slotsCompleted[slot] = (this.slotsCompleted[slot] ?? 0) + 1;
  }

  success(): void {
    this.successes++;
  }

  failure(cause: string, slot: number, detail: string): void {
    this.failures++;
    this.causes.set(cause, (this.causes.get(cause) ?? 0) + 1);
    if (!this.samples.has(cause)) this.samples.set(cause, detail.slice(0, 200));
    this.slotsFailed[slot] = (this.slotsFailed[slot] ?? 0) + 1;
  }
}

function dense(slots: number[], length: number): number[] {
  return Array.from({ length }, (_, i) => slots[i] ?? 0);
}

export async function runLoadTest(options: LoadTestOptions): Promise<LoadTestResult> {
  const clients = positiveInt(options.clients ?? DEFAULTS.clients, 'clients', 100_000);
  const requests = positiveInt(options.requests ?? DEFAULTS.requests, 'requests', 10_000_000);
  const timeoutMs = positiveInt(options.timeoutMs ?? DEFAULTS.timeoutMs, 'timeout', 3_600_000);
  const durationLimitMs = positiveInt(options.durationLimitMs ?? DEFAULTS.durationLimitMs, 'duration limit', 86_400_000);
  const verifyOneIn = positiveInt(options.verifyOneIn ?? 1, 'verify one in', 1_000_000);
  const rate = options.ratePerSecond;
  if (rate !== undefined && !(rate > 0 && Number.isFinite(rate))) throw new LoadTestError(`the rate must be a positive number of requests per second, got ${rate}`);
  const intervalMs = positiveInt(options.timelineIntervalMs ?? DEFAULTS.timelineIntervalMs, 'timeline interval', 60_000);
  const mode = options.mode ?? 'token';
  if (!LOAD_TEST_MODES.includes(mode)) throw new LoadTestError(`mode must be one of ${LOAD_TEST_MODES.join(', ')}`);
  let base: URL;
  try {
    base = new URL(options.url);
  } catch {
    throw new LoadTestError(`--url must be an absolute URL, got ${JSON.stringify(options.url)}`);
  }
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new LoadTestError('--url must be an http or https URL');
  if ((options.credentials === undefined || options.credentials.length === 0) === (options.admin === undefined)) {
    throw new LoadTestError('Give either client credentials or an admin API to register load-test clients with');
  }
  const clientCount = options.admin !== undefined
    ? positiveInt(options.clientCount ?? DEFAULTS.clientCount, 'client count', 1000)
    : options.credentials!.length;
  if (clientCount > clients) throw new LoadTestError(`client count (${clientCount}) must not exceed the number of virtual clients (${clients})`);

  const pool = new Pool(base.origin, {
    connections: clients,
    pipelining: 1,
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
    connect: limitedConnector(timeoutMs, MAX_PARALLEL_CONNECTS),
    keepAliveTimeout: 60_000,
  });
  let registered: RegisteredClients | undefined;
  try {
    const target = await discover(pool, base, options.issuer);
    if (mode !== 'token' && target.introspectionPath === undefined) throw new LoadTestError('The server metadata has no introspection_endpoint');
    const checker = new TokenChecker(await fetchJwks(pool, target.jwksPath), () => fetchJwks(pool, target.jwksPath));

    let audience = options.audience;
    let credentials: ClientCredentials[];
    if (options.admin !== undefined) {
      audience ??= LOADTEST_AUDIENCE;
      registered = await registerClients(options.admin, clientCount, audience);
      credentials = registered.credentials;
    } else {
      credentials = options.credentials!;
    }

    const tokenBody = audience !== undefined && options.admin === undefined
      ? `grant_type=client_credentials&resource=${encodeURIComponent(audience)}`
      : 'grant_type=client_credentials';
    // The same headers for both endpoints: RFC 6749 §2.3.1 Basic authentication of a form POST.
    const clientHeaders = credentials.map((c) => ({ authorization: basicAuthorization(c), 'content-type': FORM, accept: 'application/json' }));

    // One token per client before the load: checks the credentials, and is what introspection asks about.
    const firstTokens: Array<string | undefined> = [];
    if (options.preflight !== false || mode !== 'token') {
      for (let i = 0; i < credentials.length; i++) {
        const c = credentials[i]!;
        let answer: HttpAnswer;
        try {
          answer = await request(pool, 'POST', target.tokenPath, clientHeaders[i]!, tokenBody);
        } catch (err) {
          throw new LoadTestError(`The first token request of ${c.clientId} failed: ${errorDetail(err)}`);
        }
        const body = answer.status === 200 ? jsonObject(answer.text) : undefined;
        const rejection = body === undefined ? undefined : await checker.check(body.access_token, { issuer: target.issuer, clientId: c.clientId, audience });
        if (body === undefined || rejection !== undefined) {
          const why = answer.status !== 200 ? httpCause(answer.status, answer.text) : body === undefined ? 'bad_json' : `bad_token_${rejection}`;
          throw new LoadTestError(`The first token request of ${c.clientId} failed (${why}); check the credentials, --url and --audience`);
        }
        firstTokens.push(body.access_token as string);
      }
    }

    // One keep-alive connection per virtual client, opened before the clock starts: `clients`
    // concurrent GETs make the pool open `clients` connections.
    const warmStart = performance.now();
    const warm = await Promise.allSettled(Array.from({ length: clients }, () => request(pool, 'GET', target.jwksPath, { accept: 'application/json' })));
    const warmFailure = warm.find((w): w is PromiseRejectedResult => w.status === 'rejected');
    if (warmFailure !== undefined) throw new LoadTestError(`Opening ${clients} connections failed: ${errorDetail(warmFailure.reason)}`);
    const warmUpMs = performance.now() - warmStart;
    const connections = pool.stats.connected;

    await options.beforeLoad?.();
    const t0 = performance.now();
    const startedAt = new Date().toISOString();
    const tally = new Tally(t0, intervalMs);
    const all = new LatencyRecorder(Math.min(clients * requests, 1 << 20));
    const byOperation = { token: new LatencyRecorder(), introspect: new LatencyRecorder() };
    let stoppedBy: LoadTestResult['stoppedBy'] = 'completed';
    let lastResponseAt = t0;
    const stop = (why: 'duration_limit' | 'aborted'): void => {
      if (stoppedBy === 'completed') stoppedBy = why;
    };
    const limitTimer = setTimeout(() => stop('duration_limit'), durationLimitMs);
    const onAbort = (): void => stop('aborted');
    if (options.signal?.aborted) onAbort();
    options.signal?.addEventListener('abort', onAbort, { once: true });
    const progress = (): void => options.onProgress?.({
      completed: tally.completed, planned: clients * requests, successes: tally.successes, failures: tally.failures, elapsedMs: performance.now() - t0,
    });
    const progressTimer = options.onProgress ? setInterval(progress, options.progressIntervalMs ?? DEFAULTS.progressIntervalMs) : undefined;

    const expectations = credentials.map((c) => ({ issuer: target.issuer, clientId: c.clientId, audience }));

    const virtualClient = async (index: number): Promise<void> => {
      const k = index % credentials.length;
      const expect = expectations[k]!;
      let latestToken = firstTokens[k];
      // At most one token check in flight per virtual client: bounded work, and the next request is not delayed by it.
      let pendingCheck: Promise<void> | undefined;
      for (let r = 0; r < requests && stoppedBy === 'completed'; r++) {
        const op: 'token' | 'introspect' = mode === 'mixed' ? (r % 2 === 0 ? 'token' : 'introspect') : mode;
        const path = op === 'token' ? target.tokenPath : target.introspectionPath!;
        const body = op === 'token' ? tokenBody : `token=${encodeURIComponent(latestToken ?? '')}`;
        const headers = clientHeaders[k]!;
        let start = performance.now();
        if (rate !== undefined) {
          const scheduled = t0 + ((r * clients + index) / rate) * 1000;
          if (scheduled > start + 1) await new Promise((done) => setTimeout(done, scheduled - start));
          if (stoppedBy !== 'completed') break;
          // From the scheduled time (a request sent late counts its wait), or from the send when it went early.
          start = Math.min(scheduled, performance.now());
        }
        let answer: HttpAnswer | undefined;
        let thrown: unknown;
        try {
          const res = await pool.request({ method: 'POST', path, headers, body });
          answer = { status: res.statusCode, text: await res.body.text() };
        } catch (err) {
          thrown = err;
        }
        const end = performance.now();
        if (end > lastResponseAt) lastResponseAt = end;
        const us = (end - start) * 1000;
        all.record(us);
        byOperation[op].record(us);
        const slot = tally.slot(end);
        tally.finished(slot);

        if (answer === undefined) {
          tally.failure(errorCause(thrown), slot, errorDetail(thrown));
          continue;
        }
        if (answer.status !== 200) {
          tally.failure(httpCause(answer.status, answer.text), slot, `HTTP ${answer.status}: ${answer.text.slice(0, 120)}`);
          continue;
        }
        const json = jsonObject(answer.text);
        if (json === undefined) {
          tally.failure('bad_json', slot, `HTTP 200 with a body that is not a JSON object: ${answer.text.slice(0, 120)}`);
          continue;
        }
        if (op === 'introspect') {
          if (json.active === false) tally.failure('introspection_inactive', slot, 'active: false');
          else if (json.active !== true) tally.failure('bad_introspection_response', slot, 'no boolean active member');
          else if (json.client_id !== expect.clientId) tally.failure('bad_introspection_client_id', slot, `client_id ${String(json.client_id)}, expected ${expect.clientId}`);
          else tally.success();
          continue;
        }
        const token = json.access_token;
        if (typeof token !== 'string' || typeof json.token_type !== 'string' || json.token_type.toLowerCase() !== 'bearer') {
          tally.failure('bad_token_response', slot, 'no access_token, or token_type is not Bearer');
          continue;
        }
        if ((r * clients + index) % verifyOneIn !== 0) {
          tally.success();
          latestToken = token;
          continue;
        }
        await pendingCheck;
        pendingCheck = checker.check(token, expect).then((rejection) => {
          if (rejection === undefined) {
            tally.success();
            latestToken = token;
          } else {
            tally.failure(`bad_token_${rejection}`, slot, `the access token failed the ${rejection} check`);
          }
        });
      }
      await pendingCheck;
    };

    try {
      await Promise.all(Array.from({ length: clients }, (_, i) => virtualClient(i)));
    } finally {
      clearTimeout(limitTimer);
      if (progressTimer !== undefined) clearInterval(progressTimer);
      options.signal?.removeEventListener('abort', onAbort);
    }
    progress();
    await options.afterLoad?.();

    const durationMs = lastResponseAt - t0;
    const total = tally.successes + tally.failures;
    const slots = Math.max(tally.slotsCompleted.length, tally.slotsFailed.length);
    const latencyByOperation: LoadTestResult['latencyByOperation'] = {};
    if (byOperation.token.count > 0) latencyByOperation.token = byOperation.token.summary();
    if (byOperation.introspect.count > 0) latencyByOperation.introspect = byOperation.introspect.summary();
    return {
      mode,
      url: options.url,
      issuer: target.issuer,
      config: { clients, requests, clientCount: credentials.length, timeoutMs, durationLimitMs, connections, ...(rate !== undefined && { ratePerSecond: rate }), verifyOneIn },
      warmUpMs,
      startedAt,
      durationMs,
      planned: clients * requests,
      totalRequests: total,
      notSent: clients * requests - total,
      stoppedBy,
      requestsPerSecond: durationMs > 0 ? total / (durationMs / 1000) : 0,
      successes: tally.successes,
      failures: tally.failures,
      failuresByCause: Object.fromEntries([...tally.causes].sort((a, b) => b[1] - a[1])),
      failureSamples: Object.fromEntries(tally.samples),
      latencyUs: all.summary(),
      latencyByOperation,
      histogram: all.histogram(),
      timeline: { intervalMs, completed: dense(tally.slotsCompleted, slots), failed: dense(tally.slotsFailed, slots) },
    };
  } finally {
    try {
      await registered?.remove();
    } finally {
      await pool.close().catch(() => pool.destroy());
    }
  }
}
