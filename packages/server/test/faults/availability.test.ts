// Which failures count as "storage unavailable" (503 and retry) rather than a bug (500), the
// staleness bound on cached clients, and a SQLite database locked by another process: writes
// answer 503 and store nothing while known clients keep getting tokens.

import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isStorageUnavailable } from '../../src/storage/unavailable.js';
import { RETRY_AFTER_SECONDS } from '../../src/ground/errors.js';
import { StalenessGuard } from '../../src/sync/staleness.js';
import { asUnavailable } from '../../src/oauth/unavailable.js';
// As in the server: the PostgreSQL backend, once loaded, makes pg's errors known to the classifier.
import '../../src/storage/postgres/sql.js';
import { OAuthError } from '../../src/ground/errors.js';
import { StorageConflictError } from '../../src/storage/types.js';
import { type ClientRecord } from '../../src/ground/records.js';
import { ensureBuilt, startServerProcess, type ServerProcess } from '../helpers/process.js';
import { NO_LIMITS, admin, basic, form, introspect, newClient, token } from './helpers.js';

function withCode<T extends Error>(err: T, code: string, extra: Record<string, unknown> = {}): T {
  return Object.assign(err, { code, ...extra });
}

function dbError(code: string): pg.DatabaseError {
  const err = new pg.DatabaseError('server said no', 0, 'error');
  err.code = code;
  return err;
}

describe('isStorageUnavailable', () => {
  it.each([
    ['a refused connection', withCode(new Error('connect ECONNREFUSED 127.0.0.1:5432'), 'ECONNREFUSED')],
    ['a reset connection', withCode(new Error('read ECONNRESET'), 'ECONNRESET')],
    ['a Unix socket whose server is gone', withCode(new Error('connect ENOENT /run/pg/.s.PGSQL.5432'), 'ENOENT', { syscall: 'connect' })],
    ['a dual-stack connect refused on every address', new AggregateError([withCode(new Error('x'), 'ECONNREFUSED')], 'connect failed')],
    ['pg: the server closed the connection', new Error('Connection terminated unexpectedly')],
    ['pg: no connection within connectionTimeoutMillis', new Error('timeout exceeded when trying to connect')],
    ['pg: no answer within query_timeout', new Error('Query read timeout')],
    ['SQLSTATE 57P01 admin_shutdown', dbError('57P01')],
    ['SQLSTATE 57P03 cannot_connect_now (starting up)', dbError('57P03')],
    ['SQLSTATE 57014 statement_timeout', dbError('57014')],
    ['SQLSTATE 08006 connection_failure', dbError('08006')],
    ['SQLSTATE 53300 too_many_connections', dbError('53300')],
    ['SQLSTATE 25006 read-only (failover)', dbError('25006')],
    ['SQLite busy', withCode(new Error('database is locked'), 'SQLITE_BUSY')],
    ['SQLite disk I/O error', withCode(new Error('disk I/O error'), 'SQLITE_IOERR_WRITE')],
    ['SQLite disk full', withCode(new Error('database or disk is full'), 'SQLITE_FULL')],
    ['an error caused by one of these', new Error('load failed', { cause: withCode(new Error('x'), 'ECONNREFUSED') })],
  ])('counts %s', (_name, err) => {
    expect(isStorageUnavailable(err)).toBe(true);
  });

  it.each([
    ['a plain bug', new TypeError("Cannot read properties of undefined (reading 'x')")],
    ['SQLSTATE 42P01 undefined_table', dbError('42P01')],
    ['SQLSTATE 23505 unique_violation', dbError('23505')],
    ['a storage conflict', new StorageConflictError('duplicate')],
    ['SQLite constraint', withCode(new Error('UNIQUE constraint failed'), 'SQLITE_CONSTRAINT_PRIMARYKEY')],
    ['ENOENT outside a connect', withCode(new Error('no such file'), 'ENOENT', { syscall: 'open' })],
    ['not an error', 'ECONNREFUSED'],
    ['null', null],
  ])('does not count %s', (_name, err) => {
    expect(isStorageUnavailable(err)).toBe(false);
  });

  it('turns an unavailable storage error into a 503 temporarily_unavailable and leaves others alone', () => {
    const mapped = asUnavailable(withCode(new Error('connect ECONNREFUSED'), 'ECONNREFUSED'));
    expect(mapped).toBeInstanceOf(OAuthError);
    expect(mapped).toMatchObject({ error: 'temporarily_unavailable', status: 503, headers: { 'retry-after': String(RETRY_AFTER_SECONDS) } });
    const bug = new TypeError('bug');
    expect(asUnavailable(bug)).toBe(bug);
    const protocol = new OAuthError('invalid_client', 'no');
    expect(asUnavailable(protocol)).toBe(protocol);
  });
});

describe('StalenessGuard', () => {
  const record = { clientId: 'cl_a' } as ClientRecord;
  const lookup = { get: async (id: string) => (id === 'cl_a' ? record : undefined) };

  it('answers from the lookup up to the bound and refuses with 503 beyond it', async () => {
    const clock = { now: 1_000_000 };
    let last = clock.now;
    const guard = new StalenessGuard({ clients: lookup, lastSuccess: () => last, boundMs: 2000, now: () => clock.now });
    expect(await guard.get('cl_a')).toBe(record);
    expect(await guard.get('cl_unknown')).toBeUndefined();
    clock.now += 2000;
    expect(guard.fresh()).toBe(true);
    expect(await guard.get('cl_a')).toBe(record);
    clock.now += 1;
    expect(guard.fresh()).toBe(false);
    await expect(guard.get('cl_a')).rejects.toMatchObject({
      error: 'temporarily_unavailable', status: 503, headers: { 'retry-after': String(RETRY_AFTER_SECONDS) },
    });
    // A successful read of the change log restores trust.
    last = clock.now;
    expect(await guard.get('cl_a')).toBe(record);
  });

  it('refuses a bound that is not positive', () => {
    expect(() => new StalenessGuard({ clients: lookup, lastSuccess: () => 0, boundMs: 0 })).toThrow(RangeError);
  });
});

describe('a SQLite database locked by another process', () => {
  let dir: string | undefined;
  let file: string;
  const ADMIN = 'faults-admin-token-' + randomBytes(16).toString('hex');
  let p: ServerProcess;

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'm2m-auth-faults-lock-'));
    file = join(dir, 'm2m-auth.db');
    p = await startServerProcess({
      ...NO_LIMITS, M2M_AUTH_DATABASE_URL: `sqlite:${file}`, M2M_AUTH_DATA_DIR: dir, M2M_AUTH_KEK: randomBytes(32).toString('base64'),
    }, ADMIN);
  }, 60_000);

  afterAll(async () => {
    await p?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('answers 503 to writes once the busy timeout passes, stores nothing, and keeps serving known clients', async () => {
    const c = await newClient(p);
    const issued = (await token(p, c)).json.access_token as string;
    const before = (await admin(p, 'GET', '/admin/clients?limit=1000')).json.clients.length as number;

    const holder = new Database(file, { timeout: 0 });
    try {
      holder.prepare('BEGIN IMMEDIATE').run();
      // Readers are not blocked in WAL mode: tokens and introspection go on.
      expect((await token(p, c)).status).toBe(200);
      expect((await introspect(p, c, issued)).json.active).toBe(true);
      // Writers wait out the busy timeout (5 s), then fail loudly.
      const created = await admin(p, 'POST', '/admin/clients', {
        client_name: 'while-locked', scope: 'orders:read', audience: ['https://orders.example.com'],
      });
      expect(created.status).toBe(503);
      expect(created.json.error).toBe('temporarily_unavailable');
      const revoked = await form(p, '/oauth2/revoke', { token: issued }, basic(c.id, c.secret));
      expect(revoked.status).toBe(503);
      expect(revoked.json.error).toBe('temporarily_unavailable');
    } finally {
      holder.prepare('ROLLBACK').run();
      holder.close();
    }

    const after = (await admin(p, 'GET', '/admin/clients?limit=1000')).json.clients as Array<{ client_name: string }>;
    expect(after).toHaveLength(before);
    expect((await introspect(p, c, issued)).json.active).toBe(true);
    expect((await form(p, '/oauth2/revoke', { token: issued }, basic(c.id, c.secret))).status).toBe(200);
    expect((await introspect(p, c, issued)).json).toStrictEqual({ active: false });
  }, 60_000);
});
