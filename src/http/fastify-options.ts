// Fastify options shared by the public and admin listeners: our pino logger, our own one-line
// request log (Fastify's two lines per request are off), our request ids, a body limit.

import { LogController } from 'fastify';
import type { Logger } from 'pino';
import { nextRequestId } from './request-id.js';

export function fastifyOptions(logger: Logger, bodyLimit: number) {
  return {
    loggerInstance: logger,
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit,
    genReqId: nextRequestId,
    requestIdHeader: false as const,
    return503OnClosing: true,
    forceCloseConnections: 'idle' as const,
  };
}
