// Tracing in a real `m2m-auth serve` process: with M2M_AUTH_OTEL_ENABLED the spans reach an OTLP/HTTP
// collector (a small server in the test) under OTEL_SERVICE_NAME, continuing the caller's
// traceparent and carrying no secret; without it, no OpenTelemetry SDK module is even loaded.

import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, within } from '../helpers/process.js';
import { startInstance, type Instance } from '../restarts/instance.js';

const ADMIN = 'otlp-admin-token-' + randomBytes(16).toString('hex');
const RECORD_LOADS = fileURLToPath(new URL('./record-loads.mjs', import.meta.url));
const SDK_MODULE = /@opentelemetry\/(sdk-trace|exporter-trace|resources|core|otlp)/;

interface OtlpValue { stringValue?: string; intValue?: string | number; boolValue?: boolean }
interface OtlpAttribute { key: string; value: OtlpValue }
interface OtlpSpan { traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number; attributes: OtlpAttribute[] }
interface OtlpExport { resourceSpans: Array<{ resource: { attributes: OtlpAttribute[] }; scopeSpans: Array<{ spans: OtlpSpan[] }> }> }

const attr = (list: OtlpAttribute[], key: string) => {
  const v = list.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue !== undefined ? Number(v.intValue) : v?.boolValue);
};

/** An OTLP/HTTP (JSON) trace collector. */
class Collector {
  readonly bodies: string[] = [];
  #server: Server | undefined;

  async start(): Promise<string> {
    this.#server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => {
        if (req.url === '/v1/traces') this.bodies.push(body);
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  spans(): Array<OtlpSpan & { service: unknown }> {
    return this.bodies.flatMap((b) => (JSON.parse(b) as OtlpExport).resourceSpans.flatMap((rs) =>
      rs.scopeSpans.flatMap((ss) => ss.spans.map((s) => ({ ...s, service: attr(rs.resource.attributes, 'service.name') })))));
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.#server ? this.#server.close(() => resolve()) : resolve()));
  }
}

describe('tracing in a real process', () => {
  const dirs: string[] = [];
  let collector: Collector;
  let endpoint: string;

  beforeAll(async () => {
    ensureBuilt();
    collector = new Collector();
    endpoint = await collector.start();
  }, 120_000);

  afterAll(async () => {
    await collector.close();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  async function run(env: Record<string, string>): Promise<{ p: Instance; loads: () => string[] }> {
    const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-otlp-'));
    dirs.push(dir);
    const record = join(dir, 'loads.txt');
    const p = await startInstance({
      nodeArgs: ['--import', RECORD_LOADS],
      env: { M2M_AUTH_DATA_DIR: dir, M2M_AUTH_ADMIN_TOKEN: ADMIN, M2M_AUTH_TEST_RECORD_LOADS: record, ...env },
    });
    return { p, loads: () => (existsSync(record) ? readFileSync(record, 'utf8').split('\n').filter(Boolean) : []) };
  }

  async function tokenRequest(p: Instance, traceparent: string) {
    const r = await fetch(`${p.adminUrl}/admin/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'otlp', scope: 'orders:read', audience: ['https://orders.example.com'] }),
    });
    const c = (await r.json()) as { client_id: string; client_secret: string };
    const t = await fetch(`${p.publicUrl}/oauth2/token`, {
      method: 'POST',
      headers: {
        authorization: 'Basic ' + Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64'),
        'content-type': 'application/x-www-form-urlencoded', traceparent,
      },
      body: 'grant_type=client_credentials',
    });
    expect(t.status).toBe(200);
    const token = ((await t.json()) as { access_token: string }).access_token;
    return { clientId: c.client_id, secrets: [c.client_secret, token] };
  }

  it('M2M_AUTH_OTEL_ENABLED: spans reach the OTLP endpoint, in the caller\'s trace, without secrets', async () => {
    const { p, loads } = await run({
      M2M_AUTH_OTEL_ENABLED: 'true', OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_SERVICE_NAME: 'auth-under-test', OTEL_BSP_SCHEDULE_DELAY: '100',
    });
    const traceId = randomBytes(16).toString('hex');
    const parentId = randomBytes(8).toString('hex');
    const { clientId, secrets } = await tokenRequest(p, `00-${traceId}-${parentId}-01`);
    await within(5000, async () => collector.spans().some((s) => s.traceId === traceId && s.name === 'POST /oauth2/token'));
    expect(await p.stop('SIGTERM')).toEqual({ code: 0, signal: null });

    const span = collector.spans().find((s) => s.traceId === traceId && s.name === 'POST /oauth2/token')!;
    expect(span.service).toBe('auth-under-test');
    expect(span.parentSpanId).toBe(parentId);
    expect(span.kind).toBe(2); // SPAN_KIND_SERVER
    expect(attr(span.attributes, 'oauth.client_id')).toBe(clientId);
    expect(attr(span.attributes, 'oauth.grant_type')).toBe('client_credentials');
    expect(attr(span.attributes, 'http.response.status_code')).toBe(200);

    const everything = collector.bodies.join('\n');
    for (const secret of [...secrets, ADMIN]) expect(everything).not.toContain(secret);
    expect(loads().some((url) => /@opentelemetry\/sdk-trace-node/.test(url))).toBe(true);
  }, 60_000);

  it('off by default: no OpenTelemetry SDK module is loaded, nothing is exported', async () => {
    const before = collector.bodies.length;
    const { p, loads } = await run({ OTEL_EXPORTER_OTLP_ENDPOINT: endpoint, OTEL_BSP_SCHEDULE_DELAY: '100' });
    await tokenRequest(p, `00-${randomBytes(16).toString('hex')}-${randomBytes(8).toString('hex')}-01`);
    expect(await p.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(loads().filter((url) => SDK_MODULE.test(url))).toEqual([]);
    expect(collector.bodies.length).toBe(before);
  }, 60_000);
});
