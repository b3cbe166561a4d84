// A minimal HTTP/1.1 client for the latency measurements: one pre-built request (the same bytes
// every time) on a plain TCP socket, and just enough response parsing to find the status and the
// end of the body. A full client (undici) spends tens of microseconds a request on the
// generator's core; at a few thousand requests a second that core falls behind, and its own
// delays show up as the server's latency (measured here: the same p99 against a hello-world
// server as against m2m-auth). Not a general client: no chunked bodies, no pipelining, no TLS.

import { connect } from 'node:net';

const HEADER_END = Buffer.from('\r\n\r\n');

/** The bytes of one POST with a form body; sent as is for every request. */
export function formPost(target) {
  const url = new URL(target.url);
  const body = Buffer.from(target.body, 'utf8');
  const head = [
    `POST ${url.pathname}${url.search} HTTP/1.1`,
    `Host: ${url.host}`,
    'Content-Type: application/x-www-form-urlencoded',
    `Content-Length: ${body.length}`,
    ...(target.authorization ? [`Authorization: ${target.authorization}`] : []),
    '',
    '',
  ].join('\r\n');
  return { host: url.hostname, port: Number(url.port || 80), bytes: Buffer.concat([Buffer.from(head, 'latin1'), body]) };
}

/**
 * Reads one response: the status from the status line, the body by Content-Length. Returns
 * { status, rest } once complete, or undefined while bytes are missing; throws on anything it
 * does not understand (chunked bodies, a response without Content-Length).
 */
export function parseResponse(buffer) {
  const end = buffer.indexOf(HEADER_END);
  if (end === -1) return undefined;
  const head = buffer.toString('latin1', 0, end);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1]);
  if (!Number.isFinite(status)) throw new Error(`not an HTTP/1.1 response: ${JSON.stringify(head.slice(0, 40))}`);
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
  if (length === undefined) throw new Error('response without Content-Length');
  const total = end + HEADER_END.length + Number(length);
  if (buffer.length < total) return undefined;
  return { status, closes: /\r\nconnection:\s*close/i.test(head), rest: buffer.subarray(total) };
}

/** One keep-alive connection sending `request.bytes`, one request at a time. */
export class RawConnection {
  #socket;
  #buffer = Buffer.alloc(0);
  #pending;
  #ready;
  closed = false;

  constructor(request) {
    this.request = request;
    this.#socket = connect({ host: request.host, port: request.port, noDelay: true });
    this.#ready = new Promise((resolve, reject) => {
      this.#socket.once('connect', resolve);
      this.#socket.once('error', reject);
    });
    this.#socket.on('data', (chunk) => this.#onData(chunk));
    const fail = (err) => {
      this.closed = true;
      const p = this.#pending;
      this.#pending = undefined;
      p?.reject(err ?? new Error('connection closed'));
    };
    this.#socket.on('error', fail);
    this.#socket.on('close', () => fail());
  }

  /** Sends the request; resolves to the response status when the whole response has arrived. */
  async send() {
    await this.#ready;
    if (this.#pending) throw new Error('one request at a time');
    if (this.closed) throw new Error('connection closed');
    return new Promise((resolve, reject) => {
      this.#pending = { resolve, reject };
      this.#socket.write(this.request.bytes);
    });
  }

  #onData(chunk) {
    this.#buffer = this.#buffer.length === 0 ? chunk : Buffer.concat([this.#buffer, chunk]);
    let parsed;
    try {
      parsed = parseResponse(this.#buffer);
    } catch (err) {
      this.#socket.destroy(err);
      return;
    }
    if (!parsed) return;
    this.#buffer = parsed.rest;
    if (parsed.closes) this.closed = true;
    const p = this.#pending;
    this.#pending = undefined;
    p?.resolve(parsed.status);
  }

  close() {
    this.closed = true;
    this.#socket.destroy();
  }
}
