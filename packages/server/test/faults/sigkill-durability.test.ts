// A killed instance loses no acknowledged write: a client created, a secret rotated and a token
// revoked through the running process, each followed at once by SIGKILL, are all there after a
// restart. On SQLite (a file in a temp folder) and on PostgreSQL (a schema of its own on the
// test server; skipped when M2M_AUTH_TEST_DATABASE_URL is unset).

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, startServerProcess, type ServerProcess } from '../helpers/process.js';
import {
  NO_LIMITS, admin, basic, form, introspect, newClient, schemaName, schemaUrl, token, type TestClient,
} from './helpers.js';

const PG_URL = process.env.M2M_AUTH_TEST_DATABASE_URL;
if (!PG_URL) console.warn('SIGKILL durability test on PostgreSQL skipped: set M2M_AUTH_TEST_DATABASE_URL');

const ADMIN = 'faults-admin-token-' + randomBytes(16).toString('hex');

interface Backend {
  name: string;
  enabled: boolean;
  setup(dir: string): Promise<string>;
  cleanup(): Promise<void>;
}

const schema = schemaName('m2m_faults_kill');
const backends: Backend[] = [
  {
    name: 'SQLite file',
    enabled: true,
    setup: async (dir) => `sqlite:${join(dir, 'm2m-auth.db')}`,
    cleanup: async () => undefined,
  },
  {
    name: 'PostgreSQL schema',
    enabled: PG_URL !== undefined,
    async setup() {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`CREATE SCHEMA ${pg.escapeIdentifier(schema)}`);
      await c.end();
      return schemaUrl(PG_URL!, schema);
    },
    async cleanup() {
      const c = new pg.Client({ connectionString: PG_URL });
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
      await c.end();
    },
  },
];

for (const backend of backends) {
  describe.skipIf(!backend.enabled)(`SIGKILL right after an acknowledgment: ${backend.name}`, () => {
    let dir: string | undefined;
    let env: Record<string, string>;
    let current: ServerProcess | undefined;

    beforeAll(async () => {
      ensureBuilt();
      dir = mkdtempSync(join(tmpdir(), 'm2m-auth-faults-kill-'));
      env = {
        ...NO_LIMITS,
        M2M_AUTH_DATABASE_URL: await backend.setup(dir),
        M2M_AUTH_DATA_DIR: dir,
        M2M_AUTH_KEK: randomBytes(32).toString('base64'),
        // The issuer must survive restarts on new ports for the old tokens to stay ours.
        M2M_AUTH_ISSUER: 'http://m2m-auth.test',
      };
    }, 60_000);

    afterAll(async () => {
      await current?.stop('SIGKILL');
      await backend.cleanup();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    const start = async (): Promise<ServerProcess> => (current = await startServerProcess(env, ADMIN));

    /** Sends SIGKILL the moment `write` resolves and waits for the process to be gone. */
    async function killAfter<T>(p: ServerProcess, write: () => Promise<T>): Promise<T> {
      const acknowledged = await write();
      expect(await p.stop('SIGKILL')).toBeNull();
      expect(p.child.signalCode).toBe('SIGKILL');
      return acknowledged;
    }

    it('keeps a created client, a rotated secret and a revocation across SIGKILL', async () => {
      // 1. A client.
      let p = await start();
      const created: TestClient = await killAfter(p, () => newClient(p));
      p = await start();
      expect((await admin(p, 'GET', `/admin/clients/${created.id}`)).status).toBe(200);
      expect((await token(p, created)).status).toBe(200);

      // 2. A secret rotation with no grace: the new secret works, the old one no longer does.
      const rotated = await killAfter(p, async () => {
        const r = await admin(p, 'POST', `/admin/clients/${created.id}/secret`, { grace_period: 0 });
        expect(r.status).toBe(200);
        return { id: created.id, secret: r.json.client_secret as string };
      });
      p = await start();
      expect((await token(p, rotated)).status).toBe(200);
      expect((await token(p, created)).status).toBe(401);

      // 3. A revocation (RFC 7009): the token is inactive after the restart.
      const issued = (await token(p, rotated)).json.access_token as string;
      expect((await introspect(p, rotated, issued)).json.active).toBe(true);
      await killAfter(p, async () => {
        const r = await form(p, '/oauth2/revoke', { token: issued }, basic(rotated.id, rotated.secret));
        expect(r.status).toBe(200);
      });
      p = await start();
      expect((await introspect(p, rotated, issued)).json).toStrictEqual({ active: false });

      // 4. Several acknowledged writes in a row, then SIGKILL: every one is there.
      const many = await killAfter(p, async () => {
        const out: TestClient[] = [];
        for (let i = 0; i < 5; i++) out.push(await newClient(p));
        expect((await admin(p, 'POST', `/admin/clients/${out[0]!.id}/disable`)).status).toBe(200);
        return out;
      });
      p = await start();
      for (const c of many) expect((await admin(p, 'GET', `/admin/clients/${c.id}`)).status).toBe(200);
      expect((await admin(p, 'GET', `/admin/clients/${many[0]!.id}`)).json.disabled).toBe(true);
      expect((await token(p, many[0]!)).status).toBe(401);
      expect((await token(p, many[1]!)).status).toBe(200);
    }, 120_000);
  });
}
