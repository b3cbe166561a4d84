// The PostgreSQL Storage backend on a pg.Pool: connection settings, migrate, sweep, change feed.

import pg from 'pg';
import { ConfigError } from '../../ground/errors.js';
import type { Storage } from '../types.js';
import { PostgresChangeLog } from './changes.js';
import { PostgresClientStore } from './clients.js';
import { PostgresTrustStore } from './trusts.js';
import { PostgresKeyStore } from './keys.js';
import { applyMigrations } from './migrations.js';
import { PostgresChangeFeed, type ChangeFeedHooks } from './notify.js';
import { DELETE_EXPIRED_REPLAY, PostgresReplayStore } from './replay.js';
import { DELETE_EXPIRED_REVOCATIONS, PostgresRevocationStore } from './revocations.js';
import { inTransaction } from './sql.js';

export interface PostgresStorageOptions {
  /** Most connections the pool opens. Default 10. */
  maxConnections?: number;
  /** Longest a statement may run on the server (statement_timeout). Default 5 s. */
  statementTimeoutMs?: number;
  /** Longest opening a connection, or waiting for a free pooled one, may take. Default 5 s. */
  connectionTimeoutMs?: number;
  /**
   * Errors on idle pooled connections, e.g. when the server restarts. The pool discards such a
   * connection either way; without a listener, pg would crash the process with them.
   */
  onIdleError?: (err: Error) => void;
}

export const POSTGRES_DEFAULTS = {
  maxConnections: 10,
  statementTimeoutMs: 5_000,
  connectionTimeoutMs: 5_000,
} as const;

/** Migrations may wait for another instance's migrations and run DDL: they get longer than a request. */
export const MIGRATION_TIMEOUT_MS = 60_000;

/**
 * How much longer than statement_timeout the client waits for an answer before giving up on the
 * connection: the server cancels slow statements itself, this only catches a server that went silent.
 */
const CLIENT_GRACE_MS = 2_000;

function positiveInteger(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new ConfigError('CONFIG_INVALID', `PostgreSQL ${name} must be a positive integer (got ${String(value)}).`);
  }
  return value;
}

/** Client settings from a database URL and options; a URL query (e.g. application_name) overrides them. */
export function postgresClientConfig(databaseUrl: string, options: PostgresStorageOptions = {}): pg.ClientConfig {
  const statementTimeoutMs = positiveInteger(
    'statementTimeoutMs',
    options.statementTimeoutMs,
    POSTGRES_DEFAULTS.statementTimeoutMs,
  );
  const config: pg.ClientConfig = {
    connectionString: databaseUrl,
    application_name: 'm2m-auth',
    connectionTimeoutMillis: positiveInteger(
      'connectionTimeoutMs',
      options.connectionTimeoutMs,
      POSTGRES_DEFAULTS.connectionTimeoutMs,
    ),
    statement_timeout: statementTimeoutMs,
    query_timeout: statementTimeoutMs + CLIENT_GRACE_MS,
    // A transaction left open (a crashed request) must not hold row locks for long.
    idle_in_transaction_session_timeout: Math.max(60_000, statementTimeoutMs * 2),
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
  };
  try {
    // pg parses the URL when it builds a client; doing it now turns a malformed URL into a
    // configuration error at startup. pg redacts the URL from its own parse errors.
    new pg.Client(config);
  } catch {
    throw new ConfigError(
      'CONFIG_INVALID',
      'The postgres:// database URL could not be parsed; use postgres://<user>:<password>@<host>:<port>/<database> with special characters percent-encoded.',
    );
  }
  return config;
}

export class PostgresStorage implements Storage {
  readonly clients: PostgresClientStore;
  readonly trusts: PostgresTrustStore;
  readonly keys: PostgresKeyStore;
  readonly revocations: PostgresRevocationStore;
  readonly replay: PostgresReplayStore;
  readonly changes: PostgresChangeLog;
  private closing: Promise<void> | undefined;

  constructor(
    readonly pool: pg.Pool,
    /** Settings for connections outside the pool: migrations and the change feed's LISTEN connection. */
    private readonly connection: pg.ClientConfig,
  ) {
    this.clients = new PostgresClientStore(pool);
    this.trusts = new PostgresTrustStore(pool);
    this.keys = new PostgresKeyStore(pool);
    this.revocations = new PostgresRevocationStore(pool);
    this.replay = new PostgresReplayStore(pool);
    this.changes = new PostgresChangeLog(pool);
  }

  async migrate(): Promise<void> {
    // A connection of its own, with a statement timeout long enough to wait out another instance's migration.
    const client = new pg.Client({
      ...this.connection,
      statement_timeout: MIGRATION_TIMEOUT_MS,
      query_timeout: MIGRATION_TIMEOUT_MS + CLIENT_GRACE_MS,
    });
    // Failures reach the caller through the queries; without a listener an 'error' event would crash the process.
    client.on('error', () => undefined);
    await client.connect();
    try {
      await applyMigrations(client);
    } finally {
      await client.end().catch(() => undefined);
    }
  }

  async ping(): Promise<void> {
    await this.pool.query('SELECT 1');
  }

  async sweep(now: number): Promise<number> {
    return inTransaction(this.pool, async (client) => {
      let removed = 0;
      for (const statement of [DELETE_EXPIRED_REVOCATIONS, DELETE_EXPIRED_REPLAY]) {
        removed += (await client.query(statement, [now])).rowCount ?? 0;
      }
      return removed + (await this.changes.deleteOld(client));
    });
  }

  /** A change feed on this database: a dedicated LISTEN connection; NOTIFY goes through the pool. */
  changeFeed(hooks: ChangeFeedHooks = {}): PostgresChangeFeed {
    return new PostgresChangeFeed({ ...hooks, connection: this.connection, notifier: this.pool });
  }

  close(): Promise<void> {
    this.closing ??= this.pool.end();
    return this.closing;
  }
}

/**
 * A PostgresStorage on `databaseUrl` (postgres:// or postgresql://); the caller runs migrate().
 * Nothing connects until the first query. To keep an instance's tables in a schema of their own,
 * name it in the URL: ?options=-c%20search_path%3Dmy_schema.
 */
export async function openPostgresStorage(
  databaseUrl: string,
  options: PostgresStorageOptions = {},
): Promise<PostgresStorage> {
  const connection = postgresClientConfig(databaseUrl, options);
  const pool = new pg.Pool({
    ...connection,
    max: positiveInteger('maxConnections', options.maxConnections, POSTGRES_DEFAULTS.maxConnections),
  });
  const onIdleError = options.onIdleError ?? (() => undefined);
  pool.on('error', (err) => onIdleError(err));
  return new PostgresStorage(pool, connection);
}
