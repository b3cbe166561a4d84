// Draining a listener before it closes. From the moment draining begins, every HTTP/1.1 response
// carries `Connection: close` (RFC 9112 §9.6) and every HTTP/2 connection gets a GOAWAY (RFC 9113
// §6.8), so clients finish what they sent and take their next request to another instance. What
// is still open when the shutdown timeout runs out is closed.

import type { Server as NetServer, Socket } from 'node:net';
import { constants as h2, type Http2Session } from 'node:http2';
import type { FastifyInstance } from 'fastify';

/** The largest HTTP/2 stream id: a first GOAWAY with it announces the shutdown without refusing anything. */
const MAX_STREAM_ID = 2 ** 31 - 1;

export class ListenerDrain {
  readonly #sockets = new Set<Socket>();
  readonly #sessions = new Set<Http2Session>();
  #draining = false;

  /**
   * Tracks the app's connections (a listener call per connection) and adds an onSend hook that
   * costs a request one boolean check until draining begins.
   */
  constructor(app: FastifyInstance) {
    const server = app.server as unknown as NetServer;
    // At send time, not at arrival, so requests already in flight when draining began close too.
    app.addHook('onSend', (request, reply, payload, done) => {
      if (this.#draining && request.raw.httpVersionMajor === 1) reply.header('connection', 'close');
      done(null, payload);
    });
    server.on('connection', (socket: Socket) => {
      this.#sockets.add(socket);
      socket.once('close', () => this.#sockets.delete(socket));
    });
    server.on('session', (session: Http2Session) => {
      this.#sessions.add(session);
      session.once('close', () => this.#sessions.delete(session));
      // A connection opened while draining serves the request it was opened for, then goes away.
      if (this.#draining) session.once('stream', () => this.#goAway(session));
    });
  }

  get draining(): boolean {
    return this.#draining;
  }

  /** Open connections (TCP, including those carrying HTTP/2 sessions). */
  get connections(): number {
    return this.#sockets.size;
  }

  /**
   * Tells clients to move on while the listener keeps serving: HTTP/1.1 responses from now on
   * close their connection, and HTTP/2 clients get a GOAWAY that refuses no stream they sent.
   */
  begin(): void {
    if (this.#draining) return;
    this.#draining = true;
    for (const session of this.#sessions) this.#goAway(session);
  }

  /**
   * Ends HTTP/2 sessions for good (streams already open finish), for when the listener closes:
   * Node's server.close() waits for open sessions but does not end them.
   */
  closeSessions(): void {
    for (const session of this.#sessions) if (!session.closed) session.close();
  }

  /** Closes every connection still open, in-flight requests or not; returns how many. */
  destroyAll(): number {
    const n = this.#sockets.size;
    for (const session of this.#sessions) session.destroy();
    for (const socket of this.#sockets) socket.destroy();
    return n;
  }

  #goAway(session: Http2Session): void {
    if (session.closed || session.destroyed) return;
    // RFC 9113 §6.8: a GOAWAY with the largest stream id first, so streams the client sent
    // before seeing it are still served; close() sends the final GOAWAY once they are done.
    session.goaway(h2.NGHTTP2_NO_ERROR, MAX_STREAM_ID);
  }
}
