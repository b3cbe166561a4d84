// The PostgreSQL backend: the shared conformance suite against a real server, plus what only
// PostgreSQL has (advisory-locked migrations, collation, the change feed, connection timeouts).
//
// Needs M2M_AUTH_TEST_DATABASE_URL (CI sets it). Every storage lives in a schema of its own,
// m2m_test_<random>, named through the connection's search_path; the run drops only those schemas.

import { randomBytes } from 'node:crypto';
import { createServer, connect, type AddressInfo, type Server, type Socket } from 'node:net';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/ground/errors.js';
import { storageConformance } from '../../src/storage/conformance.js';
import { openStorage } from '../../src/storage/open.js';
import {
  MIGRATIONS,
  openPostgresStorage,
  PostgresChangeFeed,
  PostgresStorage,
  postgresClientConfig,
} from '../../src/storage/postgres/index.js';
import { StorageConflictError, type Storage } from '../../src/storage/types.js';
import { type ClientRecord } from '../../src/ground/records.js';

const databaseUrl = process.env.M2M_AUTH_TEST_DATABASE_URL;
if (!databaseUrl) console.warn('PostgreSQL tests skipped: set M2M_AUTH_TEST_DATABASE_URL');

const T0 = Date.UTC(2030, 0, 1);
const HOUR = 3_600_000;

/** Schemas this run created: the only ones it ever drops. */
const schemas: string[] = [];
let admin: pg.Pool | undefined;

function adminPool(): pg.Pool {
  admin ??= new pg.Pool({ connectionString: databaseUrl, max: 2 });
  return admin;
}

function randomName(prefix: string): string {
  return `${prefix}_${randomBytes(8).toString('hex')}`;
}

async function freshSchema(): Promise<string> {
  const schema = randomName('m2m_test');
  await adminPool().query(`CREATE SCHEMA ${pg.escapeIdentifier(schema)}`);
  schemas.push(schema);
  return schema;
}

/** The test database URL with `schema` as the search_path, plus any other parameters. */
function schemaUrl(schema: string, params: Record<string, string> = {}, base = databaseUrl!): string {
  const url = new URL(base);
  url.searchParams.set('options', `-c search_path=${schema}`);
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);
  return url.href;
}

afterAll(async () => {
  if (admin === undefined) return;
  for (const schema of schemas) await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  await admin.end();
});

async function waitFor(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

function client(clientId: string): ClientRecord {
  return {
    clientId,
    clientName: `Client ${clientId}`,
    scope: ['a'],
    defaultScope: null,
    audience: ['https://api.example.com'],
    defaultAudience: null,
    tokenEndpointAuthMethod: 'client_secret_basic',
    federation: null,
    grantTypes: ['client_credentials'],
    resourceUris: [],
    jwks: null,
    accessTokenTtl: null,
    rateLimit: null,
    tokenReuse: false,
    dpopBoundAccessTokens: false,
    fapi2: false,
    disabled: false,
    claims: {},
    tlsClientAuth: null,
    tlsClientCertificateBoundAccessTokens: false,
    secrets: [{ digest: 'a'.repeat(64), createdAt: T0, expiresAt: null }],
    tokensRevokedAt: null,
    createdAt: T0,
    updatedAt: T0,
  };
}

function byCodePoint(a: string, b: string): number {
  const x = [...a].map((c) => c.codePointAt(0)!);
  const y = [...b].map((c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}

async function withStorages<T>(storages: Storage[], use: () => Promise<T>): Promise<T> {
  try {
    return await use();
  } finally {
    await Promise.all(storages.map((s) => s.close()));
  }
}

describe.skipIf(!databaseUrl)('PostgreSQL', () => {
  storageConformance('postgres', async () => openStorage(schemaUrl(await freshSchema())));

  describe('postgres storage', () => {
    it('lets several instances migrate a new schema at once, applying each migration once', async () => {
      const schema = await freshSchema();
      // postgresql:// is the other spelling of the scheme.
      const url = schemaUrl(schema).replace(/^postgres:/, 'postgresql:');
      const all = await Promise.all(Array.from({ length: 6 }, () => openStorage(url)));
      await withStorages(all, async () => {
        const { rows } = await adminPool().query<{ version: number }>(
          `SELECT version FROM ${pg.escapeIdentifier(schema)}.schema_migrations ORDER BY version`,
        );
        expect(rows.map((r) => r.version)).toStrictEqual(MIGRATIONS.map((m) => m.version));
        await all[0]!.clients.createClient(client('cl_shared'));
        for (const other of all) expect(await other.clients.getClient('cl_shared')).toStrictEqual(client('cl_shared'));
        // And again on a migrated schema: nothing to do, nothing recorded twice.
        await Promise.all(all.map((s) => s.migrate()));
        const again = await adminPool().query(`SELECT count(*)::int AS n FROM ${pg.escapeIdentifier(schema)}.schema_migrations`);
        expect(again.rows[0]).toStrictEqual({ n: MIGRATIONS.length });
      });
    });

    it('keeps every table in its own schema and leaves it alone with migrate: false until migrate()', async () => {
      const schema = await freshSchema();
      const tables = async () =>
        (
          await adminPool().query<{ table_name: string }>(
            'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
            [schema],
          )
        ).rows.map((r) => r.table_name);
      const storage = await openStorage(schemaUrl(schema), { migrate: false });
      await withStorages([storage], async () => {
        expect(await tables()).toStrictEqual([]);
        await expect(storage.clients.getClient('cl_x')).rejects.toMatchObject({ code: '42P01' }); // undefined_table
        await storage.migrate();
        expect(await tables()).toStrictEqual([
          'changes',
          'changes_head',
          'clients',
          'replay',
          'revocations',
          'schema_migrations',
          'signing_keys',
          'trusted_issuers',
        ]);
      });
    });

    it('orders mixed-case and non-ASCII clientIds by code point, page by page (COLLATE "C")', async () => {
      const schema = await freshSchema();
      const storage = await openStorage(schemaUrl(schema));
      await withStorages([storage], async () => {
        const { rows } = await adminPool().query(
          `SELECT collation_name FROM information_schema.columns
            WHERE table_schema = $1 AND table_name = 'clients' AND column_name = 'client_id'`,
          [schema],
        );
        expect(rows).toStrictEqual([{ collation_name: 'C' }]);

        // UTF-16 order would put the emoji (surrogates D83D..) before U+FF21; code point order puts it last.
        const ids = ['b', 'B', 'a', 'A', '_', 'Z', 'z', 'é', 'É', '0', 'ab', 'aB', 'Ab', '\uFF21', '😀', 'a-b', 'a_b'];
        for (const id of ids) await storage.clients.createClient(client(id));
        const expected = [...ids].sort(byCodePoint);
        expect(expected.indexOf('😀')).toBe(expected.length - 1);

        const walked: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await storage.clients.listClients(after === undefined ? { limit: 4 } : { after, limit: 4 });
          if (page.length === 0) break;
          expect(page.length).toBeLessThanOrEqual(4);
          walked.push(...page.map((c) => c.clientId));
          after = page.at(-1)!.clientId;
        }
        expect(walked).toStrictEqual(expected);
        const afterUpper = await storage.clients.listClients({ after: 'Z', limit: 3 });
        expect(afterUpper.map((c) => c.clientId)).toStrictEqual(['_', 'a', 'a-b']);
      });
    });

    it('gives a polling reader every change exactly once while several instances write at once', async () => {
      const url = schemaUrl(await freshSchema());
      const writers = await Promise.all(Array.from({ length: 4 }, () => openStorage(url)));
      const reader = await openStorage(url);
      await withStorages([...writers, reader], async () => {
        const perWriter = 40;
        let writing = true;
        const seen: string[] = [];
        let cursor = 0;
        const poll = async () => {
          for (;;) {
            const stillWriting = writing;
            const { changes, complete } = await reader.changes.since(cursor, 25);
            expect(complete).toBe(true);
            for (const change of changes) {
              expect(change.seq).toBeGreaterThan(cursor);
              cursor = change.seq;
              seen.push(change.key);
            }
            if (!stillWriting && changes.length === 0) return;
          }
        };
        const polling = poll();
        await Promise.all(
          writers.map(async (writer, w) => {
            for (let i = 0; i < perWriter; i++) await writer.clients.createClient(client(`cl_${w}_${i}`));
          }),
        );
        writing = false;
        await polling;
        const expected = writers.flatMap((_, w) => Array.from({ length: perWriter }, (_, i) => `cl_${w}_${i}`));
        expect([...seen].sort()).toStrictEqual(expected.sort());
        expect(await reader.changes.head()).toBe(cursor);
      });
    });

    it('prunes changes older than the retention by the database clock and tells a reader that fell behind', async () => {
      const schema = await freshSchema();
      const storage = await openStorage(schemaUrl(schema));
      await withStorages([storage], async () => {
        await storage.clients.createClient(client('cl_old'));
        await storage.clients.createClient(client('cl_new'));
        const [old] = (await storage.changes.since(0, 10)).changes;
        await adminPool().query(
          `UPDATE ${pg.escapeIdentifier(schema)}.changes SET created_at = created_at - $1 WHERE seq = $2`,
          [2 * HOUR, old!.seq],
        );
        // sweep's `now` is for expiries; the change log ages by the database clock whatever it says.
        expect(await storage.sweep(T0 - 1000 * HOUR)).toBe(1);
        const behind = await storage.changes.since(0, 10);
        expect(behind.complete).toBe(false);
        expect(behind.changes.map((c) => c.key)).toStrictEqual(['cl_new']);
        expect(await storage.changes.since(old!.seq, 10)).toMatchObject({ complete: true });
        const head = await storage.changes.head();
        await adminPool().query(`DELETE FROM ${pg.escapeIdentifier(schema)}.changes`);
        expect(await storage.changes.head()).toBe(head);
      });
    });

    it('reports a duplicate as StorageConflictError and other database errors as they are', async () => {
      const storage = await openStorage(schemaUrl(await freshSchema()));
      await withStorages([storage], async () => {
        await storage.clients.createClient(client('cl_dup'));
        await expect(storage.clients.createClient(client('cl_dup'))).rejects.toBeInstanceOf(StorageConflictError);
        // A CHECK violation (a list column must hold a JSON array) is not a conflict.
        const bad = { ...client('cl_bad'), scope: 'not-a-list' as unknown as string[] };
        const attempt = storage.clients.createClient(bad);
        await expect(attempt).rejects.toMatchObject({ code: '23514' });
        await expect(attempt).rejects.not.toBeInstanceOf(StorageConflictError);
      });
    });

    it('sizes the pool and sets a statement timeout, by default and as configured', async () => {
      const url = schemaUrl(await freshSchema());
      const byDefault = (await openStorage(url)) as PostgresStorage;
      const tuned = (await openStorage(url, { postgres: { maxConnections: 3, statementTimeoutMs: 200 } })) as PostgresStorage;
      await withStorages([byDefault, tuned], async () => {
        expect(byDefault).toBeInstanceOf(PostgresStorage);
        expect(byDefault.pool.options.max).toBe(10);
        expect((await byDefault.pool.query('SHOW statement_timeout')).rows[0]).toStrictEqual({ statement_timeout: '5s' });
        expect(tuned.pool.options.max).toBe(3);
        const started = Date.now();
        await expect(tuned.pool.query('SELECT pg_sleep(3)')).rejects.toMatchObject({ code: '57014' }); // query_canceled
        expect(Date.now() - started).toBeLessThan(2_000);
        await expect(tuned.ping()).resolves.toBeUndefined();
      });
    });

    it('rejects settings that are not positive integers', async () => {
      for (const postgres of [{ maxConnections: 0 }, { statementTimeoutMs: -1 }, { connectionTimeoutMs: 1.5 }]) {
        await expect(openStorage(databaseUrl!, { postgres })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
      }
    });
  });

  describe('change feed', () => {
    it('delivers notifications to listeners until they unlisten', async () => {
      const storage = (await openStorage(schemaUrl(await freshSchema()))) as PostgresStorage;
      const feed = storage.changeFeed();
      try {
        const [a, b] = [randomName('m2m_test_a'), randomName('m2m_test_b')];
        const gotA: string[] = [];
        const gotA2: string[] = [];
        const gotB: string[] = [];
        const unlistenA = await feed.listen(a, (p) => gotA.push(p));
        const unlistenA2 = await feed.listen(a, (p) => gotA2.push(p));
        await feed.listen(b, (p) => gotB.push(p));

        await feed.notify(a, 'client:cl_1');
        await feed.notify(b, '');
        await waitFor(() => gotA.length === 1 && gotA2.length === 1 && gotB.length === 1, 'the first notifications');
        expect([gotA, gotA2, gotB]).toStrictEqual([['client:cl_1'], ['client:cl_1'], ['']]);

        await unlistenA();
        await unlistenA(); // idempotent
        await feed.notify(a, 'second');
        await feed.notify(b, 'marker');
        // Notifications arrive in commit order: once b's marker is here, a's would have been too.
        await waitFor(() => gotB.length === 2, 'the marker');
        expect(gotA).toStrictEqual(['client:cl_1']);
        expect(gotA2).toStrictEqual(['client:cl_1', 'second']);

        await unlistenA2();
        await feed.notify(a, 'third');
        await feed.notify(b, 'marker 2');
        await waitFor(() => gotB.length === 3, 'the second marker');
        expect(gotA2).toStrictEqual(['client:cl_1', 'second']);
        // Another instance's feed on the same database hears it too.
        const other = storage.changeFeed();
        try {
          const heard: string[] = [];
          await other.listen(b, (p) => heard.push(p));
          await feed.notify(b, 'to everyone');
          await waitFor(() => heard.length === 1 && gotB.length === 4, 'both feeds');
        } finally {
          await other.close();
        }
      } finally {
        await feed.close();
        await storage.close();
      }
    });

    it('rejects channel names that are not lower-case identifiers', async () => {
      const storage = (await openStorage(schemaUrl(await freshSchema()))) as PostgresStorage;
      const feed = storage.changeFeed();
      try {
        for (const channel of ['', 'Upper', '1abc', 'a-b', 'x'.repeat(64), 'a"; DROP']) {
          await expect(feed.listen(channel, () => undefined)).rejects.toBeInstanceOf(TypeError);
          await expect(feed.notify(channel, 'x')).rejects.toBeInstanceOf(TypeError);
        }
      } finally {
        await feed.close();
        await storage.close();
      }
    });

    it('reconnects after its backend is terminated, listens again and calls onReconnect', async () => {
      const applicationName = randomName('m2m_test_feed');
      const storage = (await openStorage(
        schemaUrl(await freshSchema(), { application_name: applicationName }),
      )) as PostgresStorage;
      const errors: Error[] = [];
      let reconnects = 0;
      const feed = storage.changeFeed({
        minBackoffMs: 20,
        maxBackoffMs: 200,
        onReconnect: () => {
          reconnects += 1;
        },
        onError: (err) => errors.push(err),
      });
      try {
        const channel = randomName('m2m_test_ch');
        const got: string[] = [];
        await feed.listen(channel, (p) => got.push(p));
        await feed.notify(channel, 'before');
        await waitFor(() => got.length === 1, 'the first notification');
        expect(reconnects).toBe(0);

        const pid = feed.backendPid!;
        expect(pid).toBeTypeOf('number');
        // Only ever terminate this test's own connection: check that the pid is ours first.
        const { rows } = await adminPool().query('SELECT application_name, query FROM pg_stat_activity WHERE pid = $1', [
          pid,
        ]);
        expect(rows).toStrictEqual([{ application_name: applicationName, query: expect.stringMatching(/^LISTEN /) }]);
        await adminPool().query('SELECT pg_terminate_backend($1)', [pid]);

        await waitFor(() => reconnects === 1, 'onReconnect');
        expect(feed.backendPid).toBeTypeOf('number');
        expect(feed.backendPid).not.toBe(pid);
        expect(errors.length).toBeGreaterThan(0);
        await feed.notify(channel, 'after');
        await waitFor(() => got.length === 2, 'a notification after reconnecting');
        expect(got).toStrictEqual(['before', 'after']);
        expect(reconnects).toBe(1);
      } finally {
        await feed.close();
        await storage.close();
      }
    });

    it('keeps retrying with backoff while the database is unreachable, then resynchronises once', async () => {
      const target = new URL(databaseUrl!);
      const proxy = await startProxy(target.hostname, Number(target.port || 5432));
      const proxied = new URL(schemaUrl(await freshSchema()));
      proxied.hostname = '127.0.0.1';
      proxied.port = String(proxy.port);
      const storage = (await openStorage(proxied.href)) as PostgresStorage;
      const errors: Error[] = [];
      let reconnects = 0;
      const feed = storage.changeFeed({
        minBackoffMs: 20,
        maxBackoffMs: 100,
        onReconnect: () => {
          reconnects += 1;
        },
        onError: (err) => errors.push(err),
      });
      try {
        const channel = randomName('m2m_test_ch');
        const got: string[] = [];
        await feed.listen(channel, (p) => got.push(p));
        await proxy.stop();
        // Several failed attempts while the database cannot be reached, and no resynchronisation yet.
        await waitFor(() => errors.length >= 4, 'failed reconnect attempts');
        expect(reconnects).toBe(0);
        await proxy.start();
        await waitFor(() => reconnects === 1, 'onReconnect');
        await feed.notify(channel, 'back');
        await waitFor(() => got.length === 1, 'a notification after the outage');
        expect(reconnects).toBe(1);
      } finally {
        await feed.close();
        await storage.close();
        await proxy.stop();
      }
    });
  });
});

/** A TCP proxy to the test database that can be taken down and brought back on the same port. */
async function startProxy(host: string, port: number) {
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  let proxyPort = 0;
  const start = async () => {
    const next = createServer((downstream) => {
      const upstream = connect(port, host);
      for (const socket of [downstream, upstream]) {
        sockets.add(socket);
        socket.on('error', () => undefined);
        socket.on('close', () => {
          sockets.delete(socket);
          downstream.destroy();
          upstream.destroy();
        });
      }
      downstream.pipe(upstream).pipe(downstream);
    });
    await new Promise<void>((resolve) => next.listen(proxyPort, '127.0.0.1', resolve));
    proxyPort = (next.address() as AddressInfo).port;
    server = next;
  };
  const stop = async () => {
    const current = server;
    server = undefined;
    for (const socket of sockets) socket.destroy();
    if (current !== undefined) await new Promise<void>((resolve) => current.close(() => resolve()));
  };
  await start();
  return { port: proxyPort, start, stop };
}

/** A port on which nothing listens (it was free a moment ago). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

// These need no database: they run with or without M2M_AUTH_TEST_DATABASE_URL.
describe('postgres:// without a reachable database', () => {
  it('fails at once with a connection error, not a hang or a conflict, when nothing listens on the port', async () => {
    const url = `postgres://m2m:hunter2@127.0.0.1:${await closedPort()}/m2m`;
    const started = Date.now();
    const attempt = openStorage(url, { postgres: { connectionTimeoutMs: 2_000 } });
    await expect(attempt).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(Date.now() - started).toBeLessThan(2_000);

    const unmigrated = await openStorage(url, { migrate: false, postgres: { connectionTimeoutMs: 2_000 } });
    try {
      await expect(unmigrated.ping()).rejects.toThrow();
      const write = unmigrated.clients.createClient(client('cl_x'));
      await expect(write).rejects.toThrow();
      await expect(write).rejects.not.toBeInstanceOf(StorageConflictError);
    } finally {
      await unmigrated.close();
    }
  });

  it('gives up within the connection timeout on a server that accepts but never answers', async () => {
    const held = new Set<Socket>();
    const silent = createServer((socket) => {
      held.add(socket);
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = `postgres://m2m@127.0.0.1:${(silent.address() as AddressInfo).port}/m2m`;
    try {
      for (const migrate of [true, false]) {
        const started = Date.now();
        const attempt = (async () => {
          const storage = await openStorage(url, { migrate, postgres: { connectionTimeoutMs: 300 } });
          try {
            await storage.ping();
          } finally {
            await storage.close();
          }
        })();
        await expect(attempt).rejects.toThrow(/timeout/i);
        const elapsed = Date.now() - started;
        expect(elapsed).toBeGreaterThanOrEqual(250);
        expect(elapsed).toBeLessThan(2_000);
      }

      const feed = new PostgresChangeFeed({
        connection: postgresClientConfig(url, { connectionTimeoutMs: 300 }),
        notifier: new pg.Pool(postgresClientConfig(url, { connectionTimeoutMs: 300 })),
      });
      const started = Date.now();
      await expect(feed.listen('m2m_test_dead', () => undefined)).rejects.toThrow(/timeout/i);
      expect(Date.now() - started).toBeLessThan(2_000);
      await feed.close();
    } finally {
      for (const socket of held) socket.destroy();
      await new Promise<void>((resolve) => silent.close(() => resolve()));
    }
  });

  it.each([
    ['postgres://app:hunter2@[::1/m2m'],
    ['postgresql://app:hunter2@db.internal:notaport/m2m'],
  ])('rejects the malformed URL %j with ConfigError CONFIG_INVALID, without the password', async (url) => {
    const attempt = openPostgresStorage(url);
    await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    await expect(attempt).rejects.toMatchObject({ code: 'CONFIG_INVALID', message: expect.stringContaining('postgres://') });
    await expect(attempt).rejects.not.toMatchObject({ message: expect.stringContaining('hunter2') });
    await expect(openStorage(url)).rejects.toBeInstanceOf(ConfigError);
  });
});
