// RFC 6750 §3.1 insufficient_scope: a route guard that works as a Fastify preHandler and as an
// Express middleware, run after fastifyBearerAuth / expressBearerAuth.

import type { ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import type { preHandlerHookHandler } from 'fastify';
import { SdkOptionsError } from '../shared/errors.js';
import { hasScopes, refusals, type Refusal } from './bearer.js';
import { challengeOf, isFastifyReply, sendWithFastify, sendWithNode } from './respond.js';
import type { AccessTokenClaims } from './verifier.js';

/** Usable as `{ preHandler: guard }` in Fastify and as `app.get(path, guard, handler)` in Express. */
export type ScopeGuard = preHandlerHookHandler & RequestHandler;

/** Lets the request through when its token grants every one of `scopes`; 403 otherwise. */
export function requireScope(...scopes: string[]): ScopeGuard {
  if (scopes.length === 0 || scopes.some((s) => typeof s !== 'string' || !/^[\x21\x23-\x5B\x5D-\x7E]+$/.test(s))) {
    throw new SdkOptionsError('requireScope needs one or more scope tokens (RFC 6749 §3.3)');
  }
  const required = Object.freeze([...scopes]);
  function guard(request: { auth?: AccessTokenClaims | null }, reply: unknown, next: (err?: unknown) => void): void {
    const claims = request.auth;
    const ctx = challengeOf(request);
    let refusal: Refusal | undefined;
    // Without verified claims the bearer hook did not run on this route: refuse, never allow.
    if (claims === undefined || claims === null) refusal = refusals.missing(ctx);
    else if (!hasScopes(claims, required)) refusal = refusals.insufficientScope(ctx, required);
    if (refusal === undefined) {
      next();
      return;
    }
    // A Fastify callback-style hook that answered does not call done().
    if (isFastifyReply(reply)) void sendWithFastify(reply, refusal);
    else sendWithNode(reply as ServerResponse, refusal);
  }
  return guard as unknown as ScopeGuard;
}
