// Helpers the PostgreSQL stores share: duplicate keys as StorageConflictError, bigint times, transactions.

import pg from 'pg';
import { StorageConflictError } from '../types.js';
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
