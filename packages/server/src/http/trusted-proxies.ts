// The source address behind a load balancer: M2M_AUTH_TRUST_PROXY as Fastify's trustProxy option,
// and the warning for a proxy nobody declared.

import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import type { TrustProxy } from '../config/trust-proxy.js';

/** What Fastify's `trustProxy` option gets for it. */
export type FastifyTrustProxy = false | string[] | ((address: string, hop: number) => boolean);

/**
 * Fastify 5 ignores X-Forwarded-For for a numeric trustProxy (it cannot check the peer), so a hop
 * count becomes proxy-addr's function form: the socket peer is hop 0, then X-Forwarded-For from the
 * right; the first untrusted one is the client.
 */
export function fastifyTrustProxy(trust: TrustProxy): FastifyTrustProxy {
  if (typeof trust !== 'number') return trust;
  const hops = trust;
  return hops === 0 ? false : (_address, hop) => hop < hops;
}

/**
 * With no trusted proxy: a function that logs once when a request carries X-Forwarded-For, the
 * sign of a proxy in front whose address every client then shares (and so shares one
 * failed-authentication allowance).
 */
export function forwardedForWarning(logger: Logger): (headers: IncomingHttpHeaders) => void {
  let warned = false;
  return (headers) => {
    if (warned || headers['x-forwarded-for'] === undefined) return;
    warned = true;
    logger.warn('requests carry X-Forwarded-For but M2M_AUTH_TRUST_PROXY is not set: limits and logs use the proxy\'s address, which every client behind it shares');
  };
}
