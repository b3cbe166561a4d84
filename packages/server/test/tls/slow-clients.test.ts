// Slow clients on the TLS listener (src/http/connections.ts): HTTP/2 streams whose body dribbles
// in get 408 within the request timeout and their session a GOAWAY; HTTP/2 sessions that never
// send a request, or dribble its HEADERS, are closed within the request timeout; idle sessions
// close after the keep-alive timeout even while the client pings; HTTP/1.1 over TLS and a TLS
// handshake that never finishes are cut too. Real TLS, real node:http2 clients, raw frames.

import { constants as h2, type ClientHttp2Session } from 'node:http2';
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { basic, startTestServer, type TestServer } from '../helpers/server.js';
import { createTestCa, opensslMissing, type TestCa } from './test-ca.js';
import { h2Request, openH2 } from './clients.js';

const missing = opensslMissing();
if (missing) console.warn(`TLS slow-client tests skipped: ${missing}. Install openssl to run them.`);

const REQUEST_TIMEOUT = 2;
const KEEP_ALIVE_TIMEOUT = 4;
/** How late after its timeout a connection may be cut and still pass (the sweep runs every 500 ms here). */
const MARGIN_MS = 3000;

/** Resolves to when `session` closed (ms), or undefined if it is still open at `deadline`. */
function closedBy(session: ClientHttp2Session, deadline: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()));
    session.once('close', () => {
      clearTimeout(timer);
      resolve(Date.now());
    });
  });
}

/** An HTTP/2 frame (RFC 9113 §4.1). */
function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

describe.skipIf(missing !== undefined)('slow clients on the TLS listener', () => {
  let ca: TestCa;
  let t: TestServer;
  let port: number;
  let origin: string;
  let authorization: string;

  beforeAll(async () => {
    ca = createTestCa();
    const cert = ca.issue('server', '5107');
    t = await startTestServer({
      tlsCert: cert.certPath, tlsKey: cert.keyPath, requestTimeout: REQUEST_TIMEOUT, keepAliveTimeout: KEEP_ALIVE_TIMEOUT,
    });
    port = Number(new URL((await t.server.listen()).publicUrl.replace(/^https?:/, 'http:')).port);
    origin = `https://localhost:${port}`;
    const c = await t.client();
    authorization = basic(c.clientId, c.clientSecret);
  }, 60_000);

  afterAll(async () => {
    await t?.close();
    ca?.cleanup();
  });

  it('answers 408 to an HTTP/2 stream whose body dribbles, and sends its session a GOAWAY; other sessions go on', async () => {
    const slow = await openH2(origin, ca.ca);
    const goaway = new Promise<number>((resolve) => slow.once('goaway', (code: number) => resolve(code)));
    const opened = Date.now();
    const { stream, response } = h2Request(slow, '/oauth2/token', {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization }, holdBody: true,
    });
    stream.write('grant_type=');
    const drip = setInterval(() => !stream.closed && stream.write('a'), 300);
    const normal = await openH2(origin, ca.ca);
    try {
      // Meanwhile another session gets tokens.
      const tokens: number[] = [];
      const answered = response.then((r) => ({ ...r, at: Date.now() }));
      let done = false;
      void answered.finally(() => (done = true));
      while (!done && Date.now() - opened < REQUEST_TIMEOUT * 1000 + MARGIN_MS) {
        const r = await h2Request(normal, '/oauth2/token', {
          method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization }, body: 'grant_type=client_credentials',
        }).response;
        tokens.push(r.status);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      const r = await Promise.race([answered, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 500))]);
      expect(r, 'no answer to the dribbling stream').toBeDefined();
      expect(r!.status).toBe(408);
      expect(JSON.parse(r!.body)).toStrictEqual({ error: 'invalid_request', error_description: 'The request did not arrive within the request timeout.' });
      expect(r!.at - opened).toBeLessThanOrEqual(REQUEST_TIMEOUT * 1000 + MARGIN_MS);
      expect(r!.at - opened).toBeGreaterThanOrEqual(REQUEST_TIMEOUT * 1000);
      expect(await goaway).toBe(h2.NGHTTP2_NO_ERROR);
      expect(tokens.length).toBeGreaterThan(5);
      expect(tokens.filter((s) => s !== 200)).toEqual([]);
    } finally {
      clearInterval(drip);
      slow.destroy();
      normal.destroy();
    }
  }, 30_000);

  it('closes an HTTP/2 session that sends no request within the request timeout', async () => {
    const session = await openH2(origin, ca.ca);
    const opened = Date.now();
    const closed = await closedBy(session, opened + REQUEST_TIMEOUT * 1000 + MARGIN_MS);
    session.destroy();
    expect(closed, 'session still open').toBeDefined();
    expect(closed! - opened).toBeGreaterThanOrEqual(REQUEST_TIMEOUT * 1000 / 2);
  }, 30_000);

  it('closes an HTTP/2 connection whose HEADERS dribble in (CONTINUATION frames) within the request timeout', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: ca.ca, servername: 'localhost', ALPNProtocols: ['h2'] });
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    expect(socket.alpnProtocol).toBe('h2');
    // Read what the server sends (its SETTINGS, the GOAWAY), so that its close is seen.
    socket.resume();
    const opened = Date.now();
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    socket.write(Buffer.concat([
      Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'),
      frame(0x4, 0, 0, Buffer.alloc(0)), // SETTINGS
      // HEADERS without END_HEADERS: :method POST, :scheme https (HPACK static table 3 and 7).
      frame(0x1, 0, 1, Buffer.from([0x83, 0x87])),
    ]));
    // One more header field every 300 ms, each a literal without indexing (RFC 7541 §6.2.2).
    const field = Buffer.concat([Buffer.from([0x00, 5]), Buffer.from('x-slo'), Buffer.from([1]), Buffer.from('w')]);
    const drip = setInterval(() => socket.writable && socket.write(frame(0x9, 0, 1, field)), 300);
    try {
      const at = await Promise.race([closed, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), REQUEST_TIMEOUT * 1000 + MARGIN_MS))]);
      expect(at, 'connection still open').toBeDefined();
      expect(at! - opened).toBeGreaterThanOrEqual(REQUEST_TIMEOUT * 1000 / 2);
    } finally {
      clearInterval(drip);
      socket.destroy();
    }
  }, 30_000);

  it('closes an idle HTTP/2 session after the keep-alive timeout, pings or not', async () => {
    const session = await openH2(origin, ca.ca);
    expect((await h2Request(session, '/healthz').response).status).toBe(200);
    const idleFrom = Date.now();
    const pings = setInterval(() => {
      if (!session.closed && !session.destroyed) session.ping(() => undefined);
    }, 300);
    try {
      const closed = await closedBy(session, idleFrom + KEEP_ALIVE_TIMEOUT * 1000 + MARGIN_MS);
      expect(closed, 'idle session still open').toBeDefined();
      // Not at the request timeout (the server counts from its last write, a moment before idleFrom).
      expect(closed! - idleFrom).toBeGreaterThanOrEqual(KEEP_ALIVE_TIMEOUT * 1000 - 1000);
    } finally {
      clearInterval(pings);
      session.destroy();
    }
  }, 30_000);

  it('answers 408 with Connection: close to HTTP/1.1 over TLS whose body dribbles', async () => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: ca.ca, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
    socket.on('error', () => undefined);
    await new Promise((resolve) => socket.once('secureConnect', resolve));
    const opened = Date.now();
    let received = '';
    socket.on('data', (d: Buffer) => (received += d.toString()));
    const closed = new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now())));
    socket.write('POST /oauth2/token HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\ngrant');
    const drip = setInterval(() => socket.writable && socket.write('_'), 300);
    try {
      const at = await Promise.race([closed, new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), REQUEST_TIMEOUT * 1000 + MARGIN_MS))]);
      expect(at, 'connection still open').toBeDefined();
      expect(at! - opened).toBeGreaterThanOrEqual(REQUEST_TIMEOUT * 1000 / 2);
      expect(received).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
      expect(received).toMatch(/\r\nConnection: close\r\n/i);
    } finally {
      clearInterval(drip);
      socket.destroy();
    }
  }, 30_000);

  it('closes a connection whose TLS handshake does not finish within the request timeout', async () => {
    const socket = netConnect(port, '127.0.0.1');
    socket.on('error', () => undefined);
    socket.resume();
    await new Promise((resolve) => socket.once('connect', resolve));
    const opened = Date.now();
    // The first bytes of a ClientHello, and no more.
    socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]));
    const at = await Promise.race([
      new Promise<number>((resolve) => socket.once('close', () => resolve(Date.now()))),
      new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), REQUEST_TIMEOUT * 1000 + MARGIN_MS)),
    ]);
    socket.destroy();
    expect(at, 'connection still open').toBeDefined();
    expect(at! - opened).toBeGreaterThanOrEqual(REQUEST_TIMEOUT * 1000 / 2);
  }, 30_000);
});
