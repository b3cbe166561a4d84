// The SQLite backend: the shared conformance suite on memory and on a file, plus what only a file has.

import Database from 'better-sqlite3';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/ground/errors.js';
import { storageConformance } from '../../src/storage/conformance.js';
import { openStorage } from '../../src/storage/open.js';
import { MIGRATIONS, SqliteStorage } from '../../src/storage/sqlite/index.js';
import type { ClientRecord, SigningKeyRecord } from '../../src/ground/records.js';
import type { Storage } from '../../src/storage/types.js';

/** This package (packages/server): its src/ is compiled for the child processes. */
const PACKAGE = fileURLToPath(new URL('../..', import.meta.url));
const tempDirs: string[] = [];

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'm2m-auth-sqlite-'));
  tempDirs.push(dir);
  return dir;
}

afterAll(async () => {
  await Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true })));
});

storageConformance('sqlite::memory:', () => openStorage('sqlite::memory:'));
storageConformance('sqlite file', async () => openStorage(`sqlite:${join(await tempDir(), 'm2m-auth.db')}`));

/** Reads the file with a connection of its own, so nothing the storage caches can answer. */
function inspect<T>(filename: string, read: (db: Database.Database) => T): T {
  const db = new Database(filename, { readonly: true });
  try {
    return read(db);
  } finally {
    db.close();
  }
}

function tableNames(db: Database.Database): string[] {
  return db
    .prepare<[], string>("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
    .pluck()
    .all();
}

const T0 = Date.UTC(2030, 0, 1);
const HOUR = 3_600_000;

const rotatedClient: ClientRecord = {
  clientId: 'cl_persisted',
  clientName: 'Persisted',
  scope: ['a', 'b'],
  defaultScope: ['a'],
  audience: ['https://api.example.com'],
  defaultAudience: null,
  tokenEndpointAuthMethod: 'client_secret_post',
  federation: null,
  grantTypes: ['client_credentials'],
  resourceUris: ['https://api.example.com'],
  jwks: null,
  accessTokenTtl: 300,
  rateLimit: 12.5,
  tokenReuse: true,
  dpopBoundAccessTokens: true,
  fapi2: true,
  disabled: false,
  claims: { tenant: 'acme', roles: ['reader'] },
  tlsClientAuth: null,
  tlsClientCertificateBoundAccessTokens: false,
  secrets: [
    { digest: 'b'.repeat(64), createdAt: T0 + HOUR, expiresAt: null },
    { digest: 'a'.repeat(64), createdAt: T0, expiresAt: T0 + 2 * HOUR },
  ],
  tokensRevokedAt: T0 + HOUR,
  createdAt: T0,
  updatedAt: T0 + HOUR,
};

const retiredKey: SigningKeyRecord = {
  kid: 'k-persisted',
  alg: 'PS256',
  publicJwk: { kty: 'RSA', n: 'sXch', e: 'AQAB', kid: 'k-persisted', alg: 'PS256', use: 'sig' },
  privateKeyEncrypted: 'v1.iv.ct.tag',
  createdAt: T0,
  activatesAt: T0 + HOUR,
  retiredAt: T0 + 2 * HOUR,
  expiresAt: T0 + 3 * HOUR,
  revokedAt: null,
};

describe('sqlite file storage', () => {
  it('keeps clients, rotated secrets, keys, revocations and replay entries across close and reopen', async () => {
    const url = `sqlite:${join(await tempDir(), 'm2m-auth.db')}`;
    const first = await openStorage(url);
    await first.clients.createClient({ ...rotatedClient, secrets: [rotatedClient.secrets[1]!], tokensRevokedAt: null });
    expect(await first.clients.updateClient(rotatedClient)).toBe(true);
    await first.keys.insertKey({ ...retiredKey, retiredAt: null, expiresAt: null });
    expect(await first.keys.retireKey(retiredKey.kid, T0 + 2 * HOUR, T0 + 3 * HOUR)).toBe(true);
    const revoked = { jti: 'jti-1', clientId: 'cl_persisted', expiresAt: T0 + HOUR, revokedAt: T0 };
    await first.revocations.revokeToken(revoked);
    expect(await first.replay.consumeOnce('cl_persisted:jti-a', T0 + HOUR, T0)).toBe(true);
    await first.close();

    const second = await openStorage(url);
    try {
      expect(await second.clients.getClient('cl_persisted')).toStrictEqual(rotatedClient);
      expect(await second.keys.listKeys()).toStrictEqual([retiredKey]);
      expect(await second.revocations.listRevocations(T0)).toStrictEqual([revoked]);
      expect(await second.replay.consumeOnce('cl_persisted:jti-a', T0 + HOUR, T0 + 1)).toBe(false);
    } finally {
      await second.close();
    }
  });

  it('runs in WAL mode with synchronous FULL, foreign keys and a busy timeout', async () => {
    const filename = join(await tempDir(), 'm2m-auth.db');
    const storage = await openStorage(`sqlite:${filename}`);
    try {
      expect(storage).toBeInstanceOf(SqliteStorage);
      const { db } = storage as SqliteStorage;
      expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
      expect(db.pragma('synchronous', { simple: true })).toBe(2); // 2 = FULL
      expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
      expect(db.pragma('busy_timeout', { simple: true })).toBeGreaterThanOrEqual(1000);
      // WAL is a property of the file, so any later connection sees it too.
      expect(inspect(filename, (other) => other.pragma('journal_mode', { simple: true }))).toBe('wal');
    } finally {
      await storage.close();
    }
  });

  it('records each migration once in schema_migrations', async () => {
    const filename = join(await tempDir(), 'm2m-auth.db');
    const storage = await openStorage(`sqlite:${filename}`);
    await storage.migrate();
    await storage.close();
    await (await openStorage(`sqlite:${filename}`)).close();
    const versions = inspect(filename, (db) =>
      db.prepare<[], number>('SELECT version FROM schema_migrations ORDER BY version').pluck().all(),
    );
    expect(versions).toStrictEqual(MIGRATIONS.map((m) => m.version));
    expect(versions.length).toBeGreaterThan(0);
  });

  it('leaves the schema alone with migrate: false until migrate() is called', async () => {
    const filename = join(await tempDir(), 'm2m-auth.db');
    const storage = await openStorage(`sqlite:${filename}`, { migrate: false });
    try {
      expect(inspect(filename, tableNames)).toStrictEqual([]);
      await expect(storage.clients.getClient('cl_x')).rejects.toThrow(/no such table/);
      await storage.migrate();
      expect(inspect(filename, tableNames)).toEqual(
        expect.arrayContaining(['clients', 'replay', 'revocations', 'schema_migrations', 'signing_keys']),
      );
      await storage.clients.createClient(rotatedClient);
      expect(await storage.clients.getClient(rotatedClient.clientId)).toStrictEqual(rotatedClient);
    } finally {
      await storage.close();
    }
  });

  it('lets two openStorage calls on a new file migrate at once', async () => {
    const url = `sqlite:${join(await tempDir(), 'm2m-auth.db')}`;
    const both = await Promise.all([openStorage(url), openStorage(url)]);
    try {
      await both[0].clients.createClient(rotatedClient);
      expect(await both[1].clients.getClient(rotatedClient.clientId)).toStrictEqual(rotatedClient);
    } finally {
      await Promise.all(both.map((s) => s.close()));
    }
  });

  it('lets several processes open and migrate a new file at the same instant', async () => {
    const dir = await tempDir();
    const openModule = await compileForNode(join(PACKAGE, 'src/storage/open.ts'), join(dir, 'compiled'));
    // A lost race shows up only sometimes, so every process opens the same series of new files.
    const urls = Array.from({ length: 8 }, (_, i) => `sqlite:${join(dir, `race-${i}`, 'm2m-auth.db')}`);
    const results = await raceProcesses(6, openModule, urls);
    expect(results).toStrictEqual(Array.from({ length: 6 }, () => ({ code: 0, stderr: '' })));
    for (const url of urls) {
      const versions = inspect(url.slice('sqlite:'.length), (db) =>
        db.prepare<[], number>('SELECT version FROM schema_migrations ORDER BY version').pluck().all(),
      );
      expect(versions).toStrictEqual(MIGRATIONS.map((m) => m.version));
    }
  });

  it('creates the data folder (0700) and the database file (0600)', async () => {
    const dir = await tempDir();
    const filename = join(dir, 'nested', 'data', 'm2m-auth.db');
    const storage = await openStorage(`sqlite:${filename}`);
    await storage.clients.createClient(rotatedClient);
    try {
      expect((await stat(join(dir, 'nested'))).mode & 0o777).toBe(0o700);
      expect((await stat(dirname(filename))).mode & 0o777).toBe(0o700);
      expect((await stat(filename)).mode & 0o777).toBe(0o600);
      expect((await stat(`${filename}-wal`)).mode & 0o777).toBe(0o600);
    } finally {
      await storage.close();
    }
  });

  it('opens an existing database file without changing its contents', async () => {
    const dir = await tempDir();
    const filename = join(dir, 'm2m-auth.db');
    await (await openStorage(`sqlite:${filename}`)).close();
    const before = await readFile(filename);
    await (await openStorage(`sqlite:${filename}`, { migrate: false })).close();
    expect((await readFile(filename)).equals(before)).toBe(true);
  });

  it('resolves a relative path against the working directory', async () => {
    const dir = await tempDir();
    const previous = process.cwd();
    process.chdir(dir);
    try {
      const storage = await openStorage('sqlite:relative/m2m-auth.db');
      await storage.close();
    } finally {
      process.chdir(previous);
    }
    expect(existsSync(join(dir, 'relative', 'm2m-auth.db'))).toBe(true);
    expect(existsSync(resolve('relative'))).toBe(false);
  });
});

describe('openStorage URLs', () => {
  it.each([
    ['mysql://app:hunter2@db.internal/m2m', /Unsupported database URL scheme "mysql:"/],
    ['redis://localhost:6379', /Unsupported database URL scheme "redis:"/],
    ['./data/m2m-auth.db', /no scheme/],
    ['', /no scheme/],
    ['sqlite:', /no path/],
    ['sqlite:///var/lib/m2m-auth.db', /without "\/\/"/],
  ])('rejects %j with ConfigError CONFIG_INVALID', async (url, message) => {
    const attempt = openStorage(url);
    await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    await expect(attempt).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringMatching(message) });
    // The rest of a URL may hold a password; it must not reach the message (and so the logs).
    await expect(attempt).rejects.not.toMatchObject({ message: expect.stringContaining('hunter2') });
  });

  it('opens sqlite::memory: as a private, migrated database per call', async () => {
    const a = await openStorage('sqlite::memory:');
    const b = await openStorage('sqlite::memory:');
    try {
      await a.clients.createClient(rotatedClient);
      expect(await b.clients.getClient(rotatedClient.clientId)).toBeUndefined();
      expect(await a.clients.getClient(rotatedClient.clientId)).toStrictEqual(rotatedClient);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('accepts the scheme in any case', async () => {
    const storage: Storage = await openStorage(`SQLite:${join(await tempDir(), 'm2m-auth.db')}`);
    await expect(storage.ping()).resolves.toBeUndefined();
    await storage.close();
  });
});

/**
 * Node 20 cannot import .ts, so a child process gets `entry` and its relative imports transpiled
 * to JavaScript in `outDir`, with package imports pointed at this checkout's node_modules.
 */
async function compileForNode(entry: string, outDir: string): Promise<string> {
  const srcRoot = join(PACKAGE, 'src');
  const requireHere = createRequire(import.meta.url);
  const pending = [entry];
  const seen = new Set<string>();
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    const source = await readFile(file, 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    });
    const js = outputText.replace(/from '([^']+)'/g, (whole, specifier: string) => {
      if (specifier.startsWith('.')) {
        pending.push(resolve(dirname(file), specifier.replace(/\.js$/, '.ts')));
        return whole;
      }
      if (specifier.startsWith('node:')) return whole;
      return `from '${pathToFileURL(requireHere.resolve(specifier)).href}'`;
    });
    const out = join(outDir, relative(srcRoot, file)).replace(/\.ts$/, '.js');
    await mkdir(dirname(out), { recursive: true });
    await writeFile(out, js);
  }
  return pathToFileURL(join(outDir, relative(srcRoot, entry)).replace(/\.ts$/, '.js')).href;
}

const CHILD = `
const { openStorage } = await import(process.env.OPEN_MODULE);
process.stdout.write('ready\\n');
process.stdin.once('data', async () => {
  try {
    for (const url of JSON.parse(process.env.DATABASE_URLS)) {
      const storage = await openStorage(url);
      await storage.ping();
      await storage.close();
    }
    process.exit(0);
  } catch (err) {
    process.stderr.write(String(err && err.stack || err));
    process.exit(1);
  }
});
`;

/** Starts `count` processes, waits until each has loaded the module, then lets them all open the URLs at once. */
async function raceProcesses(count: number, openModule: string, databaseUrls: string[]) {
  const children = Array.from({ length: count }, () =>
    spawn(process.execPath, ['--input-type=module', '-e', CHILD], {
      env: { ...process.env, OPEN_MODULE: openModule, DATABASE_URLS: JSON.stringify(databaseUrls) },
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  );
  const exits = children.map(
    (child) =>
      new Promise<{ code: number | null; stderr: string }>((done) => {
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
        child.on('close', (code) => done({ code, stderr }));
      }),
  );
  await Promise.all(
    children.map(
      (child) =>
        new Promise<void>((ready, failed) => {
          child.stdout.once('data', () => ready());
          child.once('close', () => failed(new Error('child exited before it was ready')));
        }),
    ),
  );
  for (const child of children) child.stdin.end('go\n');
  return Promise.all(exits);
}

describe('sqlite change log pruning', () => {
  it('prunes changes older than the retention and tells a reader that fell behind', async () => {
    const storage = (await openStorage('sqlite::memory:')) as SqliteStorage;
    try {
      await storage.clients.createClient({ ...rotatedClient, clientId: 'cl_old' });
      await storage.clients.createClient({ ...rotatedClient, clientId: 'cl_new' });
      const [old] = (await storage.changes.since(0, 10)).changes;
      // Age the first change past the retention.
      storage.db.prepare('UPDATE changes SET created_at = created_at - ? WHERE seq = ?').run(2 * 3_600_000, old!.seq);
      expect(await storage.sweep(Date.now())).toBe(1);
      const behind = await storage.changes.since(0, 10);
      expect(behind.complete).toBe(false);
      expect(behind.changes.map((c) => c.key)).toStrictEqual(['cl_new']);
      expect(await storage.changes.since(old!.seq, 10)).toMatchObject({ complete: true });
      // head() does not go back when rows are pruned.
      const head = await storage.changes.head();
      storage.db.prepare('DELETE FROM changes').run();
      expect(await storage.changes.head()).toBe(head);
    } finally {
      await storage.close();
    }
  });
});
