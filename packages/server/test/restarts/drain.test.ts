// SIGTERM on one real process, watched connection by connection: readiness goes false at once
// while the listener still serves for M2M_AUTH_SHUTDOWN_DELAY, a keep-alive connection's next
// response says `Connection: close`, a request in flight when the listener closes still gets its
// token, and M2M_AUTH_SHUTDOWN_TIMEOUT ends a connection that never finishes; the exit code is 0.

import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, within } from '../helpers/process.js';
import { startInstance, type Instance } from './instance.js';
import { RawConnection } from './raw-http.js';

const ADMIN = 'drain-admin-token-' + randomBytes(16).toString('hex');
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function instance(env: Record<string, string>): Promise<Instance> {
  const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-drain-'));
  dirs.push(dir);
  return startInstance({ env: { M2M_AUTH_DATA_DIR: dir, M2M_AUTH_ADMIN_TOKEN: ADMIN, ...env } });
}

async function newClient(p: Instance): Promise<string> {
  const r = await fetch(`${p.adminUrl}/admin/clients`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ client_name: 'drain', scope: 'orders:read', audience: ['https://orders.example.com'] }),
  });
  expect(r.status).toBe(201);
  const json = (await r.json()) as { client_id: string; client_secret: string };
  return 'Basic ' + Buffer.from(`${json.client_id}:${json.client_secret}`).toString('base64');
}

const FORM = 'grant_type=client_credentials';
const tokenHead = (port: number, auth: string) =>
  `POST /oauth2/token HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: ${auth}\r\n` +
  `Content-Type: application/x-www-form-urlencoded\r\nContent-Length: ${FORM.length}\r\n\r\n`;
const get = (port: number, path: string) => `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n\r\n`;

async function status(url: string): Promise<number | 'refused'> {
  try {
    const r = await fetch(url, { headers: { connection: 'close' } });
    await r.arrayBuffer();
    return r.status;
  } catch {
    return 'refused';
  }
}

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

describe('SIGTERM drains the public listener', () => {
  beforeAll(() => ensureBuilt(), 120_000);

  it('readiness false at once, Connection: close on keep-alive, the in-flight request finishes, exit 0', async () => {
    const p = await instance({ M2M_AUTH_SHUTDOWN_DELAY: '2', M2M_AUTH_SHUTDOWN_TIMEOUT: '10' });
    const auth = await newClient(p);

    // A keep-alive connection in use before the signal.
    const keepAlive = await RawConnection.open(p.port);
    keepAlive.write(get(p.port, '/healthz'));
    const first = await keepAlive.response();
    expect(first.status).toBe(200);
    expect(first.headers.connection).not.toBe('close');

    // A token request whose body is not yet complete: in flight across the whole shutdown.
    const inFlight = await RawConnection.open(p.port);
    inFlight.write(tokenHead(p.port, auth) + FORM.slice(0, 10));
    await new Promise((r) => setTimeout(r, 100));

    const signalled = Date.now();
    const exit = p.stop('SIGTERM');
    await within(1500, async () => (await status(`${p.publicUrl}/readyz`)) === 503);
    // Not ready, but still serving: the load balancer has the delay to notice.
    expect(await status(`${p.publicUrl}/healthz`)).toBe(200);

    keepAlive.write(get(p.port, '/healthz'));
    const second = await keepAlive.response();
    expect(second.status).toBe(200);
    expect(second.headers.connection).toBe('close');
    await keepAlive.whenClosed(2000);

    // After the delay the listener is closed: new connections are refused.
    await within(4000, () => refused(p.port));
    expect(Date.now() - signalled).toBeGreaterThanOrEqual(1900);
    expect(inFlight.closed).toBe(false);

    inFlight.write(FORM.slice(10));
    const token = await inFlight.response();
    expect(token.status).toBe(200);
    expect(JSON.parse(token.body)).toMatchObject({ token_type: 'Bearer', expires_in: 3600 });
    expect(token.headers.connection).toBe('close');

    expect(await exit).toEqual({ code: 0, signal: null });
    expect(p.output()).not.toMatch(/shutdown timeout/);
  }, 30_000);

  it('closes a connection that never completes its request when M2M_AUTH_SHUTDOWN_TIMEOUT runs out, then exits 0', async () => {
    const p = await instance({ M2M_AUTH_SHUTDOWN_TIMEOUT: '1' });
    const auth = await newClient(p);
    const stuck = await RawConnection.open(p.port);
    stuck.write(tokenHead(p.port, auth) + FORM.slice(0, 5));
    await new Promise((r) => setTimeout(r, 100));

    const signalled = Date.now();
    const exit = await p.stop('SIGTERM');
    const elapsed = Date.now() - signalled;
    expect(exit).toEqual({ code: 0, signal: null });
    expect(elapsed).toBeGreaterThanOrEqual(900);
    expect(elapsed).toBeLessThan(8000);
    await stuck.whenClosed(1000);
    expect(p.output()).toMatch(/shutdown timeout: closed the connections still open/);
  }, 30_000);

  it('without a delay, an idle server stops at once', async () => {
    const p = await instance({});
    const signalled = Date.now();
    expect(await p.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalled).toBeLessThan(5000);
  }, 30_000);
});
