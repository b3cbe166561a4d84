// Slow and idle clients, and how many connections a listener holds. A request whose headers and
// body have not all arrived within the request timeout is answered 408 (RFC 9110 §15.5.9) with
// `Connection: close` once its headers are complete, or closed before that; an idle keep-alive
// connection closes after the keep-alive timeout (RFC 9112 §9.3); beyond the connection cap new
// connections are closed as soon as they are accepted.
//
// HTTP/1.1 (plain, and over TLS beside HTTP/2) uses Node's own checks: `requestTimeout` and
// `headersTimeout` are measured from the first byte of a request (from the connection's opening
// for its first one) until the whole body has arrived, and enforced by a sweep every
// `connectionsCheckingInterval`, which is 30 s unless set. No timer is set per request.
// HTTP/2 has none of these, so an HTTP/2 listener gets a sweep of its own here (see `Http2Sweep`).

import { readFileSync } from 'node:fs';
import type { Server as NetServer, Socket } from 'node:net';
import { constants as h2, type Http2Session, type ServerHttp2Stream } from 'node:http2';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';

export interface ConnectionLimits {
  /** Headers and body of a request must have arrived within this long (ms). */
  requestTimeoutMs: number;
  /** An idle keep-alive connection (or HTTP/2 session without a stream) closes after this long (ms). */
  keepAliveTimeoutMs: number;
  /** Open connections per listener; new ones beyond it are closed at once. */
  maxConnections: number;
}

/** The cap when the open-file limit leaves room for it (two listeners at the cap, and the reserve). */
export const DEFAULT_MAX_CONNECTIONS = 4096;

/**
 * Descriptors kept out of the cap: the database (with its -wal and -shm files), PostgreSQL and
 * Redis connections, stdout, the listening sockets, and the runtime's own (epoll, eventfds, ...).
 */
export const RESERVED_FILES = 64;

/** The soft limit on open files (RLIMIT_NOFILE) from a /proc/<pid>/limits text; undefined when unknown or unlimited. */
export function parseOpenFileLimit(limitsText: string): number | undefined {
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(limitsText);
  if (!m || m[1] === 'unlimited') return undefined;
  return Number(m[1]);
}

/** This process's open-file limit (Linux); undefined where /proc is not there. */
export function openFileLimit(): number | undefined {
  try {
    return parseOpenFileLimit(readFileSync('/proc/self/limits', 'utf8'));
  } catch {
    return undefined;
  }
}

/**
 * The default cap: DEFAULT_MAX_CONNECTIONS, lowered when the open-file limit cannot hold both
 * listeners at that cap plus RESERVED_FILES, so that connections alone never exhaust the
 * descriptors the process needs for its database and logs.
 */
export function defaultMaxConnections(fileLimit: number | undefined): number {
  if (fileLimit === undefined) return DEFAULT_MAX_CONNECTIONS;
  return Math.max(1, Math.min(DEFAULT_MAX_CONNECTIONS, Math.floor((fileLimit - RESERVED_FILES) / 2)));
}

/** The limits the configuration asks for (seconds), with the cap's default worked out from `fileLimit`. */
export function connectionLimits(
  config: { requestTimeout: number; keepAliveTimeout: number; maxConnections: number | undefined },
  fileLimit: number | undefined,
): ConnectionLimits {
  return {
    requestTimeoutMs: config.requestTimeout * 1000,
    keepAliveTimeoutMs: config.keepAliveTimeout * 1000,
    maxConnections: config.maxConnections ?? defaultMaxConnections(fileLimit),
  };
}

/** How often the HTTP/1.1 and HTTP/2 sweeps look for expired requests: a dribbler is cut within the timeout plus this. */
export function checkIntervalMs(requestTimeoutMs: number): number {
  return Math.min(1000, Math.max(100, Math.floor(requestTimeoutMs / 4)));
}

/** A 408 as raw HTTP/1.1, JSON body, connection closed. */
function timeoutResponse(body: string): string {
  return 'HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: application/json; charset=utf-8\r\n'
    + `Cache-Control: no-store\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
}

/** The response of an HTTP/1.1 request on a socket, once its headers have been parsed (Node's own socketOnError reads it too). */
interface HttpSocket extends Socket {
  _httpMessage?: { headersSent?: boolean } | null;
}

export interface LimitListenerOptions {
  logger: Logger;
  /** Names the listener in log lines. */
  name: 'public' | 'admin';
  /** The JSON body of a 408, in the listener's error format. */
  timeoutBody: string;
  /** The listener speaks HTTP/2 (TLS with ALPN): its sessions and streams are swept here. */
  http2?: boolean;
}

/**
 * Applies the limits to a Fastify app's server; call before listen. HTTP/1.1 costs nothing per
 * request; HTTP/2 costs an entry in a map per stream.
 */
export function limitListener(app: FastifyInstance, limits: ConnectionLimits, options: LimitListenerOptions): void {
  const server = app.server as unknown as NetServer & {
    requestTimeout: number;
    headersTimeout: number;
    keepAliveTimeout: number;
    connectionsCheckingInterval: number;
  };
  // Read by Node when the server starts listening (HTTP/1.1, also for HTTP/1.1 over the TLS listener).
  server.requestTimeout = limits.requestTimeoutMs;
  server.headersTimeout = limits.requestTimeoutMs;
  server.keepAliveTimeout = limits.keepAliveTimeoutMs;
  server.connectionsCheckingInterval = checkIntervalMs(limits.requestTimeoutMs);
  // Node closes a connection beyond the cap right after accepting it, before any read or handshake.
  server.maxConnections = limits.maxConnections;

  const response408 = timeoutResponse(options.timeoutBody);
  // Before Fastify's own handler, which answers 408 also while headers are still arriving and
  // without `Connection: close`; it does nothing with a socket this one destroyed.
  server.prependListener('clientError', (err: NodeJS.ErrnoException, socket: HttpSocket) => {
    if (err.code !== 'ERR_HTTP_REQUEST_TIMEOUT' || socket.destroyed) return;
    // A response exists once the request's headers were parsed; before that there is nothing to answer.
    const response = socket._httpMessage;
    if (response && !response.headersSent && socket.writable) socket.write(response408);
    socket.destroy();
  });

  // Refusals are logged once a minute at most: a flood of them is one event.
  let refused = 0;
  let loggedAt = -Infinity;
  server.on('drop', () => {
    refused++;
    const now = Date.now();
    if (now - loggedAt < 60_000) return;
    options.logger.warn(
      { listener: options.name, maxConnections: limits.maxConnections, refused },
      'connections refused: the listener holds M2M_AUTH_MAX_CONNECTIONS connections',
    );
    loggedAt = now;
    refused = 0;
  });

  if (options.http2) {
    const sweep = new Http2Sweep(limits, options.timeoutBody);
    server.on('session', (session: Http2Session) => sweep.add(session));
    server.on('stream', (stream: ServerHttp2Stream) => sweep.stream(stream));
    server.on('listening', () => sweep.start());
    server.on('close', () => sweep.stop());
  }
}

interface SessionState {
  /** Open streams (as far as the last sweep knows) and when each began (ms). */
  streams: Map<ServerHttp2Stream, number>;
  /** Since when the session has had no open stream (ms); undefined while it has one. */
  idleSince: number | undefined;
  /** Whether a stream was ever opened on it: until then it gets the request timeout, not the keep-alive one. */
  served: boolean;
  /** When it was told to go away (ms): destroyed at a later sweep if still open with no stream, or a request timeout later. */
  closingSince: number | undefined;
}

/**
 * HTTP/2 (RFC 9113) on the TLS listener, swept every checkIntervalMs:
 * - a stream whose request has not fully arrived (no END_STREAM) within the request timeout gets
 *   a 408 if nothing was answered yet, then RST_STREAM(NO_ERROR) (§8.1), and its session a
 *   GOAWAY: streams already open finish, and the client reconnects for more, as an HTTP/1.1
 *   client does after `Connection: close`;
 * - a session without an open stream closes after the keep-alive timeout, or after the request
 *   timeout when it never opened one. Streams, not bytes, count as activity: PING frames do not
 *   keep a session open, and a request whose HEADERS frames are still arriving is not yet a
 *   stream, so a client that dribbles them holds a connection no longer than an idle one;
 * - a session told to go away is destroyed at a later sweep if it is still open without a stream
 *   (or a request timeout later if its streams are still going).
 * The TLS handshake itself is bounded by the request timeout (`handshakeTimeout`, src/http/tls.ts).
 */
class Http2Sweep {
  readonly #sessions = new Map<Http2Session, SessionState>();
  readonly #limits: ConnectionLimits;
  readonly #body: string;
  #timer: NodeJS.Timeout | undefined;

  constructor(limits: ConnectionLimits, timeoutBody: string) {
    this.#limits = limits;
    this.#body = timeoutBody;
  }

  add(session: Http2Session): void {
    this.#sessions.set(session, { streams: new Map(), idleSince: Date.now(), served: false, closingSince: undefined });
    session.once('close', () => this.#sessions.delete(session));
  }

  stream(stream: ServerHttp2Stream): void {
    const state = this.#sessions.get(stream.session as Http2Session);
    if (state === undefined) return;
    state.streams.set(stream, Date.now());
    state.served = true;
    state.idleSince = undefined;
  }

  start(): void {
    this.#timer ??= setInterval(() => this.sweep(Date.now()), checkIntervalMs(this.#limits.requestTimeoutMs));
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  sweep(now: number): void {
    const { requestTimeoutMs, keepAliveTimeoutMs } = this.#limits;
    for (const [session, state] of this.#sessions) {
      if (session.destroyed) {
        this.#sessions.delete(session);
        continue;
      }
      for (const [stream, startedAt] of state.streams) {
        if (stream.closed || stream.destroyed) {
          state.streams.delete(stream);
        } else if (now - startedAt > requestTimeoutMs && !stream.state.remoteClose) {
          this.#timeOut(stream);
          state.streams.delete(stream);
          this.#goAway(session, state, now);
        }
      }
      if (state.closingSince !== undefined) {
        // Gone away at an earlier sweep and still open: nghttp2 waits for a request whose
        // HEADERS never ended, or open streams take longer than a request timeout to finish.
        if (now > state.closingSince && (state.streams.size === 0 || now - state.closingSince > requestTimeoutMs)) session.destroy();
        continue;
      }
      if (state.streams.size > 0) continue;
      state.idleSince ??= now;
      const limit = state.served ? keepAliveTimeoutMs : requestTimeoutMs;
      if (now - state.idleSince > limit) this.#goAway(session, state, now);
    }
  }

  #timeOut(stream: ServerHttp2Stream): void {
    const reset = (): void => {
      if (!stream.closed) stream.close(h2.NGHTTP2_NO_ERROR);
    };
    if (stream.headersSent) {
      reset();
      return;
    }
    stream.respond({
      ':status': 408, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store',
      'content-length': Buffer.byteLength(this.#body),
    });
    stream.end(this.#body, reset);
  }

  #goAway(session: Http2Session, state: SessionState, now: number): void {
    if (state.closingSince !== undefined) return;
    state.closingSince = now;
    if (!session.closed) session.close();
  }
}
