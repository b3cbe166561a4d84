// An Express middleware that authenticates a request with an RFC 6750 Bearer token and puts the
// verified claims on req.auth. Written against express's types; imports nothing of it at runtime.

import type { RequestHandler } from 'express';
import { authenticate, type BearerAuthOptions } from './bearer.js';
import { TokenVerificationError } from './errors.js';
import { rememberRealm, sendWithNode } from './respond.js';
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
  return (req, res, next) => {
    rememberRealm(req, realm);
    authenticate(verifier, req.headers.authorization, realm).then((outcome) => {
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
