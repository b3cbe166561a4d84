// The error of a rejected access token, with a stable code per RFC 9068 §4 check.

export type TokenVerificationErrorCode =
  /** Not a compact JWS, or its header or payload is not JSON. */
  | 'malformed'
  /** `alg` is not in the allow-list (`none` and HMAC never are). */
  | 'alg_not_allowed'
  /** `typ` is not `at+jwt` (RFC 9068 §4). */
  | 'invalid_typ'
  /** No published key has the token's `kid`, even after refetching the JWKS. */
  | 'unknown_kid'
  | 'invalid_signature'
  | 'invalid_issuer'
  | 'invalid_audience'
  | 'expired'
  /** `nbf` or `iat` lies in the future. */
  | 'not_yet_valid'
  /** One of sub, client_id, iat, jti, exp is absent. */
  | 'missing_claim'
  /** A claim has the wrong type (a numeric `sub`, a non-string `scope`, ...). */
  | 'invalid_claim'
  /** Introspection (RFC 7662) answered `active: false`: revoked, or the client was disabled. */
  | 'inactive'
  /** The verifier could not fetch the discovery document or the JWKS: not the token's fault. */
  | 'jwks_unavailable'
  /** The introspection endpoint could not be asked: not the token's fault. */
  | 'introspection_unavailable'
  /** RFC 9449: the DPoP proof is missing, malformed, for another request or key, or replayed. */
  | 'invalid_dpop_proof'
  /** RFC 9449 §9: the proof lacks the resource's current nonce (the answer carries one). */
  | 'use_dpop_nonce'
  /** A DPoP-bound token (cnf.jkt) presented without DPoP, as a Bearer token: no downgrade. */
  | 'dpop_required'
  /** The DPoP scheme with a token that is not DPoP-bound. */
  | 'not_dpop_bound'
  /** RFC 8705 §3: a certificate-bound token (cnf x5t#S256) without the client certificate it is bound to. */
  | 'certificate_mismatch';

/** Codes for which the token was not judged, because a server could not be reached. */
const UNAVAILABLE: ReadonlySet<TokenVerificationErrorCode> = new Set(['jwks_unavailable', 'introspection_unavailable']);

export class TokenVerificationError extends Error {
  override readonly name = 'TokenVerificationError';
  readonly code: TokenVerificationErrorCode;

  constructor(code: TokenVerificationErrorCode, message: string, options: { cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }

  /** True when the token was not judged because the authorization server could not be reached. */
  get unavailable(): boolean {
    return UNAVAILABLE.has(this.code);
  }
}
