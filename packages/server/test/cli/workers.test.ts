// `serve --workers 2`: node:cluster workers share the listeners and the database, stop cleanly, and
// see each other's changes at once (src/sync/ipc-notifier.ts).

import { execFileSync } from 'node:child_process';
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureBuilt, startServerProcess, type ServerProcess } from '../helpers/process.js';
import { NO_LIMITS } from '../faults/helpers.js';

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

interface Answer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

/** One request on a new connection, so that either worker may take it. */
function send(url: string, method: string, headers: Record<string, string>, body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false, headers: { ...headers, connection: 'close' }, timeout: 15_000 }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text === '' ? undefined : JSON.parse(text) }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 15 s')));
    req.on('error', reject);
    req.end(body);
  });
}

describe('serve --workers 2: a change made on one worker', () => {
  const dir2 = mkdtempSync(join(tmpdir(), 'm2m-auth-workers-sync-'));
  const ADMIN2 = 'workers-sync-admin-token-' + randomBytes(16).toString('hex');
  let p: ServerProcess | undefined;

  afterAll(async () => {
    await p?.stop('SIGKILL');
    rmSync(dir2, { recursive: true, force: true });
  });

  it('is seen by the other at once: no introspection right after a revocation, kill switch or disable says active', async () => {
    ensureBuilt();
    // A long poll interval: what is seen at once is seen through the primary, not by polling.
    p = await startServerProcess({ ...NO_LIMITS, M2M_AUTH_DATA_DIR: dir2, M2M_AUTH_SYNC_INTERVAL: '1000' }, ADMIN2, ['--workers', '2']);
    const adminCall = (method: string, path: string, body?: unknown): Promise<Answer> => send(`${p!.adminUrl}/admin${path}`, method, {
      authorization: `Bearer ${ADMIN2}`, ...(body !== undefined && { 'content-type': 'application/json' }),
    }, body === undefined ? undefined : JSON.stringify(body));
    const created = await adminCall('POST', '/clients', { client_name: 'w', scope: 'a', audience: ['https://api.example.com'] });
    expect(created.status).toBe(201);
    const { client_id, client_secret } = created.json as { client_id: string; client_secret: string };
    const form = (path: string, body: string): Promise<Answer> => send(`${p!.publicUrl}${path}`, 'POST', {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: 'Basic ' + Buffer.from(`${client_id}:${client_secret}`).toString('base64'),
    }, body);
    const token = async (): Promise<string> => {
      const r = await form('/oauth2/token', 'grant_type=client_credentials');
      expect(r.status).toBe(200);
      return r.json.access_token as string;
    };
    /** Introspections made right after a change, six at once, each on a new connection. */
    const introspectNow = (t: string): Promise<Answer[]> =>
      Promise.all(Array.from({ length: 6 }, () => form('/oauth2/introspect', `token=${t}`)));

    // Revocation (RFC 7009), round after round.
    const seen: boolean[] = [];
    for (let round = 0; round < 15; round++) {
      const t = await token();
      expect((await form('/oauth2/revoke', `token=${t}`)).status).toBe(200);
      for (const r of await introspectNow(t)) {
        expect(r.status).toBe(200);
        seen.push(r.json.active as boolean);
      }
    }
    expect(seen.filter((active) => active)).toEqual([]);

    // The kill switch, on the admin listener.
    const before = await Promise.all(Array.from({ length: 4 }, () => token()));
    expect((await adminCall('POST', `/clients/${client_id}/revoke-tokens`)).status).toBe(200);
    for (const t of before) for (const r of await introspectNow(t)) expect(r.json).toStrictEqual({ active: false });

    // Disabling the client: no worker issues it another token.
    expect((await adminCall('POST', `/clients/${client_id}/disable`)).status).toBe(200);
    const denied = await Promise.all(Array.from({ length: 8 }, () => form('/oauth2/token', 'grant_type=client_credentials')));
    expect(denied.map((r) => r.status)).toEqual(Array(8).fill(401));

    // A new signing key: every worker publishes it at once.
    const rotated = await adminCall('POST', '/keys/rotate');
    expect(rotated.status).toBe(200);
    const kid = rotated.json.key.kid as string;
    const jwks = await Promise.all(Array.from({ length: 8 }, () => send(`${p!.publicUrl}/oauth2/jwks`, 'GET', {})));
    for (const r of jwks) expect((r.json.keys as Array<{ kid: string }>).map((k) => k.kid)).toContain(kid);

    // A leaked signing key revoked with a replacement: no worker says its tokens are active, or
    // publishes it, or signs with it, right after the answer.
    expect((await adminCall('POST', `/clients/${client_id}/enable`)).status).toBe(200);
    const signed = await Promise.all(Array.from({ length: 4 }, () => token()));
    for (const t of signed) for (const r of await introspectNow(t)) expect(r.json.active).toBe(true);
    const leaked = JSON.parse(Buffer.from(signed[0]!.split('.')[0]!, 'base64url').toString('utf8')).kid as string;
    const revoked = await adminCall('POST', `/keys/${leaked}/revoke`, { rotate: true });
    expect(revoked.status).toBe(200);
    for (const t of signed) for (const r of await introspectNow(t)) expect(r.json).toStrictEqual({ active: false });
    const after = await Promise.all(Array.from({ length: 8 }, () => send(`${p!.publicUrl}/oauth2/jwks`, 'GET', {})));
    for (const r of after) expect((r.json.keys as Array<{ kid: string }>).map((k) => k.kid)).not.toContain(leaked);
    for (const t of await Promise.all(Array.from({ length: 8 }, () => token()))) {
      expect(JSON.parse(Buffer.from(t.split('.')[0]!, 'base64url').toString('utf8')).kid).toBe(revoked.json.replacement.kid);
    }

    // Both workers answered some of the introspections after revocations.
    const text = await (await fetch(`${p.adminUrl}/metrics`, { headers: { connection: 'close' } })).text();
    const inactive = [...text.matchAll(/^m2m_auth_introspections_total\{active="false",worker="(\d+)"\} (\d+)$/gm)];
    expect(inactive).toHaveLength(2);
    for (const m of inactive) expect(Number(m[2])).toBeGreaterThan(0);

    expect(await p.stop('SIGTERM')).toBe(0);
    p = undefined;
  }, 90_000);
});
