// Reading the Prometheus text exposition format (0.0.4) of a real server's /metrics, for the
// metrics tests and for checking that alerts and the dashboard only name metrics that exist.

import { basic, startTestServer, type TestServer } from '../helpers/server.js';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  /** Metric family name -> type, from the # TYPE lines. */
  families: Map<string, string>;
  samples: Sample[];
}

const SAMPLE_LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

function parseValue(raw: string): number {
  if (raw === '+Inf') return Infinity;
  if (raw === '-Inf') return -Infinity;
  return Number(raw);
}

export function parseExposition(text: string): Exposition {
  const families = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      families.set(name!, type!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = SAMPLE_LINE.exec(line);
    if (!m) throw new Error(`not an exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(LABEL)) labels[l[1]!] = l[2]!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    samples.push({ name: m[1]!, labels, value: parseValue(m[3]!) });
  }
  return { families, samples };
}

/** Every name a query may use: family names, and a histogram's _bucket, _sum and _count. */
export function queryableNames(families: Map<string, string>): Set<string> {
  const names = new Set<string>();
  for (const [name, type] of families) {
    names.add(name);
    if (type === 'histogram' || type === 'summary') {
      names.add(`${name}_sum`);
      names.add(`${name}_count`);
      if (type === 'histogram') names.add(`${name}_bucket`);
    }
  }
  return names;
}

/** The m2m_auth_* metric names a text (rules, a dashboard) refers to. */
export function metricNamesIn(text: string): Set<string> {
  return new Set(text.match(/\bm2m_auth_[a-zA-Z0-9_]+/g) ?? []);
}

/** Samples of `name` whose labels include `labels`. */
export function find(exp: Exposition, name: string, labels: Record<string, string> = {}): Sample[] {
  return exp.samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The one sample of `name` with `labels` (0 when there is none). */
export function value(exp: Exposition, name: string, labels: Record<string, string> = {}): number {
  const found = find(exp, name, labels);
  if (found.length > 1) throw new Error(`${found.length} samples of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value ?? 0;
}

/** GET /metrics on the admin listener, without the admin token. */
export async function scrape(t: TestServer): Promise<{ status: number; contentType: string; text: string; exp: Exposition }> {
  const res = await t.server.adminApp.inject({ method: 'GET', url: '/metrics' });
  const text = res.body;
  return { status: res.statusCode, contentType: String(res.headers['content-type']), text, exp: parseExposition(text) };
}

/** What a real server exports after some traffic: every family it has. */
export async function exportedByRealServer(): Promise<{ names: Set<string>; text: string }> {
  const t = await startTestServer();
  try {
    const { clientId, clientSecret } = await t.client();
    const token = JSON.parse((await t.token(clientId, clientSecret)).body).access_token as string;
    await t.token(clientId, 'wrong');
    const auth = { authorization: basic(clientId, clientSecret) };
    await t.post('/oauth2/introspect', { token }, auth);
    await t.post('/oauth2/revoke', { token }, auth);
    const { text, exp } = await scrape(t);
    return { names: queryableNames(exp.families), text };
  } finally {
    await t.close();
  }
}
