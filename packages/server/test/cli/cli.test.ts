// The compiled m2m-auth CLI, spawned as a user would run it, against a real admin API (Fastify on
// an ephemeral port, registerAdminRoutes, SQLite in memory, a real KeyRing).

import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { ensureBuilt, TSC } from '../helpers/process.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAdminRoutes } from '../../src/admin/routes.js';
import { ClientRegistry } from '../../src/clients/registry.js';
import { TrustRegistry } from '../../src/trusts/registry.js';
import { verifyClientSecret } from '../../src/clients/secrets.js';
import { KeyRing } from '../../src/keys/keyring.js';
import { EventBus } from '../../src/observability/events.js';
import { openStorage } from '../../src/storage/open.js';
import type { Storage } from '../../src/storage/types.js';
import { keyPair } from '../clients/keys.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
// Inside the repository so that the compiled modules resolve node_modules and package.json "type".
const BUILD = join(ROOT, 'node_modules', '.cache', `m2m-auth-cli-test-${process.pid}`);
const MAIN = join(BUILD, 'cli', 'main.js');
const TOKEN = randomBytes(32).toString('base64url');

let work: string;
let storage: Storage;
let keys: KeyRing;
let registry: ClientRegistry;
let trusts: TrustRegistry;
let app: FastifyInstance;
let adminUrl: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the CLI with a clean environment (no M2M_AUTH_* from outside) in the work folder. */
function cli(args: string[], opts: { env?: Record<string, string>; cwd?: string; auth?: boolean } = {}): Promise<Run> {
  const auth = opts.auth === false ? [] : ['--admin-url', adminUrl, '--admin-token', TOKEN];
  return new Promise((done) => {
    execFile(
      process.execPath,
      [MAIN, ...args, ...auth],
      { cwd: opts.cwd ?? work, env: { PATH: process.env.PATH ?? '', ...opts.env }, timeout: 20_000 },
      (err, stdout, stderr) => done({ code: err ? Number((err as { code?: unknown }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

/** A failure: exit code 1 and exactly one line on stderr, no stack trace. */
function expectOneLineError(run: Run, pattern: RegExp): void {
  expect(run.code).toBe(1);
  const lines = run.stderr.split('\n').filter((l) => l !== '');
  expect(lines, run.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(pattern);
  expect(run.stderr).not.toMatch(/\n\s+at /);
  expect(run.stdout).toBe('');
}

beforeAll(async () => {
  ensureBuilt();
  const tsc = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.build.json', '--outDir', BUILD], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  // Type errors elsewhere in a shared checkout do not stop the emit; a missing CLI does.
  if (!existsSync(MAIN)) throw new Error(`CLI build failed:\n${tsc.stdout}${tsc.stderr}`);

  work = mkdtempSync(join(tmpdir(), 'm2m-cli-'));
  storage = await openStorage('sqlite::memory:');
  const events = new EventBus();
  keys = await KeyRing.open(storage.keys, {
    kek: randomBytes(32),
    alg: 'ES256',
    prepublishMs: 3_600_000,
    rotationIntervalMs: 0,
    maxTokenTtlMs: 86_400_000,
    events,
  });
  trusts = new TrustRegistry(storage.trusts, events);
  registry = new ClientRegistry(storage.clients, events, { tokenTtlMin: 60, tokenTtlMax: 86_400, secretGracePeriod: 3600, trusts });
  app = Fastify({ logger: false });
  await registerAdminRoutes(app, { registry, trusts, keys, adminToken: TOKEN, events });
  adminUrl = await app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await app?.close();
  await keys?.stop();
  await storage?.close();
  if (work) rmSync(work, { recursive: true, force: true });
  rmSync(BUILD, { recursive: true, force: true });
});

async function createdId(extra: string[] = []): Promise<{ id: string; secret: string }> {
  const run = await cli(['clients', 'create', '--json', '--name', 'fixture', '--scope', 'read write', '--audience', 'https://api.example.com', ...extra]);
  expect(run.code, run.stderr).toBe(0);
  const body = JSON.parse(run.stdout) as { client_id: string; client_secret: string };
  return { id: body.client_id, secret: body.client_secret };
}

describe('clients create', () => {
  it('prints the client and its secret once, with a warning on stderr', async () => {
    const run = await cli(['clients', 'create', '--name', 'billing', '--scope', 'read write', '--audience', 'https://api.example.com', '--audience', 'urn:example:ledger', '--default-scope', 'read', '--ttl', '600']);
    expect(run.code, run.stderr).toBe(0);
    const id = /^client_id\s+(cl_\S+)$/m.exec(run.stdout)?.[1];
    const secret = /^client_secret\s+(m2m_cs_\S+)$/m.exec(run.stdout)?.[1];
    expect(id).toBeDefined();
    expect(secret).toBeDefined();
    expect(run.stdout).toMatch(/^client_name\s+billing$/m);
    expect(run.stdout).toMatch(/^audience\s+https:\/\/api\.example\.com urn:example:ledger$/m);
    expect(run.stdout).toMatch(/^default_scope\s+read$/m);
    expect(run.stdout).toMatch(/^access_token_ttl\s+600s$/m);
    expect(run.stderr).toMatch(/^Store the client secret now: it is shown only this once/);
    const stored = await registry.read(id!);
    expect(stored).toMatchObject({ clientName: 'billing', scope: ['read', 'write'], defaultScope: ['read'], accessTokenTtl: 600, audience: ['https://api.example.com', 'urn:example:ledger'] });
    expect(verifyClientSecret(stored, secret!, Date.now())).toBe(true);
  });

  it('--json prints the admin API response', async () => {
    const run = await cli(['clients', 'create', '--json', '--name', 'json', '--scope', 'a', '--audience', 'https://api.example.com', '--disabled']);
    expect(run.code, run.stderr).toBe(0);
    const body = JSON.parse(run.stdout);
    expect(body).toMatchObject({ client_name: 'json', scope: 'a', disabled: true, client_secret: expect.stringMatching(/^m2m_cs_/), client_secret_expires_at: 0 });
    expect(run.stderr).toMatch(/Store the client secret now/);
  });

  it('registers a private_key_jwt client with --jwks from a file or inline', async () => {
    const file = join(work, 'jwks.json');
    const jwk = { ...keyPair('ec').publicJwk, kid: 'from-file' };
    writeFileSync(file, JSON.stringify({ keys: [jwk] }));
    const fromFile = await cli(['clients', 'create', '--json', '--name', 'pk', '--audience', 'https://api.example.com', '--auth-method', 'private_key_jwt', '--jwks', file]);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    const body = JSON.parse(fromFile.stdout);
    expect(body.jwks).toEqual({ keys: [jwk] });
    expect(body.client_secret).toBeUndefined();
    expect(fromFile.stderr).toBe('');
    const single = { ...keyPair('ed25519').publicJwk, kid: 'inline' };
    const inline = await cli(['clients', 'create', '--name', 'pk2', '--audience', 'https://api.example.com', '--auth-method', 'private_key_jwt', '--jwks', JSON.stringify(single)]);
    expect(inline.code, inline.stderr).toBe(0);
    expect(inline.stdout).toMatch(/^jwks\s+1 key: inline OKP$/m);
    expectOneLineError(await cli(['clients', 'create', '--name', 'x', '--audience', 'https://a', '--auth-method', 'private_key_jwt', '--jwks', join(work, 'missing.json')]), /^m2m-auth: --jwks: cannot read .*missing\.json: ENOENT$/);
    expectOneLineError(await cli(['clients', 'create', '--name', 'x', '--audience', 'https://a', '--auth-method', 'private_key_jwt', '--jwks', '{nope']), /--jwks: the value is not valid JSON/);
  });

  it('reports the server\'s 400 message on one line', async () => {
    expectOneLineError(await cli(['clients', 'create', '--name', 'x', '--audience', 'not-a-uri']), /^m2m-auth: audience\[0\] "not-a-uri" is not an absolute URI \(HTTP 400\)$/);
    expectOneLineError(await cli(['clients', 'create', '--name', 'x', '--scope', 'a', '--audience', 'https://a', '--ttl', '5']), /access_token_ttl must be a whole number of seconds between 60 and 86400.*\(HTTP 400\)/);
    expectOneLineError(await cli(['clients', 'create', '--name', 'x']), /audience is required/);
  });

  it('usage errors are one line with exit code 1', async () => {
    expectOneLineError(await cli(['clients', 'create', '--colour', 'red']), /^error: unknown option '--colour'/);
    expectOneLineError(await cli(['clients', 'create', '--ttl', 'soon']), /--ttl.*Expected a whole number of seconds/);
    expectOneLineError(await cli(['clients', 'create', '--auth-method', 'none']), /--auth-method.*none.*invalid/);
  });
});

describe('clients list, get, update', () => {
  it('lists as a table, as JSON, page by page', async () => {
    await createdId();
    await createdId();
    const table = await cli(['clients', 'list']);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^CLIENT_ID\s+NAME\s+STATUS\s+AUTH_METHOD\s+SCOPE\s+AUDIENCE$/);
    const all = (await registry.list({ limit: 1000 })).clients;
    expect(lines).toHaveLength(all.length + 1);
    expect(lines[1]).toMatch(new RegExp(`^${all[0]!.clientId}\\s`));
    expect(table.stdout).not.toMatch(/m2m_cs_/);

    const json = await cli(['clients', 'list', '--json']);
    const body = JSON.parse(json.stdout);
    expect(body.next).toBeNull();
    expect(body.clients.map((c: { client_id: string }) => c.client_id)).toEqual(all.map((c) => c.clientId));
    expect(json.stdout).not.toMatch(/"client_secret"|digest/);

    const page = await cli(['clients', 'list', '--limit', '1']);
    expect(page.code).toBe(0);
    expect(page.stdout.trimEnd().split('\n')).toHaveLength(2);
    expect(page.stderr.trim()).toBe(`More clients: m2m-auth clients list --after ${all[0]!.clientId}`);
    const second = await cli(['clients', 'list', '--json', '--limit', '1', '--after', all[0]!.clientId]);
    expect(JSON.parse(second.stdout).clients[0].client_id).toBe(all[1]!.clientId);
    const every = await cli(['clients', 'list', '--json', '--limit', '1', '--all']);
    expect(JSON.parse(every.stdout)).toEqual({ clients: body.clients, next: null });
    expectOneLineError(await cli(['clients', 'list', '--limit', '5000']), /limit must be a whole number between 1 and 1000 \(HTTP 400\)/);
  });

  it('get shows one client without its secret; unknown ids fail with the 404 message', async () => {
    const { id, secret } = await createdId();
    const run = await cli(['clients', 'get', id]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^client_id\\s+${id}$`, 'm'));
    expect(run.stdout).toMatch(/^status\s+enabled$/m);
    expect(run.stdout).toMatch(/^default_scope\s+\(all of scope\)$/m);
    expect(run.stdout).toMatch(/^created_at\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/m);
    expect(run.stdout).not.toContain(secret);
    expect(run.stdout).not.toMatch(/^client_secret\s/m);
    const json = JSON.parse((await cli(['clients', 'get', id, '--json'])).stdout);
    expect(json.client_id).toBe(id);
    expect(json).not.toHaveProperty('client_secret');
    expectOneLineError(await cli(['clients', 'get', 'cl_missing']), /^m2m-auth: Client "cl_missing" not found \(HTTP 404\)$/);
  });

  it('update changes metadata and refuses an empty update', async () => {
    const { id } = await createdId();
    const run = await cli(['clients', 'update', id, '--name', 'renamed', '--scope', 'read', '--default-audience', 'https://api.example.com', '--ttl', '120']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^client_name\s+renamed$/m);
    expect(await registry.read(id)).toMatchObject({ clientName: 'renamed', scope: ['read'], defaultAudience: ['https://api.example.com'], accessTokenTtl: 120 });
    const reset = await cli(['clients', 'update', id, '--reset-ttl', '--reset-default-audience', '--json']);
    expect(JSON.parse(reset.stdout)).toMatchObject({ access_token_ttl: null, default_audience: null });
    expectOneLineError(await cli(['clients', 'update', id]), /^m2m-auth: Nothing to update/);
    expectOneLineError(await cli(['clients', 'update', id, '--default-scope', 'admin']), /default_scope "admin" is not in scope \(HTTP 400\)/);
    expectOneLineError(await cli(['clients', 'update', id, '--ttl', '60', '--reset-ttl']), /either --ttl or --reset-ttl/);
    expectOneLineError(await cli(['clients', 'update', 'cl_missing', '--name', 'x']), /not found \(HTTP 404\)/);
  });

  it('--token-reuse turns token reuse on at create and off at update', async () => {
    const run = await cli(['clients', 'create', '--name', 'reuse', '--scope', 'a', '--audience', 'https://api.example.com', '--token-reuse', 'true']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^token_reuse\s+on$/m);
    const id = /^client_id\s+(cl_\S+)$/m.exec(run.stdout)![1]!;
    expect((await registry.read(id)).tokenReuse).toBe(true);
    const off = await cli(['clients', 'update', id, '--token-reuse', 'false']);
    expect(off.code, off.stderr).toBe(0);
    expect(off.stdout).toMatch(/^token_reuse\s+off$/m);
    expect((await registry.read(id)).tokenReuse).toBe(false);
    expectOneLineError(await cli(['clients', 'update', id, '--token-reuse', 'yes']), /--token-reuse.*Expected true or false/);
  });

  it('--dpop-bound-access-tokens and --fapi2 set the sender-constraint fields; fapi2 with a secret method is one line with HTTP 400', async () => {
    const run = await cli(['clients', 'create', '--name', 'dpop', '--scope', 'a', '--audience', 'https://api.example.com', '--dpop-bound-access-tokens', 'true']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^dpop_bound_access_tokens\s+on$/m);
    expect(run.stdout).toMatch(/^fapi2\s+off$/m);
    const id = /^client_id\s+(cl_\S+)$/m.exec(run.stdout)![1]!;
    expect((await registry.read(id)).dpopBoundAccessTokens).toBe(true);
    const off = await cli(['clients', 'update', id, '--dpop-bound-access-tokens', 'false']);
    expect(off.stdout).toMatch(/^dpop_bound_access_tokens\s+off$/m);
    expect((await registry.read(id)).dpopBoundAccessTokens).toBe(false);
    expectOneLineError(await cli(['clients', 'update', id, '--fapi2', 'true']), /fapi2 requires token_endpoint_auth_method private_key_jwt, tls_client_auth or self_signed_tls_client_auth \(HTTP 400\)/);
  });

  it('--client-id registers the client under a chosen client_id; a clash is one line with HTTP 409', async () => {
    const run = await cli(['clients', 'create', '--client-id', 'cl_cli-chosen', '--name', 'chosen', '--scope', 'a', '--audience', 'https://api.example.com']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^client_id\s+cl_cli-chosen$/m);
    expect((await registry.read('cl_cli-chosen')).clientName).toBe('chosen');
    expectOneLineError(await cli(['clients', 'create', '--client-id', 'cl_cli-chosen', '--name', 'again', '--audience', 'https://api.example.com']),
      /^m2m-auth: A client with client_id "cl_cli-chosen" already exists \(HTTP 409\)$/);
  });

  it('--claims sets custom claims inline or from a file, and {} clears them', async () => {
    const run = await cli(['clients', 'create', '--name', 'claims', '--scope', 'a', '--audience', 'https://api.example.com', '--claims', '{"tenant":"acme","roles":["reader"]}']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^claims\s+\{"tenant":"acme","roles":\["reader"\]\}$/m);
    const id = /^client_id\s+(cl_\S+)$/m.exec(run.stdout)![1]!;
    expect((await registry.read(id)).claims).toStrictEqual({ tenant: 'acme', roles: ['reader'] });
    const file = join(work, 'claims.json');
    writeFileSync(file, '{"team": "billing"}');
    const fromFile = await cli(['clients', 'update', id, '--claims', file]);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect((await registry.read(id)).claims).toStrictEqual({ team: 'billing' });
    const cleared = await cli(['clients', 'update', id, '--claims', '{}']);
    expect(cleared.stdout).toMatch(/^claims\s+\(none\)$/m);
    expectOneLineError(await cli(['clients', 'update', id, '--claims', '{"sub":"x"}']), /claims may not set "sub".*\(HTTP 400\)/);
    expectOneLineError(await cli(['clients', 'update', id, '--claims', '{nope']), /--claims: the value is not valid JSON/);
  });

  it('--tls-client-auth-* sets the one certificate name of a tls_client_auth client (another replaces it), --tls-bound-tokens binds its tokens', async () => {
    const run = await cli(['clients', 'create', '--name', 'mtls', '--scope', 'a', '--audience', 'https://api.example.com',
      '--auth-method', 'tls_client_auth', '--tls-client-auth-san-dns', 'billing.example.com', '--tls-bound-tokens', 'true']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^tls_client_auth_san_dns\s+billing\.example\.com$/m);
    expect(run.stdout).toMatch(/^tls_client_certificate_bound_access_tokens\s+on$/m);
    const id = /^client_id\s+(\S+)$/m.exec(run.stdout)![1]!;
    expect(await registry.read(id)).toMatchObject({ tlsClientAuth: { field: 'tls_client_auth_san_dns', value: 'billing.example.com' }, tlsClientCertificateBoundAccessTokens: true, secrets: [] });
    const moved = await cli(['clients', 'update', id, '--tls-client-auth-subject-dn', 'CN=billing,O=Example', '--tls-bound-tokens', 'false']);
    expect(moved.code, moved.stderr).toBe(0);
    expect(await registry.read(id)).toMatchObject({ tlsClientAuth: { field: 'tls_client_auth_subject_dn', value: 'CN=billing,O=Example' }, tlsClientCertificateBoundAccessTokens: false });
    expectOneLineError(await cli(['clients', 'update', id, '--tls-client-auth-san-ip', '10.0.0.1', '--tls-client-auth-san-dns', 'x.example.com']), /Give one of --tls-client-auth-subject-dn/);
    expectOneLineError(await cli(['clients', 'update', id, '--tls-client-auth-san-ip', 'not-an-ip']), /tls_client_auth_san_ip must be an IPv4 or IPv6 address.*\(HTTP 400\)/);
  });

  it('--rate-limit sets the client\'s own token rate, --reset-rate-limit gives it back the server default', async () => {
    const run = await cli(['clients', 'create', '--name', 'limited', '--scope', 'a', '--audience', 'https://api.example.com', '--rate-limit', '2.5']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^rate_limit\s+2\.5\/s$/m);
    const id = /^client_id\s+(cl_\S+)$/m.exec(run.stdout)![1]!;
    expect((await registry.read(id)).rateLimit).toBe(2.5);
    const none = await cli(['clients', 'update', id, '--rate-limit', '0']);
    expect(none.stdout).toMatch(/^rate_limit\s+none$/m);
    expect((await registry.read(id)).rateLimit).toBe(0);
    const reset = await cli(['clients', 'update', id, '--reset-rate-limit', '--json']);
    expect(JSON.parse(reset.stdout)).toMatchObject({ rate_limit: null });
    expect((await registry.read(id)).rateLimit).toBeNull();
    expectOneLineError(await cli(['clients', 'update', id, '--rate-limit', '-1']), /--rate-limit.*Expected a number of requests a second/);
    expectOneLineError(await cli(['clients', 'update', id, '--rate-limit', '5000000']), /rate_limit must be .* \(HTTP 400\)/);
    expectOneLineError(await cli(['clients', 'update', id, '--rate-limit', '1', '--reset-rate-limit']), /either --rate-limit or --reset-rate-limit/);
  });

  it('update to a secret method prints the new secret once', async () => {
    const pk = await cli(['clients', 'create', '--json', '--name', 'pk', '--audience', 'https://api.example.com', '--auth-method', 'private_key_jwt', '--jwks', JSON.stringify(keyPair('ec').publicJwk)]);
    const id = JSON.parse(pk.stdout).client_id as string;
    const run = await cli(['clients', 'update', id, '--auth-method', 'client_secret_post']);
    expect(run.code, run.stderr).toBe(0);
    const secret = /^client_secret\s+(m2m_cs_\S+)$/m.exec(run.stdout)?.[1];
    expect(verifyClientSecret(await registry.read(id), secret!, Date.now())).toBe(true);
    expect(run.stderr).toMatch(/Store the client secret now/);
  });
});

describe('clients actions', () => {
  it('rotate-secret prints the new secret and the grace period of the old one', async () => {
    const { id, secret } = await createdId();
    const run = await cli(['clients', 'rotate-secret', id]);
    expect(run.code, run.stderr).toBe(0);
    const next = /^client_secret\s+(m2m_cs_\S+)$/m.exec(run.stdout)?.[1];
    expect(run.stdout).toMatch(/^The previous secret works until \d{4}-\d\d-\d\dT/m);
    expect(run.stderr).toMatch(/Store the client secret now/);
    let stored = await registry.read(id);
    expect(verifyClientSecret(stored, secret, Date.now())).toBe(true);
    expect(verifyClientSecret(stored, next!, Date.now())).toBe(true);
    const now = await cli(['clients', 'rotate-secret', id, '--grace', '0', '--json']);
    const body = JSON.parse(now.stdout);
    stored = await registry.read(id);
    expect(verifyClientSecret(stored, next!, Date.now())).toBe(false);
    expect(verifyClientSecret(stored, body.client_secret, Date.now())).toBe(true);
    expectOneLineError(await cli(['clients', 'rotate-secret', id, '--grace', '-1']), /--grace/);
  });

  it('disable, enable, revoke-tokens and delete', async () => {
    const { id } = await createdId();
    const off = await cli(['clients', 'disable', id]);
    expect(off.stdout.trim()).toBe(`Client ${id} is disabled.`);
    expect((await registry.read(id)).disabled).toBe(true);
    const on = await cli(['clients', 'enable', id, '--json']);
    expect(JSON.parse(on.stdout).disabled).toBe(false);
    expect((await registry.read(id)).disabled).toBe(false);
    const before = Date.now();
    const kill = await cli(['clients', 'revoke-tokens', id]);
    expect(kill.code).toBe(0);
    expect(kill.stdout).toMatch(new RegExp(`^Tokens issued to ${id} before \\d{4}-.*Z are inactive\\.$`, 'm'));
    expect((await registry.read(id)).tokensRevokedAt).toBeGreaterThanOrEqual(before);
    const del = await cli(['clients', 'delete', id]);
    expect(del.stdout.trim()).toBe(`Client ${id} is deleted.`);
    expect(await registry.get(id)).toBeUndefined();
    expectOneLineError(await cli(['clients', 'delete', id]), /not found \(HTTP 404\)/);
    expectOneLineError(await cli(['clients', 'disable', id]), /not found \(HTTP 404\)/);
  });
});

describe('trusts and federated clients (issue 17)', () => {
  it('create, list, get, update and delete a trust; --jwks-file and --ca-file read files', async () => {
    const jwksFile = join(work, 'cluster-jwks.json');
    const jwk = { ...keyPair('ec').publicJwk, kid: 'sa-key' };
    writeFileSync(jwksFile, JSON.stringify({ keys: [jwk] }));
    const created = await cli(['trusts', 'create', 'cli-cluster', '--kind', 'kubernetes', '--issuer', 'https://kubernetes.default.svc.cluster.local',
      '--jwks-file', jwksFile, '--audience', 'm2m-auth', '--max-token-lifetime', '7200', '--single-use-jti', 'false']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^name\s+cli-cluster$/m);
    expect(created.stdout).toMatch(/^jwks\s+1 key: sa-key EC$/m);
    expect(created.stdout).toMatch(/^max_token_lifetime\s+7200s$/m);
    expect(created.stdout).toMatch(/^single_use_jti\s+off$/m);
    expect(await trusts.read('cli-cluster')).toMatchObject({ kind: 'kubernetes', audiences: ['m2m-auth'], singleUseJti: false, jwks: { keys: [{ kid: 'sa-key' }] } });

    const list = await cli(['trusts', 'list']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout).toMatch(/^NAME\s+KIND\s+ISSUER_OR_TRUST_DOMAIN\s+KEYS_FROM$/m);
    expect(list.stdout).toMatch(/^cli-cluster\s+kubernetes\s+https:\/\/kubernetes\.default\.svc\.cluster\.local\s+static jwks$/m);
    const json = JSON.parse((await cli(['trusts', 'get', 'cli-cluster', '--json'])).stdout);
    expect(json).toMatchObject({ name: 'cli-cluster', max_token_lifetime: 7200 });

    const updated = await cli(['trusts', 'update', 'cli-cluster', '--json', '--reset', 'max_token_lifetime', '--reset', 'single_use_jti']);
    expect(updated.code, updated.stderr).toBe(0);
    expect(JSON.parse(updated.stdout)).toMatchObject({ max_token_lifetime: 86400, single_use_jti: null });
    expectOneLineError(await cli(['trusts', 'update', 'cli-cluster']), /^m2m-auth: Nothing to update/);
    expectOneLineError(await cli(['trusts', 'update', 'cli-cluster', '--issuer', 'http://insecure.example']), /issuer must be an https URL/);
    expectOneLineError(await cli(['trusts', 'create', 'x', '--kind', 'oidc', '--issuer', 'https://a.example', '--ca-file', join(work, 'missing.pem')]),
      /^m2m-auth: --ca-file: cannot read .*missing\.pem: ENOENT$/);
    const badCa = join(work, 'bad-ca.pem');
    writeFileSync(badCa, 'not a certificate');
    expectOneLineError(await cli(['trusts', 'create', 'x', '--kind', 'kubernetes', '--issuer', 'https://a.example', '--jwks-uri', 'https://10.0.0.1/jwks', '--ca-file', badCa]),
      /ca_bundle must hold at least one PEM certificate/);
    expectOneLineError(await cli(['trusts', 'create', 'x', '--kind', 'aws', '--issuer', 'https://a.example']), /--kind.*aws/);

    const deleted = await cli(['trusts', 'delete', 'cli-cluster']);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(deleted.stdout.trim()).toBe('Trusted issuer cli-cluster is deleted.');
    expectOneLineError(await cli(['trusts', 'get', 'cli-cluster']), /not found/);
  });

  it('clients create --auth-method federated_jwt; the trust cannot go while the client names it', async () => {
    expect((await cli(['trusts', 'create', 'gha', '--kind', 'oidc', '--issuer', 'https://token.actions.githubusercontent.com'])).code).toBe(0);
    const created = await cli(['clients', 'create', '--name', 'deploy', '--audience', 'https://api.example.com', '--auth-method', 'federated_jwt',
      '--federated-issuer', 'gha', '--federated-subject', 'repo:acme/billing:environment:production', '--federated-claims', '{"repository":"acme/billing"}']);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^federated_issuer\s+gha$/m);
    expect(created.stdout).toMatch(/^federated_subject\s+repo:acme\/billing:environment:production$/m);
    expect(created.stdout).toMatch(/^federated_claims\s+\{"repository":"acme\/billing"\}$/m);
    expect(created.stdout).not.toMatch(/client_secret/);
    expect(created.stderr).toBe('');
    const id = /^client_id\s+(cl_\S+)$/m.exec(created.stdout)![1]!;
    expectOneLineError(await cli(['clients', 'create', '--name', 'copy', '--audience', 'https://api.example.com', '--auth-method', 'federated_jwt',
      '--federated-issuer', 'gha', '--federated-subject', 'repo:acme/billing:environment:production']), /HTTP 409.*belongs to one client at most|belongs to one client at most.*409/);
    expectOneLineError(await cli(['trusts', 'delete', 'gha']), new RegExp(`is the federated_issuer of client ${id}: change or delete it first`));
    expect((await cli(['clients', 'delete', id])).code).toBe(0);
    expect((await cli(['trusts', 'delete', 'gha'])).code).toBe(0);
  });
});

describe('keys', () => {
  it('list and rotate', async () => {
    const list = await cli(['keys', 'list']);
    expect(list.code, list.stderr).toBe(0);
    expect(list.stdout.split('\n')[0]).toMatch(/^KID\s+ALG\s+STATUS\s+CREATED\s+SIGNS_FROM\s+RETIRED\s+REVOKED\s+UNPUBLISHED_AT$/);
    const before = JSON.parse((await cli(['keys', 'list', '--json'])).stdout).keys as Array<{ kid: string }>;
    const rotate = await cli(['keys', 'rotate']);
    expect(rotate.code, rotate.stderr).toBe(0);
    const kid = /^New key (\S+) \(ES256\) is published; it signs from \d{4}-/m.exec(rotate.stdout)?.[1];
    expect(kid).toBeDefined();
    expect(before.map((k) => k.kid)).not.toContain(kid);
    const after = JSON.parse((await cli(['keys', 'list', '--json'])).stdout).keys as Array<{ kid: string; status: string }>;
    expect(after.find((k) => k.kid === kid)?.status).toBe('pending');
    expect(JSON.stringify(after)).not.toMatch(/private|"d"/i);
  });

  it('rotate --now, then revoke: refused for the signing key without --rotate, a replacement with it, 404 for an unknown kid', async () => {
    const now = await cli(['keys', 'rotate', '--now']);
    expect(now.code, now.stderr).toBe(0);
    const signing = /^New key (\S+) \(ES256\) is published and signs from now \(\d{4}-.*\); the previous key is retired\.$/m.exec(now.stdout)?.[1];
    expect(signing).toBeDefined();
    const listed = JSON.parse((await cli(['keys', 'list', '--json'])).stdout).keys as Array<{ kid: string; status: string }>;
    expect(listed.find((k) => k.kid === signing)?.status).toBe('active');
    const retired = listed.find((k) => k.status === 'retired')!.kid;

    expectOneLineError(await cli(['keys', 'revoke', signing!]), /is the key that signs tokens now; .*--rotate\)\. \(HTTP 409\)$/);
    expect(keys.sign({ sub: 'x' }).kid).toBe(signing);

    const alone = await cli(['keys', 'revoke', retired]);
    expect(alone.code, alone.stderr).toBe(0);
    expect(alone.stdout).toContain(`Key ${retired} is revoked: it is no longer published, signs nothing more, and every token it signed is inactive at introspection.`);
    expect(alone.stdout).toContain('within its cache age, 10 minutes by default');
    expect(alone.stdout).not.toContain('New key');

    const replaced = await cli(['keys', 'revoke', signing!, '--rotate', '--json']);
    expect(replaced.code, replaced.stderr).toBe(0);
    const body = JSON.parse(replaced.stdout) as { key: { kid: string; status: string }; replacement: { kid: string; status: string } };
    expect(body.key).toMatchObject({ kid: signing, status: 'revoked' });
    expect(body.replacement.status).toBe('active');
    expect(keys.sign({ sub: 'x' }).kid).toBe(body.replacement.kid);
    expect(keys.jwks().keys.map((k) => k.kid)).not.toContain(signing);
    const table = (await cli(['keys', 'list'])).stdout.split('\n');
    expect(table.find((l) => l.startsWith(signing!))).toMatch(/\srevoked\s/);

    expectOneLineError(await cli(['keys', 'revoke', 'no-such-kid']), /^m2m-auth: Signing key "no-such-kid" not found \(HTTP 404\)$/);
    // A kid is a base64url thumbprint: one in 64 begins with '-', and is still a kid, not an option.
    expectOneLineError(await cli(['keys', 'revoke', '-jI4_no-such-kid', '--rotate']), /^m2m-auth: Signing key "-jI4_no-such-kid" not found \(HTTP 404\)$/);
  });
});

describe('admin API discovery and errors', () => {
  it('reads the token from <data-dir>/admin-token (flag, env, default ./data)', async () => {
    const dataDir = join(work, 'custom-data');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(join(dataDir, 'admin-token'), `${TOKEN}\n`, { mode: 0o600 });
    const viaFlag = await cli(['clients', 'list', '--admin-url', adminUrl, '--data-dir', dataDir], { auth: false });
    expect(viaFlag.code, viaFlag.stderr).toBe(0);
    const viaEnv = await cli(['clients', 'list'], { auth: false, env: { M2M_AUTH_DATA_DIR: dataDir, M2M_AUTH_ADMIN_URL: adminUrl } });
    expect(viaEnv.code, viaEnv.stderr).toBe(0);
    const cwd = join(work, 'project');
    mkdirSync(join(cwd, 'data'), { recursive: true });
    writeFileSync(join(cwd, 'data', 'admin-token'), TOKEN, { mode: 0o600 });
    const port = new URL(adminUrl).port;
    const viaDefault = await cli(['clients', 'list', '--json'], { auth: false, cwd, env: { M2M_AUTH_ADMIN_LISTEN: `0.0.0.0:${port}` } });
    expect(viaDefault.code, viaDefault.stderr).toBe(0);
    expect(JSON.parse(viaDefault.stdout)).toHaveProperty('clients');
    // The flag wins over the environment and the file.
    const flagWins = await cli(['clients', 'list', '--admin-url', adminUrl, '--admin-token', 'wrong'], { auth: false, env: { M2M_AUTH_ADMIN_TOKEN: TOKEN } });
    expectOneLineError(flagWins, /refused the admin token \(401\)/);
    const envToken = await cli(['clients', 'list', '--admin-url', adminUrl], { auth: false, env: { M2M_AUTH_ADMIN_TOKEN: TOKEN } });
    expect(envToken.code).toBe(0);
  });

  it('a wrong token is a one-line 401 error that does not echo the token', async () => {
    const run = await cli(['clients', 'list', '--admin-url', adminUrl, '--admin-token', 'not-the-token-at-all'], { auth: false });
    expectOneLineError(run, new RegExp(`^m2m-auth: The admin API at ${adminUrl} refused the admin token \\(401\\): The admin token is not valid$`));
    expect(run.stderr).not.toContain('not-the-token-at-all');
  });

  it('a missing token names the file it looked for', async () => {
    const run = await cli(['clients', 'list', '--admin-url', adminUrl, '--data-dir', join(work, 'nowhere')], { auth: false });
    expectOneLineError(run, /^m2m-auth: No admin token: pass --admin-token, set M2M_AUTH_ADMIN_TOKEN, .*nowhere\/admin-token does not exist\)$/);
  });

  it('an unreachable admin API is a one-line error', async () => {
    const probe = Fastify();
    const url = await probe.listen({ host: '127.0.0.1', port: 0 });
    await probe.close();
    const run = await cli(['keys', 'list', '--admin-url', url, '--admin-token', TOKEN], { auth: false });
    expectOneLineError(run, new RegExp(`^m2m-auth: Cannot reach the admin API at ${url}: ECONNREFUSED$`));
    expectOneLineError(await cli(['keys', 'list', '--admin-url', 'ftp://x', '--admin-token', TOKEN], { auth: false }), /admin URL must be http or https/);
  });
});

describe('migrate and serve', () => {
  it('migrate applies the schema and says so; a bad URL is a one-line error', async () => {
    const db = join(work, 'migrate', 'db.sqlite');
    const first = await cli(['migrate', '--database-url', `sqlite:${db}`], { auth: false });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(new RegExp(`^sqlite:${db}: .*up to date\\.$`, 'm'));
    expect(existsSync(db)).toBe(true);
    const again = await cli(['migrate'], { auth: false, env: { M2M_AUTH_DATABASE_URL: `sqlite:${db}` } });
    expect(again.code, again.stderr).toBe(0);
    expectOneLineError(await cli(['migrate', '--database-url', 'mysql://u:pw@h/db'], { auth: false }), /^m2m-auth: Unsupported database URL scheme "mysql:"/);
  });

  it('serve starts both listeners; the CLI finds the generated token in the data folder; SIGTERM stops it', async () => {
    const dataDir = join(work, 'serve-data');
    const child = spawn(process.execPath, [MAIN, 'serve', '--listen', '127.0.0.1:0', '--admin-listen', '127.0.0.1:0', '--data-dir', dataDir, '--database-url', 'sqlite::memory:', '--log-level', 'info'], {
      cwd: work,
      env: { PATH: process.env.PATH ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    try {
      const listening = await new Promise<{ adminUrl: string }>((done, fail) => {
        const timer = setTimeout(() => fail(new Error(`serve did not start: ${out}${err}`)), 20_000);
        child.stdout.on('data', (d: Buffer) => {
          out += d.toString();
          for (const line of out.split('\n')) {
            if (!line.includes('m2m-auth listening')) continue;
            clearTimeout(timer);
            done(JSON.parse(line) as { adminUrl: string });
          }
        });
        child.on('exit', () => fail(new Error(`serve exited: ${out}${err}`)));
      });
      expect(existsSync(join(dataDir, 'admin-token'))).toBe(true);
      const run = await cli(['clients', 'create', '--json', '--name', 'e2e', '--audience', 'https://api.example.com', '--admin-url', listening.adminUrl, '--data-dir', dataDir], { auth: false });
      expect(run.code, run.stderr).toBe(0);
      expect(JSON.parse(run.stdout).client_secret).toMatch(/^m2m_cs_/);
      // The token is logged as a path, never as a value.
      expect(out).not.toContain((await import('node:fs')).readFileSync(join(dataDir, 'admin-token'), 'utf8').trim());
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    // Nothing on stderr but runtime deprecation notices.
    expect(err.split('\n').filter((l) => l !== '' && !/Deprecation|--trace-warnings/.test(l))).toEqual([]);
  });

  it('serve reports a bad configuration on one line', async () => {
    const run = await cli(['serve', '--token-ttl', 'soon'], { auth: false });
    expectOneLineError(run, /^m2m-auth: option --token-ttl \(M2M_AUTH_TOKEN_TTL\) must be a whole number, got "soon"$/);
  });
});
