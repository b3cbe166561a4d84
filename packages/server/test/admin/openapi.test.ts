// The OpenAPI document of the admin listener (src/admin/openapi/): valid OpenAPI 3.1 by a validator
// someone else wrote, the same as docs/openapi.json and as GET /admin/openapi.json, naming every
// route the real admin listener has and every status its routes answered here, each answer
// matching its documented schema; and the schemas the routes validate with never change the words
// of an error the hand-written checks give.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiDocument, openApiJson } from '../../src/admin/openapi/document.js';
import { ALL_OPERATIONS } from '../../src/admin/openapi/operations.js';
import { COMPONENTS } from '../../src/admin/openapi/schemas.js';
import { draftNewClient } from '../../src/clients/registry.js';
import { startTestServer, ORDERS, type TestServer } from '../helpers/server.js';
import { ensureBuilt } from '../helpers/process.js';

const COMMITTED = fileURLToPath(new URL('../../../../docs/openapi.json', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../../scripts/docs-openapi.js', import.meta.url));
const FALLBACK = /does not match the admin API's schema/;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Doc = any;
const doc: Doc = openApiDocument();

/** The document's path that `url` is an instance of: /admin/clients/cl_x -> /admin/clients/{id}. */
function templateOf(url: string): string {
  const paths = Object.keys(doc.paths as Record<string, unknown>);
  return paths.find((p) => p === url)
    ?? paths.find((p) => new RegExp(`^${p.replace(/[.]/g, '\\.').replace(/\{\w+\}/g, '[^/]+')}$`).test(url))
    ?? url;
}

/** `/admin/clients/:id` -> `/admin/clients/{id}` */
const openApiPath = (url: string): string => url.replace(/:(\w+)/g, '{$1}');
const pointer = (...parts: string[]): string => parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');

// The document as a schema, so that a response is checked against the document itself.
const ajv = new Ajv2020({ strict: false, allowUnionTypes: true });
ajv.addSchema({ ...doc, $id: 'admin-openapi.json' });
const validators = new Map<string, ValidateFunction>();

interface Seen { method: string; path: string; status: number }
const seen: Seen[] = [];

/**
 * Checks that the document has `status` for the operation and that the body matches its schema;
 * records it as seen.
 */
function expectDocumented(method: string, path: string, res: LightMyRequestResponse): void {
  const op = doc.paths[path]?.[method.toLowerCase()];
  expect(op, `${method} ${path} is not in the document`).toBeDefined();
  const answer = op.responses[String(res.statusCode)];
  expect(answer, `${method} ${path} answered ${res.statusCode} (${res.body.slice(0, 200)}), which the document does not list`).toBeDefined();
  seen.push({ method, path, status: res.statusCode });
  const content = answer.content as Record<string, { schema?: unknown }> | undefined;
  if (content === undefined) {
    expect(res.body, `${method} ${path} ${res.statusCode} has no content in the document`).toBe('');
    return;
  }
  const type = String(res.headers['content-type']).split(';')[0]!;
  expect(Object.keys(content), `${method} ${path} ${res.statusCode}`).toContain(type);
  if (type !== 'application/json' || content[type]!.schema === undefined) return;
  const ref = `admin-openapi.json#/${pointer('paths', path, method.toLowerCase(), 'responses', String(res.statusCode), 'content', type, 'schema')}`;
  let validate = validators.get(ref);
  if (validate === undefined) {
    validate = ajv.compile({ $ref: ref });
    validators.set(ref, validate);
  }
  const body: unknown = JSON.parse(res.body);
  expect(validate(body), `${method} ${path} ${res.statusCode}: ${JSON.stringify(validate.errors)} in ${res.body.slice(0, 300)}`).toBe(true);
}

describe('the OpenAPI document of the admin API', () => {
  it('is valid OpenAPI 3.1 (@seriousme/openapi-schema-validator)', async () => {
    const validator = new Validator();
    const result = await validator.validate(structuredClone(doc));
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
    expect(validator.version).toBe('3.1');
  });

  it('every schema in it is valid JSON Schema 2020-12 under Ajv strict mode', () => {
    const strict = new Ajv2020({ strict: true, allowUnionTypes: true });
    for (const schema of Object.values(COMPONENTS)) expect(() => strict.compile(schema)).not.toThrow();
    for (const op of ALL_OPERATIONS) {
      for (const p of [...Object.values(op.params ?? {}), ...Object.values(op.query ?? {})]) strict.compile(p.schema);
      if (op.body) strict.compile(op.body.schema);
      for (const a of Object.values(op.answers)) if (a.schema) strict.compile(a.schema);
    }
  });

  it('docs/openapi.json is the document the code generates (npm run docs:openapi)', () => {
    expect(readFileSync(COMMITTED, 'utf8')).toBe(openApiJson());
  });

  it('npm run docs:openapi finds docs/openapi.json up to date, and writes a stale one again', () => {
    ensureBuilt();
    expect(spawnSync(process.execPath, [SCRIPT, '--check'], { encoding: 'utf8' }).status).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-docs-openapi-'));
    try {
      const copy = join(dir, 'openapi.json');
      const stale = readFileSync(COMMITTED, 'utf8').replace('"createClient"', '"createClientOld"');
      writeFileSync(copy, stale);
      const check = spawnSync(process.execPath, [SCRIPT, '--check', '--out', copy], { encoding: 'utf8' });
      expect(check.status).toBe(1);
      expect(check.stderr).toMatch(/differs from the code/);
      expect(readFileSync(copy, 'utf8')).toBe(stale);
      expect(spawnSync(process.execPath, [SCRIPT, '--out', copy], { encoding: 'utf8' }).status).toBe(0);
      expect(readFileSync(copy, 'utf8')).toBe(openApiJson());
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses a document that breaks OpenAPI 3.1, so the check above can fail', async () => {
    const broken = structuredClone(doc);
    delete broken.paths['/admin/clients'].post.responses['201'].description;
    expect((await new Validator().validate(broken)).valid).toBe(false);
  });
});

describe('the admin listener against its document', () => {
  let s: TestServer;
  const token = (): Record<string, string> => ({ authorization: `Bearer ${s.config.adminToken}` });

  /** An admin request with the token, checked against the document. */
  async function call(method: string, url: string, opts: { body?: unknown; raw?: string; contentType?: string; auth?: boolean } = {}) {
    const headers: Record<string, string> = opts.auth === false ? {} : token();
    let payload: string | undefined;
    if (opts.raw !== undefined) payload = opts.raw;
    else if (opts.body !== undefined) payload = JSON.stringify(opts.body);
    if (payload !== undefined) headers['content-type'] = opts.contentType ?? 'application/json';
    const res = await s.server.adminApp.inject({ method: method as InjectOptions['method'], url, headers, ...(payload !== undefined ? { payload } : {}) });
    expectDocumented(method, templateOf(url.split('?')[0]!), res);
    return res;
  }

  beforeAll(async () => {
    s = await startTestServer({ pprof: true, bodyLimit: 2048 });
  });
  afterAll(async () => {
    await s?.close();
  });

  it('names every route of the real admin listener, and nothing the listener does not have', () => {
    const real = s.server.adminRoutes.map((r) => `${r.method} ${openApiPath(r.url)}`).sort();
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
      .flatMap(([path, item]) => Object.keys(item).map((m) => `${m.toUpperCase()} ${path}`)).sort();
    expect(real.length).toBeGreaterThan(20);
    expect(documented).toEqual(real);
  });

  it('GET /admin/openapi.json serves the committed document, only with the admin token', async () => {
    const res = await call('GET', '/admin/openapi.json');
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    expect(res.body).toBe(readFileSync(COMMITTED, 'utf8'));
    const anonymous = await call('GET', '/admin/openapi.json', { auth: false });
    expect(anonymous.statusCode).toBe(401);
    expect(anonymous.body).not.toContain('openapi');
    expect((await call('GET', '/admin/openapi.json?x=1')).statusCode).toBe(400);
  });

  it('every answer of every route is in the document, with a body its schema accepts', async () => {
    // Success answers.
    const created = await call('POST', '/admin/clients', { body: { client_name: 'billing', scope: 'read write', audience: [ORDERS], claims: { tenant: 't1' } } });
    expect(created.statusCode).toBe(201);
    const id = created.json().client_id as string;
    const jwt = await call('POST', '/admin/clients', {
      body: {
        client_id: 'cl_jwt', client_name: 'jwt', audience: [ORDERS], token_endpoint_auth_method: 'private_key_jwt',
        jwks: { keys: [{ kty: 'EC', crv: 'P-256', kid: 'k1', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0' }] },
      },
    });
    expect(jwt.statusCode).toBe(201);
    expect((await call('POST', '/admin/clients', { body: { client_id: 'cl_jwt', client_name: 'again', audience: [ORDERS] } })).statusCode).toBe(409);
    expect((await call('GET', '/admin/clients?limit=1')).statusCode).toBe(200);
    expect((await call('GET', `/admin/clients/${id}`)).statusCode).toBe(200);
    expect((await call('PATCH', `/admin/clients/${id}`, { body: { client_name: 'billing 2', default_scope: 'read' } })).statusCode).toBe(200);
    // Switching to a secret method issues one.
    expect((await call('PATCH', '/admin/clients/cl_jwt', { body: { token_endpoint_auth_method: 'client_secret_post' } })).json().client_secret)
      .toMatch(/^m2m_cs_/);
    expect((await call('POST', `/admin/clients/${id}/secret`, { body: { grace_period: 60 } })).statusCode).toBe(200);
    for (const action of ['revoke-tokens', 'disable', 'enable']) expect((await call('POST', `/admin/clients/${id}/${action}`)).statusCode).toBe(200);
    // Trusted issuers and federated clients (issue 17).
    const trust = { name: 'ci', kind: 'oidc', issuer: 'https://token.actions.githubusercontent.com' };
    expect((await call('POST', '/admin/trusted-issuers', { body: trust })).statusCode).toBe(201);
    expect((await call('POST', '/admin/trusted-issuers', { body: trust })).statusCode).toBe(409);
    expect((await call('GET', '/admin/trusted-issuers?limit=1')).statusCode).toBe(200);
    expect((await call('GET', '/admin/trusted-issuers/ci')).statusCode).toBe(200);
    expect((await call('PATCH', '/admin/trusted-issuers/ci', { body: { audiences: ['https://auth.example.com'] } })).statusCode).toBe(200);
    const federated = (subject: string, clientIdChosen: string) => ({
      client_id: clientIdChosen, client_name: clientIdChosen, audience: [ORDERS], token_endpoint_auth_method: 'federated_jwt',
      federated_issuer: 'ci', federated_subject: subject, federated_claims: { repository: 'acme/billing' },
    });
    expect((await call('POST', '/admin/clients', { body: federated('repo:acme/billing:environment:production', 'cl_fed1') })).statusCode).toBe(201);
    expect((await call('POST', '/admin/clients', { body: federated('repo:acme/billing:environment:staging', 'cl_fed2') })).statusCode).toBe(201);
    expect((await call('POST', '/admin/clients', { body: federated('repo:acme/billing:environment:staging', 'cl_fed3') })).statusCode).toBe(409);
    expect((await call('PATCH', '/admin/clients/cl_fed2', { body: { federated_subject: 'repo:acme/billing:environment:production' } })).statusCode).toBe(409);
    expect((await call('PATCH', '/admin/trusted-issuers/ci', { body: { kind: 'kubernetes' } })).statusCode).toBe(409);
    expect((await call('DELETE', '/admin/trusted-issuers/ci')).statusCode).toBe(409);
    for (const c of ['cl_fed1', 'cl_fed2']) expect((await call('DELETE', `/admin/clients/${c}`)).statusCode).toBe(204);
    expect((await call('POST', '/admin/trusted-issuers', { body: { name: 'spare', kind: 'oidc', issuer: 'https://gitlab.example.com' } })).statusCode).toBe(201);

    expect((await call('GET', '/admin/keys')).statusCode).toBe(200);
    const active = (await call('GET', '/admin/keys')).json().keys.find((k: { status: string }) => k.status === 'active').kid as string;
    expect((await call('POST', `/admin/keys/${active}/revoke`)).statusCode).toBe(409);
    expect((await call('POST', '/admin/keys/rotate')).statusCode).toBe(200);
    expect((await call('POST', `/admin/keys/${active}/revoke`, { body: { rotate: true } })).statusCode).toBe(200);
    expect((await call('GET', '/metrics', { auth: false })).statusCode).toBe(200);

    // The pprof routes: what they answer at once (a profile taken is ended by its DELETE).
    expect((await call('GET', '/debug/pprof/heap')).statusCode).toBe(200);
    const profile = call('GET', '/debug/pprof/profile?seconds=30&format=devtools');
    const window = call('GET', '/debug/runtime?seconds=30');
    const allocs = call('GET', '/debug/pprof/allocs?seconds=30');
    for (const path of ['/debug/pprof/profile', '/debug/runtime', '/debug/pprof/allocs']) {
      // Polls until the route has claimed its kind: then the DELETE ends it.
      while ((await call('DELETE', path)).statusCode === 404) await new Promise((r) => setImmediate(r));
    }
    expect([(await profile).statusCode, (await window).statusCode, (await allocs).statusCode]).toEqual([200, 200, 200]);
    for (const path of ['/debug/pprof/profile', '/debug/runtime', '/debug/pprof/allocs']) {
      expect((await call('DELETE', path)).statusCode).toBe(404);
      expect((await call('GET', `${path}?seconds=0`)).statusCode).toBe(400);
      // Refused by the schema (a repeated parameter) and by the route's checks, in their words.
      const repeated = await call('GET', `${path}?seconds=1&seconds=2`);
      expect(repeated.statusCode).toBe(400);
      expect(repeated.json().message).toMatch(/^seconds must be a whole number from 1 to 60/);
      expect((await call('DELETE', path, { raw: '{', contentType: 'application/json' })).statusCode).toBe(400);
      expect((await call('DELETE', path, { raw: '<x/>', contentType: 'application/xml' })).statusCode).toBe(415);
      expect((await call('DELETE', path, { raw: 'x'.repeat(4096), contentType: 'text/plain' })).statusCode).toBe(413);
    }

    // Every route without the token, with a wrong one, with an unknown query parameter; every body
    // route with a body that is not JSON, not valid JSON, too large, or with a member it does not take.
    const routes = s.server.adminRoutes.filter((r) => r.url !== '/metrics');
    for (const r of routes) {
      const url = r.url.replace(':id', id).replace(':kid', 'nope').replace(':name', 'spare');
      expect((await call(r.method, url, { auth: false })).statusCode).toBe(401);
      // The /admin GET routes refuse unknown query parameters (the others ignore the query).
      if (r.url.startsWith('/admin') && r.method === 'GET') expect((await call(r.method, `${url}?unknown=1`)).statusCode).toBe(400);
      if (r.method === 'GET') continue;
      expect((await call(r.method, url, { raw: 'a=1', contentType: 'application/x-www-form-urlencoded' })).statusCode).toBe(415);
      expect((await call(r.method, url, { raw: '{"a":', contentType: 'application/json' })).statusCode).toBe(400);
      expect((await call(r.method, url, { raw: JSON.stringify({ client_name: 'x'.repeat(4096) }) })).statusCode).toBe(413);
      if (r.url.startsWith('/admin')) expect((await call(r.method, url, { body: { nope: true } })).statusCode).toBe(400);
    }

    // Path parameters that name nothing, or are longer than any id (refused by the router, before the token).
    for (const [bad, status] of [['cl_nope', 404], ['x'.repeat(101), 414]] as const) {
      for (const [method, suffix] of [['GET', ''], ['PATCH', ''], ['DELETE', ''], ['POST', '/secret'], ['POST', '/revoke-tokens'], ['POST', '/disable'], ['POST', '/enable']] as const) {
        const res = await call(method, `/admin/clients/${bad}${suffix}`, method === 'PATCH' ? { body: { client_name: 'x' } } : {});
        expect(res.statusCode).toBe(status);
        if (status === 414) expect(res.body).not.toContain(bad);
      }
      expect((await call('POST', `/admin/keys/${bad}/revoke`)).statusCode).toBe(status);
      const name = bad === 'cl_nope' ? 'nope' : bad;
      for (const method of ['GET', 'PATCH', 'DELETE'] as const) {
        const res = await call(method, `/admin/trusted-issuers/${name}`, method === 'PATCH' ? { body: { audiences: [] } } : {});
        expect(res.statusCode).toBe(status);
      }
    }
    expect((await call('DELETE', '/admin/trusted-issuers/spare')).statusCode).toBe(204);

    const undecodable = await call('GET', '/admin/clients/%E0%A4%A');
    expect(undecodable.statusCode).toBe(400);
    expect(undecodable.json()).toEqual({ error: 'invalid_request', message: 'The request path is not a valid URL' });

    // The database not answering.
    const store = s.server.storage.clients as unknown as Record<string, unknown>;
    const original = store.getClient;
    store.getClient = async () => {
      throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    };
    try {
      s.server.clients.clear();
      const res = await call('GET', `/admin/clients/${id}`);
      expect(res.statusCode).toBe(503);
      expect(res.headers['retry-after']).toBeDefined();
    } finally {
      store.getClient = original;
    }

    expect((await call('DELETE', `/admin/clients/${id}`)).statusCode).toBe(204);

    // Every status documented for a route was answered here, but the faults of the server (500),
    // the database not answering on routes other than the one above (503), and the profiler being
    // busy (409 of the pprof routes, in test/admin/pprof-routes.test.ts): no status is documented
    // for nothing.
    const missing: string[] = [];
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, { responses: Record<string, unknown> }>>)) {
      for (const [method, op] of Object.entries(item)) {
        for (const status of Object.keys(op.responses)) {
          if (status === '500' || status === '503' || (path.startsWith('/debug/') && status === '409')) continue;
          if (!seen.some((x) => x.method === method.toUpperCase() && x.path === path && String(x.status) === status)) missing.push(`${method.toUpperCase()} ${path} ${status}`);
        }
      }
    }
    expect(missing).toEqual([]);
    expect(seen.some((x) => x.status === 503)).toBe(true);
  });
});

describe('the request schemas keep the words of the hand-written checks', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startTestServer();
  });
  afterAll(async () => {
    await s?.close();
  });

  const base = { client_name: 'billing', scope: 'read', audience: [ORDERS] };
  // Each breaks one rule; the schema refuses most of them, the hand-written checks all of them.
  const hostile: Array<Record<string, unknown>> = [
    { client_name: 7 }, { client_name: '' }, { client_name: 'x'.repeat(201) }, { client_name: 'a\u0001b' },
    { scope: ['read'] }, { scope: 'a  b' }, { scope: ' a' }, { scope: 'a"b' }, { scope: 'a a' },
    { default_scope: 5 }, { audience: 'https://x' }, { audience: [5] }, { audience: ['not a uri'] }, { audience: [ORDERS, ORDERS] },
    { audience: Array.from({ length: 101 }, (_, i) => `${ORDERS}/${i}`) }, { audience: [`${ORDERS}#f`] }, { audience: [`https://x/${'a'.repeat(2000)}`] },
    { default_audience: [] }, { default_audience: 'x' }, { grant_types: ['password'] }, { grant_types: 'client_credentials' },
    { grant_types: ['client_credentials', 'client_credentials'] }, { resource_uris: [1] }, { token_endpoint_auth_method: 'none' },
    { jwks: [] }, { jwks: { keys: [] } }, { jwks: { keys: [{ kty: 'oct', k: 'AAAA' }] } }, { jwks: { keys: {} } }, { jwks: { keys: [], x: 1 } },
    { access_token_ttl: '60' }, { access_token_ttl: 0 }, { access_token_ttl: 1.5 }, { access_token_ttl: 10 ** 9 },
    { rate_limit: -1 }, { rate_limit: '1' }, { rate_limit: 2e6 }, { token_reuse: 'yes' }, { disabled: 1 },
    { claims: [] }, { claims: 'x' }, { claims: { iss: 'x' } }, { claims: { sub: 1, aud: 2 } }, { claims: { '': 1 } }, { claims: { ['x'.repeat(65)]: 1 } },
    { claims: Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`c${i}`, i])) }, { claims: { big: 'x'.repeat(5000) } },
    { client_id: 'nope' }, { client_id: 5 }, { client_id: `cl_${'a'.repeat(65)}` }, { client_secret_sha256: 'ABC' },
    { client_secret: 'm2m_cs_x' }, { created_at: 1 }, { jwks_uri: 'https://x' }, { unknown: 1 },
  ];

  it('a refused create is answered with the message of the registry\'s own checks, never the schema\'s', async () => {
    let schemaRefused = 0;
    for (const change of hostile) {
      const body = { ...base, ...change };
      let expected: string | undefined;
      try {
        draftNewClient(body, { min: s.config.tokenTtlMin, max: s.config.tokenTtlMax }, Date.now());
      } catch (err) {
        expected = (err as Error).message;
      }
      const res = await s.admin({ method: 'POST', url: '/admin/clients', payload: body });
      expect(expected, `${JSON.stringify(change)} should be refused`).toBeDefined();
      expect(res.statusCode, JSON.stringify(change)).toBe(400);
      expect(res.json(), JSON.stringify(change)).toEqual({ error: 'invalid_request', message: expected });
      if (!validateCreate(body)) schemaRefused++;
    }
    // Most of them are refused by the schema first (so the schema does check them).
    expect(schemaRefused).toBeGreaterThan(hostile.length / 2);
  });

  it('a refused update, list, rotation or key request keeps its words too', async () => {
    const { clientId } = await s.client();
    const cases: Array<[InjectOptions, RegExp]> = [
      [{ method: 'PATCH', url: `/admin/clients/${clientId}`, payload: { scope: 5 } }, /^scope must be a space-delimited string, got a number$/],
      [{ method: 'PATCH', url: `/admin/clients/${clientId}`, payload: [] as never }, /^The request body must be a JSON object, got an array$/],
      [{ method: 'PATCH', url: `/admin/clients/${clientId}` }, /^The request body must be a JSON object \(Content-Type: application\/json\)$/],
      [{ method: 'GET', url: '/admin/clients?limit=0' }, /^limit must be a whole number between 1 and 1000$/],
      [{ method: 'GET', url: '/admin/clients?limit=1&limit=2' }, /^Query parameter limit must appear once$/],
      [{ method: 'GET', url: '/admin/clients?after=' }, /^after must be a client_id of 1 to 100 characters$/],
      [{ method: 'GET', url: `/admin/clients/${clientId}?x=1` }, /^Unknown query parameter "x"$/],
      [{ method: 'POST', url: `/admin/clients/${clientId}/secret`, payload: { grace_period: '1' } }, /^grace_period must be a non-negative whole number of seconds, got a string$/],
      [{ method: 'POST', url: `/admin/clients/${clientId}/secret`, payload: { grace_period: 10 ** 9 } }, /^grace_period must be a whole number of seconds between 0 and/],
      [{ method: 'POST', url: `/admin/clients/${clientId}/secret`, payload: { grace: 1 } }, /^Unknown field "grace" \(allowed: grace_period\)$/],
      [{ method: 'POST', url: `/admin/clients/${clientId}/disable`, payload: { a: 1 } }, /^This endpoint takes no body members; got "a"$/],
      [{ method: 'POST', url: '/admin/keys/rotate', payload: { now: 'yes' } }, /^now must be true or false, got a string$/],
      [{ method: 'POST', url: '/admin/keys/x/revoke', payload: { rotate: 1 } }, /^rotate must be true or false, got a number$/],
      [{ method: 'POST', url: '/admin/clients', payload: 'null', headers: { 'content-type': 'application/json' } }, /^The request body must be a JSON object, got null$/],
    ];
    for (const [opts, message] of cases) {
      const res = await s.admin(opts);
      expect(res.statusCode, `${opts.method} ${opts.url}`).toBe(400);
      expect(res.json().message, `${opts.method} ${opts.url}`).toMatch(message);
      expect(res.json().message).not.toMatch(FALLBACK);
    }
  });
});

const validateCreate = new Ajv2020({ strict: false, allowUnionTypes: true }).compile(COMPONENTS.ClientCreate!);
