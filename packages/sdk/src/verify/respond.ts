// Writing a Refusal with Fastify's reply or with a Node.js response (which Express's extends), and
// remembering the realm and scheme of a request for the scope checks that come after authentication.

import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import type { ChallengeContext, Refusal } from './bearer.js';

const contexts = new WeakMap<object, ChallengeContext>();

/** The realm and the scheme of a request, so a later scope refusal challenges as authentication did. */
export function rememberChallenge(request: object, ctx: ChallengeContext): void {
  contexts.set(request, ctx);
}

export function challengeOf(request: object): ChallengeContext | undefined {
  return contexts.get(request);
}

export function isFastifyReply(reply: unknown): reply is FastifyReply {
  return typeof reply === 'object' && reply !== null && 'raw' in reply && typeof (reply as FastifyReply).code === 'function';
}

export function sendWithFastify(reply: FastifyReply, refusal: Refusal): FastifyReply {
  reply.code(refusal.status).headers(refusal.headers).header('cache-control', 'no-store');
  return refusal.body === undefined ? reply.send() : reply.send(refusal.body);
}

export function sendWithNode(res: ServerResponse, refusal: Refusal): void {
  res.statusCode = refusal.status;
  for (const [name, value] of Object.entries(refusal.headers)) res.setHeader(name, value);
  res.setHeader('cache-control', 'no-store');
  if (refusal.body === undefined) {
    res.end();
    return;
  }
  const body = JSON.stringify(refusal.body);
  res.setHeader('content-type', 'application/json; charset=utf-8');
  res.setHeader('content-length', Buffer.byteLength(body));
  res.end(body);
}
