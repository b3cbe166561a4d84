// Versioned schema migrations for the SQLite backend, each applied once in its own transaction.

import type { Database } from 'better-sqlite3';

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
    sql: `
      CREATE TABLE clients (
        client_id TEXT PRIMARY KEY NOT NULL,
        client_name TEXT NOT NULL,
        scope TEXT NOT NULL,
        default_scope TEXT,
        audience TEXT NOT NULL,
        default_audience TEXT,
        token_endpoint_auth_method TEXT NOT NULL,
        grant_types TEXT NOT NULL,
        resource_uris TEXT NOT NULL,
        jwks TEXT,
        access_token_ttl INTEGER,
        disabled INTEGER NOT NULL CHECK (disabled IN (0, 1)),
        secrets TEXT NOT NULL,
        tokens_revoked_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;

      CREATE TABLE signing_keys (
        kid TEXT PRIMARY KEY NOT NULL,
        alg TEXT NOT NULL,
        public_jwk TEXT NOT NULL,
        private_key_encrypted TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        activates_at INTEGER NOT NULL,
        retired_at INTEGER,
        expires_at INTEGER
      ) STRICT;

      CREATE TABLE revocations (
        jti TEXT PRIMARY KEY NOT NULL,
        client_id TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX revocations_expires_at ON revocations (expires_at);

      CREATE TABLE replay (
        key TEXT PRIMARY KEY NOT NULL,
        expires_at INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX replay_expires_at ON replay (expires_at);
    `,
  },
  {
    version: 2,
    name: 'change log',
    // Triggers append in the writing transaction, so no write can be acknowledged without its change.
    sql: `
      CREATE TABLE changes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        expires_at INTEGER,
        created_at INTEGER NOT NULL
      ) STRICT;
      CREATE INDEX changes_created_at ON changes (created_at);
      CREATE TABLE changes_pruned (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        through_seq INTEGER NOT NULL
      ) STRICT;
      INSERT INTO changes_pruned (id, through_seq) VALUES (1, 0);

      CREATE TRIGGER clients_changed_insert AFTER INSERT ON clients BEGIN
        INSERT INTO changes (kind, key, expires_at, created_at) VALUES ('client', NEW.client_id, NULL, CAST(unixepoch('subsec') * 1000 AS INTEGER));
      END;
      CREATE TRIGGER clients_changed_update AFTER UPDATE ON clients BEGIN
        INSERT INTO changes (kind, key, expires_at, created_at) VALUES ('client', NEW.client_id, NULL, CAST(unixepoch('subsec') * 1000 AS INTEGER));
      END;
      CREATE TRIGGER clients_changed_delete AFTER DELETE ON clients BEGIN
        INSERT INTO changes (kind, key, expires_at, created_at) VALUES ('client', OLD.client_id, NULL, CAST(unixepoch('subsec') * 1000 AS INTEGER));
      END;
      CREATE TRIGGER keys_changed_insert AFTER INSERT ON signing_keys BEGIN
        INSERT INTO changes (kind, key, expires_at, created_at) VALUES ('keys', NEW.kid, NULL, CAST(unixepoch('subsec') * 1000 AS INTEGER));
      END;
      CREATE TRIGGER keys_changed_update AFTER UPDATE ON signing_keys BEGIN
        INSERT INTO changes (kind, key, expires_at, created_at) VALUES ('keys', NEW.kid, NULL, CAST(unixepoch('subsec') * 1000 AS INTEGER));
      END;
      CREATE TRIGGER keys_changed_delete AFTER DELETE ON signing_keys BEGIN
        INSERT INTO changes (kind, key, expires_at, created_at) VALUES ('keys', OLD.kid, NULL, CAST(unixepoch('subsec') * 1000 AS INTEGER));
      END;
      CREATE TRIGGER revocations_changed_insert AFTER INSERT ON revocations BEGIN
        INSERT INTO changes (kind, key, expires_at, created_at) VALUES ('revocation', NEW.jti, NEW.expires_at, CAST(unixepoch('subsec') * 1000 AS INTEGER));
      END;
    `,
  },
  {
    version: 3,
    name: 'client rate limit',
    // Token requests per second (fractions allowed, 0 = no limit); NULL = the server default.
    sql: `ALTER TABLE clients ADD COLUMN rate_limit REAL CHECK (rate_limit >= 0);`,
  },
  {
    version: 4,
    name: 'client token reuse',
    // 1 = answer a repeated request with the client's still-fresh token (issue 3); off by default.
    sql: `ALTER TABLE clients ADD COLUMN token_reuse INTEGER NOT NULL DEFAULT 0 CHECK (token_reuse IN (0, 1));`,
  },
  {
    version: 5,
    name: 'signing key revocation',
    // When an operator revoked the key (issue 12): it never signs again, leaves the JWKS, and the
    // tokens it signed are refused. NULL = not revoked.
    sql: `ALTER TABLE signing_keys ADD COLUMN revoked_at INTEGER;`,
  },
  {
    version: 6,
    name: 'client custom claims',
    // A JSON object of claim names to values copied into every access token of the client (issue 16).
    sql: `ALTER TABLE clients ADD COLUMN claims TEXT NOT NULL DEFAULT '{}' CHECK (json_type(claims) = 'object');`,
  },
  {
    version: 7,
    name: 'trusted issuers and federated clients',
    // Issue 17. A client's federated_issuer references its trust, so the database itself refuses a
    // client naming a missing trust and the deletion of a trust that clients name (foreign_keys is
    // on for every connection). A (trust, subject) pair belongs to one client at most; the unique
    // index also serves the reference check when a trust is deleted. Trust writes enter the change
    // log as kind 'trust', keyed by name.
    sql: `
      CREATE TABLE trusted_issuers (
        name TEXT PRIMARY KEY NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('kubernetes', 'spiffe', 'oidc')),
        issuer TEXT,
        trust_domain TEXT,
        jwks_uri TEXT,
        jwks TEXT CHECK (jwks IS NULL OR json_type(jwks) = 'object'),
        ca_bundle TEXT,
        allowed_private_hosts TEXT NOT NULL CHECK (json_type(allowed_private_hosts) = 'array'),
        audiences TEXT NOT NULL CHECK (json_type(audiences) = 'array'),
        max_token_lifetime INTEGER NOT NULL,
        single_use_jti INTEGER CHECK (single_use_jti IN (0, 1)),
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
      ) STRICT;

      ALTER TABLE clients ADD COLUMN federated_issuer TEXT REFERENCES trusted_issuers (name);
      ALTER TABLE clients ADD COLUMN federated_subject TEXT;
      ALTER TABLE clients ADD COLUMN federated_claims TEXT CHECK (federated_claims IS NULL OR json_type(federated_claims) = 'object');
      CREATE UNIQUE INDEX clients_federated_identity ON clients (federated_issuer, federated_subject);

      CREATE TRIGGER trusted_issuers_changed_insert AFTER INSERT ON trusted_issuers BEGIN
        INSERT INTO changes (kind, key, expires_at, created_at) VALUES ('trust', NEW.name, NULL, CAST(unixepoch('subsec') * 1000 AS INTEGER));
      END;
      CREATE TRIGGER trusted_issuers_changed_update AFTER UPDATE ON trusted_issuers BEGIN
        INSERT INTO changes (kind, key, expires_at, created_at) VALUES ('trust', NEW.name, NULL, CAST(unixepoch('subsec') * 1000 AS INTEGER));
      END;
      CREATE TRIGGER trusted_issuers_changed_delete AFTER DELETE ON trusted_issuers BEGIN
        INSERT INTO changes (kind, key, expires_at, created_at) VALUES ('trust', OLD.name, NULL, CAST(unixepoch('subsec') * 1000 AS INTEGER));
      END;
    `,
  },
  {
    version: 8,
    name: 'client sender-constrained tokens',
    // RFC 9449 §5.2 dpop_bound_access_tokens and the per-client FAPI 2.0 switch (issue 18); off by default.
    sql: `ALTER TABLE clients ADD COLUMN dpop_bound_access_tokens INTEGER NOT NULL DEFAULT 0 CHECK (dpop_bound_access_tokens IN (0, 1));
      ALTER TABLE clients ADD COLUMN fapi2 INTEGER NOT NULL DEFAULT 0 CHECK (fapi2 IN (0, 1));`,
  },
  {
    version: 9,
    name: 'client mutual TLS',
    // RFC 8705 (issue 18): the one certificate name of a tls_client_auth client (§2.1.2, a column
    // per metadata field, at most one set) and certificate-bound access tokens (§3).
    sql: `
      ALTER TABLE clients ADD COLUMN tls_client_auth_subject_dn TEXT;
      ALTER TABLE clients ADD COLUMN tls_client_auth_san_dns TEXT;
      ALTER TABLE clients ADD COLUMN tls_client_auth_san_uri TEXT;
      ALTER TABLE clients ADD COLUMN tls_client_auth_san_ip TEXT;
      ALTER TABLE clients ADD COLUMN tls_client_auth_san_email TEXT;
      ALTER TABLE clients ADD COLUMN tls_client_certificate_bound_access_tokens INTEGER NOT NULL DEFAULT 0
        CHECK (tls_client_certificate_bound_access_tokens IN (0, 1));
    `,
  },
];

/**
 * Applies every migration in `migrations` that the database has not recorded. Each runs under
 * BEGIN IMMEDIATE, which takes the write lock before reading schema_migrations: a second process
 * starting at the same time waits (busy_timeout), then sees the version recorded and skips it.
 */
export function applyMigrations(db: Database, migrations: readonly Migration[] = MIGRATIONS, now = Date.now): number {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY NOT NULL,
    applied_at INTEGER NOT NULL
  ) STRICT`);
  const isApplied = db.prepare<[number], 1>('SELECT 1 FROM schema_migrations WHERE version = ?').pluck();
  const record = db.prepare<[number, number]>('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)');
  const applyOne = db.transaction((migration: Migration): boolean => {
    if (isApplied.get(migration.version) !== undefined) return false;
    db.exec(migration.sql);
    record.run(migration.version, now());
    return true;
  });
  let applied = 0;
  for (const migration of migrations) {
    if (applyOne.immediate(migration)) applied += 1;
  }
  return applied;
}
