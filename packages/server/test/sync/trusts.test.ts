// Two instances on one database (issue 17): a trusted issuer or a federated client changed through
// one instance's admin API holds in the other instance's caches within 1 s (the change log's
// 'trust' and 'client' kinds, read by each instance's sync), on a shared SQLite file and on
// PostgreSQL with LISTEN/NOTIFY. The caches are read as the token endpoint reads them.

import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';
import { within } from '../helpers/process.js';

const PG_URL = process.env.M2M_AUTH_TEST_DATABASE_URL;
if (!PG_URL) console.warn('Trust sync on PostgreSQL skipped: set M2M_AUTH_TEST_DATABASE_URL');

const KEK = randomBytes(32).toString('base64');
const dir = mkdtempSync(join(tmpdir(), 'm2m-trust-sync-'));
const schema = `m2m_trusts_${randomBytes(6).toString('hex')}`;

function pgUrl(): string {
  const url = new URL(PG_URL!);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.href;
}

const backends: Array<{ name: string; url: () => string; setup?: () => Promise<void>; cleanup?: () => Promise<void> }> = [
  { name: 'SQLite file shared by two instances', url: () => `sqlite:${join(dir, 'shared.db')}` },
];
if (PG_URL) {
  backends.push({
    name: 'PostgreSQL with LISTEN/NOTIFY',
    url: pgUrl,
    async setup() {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`CREATE SCHEMA ${schema}`);
      await c.end();
    },
    async cleanup() {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    },
  });
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

for (const backend of backends) {
  describe(backend.name, () => {
    let a: TestServer;
    let b: TestServer;

    beforeAll(async () => {
      await backend.setup?.();
      a = await startTestServer({ databaseUrl: backend.url(), kek: KEK }, { dataDir: mkdtempSync(join(dir, 'a-')) });
      b = await startTestServer({ databaseUrl: backend.url(), kek: KEK }, { dataDir: mkdtempSync(join(dir, 'b-')) });
    }, 30_000);

    afterAll(async () => {
      await Promise.all([a?.close(), b?.close()]);
      await backend.cleanup?.();
    });

    it('a trust created, changed and deleted at A holds in B\'s cache within 1 s, and B tells its listeners', async () => {
      const heard: string[] = [];
      const off = b.server.trusts.onChange((name) => heard.push(name));
      try {
        const created = await a.admin({ method: 'POST', url: '/admin/trusted-issuers', payload: { name: 'synced', kind: 'oidc', issuer: 'https://idp.example.com' } });
        expect(created.statusCode, created.body).toBe(201);
        await within(1000, async () => (await b.server.trusts.get('synced'))?.issuer === 'https://idp.example.com');
        // Cached at B now; a change at A replaces it there.
        const changed = await a.admin({ method: 'PATCH', url: '/admin/trusted-issuers/synced', payload: { max_token_lifetime: 600, audiences: ['m2m-auth'] } });
        expect(changed.statusCode, changed.body).toBe(200);
        await within(1000, async () => (await b.server.trusts.get('synced'))?.maxTokenLifetime === 600);
        expect((await b.server.trusts.get('synced'))?.audiences).toEqual(['m2m-auth']);
        expect((await a.admin({ method: 'DELETE', url: '/admin/trusted-issuers/synced' })).statusCode).toBe(204);
        await within(1000, async () => (await b.server.trusts.get('synced')) === undefined);
        await within(1000, async () => heard.filter((n) => n === 'synced').length >= 3);
      } finally {
        off();
      }
    });

    it('a federated client changed at A holds in B\'s client cache within 1 s', async () => {
      await a.admin({ method: 'POST', url: '/admin/trusted-issuers', payload: { name: 'cluster', kind: 'kubernetes', issuer: 'https://k8s.example.com' } });
      const created = await a.admin({
        method: 'POST', url: '/admin/clients',
        payload: {
          client_id: 'cl_synced', client_name: 'synced', audience: ['https://api.example.com'], token_endpoint_auth_method: 'federated_jwt',
          federated_issuer: 'cluster', federated_subject: 'system:serviceaccount:payments:billing',
        },
      });
      expect(created.statusCode, created.body).toBe(201);
      await within(1000, async () => (await b.server.clients.get('cl_synced'))?.federation?.subject === 'system:serviceaccount:payments:billing');
      const moved = await a.admin({ method: 'PATCH', url: '/admin/clients/cl_synced', payload: { federated_subject: 'system:serviceaccount:payments:billing-v2', federated_claims: { team: 'payments' } } });
      expect(moved.statusCode, moved.body).toBe(200);
      await within(1000, async () => (await b.server.clients.get('cl_synced'))?.federation?.subject === 'system:serviceaccount:payments:billing-v2');
      expect((await b.server.clients.get('cl_synced'))?.federation?.claims).toEqual({ team: 'payments' });
      // The (trust, subject) pair is the database's to guard: B refuses it too.
      const taken = await b.admin({
        method: 'POST', url: '/admin/clients',
        payload: {
          client_name: 'copy', audience: ['https://api.example.com'], token_endpoint_auth_method: 'federated_jwt',
          federated_issuer: 'cluster', federated_subject: 'system:serviceaccount:payments:billing-v2',
        },
      });
      expect(taken.statusCode).toBe(409);
      expect((await a.admin({ method: 'DELETE', url: '/admin/clients/cl_synced' })).statusCode).toBe(204);
      await within(1000, async () => (await b.server.clients.get('cl_synced')) === undefined);
    });
  });
}
