// KeyStore on SQLite: signing keys with their publication and retirement times.

import type { Database } from 'better-sqlite3';
import type { KeyStore } from '../types.js';
import type { PublicJwk, SigningKeyRecord } from '../../ground/records.js';
import type { SigningAlgorithm } from '../../ground/names.js';
import { conflictOnDuplicate, preparedOnce, type Gate } from './constraint.js';

interface KeyRow {
  kid: string;
  alg: string;
  public_jwk: string;
  private_key_encrypted: string;
  created_at: number;
  activates_at: number;
  retired_at: number | null;
  expires_at: number | null;
  revoked_at: number | null;
}

const COLUMNS = 'kid, alg, public_jwk, private_key_encrypted, created_at, activates_at, retired_at, expires_at, revoked_at';

function fromRow(row: KeyRow): SigningKeyRecord {
  return {
    kid: row.kid,
    alg: row.alg as SigningAlgorithm,
    publicJwk: JSON.parse(row.public_jwk) as PublicJwk,
    privateKeyEncrypted: row.private_key_encrypted,
    createdAt: row.created_at,
    activatesAt: row.activates_at,
    retiredAt: row.retired_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}

function prepareStatements(db: Database) {
  return {
    list: db.prepare<[], KeyRow>(`SELECT ${COLUMNS} FROM signing_keys ORDER BY created_at, kid`),
    insert: db.prepare<[KeyRow]>(`INSERT INTO signing_keys (${COLUMNS}) VALUES (
      @kid, @alg, @public_jwk, @private_key_encrypted, @created_at, @activates_at, @retired_at, @expires_at, @revoked_at)`),
    retire: db.prepare<[number, number, string]>(
      'UPDATE signing_keys SET retired_at = ?, expires_at = ? WHERE kid = ? AND revoked_at IS NULL',
    ),
    // Two-argument MIN is SQLite's scalar minimum; MIN(NULL, x) would be NULL, hence the COALESCE.
    revoke: db.prepare<[{ kid: string; revoked_at: number; expires_at: number }]>(
      `UPDATE signing_keys SET revoked_at = COALESCE(revoked_at, @revoked_at), retired_at = COALESCE(retired_at, @revoked_at),
        expires_at = MIN(COALESCE(expires_at, @expires_at), @expires_at) WHERE kid = @kid`,
    ),
    deleteExpired: db.prepare<[number], { kid: string }>('DELETE FROM signing_keys WHERE expires_at <= ? RETURNING kid'),
    newerThan: db.prepare<[number], { found: number }>('SELECT 1 AS found FROM signing_keys WHERE created_at > ? LIMIT 1'),
  };
}

function toRow(key: SigningKeyRecord): KeyRow {
  return {
    kid: key.kid,
    alg: key.alg,
    public_jwk: JSON.stringify(key.publicJwk),
    private_key_encrypted: key.privateKeyEncrypted,
    created_at: key.createdAt,
    activates_at: key.activatesAt,
    retired_at: key.retiredAt,
    expires_at: key.expiresAt,
    revoked_at: key.revokedAt,
  };
}

export class SqliteKeyStore implements KeyStore {
  private readonly statements: () => ReturnType<typeof prepareStatements>;
  private readonly insertIfNoneSince: () => (row: KeyRow, since: number) => boolean;

  constructor(db: Database, gate?: Gate) {
    this.statements = preparedOnce(() => prepareStatements(db), gate);
    this.insertIfNoneSince = preparedOnce(() => {
      const run = db.transaction((row: KeyRow, since: number): boolean => {
        const s = this.statements();
        if (s.newerThan.get(since) !== undefined) return false;
        s.insert.run(row);
        return true;
      });
      // IMMEDIATE takes the write lock before the check, so another process cannot insert between
      // the check and the insert (a deferred transaction would only lock at the insert).
      return (row: KeyRow, since: number) => run.immediate(row, since);
    });
  }

  async listKeys(): Promise<SigningKeyRecord[]> {
    return this.statements().list.all().map(fromRow);
  }

  async insertKey(key: SigningKeyRecord): Promise<void> {
    const row = toRow(key);
    conflictOnDuplicate(() => this.statements().insert.run(row), `signing key ${key.kid} already exists`);
  }

  async insertKeyIfNoneSince(key: SigningKeyRecord, since: number): Promise<boolean> {
    const row = toRow(key);
    return conflictOnDuplicate(() => this.insertIfNoneSince()(row, since), `signing key ${key.kid} already exists`);
  }

  async retireKey(kid: string, retiredAt: number, expiresAt: number): Promise<boolean> {
    return this.statements().retire.run(retiredAt, expiresAt, kid).changes === 1;
  }

  async revokeKey(kid: string, revokedAt: number, expiresAt: number): Promise<boolean> {
    return this.statements().revoke.run({ kid, revoked_at: revokedAt, expires_at: expiresAt }).changes === 1;
  }

  /** A null expires_at never compares <= now, so unretired keys stay. */
  async deleteExpiredKeys(now: number): Promise<string[]> {
    return this.statements().deleteExpired.all(now).map((r) => r.kid);
  }
}
