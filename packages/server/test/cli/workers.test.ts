// `serve --workers 2`: node:cluster workers share the listeners and the database, and stop cleanly.

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureBuilt, startServerProcess, type ServerProcess } from '../helpers/process.js';

const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-workers-'));
const ADMIN = 'workers-admin-token-' + randomBytes(16).toString('hex');
let s: ServerProcess | undefined;

afterAll(async () => {
  await s?.stop('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function children(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

describe('serve --workers 2', () => {
  it('runs two workers that serve tokens from one database and stop on SIGTERM', async () => {
    ensureBuilt();
    s = await startServerProcess({ M2M_AUTH_DATA_DIR: dir }, ADMIN, ['--workers', '2']);
    expect(children(s.child.pid!)).toHaveLength(2);

    const created = await fetch(`${s.adminUrl}/admin/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'w', scope: 'a', audience: ['https://api.example.com'] }),
    });
    expect(created.status).toBe(201);
    const { client_id, client_secret } = (await created.json()) as { client_id: string; client_secret: string };
    const auth = 'Basic ' + Buffer.from(`${client_id}:${client_secret}`).toString('base64');
    // New connections each time so both workers take some.
    for (let i = 0; i < 20; i++) {
      const r = await fetch(`${s.publicUrl}/oauth2/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: auth, connection: 'close' },
        body: 'grant_type=client_credentials',
      });
      expect(r.status).toBe(200);
    }
    const jwks = (await (await fetch(`${s.publicUrl}/oauth2/jwks`)).json()) as { keys: unknown[] };
    // The primary created the first key before forking: the workers did not each make one.
    expect(jwks.keys).toHaveLength(1);

    // Every scrape, whichever worker takes it, has both workers' series, labelled by worker.
    for (let i = 0; i < 6; i++) {
      const scrape = await fetch(`${s.adminUrl}/metrics`, { headers: { connection: 'close' } });
      expect(scrape.status).toBe(200);
      const text = await scrape.text();
      const issued = [...text.matchAll(new RegExp(`^m2m_auth_tokens_issued_total\\{client_id="${client_id}",worker="(\\d+)"\\} (\\d+)$`, 'gm'))];
      expect(issued.reduce((n, m) => n + Number(m[2]), 0)).toBe(20);
      expect([...text.matchAll(/^m2m_auth_signing_keys\{status="active",worker="\d+"\} 1$/gm)]).toHaveLength(2);
      expect([...text.matchAll(/^m2m_auth_storage_up\{worker="\d+"\} 1$/gm)]).toHaveLength(2);
      expect(text).toMatch(/^m2m_auth_cluster_workers_answered 2$/m);
    }

    const code = await s.stop('SIGTERM');
    expect(code).toBe(0);
    s = undefined;
  }, 60_000);
});
