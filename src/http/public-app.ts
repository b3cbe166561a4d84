// The public listener: OAuth endpoints, discovery, JWKS and health, wired into Fastify. The
// protocol lives in src/oauth; this file turns HTTP requests into OAuthRequests and back, in
// batches per event-loop turn (src/http/batch.ts), and writes the request log line.

import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { errorBody, OAuthError } from '../oauth/errors.js';
import { param, parseForm, type FormParams } from '../oauth/request/form.js';
import { JSON_NO_STORE, type OAuthRequest, type OAuthResponse } from '../oauth/request/context.js';
import { errorClientId } from '../oauth/client-auth/authenticate.js';
import { ownCopy, sameBytes } from '../clients/secrets.js';
import { ENDPOINT_PATHS } from '../oauth/discovery/metadata.js';
import { asUnavailable } from '../cluster/availability.js';
import type { EventBus } from '../observability/events.js';
import { fastifyOptions } from './fastify-options.js';
import { forwardedForWarning, type FastifyTrustProxy } from '../ratelimit/trust-proxy.js';
import { TRACING_OFF, type Tracing } from '../observability/tracing.js';
import { secureServerOptions, type TlsCredentials } from './tls.js';
import { limitListener, type ConnectionLimits } from './connections.js';
import { afterReads, afterWrites, beforeWrites, connectionAccepted } from './batch.js';
import { infoLineWriter } from '../observability/logger.js';

export interface OAuthHandler {
  handle(req: OAuthRequest): Promise<{ response: OAuthResponse; clientId?: string }>;
}

export interface PublicAppDeps {
  logger: Logger;
  bodyLimit: number;
  token: OAuthHandler;
  introspection: OAuthHandler;
  revocation: OAuthHandler;
  events: EventBus;
  /** The metadata document as JSON (recomputed by the caller when clients change). */
  metadataJson: () => Promise<string>;
  jwksJson: () => string;
  ready: () => Promise<{ ok: boolean; checks: Record<string, boolean> }>;
  /** Proxies whose X-Forwarded-For gives request.ip (M2M_AUTH_TRUST_PROXY); none when absent. */
  trustProxy?: FastifyTrustProxy;
  /** Spans for the OAuth endpoints; off when absent. */
  tracing?: Tracing;
  /** TLS with HTTP/2 and HTTP/1.1 (ALPN); plain HTTP/1.1 when absent. */
  tls?: TlsCredentials;
  /** Request and keep-alive timeouts and the connection cap (src/http/connections.ts). */
  connections: ConnectionLimits;
}

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the OAuth handlers for the request log line. */
    oauthClientId?: string;
    oauthOutcome?: string;
    /** The grant_type of a token request, as parsed (for its span). */
    oauthGrantType?: string;
  }
}

const JSON_TYPE = 'application/json; charset=utf-8';
const FORM_TYPE = 'application/x-www-form-urlencoded';

function isForm(contentType: string | undefined): boolean {
  if (contentType === FORM_TYPE) return true;
  if (!contentType) return false;
  const semi = contentType.indexOf(';');
  const media = (semi === -1 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
  if (media !== FORM_TYPE) return false;
  // A charset other than UTF-8 would change what the bytes mean (RFC 6749 Appendix B).
  const charset = /charset\s*=\s*"?([^";\s]+)/i.exec(contentType)?.[1];
  return charset === undefined || charset.toLowerCase() === 'utf-8';
}

/** The last form body read on each connection, and its parse (read-only from then on). */
const lastForms = new WeakMap<object, { body: Buffer; params: FormParams }>();

/** Longest body remembered: a token request is a few hundred bytes; a connection holds no more. */
const MAX_REMEMBERED_BODY = 1024;

/** Parameters that carry a credential or a token: a body with one is not kept beyond its request. */
const CREDENTIAL_PARAMS = ['client_secret', 'client_assertion', 'token'] as const;

/**
 * The parameters of a form body. A client sends the same body on every request of a keep-alive
 * connection, so the last one of each connection is kept with its parse (when it is short and
 * carries no credential or token), and a body equal to it gets the same, unmodified params. The
 * comparison takes constant time (a new body may carry a secret). Without a connection, just the parse.
 */
function formParams(connection: object | undefined, body: Buffer): FormParams {
  if (connection === undefined) return parseForm(body);
  const last = lastForms.get(connection);
  if (last !== undefined && sameBytes(last.body, body)) return last.params;
  const params = parseForm(body);
  if (body.length <= MAX_REMEMBERED_BODY && !CREDENTIAL_PARAMS.some((name) => params.has(name))) {
    lastForms.set(connection, { body: ownCopy(body), params });
  } else if (last !== undefined) {
    lastForms.delete(connection);
  }
  return params;
}

/**
 * One object per client connection: the socket for HTTP/1.1, the session for HTTP/2 (whose
 * request.raw.socket is a new proxy for every stream).
 */
function connectionOf(request: FastifyRequest): object | undefined {
  const raw = request.raw as { stream?: { session?: object }; socket?: object };
  return raw.stream?.session ?? raw.socket;
}

function toOAuthRequest(request: FastifyRequest): OAuthRequest {
  if (!isForm(request.headers['content-type'])) {
    throw new OAuthError('invalid_request', 'The request body must be application/x-www-form-urlencoded (UTF-8).');
  }
  const body = request.body;
  const connection = connectionOf(request);
  return {
    params: Buffer.isBuffer(body) ? formParams(connection, body) : parseForm(''),
    authorization: request.headers.authorization,
    ip: request.ip,
    requestId: request.id,
    connection,
  };
}

/** The members of a request line (README, "Production notes": Logs). */
interface RequestLine {
  reqId: string;
  method: string;
  path: string;
  status: number;
  client_id: string | undefined;
  outcome: string | undefined;
  ms: number;
  ip: string;
}

const REQUEST_LINE_KEYS: readonly (keyof RequestLine)[] = ['reqId', 'method', 'path', 'status', 'client_id', 'outcome', 'ms', 'ip'];

/** Printable ASCII but `"` and `\`: a string of these is its own JSON, between quotes. */
const NEEDS_NO_ESCAPE = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** `s` as a JSON string; JSON.stringify only for the rare one that needs escaping. */
function jsonString(s: string): string {
  return NEEDS_NO_ESCAPE.test(s) ? `"${s}"` : JSON.stringify(s);
}

/** The JSON members of a request line, in the order pino would write them (see infoLineWriter). */
export function requestLineMembers(l: RequestLine): string {
  return `,"reqId":${jsonString(l.reqId)},"method":${jsonString(l.method)},"path":${jsonString(l.path)},"status":${l.status}`
    + (l.client_id === undefined ? '' : `,"client_id":${jsonString(l.client_id)}`)
    + (l.outcome === undefined ? '' : `,"outcome":${jsonString(l.outcome)}`)
    // pino writes null for a number that is not finite.
    + `,"ms":${Number.isFinite(l.ms) ? l.ms : null},"ip":${jsonString(l.ip)}`;
}

function send(reply: FastifyReply, r: OAuthResponse): FastifyReply {
  return reply.code(r.status).headers(r.headers).send(r.body);
}

function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  const { status, body, headers } = errorBody(err);
  return reply
    .code(status)
    .headers({ ...JSON_NO_STORE, ...headers })
    .send(JSON.stringify(body));
}

export function buildPublicApp(deps: PublicAppDeps): FastifyInstance {
  const log = deps.logger;
  const options = { ...fastifyOptions(deps.logger, deps.bodyLimit, { requestLoggers: false }), trustProxy: deps.trustProxy ?? false };
  const warnForwarded = deps.trustProxy ? undefined : forwardedForWarning(deps.logger);
  const plain = () => Fastify(options);
  // With TLS: HTTP/2 and HTTP/1.1 on one port. The routes below are the same for both.
  const { requestTimeoutMs, keepAliveTimeoutMs } = deps.connections;
  const app = deps.tls
    ? (Fastify({ ...options, ...secureServerOptions(deps.tls, requestTimeoutMs), http2SessionTimeout: keepAliveTimeoutMs }) as unknown as ReturnType<typeof plain>)
    : plain();
  limitListener(app as unknown as FastifyInstance, deps.connections, {
    logger: log, name: 'public', http2: deps.tls !== undefined,
    timeoutBody: JSON.stringify({ error: 'invalid_request', error_description: 'The request did not arrive within the request timeout.' }),
  });
  const tracing = deps.tracing ?? TRACING_OFF;

  // Only form bodies mean anything here; anything else is read as bytes so the endpoint can
  // answer with invalid_request instead of Fastify's generic 415. The form type is registered by
  // name too, with the same parser: Fastify remembers the parser of a named type by header, while
  // a header that only the catch-all matches is parsed again on every request (about 2 µs).
  app.removeAllContentTypeParsers();
  const asBuffer = (_req: FastifyRequest, body: Buffer, done: (err: null, body: Buffer) => void) => done(null, body);
  app.addContentTypeParser(FORM_TYPE, { parseAs: 'buffer' }, asBuffer);
  app.addContentTypeParser('*', { parseAs: 'buffer' }, asBuffer);

  const endpoint = (handler: OAuthHandler, kind: 'token' | 'introspection' | 'revocation') =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      let answer: () => FastifyReply;
      try {
        warnForwarded?.(request.headers);
        const oauthRequest = toOAuthRequest(request);
        if (kind === 'token') request.oauthGrantType = param(oauthRequest.params, 'grant_type');
        await afterReads();
        const { response, clientId } = await handler.handle(oauthRequest);
        request.oauthClientId = clientId;
        request.oauthOutcome = 'ok';
        answer = () => send(reply, response);
      } catch (caught) {
        // Storage that does not answer is a 503 temporarily_unavailable, not a 500 (and the new
        // error carries no client_id: the one of `caught`, if any, is the one to log).
        const err = asUnavailable(caught);
        const clientId = errorClientId(caught);
        request.oauthClientId = clientId;
        if (err instanceof OAuthError) {
          request.oauthOutcome = err.error;
          if (kind === 'token') {
            deps.events.emit('token.denied', {
              ...(clientId !== undefined && { clientId }), error: err.error,
              ...(err.detail !== undefined && { reason: err.detail }), ip: request.ip, requestId: request.id,
            });
          }
          // 503 only: a 429 (over a rate limit) is the client's doing, and a flood of them is no news.
          if (err.error === 'temporarily_unavailable' && err.status === 503) log.warn({ reqId: request.id, detail: err.detail }, 'temporarily unavailable');
          else if (err.detail) log.debug({ reqId: request.id, detail: err.detail }, 'oauth error detail');
        } else {
          request.oauthOutcome = 'server_error';
          log.error({ reqId: request.id, err }, 'unexpected error');
        }
        answer = () => sendError(reply, err);
      }
      const writes = beforeWrites();
      if (writes) await writes;
      return answer();
    };

  const methodNotAllowed = async (_req: FastifyRequest, reply: FastifyReply) =>
    sendError(reply.header('allow', 'POST'), new OAuthError('invalid_request', 'Use POST.', { status: 405 }));
  const otherMethods = ['GET', 'PUT', 'DELETE', 'PATCH'] as const;

  app.post(ENDPOINT_PATHS.token, tracing.endpoint('token', ENDPOINT_PATHS.token, endpoint(deps.token, 'token')));
  app.post(ENDPOINT_PATHS.introspection, tracing.endpoint('introspection', ENDPOINT_PATHS.introspection, endpoint(deps.introspection, 'introspection')));
  app.post(ENDPOINT_PATHS.revocation, tracing.endpoint('revocation', ENDPOINT_PATHS.revocation, endpoint(deps.revocation, 'revocation')));
  for (const path of [ENDPOINT_PATHS.token, ENDPOINT_PATHS.introspection, ENDPOINT_PATHS.revocation]) {
    app.route({ method: [...otherMethods], url: path, handler: methodNotAllowed });
  }

  const metadata = async (_req: FastifyRequest, reply: FastifyReply) =>
    reply.headers({ 'content-type': JSON_TYPE, 'cache-control': 'public, max-age=300' }).send(await deps.metadataJson());
  app.get(ENDPOINT_PATHS.metadata, metadata);
  app.get(ENDPOINT_PATHS.openidConfiguration, metadata);
  app.get(ENDPOINT_PATHS.jwks, async (_req, reply) =>
    reply.headers({ 'content-type': 'application/jwk-set+json; charset=utf-8', 'cache-control': 'public, max-age=300' }).send(deps.jwksJson()),
  );

  app.get('/healthz', async (_req, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const r = await deps.ready();
    return reply.code(r.ok ? 200 : 503).header('cache-control', 'no-store').send({ status: r.ok ? 'ready' : 'not_ready', checks: r.checks });
  });

  app.setNotFoundHandler(async (_req, reply) =>
    reply.code(404).header('content-type', JSON_TYPE).send(JSON.stringify({ error: 'not_found', error_description: 'No such endpoint.' })),
  );

  // Errors raised by Fastify itself (body too large, bad Content-Length, ...): a clear 4xx, never a 500.
  app.setErrorHandler(async (err: Error & { statusCode?: number; code?: string }, request, reply) => {
    const status = err.statusCode ?? 500;
    request.oauthOutcome = status === 413 ? 'request_too_large' : status < 500 ? 'invalid_request' : 'server_error';
    if (status >= 500) {
      // Discovery rebuilds its document from the database: 503 while that does not answer.
      const unavailable = asUnavailable(err);
      if (unavailable !== err) {
        request.oauthOutcome = 'temporarily_unavailable';
        log.warn({ reqId: request.id, detail: (unavailable as OAuthError).detail }, 'temporarily unavailable');
        return sendError(reply, unavailable);
      }
      log.error({ reqId: request.id, err }, 'unexpected error');
      return sendError(reply, err);
    }
    const description = status === 413 ? 'The request body is too large.' : 'The request is malformed.';
    return sendError(reply, new OAuthError('invalid_request', description, { status }));
  });

  app.server.on('connection', connectionAccepted);

  // One request line per request; a callback hook, so no promise per request. The line is
  // written after the rest of the batch's answers (src/http/batch.ts), with the values of now.
  const writeRequestLine = infoLineWriter(log, 'request', REQUEST_LINE_KEYS);
  app.addHook('onResponse', (request, reply, done) => {
    if (log.isLevelEnabled('info')) {
      const line: RequestLine = {
        reqId: request.id,
        method: request.method,
        path: request.routeOptions.url ?? 'unmatched',
        status: reply.statusCode,
        client_id: request.oauthClientId,
        outcome: request.oauthOutcome,
        ms: Math.round(reply.elapsedTime * 1000) / 1000,
        ip: request.ip,
      };
      if (writeRequestLine) afterWrites(() => writeRequestLine(requestLineMembers(line), line));
      else afterWrites(() => log.info(line, 'request'));
    }
    done();
  });

  return app as unknown as FastifyInstance;
}
