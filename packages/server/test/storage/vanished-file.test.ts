// The embedded database's file vanishing under an open storage (src/storage/sqlite/file-watch.ts):
// noticed within about a second whether the database, its -wal or its -shm file was deleted or
// replaced; every call is refused from then on as "storage unavailable" (503), a copy of the open
// database with every acknowledged write is saved beside it; and a start that would create a new
// database where one clearly existed is refused (src/storage/sqlite/fresh-start.ts).

import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, renameSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isStorageUnavailable } from '../../src/storage/unavailable.js';
import { ConfigError } from '../../src/ground/errors.js';
import { openStorage } from '../../src/storage/open.js';
import { checkFreshDatabase } from '../../src/storage/sqlite/fresh-start.js';
import type { LostDatabase } from '../../src/storage/sqlite/storage.js';
import { StorageUnavailableError, type Storage } from '../../src/storage/types.js';
import type { ClientRecord } from '../../src/ground/records.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-vanish-'));
  dirs.push(dir);
  return dir;
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

const client = (clientId: string): ClientRecord => ({
  clientId, clientName: clientId, scope: ['a'], defaultScope: null, audience: ['https://api.example.com'], defaultAudience: null,
  tokenEndpointAuthMethod: 'client_secret_basic', federation: null, grantTypes: ['client_credentials'], resourceUris: [], jwks: null,
  accessTokenTtl: null, rateLimit: null, tokenReuse: false, dpopBoundAccessTokens: false, fapi2: false, disabled: false, claims: {}, tlsClientAuth: null, tlsClientCertificateBoundAccessTokens: false,
  secrets: [{ digest: 'a'.repeat(64), createdAt: 1, expiresAt: null }], tokensRevokedAt: null, createdAt: 1, updatedAt: 1,
});

/** A watched storage on a new file with one client, and the lost-file reports it makes. */
async function watched(): Promise<{ file: string; storage: Storage; lost: Promise<LostDatabase> }> {
  const file = join(tempDir(), 'm2m-auth.db');
  let report: (lost: LostDatabase) => void = () => undefined;
  const lost = new Promise<LostDatabase>((resolve) => (report = resolve));
  const storage = await openStorage(`sqlite:${file}`, { onDatabaseFileLost: (l) => report(l) });
  await storage.clients.createClient(client('cl_before'));
  return { file, storage, lost };
}

/** The report, or a failure after 3 s (the files are checked every 500 ms). */
async function reported(lost: Promise<LostDatabase>): Promise<LostDatabase> {
  const late = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('not noticed within 3 s')), 3000).unref());
  return Promise.race([lost, late]);
}

async function expectRefused(call: Promise<unknown>): Promise<void> {
  const err = await call.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(StorageUnavailableError);
  expect(isStorageUnavailable(err)).toBe(true);
}

describe('a database file that vanishes under the storage', () => {
  it('is noticed when deleted with its -wal and -shm: every call is refused, and a copy holds every acknowledged write', async () => {
    const { file, storage, lost } = await watched();
    for (const f of [file, `${file}-wal`, `${file}-shm`]) unlinkSync(f);
    const report = await reported(lost);
    expect(report).toMatchObject({ database: file, path: file, change: 'deleted' });
    await expectRefused(storage.clients.createClient(client('cl_after')));
    await expectRefused(storage.clients.getClient('cl_before'));
    await expectRefused(storage.revocations.revokeToken({ jti: 'j', clientId: 'cl_before', expiresAt: Date.now() + 60_000, revokedAt: Date.now() }));
    await expectRefused(storage.changes.since(0, 10));
    await expectRefused(storage.ping());
    await expectRefused(storage.sweep(Date.now()));
    expect(report.rescued).toMatch(new RegExp(`^${file.replace(/[.]/g, '\\.')}\\.rescued-.+-${process.pid}$`));
    expect(statSync(report.rescued!).mode & 0o777).toBe(0o600);
    const copy = new Database(report.rescued!, { readonly: true });
    try {
      expect(copy.prepare('SELECT client_id FROM clients').pluck().all()).toEqual(['cl_before']);
    } finally {
      copy.close();
    }
    await storage.close();
    expect(existsSync(file)).toBe(false);
  });

  it('is noticed when another file is moved over it', async () => {
    const { file, storage, lost } = await watched();
    const other = join(tempDir(), 'other.db');
    new Database(other).close();
    renameSync(other, file);
    expect(await reported(lost)).toMatchObject({ path: file, change: 'replaced' });
    await expectRefused(storage.clients.createClient(client('cl_after')));
    await storage.close();
  });

  it('is noticed when only its -wal file is deleted', async () => {
    const { file, storage, lost } = await watched();
    unlinkSync(`${file}-wal`);
    expect(await reported(lost)).toMatchObject({ path: `${file}-wal`, change: 'deleted' });
    await expectRefused(storage.clients.createClient(client('cl_after')));
    await storage.close();
  });

  it('leaves an unwatched or untouched database alone', async () => {
    const file = join(tempDir(), 'm2m-auth.db');
    let lost = false;
    const storage = await openStorage(`sqlite:${file}`, { onDatabaseFileLost: () => (lost = true) });
    await storage.clients.createClient(client('cl_a'));
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect(lost).toBe(false);
    expect(await storage.clients.getClient('cl_a')).toBeDefined();
    await storage.close();
    // Closed normally: the last connection folded the -wal file into the database and removed it.
    expect(existsSync(`${file}-wal`)).toBe(false);
  });
});

describe('a start that would create a new database', () => {
  const refused = (fn: () => void): ConfigError => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return err as ConfigError;
    }
    throw new Error('not refused');
  };

  it('goes ahead on a first start, and with --init where files of an earlier start are', () => {
    const dir = tempDir();
    const file = join(dir, 'm2m-auth.db');
    expect(() => checkFreshDatabase(file, [join(dir, 'kek'), join(dir, 'admin-token')], false)).not.toThrow();
    writeFileSync(join(dir, 'kek'), 'x');
    expect(() => checkFreshDatabase(file, [join(dir, 'kek'), join(dir, 'admin-token')], true)).not.toThrow();
  });

  it('is refused where the key-encryption key or admin token shows that a database existed, naming --init and a saved copy', () => {
    const dir = tempDir();
    const file = join(dir, 'm2m-auth.db');
    writeFileSync(join(dir, 'admin-token'), 'x');
    const err = refused(() => checkFreshDatabase(file, [join(dir, 'kek'), join(dir, 'admin-token')], false));
    expect(err.code).toBe('DATABASE_MISSING');
    expect(err.message).not.toContain('\n');
    expect(err.message).toContain(`The database ${file} is missing, but ${join(dir, 'admin-token')} shows that it existed`);
    expect(err.message).toContain('m2m-auth serve --init');
    // An empty file is no database either.
    writeFileSync(file, '');
    writeFileSync(`${file}.rescued-2030-01-01T00-00-00-000Z-42`, 'x');
    const again = refused(() => checkFreshDatabase(file, [join(dir, 'kek'), join(dir, 'admin-token')], false));
    expect(again.message).toContain(`or from ${file}.rescued-2030-01-01T00-00-00-000Z-42 (saved by the server when the file vanished)`);
  });

  it('is refused, --init or not, while a -wal file of the old database is left', () => {
    const dir = tempDir();
    const file = join(dir, 'm2m-auth.db');
    writeFileSync(`${file}-wal`, 'x');
    for (const init of [false, true]) {
      const err = refused(() => checkFreshDatabase(file, [], init));
      expect(err.message).toContain(`${file}-wal`);
    }
  });

  it('refuses --init where the database exists', () => {
    const dir = tempDir();
    const file = join(dir, 'm2m-auth.db');
    const db = new Database(file);
    db.exec('CREATE TABLE t (a)');
    db.close();
    expect(() => checkFreshDatabase(file, [], false)).not.toThrow();
    const err = refused(() => checkFreshDatabase(file, [], true));
    expect(err.code).toBe('DATABASE_EXISTS');
    expect(err.message).toContain('start without --init to serve it');
  });
});
