// The public listener: OAuth endpoints, discovery, JWKS and health, wired into Fastify. The
// protocol lives in src/oauth; this file turns HTTP requests into OAuthRequests, hands each to its
// endpoint's chain with the steps of its connection, writes the answers in batches per event-loop
// turn (src/http/batch.ts), and writes the request log line.

import type { TLSSocket } from 'node:tls';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { errorBody, OAuthError } from '../ground/errors.js';
import { JSON_NO_STORE, type OAuthRequest, type OAuthResponse } from '../oauth/request/context.js';
import type { EndpointAnswer } from '../oauth/respond.js';
import type { Steps } from '../oauth/steps.js';
import { ENDPOINT_PATHS } from '../oauth/discovery/metadata.js';
import { asUnavailable } from '../oauth/unavailable.js';
import { fastifyOptions } from './fastify-options.js';
import { forwardedForWarning, type FastifyTrustProxy } from './trusted-proxies.js';
import { TRACING_OFF, type Tracing } from '../observability/tracing.js';
import { secureServerOptions, type TlsCredentials } from './tls.js';
import { CLIENT_CERT_HEADER, NO_CERTIFICATE, parseClientCertHeader, PeerCertificates, untrustedClientCertWarning, type PresentedCertificate } from './client-cert.js';
import { limitListener, type ConnectionLimits } from './connections.js';
import { afterReads, afterWrites, beforeWrites, connectionAccepted } from './batch.js';
import { infoLineWriter } from '../observability/logger.js';
import { DEFAULT_LOG_SAFETY, type LogSafety } from '../observability/log-safety.js';

/** An endpoint of the core: a chain of steps that never throws (src/oauth). */
export interface OAuthEndpoint {
  handle(req: OAuthRequest, steps: Steps): Promise<EndpointAnswer>;
}

export interface PublicAppDeps {
  logger: Logger;
  /** Bounds and masks what a client sent before it reaches a log line; patterns only when absent. */
  logSafety?: LogSafety;
  bodyLimit: number;
  token: OAuthEndpoint;
  introspection: OAuthEndpoint;
  revocation: OAuthEndpoint;
  /** The steps of a connection (with what it remembers between its requests), or the plain ones when there is none. */
  stepsFor: (connection: object | undefined) => Steps;
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
  /**
   * Where client certificates come from (RFC 8705): `tls`, the mutual-TLS listener, which asks
   * every client for one (`tls` must be set; `clientCa`, PEM, names the CAs it suggests); `header`,
   * the RFC 9440 Client-Cert header, from the peers `trusted` says are proxies. None when absent.
   */
  clientCertificates?: { from: 'tls'; clientCa?: Buffer } | { from: 'header'; trusted: (address: string | undefined) => boolean };
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

/**
 * One object per client connection: the socket for HTTP/1.1, the session for HTTP/2 (whose
 * request.raw.socket is a new proxy for every stream).
 */
function connectionOf(request: FastifyRequest): object | undefined {
  const raw = request.raw as { stream?: { session?: object }; socket?: object };
  return raw.stream?.session ?? raw.socket;
}

function toOAuthRequest(request: FastifyRequest, certificate: PresentedCertificate): OAuthRequest {
  const body = request.body;
  const req: OAuthRequest = {
    contentType: request.headers['content-type'],
    body: Buffer.isBuffer(body) ? body : undefined,
    authorization: request.headers.authorization,
    dpop: request.headers.dpop,
    ip: request.ip,
    requestId: request.id,
  };
  if (certificate.clientCertificate !== undefined) req.clientCertificate = certificate.clientCertificate;
  if (certificate.clientCertificateProblem !== undefined) req.clientCertificateProblem = certificate.clientCertificateProblem;
  return req;
}

/** The members of a request line (docs/operations.md, "Logs"). */
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
  const safety = deps.logSafety ?? DEFAULT_LOG_SAFETY;
  const options = { ...fastifyOptions(deps.logger, deps.bodyLimit, { requestLoggers: false }), trustProxy: deps.trustProxy ?? false };
  const warnForwarded = deps.trustProxy ? undefined : forwardedForWarning(deps.logger);
  const plain = () => Fastify(options);
  // With TLS: HTTP/2 and HTTP/1.1 on one port. The routes below are the same for both.
  const { requestTimeoutMs, keepAliveTimeoutMs } = deps.connections;
  const certs = deps.clientCertificates;
  const mutual = certs?.from === 'tls' ? { clientCa: certs.clientCa } : undefined;
  const app = deps.tls
    ? (Fastify({ ...options, ...secureServerOptions(deps.tls, requestTimeoutMs, mutual), http2SessionTimeout: keepAliveTimeoutMs }) as unknown as ReturnType<typeof plain>)
    : plain();
  const peers = new PeerCertificates();
  const warnUntrustedCert = untrustedClientCertWarning(log);
  /** The request's client certificate: the TLS peer's on the mTLS listener, a trusted proxy's Client-Cert header on the public one. */
  const certificateOf = (request: FastifyRequest): PresentedCertificate => {
    if (certs === undefined) return NO_CERTIFICATE;
    if (certs.from === 'tls') return peers.of(connectionOf(request), request.raw.socket as unknown as TLSSocket | undefined);
    const header = request.headers[CLIENT_CERT_HEADER];
    if (header === undefined) return NO_CERTIFICATE;
    const peer = request.raw.socket?.remoteAddress;
    if (!certs.trusted(peer)) {
      warnUntrustedCert(peer);
      return NO_CERTIFICATE;
    }
    return parseClientCertHeader(header);
  };
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

  /** What went wrong in an answered request, in the log: 503s as warnings, unexpected errors as errors. */
  const logError = (request: FastifyRequest, err: unknown): void => {
    if (err instanceof OAuthError) {
      // 503 only: a 429 (over a rate limit) is the client's doing, and a flood of them is no news.
      // A detail may echo what the client sent (a scope, a resource): made safe for the line.
      if (err.error === 'temporarily_unavailable' && err.status === 503) log.warn({ reqId: request.id, detail: err.detail && safety.value(err.detail) }, 'temporarily unavailable');
      else if (err.detail && log.isLevelEnabled('debug')) log.debug({ reqId: request.id, detail: safety.value(err.detail) }, 'oauth error detail');
    } else {
      log.error({ reqId: request.id, err }, 'unexpected error');
    }
  };

  const endpoint = (handler: OAuthEndpoint) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      warnForwarded?.(request.headers);
      const req = toOAuthRequest(request, certificateOf(request));
      const steps = deps.stepsFor(connectionOf(request));
      await afterReads();
      const answer = await handler.handle(req, steps);
      request.oauthClientId = answer.clientId;
      request.oauthOutcome = answer.outcome;
      request.oauthGrantType = answer.grantType;
      if (answer.error !== undefined) logError(request, answer.error);
      const writes = beforeWrites();
      if (writes) await writes;
      return send(reply, answer.response);
    };

  const methodNotAllowed = async (_req: FastifyRequest, reply: FastifyReply) =>
    sendError(reply.header('allow', 'POST'), new OAuthError('invalid_request', 'Use POST.', { status: 405 }));
  const otherMethods = ['GET', 'PUT', 'DELETE', 'PATCH'] as const;

  app.post(ENDPOINT_PATHS.token, tracing.endpoint('token', ENDPOINT_PATHS.token, endpoint(deps.token)));
  app.post(ENDPOINT_PATHS.introspection, tracing.endpoint('introspection', ENDPOINT_PATHS.introspection, endpoint(deps.introspection)));
  app.post(ENDPOINT_PATHS.revocation, tracing.endpoint('revocation', ENDPOINT_PATHS.revocation, endpoint(deps.revocation)));
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
        const detail = (unavailable as OAuthError).detail;
        log.warn({ reqId: request.id, detail: detail && safety.value(detail) }, 'temporarily unavailable');
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
      // What a client may choose (an HTTP/2 method, an address from X-Forwarded-For when every
      // proxy is trusted, a client_id of our shape as sent) is bounded and masked; path is the
      // route's pattern, outcome an error code, reqId ours.
      const clientId = request.oauthClientId;
      const line: RequestLine = {
        reqId: request.id,
        method: safety.value(request.method),
        path: request.routeOptions.url ?? 'unmatched',
        status: reply.statusCode,
        client_id: clientId === undefined ? undefined : safety.value(clientId),
        outcome: request.oauthOutcome,
        ms: Math.round(reply.elapsedTime * 1000) / 1000,
        ip: safety.value(request.ip),
      };
      if (writeRequestLine) afterWrites(() => writeRequestLine(requestLineMembers(line), line));
      else afterWrites(() => log.info(line, 'request'));
    }
    done();
  });

  return app as unknown as FastifyInstance;
}
