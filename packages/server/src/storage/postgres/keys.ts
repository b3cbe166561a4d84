// KeyStore on PostgreSQL: signing keys with their publication and retirement times.

import type pg from 'pg';
import type { KeyStore } from '../types.js';
import type { PublicJwk, SigningKeyRecord } from '../../ground/records.js';
import type { SigningAlgorithm } from '../../ground/names.js';
import { conflictOnDuplicate, inTransaction, int8FromDb, int8OrNullFromDb, jsonb } from './sql.js';

interface KeyRow {
  kid: string;
  alg: string;
  public_jwk: PublicJwk;
  private_key_encrypted: string;
  created_at: string;
  activates_at: string;
  retired_at: string | null;
  expires_at: string | null;
  revoked_at: string | null;
}

const COLUMNS = 'kid, alg, public_jwk, private_key_encrypted, created_at, activates_at, retired_at, expires_at, revoked_at';

function fromRow(row: KeyRow): SigningKeyRecord {
  return {
    kid: row.kid,
    alg: row.alg as SigningAlgorithm,
    publicJwk: row.public_jwk,
    privateKeyEncrypted: row.private_key_encrypted,
    createdAt: int8FromDb(row.created_at),
    activatesAt: int8FromDb(row.activates_at),
    retiredAt: int8OrNullFromDb(row.retired_at),
    expiresAt: int8OrNullFromDb(row.expires_at),
    revokedAt: int8OrNullFromDb(row.revoked_at),
  };
}

const LIST = `SELECT ${COLUMNS} FROM signing_keys ORDER BY created_at, kid`;
const INSERT = `INSERT INTO signing_keys (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`;
const RETIRE = 'UPDATE signing_keys SET retired_at = $2, expires_at = $3 WHERE kid = $1 AND revoked_at IS NULL';
// LEAST ignores a NULL argument: a key that was not retired gets $3.
const REVOKE = `UPDATE signing_keys SET revoked_at = COALESCE(revoked_at, $2), retired_at = COALESCE(retired_at, $2),
  expires_at = LEAST(expires_at, $3) WHERE kid = $1`;
const NEWER_THAN = 'SELECT 1 FROM signing_keys WHERE created_at > $1 LIMIT 1';

/**
 * The advisory lock insertKeyIfNoneSince holds for its transaction ('m2mkeys' in ASCII). It is
 * database-wide: instances on other schemas of the same database only wait a moment for each other.
 */
export const KEY_INSERT_LOCK_ID = '30736217996097907';

function insertParams(key: SigningKeyRecord): unknown[] {
  return [
    key.kid,
    key.alg,
    jsonb(key.publicJwk),
    key.privateKeyEncrypted,
    key.createdAt,
    key.activatesAt,
    key.retiredAt,
    key.expiresAt,
    key.revokedAt,
  ];
}
// A null expires_at never compares <= now, so unretired keys stay.
const DELETE_EXPIRED_KEYS = 'DELETE FROM signing_keys WHERE expires_at <= $1 RETURNING kid';

export class PostgresKeyStore implements KeyStore {
  constructor(private readonly db: pg.Pool) {}

  async listKeys(): Promise<SigningKeyRecord[]> {
    return (await this.db.query<KeyRow>(LIST)).rows.map(fromRow);
  }

  async insertKey(key: SigningKeyRecord): Promise<void> {
    await conflictOnDuplicate(() => this.db.query(INSERT, insertParams(key)), `signing key ${key.kid} already exists`);
  }

  async insertKeyIfNoneSince(key: SigningKeyRecord, since: number): Promise<boolean> {
    return inTransaction(this.db, async (client) => {
      // Concurrent callers queue here; under READ COMMITTED the check below then runs on a fresh
      // snapshot that includes whatever the previous holder committed.
      await client.query(`SELECT pg_advisory_xact_lock(${KEY_INSERT_LOCK_ID})`);
      if ((await client.query(NEWER_THAN, [since])).rows.length > 0) return false;
      await conflictOnDuplicate(() => client.query(INSERT, insertParams(key)), `signing key ${key.kid} already exists`);
      return true;
    });
  }

  async retireKey(kid: string, retiredAt: number, expiresAt: number): Promise<boolean> {
    return (await this.db.query(RETIRE, [kid, retiredAt, expiresAt])).rowCount === 1;
  }

  async revokeKey(kid: string, revokedAt: number, expiresAt: number): Promise<boolean> {
    return (await this.db.query(REVOKE, [kid, revokedAt, expiresAt])).rowCount === 1;
  }

  async deleteExpiredKeys(now: number): Promise<string[]> {
    return (await this.db.query<{ kid: string }>(DELETE_EXPIRED_KEYS, [now])).rows.map((r) => r.kid);
  }
}
