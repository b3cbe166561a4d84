// `m2m-auth export` and `import` (issue 16): the whole state of a database moved SQLite to
// PostgreSQL and back, with real servers on each side: every client still authenticates (grace
// secrets too), every token issued before introspects the same, revocations, kill switches and a
// revoked signing key hold. And the refusals: a truncated or changed document, another KEK, a database not empty.

import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/program.js';
import { isEmpty } from '../../src/cli/state-document.js';
import { openStorage } from '../../src/storage/open.js';
import { basic, ORDERS, startTestServer, type TestServer } from '../helpers/server.js';

const PG_URL = process.env.M2M_AUTH_TEST_DATABASE_URL;
if (!PG_URL) console.warn('export/import round trip through PostgreSQL skipped: set M2M_AUTH_TEST_DATABASE_URL');

const KEK = randomBytes(32).toString('base64');
const ISSUER = 'http://localhost:8080';
const dirs: string[] = [];
const schemas: string[] = [];

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'm2m-export-'));
  dirs.push(d);
  return d;
}

async function cli(...args: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(['node', 'm2m-auth', ...args], { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

/** A database URL of its own: a new SQLite file, or a new schema of the test PostgreSQL database. */
async function newDatabase(kind: 'sqlite' | 'postgres'): Promise<string> {
  if (kind === 'sqlite') return `sqlite:${join(tempDir(), 'm2m-auth.db')}`;
  const schema = `m2m_exp_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: PG_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA ${schema}`);
  await admin.end();
  schemas.push(schema);
  const url = new URL(PG_URL!);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.href;
}

afterAll(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  if (schemas.length > 0) {
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    for (const s of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`);
    await admin.end();
  }
});

function server(databaseUrl: string): Promise<TestServer> {
  return startTestServer({ databaseUrl, kek: KEK, issuer: ISSUER }, { dataDir: tempDir() });
}

interface World {
  /** client_id -> the secrets that must authenticate it. */
  secrets: Map<string, string[]>;
  disabled: { id: string; secret: string };
  /** Tokens and what introspection answered for each at the source. */
  tokens: Array<{ token: string; caller: [string, string]; answer: string }>;
  kids: string[];
  /** The trusted issuer and the federated client that names it (issue 17), as the admin API shows them. */
  trust: unknown;
  federated: unknown;
}

const FEDERATED_TRUST = { name: 'prod-cluster', kind: 'kubernetes', issuer: 'https://kubernetes.default.svc.cluster.local', audiences: ['m2m-auth'], max_token_lifetime: 7200 };
const FEDERATED_CLIENT = {
  client_id: 'cl_federated', client_name: 'billing', scope: 'orders:read', audience: [ORDERS], token_endpoint_auth_method: 'federated_jwt',
  federated_issuer: 'prod-cluster', federated_subject: 'system:serviceaccount:payments:billing', federated_claims: { 'kubernetes.io': { namespace: 'payments' } },
};

async function introspect(t: TestServer, token: string, [id, secret]: [string, string]): Promise<string> {
  const res = await t.post('/oauth2/introspect', { token }, { authorization: basic(id, secret) });
  expect(res.statusCode).toBe(200);
  return res.body;
}

async function tokenOf(t: TestServer, id: string, secret: string): Promise<string> {
  const res = await t.token(id, secret);
  expect(res.statusCode, res.body).toBe(200);
  return res.json().access_token as string;
}

/** Clients, tokens, a revocation, a kill switch, a disabled client, a rotated secret and a rotated key. */
async function populate(t: TestServer): Promise<World> {
  const a = await t.server.clients.create({ client_id: 'cl_tenant', client_name: 'A', scope: 'orders:read', audience: [ORDERS], claims: { tenant: 'acme' } } as never);
  // The first key leaks: revoked (a new one signs at once), and the token it signed is inactive.
  const tLeaked = await tokenOf(t, 'cl_tenant', a.clientSecret!);
  const first = ((await t.admin({ method: 'GET', url: '/admin/keys' })).json() as { keys: Array<{ kid: string }> }).keys[0]!.kid;
  expect((await t.admin({ method: 'POST', url: `/admin/keys/${first}/revoke`, payload: { rotate: true } })).statusCode).toBe(200);
  const b = await t.client();
  const rotated = await t.server.clients.rotateSecret(b.clientId, 3600);
  const killed = await t.client();
  const disabled = await t.client();
  const tA = await tokenOf(t, 'cl_tenant', a.clientSecret!);
  const tRevoked = await tokenOf(t, 'cl_tenant', a.clientSecret!);
  expect((await t.post('/oauth2/revoke', { token: tRevoked }, { authorization: basic('cl_tenant', a.clientSecret!) })).statusCode).toBe(200);
  const tB = await tokenOf(t, b.clientId, b.clientSecret);
  const tKilled = await tokenOf(t, killed.clientId, killed.clientSecret);
  t.clock.advance(5);
  await t.server.clients.revokeTokens(killed.clientId);
  t.clock.advance(5);
  await t.server.clients.setDisabled(disabled.clientId, true);
  expect((await t.admin({ method: 'POST', url: '/admin/keys/rotate' })).statusCode).toBe(200);
  const callerA: [string, string] = ['cl_tenant', a.clientSecret!];
  const tokens = [
    { token: tLeaked, caller: callerA },
    { token: tA, caller: callerA },
    { token: tRevoked, caller: callerA },
    { token: tB, caller: [b.clientId, rotated.clientSecret] as [string, string] },
    { token: tKilled, caller: [killed.clientId, killed.clientSecret] as [string, string] },
  ];
  const answered = [];
  for (const x of tokens) answered.push({ ...x, answer: await introspect(t, x.token, x.caller) });
  expect(JSON.parse(answered[1]!.answer)).toMatchObject({ active: true, tenant: 'acme' });
  expect(answered.map((x) => JSON.parse(x.answer).active)).toEqual([false, true, false, true, false]);
  const jwks = (await t.inject({ method: 'GET', url: '/oauth2/jwks' })).json() as { keys: Array<{ kid: string }> };
  const trust = await t.admin({ method: 'POST', url: '/admin/trusted-issuers', payload: FEDERATED_TRUST });
  expect(trust.statusCode, trust.body).toBe(201);
  const federated = await t.admin({ method: 'POST', url: '/admin/clients', payload: FEDERATED_CLIENT });
  expect(federated.statusCode, federated.body).toBe(201);
  return {
    trust: trust.json(),
    federated: federated.json(),
    secrets: new Map([
      ['cl_tenant', [a.clientSecret!]],
      [b.clientId, [b.clientSecret, rotated.clientSecret]],
      [killed.clientId, [killed.clientSecret]],
    ]),
    disabled: { id: disabled.clientId, secret: disabled.clientSecret },
    tokens: answered,
    kids: jwks.keys.map((k) => k.kid).sort(),
  };
}

/** What must hold on a server started on an imported database. */
async function holds(t: TestServer, world: World): Promise<void> {
  for (const [id, secrets] of world.secrets) for (const s of secrets) expect((await t.token(id, s)).statusCode, id).toBe(200);
  expect((await t.token(world.disabled.id, world.disabled.secret)).statusCode).toBe(401);
  for (const x of world.tokens) expect(await introspect(t, x.token, x.caller)).toBe(x.answer);
  const jwks = (await t.inject({ method: 'GET', url: '/oauth2/jwks' })).json() as { keys: Array<{ kid: string }> };
  expect(jwks.keys.map((k) => k.kid).sort()).toEqual(world.kids);
  expect((await t.admin({ method: 'GET', url: '/admin/trusted-issuers/prod-cluster' })).json()).toEqual(world.trust);
  expect((await t.admin({ method: 'GET', url: '/admin/clients/cl_federated' })).json()).toEqual(world.federated);
  // The trust is named: it cannot go while its client is there.
  expect((await t.admin({ method: 'DELETE', url: '/admin/trusted-issuers/prod-cluster' })).statusCode).toBe(409);
}

async function exportFrom(databaseUrl: string): Promise<string> {
  const file = join(tempDir(), 'state.json');
  const r = await cli('export', '--database-url', databaseUrl, '--kek', KEK, '-o', file);
  expect(r.code, r.err.join('\n')).toBe(0);
  expect(r.err.at(-1)).toMatch(/^Exported 1 trusted issuers, 5 clients, 3 signing keys, 1 revocations, 0 replay entries from .* to /);
  return file;
}

async function importInto(databaseUrl: string, file: string, ...flags: string[]): Promise<{ code: number; out: string[]; err: string[] }> {
  return cli('import', '-f', file, '--database-url', databaseUrl, '--kek', KEK, ...flags);
}

/** The seal of a state document as export makes it (state-document.ts): HMAC-SHA256 under a key derived from the KEK. */
function sealed(body: Record<string, unknown>): Record<string, unknown> {
  const key = Buffer.from(hkdfSync('sha256', Buffer.from(KEK, 'base64'), Buffer.alloc(0), 'm2m-auth state document v1', 32));
  return { ...body, mac: createHmac('sha256', key).update(JSON.stringify(body)).digest('base64url') };
}

describe('a round trip through export and import', () => {
  let world: World;
  let sourceUrl: string;

  beforeAll(async () => {
    sourceUrl = await newDatabase('sqlite');
    const source = await server(sourceUrl);
    try {
      world = await populate(source);
    } finally {
      await source.close();
    }
  });

  it('SQLite to SQLite: everything holds on the new database', async () => {
    const file = await exportFrom(sourceUrl);
    const target = await newDatabase('sqlite');
    const r = await importInto(target, file);
    expect(r.code, r.err.join('\n')).toBe(0);
    expect(r.out).toEqual([`Imported into ${target}: 1 trusted issuers, 5 clients, 3 signing keys, 1 revocations, 0 replay entries.`]);
    const t = await server(target);
    try {
      await holds(t, world);
    } finally {
      await t.close();
    }
  });

  it('reads a version 1 document (before trusted issuers): its clients are imported, without federation', async () => {
    const doc = JSON.parse(readFileSync(await exportFrom(sourceUrl), 'utf8'));
    const { mac: _mac, trusted_issuers: _trusts, ...rest } = doc;
    const clients = (rest.clients as Array<Record<string, unknown>>)
      .filter((c) => c.federation === null)
      .map(({ federation: _f, ...c }) => c);
    const file = join(tempDir(), 'v1.json');
    writeFileSync(file, JSON.stringify(sealed({ ...rest, version: 1, clients })));
    const target = await newDatabase('sqlite');
    const r = await importInto(target, file);
    expect(r.code, r.err.join('\n')).toBe(0);
    expect(r.out).toEqual([`Imported into ${target}: 0 trusted issuers, 4 clients, 3 signing keys, 1 revocations, 0 replay entries.`]);
    const t = await server(target);
    try {
      for (const [id, secrets] of world.secrets) for (const s of secrets) expect((await t.token(id, s)).statusCode, id).toBe(200);
      expect((await t.admin({ method: 'GET', url: '/admin/trusted-issuers' })).json()).toEqual({ trusted_issuers: [], next: null });
      expect((await t.admin({ method: 'GET', url: '/admin/clients/cl_tenant' })).json()).toMatchObject({ federated_issuer: null });
    } finally {
      await t.close();
    }
  });

  it.skipIf(!PG_URL)('SQLite to PostgreSQL and back: everything holds on each', async () => {
    const pgUrl = await newDatabase('postgres');
    expect((await importInto(pgUrl, await exportFrom(sourceUrl))).code).toBe(0);
    const onPg = await server(pgUrl);
    try {
      await holds(onPg, world);
    } finally {
      await onPg.close();
    }
    const back = await newDatabase('sqlite');
    const r = await importInto(back, await exportFrom(pgUrl));
    expect(r.code, r.err.join('\n')).toBe(0);
    const onSqlite = await server(back);
    try {
      await holds(onSqlite, world);
    } finally {
      await onSqlite.close();
    }
  });

  describe('refusals, each writing nothing', () => {
    async function refused(file: string, pattern: RegExp, flags: string[] = [], kek = KEK): Promise<void> {
      const target = await newDatabase('sqlite');
      const r = await cli('import', '-f', file, '--database-url', target, '--kek', kek, ...flags);
      expect(r.code).toBe(1);
      expect(r.err).toHaveLength(1);
      expect(r.err[0]).toMatch(pattern);
      const storage = await openStorage(target);
      try {
        expect(await isEmpty(storage, Date.now())).toBe(true);
      } finally {
        await storage.close();
      }
    }

    it('a truncated document', async () => {
      const file = await exportFrom(sourceUrl);
      const text = readFileSync(file, 'utf8');
      writeFileSync(file, text.slice(0, Math.floor(text.length / 2)));
      await refused(file, /is not a whole JSON document \(truncated, or not an m2m-auth export\); nothing was imported$/);
    });

    it('a document changed after export: a scope widened, a kill switch removed, a revocation dropped', async () => {
      const file = await exportFrom(sourceUrl);
      const doc = JSON.parse(readFileSync(file, 'utf8'));
      for (const change of [
        (d: typeof doc) => { d.clients[0].scope.push('admin'); },
        (d: typeof doc) => { for (const c of d.clients) c.tokensRevokedAt = null; },
        (d: typeof doc) => { d.revocations = []; },
        (d: typeof doc) => { d.mac = d.mac.replace(/^./, (ch: string) => (ch === 'A' ? 'B' : 'A')); },
        (d: typeof doc) => { d.extra = 1; },
      ]) {
        const copy = JSON.parse(JSON.stringify(doc));
        change(copy);
        writeFileSync(file, JSON.stringify(copy));
        await refused(file, /was changed after it was exported \(its seal does not match\)/);
      }
    });

    it('a document exported under another KEK', async () => {
      const file = await exportFrom(sourceUrl);
      await refused(file, /was exported under another key-encryption key: this KEK cannot open its signing keys/, [], randomBytes(32).toString('base64'));
    });

    it('another format, another version', async () => {
      const file = join(tempDir(), 'other.json');
      writeFileSync(file, JSON.stringify({ version: 1, clients: [] }));
      await refused(file, /is not an m2m-auth export/);
      const doc = JSON.parse(readFileSync(await exportFrom(sourceUrl), 'utf8'));
      writeFileSync(file, JSON.stringify({ ...doc, version: 3 }));
      await refused(file, /is version 3 of the export format; this m2m-auth reads versions 1 and 2/);
    });

    it('a document changed after export: a trust\'s issuer or a federated subject', async () => {
      const file = await exportFrom(sourceUrl);
      const doc = JSON.parse(readFileSync(file, 'utf8'));
      for (const change of [
        (d: typeof doc) => { d.trusted_issuers[0].issuer = 'https://evil.example'; },
        (d: typeof doc) => { for (const c of d.clients) if (c.federation) c.federation.subject = 'system:serviceaccount:kube-system:default'; },
        (d: typeof doc) => { delete d.trusted_issuers; },
      ]) {
        const copy = JSON.parse(JSON.stringify(doc));
        change(copy);
        writeFileSync(file, JSON.stringify(copy));
        await refused(file, /was changed after it was exported \(its seal does not match\)/);
      }
    });
  });

  it('a database that is not empty only with --merge, which adds what is missing and keeps what is there', async () => {
    const file = await exportFrom(sourceUrl);
    const target = await newDatabase('sqlite');
    const t = await server(target);
    const own = await t.client();
    await t.close();
    const r = await importInto(target, file);
    expect(r.code).toBe(1);
    expect(r.err).toEqual(['m2m-auth: The target database is not empty: import into an empty one, or pass --merge to add what is missing; nothing was imported']);
    const merged = await importInto(target, file, '--merge');
    expect(merged.code, merged.err.join('\n')).toBe(0);
    expect(merged.out[0]).toMatch(/: 1 trusted issuers, 5 clients, 3 signing keys, 1 revocations, 0 replay entries\.$/);
    const again = await importInto(target, file, '--merge');
    expect(again.out[0]).toMatch(/: 0 trusted issuers, 0 clients, 0 signing keys, 1 revocations, 0 replay entries; 9 trusts, clients or keys already there were kept\.$/);
    const after = await server(target);
    try {
      expect((await after.token(own.clientId, own.clientSecret)).statusCode).toBe(200);
      expect((await after.token('cl_tenant', world.secrets.get('cl_tenant')![0]!)).statusCode).toBe(200);
    } finally {
      await after.close();
    }
  });

  it('export needs the KEK of the deployment and never makes one', async () => {
    const dataDir = tempDir();
    const r = await cli('export', '--database-url', sourceUrl, '--data-dir', dataDir);
    expect(r.err).toEqual([`m2m-auth: No key-encryption key: pass --kek, set M2M_AUTH_KEK, or point --data-dir at the folder holding kek`]);
  });
});
