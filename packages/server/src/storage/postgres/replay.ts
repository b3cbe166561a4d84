// ReplayStore on PostgreSQL: single-use keys such as private_key_jwt assertion jti (RFC 7523 §3).

import type { ReplayRecord, ReplayStore } from '../types.js';
import { int8FromDb, type Queryable } from './sql.js';

// One statement, so check-and-record is atomic even across instances: it inserts a new key, or takes
// over a key whose previous use has expired. A live key matches neither and returns no row; a
// concurrent insert of the same key waits for the first to commit, then sees it live.
const CONSUME = `INSERT INTO replay (key, expires_at) VALUES ($1, $2)
  ON CONFLICT (key) DO UPDATE SET expires_at = EXCLUDED.expires_at WHERE replay.expires_at <= $3
  RETURNING 1`;
const LIST = 'SELECT key, expires_at FROM replay WHERE expires_at > $1 ORDER BY key';
export const DELETE_EXPIRED_REPLAY = 'DELETE FROM replay WHERE expires_at <= $1';

export class PostgresReplayStore implements ReplayStore {
  constructor(private readonly db: Queryable) {}

  async consumeOnce(key: string, expiresAt: number, now: number): Promise<boolean> {
    return (await this.db.query(CONSUME, [key, expiresAt, now])).rows.length === 1;
  }

  async listReplay(now: number): Promise<ReplayRecord[]> {
    const { rows } = await this.db.query<{ key: string; expires_at: string }>(LIST, [now]);
    return rows.map((r) => ({ key: r.key, expiresAt: int8FromDb(r.expires_at) }));
  }
}
