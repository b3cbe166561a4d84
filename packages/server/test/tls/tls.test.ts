// TLS and HTTP/2 on the public listener of a real process, with a CA made by openssl for the test:
// undici and node:https (HTTP/1.1) and node:http2 (ALPN h2) get tokens trusting only that CA;
// SIGHUP swaps in a new certificate that new connections see while open ones keep working; bad
// files stop the start with one clear line.

import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, fetch as undiciFetch, request } from 'undici';
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet } from 'jose';
import { ensureBuilt, within } from '../helpers/process.js';
import { spawnServe, startInstance, type Instance } from '../restarts/instance.js';
import { createTestCa, opensslMissing, type ServerCertificate, type TestCa } from './test-ca.js';
import { h2Request, httpsAgent, httpsGet, openH2, presentedSerial } from './clients.js';

const missing = opensslMissing();
if (missing) console.warn(`TLS tests skipped: ${missing}. Install openssl to run them.`);

const ADMIN = 'tls-admin-token-' + randomBytes(16).toString('hex');
const AUDIENCE = 'https://orders.example.com';
const FORM = 'grant_type=client_credentials';

describe.skipIf(missing !== undefined)('TLS and HTTP/2 on the public listener', () => {
  let ca: TestCa;
  let first: ServerCertificate;
  let second: ServerCertificate;
  let live: { cert: string; key: string };
  let dataDir: string;
  let p: Instance;
  let issuer: string;
  let authorization: string;

  beforeAll(async () => {
    ensureBuilt();
    ca = createTestCa();
    first = ca.issue('first', '1001');
    second = ca.issue('second', '2002');
    // The paths the server reads; SIGHUP re-reads them after the files are replaced.
    live = { cert: join(ca.dir, 'live.crt'), key: join(ca.dir, 'live.key') };
    copyFileSync(first.certPath, live.cert);
    copyFileSync(first.keyPath, live.key);
    dataDir = mkdtempSync(join(tmpdir(), 'm2m-auth-tls-data-'));
    p = await startInstance({
      ca: ca.ca,
      env: {
        M2M_AUTH_DATA_DIR: dataDir, M2M_AUTH_ADMIN_TOKEN: ADMIN, M2M_AUTH_ISSUER: 'https://localhost:0',
        M2M_AUTH_TLS_CERT: live.cert, M2M_AUTH_TLS_KEY: live.key, M2M_AUTH_LOG_LEVEL: 'info',
      },
    });
    issuer = p.issuer;
    expect(issuer).toBe(`https://localhost:${p.port}`);
    const r = await fetch(`${p.adminUrl}/admin/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'tls', scope: 'orders:read', audience: [AUDIENCE] }),
    });
    expect(r.status).toBe(201);
    const c = (await r.json()) as { client_id: string; client_secret: string };
    authorization = 'Basic ' + Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64');
  }, 60_000);

  afterAll(async () => {
    await p?.stop();
    ca?.cleanup();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const tokenHeaders = () => ({ authorization, 'content-type': 'application/x-www-form-urlencoded' });

  async function verify(token: string, jwks: JSONWebKeySet) {
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(jwks), { issuer, audience: AUDIENCE, typ: 'at+jwt' });
    expect(protectedHeader.kid).toBeTypeOf('string');
    return payload;
  }

  it('undici fetch trusting only the test CA gets a token (HTTP/1.1, certificate for 127.0.0.1)', async () => {
    const dispatcher = new Agent({ connect: { ca: ca.ca } });
    try {
      const r = await undiciFetch(`https://127.0.0.1:${p.port}/oauth2/token`, { method: 'POST', headers: tokenHeaders(), body: FORM, dispatcher });
      expect(r.status).toBe(200);
      const body = (await r.json()) as { access_token: string; token_type: string };
      expect(body.token_type).toBe('Bearer');
      const jwks = (await (await undiciFetch(`https://127.0.0.1:${p.port}/oauth2/jwks`, { dispatcher })).json()) as JSONWebKeySet;
      expect((await verify(body.access_token, jwks)).scope).toBe('orders:read');
      const metadata = (await (await undiciFetch(`https://127.0.0.1:${p.port}/.well-known/oauth-authorization-server`, { dispatcher })).json()) as { token_endpoint: string };
      expect(metadata.token_endpoint).toBe(`${issuer}/oauth2/token`);
    } finally {
      await dispatcher.close();
    }
  });

  it('node:https speaks HTTP/1.1 on the same port', async () => {
    const agent = httpsAgent(ca.ca);
    try {
      const r = await httpsGet(`https://localhost:${p.port}/readyz`, agent);
      expect(r.status).toBe(200);
      expect(r.httpVersion).toBe('1.1');
      expect(r.socket.alpnProtocol).toBe(false);
    } finally {
      agent.destroy();
    }
  });

  it('refuses clients that do not trust the CA, and plain HTTP (no h2c)', async () => {
    await expect(request(`https://127.0.0.1:${p.port}/healthz`)).rejects.toThrow();
    const plain = new Agent();
    try {
      await expect(request(`http://127.0.0.1:${p.port}/healthz`, { dispatcher: plain, headersTimeout: 3000 })).rejects.toThrow();
    } finally {
      await plain.close();
    }
  });

  it('node:http2 negotiates h2 by ALPN and gets a token', async () => {
    const session = await openH2(`https://localhost:${p.port}`, ca.ca);
    try {
      expect(session.alpnProtocol).toBe('h2');
      const token = await h2Request(session, '/oauth2/token', { method: 'POST', headers: tokenHeaders(), body: FORM }).response;
      expect(token.status).toBe(200);
      expect(token.headers['cache-control']).toBe('no-store');
      const jwks = await h2Request(session, '/oauth2/jwks').response;
      const payload = await verify((JSON.parse(token.body) as { access_token: string }).access_token, JSON.parse(jwks.body) as JSONWebKeySet);
      expect(payload.aud).toBe(AUDIENCE);
      // An error answer over HTTP/2 is the same RFC 6749 §5.2 body.
      const bad = await h2Request(session, '/oauth2/token', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=password' }).response;
      expect(bad.status).toBe(400);
      expect(JSON.parse(bad.body).error).toBe('unsupported_grant_type');
    } finally {
      session.close();
    }
  });

  it('HTTP/2: a secret rotated with no grace period stops working at once on a session that used it', async () => {
    const r = await fetch(`${p.adminUrl}/admin/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'h2 rotation', scope: 'orders:read', audience: [AUDIENCE] }),
    });
    const c = (await r.json()) as { client_id: string; client_secret: string };
    const headers = { authorization: 'Basic ' + Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64'), 'content-type': 'application/x-www-form-urlencoded' };
    const session = await openH2(`https://localhost:${p.port}`, ca.ca);
    try {
      for (let i = 0; i < 3; i++) expect((await h2Request(session, '/oauth2/token', { method: 'POST', headers, body: FORM }).response).status).toBe(200);
      const rotated = await fetch(`${p.adminUrl}/admin/clients/${c.client_id}/secret`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ grace_period: 0 }),
      });
      expect(rotated.status).toBe(200);
      const refused = await h2Request(session, '/oauth2/token', { method: 'POST', headers, body: FORM }).response;
      expect(refused.status).toBe(401);
      expect(JSON.parse(refused.body).error).toBe('invalid_client');
    } finally {
      session.close();
    }
  });

  it('SIGHUP: new connections get the new certificate; open HTTP/1.1 and HTTP/2 connections keep working', async () => {
    expect(await presentedSerial(p.port, ca.ca)).toBe(first.serial);
    const agent = httpsAgent(ca.ca);
    const session = await openH2(`https://localhost:${p.port}`, ca.ca);
    try {
      const before = await httpsGet(`https://localhost:${p.port}/healthz`, agent);
      expect(before.socket.getPeerCertificate().serialNumber.toUpperCase()).toBe(first.serial);
      expect((await h2Request(session, '/healthz').response).status).toBe(200);

      copyFileSync(second.certPath, live.cert);
      copyFileSync(second.keyPath, live.key);
      p.child.kill('SIGHUP');
      await within(5000, async () => (await presentedSerial(p.port, ca.ca)) === second.serial);

      // The keep-alive connection opened before the reload: same socket, still the first certificate.
      const after = await httpsGet(`https://localhost:${p.port}/healthz`, agent);
      expect(after.status).toBe(200);
      expect(after.socket).toBe(before.socket);
      expect(after.socket.getPeerCertificate().serialNumber.toUpperCase()).toBe(first.serial);
      // The HTTP/2 session opened before the reload still takes new streams.
      const token = await h2Request(session, '/oauth2/token', { method: 'POST', headers: tokenHeaders(), body: FORM }).response;
      expect(token.status).toBe(200);

      // A new HTTP/2 connection: still h2 by ALPN, with the new certificate.
      const fresh = await openH2(`https://localhost:${p.port}`, ca.ca);
      try {
        expect(fresh.alpnProtocol).toBe('h2');
        expect((await h2Request(fresh, '/readyz').response).status).toBe(200);
      } finally {
        fresh.close();
      }
      // Log lines reach stdout in batches (at most 100 ms later).
      await within(2000, async () => /TLS certificate reloaded/.test(p.output()));
      expect(p.child.exitCode).toBeNull();
    } finally {
      agent.destroy();
      session.close();
    }
  });

  it('SIGHUP with an unusable certificate keeps serving the current one', async () => {
    const current = await presentedSerial(p.port, ca.ca);
    writeFileSync(live.cert, 'not a certificate\n');
    p.child.kill('SIGHUP');
    await within(5000, async () => /TLS reload failed; still serving the previous certificate/.test(p.output()));
    expect(await presentedSerial(p.port, ca.ca)).toBe(current);
    expect(p.child.exitCode).toBeNull();
  });
});

describe.skipIf(missing !== undefined)('TLS files that cannot be used stop the start with one line', () => {
  let ca: TestCa;
  let first: ServerCertificate;
  let second: ServerCertificate;
  let dataDir: string;

  beforeAll(() => {
    ensureBuilt();
    ca = createTestCa();
    first = ca.issue('first', '3003');
    second = ca.issue('second', '4004');
    writeFileSync(join(ca.dir, 'garbage.pem'), 'hello\n');
    dataDir = mkdtempSync(join(tmpdir(), 'm2m-auth-tls-bad-'));
  }, 60_000);

  afterAll(() => {
    ca?.cleanup();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  async function failedStart(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
    const run = spawnServe({
      env: { M2M_AUTH_DATA_DIR: dataDir, M2M_AUTH_ADMIN_TOKEN: ADMIN, ...env },
      port: 0, adminPort: 0,
    });
    const timer = setTimeout(() => run.child.kill('SIGKILL'), 15_000);
    const exit = await run.exited;
    clearTimeout(timer);
    return { code: exit.code, output: run.output() };
  }

  it.each([
    ['a certificate path that does not exist', () => ({ M2M_AUTH_TLS_CERT: join(ca.dir, 'missing.crt'), M2M_AUTH_TLS_KEY: first.keyPath }),
      /^m2m-auth: Cannot read the TLS certificate M2M_AUTH_TLS_CERT=\S+missing\.crt: no such file$/],
    ['a key path that does not exist', () => ({ M2M_AUTH_TLS_CERT: first.certPath, M2M_AUTH_TLS_KEY: join(ca.dir, 'missing.key') }),
      /^m2m-auth: Cannot read the TLS key M2M_AUTH_TLS_KEY=\S+missing\.key: no such file$/],
    ['a certificate file that is not PEM', () => ({ M2M_AUTH_TLS_CERT: join(ca.dir, 'garbage.pem'), M2M_AUTH_TLS_KEY: first.keyPath }),
      /^m2m-auth: M2M_AUTH_TLS_CERT=\S+garbage\.pem is not a PEM certificate/],
    ['the key of another certificate', () => ({ M2M_AUTH_TLS_CERT: first.certPath, M2M_AUTH_TLS_KEY: second.keyPath }),
      /^m2m-auth: M2M_AUTH_TLS_KEY=\S+second\.key is not the key of the certificate M2M_AUTH_TLS_CERT=\S+first\.crt$/],
    ['a certificate without a key', () => ({ M2M_AUTH_TLS_CERT: first.certPath }),
      /^m2m-auth: M2M_AUTH_TLS_CERT and M2M_AUTH_TLS_KEY go together: set both, or neither$/],
  ])('%s', async (_name, env, message) => {
    const { code, output } = await failedStart(env());
    expect(code).toBe(1);
    const lines = output.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  }, 30_000);
});

describe.skipIf(missing !== undefined)('SIGHUP with --workers', () => {
  let ca: TestCa;
  let dataDir: string;
  let p: Instance;

  afterAll(async () => {
    await p?.stop();
    ca?.cleanup();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('the primary passes SIGHUP to every worker, and keeps running', async () => {
    ensureBuilt();
    ca = createTestCa();
    const first = ca.issue('first', '6006');
    const second = ca.issue('second', '7007');
    const live = { cert: join(ca.dir, 'live.crt'), key: join(ca.dir, 'live.key') };
    copyFileSync(first.certPath, live.cert);
    copyFileSync(first.keyPath, live.key);
    dataDir = mkdtempSync(join(tmpdir(), 'm2m-auth-tls-workers-'));
    p = await startInstance({
      ca: ca.ca, args: ['--workers', '2'],
      env: { M2M_AUTH_DATA_DIR: dataDir, M2M_AUTH_ADMIN_TOKEN: ADMIN, M2M_AUTH_TLS_CERT: live.cert, M2M_AUTH_TLS_KEY: live.key, M2M_AUTH_LOG_LEVEL: 'info' },
    });
    await within(10_000, async () => (p.output().match(/m2m-auth listening/g) ?? []).length === 2);
    expect(await presentedSerial(p.port, ca.ca)).toBe(first.serial);

    copyFileSync(second.certPath, live.cert);
    copyFileSync(second.keyPath, live.key);
    p.child.kill('SIGHUP');
    await within(5000, async () => (p.output().match(/TLS certificate reloaded/g) ?? []).length === 2);
    for (let i = 0; i < 10; i++) expect(await presentedSerial(p.port, ca.ca)).toBe(second.serial);
    expect(p.child.exitCode).toBeNull();
    expect(await p.stop('SIGTERM')).toEqual({ code: 0, signal: null });
  }, 60_000);
});
