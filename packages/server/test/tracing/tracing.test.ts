// OpenTelemetry spans of the OAuth endpoints and their storage calls, recorded by an in-memory
// exporter behind a SimpleSpanProcessor (from the SDK's sdk-trace-base, as sdk-trace-node
// re-exports it), for a real server on a real socket driven by undici.

import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { SpanKind, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { loadConfig } from '../../src/config/schema.js';
import { createServer, type M2MAuthServer } from '../../src/server.js';
import { createLogger } from '../../src/observability/logger.js';
import { startTracing, TRACING_OFF, type Tracing } from '../../src/observability/tracing.js';
import { within } from '../helpers/process.js';

const ORDERS = 'https://orders.example.com';
const ADMIN = 'tracing-admin-token-' + randomBytes(16).toString('hex');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function start(tracing?: Tracing): Promise<{ server: M2MAuthServer; url: string }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'm2m-auth-tracing-'));
  dirs.push(dataDir);
  const config = loadConfig({}, {
    listen: '127.0.0.1:0', adminListen: '127.0.0.1:0', databaseUrl: 'sqlite::memory:', dataDir,
    adminToken: ADMIN, kek: randomBytes(32).toString('base64'), syncInterval: '50', issuer: 'http://issuer.test',
  });
  const server = await createServer(config, { logger: createLogger({ level: 'silent' }), ...(tracing && { tracing }) });
  const { publicUrl } = await server.listen();
  return { server, url: publicUrl };
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const traceparent = (traceId: string, spanId: string) => `00-${traceId}-${spanId}-01`;
const basic = (id: string, secret: string) => 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64');

async function post(url: string, path: string, body: string, headers: Record<string, string>) {
  const r = await request(`${url}${path}`, {
    method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
  });
  return { status: r.statusCode, text: await r.body.text() };
}

describe('tracing on', () => {
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let server: M2MAuthServer;
  let url: string;
  let client: { id: string; secret: string };
  const secrets: string[] = [ADMIN];

  beforeAll(async () => {
    tracing = await startTracing({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    ({ server, url } = await start(tracing));
    const issued = await server.clients.create({ client_name: 'traced', scope: 'orders:read', audience: [ORDERS] });
    client = { id: issued.client.clientId, secret: issued.clientSecret! };
    secrets.push(client.secret);
    // Let the change log's record of the new client pass, so it does not empty the cache mid-test.
    await server.sync.poll();
  });

  afterEach(() => exporter.reset());

  afterAll(async () => {
    await server?.close();
    await tracing?.shutdown();
  });

  const spans = () => exporter.getFinishedSpans();
  const inTrace = (traceId: string) => spans().filter((s) => s.spanContext().traceId === traceId);
  const named = (list: ReadableSpan[], name: string) => list.filter((s) => s.name === name);

  async function tokenSpan(traceId: string): Promise<ReadableSpan> {
    await within(2000, async () => named(inTrace(traceId), 'POST /oauth2/token').length === 1);
    return named(inTrace(traceId), 'POST /oauth2/token')[0]!;
  }

  it('a token request continues the caller\'s trace; the client lookup on a cache miss is a child span', async () => {
    server.clients.clear();
    const traceId = hex(16);
    const parentId = hex(8);
    const r = await post(url, '/oauth2/token', 'grant_type=client_credentials', {
      authorization: basic(client.id, client.secret), traceparent: traceparent(traceId, parentId),
    });
    expect(r.status).toBe(200);
    secrets.push(JSON.parse(r.text).access_token);

    const span = await tokenSpan(traceId);
    expect(span.kind).toBe(SpanKind.SERVER);
    expect(span.parentSpanContext?.spanId).toBe(parentId);
    expect(span.attributes).toMatchObject({
      'oauth.endpoint': 'token', 'oauth.client_id': client.id, 'oauth.grant_type': 'client_credentials', 'oauth.outcome': 'ok',
      'http.request.method': 'POST', 'http.route': '/oauth2/token', 'http.response.status_code': 200, 'network.protocol.version': '1.1',
    });
    expect(span.attributes['error.type']).toBeUndefined();
    expect(span.resource.attributes['service.name']).toBe(process.env.OTEL_SERVICE_NAME || 'm2m-auth');

    const lookups = named(inTrace(traceId), 'storage.clients.getClient');
    expect(lookups).toHaveLength(1);
    expect(lookups[0]!.parentSpanContext?.spanId).toBe(span.spanContext().spanId);
    expect(lookups[0]!.kind).toBe(SpanKind.CLIENT);
    expect(lookups[0]!.attributes).toMatchObject({ 'db.system.name': 'sqlite', 'db.operation.name': 'getClient' });

    // The client is cached now: the next request makes no storage call, so no child span.
    const again = hex(16);
    expect((await post(url, '/oauth2/token', 'grant_type=client_credentials', {
      authorization: basic(client.id, client.secret), traceparent: traceparent(again, hex(8)),
    })).status).toBe(200);
    await tokenSpan(again);
    expect(named(inTrace(again), 'storage.clients.getClient')).toHaveLength(0);
  });

  it('a request without traceparent starts a trace of its own', async () => {
    expect((await post(url, '/oauth2/token', 'grant_type=client_credentials', { authorization: basic(client.id, client.secret) })).status).toBe(200);
    await within(2000, async () => named(spans(), 'POST /oauth2/token').length === 1);
    expect(named(spans(), 'POST /oauth2/token')[0]!.parentSpanContext).toBeUndefined();
  });

  it('a denied request records the error code and status, not an error status of the span', async () => {
    const traceId = hex(16);
    const r = await post(url, '/oauth2/token', 'grant_type=client_credentials', {
      authorization: basic(client.id, 'm2m_cs_wrong-secret-wrong-secret-wrong-secret-x'), traceparent: traceparent(traceId, hex(8)),
    });
    expect(r.status).toBe(401);
    const span = await tokenSpan(traceId);
    expect(span.attributes).toMatchObject({
      'oauth.client_id': client.id, 'oauth.outcome': 'invalid_client', 'error.type': 'invalid_client', 'http.response.status_code': 401,
    });
    expect(span.status.code).toBe(0); // UNSET: a 4xx is the caller's mistake
  });

  it('introspection and revocation spans; the revocation write is a child span; the change-log poll that sees it is recorded', async () => {
    const token = JSON.parse((await post(url, '/oauth2/token', 'grant_type=client_credentials', { authorization: basic(client.id, client.secret) })).text).access_token as string;
    secrets.push(token);

    const introspectTrace = hex(16);
    const i = await post(url, '/oauth2/introspect', `token=${token}`, { authorization: basic(client.id, client.secret), traceparent: traceparent(introspectTrace, hex(8)) });
    expect(JSON.parse(i.text).active).toBe(true);
    await within(2000, async () => named(inTrace(introspectTrace), 'POST /oauth2/introspect').length === 1);
    expect(named(inTrace(introspectTrace), 'POST /oauth2/introspect')[0]!.attributes).toMatchObject({
      'oauth.endpoint': 'introspection', 'oauth.client_id': client.id, 'oauth.outcome': 'ok', 'http.response.status_code': 200,
    });

    const revokeTrace = hex(16);
    const v = await post(url, '/oauth2/revoke', `token=${token}`, { authorization: basic(client.id, client.secret), traceparent: traceparent(revokeTrace, hex(8)) });
    expect(v.status).toBe(200);
    await within(2000, async () => named(inTrace(revokeTrace), 'POST /oauth2/revoke').length === 1);
    const revoke = named(inTrace(revokeTrace), 'POST /oauth2/revoke')[0]!;
    expect(revoke.attributes).toMatchObject({ 'oauth.endpoint': 'revocation', 'oauth.client_id': client.id, 'http.response.status_code': 200 });
    const writes = named(inTrace(revokeTrace), 'storage.revocations.revokeToken');
    expect(writes).toHaveLength(1);
    expect(writes[0]!.parentSpanContext?.spanId).toBe(revoke.spanContext().spanId);

    // The revocation appended to the change log; the next poll finds it: a sync.poll span with the read as its child.
    await within(2000, async () => named(spans(), 'sync.poll').some((s) => Number(s.attributes['m2m_auth.changes']) >= 1));
    const poll = named(spans(), 'sync.poll').find((s) => Number(s.attributes['m2m_auth.changes']) >= 1)!;
    const read = named(spans(), 'storage.changes.since').find((s) => s.parentSpanContext?.spanId === poll.spanContext().spanId);
    expect(read?.spanContext().traceId).toBe(poll.spanContext().traceId);
    expect(read?.attributes).toMatchObject({ 'db.system.name': 'sqlite', 'db.operation.name': 'since' });
  });

  it('polls that find nothing are not recorded', async () => {
    exporter.reset();
    await new Promise((r) => setTimeout(r, 400)); // 8 sync intervals of 50 ms
    expect(named(spans(), 'sync.poll')).toHaveLength(0);
    expect(named(spans(), 'storage.changes.since')).toHaveLength(0);
  });

  it('private_key_jwt: the assertion\'s single-use check is a child span', async () => {
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
    const issued = await server.clients.create({
      client_name: 'pkjwt', scope: 'orders:read', audience: [ORDERS], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } as never,
    });
    const id = issued.client.clientId;
    const assertion = await new SignJWT({ jti: hex(16) })
      .setProtectedHeader({ alg: 'ES256', kid: 'k1' }).setIssuer(id).setSubject(id).setAudience('http://issuer.test')
      .setIssuedAt().setExpirationTime('60s').sign(privateKey);
    secrets.push(assertion);
    const traceId = hex(16);
    const r = await post(url, '/oauth2/token', new URLSearchParams({
      grant_type: 'client_credentials', client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion,
    }).toString(), { traceparent: traceparent(traceId, hex(8)) });
    expect(r.status).toBe(200);
    secrets.push(JSON.parse(r.text).access_token);
    const span = await tokenSpan(traceId);
    expect(span.attributes['oauth.client_id']).toBe(id);
    const replay = named(inTrace(traceId), 'storage.replay.consumeOnce');
    expect(replay).toHaveLength(1);
    expect(replay[0]!.parentSpanContext?.spanId).toBe(span.spanContext().spanId);
  });

  it('no secret, assertion or token appears in any span', async () => {
    // Fill the exporter with one of everything, then look at every name and attribute recorded.
    const token = JSON.parse((await post(url, '/oauth2/token', 'grant_type=client_credentials', { authorization: basic(client.id, client.secret) })).text).access_token as string;
    secrets.push(token);
    // The secret in the body (client_secret_post, refused: the client is registered for Basic).
    expect((await post(url, '/oauth2/token', `grant_type=client_credentials&client_id=${client.id}&client_secret=${client.secret}`, {})).status).toBe(401);
    await post(url, '/oauth2/introspect', `token=${token}`, { authorization: basic(client.id, client.secret) });
    await post(url, '/oauth2/revoke', `token=${token}`, { authorization: basic(client.id, client.secret) });
    // A secret where the grant type belongs is recorded as "other", not as itself.
    const misplaced = hex(16);
    await post(url, '/oauth2/token', `grant_type=${client.secret}`, { authorization: basic(client.id, client.secret), traceparent: traceparent(misplaced, hex(8)) });
    expect((await tokenSpan(misplaced)).attributes).toMatchObject({ 'oauth.grant_type': 'other', 'oauth.outcome': 'unsupported_grant_type' });
    await within(2000, async () => spans().length >= 5);
    const recorded = JSON.stringify(spans().map((s) => ({ name: s.name, attributes: s.attributes, events: s.events, status: s.status })));
    expect(recorded).toContain(client.id);
    expect(secrets.length).toBeGreaterThanOrEqual(6);
    for (const secret of secrets) {
      expect(secret.length).toBeGreaterThan(30);
      expect(recorded).not.toContain(secret);
    }
    expect(recorded).not.toMatch(/m2m_cs_|Basic |eyJ/);
  });
});

describe('tracing off', () => {
  it('hands back the very handler and storage objects: the request path is unchanged', () => {
    const handler = async () => undefined;
    expect(TRACING_OFF.endpoint('token', '/oauth2/token', handler)).toBe(handler);
    const parts = { clients: {}, keys: {}, revocations: {}, replay: {}, changes: {} } as never;
    expect(TRACING_OFF.storage(parts, 'sqlite')).toBe(parts);
  });

  it('records nothing, even with a global tracer provider registered in the process', async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    trace.setGlobalTracerProvider(provider);
    const { server, url } = await start();
    try {
      expect(server.config.otelEnabled).toBe(false);
      const issued = await server.clients.create({ client_name: 'quiet', scope: 'orders:read', audience: [ORDERS] });
      server.clients.clear();
      const r = await post(url, '/oauth2/token', 'grant_type=client_credentials', {
        authorization: basic(issued.client.clientId, issued.clientSecret!), traceparent: traceparent(hex(16), hex(8)),
      });
      expect(r.status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(exporter.getFinishedSpans()).toHaveLength(0);
    } finally {
      await server.close();
      trace.disable();
      await provider.shutdown();
    }
  });
});
