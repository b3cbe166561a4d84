// Opens the Storage backend a database URL names: sqlite:<path>, sqlite::memory: or postgres://.

import { mkdir, open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { ConfigError } from '../ground/errors.js';
import type { PostgresStorageOptions } from './postgres/storage.js';
import { MEMORY, openSqliteStorage, type LostDatabase, type SqliteStorage } from './sqlite/storage.js';
import type { Storage } from './types.js';

export interface OpenStorageOptions {
  /** Apply pending schema migrations before returning; default true. */
  migrate?: boolean;
  /** Pool size and timeouts for a postgres:// URL; ignored for SQLite. */
  postgres?: PostgresStorageOptions;
  /**
   * For a sqlite: file: watch it, and refuse every call once it (or its -wal or -shm file) is
   * deleted or replaced, telling this (SqliteStorage.watchFile). Ignored otherwise.
   */
  onDatabaseFileLost?: (lost: LostDatabase) => void;
}

const USAGE =
  'use sqlite:<path> (relative to the working directory), sqlite::memory: or postgres://<user>:<password>@<host>:<port>/<database>';

type Target = { kind: 'sqlite'; filename: string } | { kind: 'postgres'; url: string };

/** The backend a database URL names; throws ConfigError for anything else. */
function storageTarget(databaseUrl: string): Target {
  // Only the scheme is ever echoed back: the rest of a URL may carry a password.
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(databaseUrl)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    throw new ConfigError('CONFIG_INVALID', `The database URL has no scheme; ${USAGE}.`);
  }
  if (scheme === 'postgres' || scheme === 'postgresql') return { kind: 'postgres', url: databaseUrl };
  if (scheme !== 'sqlite') {
    throw new ConfigError('CONFIG_INVALID', `Unsupported database URL scheme "${scheme}:"; ${USAGE}.`);
  }
  return { kind: 'sqlite', filename: sqliteFilename(databaseUrl.slice('sqlite:'.length)) };
}

/** The file of a sqlite: database URL (absolute); undefined for an in-memory or PostgreSQL database. Throws ConfigError for a bad URL. */
export function sqliteDatabaseFile(databaseUrl: string): string | undefined {
  const target = storageTarget(databaseUrl);
  return target.kind === 'sqlite' && target.filename !== MEMORY ? target.filename : undefined;
}

/** The SQLite filename the part of a sqlite: URL after the scheme names. */
function sqliteFilename(path: string): string {
  if (path === MEMORY) return MEMORY;
  if (path === '') {
    throw new ConfigError('CONFIG_INVALID', `The sqlite: database URL has no path; ${USAGE}.`);
  }
  if (path.startsWith('//')) {
    // sqlite:///x means /x to some tools and //x to others; refuse to guess.
    throw new ConfigError(
      'CONFIG_INVALID',
      'Write sqlite:<path> without "//", e.g. sqlite:./data/m2m-auth.db or sqlite:/var/lib/m2m-auth/m2m-auth.db.',
    );
  }
  return resolve(path);
}

/** Creates the folder (mode 0700) and, if new, the database file (mode 0600): it holds encrypted signing keys. */
async function prepareDatabaseFile(filename: string): Promise<void> {
  await mkdir(dirname(filename), { recursive: true, mode: 0o700 });
  // 'a' creates without truncating; SQLite gives the -wal and -shm files the database file's mode.
  const handle = await open(filename, 'a', 0o600);
  await handle.close();
}

export async function openStorage(databaseUrl: string, options: OpenStorageOptions = {}): Promise<Storage> {
  const target = storageTarget(databaseUrl);
  let storage: Storage;
  if (target.kind === 'postgres') {
    // Loaded only here: pg and its modules cost an embedded (SQLite) server some 8 MB for nothing.
    const { openPostgresStorage } = await import('./postgres/storage.js');
    storage = await openPostgresStorage(target.url, options.postgres);
  } else {
    if (target.filename !== MEMORY) await prepareDatabaseFile(target.filename);
    storage = await openSqliteStorage(target.filename);
  }
  if (options.migrate !== false) {
    try {
      await storage.migrate();
    } catch (err) {
      await storage.close();
      throw err;
    }
  }
  if (target.kind === 'sqlite' && options.onDatabaseFileLost) (storage as SqliteStorage).watchFile(options.onDatabaseFileLost);
  return storage;
}
