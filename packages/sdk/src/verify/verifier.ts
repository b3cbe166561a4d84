// RFC 9068 §4: validating JWT access tokens at a resource server, with the issuer's keys found
// through RFC 8414 discovery, and optionally RFC 7662 introspection for revocation; tokens bound
// to a key (RFC 9449 DPoP, cnf.jkt) or a certificate (RFC 8705, cnf x5t#S256) only with their proof.

import { createHash } from 'node:crypto';
import {
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  errors as joseErrors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import { checkIssuer, endpoint, fetchMetadata, type AuthorizationServerMetadata, type FetchLike } from '../shared/discovery.js';
import { SdkOptionsError } from '../shared/errors.js';
import { TokenVerificationError, type TokenVerificationErrorCode } from './errors.js';
import { IntrospectionClient, type IntrospectionOptions } from './introspection.js';
import { createProofChecker, type DPoPVerifierOptions } from './dpop-proof.js';
import { htuOf } from '../shared/dpop.js';

/** Asymmetric JWS algorithms a verifier may allow; `none` and HS* are not among them. */
export const VERIFIER_ALGORITHMS = [
  'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512',
] as const;
export type VerifierAlgorithm = (typeof VERIFIER_ALGORITHMS)[number];

export const DEFAULT_ALGORITHMS: readonly VerifierAlgorithm[] = Object.freeze(['ES256', 'EdDSA', 'PS256', 'RS256']);

export interface VerifierOptions {
  /** The issuer identifier, exactly as in the tokens' `iss` and the server's metadata. */
  issuer: string;
  /** This API's identifier(s): a token must name one of them in `aud`. */
  audience: string | readonly string[];
  /** Accepted `alg` values (default ES256, EdDSA, PS256, RS256). */
  algorithms?: readonly VerifierAlgorithm[];
  /** Seconds of clock difference tolerated for exp, nbf and iat (default 5). */
  clockTolerance?: number;
  /** Ask the server about every token (cached for cacheTtlMs), so revocation takes effect. */
  introspection?: IntrospectionOptions;
  jwks?: {
    /** Least time between two JWKS fetches caused by unknown kids (default 10000 ms). */
    cooldownMs?: number;
    /** Age after which the cached JWKS is refetched before use (default 600000 ms). */
    cacheMaxAgeMs?: number;
    /** Timeout of one JWKS fetch (default 5000 ms). */
    timeoutMs?: number;
  };
  /** The fetch used for discovery, the JWKS and introspection (default globalThis.fetch). */
  fetch?: FetchLike;
  /**
   * DPoP proof checks (RFC 9449). DPoP-bound tokens are checked with the defaults without this;
   * giving it also advertises DPoP (`DPoP algs=...`) in the challenge to a request without a token.
   */
  dpop?: DPoPVerifierOptions;
}

/**
 * How a token arrived, for the binding checks: the Authorization scheme, the request's DPoP
 * header, method and absolute URL, and the DER of the TLS client certificate. The middleware
 * fills it in; without it a token counts as a Bearer presentation with no certificate.
 */
export interface TokenPresentation {
  scheme: 'Bearer' | 'DPoP';
  /** The DPoP header (RFC 9449 §4.1). */
  dpop?: string | undefined;
  method?: string;
  /** The request's URL as the client addressed it (scheme, host, path; a query is ignored). */
  url?: string;
  /** The client certificate of the request's TLS connection (DER), as req.socket.getPeerCertificate().raw. */
  clientCertificate?: Uint8Array | undefined;
}

/** RFC 7800 confirmation of a bound token. */
export interface Confirmation {
  /** RFC 9449 §6: the SHA-256 JWK thumbprint of the DPoP key. */
  jkt?: string;
  /** RFC 8705 §3.1: the SHA-256 thumbprint of the client certificate. */
  'x5t#S256'?: string;
}

/** The claims of a verified access token (RFC 9068 §2.2). */
export interface AccessTokenClaims {
  iss: string;
  /** The client the token was issued to, for client credentials tokens (= client_id). */
  sub: string;
  client_id: string;
  /** Always an array, whether the token had one audience or several. */
  aud: string[];
  /** The granted scopes, split; [] when the token has none. */
  scope: string[];
  exp: number;
  iat: number;
  jti: string;
  /** Present on sender-constrained tokens, already checked against the request. */
  cnf?: Confirmation;
  /** The whole payload as received. */
  raw: Readonly<JWTPayload>;
}

export interface Verifier {
  readonly issuer: string;
  readonly audience: readonly string[];
  /**
   * The claims of a valid, active token; rejects with TokenVerificationError otherwise. A bound
   * token is valid only with a `presentation` that proves its key or certificate.
   */
  verify(token: string, presentation?: TokenPresentation): Promise<AccessTokenClaims>;
  /** What the middleware needs to answer DPoP requests (RFC 9449 §7.1, §9). */
  readonly dpop?: {
    readonly algorithms: readonly string[];
    /** Whether challenges advertise DPoP to requests without a token (the `dpop` option was given). */
    readonly advertised: boolean;
    /** The resource's current nonce, when nonces are on. */
    nonce(): string | undefined;
  };
}

/** RFC 9068 §2.2: what every access token carries besides iss and aud. */
const REQUIRED_CLAIMS = ['sub', 'client_id', 'iat', 'jti', 'exp'] as const;
/** Longer tokens are refused before any decoding. */
const MAX_TOKEN_LENGTH = 16 * 1024;
const DISCOVERY_TIMEOUT_MS = 5_000;
/** After a failed discovery, verifications fail at once for this long instead of each retrying. */
const DISCOVERY_RETRY_MS = 1_000;

const PUBLIC_MESSAGES: Record<TokenVerificationErrorCode, string> = {
  malformed: 'The access token is malformed',
  alg_not_allowed: 'The access token is signed with an algorithm that is not allowed',
  invalid_typ: 'The token is not an access token',
  unknown_kid: 'The access token is signed with an unknown key',
  invalid_signature: 'The access token signature is invalid',
  invalid_issuer: 'The access token is from another issuer',
  invalid_audience: 'The access token is not meant for this resource',
  expired: 'The access token expired',
  not_yet_valid: 'The access token is not valid yet',
  missing_claim: 'The access token lacks a required claim',
  invalid_claim: 'The access token has an invalid claim',
  inactive: 'The access token is not active',
  invalid_dpop_proof: 'The DPoP proof is invalid',
  use_dpop_nonce: 'Resource server requires nonce in DPoP proof',
  dpop_required: 'The access token is DPoP-bound and needs the DPoP scheme with a proof',
  not_dpop_bound: 'The access token is not DPoP-bound',
  certificate_mismatch: 'The access token is bound to another client certificate',
  jwks_unavailable: 'The signing keys of the issuer cannot be fetched',
  introspection_unavailable: 'The introspection endpoint cannot be reached',
};

/** A short public sentence for a code, fit for error_description. */
export function describeVerificationError(code: TokenVerificationErrorCode): string {
  return PUBLIC_MESSAGES[code];
}

function fail(code: TokenVerificationErrorCode, detail?: string, cause?: unknown): never {
  throw new TokenVerificationError(code, detail === undefined ? PUBLIC_MESSAGES[code] : `${PUBLIC_MESSAGES[code]}: ${detail}`, { cause });
}

/** RFC 9068 §4: typ is "at+jwt"; media type names are case-insensitive and may carry "application/". */
function isAccessTokenTyp(typ: unknown): boolean {
  if (typeof typ !== 'string') return false;
  const t = typ.toLowerCase();
  return t === 'at+jwt' || t === 'application/at+jwt';
}

function joseCode(err: unknown): TokenVerificationErrorCode | undefined {
  if (err instanceof joseErrors.JWTExpired) return 'expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return 'missing_claim';
    if (err.reason === 'invalid') return 'invalid_claim';
    switch (err.claim) {
      case 'typ': return 'invalid_typ';
      case 'iss': return 'invalid_issuer';
      case 'aud': return 'invalid_audience';
      case 'nbf':
      case 'iat': return 'not_yet_valid';
      default: return 'invalid_claim';
    }
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'invalid_signature';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'alg_not_allowed';
  if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) return 'unknown_kid';
  if (err instanceof joseErrors.JWSInvalid || err instanceof joseErrors.JWTInvalid || err instanceof joseErrors.JOSENotSupported) {
    return 'malformed';
  }
  return undefined;
}

function claimsOf(payload: JWTPayload, nowS: number, toleranceS: number): AccessTokenClaims {
  const { iss, sub, client_id: clientId, aud, scope, exp, iat, jti, cnf } = payload as Record<string, unknown>;
  for (const [name, value] of [['iss', iss], ['sub', sub], ['client_id', clientId], ['jti', jti]] as const) {
    if (typeof value !== 'string' || value === '') fail('invalid_claim', `${name} is not a non-empty string`);
  }
  if (typeof exp !== 'number' || typeof iat !== 'number') fail('invalid_claim', 'exp and iat must be numbers');
  if (iat > nowS + toleranceS) fail('not_yet_valid', 'iat is in the future');
  if (scope !== undefined && typeof scope !== 'string') fail('invalid_claim', 'scope is not a string');
  const audience = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? [...(aud as unknown[])] : [];
  if (audience.some((a) => typeof a !== 'string')) fail('invalid_claim', 'aud is not a string or an array of strings');
  let confirmation: Confirmation | undefined;
  if (cnf !== undefined) {
    if (typeof cnf !== 'object' || cnf === null || Array.isArray(cnf)) fail('invalid_claim', 'cnf is not an object');
    const { jkt, 'x5t#S256': x5t, ...others } = cnf as Record<string, unknown>;
    // A binding this verifier cannot check must not be ignored: the token would work for anyone.
    if (Object.keys(others).length > 0) fail('invalid_claim', `unsupported confirmation method ${Object.keys(others).join(', ')}`);
    if (jkt === undefined && x5t === undefined) fail('invalid_claim', 'cnf names no key');
    if ((jkt !== undefined && (typeof jkt !== 'string' || jkt === '')) || (x5t !== undefined && (typeof x5t !== 'string' || x5t === ''))) {
      fail('invalid_claim', 'cnf.jkt and cnf.x5t#S256 must be non-empty strings');
    }
    confirmation = { ...(jkt !== undefined && { jkt: jkt as string }), ...(x5t !== undefined && { 'x5t#S256': x5t as string }) };
  }
  return {
    iss: iss as string,
    sub: sub as string,
    client_id: clientId as string,
    aud: audience as string[],
    scope: typeof scope === 'string' ? scope.split(' ').filter((s) => s !== '') : [],
    exp,
    iat,
    jti: jti as string,
    ...(confirmation !== undefined && { cnf: confirmation }),
    raw: Object.freeze({ ...payload }),
  };
}

function checkOptions(options: VerifierOptions): { audience: string[]; algorithms: VerifierAlgorithm[]; toleranceS: number } {
  if (typeof options !== 'object' || options === null) throw new SdkOptionsError('createVerifier needs an options object');
  const audience = typeof options.audience === 'string' ? [options.audience] : [...(options.audience ?? [])];
  if (audience.length === 0 || audience.some((a) => typeof a !== 'string' || a === '')) {
    throw new SdkOptionsError('audience must name this API: a non-empty string or array of them');
  }
  const algorithms = [...(options.algorithms ?? DEFAULT_ALGORITHMS)];
  if (algorithms.length === 0) throw new SdkOptionsError('algorithms must not be empty');
  for (const alg of algorithms) {
    // RFC 8725 §3.1-3.2: `none` is never acceptable, and an HMAC algorithm would let anyone who
    // holds the public key (everyone) forge tokens.
    if (!(VERIFIER_ALGORITHMS as readonly string[]).includes(alg)) {
      throw new SdkOptionsError(`algorithms may only contain the asymmetric algorithms ${VERIFIER_ALGORITHMS.join(', ')}; got ${JSON.stringify(alg)}`);
    }
  }
  const toleranceS = options.clockTolerance ?? 5;
  if (!(toleranceS >= 0 && Number.isFinite(toleranceS))) throw new SdkOptionsError('clockTolerance must be a number of seconds >= 0');
  const intro = options.introspection;
  if (intro !== undefined) {
    if (typeof intro.clientId !== 'string' || intro.clientId === '' || typeof intro.clientSecret !== 'string' || intro.clientSecret === '') {
      throw new SdkOptionsError('introspection needs the API\'s clientId and clientSecret');
    }
    if (intro.cacheTtlMs !== undefined && !(intro.cacheTtlMs >= 0)) throw new SdkOptionsError('introspection.cacheTtlMs must be >= 0');
  }
  return { audience, algorithms, toleranceS };
}

export function createVerifier(options: VerifierOptions): Verifier {
  const { audience, algorithms, toleranceS } = checkOptions(options);
  const issuer = checkIssuer(options.issuer);
  const fetchImpl: FetchLike = options.fetch ?? globalThis.fetch;
  const allowed = new Set<string>(algorithms);
  const introspection = options.introspection === undefined ? undefined : new IntrospectionClient(options.introspection, fetchImpl);
  const proofs = createProofChecker(options.dpop ?? {});

  interface Resolved { getKey: JWTVerifyGetKey; introspectionEndpoint: string | undefined }
  let resolved: Promise<Resolved> | undefined;
  let failedAt = -Infinity;

  function build(metadata: AuthorizationServerMetadata): Resolved {
    const remote = createRemoteJWKSet(new URL(endpoint(metadata, 'jwks_uri')), {
      cooldownDuration: options.jwks?.cooldownMs ?? 10_000,
      cacheMaxAge: options.jwks?.cacheMaxAgeMs ?? 600_000,
      timeoutDuration: options.jwks?.timeoutMs ?? 5_000,
      [customFetch]: fetchImpl,
    });
    const getKey: JWTVerifyGetKey = async (header, token) => {
      try {
        return await remote(header, token);
      } catch (err) {
        if (err instanceof joseErrors.JWKSNoMatchingKey || err instanceof joseErrors.JWKSMultipleMatchingKeys) throw err;
        return fail('jwks_unavailable', (err as Error).message, err);
      }
    };
    return {
      getKey,
      introspectionEndpoint: introspection === undefined ? undefined : endpoint(metadata, 'introspection_endpoint'),
    };
  }

  function resolve(): Promise<Resolved> {
    if (resolved === undefined && Date.now() - failedAt < DISCOVERY_RETRY_MS) {
      return Promise.reject(new TokenVerificationError('jwks_unavailable', `${PUBLIC_MESSAGES.jwks_unavailable}: discovery failed moments ago`));
    }
    resolved ??= fetchMetadata(issuer, fetchImpl, DISCOVERY_TIMEOUT_MS)
      .then(build)
      .catch((err: unknown) => {
        resolved = undefined;
        failedAt = Date.now();
        return fail('jwks_unavailable', `discovery failed: ${(err as Error).message}`, err);
      });
    return resolved;
  }

  /** RFC 9449 §7.1 and RFC 8705 §3: the token's binding, against how it was presented. */
  async function checkBinding(token: string, claims: AccessTokenClaims, presentation: TokenPresentation | undefined): Promise<void> {
    const scheme = presentation?.scheme ?? 'Bearer';
    const jkt = claims.cnf?.jkt;
    if (jkt === undefined) {
      if (scheme === 'DPoP') fail('not_dpop_bound');
    } else {
      // §7.2: a DPoP-bound token presented as a Bearer token is refused, never downgraded.
      if (scheme !== 'DPoP') fail('dpop_required');
      const proof = presentation?.dpop;
      if (proof === undefined || proof === '') fail('invalid_dpop_proof', 'no DPoP header');
      if (typeof presentation?.url !== 'string' || typeof presentation.method !== 'string') {
        throw new SdkOptionsError('verify() of a DPoP presentation needs the request\'s method and absolute url');
      }
      // A Host header that makes no URL (the middleware's default origin) is the request's fault.
      const htu = htuOf(presentation.url);
      if (htu === undefined) fail('invalid_dpop_proof', 'the request has no usable URL to compare htu with');
      await proofs.check(proof, { method: presentation.method.toUpperCase(), htu, accessToken: token, jkt }, toleranceS);
    }
    const x5t = claims.cnf?.['x5t#S256'];
    if (x5t !== undefined) {
      const cert = presentation?.clientCertificate;
      if (cert === undefined || cert.length === 0) fail('certificate_mismatch', 'no client certificate');
      if (createHash('sha256').update(cert).digest('base64url') !== x5t) fail('certificate_mismatch', 'another client certificate');
    }
  }

  async function verify(token: string, presentation?: TokenPresentation): Promise<AccessTokenClaims> {
    if (typeof token !== 'string' || token.length === 0 || token.length > MAX_TOKEN_LENGTH || token.split('.').length !== 3) {
      fail('malformed');
    }
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(token);
    } catch (err) {
      return fail('malformed', undefined, err);
    }
    // Checked before any key is looked up, so a token with a foreign alg never causes a JWKS fetch.
    if (typeof header.alg !== 'string' || !allowed.has(header.alg)) fail('alg_not_allowed', `alg ${JSON.stringify(header.alg)}`);
    if (!isAccessTokenTyp(header.typ)) fail('invalid_typ', `typ ${JSON.stringify(header.typ)}`);

    const { getKey, introspectionEndpoint } = await resolve();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, getKey, {
        issuer,
        audience,
        algorithms,
        clockTolerance: toleranceS,
        typ: 'at+jwt',
        requiredClaims: [...REQUIRED_CLAIMS],
      }));
    } catch (err) {
      if (err instanceof TokenVerificationError) throw err;
      const code = joseCode(err);
      if (code === undefined) throw err;
      return fail(code, (err as Error).message, err);
    }
    const claims = claimsOf(payload, Math.floor(Date.now() / 1000), toleranceS);
    await checkBinding(token, claims, presentation);
    if (introspection !== undefined && introspectionEndpoint !== undefined) {
      if (!(await introspection.isActive(introspectionEndpoint, token, claims.jti))) fail('inactive');
    }
    return claims;
  }

  const dpop = { algorithms: proofs.algorithms, advertised: options.dpop !== undefined, nonce: proofs.nonce };
  return { issuer, audience, verify, dpop };
}
