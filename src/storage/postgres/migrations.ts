// Versioned schema migrations for the PostgreSQL backend, applied under an advisory lock.

import pg from 'pg';

export interface Migration {
  /** Strictly increasing; never renumber or edit a migration that has shipped. */
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'initial schema',
    // Times are epoch milliseconds in bigint. Ids compare by code point (COLLATE "C") whatever the
    // database's default collation, so keyset pagination over clients matches the other backends.
    sql: `
      CREATE TABLE clients (
        client_id text COLLATE "C" PRIMARY KEY,
        client_name text NOT NULL,
        scope jsonb NOT NULL CHECK (jsonb_typeof(scope) = 'array'),
        default_scope jsonb CHECK (jsonb_typeof(default_scope) = 'array'),
        audience jsonb NOT NULL CHECK (jsonb_typeof(audience) = 'array'),
        default_audience jsonb CHECK (jsonb_typeof(default_audience) = 'array'),
        token_endpoint_auth_method text NOT NULL,
        grant_types jsonb NOT NULL CHECK (jsonb_typeof(grant_types) = 'array'),
        resource_uris jsonb NOT NULL CHECK (jsonb_typeof(resource_uris) = 'array'),
        jwks jsonb CHECK (jsonb_typeof(jwks) = 'object'),
        access_token_ttl bigint,
        disabled boolean NOT NULL,
        secrets jsonb NOT NULL CHECK (jsonb_typeof(secrets) = 'array'),
        tokens_revoked_at bigint,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL
      );

      CREATE TABLE signing_keys (
        kid text COLLATE "C" PRIMARY KEY,
        alg text NOT NULL,
        public_jwk jsonb NOT NULL CHECK (jsonb_typeof(public_jwk) = 'object'),
        private_key_encrypted text NOT NULL,
        created_at bigint NOT NULL,
        activates_at bigint NOT NULL,
        retired_at bigint,
        expires_at bigint
      );

      CREATE TABLE revocations (
        jti text COLLATE "C" PRIMARY KEY,
        client_id text COLLATE "C" NOT NULL,
        expires_at bigint NOT NULL,
        revoked_at bigint NOT NULL
      );
      CREATE INDEX revocations_expires_at ON revocations (expires_at);

      CREATE TABLE replay (
        key text COLLATE "C" PRIMARY KEY,
        expires_at bigint NOT NULL
      );
      CREATE INDEX replay_expires_at ON replay (expires_at);
    `,
  },
];

/**
 * The advisory lock every m2m-auth instance takes while migrating (an arbitrary constant, 'm2mauth'
 * in ASCII). It is database-wide, so instances on different schemas of one database also take turns.
 */
export const MIGRATION_LOCK_ID = '30736217829373032';

/**
 * Applies every migration in `migrations` that the schema has not recorded, all in one transaction.
 * The transaction first takes MIGRATION_LOCK_ID, so a second instance starting at the same time
 * waits until the first commits, then finds the versions recorded and applies nothing. DDL is
 * transactional in PostgreSQL: a failing migration leaves no half-made tables behind.
 */
export async function applyMigrations(
  client: pg.ClientBase,
  migrations: readonly Migration[] = MIGRATIONS,
  now = Date.now,
): Promise<number> {
  await client.query('BEGIN');
  try {
    await client.query(`SELECT pg_advisory_xact_lock(${MIGRATION_LOCK_ID})`);
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY,
      applied_at bigint NOT NULL
    )`);
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
    const applied = new Set(rows.map((row) => row.version));
    let count = 0;
    for (const migration of migrations) {
      if (applied.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [
        migration.version,
        now(),
      ]);
      count += 1;
    }
    await client.query('COMMIT');
    return count;
  } catch (err) {
    // If the connection itself failed, so does ROLLBACK; the original error is the one to report.
    await client.query('ROLLBACK').catch(() => undefined);
    throw err;
  }
}
