// RevocationStore on SQLite: revoked jti values kept until the token's own expiry (RFC 7009 §2.2).

import type { Database } from 'better-sqlite3';
import type { RevocationRecord } from '../../ground/records.js';
import type { RevocationStore } from '../types.js';
import { preparedOnce, type Gate } from './constraint.js';

interface RevocationRow {
  jti: string;
  client_id: string;
  expires_at: number;
  revoked_at: number;
}

function prepareStatements(db: Database) {
  return {
    // Revoking twice keeps the first record: the token was already unusable from then on.
    insert: db.prepare<[RevocationRow]>(`INSERT INTO revocations (jti, client_id, expires_at, revoked_at)
      VALUES (@jti, @client_id, @expires_at, @revoked_at) ON CONFLICT (jti) DO NOTHING`),
    isRevoked: db.prepare<[string, number], 1>('SELECT 1 FROM revocations WHERE jti = ? AND expires_at > ?').pluck(),
    list: db.prepare<[number], RevocationRow>(
      'SELECT jti, client_id, expires_at, revoked_at FROM revocations WHERE expires_at > ? ORDER BY jti',
    ),
    deleteExpired: db.prepare<[number]>('DELETE FROM revocations WHERE expires_at <= ?'),
  };
}

export class SqliteRevocationStore implements RevocationStore {
  private readonly statements: () => ReturnType<typeof prepareStatements>;

  constructor(db: Database, gate?: Gate) {
    this.statements = preparedOnce(() => prepareStatements(db), gate);
  }

  async revokeToken(record: RevocationRecord): Promise<void> {
    this.statements().insert.run({
      jti: record.jti,
      client_id: record.clientId,
      expires_at: record.expiresAt,
      revoked_at: record.revokedAt,
    });
  }

  async isTokenRevoked(jti: string, now: number): Promise<boolean> {
    return this.statements().isRevoked.get(jti, now) !== undefined;
  }

  async listRevocations(now: number): Promise<RevocationRecord[]> {
    return this.statements()
      .list.all(now)
      .map((row) => ({ jti: row.jti, clientId: row.client_id, expiresAt: row.expires_at, revokedAt: row.revoked_at }));
  }

  /** Synchronous form for sweep's transaction. */
  deleteExpired(now: number): number {
    return this.statements().deleteExpired.run(now).changes;
  }
}
