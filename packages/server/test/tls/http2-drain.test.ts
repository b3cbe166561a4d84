// SIGTERM on a TLS listener: an HTTP/2 client gets a GOAWAY (NO_ERROR) at once and finishes the
// stream it had open; an HTTP/1.1 keep-alive client's next response says `Connection: close`;
// the process exits 0 once both are done.

import { mkdtempSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { constants as h2 } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, within } from '../helpers/process.js';
import { startInstance, type Instance } from '../restarts/instance.js';
import { createTestCa, opensslMissing, type TestCa } from './test-ca.js';
import { h2Request, httpsAgent, httpsGet, openH2 } from './clients.js';

const missing = opensslMissing();
if (missing) console.warn(`HTTP/2 drain tests skipped: ${missing}. Install openssl to run them.`);

const ADMIN = 'h2-drain-admin-token-' + randomBytes(16).toString('hex');
const FORM = 'grant_type=client_credentials';

describe.skipIf(missing !== undefined)('draining a TLS listener', () => {
  let ca: TestCa;
  let dataDir: string;
  let p: Instance;

  beforeAll(async () => {
    ensureBuilt();
    ca = createTestCa();
    const cert = ca.issue('server', '5005');
    dataDir = mkdtempSync(join(tmpdir(), 'm2m-auth-h2-drain-'));
    p = await startInstance({
      ca: ca.ca,
      env: {
        M2M_AUTH_DATA_DIR: dataDir, M2M_AUTH_ADMIN_TOKEN: ADMIN, M2M_AUTH_TLS_CERT: cert.certPath, M2M_AUTH_TLS_KEY: cert.keyPath,
        M2M_AUTH_SHUTDOWN_DELAY: '2', M2M_AUTH_SHUTDOWN_TIMEOUT: '10',
      },
    });
  }, 60_000);

  afterAll(async () => {
    await p?.stop('SIGKILL');
    ca?.cleanup();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('GOAWAY for HTTP/2, Connection: close for HTTP/1.1, in-flight streams finish, exit 0', async () => {
    const r = await fetch(`${p.adminUrl}/admin/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'h2', scope: 'orders:read', audience: ['https://orders.example.com'] }),
    });
    const c = (await r.json()) as { client_id: string; client_secret: string };
    const authorization = 'Basic ' + Buffer.from(`${c.client_id}:${c.client_secret}`).toString('base64');

    const session = await openH2(`https://localhost:${p.port}`, ca.ca);
    const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
    const agent = httpsAgent(ca.ca);
    try {
      expect((await httpsGet(`https://localhost:${p.port}/healthz`, agent)).headers.connection).toBe('keep-alive');
      // A token request whose body is still coming when the signal arrives.
      const pending = h2Request(session, '/oauth2/token', {
        method: 'POST', holdBody: true, headers: { authorization, 'content-type': 'application/x-www-form-urlencoded' },
      });
      pending.stream.write(FORM.slice(0, 8));
      await new Promise((resolve) => setTimeout(resolve, 100));

      const exit = p.stop('SIGTERM');
      expect(await goaway).toBe(h2.NGHTTP2_NO_ERROR);
      const h1 = await httpsGet(`https://localhost:${p.port}/healthz`, agent);
      expect(h1.status).toBe(200);
      expect(h1.headers.connection).toBe('close');

      // Past the delay the listener has closed; the open stream still completes.
      await within(4000, async () => {
        try {
          await openH2(`https://localhost:${p.port}`, ca.ca).then((s) => s.destroy());
          return false;
        } catch {
          return true;
        }
      });
      pending.stream.end(FORM.slice(8));
      const token = await pending.response;
      expect(token.status).toBe(200);
      expect(JSON.parse(token.body)).toMatchObject({ token_type: 'Bearer' });
      expect(await exit).toEqual({ code: 0, signal: null });
    } finally {
      agent.destroy();
      session.destroy();
    }
  }, 30_000);
});
