// Helpers the SQLite stores share: duplicate keys as StorageConflictError, statements prepared once.

import Database from 'better-sqlite3';
import { StorageConflictError } from '../types.js';

const UNIQUE_CODES = new Set(['SQLITE_CONSTRAINT_PRIMARYKEY', 'SQLITE_CONSTRAINT_UNIQUE']);

/** Runs `write`; a duplicate primary or unique key becomes StorageConflictError, anything else is rethrown. */
export function conflictOnDuplicate<T>(write: () => T, message: string): T {
  try {
    return write();
  } catch (err) {
    if (err instanceof Database.SqliteError && UNIQUE_CODES.has(err.code)) {
      throw new StorageConflictError(message);
    }
    throw err;
  }
}

/** Says whether the database may still be used; throws when it may not (its file vanished). */
export interface Gate {
  check(): void;
}

/**
 * Prepares statements on first use rather than at construction, so a storage opened with
 * `migrate: false` on an empty database can still be constructed and migrated afterwards. Every
 * statement a store runs is taken through this, so `gate` is asked before each.
 */
export function preparedOnce<T>(prepare: () => T, gate?: Gate): () => T {
  let prepared: T | undefined;
  if (gate === undefined) return () => (prepared ??= prepare());
  return () => {
    gate.check();
    return (prepared ??= prepare());
  };
}
