// RevocationStore on PostgreSQL: revoked jti values kept until the token's own expiry (RFC 7009 §2.2).

import type { RevocationRecord } from '../../ground/records.js';
import type { RevocationStore } from '../types.js';
import { int8FromDb, type Queryable } from './sql.js';

interface RevocationRow {
  jti: string;
  client_id: string;
  expires_at: string;
  revoked_at: string;
}

// Revoking twice keeps the first record: the token was already unusable from then on.
const INSERT = `INSERT INTO revocations (jti, client_id, expires_at, revoked_at)
  VALUES ($1, $2, $3, $4) ON CONFLICT (jti) DO NOTHING`;
const IS_REVOKED = 'SELECT 1 FROM revocations WHERE jti = $1 AND expires_at > $2';
const LIST = 'SELECT jti, client_id, expires_at, revoked_at FROM revocations WHERE expires_at > $1 ORDER BY jti';
export const DELETE_EXPIRED_REVOCATIONS = 'DELETE FROM revocations WHERE expires_at <= $1';

export class PostgresRevocationStore implements RevocationStore {
  constructor(private readonly db: Queryable) {}

  async revokeToken(record: RevocationRecord): Promise<void> {
    await this.db.query(INSERT, [record.jti, record.clientId, record.expiresAt, record.revokedAt]);
  }

  async isTokenRevoked(jti: string, now: number): Promise<boolean> {
    return (await this.db.query(IS_REVOKED, [jti, now])).rows.length > 0;
  }

  async listRevocations(now: number): Promise<RevocationRecord[]> {
    const { rows } = await this.db.query<RevocationRow>(LIST, [now]);
    return rows.map((row) => ({
      jti: row.jti,
      clientId: row.client_id,
      expiresAt: int8FromDb(row.expires_at),
      revokedAt: int8FromDb(row.revoked_at),
    }));
  }
}
