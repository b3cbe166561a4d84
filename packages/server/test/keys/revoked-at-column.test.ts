// Migration 5 (signing key revocation) on a database that already has signing keys: the column is
// added, existing keys read revokedAt null (not revoked), and a key can then be revoked.

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
import type { SigningKeyRecord } from '../../src/ground/records.js';
import type { Storage } from '../../src/storage/types.js';

const T0 = Date.UTC(2030, 0, 1);
const HOUR = 3_600_000;
const PG_URL = process.env.M2M_AUTH_TEST_DATABASE_URL;
if (!PG_URL) console.warn('PostgreSQL revoked_at migration test skipped: set M2M_AUTH_TEST_DATABASE_URL');

const JWK = '{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k-before","alg":"EdDSA","use":"sig"}';
const INSERT_V4_KEY = `INSERT INTO signing_keys (kid, alg, public_jwk, private_key_encrypted, created_at, activates_at, retired_at, expires_at)
  VALUES ('k-before', 'EdDSA', '${JWK}', 'v1.k-before.aXY.Y3Q.dGFn', ${T0}, ${T0}, NULL, NULL)`;

const before: SigningKeyRecord = {
  kid: 'k-before', alg: 'EdDSA', publicJwk: JSON.parse(JWK) as SigningKeyRecord['publicJwk'], privateKeyEncrypted: 'v1.k-before.aXY.Y3Q.dGFn',
  createdAt: T0, activatesAt: T0, retiredAt: null, expiresAt: null, revokedAt: null,
};

async function revokeAndCheck(storage: Storage): Promise<void> {
  expect(await storage.keys.listKeys()).toStrictEqual([before]);
  expect(await storage.keys.revokeKey('k-before', T0 + HOUR, T0 + 25 * HOUR)).toBe(true);
  expect(await storage.keys.listKeys()).toStrictEqual([{ ...before, retiredAt: T0 + HOUR, expiresAt: T0 + 25 * HOUR, revokedAt: T0 + HOUR }]);
}

describe('the signing_keys.revoked_at column', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('SQLite: added by migration 5 to a version 4 database with a key in it', async () => {
    expect(SQLITE_MIGRATIONS.find((m) => m.version === 5)?.name).toBe('signing key revocation');
    const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-revoked-at-'));
    dirs.push(dir);
    const file = join(dir, 'old.db');
    const db = new Database(file);
    applySqlite(db, SQLITE_MIGRATIONS.filter((m) => m.version <= 4));
    db.exec(INSERT_V4_KEY);
    db.close();

    const storage = await openStorage(`sqlite:${file}`);
    try {
      await revokeAndCheck(storage);
    } finally {
      await storage.close();
    }
  });

  it.skipIf(!PG_URL)('PostgreSQL: added by migration 5 to a version 4 schema with a key in it', async () => {
    expect(POSTGRES_MIGRATIONS.find((m) => m.version === 5)?.name).toBe('signing key revocation');
    const schema = `m2m_ra_${randomBytes(6).toString('hex')}`;
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    try {
      await admin.query(`CREATE SCHEMA ${schema}`);
      await admin.query(`SET search_path TO ${schema}`);
      await applyPostgres(admin, POSTGRES_MIGRATIONS.filter((m) => m.version <= 4));
      await admin.query(INSERT_V4_KEY);
      const url = new URL(PG_URL!);
      url.searchParams.set('options', `-c search_path=${schema}`);
      const storage = await openStorage(url.href);
      try {
        await revokeAndCheck(storage);
      } finally {
        await storage.close();
      }
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await admin.end();
    }
  });
});
