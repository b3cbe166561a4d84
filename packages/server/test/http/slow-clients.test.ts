// Slow clients on real sockets (src/http/connections.ts): requests whose headers or body dribble
// in, connections that send nothing and idle keep-alive connections are cut within the request
// (or keep-alive) timeout on both listeners, while a normal client keeps getting tokens; beyond
// the connection cap new connections are closed at once.

import { Agent, request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, startTestServer, type TestServer } from '../helpers/server.js';

/** The timeouts under test (seconds): short, so that the test is quick; the margins below are generous. */
const REQUEST_TIMEOUT = 2;
const KEEP_ALIVE_TIMEOUT = 2;
/** How late after its timeout a connection may be cut and still pass: the sweep runs every 500 ms here. */
const MARGIN_MS = 3000;

interface Dribbler {
  openedAt: number;
  closedAt: number | undefined;
  received: string;
  closed: Promise<void>;
}

/**
 * A raw connection that sends `first` once connected, then `next` every 300 ms for as long as the
 * server keeps it open (`next` empty: sends nothing more).
 */
function dribble(port: number, first: string, next: string): Dribbler {
  const d: Dribbler = { openedAt: 0, closedAt: undefined, received: '', closed: Promise.resolve() };
  const socket: Socket = connect(port, '127.0.0.1');
  let timer: NodeJS.Timeout | undefined;
  d.closed = new Promise((resolve) => {
    socket.on('close', () => {
      d.closedAt = Date.now();
      clearInterval(timer);
      resolve();
    });
  });
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => (d.received += chunk.toString('latin1')));
  socket.on('connect', () => {
    d.openedAt = Date.now();
    if (first) socket.write(first);
    if (next) timer = setInterval(() => socket.writable && socket.write(next), 300);
  });
  return d;
}

const FORM_HEADERS = 'Host: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n';
const HEADERS_ONLY = ['POST /oauth2/token HTTP/1.1\r\n' + FORM_HEADERS, 'X-Slow: 1\r\n'] as const;
const BODY = ['POST /oauth2/token HTTP/1.1\r\n' + FORM_HEADERS + 'Content-Length: 1000\r\n\r\ngrant_type=', 'a'] as const;
const SILENT = ['', ''] as const;

/** Fails the test unless every dribbler is closed by `deadline` (ms), instead of waiting for ever. */
async function allClosed(dribblers: Dribbler[], deadline: number): Promise<void> {
  const waitMs = Math.max(0, deadline - Date.now());
  const timeout = new Promise<'late'>((resolve) => setTimeout(() => resolve('late'), waitMs).unref());
  const outcome = await Promise.race([Promise.all(dribblers.map((d) => d.closed)), timeout]);
  const open = dribblers.filter((d) => d.closedAt === undefined).length;
  expect(open, `${open} of ${dribblers.length} slow connections still open ${waitMs} ms on`).toBe(0);
  expect(outcome).not.toBe('late');
}

function expectCutInTime(d: Dribbler, timeoutMs: number): void {
  expect(d.closedAt).toBeDefined();
  const heldMs = d.closedAt! - d.openedAt;
  expect(heldMs).toBeLessThanOrEqual(timeoutMs + MARGIN_MS);
  // Not refused: held until about its timeout (Node counts from the server's accept).
  expect(heldMs).toBeGreaterThanOrEqual(timeoutMs / 2);
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function post(port: number, path: string, body: string, headers: Record<string, string>, agent: Agent | false): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, path, method: 'POST', agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body), ...headers },
      timeout: 15_000,
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 15 s')));
    req.on('error', reject);
    req.end(body);
  });
}

describe('slow clients', () => {
  let t: TestServer;
  let port: number;
  let adminPort: number;
  let client: { clientId: string; clientSecret: string };

  beforeAll(async () => {
    t = await startTestServer({ requestTimeout: REQUEST_TIMEOUT, keepAliveTimeout: KEEP_ALIVE_TIMEOUT, tokenRateLimit: 0 });
    const urls = await t.server.listen();
    port = Number(new URL(urls.publicUrl).port);
    adminPort = Number(new URL(urls.adminUrl).port);
    client = await t.client();
  });
  afterAll(() => t?.close());

  it('cuts 200 dribbling connections within the request timeout while a normal client keeps getting tokens', async () => {
    const timeoutMs = REQUEST_TIMEOUT * 1000;
    const dribblers = [
      ...Array.from({ length: 80 }, () => dribble(port, ...HEADERS_ONLY)),
      ...Array.from({ length: 80 }, () => dribble(port, ...BODY)),
      ...Array.from({ length: 40 }, () => dribble(port, ...SILENT)),
    ];
    const deadline = Date.now() + timeoutMs + MARGIN_MS + 2000;

    // The normal client: keep-alive connections, and a new connection every fourth request.
    const agent = new Agent({ keepAlive: true, maxSockets: 2 });
    const statuses: number[] = [];
    let stop = false;
    const normal = (async () => {
      for (let i = 0; !stop; i++) {
        const r = await post(port, '/oauth2/token', 'grant_type=client_credentials',
          { authorization: basic(client.clientId, client.clientSecret) }, i % 4 === 3 ? false : agent);
        statuses.push(r.status);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    })();
    try {
      await allClosed(dribblers, deadline);
    } finally {
      stop = true;
      await normal;
      agent.destroy();
    }

    expect(statuses.length).toBeGreaterThan(20);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    for (const d of dribblers) expectCutInTime(d, timeoutMs);
    // Headers complete (body dribblers): a 408 that closes the connection; before that, nothing.
    for (const d of dribblers.slice(80, 160)) {
      expect(d.received).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      expect(d.received).toMatch(/\r\nConnection: close\r\n/i);
      expect(JSON.parse(d.received.split('\r\n\r\n')[1]!)).toStrictEqual({
        error: 'invalid_request', error_description: 'The request did not arrive within the request timeout.',
      });
    }
    for (const d of [...dribblers.slice(0, 80), ...dribblers.slice(160)]) expect(d.received).toBe('');
  }, 30_000);

  it('cuts slow requests on the admin listener too', async () => {
    const timeoutMs = REQUEST_TIMEOUT * 1000;
    const admin = [
      dribble(adminPort, 'POST /admin/clients HTTP/1.1\r\nHost: 127.0.0.1\r\n', 'X-Slow: 1\r\n'),
      // With the admin token: an unauthenticated request is answered 401 before its body is read.
      dribble(adminPort, `POST /admin/clients HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${t.config.adminToken!}\r\n`
        + 'Content-Type: application/json\r\nContent-Length: 500\r\n\r\n{', ' '),
      dribble(adminPort, '', ''),
    ];
    await allClosed(admin, Date.now() + timeoutMs + MARGIN_MS + 2000);
    for (const d of admin) expectCutInTime(d, timeoutMs);
    expect(admin[0]!.received).toBe('');
    expect(admin[1]!.received).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
    expect(admin[1]!.received).toMatch(/\r\nConnection: close\r\n/i);
    expect(JSON.parse(admin[1]!.received.split('\r\n\r\n')[1]!)).toMatchObject({ error: 'invalid_request' });
    expect(admin[2]!.received).toBe('');
  }, 30_000);

  it('closes an idle keep-alive connection after the keep-alive timeout, and says so in Keep-Alive', async () => {
    const timeoutMs = KEEP_ALIVE_TIMEOUT * 1000;
    const d = dribble(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', '');
    await allClosed([d], Date.now() + timeoutMs + MARGIN_MS + 2000);
    expect(d.received).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(d.received).toMatch(new RegExp(`\\r\\nKeep-Alive: timeout=${KEEP_ALIVE_TIMEOUT}\\r\\n`, 'i'));
    const heldMs = d.closedAt! - d.openedAt;
    expect(heldMs).toBeGreaterThanOrEqual(timeoutMs);
    expect(heldMs).toBeLessThanOrEqual(timeoutMs + MARGIN_MS);
  }, 30_000);

  it('does not cut a request whose body has arrived, however long its answer takes', async () => {
    // A body that arrives in pieces within the timeout is fine.
    const socket = connect(port, '127.0.0.1');
    let received = '';
    socket.on('data', (c: Buffer) => (received += c.toString()));
    await new Promise((resolve) => socket.once('connect', resolve));
    const body = 'grant_type=client_credentials';
    socket.write(`POST /oauth2/token HTTP/1.1\r\n${FORM_HEADERS}Authorization: ${basic(client.clientId, client.clientSecret)}\r\nContent-Length: ${body.length}\r\n\r\n`);
    await new Promise((resolve) => setTimeout(resolve, 300));
    socket.write(body.slice(0, 10));
    await new Promise((resolve) => setTimeout(resolve, 300));
    socket.write(body.slice(10));
    await new Promise<void>((resolve) => {
      const check = (): void => {
        if (received.includes('\r\n\r\n{')) resolve();
        else socket.once('data', check);
      };
      check();
    });
    socket.destroy();
    expect(received).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  });
});

describe('the connection cap', () => {
  let t: TestServer;
  let port: number;

  beforeAll(async () => {
    // A request timeout long enough that a refused connection cannot be mistaken for a timed-out one.
    t = await startTestServer({ maxConnections: 20, requestTimeout: 6 });
    port = Number(new URL((await t.server.listen()).publicUrl).port);
  });
  afterAll(() => t?.close());

  it('logs the cap in force, refuses connections beyond it at once, and accepts again once some close', async () => {
    const listening = t.logs.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.msg === 'm2m-auth listening');
    expect(listening).toMatchObject({ maxConnections: 20 });

    const held = Array.from({ length: 20 }, () => dribble(port, ...SILENT));
    const server = t.server.publicApp.server;
    const open = (): Promise<number> => new Promise((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    while ((await open()) < 20) await new Promise((resolve) => setTimeout(resolve, 20));

    const refused = Array.from({ length: 5 }, () => dribble(port, 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', ''));
    await allClosed(refused, Date.now() + 3000);
    for (const d of refused) {
      expect(d.received).toBe('');
      expect(d.closedAt! - d.openedAt).toBeLessThan(3000);
    }
    expect(held.every((d) => d.closedAt === undefined)).toBe(true);
    expect(t.logs.some((l) => l.includes('connections refused') && l.includes('"maxConnections":20'))).toBe(true);

    // Once the silent ones are cut at the request timeout, new connections are served again.
    await allClosed(held, Date.now() + 6000 + MARGIN_MS + 2000);
    const r = await post(port, '/oauth2/token', 'grant_type=client_credentials', {}, false);
    expect(r.status).toBe(401);
  }, 30_000);
});
