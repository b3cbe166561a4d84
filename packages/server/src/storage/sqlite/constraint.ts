// Helpers the SQLite stores share: duplicate keys as StorageConflictError, statements prepared once.

import Database from 'better-sqlite3';
import { StorageConflictError, type ConflictReason } from '../types.js';

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

/**
 * Runs `write`; a broken constraint becomes StorageConflictError with the message `describe` gives
 * for it: a duplicate primary key, a duplicate federated (trust, subject) pair (the unique index
 * clients_federated_identity), or a foreign key (a missing trust, or a trust still named).
 */
export function conflictOnConstraint<T>(write: () => T, describe: (reason: ConflictReason) => string, foreignKey: ConflictReason): T {
  try {
    return write();
  } catch (err) {
    if (!(err instanceof Database.SqliteError)) throw err;
    let reason: ConflictReason | undefined;
    if (err.code === 'SQLITE_CONSTRAINT_FOREIGNKEY') reason = foreignKey;
    else if (err.code === 'SQLITE_CONSTRAINT_UNIQUE' && err.message.includes('federated_issuer')) reason = 'federated_identity';
    else if (UNIQUE_CODES.has(err.code)) reason = 'duplicate';
    if (reason === undefined) throw err;
    throw new StorageConflictError(describe(reason), reason);
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
