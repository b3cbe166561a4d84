// A Fastify plugin that authenticates every request of its context with an RFC 6750 Bearer token
// or an RFC 9449 DPoP token and its proof, and puts the verified claims on request.auth. Imports only types from fastify.

import type { FastifyPluginCallback } from 'fastify';
import { authenticate, type BearerAuthOptions } from './bearer.js';
import { TokenVerificationError } from './errors.js';
import { checkBindingOptions, requestBinding } from './request-binding.js';
import { rememberChallenge, sendWithFastify } from './respond.js';
import type { AccessTokenClaims, Verifier } from './verifier.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Claims of the verified access token: set by fastifyBearerAuth on every route it protects. */
    auth: AccessTokenClaims;
  }
}

export interface FastifyBearerAuthOptions extends BearerAuthOptions {
  /** Called when a token could not be judged (JWKS or introspection unreachable); default: request.log.error. */
  onUnavailable?: (err: TokenVerificationError) => void;
}

/**
 * `app.register(fastifyBearerAuth(verifier, { realm }))`. Like a fastify-plugin plugin it is not
 * encapsulated: the hook and the `auth` decoration apply to the context that registers it, so
 * register it inside the scope of the routes to protect and keep public routes outside.
 */
export function fastifyBearerAuth(verifier: Verifier, options: FastifyBearerAuthOptions = {}): FastifyPluginCallback {
  const { realm, onUnavailable } = options;
  const binding = checkBindingOptions(options);
  const plugin: FastifyPluginCallback = (instance, _opts, done) => {
    if (!instance.hasRequestDecorator('auth')) instance.decorateRequest('auth', null as unknown as AccessTokenClaims);
    instance.addHook('onRequest', async (request, reply) => {
      const outcome = await authenticate(
        verifier,
        {
          authorization: request.headers.authorization,
          dpop: request.headers.dpop,
          method: request.method,
          ...requestBinding(request.raw, request.url, binding),
        },
        realm,
      );
      rememberChallenge(request, outcome.ctx);
      if (outcome.ok) {
        request.auth = outcome.claims;
        return;
      }
      const { refusal } = outcome;
      if (refusal.status === 503 && refusal.cause instanceof TokenVerificationError) {
        if (onUnavailable) onUnavailable(refusal.cause);
        else request.log.error({ err: refusal.cause }, 'access token not verified: the authorization server is unavailable');
      }
      return sendWithFastify(reply, refusal);
    });
    done();
  };
  // fastify-plugin's marker: run in the registering context so the decoration and hook are visible there.
  return Object.assign(plugin, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: 'm2m-auth-bearer',
  });
}
