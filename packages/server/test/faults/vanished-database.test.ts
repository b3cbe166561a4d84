// The embedded database deleted or replaced while `m2m-auth serve` runs (`rm data/m2m-auth.db*`):
// within about a second writes get 503 and store nothing, /readyz is 503, known clients keep
// getting tokens from memory as in any storage outage, and an error line says what happened and
// what to do. The next start refuses to create a new database in its place; restoring the copy
// the server saved brings back every acknowledged write; `serve --init` starts anew on purpose.

import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, ensureBuilt, REPO, startServerProcess, within, type ServerProcess } from '../helpers/process.js';
import { NO_LIMITS, admin, basic, form, get, introspect, newClient, token } from './helpers.js';

const ADMIN = 'vanish-admin-token-' + randomBytes(16).toString('hex');
/** One issuer across restarts on new ports, so that tokens of the first start stay valid. */
const ISSUER = 'http://auth.example.test';

/** `m2m-auth <args>` run to its end (a start that is refused exits at once; one that is not is killed after 15 s). */
function runCli(args: string[], env: Record<string, string>): { code: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [CLI, ...args], {
    cwd: REPO, encoding: 'utf8', timeout: 15_000,
    env: { PATH: process.env.PATH ?? '', M2M_AUTH_ADMIN_TOKEN: ADMIN, M2M_AUTH_LISTEN: '127.0.0.1:0', M2M_AUTH_ADMIN_LISTEN: '127.0.0.1:0', ...env },
  });
  return { code: r.status, stderr: r.stderr, stdout: r.stdout };
}

/**
 * Waits until the server has read its change log since `since` (ms): the read that starts after
 * a write drops the written client from the cache once (its own change comes back to it), so a
 * client is cached for good only when looked up after that.
 */
async function changeLogReadSince(p: ServerProcess, since: number): Promise<void> {
  await within(5000, async () => {
    const asked = Date.now();
    const text = await (await fetch(`${p.adminUrl}/metrics`)).text();
    const lag = Number(/^m2m_auth_sync_lag_seconds (\S+)$/m.exec(text)?.[1]);
    return asked - lag * 1000 > since;
  });
}

function databaseFiles(dir: string): string[] {
  return readdirSync(dir).filter((n) => n.startsWith('m2m-auth.db')).sort();
}

describe('the embedded database vanishing while the server runs', () => {
  let dir: string;
  let file: string;
  let p: ServerProcess | undefined;

  beforeAll(() => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'm2m-auth-vanish-'));
    file = join(dir, 'm2m-auth.db');
  });

  afterAll(async () => {
    await p?.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses writes (503, nothing stored), turns /readyz 503, keeps known clients served, logs what to do; the next start refuses; the saved copy restores', async () => {
    // No M2M_AUTH_KEK: the key-encryption key is generated into the data folder, as on a laptop.
    p = await startServerProcess({ ...NO_LIMITS, M2M_AUTH_DATA_DIR: dir, M2M_AUTH_ISSUER: ISSUER }, ADMIN);
    const c = await newClient(p);
    await changeLogReadSince(p, Date.now());
    const issued = (await token(p, c)).json.access_token as string;
    expect((await get(p, '/readyz')).status).toBe(200);

    for (const f of databaseFiles(dir)) unlinkSync(join(dir, f));
    const noticedMs = await within(5000, async () => (await get(p!, '/readyz')).status === 503);
    expect(noticedMs).toBeLessThan(3000);
    expect((await get(p, '/readyz')).json).toMatchObject({ status: 'not_ready', checks: { storage: false } });

    const created = await admin(p, 'POST', '/admin/clients', { client_name: 'while-gone', scope: 'orders:read', audience: ['https://orders.example.com'] });
    expect(created.status).toBe(503);
    expect(created.json.error).toBe('temporarily_unavailable');
    expect(created.headers.get('retry-after')).toBeTruthy();
    const revoked = await form(p, '/oauth2/revoke', { token: issued }, basic(c.id, c.secret));

    expect(revoked.status).toBe(503);
    expect(revoked.json.error).toBe('temporarily_unavailable');
    expect((await admin(p, 'POST', `/admin/clients/${c.id}/revoke-tokens`)).status).toBe(503);
    expect((await admin(p, 'POST', '/admin/keys/rotate')).status).toBe(503);
    // Reads as in any outage: from memory, within the staleness bound.
    expect((await token(p, c)).status).toBe(200);
    expect((await introspect(p, c, issued)).json.active).toBe(true);

    // No new database file appeared; one error line says what happened and what to do.
    await within(3000, async () => p!.output().includes('was deleted while the server was running'));
    const line = JSON.parse(p.output().split('\n').find((l) => l.includes('was deleted while the server was running'))!) as Record<string, string>;
    expect(line.level).toBe('error');
    expect(line.file).toBe(file);
    expect(line.msg).toContain('writes now get 503');
    expect(line.msg).toContain(`put the database back at ${file}`);
    expect(line.rescued).toMatch(/m2m-auth\.db\.rescued-/);
    expect(line.msg).toContain(line.rescued);
    expect(databaseFiles(dir)).toEqual([line.rescued!.slice(dir.length + 1)]);
    expect(await p.stop('SIGTERM')).toBe(0);
    p = undefined;

    // The next start refuses to make a new database where the generated kek shows one existed.
    const refused = runCli(['serve'], { M2M_AUTH_DATA_DIR: dir });
    expect(refused.code).toBe(1);
    const message = refused.stderr.trim();
    expect(message.split('\n')).toHaveLength(1);
    expect(message).toContain(`m2m-auth: The database ${file} is missing, but ${join(dir, 'kek')} shows that it existed`);
    expect(message).toContain(line.rescued);
    expect(message).toContain('"m2m-auth serve --init"');
    expect(existsSync(file)).toBe(false);
    expect(runCli(['migrate'], { M2M_AUTH_DATA_DIR: dir }).code).toBe(1);
    expect(existsSync(file)).toBe(false);

    // The copy has every acknowledged write: the client, its secret, the signing key of its token.
    renameSync(line.rescued!, file);
    p = await startServerProcess({ ...NO_LIMITS, M2M_AUTH_DATA_DIR: dir, M2M_AUTH_ISSUER: ISSUER }, ADMIN);
    expect((await admin(p, 'GET', `/admin/clients/${c.id}`)).status).toBe(200);
    expect((await introspect(p, c, issued)).json.active).toBe(true);
    expect((await token(p, c)).status).toBe(200);
    const names = ((await admin(p, 'GET', '/admin/clients?limit=1000')).json.clients as Array<{ client_name: string }>).map((x) => x.client_name);
    expect(names).not.toContain('while-gone');
    expect(await p.stop('SIGTERM')).toBe(0);
    p = undefined;
  }, 90_000);

  it('notices a database file replaced by another one', async () => {
    const own = mkdtempSync(join(tmpdir(), 'm2m-auth-replace-'));
    try {
      p = await startServerProcess({ ...NO_LIMITS, M2M_AUTH_DATA_DIR: own }, ADMIN);
      await newClient(p);
      const other = join(own, 'other.db');
      const db = new Database(other);
      db.exec('CREATE TABLE t (a)');
      db.close();
      renameSync(other, join(own, 'm2m-auth.db'));
      await within(5000, async () => (await get(p!, '/readyz')).status === 503);
      expect((await admin(p, 'POST', '/admin/clients', { client_name: 'x', scope: 'orders:read', audience: ['https://orders.example.com'] })).status).toBe(503);
      await within(3000, async () => p!.output().includes('was replaced while the server was running'));
      expect(await p.stop('SIGTERM')).toBe(0);
      p = undefined;
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
  }, 60_000);
});

describe('m2m-auth serve --init', () => {
  let dir: string;
  let p: ServerProcess | undefined;

  beforeAll(() => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'm2m-auth-init-'));
  });

  afterAll(async () => {
    await p?.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts anew where the database is gone, keeps the existing key-encryption key, and is refused once a database exists', async () => {
    p = await startServerProcess({ ...NO_LIMITS, M2M_AUTH_DATA_DIR: dir }, ADMIN);
    const first = await newClient(p);
    expect(await p.stop('SIGTERM')).toBe(0);
    p = undefined;
    const kek = spawnSync('sha256sum', [join(dir, 'kek')], { encoding: 'utf8' }).stdout;
    for (const f of databaseFiles(dir)) unlinkSync(join(dir, f));

    p = await startServerProcess({ ...NO_LIMITS, M2M_AUTH_DATA_DIR: dir }, ADMIN, ['--init']);
    expect((await admin(p, 'GET', `/admin/clients/${first.id}`)).status).toBe(404);
    await newClient(p);
    expect(await p.stop('SIGTERM')).toBe(0);
    p = undefined;
    expect(spawnSync('sha256sum', [join(dir, 'kek')], { encoding: 'utf8' }).stdout).toBe(kek);

    const again = runCli(['serve', '--init'], { M2M_AUTH_DATA_DIR: dir });
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe(
      `m2m-auth: --init creates a new, empty database, but ${join(dir, 'm2m-auth.db')} already exists: start without --init to serve it, or move it away first to start anew.`,
    );
  }, 90_000);

  it('works with --workers 2: the primary creates the database, the workers serve it', async () => {
    for (const f of databaseFiles(dir)) unlinkSync(join(dir, f));
    p = await startServerProcess({ ...NO_LIMITS, M2M_AUTH_DATA_DIR: dir }, ADMIN, ['--workers', '2', '--init']);
    const c = await newClient(p);
    for (let i = 0; i < 6; i++) expect((await token(p, c)).status).toBe(200);
    expect(await p.stop('SIGTERM')).toBe(0);
    p = undefined;
  }, 90_000);
});
