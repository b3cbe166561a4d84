// ReplayStore on SQLite: single-use keys such as private_key_jwt assertion jti (RFC 7523 §3).

import type { Database } from 'better-sqlite3';
import type { ReplayRecord, ReplayStore } from '../types.js';
import { preparedOnce, type Gate } from './constraint.js';

function prepareStatements(db: Database) {
  return {
    // One statement, so check-and-record is atomic: it inserts a new key, or takes over a key whose
    // previous use has expired; a live key matches neither and changes no row.
    consume: db.prepare<[{ key: string; expiresAt: number; now: number }]>(`INSERT INTO replay (key, expires_at)
      VALUES (@key, @expiresAt)
      ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at WHERE replay.expires_at <= @now`),
    deleteExpired: db.prepare<[number]>('DELETE FROM replay WHERE expires_at <= ?'),
    list: db.prepare<[number], { key: string; expires_at: number }>('SELECT key, expires_at FROM replay WHERE expires_at > ? ORDER BY key'),
  };
}

export class SqliteReplayStore implements ReplayStore {
  private readonly statements: () => ReturnType<typeof prepareStatements>;

  constructor(db: Database, gate?: Gate) {
    this.statements = preparedOnce(() => prepareStatements(db), gate);
  }

  async consumeOnce(key: string, expiresAt: number, now: number): Promise<boolean> {
    return this.statements().consume.run({ key, expiresAt, now }).changes === 1;
  }

  async listReplay(now: number): Promise<ReplayRecord[]> {
    return this.statements().list.all(now).map((r) => ({ key: r.key, expiresAt: r.expires_at }));
  }

  /** Synchronous form for sweep's transaction. */
  deleteExpired(now: number): number {
    return this.statements().deleteExpired.run(now).changes;
  }
}
