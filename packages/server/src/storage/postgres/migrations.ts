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
  {
    version: 2,
    name: 'change log',
    // Triggers append in the writing transaction, so no write can be acknowledged without its change.
    // Each change takes the next seq from the one changes_head row by UPDATE, whose row lock is held
    // until commit: writers of changes take turns, so seq order is commit order and a reader that
    // sees seq n also sees every change below n. (A sequence would hand out numbers in start order
    // and let a reader pass a lower seq that commits later.) changes_head also keeps the highest seq
    // and how far the log was pruned once the rows are gone.
    // SET search_path FROM CURRENT pins the function to the schema it was created in.
    sql: `
      CREATE TABLE changes (
        seq bigint PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('client', 'revocation', 'keys')),
        key text COLLATE "C" NOT NULL,
        expires_at bigint,
        created_at bigint NOT NULL
      );
      CREATE INDEX changes_created_at ON changes (created_at);

      CREATE TABLE changes_head (
        id integer PRIMARY KEY CHECK (id = 1),
        seq bigint NOT NULL,
        pruned_through bigint NOT NULL
      );
      INSERT INTO changes_head (id, seq, pruned_through) VALUES (1, 0, 0);

      -- Arguments: the change kind, the key column, and optionally the expiry column.
      CREATE FUNCTION record_change() RETURNS trigger LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
      DECLARE
        changed jsonb := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
        next_seq bigint;
      BEGIN
        UPDATE changes_head SET seq = seq + 1 WHERE id = 1 RETURNING seq INTO next_seq;
        INSERT INTO changes (seq, kind, key, expires_at, created_at) VALUES (
          next_seq,
          TG_ARGV[0],
          changed ->> TG_ARGV[1],
          CASE WHEN TG_NARGS > 2 THEN (changed ->> TG_ARGV[2])::bigint END,
          (extract(epoch FROM clock_timestamp()) * 1000)::bigint
        );
        RETURN NULL;
      END
      $$;

      CREATE TRIGGER clients_changed AFTER INSERT OR UPDATE OR DELETE ON clients
        FOR EACH ROW EXECUTE FUNCTION record_change('client', 'client_id');
      CREATE TRIGGER signing_keys_changed AFTER INSERT OR UPDATE OR DELETE ON signing_keys
        FOR EACH ROW EXECUTE FUNCTION record_change('keys', 'kid');
      CREATE TRIGGER revocations_changed AFTER INSERT ON revocations
        FOR EACH ROW EXECUTE FUNCTION record_change('revocation', 'jti', 'expires_at');
    `,
  },
  {
    version: 3,
    name: 'client rate limit',
    // Token requests per second (fractions allowed, 0 = no limit); NULL = the server default.
    sql: `ALTER TABLE clients ADD COLUMN rate_limit double precision CHECK (rate_limit >= 0);`,
  },
  {
    version: 4,
    name: 'client token reuse',
    // true = answer a repeated request with the client's still-fresh token (issue 3); off by default.
    sql: `ALTER TABLE clients ADD COLUMN token_reuse boolean NOT NULL DEFAULT false;`,
  },
  {
    version: 5,
    name: 'signing key revocation',
    // When an operator revoked the key (issue 12): it never signs again, leaves the JWKS, and the
    // tokens it signed are refused. NULL = not revoked.
    sql: `ALTER TABLE signing_keys ADD COLUMN revoked_at bigint;`,
  },
  {
    version: 6,
    name: 'client custom claims',
    // json, not jsonb: it keeps the claims as written (member order, every character), so a token
    // reads the same whichever backend stored its client.
    sql: `ALTER TABLE clients ADD COLUMN claims json NOT NULL DEFAULT '{}' CHECK (json_typeof(claims) = 'object');`,
  },
  {
    version: 7,
    name: 'trusted issuers and federated clients',
    // Issue 17. A client's federated_issuer references its trust, so the database itself refuses a
    // client naming a missing trust and the deletion of a trust that clients name. A (trust,
    // subject) pair belongs to one client at most; its unique index also serves the reference check
    // when a trust is deleted. federated_claims is json, kept as written like claims. Trust writes
    // enter the change log as kind 'trust', keyed by name.
    sql: `
      CREATE TABLE trusted_issuers (
        name text COLLATE "C" PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('kubernetes', 'spiffe', 'oidc')),
        issuer text,
        trust_domain text,
        jwks_uri text,
        jwks jsonb CHECK (jsonb_typeof(jwks) = 'object'),
        ca_bundle text,
        allowed_private_hosts jsonb NOT NULL CHECK (jsonb_typeof(allowed_private_hosts) = 'array'),
        audiences jsonb NOT NULL CHECK (jsonb_typeof(audiences) = 'array'),
        max_token_lifetime integer NOT NULL,
        single_use_jti boolean,
        created_at bigint NOT NULL,
        updated_at bigint NOT NULL
      );

      ALTER TABLE clients
        ADD COLUMN federated_issuer text COLLATE "C" REFERENCES trusted_issuers (name),
        ADD COLUMN federated_subject text COLLATE "C",
        ADD COLUMN federated_claims json CHECK (json_typeof(federated_claims) = 'object'),
        ADD CONSTRAINT clients_federated_identity UNIQUE (federated_issuer, federated_subject);

      ALTER TABLE changes DROP CONSTRAINT changes_kind_check,
        ADD CONSTRAINT changes_kind_check CHECK (kind IN ('client', 'revocation', 'keys', 'trust'));
      CREATE TRIGGER trusted_issuers_changed AFTER INSERT OR UPDATE OR DELETE ON trusted_issuers
        FOR EACH ROW EXECUTE FUNCTION record_change('trust', 'name');
    `,
  },
  {
    version: 8,
    name: 'client sender-constrained tokens',
    // RFC 9449 §5.2 dpop_bound_access_tokens and the per-client FAPI 2.0 switch (issue 18); off by default.
    sql: `ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens boolean NOT NULL DEFAULT false;
      ALTER TABLE clients ADD COLUMN fapi2 boolean NOT NULL DEFAULT false;`,
  },
  {
    version: 9,
    name: 'client mutual TLS',
    // RFC 8705 (issue 18): the one certificate name of a tls_client_auth client (§2.1.2, a column
    // per metadata field, at most one set) and certificate-bound access tokens (§3).
    sql: `
      ALTER TABLE clients ADD COLUMN tls_client_auth_subject_dn text;
      ALTER TABLE clients ADD COLUMN tls_client_auth_san_dns text;
      ALTER TABLE clients ADD COLUMN tls_client_auth_san_uri text;
      ALTER TABLE clients ADD COLUMN tls_client_auth_san_ip text;
      ALTER TABLE clients ADD COLUMN tls_client_auth_san_email text;
      ALTER TABLE clients ADD COLUMN tls_client_certificate_bound_access_tokens boolean NOT NULL DEFAULT false;
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
