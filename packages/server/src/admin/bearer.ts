// RFC 6750 §2.1 bearer authentication of admin requests against the one admin token.

import { timingSafeEqual } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { EventBus } from '../observability/events.js';
import { sha256 } from '../ground/bytes.js';
import { ConfigError } from '../ground/errors.js';
import { MIN_ADMIN_TOKEN_LENGTH } from './admin-token.js';

export type BearerCheck = 'ok' | 'missing_token' | 'wrong_scheme' | 'invalid_token';

/**
 * A checker of Authorization headers. Both tokens are hashed before comparing, so the comparison
 * takes the same time whatever the presented token's length or content.
 */
export function bearerChecker(adminToken: string): (authorization: string | undefined) => BearerCheck {
  if (typeof adminToken !== 'string' || adminToken.length < MIN_ADMIN_TOKEN_LENGTH) {
    throw new ConfigError('ADMIN_TOKEN_INVALID', `The admin token must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters`);
  }
  const expected = sha256(adminToken);
  return (authorization) => {
    if (authorization === undefined || authorization.trim() === '') return 'missing_token';
    // RFC 7235 §2.1: the scheme is case-insensitive.
    const m = /^Bearer +([^\s]+) *$/i.exec(authorization);
    if (!m) return /^Bearer(\s|$)/i.test(authorization) ? 'invalid_token' : 'wrong_scheme';
    return timingSafeEqual(sha256(m[1]!), expected) ? 'ok' : 'invalid_token';
  };
}

const REALM = 'Bearer realm="m2m-auth admin"';

/**
 * The onRequest hook of the admin listener's protected routes: a request without the admin token
 * gets 401 with the RFC 6750 §3.1 challenge (no error code when no credentials were sent) and one
 * `admin.auth_failed` event. `missingMessage` says what needs the token.
 */
export function adminTokenHook(adminToken: string, events: EventBus | undefined, missingMessage: string) {
  const check = bearerChecker(adminToken);
  return async (req: FastifyRequest, reply: FastifyReply): Promise<void> => {
    const result = check(req.headers.authorization);
    if (result === 'ok') return;
    events?.emit('admin.auth_failed', { reason: result, ip: req.ip, requestId: String(req.id) });
    reply.header('www-authenticate', result === 'invalid_token' ? `${REALM}, error="invalid_token"` : REALM);
    await reply.code(401).header('cache-control', 'no-store').type('application/json; charset=utf-8').send({
      error: 'unauthorized',
      message: result === 'invalid_token' ? 'The admin token is not valid' : missingMessage,
    });
  };
}
