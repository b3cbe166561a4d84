// Automatic key rotation happens once per cluster: instances that decide to rotate at the same
// moment store one new key between them (KeyStore.insertKeyIfNoneSince), and every instance
// publishes that key before any instance signs with it.
//
// Two KeyRings on one database with a controlled clock (SQLite file; PostgreSQL schema), then two
// real server processes on one PostgreSQL schema with a 2 s rotation interval (skipped when
// M2M_AUTH_TEST_DATABASE_URL is unset).

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing, type KeyRingOptions } from '../../src/keys/keyring.js';
import { EventBus } from '../../src/observability/events.js';
import { openStorage } from '../../src/storage/open.js';
import type { Storage } from '../../src/storage/types.js';
import { ensureBuilt, startServerProcess, type ServerProcess } from '../helpers/process.js';
import { NO_LIMITS, get, newClient, schemaName, schemaUrl, sleep, token, type TestClient } from './helpers.js';

const PG_URL = process.env.M2M_AUTH_TEST_DATABASE_URL;
if (!PG_URL) console.warn('Rotation-once tests on PostgreSQL skipped: set M2M_AUTH_TEST_DATABASE_URL');

const schemas: string[] = [];
async function withAdmin<T>(work: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: PG_URL });
  await c.connect();
  try {
    return await work(c);
  } finally {
    await c.end();
  }
}
async function newSchema(): Promise<string> {
  const schema = schemaName('m2m_faults_rot');
  await withAdmin((c) => c.query(`CREATE SCHEMA ${pg.escapeIdentifier(schema)}`));
  schemas.push(schema);
  return schema;
}

const tempDirs: string[] = [];
afterAll(async () => {
  if (PG_URL) for (const s of schemas) await withAdmin((c) => c.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(s)} CASCADE`));
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
});

const T0 = Date.UTC(2031, 0, 1);
const DAY = 86_400_000;
const INTERVAL = 30 * DAY;

interface Shared {
  name: string;
  enabled: boolean;
  /** Two Storage objects (own connections) on one database. */
  open(): Promise<[Storage, Storage]>;
}

const shared: Shared[] = [
  {
    name: 'SQLite file',
    enabled: true,
    async open() {
      const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-faults-rot-'));
      tempDirs.push(dir);
      const url = `sqlite:${join(dir, 'keys.db')}`;
      const first = await openStorage(url);
      return [first, await openStorage(url)];
    },
  },
  {
    name: 'PostgreSQL schema',
    enabled: PG_URL !== undefined,
    async open() {
      const url = schemaUrl(PG_URL!, await newSchema());
      const first = await openStorage(url);
      return [first, await openStorage(url)];
    },
  },
];

for (const db of shared) {
  describe.skipIf(!db.enabled)(`two KeyRings on one database: ${db.name}`, () => {
    it('rotate once per interval between them, however their maintenance runs line up', async () => {
      const [s1, s2] = await db.open();
      try {
        const clock = { now: T0 };
        const opts: KeyRingOptions = {
          kek: randomBytes(32),
          alg: 'ES256',
          prepublishMs: 3_600_000,
          rotationIntervalMs: INTERVAL,
          // Long enough that no retired key expires (and is deleted) during the test.
          maxTokenTtlMs: 365 * DAY,
          events: new EventBus(),
          now: () => clock.now,
        };
        const a = await KeyRing.open(s1.keys, opts);
        const b = await KeyRing.open(s2.keys, opts);
        expect((await s1.keys.listKeys()).map((k) => k.kid)).toEqual(a.list().map((k) => k.kid));

        for (let round = 1; round <= 3; round++) {
          clock.now += INTERVAL;
          // Both believe the newest key is an interval old and decide to rotate at once.
          await Promise.all([a.maintain(), b.maintain(), a.maintain(), b.maintain()]);
          const stored = await s1.keys.listKeys();
          expect(stored).toHaveLength(1 + round);
          expect(stored.filter((k) => k.createdAt === clock.now)).toHaveLength(1);
          // The instance that lost took the winner's key: both publish the same set.
          expect(b.jwks()).toStrictEqual(a.jwks());
          expect(a.list().map((k) => k.kid).sort()).toStrictEqual(stored.map((k) => k.kid).sort());
          // Once the new key activates, both sign with it.
          clock.now += opts.prepublishMs;
          await Promise.all([a.refresh(), b.refresh()]);
          expect(a.sign({}).kid).toBe(b.sign({}).kid);
        }
      } finally {
        await Promise.all([s1.close(), s2.close()]);
      }
    });
  });
}

describe.skipIf(!PG_URL)('two server processes on one PostgreSQL schema, rotating every 2 s', () => {
  const INTERVAL_S = 2;
  const PREPUBLISH_S = 1;
  const RUN_MS = 7_500;
  const ADMIN = 'faults-admin-token-' + randomBytes(16).toString('hex');
  let schema: string;
  let a: ServerProcess;
  let b: ServerProcess;

  beforeAll(async () => {
    ensureBuilt();
    schema = await newSchema();
    const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-faults-rot-'));
    tempDirs.push(dir);
    const env = {
      ...NO_LIMITS,
      M2M_AUTH_DATABASE_URL: schemaUrl(PG_URL!, schema),
      M2M_AUTH_DATA_DIR: dir,
      M2M_AUTH_KEK: randomBytes(32).toString('base64'),
      M2M_AUTH_KEY_ROTATION_INTERVAL: String(INTERVAL_S),
      M2M_AUTH_KEY_PREPUBLISH: String(PREPUBLISH_S),
    };
    a = await startServerProcess(env, ADMIN);
    b = await startServerProcess({ ...env, M2M_AUTH_ISSUER: a.publicUrl }, ADMIN);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
  });

  it('stores one new key per interval, and both instances publish it before either signs with it', async () => {
    const instances = { a, b };
    /** When each instance's JWKS was first seen to hold each kid (ms, response received). */
    const firstSeen: Record<'a' | 'b', Map<string, number>> = { a: new Map(), b: new Map() };
    const used: Array<{ kid: string; from: 'a' | 'b'; requestedAt: number }> = [];
    let running = true;

    const pollJwks = async (name: 'a' | 'b') => {
      while (running) {
        const jwks = (await get(instances[name], '/oauth2/jwks')).json as { keys: Array<{ kid: string }> };
        const at = Date.now();
        for (const k of jwks.keys) if (!firstSeen[name].has(k.kid)) firstSeen[name].set(k.kid, at);
        await sleep(20);
      }
    };
    const client: TestClient = await newClient(a);
    const requestTokens = async () => {
      for (let i = 0; running; i++) {
        const from = i % 2 === 0 ? 'a' : 'b';
        const requestedAt = Date.now();
        const r = await token(instances[from], client);
        expect(r.status).toBe(200);
        used.push({ kid: decodeProtectedHeader(r.json.access_token as string).kid as string, from, requestedAt });
        await sleep(40);
      }
    };

    const pollers = [pollJwks('a'), pollJwks('b')];
    while (firstSeen.a.size === 0 || firstSeen.b.size === 0) await sleep(10);
    const requester = requestTokens();
    await sleep(RUN_MS);
    running = false;
    await Promise.all([...pollers, requester]);

    // One new key per interval: never two keys created less than an interval apart.
    const stored = await withAdmin(async (c) =>
      (await c.query<{ kid: string; created_at: string }>(
        `SELECT kid, created_at FROM ${pg.escapeIdentifier(schema)}.signing_keys ORDER BY created_at`,
      )).rows.map((r) => ({ kid: r.kid, createdAt: Number(r.created_at) })),
    );
    expect(stored.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < stored.length; i++) {
      expect(stored[i]!.createdAt - stored[i - 1]!.createdAt).toBeGreaterThanOrEqual(INTERVAL_S * 1000);
    }

    // Every token's kid was in both instances' JWKS before the token was asked for.
    expect(used.length).toBeGreaterThan(20);
    for (const u of used) {
      for (const name of ['a', 'b'] as const) {
        const seen = firstSeen[name].get(u.kid);
        expect(seen, `kid ${u.kid} (token from ${u.from}) never seen in ${name}'s JWKS`).toBeDefined();
        expect(seen!, `kid ${u.kid} used by ${u.from} before ${name} published it`).toBeLessThanOrEqual(u.requestedAt);
      }
    }
    // The rotations took effect on both instances.
    for (const from of ['a', 'b'] as const) {
      expect(new Set(used.filter((u) => u.from === from).map((u) => u.kid)).size).toBeGreaterThanOrEqual(2);
    }
    for (const p of [a, b]) expect((await get(p, '/readyz')).status).toBe(200);
  }, 60_000);
});
