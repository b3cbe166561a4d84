// Migration 3 (client rate limit) on a database that already has clients: the column is added,
// existing clients read rate_limit null (the server default), and a limit can then be stored.

import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { openStorage } from '../../src/storage/open.js';
import { applyMigrations as applySqlite, MIGRATIONS as SQLITE_MIGRATIONS } from '../../src/storage/sqlite/index.js';
import { applyMigrations as applyPostgres, MIGRATIONS as POSTGRES_MIGRATIONS } from '../../src/storage/postgres/index.js';
import type { ClientRecord } from '../../src/ground/records.js';

const T0 = Date.UTC(2030, 0, 1);
const PG_URL = process.env.M2M_AUTH_TEST_DATABASE_URL;
if (!PG_URL) console.warn('PostgreSQL rate_limit migration test skipped: set M2M_AUTH_TEST_DATABASE_URL');

const INSERT_V2_CLIENT = `INSERT INTO clients (client_id, client_name, scope, default_scope, audience, default_audience,
  token_endpoint_auth_method, grant_types, resource_uris, jwks, access_token_ttl, disabled, secrets, tokens_revoked_at,
  created_at, updated_at) VALUES ('cl_before', 'Before', '["a"]', NULL, '["https://api.example.com"]', NULL,
  'client_secret_basic', '["client_credentials"]', '[]', NULL, NULL, 0, '[]', NULL, ${T0}, ${T0})`;

const before: ClientRecord = {
  clientId: 'cl_before', clientName: 'Before', scope: ['a'], defaultScope: null, audience: ['https://api.example.com'],
  defaultAudience: null, tokenEndpointAuthMethod: 'client_secret_basic', federation: null, grantTypes: ['client_credentials'], resourceUris: [],
  jwks: null, accessTokenTtl: null, rateLimit: null, tokenReuse: false, dpopBoundAccessTokens: false, fapi2: false, disabled: false, claims: {}, tlsClientAuth: null, tlsClientCertificateBoundAccessTokens: false, secrets: [], tokensRevokedAt: null, createdAt: T0, updatedAt: T0,
};

describe('the rate_limit column', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('SQLite: added by migration 3 to a version 2 database with clients in it', async () => {
    expect(SQLITE_MIGRATIONS.find((m) => m.version === 3)?.name).toBe('client rate limit');
    const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-ratelimit-'));
    dirs.push(dir);
    const file = join(dir, 'old.db');
    const db = new Database(file);
    applySqlite(db, SQLITE_MIGRATIONS.filter((m) => m.version <= 2));
    db.exec(INSERT_V2_CLIENT);
    db.close();

    const storage = await openStorage(`sqlite:${file}`);
    try {
      expect(await storage.clients.getClient('cl_before')).toStrictEqual(before);
      await storage.clients.updateClient({ ...before, rateLimit: 0.5 });
      expect((await storage.clients.getClient('cl_before'))?.rateLimit).toBe(0.5);
      await expect(storage.clients.updateClient({ ...before, rateLimit: -1 })).rejects.toThrow(/CHECK/);
    } finally {
      await storage.close();
    }
  });

  it.skipIf(!PG_URL)('PostgreSQL: added by migration 3 to a version 2 schema with clients in it', async () => {
    expect(POSTGRES_MIGRATIONS.find((m) => m.version === 3)?.name).toBe('client rate limit');
    const schema = `m2m_rl_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      await admin.query(`CREATE SCHEMA ${schema}`);
      await admin.query(`SET search_path TO ${schema}`);
      await applyPostgres(admin, POSTGRES_MIGRATIONS.filter((m) => m.version <= 2));
      await admin.query(INSERT_V2_CLIENT.replace(", 0, '[]'", ", false, '[]'"));
      const url = new URL(PG_URL!);
      url.searchParams.set('options', `-c search_path=${schema}`);
      const storage = await openStorage(url.href);
      try {
        expect(await storage.clients.getClient('cl_before')).toStrictEqual(before);
        await storage.clients.updateClient({ ...before, rateLimit: 0.5 });
        expect((await storage.clients.getClient('cl_before'))?.rateLimit).toBe(0.5);
        await expect(storage.clients.updateClient({ ...before, rateLimit: -1 })).rejects.toThrow(/check/i);
      } finally {
        await storage.close();
      }
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    }
  });
});
