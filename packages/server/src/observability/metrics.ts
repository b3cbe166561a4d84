// Prometheus metrics (text exposition format 0.0.4, prom-client) for one server, in a registry of
// its own: the core's typed events counted, the public listener's latency per route, and gauges
// read at scrape time from the key ring, the client cache, storage and the change-log sync.
//
// The token hot path pays a Map lookup and an increment: counts and latency buckets live in plain
// numbers here and are handed to prom-client only when /metrics is scraped.

import { performance } from 'node:perf_hooks';
import type { FastifyInstance } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { hasIssuedClientIdShape } from '../ground/client-id.js';
import { EVENT_NAMES, type EventBus } from './events.js';
import { clusterMetricsText, inClusterWorker, offerWorkerMetrics } from './metrics-relay.js';

export const METRIC_PREFIX = 'm2m_auth_';

/**
 * Request latency buckets in seconds: several below 1 ms (a p50 there is the norm), 20 ms (the
 * p99 target) and 50 ms (the HighLatency alert) are bucket bounds, so those quantiles are exact.
 */
export const LATENCY_BUCKETS: readonly number[] = [
  0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1,
];

/** Storage round trips: a local SQLite read takes microseconds, a remote PostgreSQL query milliseconds. */
export const STORAGE_BUCKETS: readonly number[] = [
  0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
];

/** GC pauses: the KPI is under 10 ms, the HighGCPause alert counts pauses over 100 ms. */
export const GC_BUCKETS: readonly number[] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];

/** Distinct client_id label values per counter; later ids are counted under "other". */
export const DEFAULT_MAX_CLIENT_LABELS = 1000;
export const DEFAULT_STORAGE_PROBE_INTERVAL_MS = 10_000;
const STORAGE_PROBE_TIMEOUT_MS = 5_000;
/** Distinct error label values of tokens_denied_total (RFC 6749 has a handful). */
const MAX_ERROR_LABELS = 32;

/** client_id label of a request whose client is not known (or whose id is not one of ours). */
export const UNKNOWN_CLIENT = 'unknown';
/** client_id label once DEFAULT_MAX_CLIENT_LABELS ids are labelled. */
export const OTHER_CLIENT = 'other';
// The reason authenticate() gives for an id that is not registered: such ids are not labelled
// either, or a flood of random well-formed ids would take every label slot.
const UNKNOWN_CLIENT_REASON = 'unknown client';

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']);
const STATUS_CLASSES = ['1xx', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;
const KEY_STATUSES = ['pending', 'active', 'retired', 'revoked'] as const;

/** What the gauges read at scrape time; the server's own objects satisfy these. */
export interface MetricsSources {
  events: EventBus;
  keys: { list(): ReadonlyArray<{ status: string; activatesAt: number }> };
  clients: {
    readonly cacheSize: number;
    readonly cacheStats: { hits: number; misses: number };
    observeStoreReads(observer: (seconds: number) => void): void;
  };
  storage: { ping(): Promise<void> };
  /** When the change log was last read successfully (epoch ms, wall clock). */
  syncLastSuccess: () => number;
  /** M2M_AUTH_KEY_ROTATION_INTERVAL, seconds; 0 = automatic rotation off. */
  keyRotationIntervalSeconds: number;
  /** Seconds since each trusted issuer's keys were last fetched (the federation key cache); none when absent. */
  trustKeyAges?: () => Array<{ trust: string; ageSeconds: number }>;
}

export interface MetricsOptions {
  /** Clock of the key ring (epoch ms); default Date.now. */
  now?: () => number;
  maxClientLabels?: number;
  storageProbeIntervalMs?: number;
}

/** Counts per label value in plain numbers, at most `limit` values (then `overflow`). */
class BoundedCounts {
  readonly #cells = new Map<string, { n: number }>();
  readonly #limit: number;
  readonly #overflow: string;

  constructor(limit: number, overflow: string) {
    this.#limit = limit;
    this.#overflow = overflow;
  }

  /** Adds one under `value`; `label` maps a value seen for the first time to its label value. */
  inc(value: string, label: (value: string) => string = (v) => v): void {
    const cell = this.#cells.get(value);
    if (cell !== undefined) {
      cell.n++;
      return;
    }
    this.#cellFor(label(value)).n++;
  }

  #cellFor(labelValue: string): { n: number } {
    let cell = this.#cells.get(labelValue);
    if (cell !== undefined) return cell;
    if (this.#cells.size >= this.#limit && labelValue !== this.#overflow) return this.#cellFor(this.#overflow);
    cell = { n: 0 };
    this.#cells.set(labelValue, cell);
    return cell;
  }

  entries(): IterableIterator<[string, { n: number }]> {
    return this.#cells.entries();
  }
}

class LatencySeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;
  constructor(readonly labels: Readonly<Record<string, string>>, buckets: number) {
    this.counts = new Float64Array(buckets + 1);
  }
}

interface ExposedValue {
  value: number;
  labels: Record<string, string | number>;
  metricName: string;
}

/**
 * A histogram with its buckets in typed arrays, observed without allocating. It implements what a
 * prom-client Registry asks of a metric (name, help, type, get(), reset()) and is rendered by it.
 */
class RequestLatencyHistogram {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly labelNames = ['route', 'method', 'status_class'];
  readonly #bounds: readonly number[];
  readonly #routes = new Map<string, Map<string, Array<LatencySeries | undefined>>>();

  constructor(name: string, help: string, bounds: readonly number[]) {
    this.name = name;
    this.help = help;
    this.#bounds = bounds;
  }

  observe(route: string, method: string, status: number, seconds: number): void {
    let methods = this.#routes.get(route);
    if (methods === undefined) {
      methods = new Map();
      this.#routes.set(route, methods);
    }
    const m = METHODS.has(method) ? method : 'other';
    let classes = methods.get(m);
    if (classes === undefined) {
      classes = [];
      methods.set(m, classes);
    }
    const c = Math.min(5, Math.max(1, Math.floor(status / 100)));
    const series = (classes[c] ??= new LatencySeries({ route, method: m, status_class: STATUS_CLASSES[c]! }, this.#bounds.length));
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && seconds > bounds[i]!) i++;
    series.counts[i]!++;
    series.sum += seconds;
    series.count++;
  }

  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: ExposedValue[] }> {
    const values: ExposedValue[] = [];
    for (const methods of this.#routes.values()) {
      for (const classes of methods.values()) {
        for (const s of classes) {
          if (s === undefined) continue;
          let cumulative = 0;
          this.#bounds.forEach((le, i) => {
            cumulative += s.counts[i]!;
            values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le }, value: cumulative });
          });
          values.push({ metricName: `${this.name}_bucket`, labels: { ...s.labels, le: '+Inf' }, value: s.count });
          values.push({ metricName: `${this.name}_sum`, labels: { ...s.labels }, value: s.sum });
          values.push({ metricName: `${this.name}_count`, labels: { ...s.labels }, value: s.count });
        }
      }
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    this.#routes.clear();
  }
}

// Process-wide metrics (memory, GC, event loop, handles) exist once per process whatever the number
// of servers in it; prom-client's collectors cannot be stopped, so they are started once.
let processRegistry: Registry | undefined;

function processMetrics(): Registry {
  if (processRegistry) return processRegistry;
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: METRIC_PREFIX, gcDurationBuckets: [...GC_BUCKETS] });
  // Event loop utilization as a counter: rate() of it is the busy fraction of one core.
  new Counter({
    name: `${METRIC_PREFIX}nodejs_eventloop_busy_seconds_total`,
    help: 'Seconds the event loop spent running code (not waiting for I/O); rate() is the busy fraction of its core.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(performance.eventLoopUtilization().active / 1000);
    },
  });
  processRegistry = registry;
  return registry;
}

/** The metrics of one server. Call start() to begin probing storage and stop() on close. */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly #sources: MetricsSources;
  readonly #now: () => number;
  readonly #probeIntervalMs: number;
  readonly #latency: RequestLatencyHistogram;
  readonly #storageSeconds: Histogram<'operation'>;
  readonly #unsubscribe: Array<() => void> = [];
  #probeTimer: NodeJS.Timeout | undefined;
  #probe: Promise<void> | undefined;
  #storageUp: number | undefined;

  constructor(sources: MetricsSources, options: MetricsOptions = {}) {
    this.#sources = sources;
    this.#now = options.now ?? Date.now;
    this.#probeIntervalMs = options.storageProbeIntervalMs ?? DEFAULT_STORAGE_PROBE_INTERVAL_MS;
    const maxClients = options.maxClientLabels ?? DEFAULT_MAX_CLIENT_LABELS;
    const registers = [this.registry];
    const p = METRIC_PREFIX;
    const { events } = sources;

    const issued = new BoundedCounts(maxClients, OTHER_CLIENT);
    const denied = new Map<string, BoundedCounts>();
    const introspections = { true: 0, false: 0 };
    let revoked = 0;
    let rotationFailures = 0;
    const byType = new Map<string, { n: number }>(EVENT_NAMES.map((t) => [t, { n: 0 }]));
    // Trust names are the operator's (admin API), not a caller's: bounded all the same.
    const trustFetches = { ok: new BoundedCounts(maxClients, 'other'), failed: new BoundedCounts(maxClients, 'other') };
    const trustUnavailable = new BoundedCounts(maxClients, 'other');

    const ourId = (id: string): string => (hasIssuedClientIdShape(id) ? id : UNKNOWN_CLIENT);
    this.#unsubscribe.push(
      events.on('token.issued', (e) => issued.inc(e.clientId, ourId)),
      events.on('token.denied', (e) => {
        const known = e.clientId !== undefined && e.reason !== UNKNOWN_CLIENT_REASON;
        const error = denied.has(e.error) || denied.size < MAX_ERROR_LABELS ? e.error : 'other';
        let counts = denied.get(error);
        if (counts === undefined) {
          counts = new BoundedCounts(maxClients, OTHER_CLIENT);
          denied.set(error, counts);
        }
        counts.inc(known ? e.clientId! : UNKNOWN_CLIENT, ourId);
      }),
      events.on('token.introspected', (e) => {
        introspections[e.active ? 'true' : 'false']++;
      }),
      events.on('token.revoked', () => {
        revoked++;
      }),
      events.on('key.rotation_failed', () => {
        rotationFailures++;
      }),
      events.on('federation.keys_fetched', (e) => trustFetches[e.result].inc(e.trust)),
      events.on('federation.keys_unavailable', (e) => trustUnavailable.inc(e.trust)),
      events.onAny((type) => {
        byType.get(type)!.n++;
      }),
    );

    new Counter({
      name: `${p}tokens_issued_total`,
      help: 'Access tokens issued, by client (at most a bounded number of client_id values; then "other").',
      labelNames: ['client_id'],
      registers,
      collect() {
        this.reset();
        for (const [client_id, c] of issued.entries()) this.inc({ client_id }, c.n);
      },
    });
    new Counter({
      name: `${p}tokens_denied_total`,
      help: 'Token requests refused, by RFC 6749 error code and client ("unknown" when the client is not registered or not named).',
      labelNames: ['client_id', 'error'],
      registers,
      collect() {
        this.reset();
        for (const [error, counts] of denied) for (const [client_id, c] of counts.entries()) this.inc({ client_id, error }, c.n);
      },
    });
    new Counter({
      name: `${p}introspections_total`,
      help: 'RFC 7662 introspection answers, by whether the token was active for the caller.',
      labelNames: ['active'],
      registers,
      collect() {
        this.reset();
        this.inc({ active: 'true' }, introspections.true);
        this.inc({ active: 'false' }, introspections.false);
      },
    });
    new Counter({
      name: `${p}tokens_revoked_total`,
      help: 'Access tokens revoked by their client (RFC 7009).',
      registers,
      collect() {
        this.reset();
        this.inc(revoked);
      },
    });
    new Counter({
      name: `${p}events_total`,
      help: 'Core events (the audit log types): token.*, client.*, key.*, admin.auth_failed.',
      labelNames: ['type'],
      registers,
      collect() {
        this.reset();
        for (const [type, c] of byType) this.inc({ type }, c.n);
      },
    });

    new Counter({
      name: `${p}federation_key_fetches_total`,
      help: 'Fetches of a trusted issuer\'s keys (discovery and JWKS, or SPIFFE bundle), by trust and result (ok, failed).',
      labelNames: ['trust', 'result'],
      registers,
      collect() {
        this.reset();
        for (const result of ['ok', 'failed'] as const) for (const [trust, c] of trustFetches[result].entries()) this.inc({ trust, result }, c.n);
      },
    });
    new Counter({
      name: `${p}federation_keys_unavailable_total`,
      help: 'Platform tokens refused because the trust had no keys within the staleness bound (issuer down for too long, or never reached).',
      labelNames: ['trust'],
      registers,
      collect() {
        this.reset();
        for (const [trust, c] of trustUnavailable.entries()) this.inc({ trust }, c.n);
      },
    });
    const trustKeyAges = sources.trustKeyAges;
    if (trustKeyAges !== undefined) {
      new Gauge({
        name: `${p}federation_key_age_seconds`,
        help: 'Seconds since a trusted issuer\'s keys were last fetched successfully (cached keys serve up to 6 h of an issuer outage).',
        labelNames: ['trust'],
        registers,
        collect() {
          this.reset();
          for (const { trust, ageSeconds } of trustKeyAges()) this.set({ trust }, ageSeconds);
        },
      });
    }

    this.#latency = new RequestLatencyHistogram(
      `${p}http_request_duration_seconds`,
      'Time from receiving a request on the public listener to sending the response, by route, method and status class.',
      LATENCY_BUCKETS,
    );
    // The registry renders any object with name, help, type and get(); this one is prom-client's
    // histogram format computed from typed arrays (see RequestLatencyHistogram).
    this.registry.registerMetric(this.#latency as unknown as Histogram);

    const clients = sources.clients;
    new Counter({
      name: `${p}client_cache_hits_total`,
      help: 'Client lookups answered from the in-memory cache.',
      registers,
      collect() {
        this.reset();
        this.inc(clients.cacheStats.hits);
      },
    });
    new Counter({
      name: `${p}client_cache_misses_total`,
      help: 'Client lookups that read the store (first use, after a change, or an unknown client_id).',
      registers,
      collect() {
        this.reset();
        this.inc(clients.cacheStats.misses);
      },
    });
    new Gauge({
      name: `${p}client_cache_entries`,
      help: 'Clients held in the in-memory cache.',
      registers,
      collect() {
        this.set(clients.cacheSize);
      },
    });

    this.#storageSeconds = new Histogram({
      name: `${p}storage_operation_duration_seconds`,
      help: 'Storage round trips: "ping" every few seconds, "client_lookup" on a client cache miss.',
      labelNames: ['operation'],
      buckets: [...STORAGE_BUCKETS],
      registers,
    });
    const lookups = this.#storageSeconds.labels('client_lookup');
    clients.observeStoreReads((seconds) => lookups.observe(seconds));

    const self = this;
    new Gauge({
      name: `${p}storage_up`,
      help: '1 when the last storage ping answered, 0 when it failed or timed out.',
      registers,
      async collect() {
        if (self.#storageUp === undefined) await (self.#probe ?? self.#probeStorage());
        this.set(self.#storageUp ?? 0);
      },
    });
    new Gauge({
      name: `${p}sync_lag_seconds`,
      help: 'Seconds since the change log was last read successfully (changes made by other instances are at most this old here).',
      registers,
      collect() {
        // The last read first: read after it, the clock can only be later.
        const last = sources.syncLastSuccess();
        this.set(Math.max(0, (Date.now() - last) / 1000));
      },
    });

    const now = this.#now;
    const keys = sources.keys;
    new Gauge({
      name: `${p}signing_keys`,
      help: 'Signing keys loaded, by status: pending (published, not yet signing), active (signing), retired (published until its tokens expire), revoked (unpublished, its tokens refused).',
      labelNames: ['status'],
      registers,
      collect() {
        const counts: Record<string, number> = Object.fromEntries(KEY_STATUSES.map((status) => [status, 0]));
        for (const k of keys.list()) counts[k.status] = (counts[k.status] ?? 0) + 1;
        for (const status of KEY_STATUSES) this.set({ status }, counts[status]!);
      },
    });
    new Gauge({
      name: `${p}signing_key_age_seconds`,
      help: 'Seconds the active signing key has been signing; automatic rotation replaces it after the rotation interval. 0 when no key signs.',
      registers,
      collect() {
        const active = keys.list().find((k) => k.status === 'active');
        this.set(active ? Math.max(0, (now() - active.activatesAt) / 1000) : 0);
      },
    });
    new Gauge({
      name: `${p}signing_key_rotation_interval_seconds`,
      help: 'Configured automatic rotation interval (M2M_AUTH_KEY_ROTATION_INTERVAL); 0 when automatic rotation is off.',
      registers,
      collect() {
        this.set(sources.keyRotationIntervalSeconds);
      },
    });
    new Counter({
      name: `${p}signing_key_rotation_failures_total`,
      help: 'Failed key maintenance runs (automatic rotation or reloading keys from storage).',
      registers,
      collect() {
        this.reset();
        this.inc(rotationFailures);
      },
    });
  }

  /** Observes the latency of every response of `app` (its onResponse hook). */
  instrument(app: FastifyInstance): void {
    const latency = this.#latency;
    app.addHook('onResponse', (request, reply, done) => {
      latency.observe(request.routeOptions.url ?? 'unmatched', request.method, reply.statusCode, reply.elapsedTime / 1000);
      done();
    });
  }

  /** Probes storage now and then every storageProbeIntervalMs (an unref'd timer). */
  start(): void {
    if (this.#probeTimer) return;
    if (inClusterWorker()) this.#unsubscribe.push(offerWorkerMetrics([this.registry, processMetrics()]));
    void this.#probeStorage();
    this.#probeTimer = setInterval(() => void this.#probeStorage(), this.#probeIntervalMs);
    this.#probeTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#probeTimer);
    this.#probeTimer = undefined;
    for (const off of this.#unsubscribe.splice(0)) off();
    await this.#probe;
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** The exposition text: this server's metrics, then the process's; in a worker of `serve --workers`, the cluster's. */
  async text(): Promise<string> {
    if (inClusterWorker()) return clusterMetricsText();
    const [own, proc] = await Promise.all([this.registry.metrics(), processMetrics().metrics()]);
    return own + proc;
  }

  /** One storage ping at a time; concurrent callers share it. */
  #probeStorage(): Promise<void> {
    if (this.#probe === undefined) {
      const run: Promise<void> = this.#ping().finally(() => {
        if (this.#probe === run) this.#probe = undefined;
      });
      this.#probe = run;
    }
    return this.#probe;
  }

  async #ping(): Promise<void> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.#sources.storage.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error('storage ping timed out')), STORAGE_PROBE_TIMEOUT_MS);
        }),
      ]);
      this.#storageUp = 1;
    } catch {
      this.#storageUp = 0;
    } finally {
      clearTimeout(timer);
      this.#storageSeconds.observe({ operation: 'ping' }, (performance.now() - started) / 1000);
    }
  }
}

/**
 * GET /metrics on `app` (the admin listener), outside the admin token: Prometheus scrapers carry
 * no bearer token, and the admin listener is private by design. Register it outside the admin
 * plugin so that the admin bearer check does not apply.
 */
export function registerMetricsRoute(app: FastifyInstance, metrics: ServerMetrics): void {
  app.get('/metrics', async (request, reply) => {
    let body: string;
    try {
      body = await metrics.text();
    } catch (err) {
      // With --workers: the primary did not answer. A failed scrape shows as up == 0, which is
      // better than one worker's numbers passed off as the cluster's.
      request.log.warn({ err }, 'cluster metrics unavailable');
      return reply.code(503).header('cache-control', 'no-store').type('text/plain; charset=utf-8').send('cluster metrics unavailable\n');
    }
    return reply.header('cache-control', 'no-store').type(metrics.contentType).send(body);
  });
}
