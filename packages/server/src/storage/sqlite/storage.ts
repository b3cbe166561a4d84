// The embedded SQLite Storage backend on better-sqlite3: connection settings, migrate, sweep.

import Database from 'better-sqlite3';
import { open } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError } from '../../ground/errors.js';
import { StorageUnavailableError, type Storage } from '../types.js';
import { companionFiles, DatabaseFileWatch, type DatabaseFileLost } from './file-watch.js';
import { SqliteClientStore } from './clients.js';
import { SqliteTrustStore } from './trusts.js';
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

/** A vanished database file, and where the copy of the open database was saved (or why it was not). */
export interface LostDatabase extends DatabaseFileLost {
  rescued?: string;
  rescueError?: string;
}

export class SqliteStorage implements Storage {
  readonly clients: SqliteClientStore;
  readonly trusts: SqliteTrustStore;
  readonly keys: SqliteKeyStore;
  readonly revocations: SqliteRevocationStore;
  readonly replay: SqliteReplayStore;
  readonly changes: SqliteChangeLog;
  private readonly pingStatement: Database.Statement<[], unknown>;
  private readonly sweepAll: (now: number) => number;
  #lost: DatabaseFileLost | undefined;
  #watch: DatabaseFileWatch | undefined;

  /** `filename` is the database file, or MEMORY. */
  constructor(readonly db: Database.Database, readonly filename: string = MEMORY) {
    // Every statement a store runs is refused once the file has vanished.
    const gate = { check: () => this.#checkFile() };
    this.clients = new SqliteClientStore(db, gate);
    this.trusts = new SqliteTrustStore(db, gate);
    this.keys = new SqliteKeyStore(db, gate);
    this.revocations = new SqliteRevocationStore(db, gate);
    this.replay = new SqliteReplayStore(db, gate);
    this.changes = new SqliteChangeLog(db, gate);
    this.pingStatement = db.prepare('SELECT 1');
    this.sweepAll = db.transaction((now: number) => {
      return this.revocations.deleteExpired(now) + this.replay.deleteExpired(now) + this.changes.deleteOld();
    });
  }

  async migrate(): Promise<void> {
    applyMigrations(this.db);
  }

  async ping(): Promise<void> {
    this.#checkFile();
    this.pingStatement.get();
  }

  async sweep(now: number): Promise<number> {
    return this.sweepAll(now);
  }

  /**
   * Checks, every FILE_CHECK_INTERVAL_MS, that the database file and its -wal and -shm files are
   * still the ones open here. When one was deleted or replaced, every call is refused from then on
   * (StorageUnavailableError: nothing is acknowledged that would be lost), a copy of the open
   * database is saved beside it (`<file>.rescued-<time>-<pid>`, mode 0600), and `onLost` is told.
   * Nothing to watch for an in-memory database.
   */
  watchFile(onLost: (lost: LostDatabase) => void): void {
    if (this.filename === MEMORY || this.#watch) return;
    // A read opens the -wal and -shm files, whose identities the watch takes now.
    this.pingStatement.get();
    this.#watch = new DatabaseFileWatch(this.filename, (lost) => {
      this.#lost = lost;
      void this.#rescue().then((rescued) => onLost({ ...lost, ...rescued }));
    });
    this.#watch.start();
  }

  async close(): Promise<void> {
    this.#watch?.stop();
    // The last connection to close checkpoints and deletes the -wal and -shm files by their paths:
    // once the database has vanished, those may be another database's by now. Then the
    // connection is left for the process's exit to close, which deletes nothing.
    if (this.#lost && companionFiles(this.filename).some((path) => this.#watch?.foreign(path))) return;
    this.db.close();
  }

  #checkFile(): void {
    if (this.#lost === undefined) return;
    throw new StorageUnavailableError(
      `the database file ${this.#lost.path} was ${this.#lost.change} while the server was running; nothing more is read or written until it is restored and the server restarted`,
    );
  }

  /** Saves what the open connection still reads, the last acknowledged write included. */
  async #rescue(): Promise<{ rescued: string } | { rescueError: string }> {
    const path = `${this.filename}.rescued-${new Date().toISOString().replace(/[:.]/g, '-')}-${process.pid}`;
    try {
      // Created first, with the database file's mode: it holds encrypted signing keys and secret digests.
      await (await open(path, 'wx', 0o600)).close();
      await this.db.backup(path);
      return { rescued: path };
    } catch (err) {
      return { rescueError: (err as Error).message };
    }
  }
}

/** A SqliteStorage on `filename`; the caller creates its folder and runs migrate(). */
export async function openSqliteStorage(filename: string): Promise<SqliteStorage> {
  return new SqliteStorage(await openSqliteDatabase(filename), filename);
}
