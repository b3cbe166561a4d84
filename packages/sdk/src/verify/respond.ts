// Writing a Refusal with Fastify's reply or with a Node.js response (which Express's extends), and
// remembering the realm of a request for the scope checks that come after authentication.

import type { ServerResponse } from 'node:http';
import type { FastifyReply } from 'fastify';
import type { Refusal } from './bearer.js';

const realms = new WeakMap<object, string | undefined>();

export function rememberRealm(request: object, realm: string | undefined): void {
  realms.set(request, realm);
}

export function realmOf(request: object): string | undefined {
  return realms.get(request);
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
