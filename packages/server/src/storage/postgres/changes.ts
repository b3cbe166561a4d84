// ChangeLog on PostgreSQL: rows appended by triggers (migration 2), read by seq, pruned by age.

import pg from 'pg';
import { CHANGE_RETENTION_MS, type ChangeKind, type ChangeLog, type ChangeRecord } from '../types.js';
import { int8FromDb, int8OrNullFromDb, type Queryable } from './sql.js';

interface SinceRow {
  pruned_through: string;
  seq: string | null;
  kind: ChangeKind | null;
  key: string | null;
  expires_at: string | null;
  created_at: string | null;
}

const HEAD = 'SELECT seq FROM changes_head WHERE id = 1';
// One statement, so one snapshot: how far the log was pruned and the changes read agree.
const SINCE = `SELECT h.pruned_through, c.seq, c.kind, c.key, c.expires_at, c.created_at
  FROM changes_head h
  LEFT JOIN LATERAL (
    SELECT seq, kind, key, expires_at, created_at FROM changes WHERE seq > $1 ORDER BY seq LIMIT $2
  ) c ON true
  WHERE h.id = 1
  ORDER BY c.seq`;
// Changes carry the database's clock (the triggers set created_at), so age is measured by it too.
const MARK_PRUNED = `UPDATE changes_head SET pruned_through = old.through
  FROM (SELECT max(seq) AS through FROM changes
        WHERE created_at <= (extract(epoch FROM clock_timestamp()) * 1000)::bigint - $1) old
  WHERE changes_head.id = 1 AND old.through > changes_head.pruned_through
  RETURNING changes_head.pruned_through`;
const DELETE_PRUNED = 'DELETE FROM changes WHERE seq <= $1';

export class PostgresChangeLog implements ChangeLog {
  constructor(private readonly db: Queryable) {}

  async head(): Promise<number> {
    const { rows } = await this.db.query<{ seq: string }>(HEAD);
    if (rows[0] === undefined) throw new Error('changes_head has no row: the schema is not migrated');
    return int8FromDb(rows[0].seq);
  }

  async since(after: number, limit: number): Promise<{ changes: ChangeRecord[]; complete: boolean }> {
    const { rows } = await this.db.query<SinceRow>(SINCE, [after, limit]);
    if (rows[0] === undefined) throw new Error('changes_head has no row: the schema is not migrated');
    const changes: ChangeRecord[] = [];
    for (const row of rows) {
      if (row.seq === null) continue;
      changes.push({
        seq: int8FromDb(row.seq),
        kind: row.kind as ChangeKind,
        key: row.key as string,
        expiresAt: int8OrNullFromDb(row.expires_at),
        createdAt: int8FromDb(row.created_at as string),
      });
    }
    return { changes, complete: after >= int8FromDb(rows[0].pruned_through) };
  }

  /** For sweep's transaction: deletes changes older than CHANGE_RETENTION_MS; returns how many. */
  async deleteOld(client: pg.ClientBase, retentionMs: number = CHANGE_RETENTION_MS): Promise<number> {
    const { rows } = await client.query<{ pruned_through: string }>(MARK_PRUNED, [retentionMs]);
    if (rows[0] === undefined) return 0;
    return (await client.query(DELETE_PRUNED, [rows[0].pruned_through])).rowCount ?? 0;
  }
}
