// GET /metrics on the admin listener of a real server: counters and histograms move with token,
// introspection and revocation traffic; label values stay bounded; the gauges read the key ring,
// the client cache, storage and the change-log sync. ServerMetrics on its own with in-memory fakes
// for what a real server cannot easily be made to do (storage down, sync far behind).

import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventBus } from '../../src/observability/events.js';
import {
  DEFAULT_MAX_CLIENT_LABELS, LATENCY_BUCKETS, OTHER_CLIENT, ServerMetrics, UNKNOWN_CLIENT, type MetricsSources,
} from '../../src/observability/metrics.js';
import { basic, startTestServer, type TestServer } from '../helpers/server.js';
import { find, parseExposition, scrape, value, type Exposition } from '../deploy/exposition.js';

const P = 'm2m_auth_';
const LATENCY = `${P}http_request_duration_seconds`;

function randomClientId(): string {
  return 'cl_' + randomBytes(12).toString('base64url');
}

/** Checks a histogram series is well formed and returns its count. */
function histogramCount(exp: Exposition, name: string, labels: Record<string, string>): number {
  const buckets = find(exp, `${name}_bucket`, labels);
  expect(buckets.length, `${name} ${JSON.stringify(labels)}`).toBeGreaterThan(0);
  const bounds = buckets.map((b) => (b.labels.le === '+Inf' ? Infinity : Number(b.labels.le)));
  expect(bounds).toEqual([...bounds].sort((a, b) => a - b));
  const counts = buckets.map((b) => b.value);
  for (let i = 1; i < counts.length; i++) expect(counts[i]).toBeGreaterThanOrEqual(counts[i - 1]!);
  const count = value(exp, `${name}_count`, labels);
  expect(counts[counts.length - 1]).toBe(count);
  expect(bounds[bounds.length - 1]).toBe(Infinity);
  if (count > 0) expect(value(exp, `${name}_sum`, labels)).toBeGreaterThan(0);
  return count;
}

describe('/metrics of a real server after traffic', () => {
  let t: TestServer;
  let ids: { a: string; b: string };
  let before: Exposition;
  let after: Exposition;
  let response: Awaited<ReturnType<typeof scrape>>;
  const TOKENS_A = 3;
  const WRONG_SECRET_A = 2;
  const UNKNOWN_IDS = 4;

  beforeAll(async () => {
    t = await startTestServer();
    const a = await t.client();
    const b = await t.client();
    ids = { a: a.clientId, b: b.clientId };
    // The server reads its own two client.created changes back from the change log and, as for any
    // change it reads, drops those clients from its cache: one extra miss whenever the poll timer
    // happens to fire during the traffic below ("expected 5, got 6"). The read is done here, before
    // the counting starts, and both clients are cached again, so the traffic meets a settled cache.
    await t.server.sync.poll();
    await t.server.clients.get(a.clientId);
    await t.server.clients.get(b.clientId);
    before = (await scrape(t)).exp;

    const tokens: string[] = [];
    for (let i = 0; i < TOKENS_A; i++) {
      const res = await t.token(a.clientId, a.clientSecret);
      expect(res.statusCode).toBe(200);
      tokens.push(JSON.parse(res.body).access_token);
    }
    expect((await t.token(b.clientId, b.clientSecret)).statusCode).toBe(200);
    for (let i = 0; i < WRONG_SECRET_A; i++) expect((await t.token(a.clientId, 'm2m_cs_wrong')).statusCode).toBe(401);
    // Well-formed ids that are not registered, and ids of another shape: label "unknown", never the id.
    for (let i = 0; i < UNKNOWN_IDS; i++) expect((await t.token(randomClientId(), 'x')).statusCode).toBe(401);
    expect((await t.token('not-an-id', 'x')).statusCode).toBe(401);
    expect((await t.token(a.clientId, a.clientSecret, { scope: 'admin:everything' })).statusCode).toBe(400);
    expect((await t.post('/oauth2/token', { grant_type: 'password' })).statusCode).toBe(400);

    const authA = { authorization: basic(a.clientId, a.clientSecret) };
    expect(JSON.parse((await t.post('/oauth2/introspect', { token: tokens[0]! }, authA)).body).active).toBe(true);
    expect(JSON.parse((await t.post('/oauth2/introspect', { token: 'garbage' }, authA)).body).active).toBe(false);
    expect((await t.post('/oauth2/revoke', { token: tokens[1]! }, authA)).statusCode).toBe(200);
    expect(JSON.parse((await t.post('/oauth2/introspect', { token: tokens[1]! }, authA)).body).active).toBe(false);
    expect((await t.inject({ method: 'GET', url: '/oauth2/jwks' })).statusCode).toBe(200);
    expect((await t.inject({ method: 'GET', url: '/no/such/path' })).statusCode).toBe(404);

    response = await scrape(t);
    after = response.exp;
  });

  afterAll(async () => {
    await t?.close();
  });

  it('answers without the admin token in the Prometheus text format, while the admin API still wants it', async () => {
    expect(response.status).toBe(200);
    expect(response.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect((await t.server.adminApp.inject({ method: 'GET', url: '/admin/clients' })).statusCode).toBe(401);
    // Only on the admin listener.
    expect((await t.inject({ method: 'GET', url: '/metrics' })).statusCode).toBe(404);
  });

  it('counts issued tokens per client', () => {
    expect(value(before, `${P}tokens_issued_total`, { client_id: ids.a })).toBe(0);
    expect(value(after, `${P}tokens_issued_total`, { client_id: ids.a })).toBe(TOKENS_A);
    expect(value(after, `${P}tokens_issued_total`, { client_id: ids.b })).toBe(1);
    expect(find(after, `${P}tokens_issued_total`).map((s) => s.labels.client_id).sort()).toEqual([ids.a, ids.b].sort());
  });

  it('counts refused token requests by error, naming only registered clients', () => {
    const denied = `${P}tokens_denied_total`;
    expect(value(after, denied, { client_id: ids.a, error: 'invalid_client' })).toBe(WRONG_SECRET_A);
    expect(value(after, denied, { client_id: UNKNOWN_CLIENT, error: 'invalid_client' })).toBe(UNKNOWN_IDS + 1);
    expect(value(after, denied, { client_id: ids.a, error: 'invalid_scope' })).toBe(1);
    expect(value(after, denied, { client_id: UNKNOWN_CLIENT, error: 'unsupported_grant_type' })).toBe(1);
    const labelled = new Set(find(after, denied).map((s) => s.labels.client_id));
    expect([...labelled].sort()).toEqual([ids.a, UNKNOWN_CLIENT].sort());
  });

  it('counts introspection answers and revocations', () => {
    expect(value(after, `${P}introspections_total`, { active: 'true' })).toBe(1);
    expect(value(after, `${P}introspections_total`, { active: 'false' })).toBe(2);
    expect(value(before, `${P}tokens_revoked_total`)).toBe(0);
    expect(value(after, `${P}tokens_revoked_total`)).toBe(1);
    expect(value(after, `${P}events_total`, { type: 'token.revoked' })).toBe(1);
    expect(value(after, `${P}events_total`, { type: 'client.created' })).toBe(2);
    expect(value(after, `${P}events_total`, { type: 'token.issued' })).toBe(TOKENS_A + 1);
  });

  it('observes the latency of every public request by route, method and status class', () => {
    const token = { route: '/oauth2/token', method: 'POST' };
    expect(histogramCount(after, LATENCY, { ...token, status_class: '2xx' })).toBe(TOKENS_A + 1);
    // 2 wrong secrets + 5 unknown ids (401), invalid_scope and unsupported_grant_type (400).
    expect(histogramCount(after, LATENCY, { ...token, status_class: '4xx' })).toBe(WRONG_SECRET_A + UNKNOWN_IDS + 1 + 2);
    expect(histogramCount(after, LATENCY, { route: '/oauth2/introspect', method: 'POST', status_class: '2xx' })).toBe(3);
    expect(histogramCount(after, LATENCY, { route: '/oauth2/revoke', method: 'POST', status_class: '2xx' })).toBe(1);
    expect(histogramCount(after, LATENCY, { route: '/oauth2/jwks', method: 'GET', status_class: '2xx' })).toBe(1);
    // Unknown paths share one label value instead of one per path.
    expect(histogramCount(after, LATENCY, { route: 'unmatched', method: 'GET', status_class: '4xx' })).toBe(1);
    expect(find(after, `${LATENCY}_count`).some((s) => s.labels.route === '/no/such/path')).toBe(false);
  });

  it('has buckets fine enough for a p50 under 1 ms and a p99 under 20 ms', () => {
    const bounds = find(after, `${LATENCY}_bucket`, { route: '/oauth2/token', method: 'POST', status_class: '2xx' })
      .map((b) => b.labels.le);
    expect(bounds).toEqual([...LATENCY_BUCKETS.map(String), '+Inf']);
    expect(LATENCY_BUCKETS.filter((b) => b < 0.001).length).toBeGreaterThanOrEqual(4);
    for (const bound of [0.001, 0.005, 0.02, 0.05]) expect(LATENCY_BUCKETS).toContain(bound);
  });

  it('counts client cache hits and misses, and times the store reads of the misses', () => {
    const hits = value(after, `${P}client_cache_hits_total`) - value(before, `${P}client_cache_hits_total`);
    const misses = value(after, `${P}client_cache_misses_total`) - value(before, `${P}client_cache_misses_total`);
    // Registered clients are cached when created: every request of a and b is a hit.
    expect(hits).toBeGreaterThanOrEqual(TOKENS_A + 1 + WRONG_SECRET_A + 1 + 4);
    // The unknown ids (and "not-an-id") are read from the store every time: unknown ids are never cached.
    expect(misses).toBe(UNKNOWN_IDS + 1);
    expect(histogramCount(after, `${P}storage_operation_duration_seconds`, { operation: 'client_lookup' })).toBe(value(after, `${P}client_cache_misses_total`));
    expect(value(after, `${P}client_cache_entries`)).toBe(2);
  });

  it('reports storage up, its ping latency and the sync lag', () => {
    expect(value(after, `${P}storage_up`)).toBe(1);
    expect(histogramCount(after, `${P}storage_operation_duration_seconds`, { operation: 'ping' })).toBeGreaterThanOrEqual(1);
    const lag = value(after, `${P}sync_lag_seconds`);
    expect(lag).toBeGreaterThanOrEqual(0);
    expect(lag).toBeLessThan(5);
  });

  it('reports the signing keys, the active key age against the server clock and rotation failures', async () => {
    expect(value(after, `${P}signing_keys`, { status: 'active' })).toBe(1);
    expect(value(after, `${P}signing_keys`, { status: 'pending' })).toBe(0);
    expect(value(after, `${P}signing_keys`, { status: 'revoked' })).toBe(0);
    expect(value(after, `${P}signing_key_rotation_interval_seconds`)).toBe(t.config.keyRotationInterval);
    const age = value(after, `${P}signing_key_age_seconds`);
    t.clock.advance(1000_000);
    const later = (await scrape(t)).exp;
    expect(value(later, `${P}signing_key_age_seconds`) - age).toBeCloseTo(1000, 3);

    expect(value(later, `${P}signing_key_rotation_failures_total`)).toBe(0);
    t.server.events.emit('key.rotation_failed', { error: 'storage said no' });
    expect(value((await scrape(t)).exp, `${P}signing_key_rotation_failures_total`)).toBe(1);
  });

  it('exports the process metrics: memory, heap, GC pauses with fine buckets, event loop, handles', () => {
    for (const name of [
      'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_p99_seconds',
      'nodejs_active_handles_total', 'process_cpu_seconds_total',
    ]) {
      expect(after.families.has(P + name), name).toBe(true);
    }
    expect(value(after, `${P}process_resident_memory_bytes`)).toBeGreaterThan(10 * 1024 * 1024);
    expect(after.families.get(`${P}nodejs_gc_duration_seconds`)).toBe('histogram');
    expect(after.families.get(`${P}nodejs_eventloop_busy_seconds_total`)).toBe('counter');
    expect(value(after, `${P}nodejs_eventloop_busy_seconds_total`)).toBeGreaterThan(0);
    // Nothing outside our prefix: the global registry's metrics are not mixed in.
    expect([...after.families.keys()].filter((n) => !n.startsWith(P))).toEqual([]);
  });
});

describe('several servers in one process', () => {
  it('each has its own counters and both serve the process metrics', async () => {
    const one = await startTestServer();
    const two = await startTestServer();
    try {
      const c = await one.client();
      expect((await one.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
      const [a, b] = [(await scrape(one)).exp, (await scrape(two)).exp];
      expect(value(a, `${P}tokens_issued_total`, { client_id: c.clientId })).toBe(1);
      expect(find(b, `${P}tokens_issued_total`)).toEqual([]);
      expect(b.families.has(`${P}process_resident_memory_bytes`)).toBe(true);
    } finally {
      await one.close();
      await two.close();
    }
  });
});

describe('ServerMetrics with in-memory sources', () => {
  function fakeSources(overrides: Partial<MetricsSources> = {}): MetricsSources & { ping: { fail: boolean; calls: number } } {
    const ping = { fail: false, calls: 0 };
    return {
      events: new EventBus(),
      keys: { list: () => [] },
      clients: { cacheSize: 0, cacheStats: { hits: 0, misses: 0 }, observeStoreReads: () => undefined },
      storage: {
        ping: async () => {
          ping.calls++;
          if (ping.fail) throw new Error('connection refused');
        },
      },
      syncLastSuccess: () => Date.now(),
      keyRotationIntervalSeconds: 0,
      ...overrides,
      ping,
    };
  }

  async function read(metrics: ServerMetrics): Promise<Exposition> {
    return parseExposition(await metrics.text());
  }

  it('storage_up follows the periodic ping', async () => {
    const sources = fakeSources();
    const metrics = new ServerMetrics(sources, { storageProbeIntervalMs: 20 });
    metrics.start();
    try {
      expect(value(await read(metrics), `${P}storage_up`)).toBe(1);
      sources.ping.fail = true;
      const calls = sources.ping.calls;
      await expect.poll(async () => value(await read(metrics), `${P}storage_up`), { timeout: 2000 }).toBe(0);
      expect(sources.ping.calls).toBeGreaterThan(calls);
      sources.ping.fail = false;
      await expect.poll(async () => value(await read(metrics), `${P}storage_up`), { timeout: 2000 }).toBe(1);
    } finally {
      await metrics.stop();
    }
    // Stopped: no more pings.
    const calls = sources.ping.calls;
    await new Promise((r) => setTimeout(r, 100));
    expect(sources.ping.calls).toBe(calls);
  });

  it('sync_lag_seconds is the time since the change log was last read', async () => {
    const metrics = new ServerMetrics(fakeSources({ syncLastSuccess: () => Date.now() - 42_000 }));
    const lag = value(await read(metrics), `${P}sync_lag_seconds`);
    expect(lag).toBeGreaterThanOrEqual(42);
    expect(lag).toBeLessThan(43);
    await metrics.stop();
  });

  it('key age is 0 and the active count 0 when no key signs', async () => {
    const keys = {
      list: () => [
        { status: 'retired', activatesAt: 0 }, { status: 'pending', activatesAt: Date.now() + 1000 }, { status: 'revoked', activatesAt: 0 },
      ],
    };
    const metrics = new ServerMetrics(fakeSources({ keys }));
    const exp = await read(metrics);
    expect(value(exp, `${P}signing_key_age_seconds`)).toBe(0);
    expect(value(exp, `${P}signing_keys`, { status: 'active' })).toBe(0);
    expect(value(exp, `${P}signing_keys`, { status: 'pending' })).toBe(1);
    expect(value(exp, `${P}signing_keys`, { status: 'retired' })).toBe(1);
    expect(value(exp, `${P}signing_keys`, { status: 'revoked' })).toBe(1);
    await metrics.stop();
  });

  it('bounds the client_id label values; the rest are counted under "other"', async () => {
    const sources = fakeSources();
    const metrics = new ServerMetrics(sources, { maxClientLabels: 3 });
    const issued = (clientId: string) =>
      sources.events.emit('token.issued', { clientId, jti: 'j', scope: '', aud: [], exp: 0, kid: 'k' });
    const clients = Array.from({ length: 5 }, randomClientId);
    for (const c of clients) issued(c);
    issued(clients[0]!);
    issued(clients[4]!);
    const exp = await read(metrics);
    const series = find(exp, `${P}tokens_issued_total`);
    expect(series.map((s) => s.labels.client_id)).toEqual([clients[0], clients[1], clients[2], OTHER_CLIENT]);
    expect(value(exp, `${P}tokens_issued_total`, { client_id: clients[0]! })).toBe(2);
    expect(value(exp, `${P}tokens_issued_total`, { client_id: OTHER_CLIENT })).toBe(3);
    expect(DEFAULT_MAX_CLIENT_LABELS).toBeGreaterThanOrEqual(100);
    await metrics.stop();
  });

  it('stop() unsubscribes from the events', async () => {
    const sources = fakeSources();
    const metrics = new ServerMetrics(sources);
    sources.events.emit('token.revoked', { clientId: 'cl_aaaaaaaaaaaaaaaa', jti: 'j' });
    await metrics.stop();
    sources.events.emit('token.revoked', { clientId: 'cl_aaaaaaaaaaaaaaaa', jti: 'j' });
    expect(value(await read(metrics), `${P}tokens_revoked_total`)).toBe(1);
  });
});
