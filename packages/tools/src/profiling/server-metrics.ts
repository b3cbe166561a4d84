// The server's Prometheus metrics (GET /metrics on its admin listener) read by the profiler: the
// text exposition format parsed into samples, scraped at a fixed interval while a run lasts, so
// that CPU seconds, RSS and the alert rules' series are the server process's own.

import { performance } from 'node:perf_hooks';
import { Agent, request } from 'undici';

export interface MetricSample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Scrape {
  /** Milliseconds since the scraper started. */
  t: number;
  samples: MetricSample[];
}

function unescapeLabel(v: string): string {
  return v.replace(/\\(["\\n])/g, (_m, c: string) => (c === 'n' ? '\n' : c));
}

function parseValue(raw: string): number {
  switch (raw) {
    case '+Inf': return Infinity;
    case '-Inf': return -Infinity;
    case 'NaN': case 'Nan': return NaN;
    default: return Number(raw);
  }
}

/** Samples of a Prometheus text exposition (version 0.0.4); comments and timestamps ignored. */
export function parseExposition(text: string): MetricSample[] {
  const out: MetricSample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (m === null) continue;
    const labels: Record<string, string> = {};
    if (m[3] !== undefined) {
      for (const l of m[3].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = unescapeLabel(l[2]!);
    }
    out.push({ name: m[1]!, labels, value: parseValue(m[4]!) });
  }
  return out;
}

/** The samples named `name` whose labels include every one of `match`. */
export function select(samples: readonly MetricSample[], name: string, match: Record<string, string | RegExp> = {}): MetricSample[] {
  return samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => (typeof v === 'string' ? s.labels[k] === v : v.test(s.labels[k] ?? ''))));
}

/** The sum of the samples `select` finds (0 when none). */
export function total(samples: readonly MetricSample[], name: string, match: Record<string, string | RegExp> = {}): number {
  return select(samples, name, match).reduce((a, s) => a + s.value, 0);
}

export class MetricsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MetricsError';
  }
}

export class MetricsScraper {
  readonly #url: string;
  readonly #agent = new Agent({ keepAliveTimeout: 10, keepAliveMaxTimeout: 10 });
  readonly #start = performance.now();
  readonly scrapes: Scrape[] = [];
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<unknown> = Promise.resolve();

  constructor(adminUrl: string) {
    this.#url = `${adminUrl.replace(/\/+$/, '')}/metrics`;
  }

  /** One scrape now, kept in `scrapes`. */
  async scrape(): Promise<Scrape> {
    const res = await request(this.#url, { method: 'GET', dispatcher: this.#agent });
    const text = await res.body.text();
    if (res.statusCode !== 200) throw new MetricsError(`GET ${this.#url} answered ${res.statusCode}`);
    const scrape = { t: performance.now() - this.#start, samples: parseExposition(text) };
    this.scrapes.push(scrape);
    return scrape;
  }

  /** Scrapes every `intervalMs` until stop(); a failed scrape is skipped (the next one counts). */
  every(intervalMs: number): void {
    this.#timer = setInterval(() => {
      this.#inFlight = this.scrape().catch(() => undefined);
    }, intervalMs);
  }

  async stop(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#inFlight;
  }

  async close(): Promise<void> {
    await this.stop();
    await this.#agent.close();
  }
}
