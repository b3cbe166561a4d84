// Fastify options shared by the public and admin listeners: our pino logger, our own one-line
// request log (Fastify's two lines per request are off), our request ids, a body limit.

import { LogController } from 'fastify';
import type { Logger } from 'pino';
import { nextRequestId } from './request-id.js';

export function fastifyOptions(logger: Logger, bodyLimit: number, { requestLoggers = true } = {}) {
  // Fastify gives every request a child logger (about 10 µs with our redaction); the public
  // listener logs through the root logger with the request id instead (`requestLoggers: false`).
  const logging = requestLoggers
    ? { loggerInstance: logger, logController: new LogController({ disableRequestLogging: true }) }
    : { logger: false as const };
  return {
    ...logging,
    bodyLimit,
    genReqId: nextRequestId,
    requestIdHeader: false as const,
    // A request that reaches a closing listener on a connection opened earlier is served (with
    // `Connection: close`), not refused: the shutdown drains (src/http/drain.ts) and storage stays
    // open until the listeners have closed.
    return503OnClosing: false,
    forceCloseConnections: 'idle' as const,
  };
}
