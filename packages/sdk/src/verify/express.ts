// An Express middleware that authenticates a request with an RFC 6750 Bearer token (or an RFC 9449
// DPoP token and its proof) and puts the verified claims on req.auth. Written against express's types; imports nothing of it at runtime.

import type { RequestHandler } from 'express';
import { authenticate, type BearerAuthOptions } from './bearer.js';
import { TokenVerificationError } from './errors.js';
import { checkBindingOptions, requestBinding } from './request-binding.js';
import { rememberChallenge, sendWithNode } from './respond.js';
import type { AccessTokenClaims, Verifier } from './verifier.js';

declare global {
  namespace Express {
    interface Request {
      /** Claims of the verified access token: set by expressBearerAuth. */
      auth?: AccessTokenClaims;
    }
  }
}

export interface ExpressBearerAuthOptions extends BearerAuthOptions {
  /** Called when a token could not be judged (JWKS or introspection unreachable). */
  onUnavailable?: (err: TokenVerificationError) => void;
}

export function expressBearerAuth(verifier: Verifier, options: ExpressBearerAuthOptions = {}): RequestHandler {
  const { realm, onUnavailable } = options;
  const binding = checkBindingOptions(options);
  return (req, res, next) => {
    const request = {
      authorization: req.headers.authorization,
      dpop: req.headers.dpop,
      method: req.method,
      // originalUrl: a router mounted on a path strips it from req.url; htu is the whole path.
      ...requestBinding(req, req.originalUrl, binding),
    };
    authenticate(verifier, request, realm).then((outcome) => {
      rememberChallenge(req, outcome.ctx);
      if (outcome.ok) {
        req.auth = outcome.claims;
        next();
        return;
      }
      const { refusal } = outcome;
      if (refusal.status === 503 && refusal.cause instanceof TokenVerificationError) onUnavailable?.(refusal.cause);
      sendWithNode(res, refusal);
    }, next);
  };
}
