// ChangeLog on SQLite: rows appended by triggers (migration 2), read by seq, pruned by age.

import type { Database } from 'better-sqlite3';
import { CHANGE_RETENTION_MS, type ChangeKind, type ChangeLog, type ChangeRecord } from '../types.js';
import { preparedOnce, type Gate } from './constraint.js';

interface ChangeRow {
  seq: number;
  kind: ChangeKind;
  key: string;
  expires_at: number | null;
  created_at: number;
}

function prepareStatements(db: Database) {
  return {
    // AUTOINCREMENT keeps the highest seq in sqlite_sequence even after the rows are pruned.
    head: db.prepare<[], number>("SELECT COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'changes'), 0)").pluck(),
    since: db.prepare<[number, number], ChangeRow>(
      'SELECT seq, kind, key, expires_at, created_at FROM changes WHERE seq > ? ORDER BY seq LIMIT ?',
    ),
    prunedThrough: db.prepare<[], number>('SELECT through_seq FROM changes_pruned WHERE id = 1').pluck(),
    maxOld: db.prepare<[number], number | null>('SELECT MAX(seq) FROM changes WHERE created_at <= ?').pluck(),
    deleteOld: db.prepare<[number]>('DELETE FROM changes WHERE seq <= ?'),
    setPruned: db.prepare<[number]>('UPDATE changes_pruned SET through_seq = MAX(through_seq, ?) WHERE id = 1'),
  };
}

export class SqliteChangeLog implements ChangeLog {
  private readonly statements: () => ReturnType<typeof prepareStatements>;

  constructor(db: Database, gate?: Gate) {
    this.statements = preparedOnce(() => prepareStatements(db), gate);
  }

  async head(): Promise<number> {
    return this.statements().head.get() ?? 0;
  }

  async since(after: number, limit: number): Promise<{ changes: ChangeRecord[]; complete: boolean }> {
    const s = this.statements();
    // Rows first, then how far the log was pruned: a prune by another process in between then
    // reads as incomplete (a full resync), never as a complete answer with a gap.
    const changes = s.since.all(after, limit).map((r) => ({
      seq: r.seq, kind: r.kind, key: r.key, expiresAt: r.expires_at, createdAt: r.created_at,
    }));
    const complete = after >= (s.prunedThrough.get() ?? 0);
    return { changes, complete };
  }

  /**
   * Synchronous form for sweep's transaction: prunes changes older than the retention. Changes
   * carry the database's wall-clock time, so this uses the wall clock too, not sweep's `now`.
   */
  deleteOld(wallClockNow: number = Date.now()): number {
    const s = this.statements();
    const through = s.maxOld.get(wallClockNow - CHANGE_RETENTION_MS);
    if (through === null || through === undefined) return 0;
    s.setPruned.run(through);
    return s.deleteOld.run(through).changes;
  }
}
