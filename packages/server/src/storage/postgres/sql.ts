// Helpers the PostgreSQL stores share: duplicate keys as StorageConflictError, bigint times, transactions.

import pg from 'pg';
import { StorageConflictError, type ConflictReason } from '../types.js';
import { recognisePostgresErrors } from '../unavailable.js';

// Every PostgreSQL store imports this module: from the moment pg is loaded, its errors can be
// told "database unavailable" (503) from bugs (500).
recognisePostgresErrors(pg.DatabaseError);

/** A pool or a checked-out client: anything that runs a parameterised query. */
export type Queryable = Pick<pg.Pool, 'query'>;

/** SQLSTATE unique_violation. */
const UNIQUE_VIOLATION = '23505';

/** Runs `write`; a duplicate primary or unique key becomes StorageConflictError, anything else is rethrown. */
export async function conflictOnDuplicate<T>(write: () => Promise<T>, message: string): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (err instanceof pg.DatabaseError && err.code === UNIQUE_VIOLATION) throw new StorageConflictError(message);
    throw err;
  }
}

/** SQLSTATE foreign_key_violation. */
const FOREIGN_KEY_VIOLATION = '23503';

/**
 * Runs `write`; a broken constraint becomes StorageConflictError with the message `describe` gives
 * for it: a duplicate primary key, a duplicate federated (trust, subject) pair (the unique
 * constraint clients_federated_identity), or a foreign key (a missing trust, or a trust still named).
 */
export async function conflictOnConstraint<T>(
  write: () => Promise<T>, describe: (reason: ConflictReason) => string, foreignKey: ConflictReason,
): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (!(err instanceof pg.DatabaseError)) throw err;
    let reason: ConflictReason | undefined;
    if (err.code === FOREIGN_KEY_VIOLATION) reason = foreignKey;
    else if (err.code === UNIQUE_VIOLATION) reason = err.constraint === 'clients_federated_identity' ? 'federated_identity' : 'duplicate';
    if (reason === undefined) throw err;
    throw new StorageConflictError(describe(reason), reason);
  }
}

/**
 * A bigint column (epoch ms, a seq) as a number. pg hands int8 over as a string, since not every
 * int8 fits a double; every value we store does, so anything else means the row was not written by us.
 */
export function int8FromDb(value: string): number {
  const ms = Number(value);
  if (!Number.isSafeInteger(ms)) throw new RangeError(`bigint column value ${value} is not a safe integer`);
  return ms;
}

export function int8OrNullFromDb(value: string | null): number | null {
  return value === null ? null : int8FromDb(value);
}

/** JSON text for a jsonb parameter: pg would send a JavaScript array as a PostgreSQL array, not JSON. */
export function jsonb(value: unknown): string {
  return JSON.stringify(value);
}

export function jsonbOrNull(value: unknown): string | null {
  return value === null ? null : JSON.stringify(value);
}

/** Runs `work` on one pooled connection inside BEGIN ... COMMIT, rolling back when it throws. */
export async function inTransaction<T>(pool: pg.Pool, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  // A connection whose ROLLBACK fails is in an unknown state: released with the error, the pool discards it.
  let broken: Error | undefined;
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (err) {
    try {
      await client.query('ROLLBACK');
    } catch (rollbackError) {
      broken = rollbackError instanceof Error ? rollbackError : new Error(String(rollbackError));
    }
    throw err;
  } finally {
    client.release(broken);
  }
}
