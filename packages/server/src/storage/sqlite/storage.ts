// The embedded SQLite Storage backend on better-sqlite3: connection settings, migrate, sweep.

import Database from 'better-sqlite3';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError } from '../../ground/errors.js';
import type { Storage } from '../types.js';
import { SqliteClientStore } from './clients.js';
import { SqliteKeyStore } from './keys.js';
import { applyMigrations } from './migrations.js';
import { SqliteReplayStore } from './replay.js';
import { SqliteRevocationStore } from './revocations.js';
import { SqliteChangeLog } from './changes.js';

/** How long a connection waits for another process's write lock before failing with SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 5_000;

export const MEMORY = ':memory:';

function isBusy(err: unknown): boolean {
  return err instanceof Database.SqliteError && err.code.startsWith('SQLITE_BUSY');
}

/**
 * Switches the file to WAL, which lets readers run alongside the one writer. The switch can fail
 * with SQLITE_BUSY at once, without waiting out busy_timeout, while another process is opening the
 * same new file, so it is retried here until BUSY_TIMEOUT_MS has passed.
 */
async function enableWal(db: Database.Database, filename: string): Promise<void> {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (let delay = 2; ; delay = Math.min(delay * 2, 100)) {
    let mode: unknown;
    try {
      mode = db.pragma('journal_mode = WAL', { simple: true });
    } catch (err) {
      if (!isBusy(err) || Date.now() >= deadline) throw err;
      await sleep(delay);
      continue;
    }
    if (mode !== 'wal') {
      throw new ConfigError('CONFIG_INVALID', `SQLite could not enable WAL mode for ${filename} (got ${String(mode)})`);
    }
    return;
  }
}

/** Opens `filename` (or ':memory:') with the settings every connection needs. */
export async function openSqliteDatabase(filename: string): Promise<Database.Database> {
  const db = new Database(filename, { timeout: BUSY_TIMEOUT_MS });
  try {
    if (filename !== MEMORY) await enableWal(db, filename);
    // FULL syncs the WAL on every commit: an acknowledged write survives power loss, not only a crash
    // of this process (NORMAL, the usual WAL pairing, may lose the last commits).
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

export class SqliteStorage implements Storage {
  readonly clients: SqliteClientStore;
  readonly keys: SqliteKeyStore;
  readonly revocations: SqliteRevocationStore;
  readonly replay: SqliteReplayStore;
  readonly changes: SqliteChangeLog;
  private readonly pingStatement: Database.Statement<[], unknown>;
  private readonly sweepAll: (now: number) => number;

  constructor(readonly db: Database.Database) {
    this.clients = new SqliteClientStore(db);
    this.keys = new SqliteKeyStore(db);
    this.revocations = new SqliteRevocationStore(db);
    this.replay = new SqliteReplayStore(db);
    this.changes = new SqliteChangeLog(db);
    this.pingStatement = db.prepare('SELECT 1');
    this.sweepAll = db.transaction((now: number) => {
      return this.revocations.deleteExpired(now) + this.replay.deleteExpired(now) + this.changes.deleteOld();
    });
  }

  async migrate(): Promise<void> {
    applyMigrations(this.db);
  }

  async ping(): Promise<void> {
    this.pingStatement.get();
  }

  async sweep(now: number): Promise<number> {
    return this.sweepAll(now);
  }

  async close(): Promise<void> {
    this.db.close();
  }
}

/** A SqliteStorage on `filename`; the caller creates its folder and runs migrate(). */
export async function openSqliteStorage(filename: string): Promise<SqliteStorage> {
  return new SqliteStorage(await openSqliteDatabase(filename));
}
