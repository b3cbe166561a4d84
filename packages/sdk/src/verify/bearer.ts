// RFC 6750 at a resource server, free of any HTTP framework: reading the Bearer credentials of the
// Authorization header (§2.1) and writing the WWW-Authenticate challenges of §3 for 401 and 403;
// and the same for the DPoP scheme of RFC 9449 (§7.1 credentials, §7.1 and §9 challenges).

import { TokenVerificationError } from './errors.js';
import type { RequestBinding, RequestBindingOptions } from './request-binding.js';
import { describeVerificationError, type AccessTokenClaims, type Verifier } from './verifier.js';

export interface BearerAuthOptions extends RequestBindingOptions {
  /** The realm named in challenges (RFC 6750 §3); none by default. */
  realm?: string;
}

export type Scheme = 'Bearer' | 'DPoP';

/** How to word the challenges of one request. */
export interface ChallengeContext {
  realm: string | undefined;
  /** The scheme the request used; Bearer when it sent none. */
  scheme: Scheme;
  /** `algs` of a DPoP challenge. */
  algs: readonly string[];
  /** Whether a request without credentials is also told about DPoP. */
  advertiseDPoP: boolean;
}

/** An answer the framework adapter writes as is. */
export interface Refusal {
  status: 400 | 401 | 403 | 503;
  headers: Record<string, string | string[]>;
  /** JSON body, or undefined for none. */
  body: Record<string, string> | undefined;
  /** What went wrong, for the adapter's log (never sent). */
  cause?: unknown;
}

export type AuthOutcome = { ok: true; claims: AccessTokenClaims } | { ok: false; refusal: Refusal };

const TOKEN68 = /^[A-Za-z0-9\-._~+/]+=*$/;

/** RFC 7230 quoted-string: backslash-escape `"` and `\`. */
function quoted(value: string): string {
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

/** RFC 6750 §3: error_description and scope use %x20-21 / %x23-5B / %x5D-7E only. */
function restricted(value: string): string {
  return `"${value.replace(/[^\x20-\x21\x23-\x5B\x5D-\x7E]/g, '')}"`;
}

export function challenge(
  params: { realm?: string | undefined; error?: string; error_description?: string; scope?: string; algs?: readonly string[] },
  scheme: Scheme = 'Bearer',
): string {
  const parts: string[] = [];
  if (params.realm !== undefined) parts.push(`realm=${quoted(params.realm)}`);
  if (params.error !== undefined) parts.push(`error=${restricted(params.error)}`);
  if (params.error_description !== undefined) parts.push(`error_description=${restricted(params.error_description)}`);
  if (params.scope !== undefined) parts.push(`scope=${restricted(params.scope)}`);
  // RFC 9449 §7.1: the DPoP challenge lists the proof algorithms the resource accepts.
  if (scheme === 'DPoP' && params.algs !== undefined && params.algs.length > 0) parts.push(`algs=${restricted(params.algs.join(' '))}`);
  return parts.length === 0 ? scheme : `${scheme} ${parts.join(', ')}`;
}

type Credentials = { kind: 'none' } | { kind: 'malformed'; scheme: Scheme } | { kind: 'token'; scheme: Scheme; token: string };

export function bearerCredentials(authorization: string | string[] | undefined): Credentials {
  const value = Array.isArray(authorization) ? authorization[0] : authorization;
  if (value === undefined) return { kind: 'none' };
  const match = /^([^\s]+)(?:[ ]+(.*))?$/.exec(value.trim());
  // RFC 7235 §2.1: the scheme is case-insensitive. Another scheme is not an attempt at all.
  const name = match?.[1]!.toLowerCase();
  if (match === null || (name !== 'bearer' && name !== 'dpop')) return { kind: 'none' };
  const scheme: Scheme = name === 'dpop' ? 'DPoP' : 'Bearer';
  const token = match[2]?.trim() ?? '';
  return TOKEN68.test(token) ? { kind: 'token', scheme, token } : { kind: 'malformed', scheme };
}

/** The challenge headers of a 401 for `ctx.scheme`, with the DPoP one's `algs`. */
function challengeFor(ctx: ChallengeContext, params: { error?: string; error_description?: string; scope?: string }): string {
  return challenge({ realm: ctx.realm, ...params, algs: ctx.algs }, ctx.scheme);
}

/** The §3 answers, and RFC 9449 §7.1 and §9 for the DPoP scheme. */
export const refusals = {
  /** §3.1: a request without credentials gets a challenge without an error code. */
  missing(ctx: ChallengeContext | string | undefined): Refusal {
    const c = context(ctx);
    const bearer = challenge({ realm: c.realm });
    const header = c.advertiseDPoP ? [bearer, challenge({ realm: c.realm, algs: c.algs }, 'DPoP')] : bearer;
    return { status: 401, headers: { 'www-authenticate': header }, body: undefined };
  },
  malformed(ctx: ChallengeContext | string | undefined): Refusal {
    const c = context(ctx);
    const error_description = `The Authorization header is not a valid ${c.scheme} credential`;
    return {
      status: 400,
      headers: { 'www-authenticate': challengeFor(c, { error: 'invalid_request', error_description }) },
      body: { error: 'invalid_request', error_description },
    };
  },
  invalid(ctx: ChallengeContext | string | undefined, err: TokenVerificationError, nonce?: string): Refusal {
    const c = context(ctx);
    const error_description = describeVerificationError(err.code);
    // RFC 9449 §7.1 and §9: the proof's own errors are DPoP errors.
    if (err.code === 'invalid_dpop_proof' || err.code === 'use_dpop_nonce') {
      const error = err.code;
      const headers: Record<string, string | string[]> = {
        'www-authenticate': challenge({ realm: c.realm, error, error_description, algs: c.algs }, 'DPoP'),
      };
      if (err.code === 'use_dpop_nonce' && nonce !== undefined) headers['dpop-nonce'] = nonce;
      return { status: 401, headers, body: { error, error_description }, cause: err };
    }
    let header: string | string[] = challengeFor(c, { error: 'invalid_token', error_description });
    // §7.2: a DPoP-bound token sent as Bearer: say so, and say how to send it.
    if (err.code === 'dpop_required') header = [header, challenge({ realm: c.realm, algs: c.algs }, 'DPoP')];
    return {
      status: 401,
      headers: { 'www-authenticate': header },
      body: { error: 'invalid_token', error_description },
      cause: err,
    };
  },
  /** The authorization server could not be asked: the token was not judged, so no challenge. */
  unavailable(err: unknown): Refusal {
    return {
      status: 503,
      headers: { 'retry-after': '5' },
      body: { error: 'temporarily_unavailable', error_description: 'The access token cannot be verified right now' },
      cause: err,
    };
  },
  insufficientScope(ctx: ChallengeContext | string | undefined, scopes: readonly string[]): Refusal {
    const error_description = 'The access token does not grant the scope this request needs';
    return {
      status: 403,
      headers: { 'www-authenticate': challengeFor(context(ctx), { error: 'insufficient_scope', scope: scopes.join(' ') }) },
      body: { error: 'insufficient_scope', error_description, scope: scopes.join(' ') },
    };
  },
};

/** A realm alone (the Bearer-only answers of before) or a whole context. */
function context(ctx: ChallengeContext | string | undefined): ChallengeContext {
  return typeof ctx === 'object' ? ctx : { realm: ctx, scheme: 'Bearer', algs: [], advertiseDPoP: false };
}

export function challengeContext(verifier: Verifier, realm: string | undefined, scheme: Scheme = 'Bearer'): ChallengeContext {
  return { realm, scheme, algs: verifier.dpop?.algorithms ?? [], advertiseDPoP: verifier.dpop?.advertised ?? false };
}

/** What the middleware reads of a request. */
export interface RequestCredentials extends RequestBinding {
  authorization: string | string[] | undefined;
  dpop: string | string[] | undefined;
  method: string;
}

/**
 * Reads and verifies the token of a request (Bearer, or DPoP with its proof), with the binding
 * checks of sender-constrained tokens. Unexpected errors are rethrown.
 */
export async function authenticate(
  verifier: Verifier,
  request: RequestCredentials,
  realm: string | undefined,
): Promise<AuthOutcome & { ctx: ChallengeContext }> {
  const credentials = bearerCredentials(request.authorization);
  const ctx = challengeContext(verifier, realm, credentials.kind === 'none' ? 'Bearer' : credentials.scheme);
  if (credentials.kind === 'none') return { ok: false, refusal: refusals.missing(ctx), ctx };
  if (credentials.kind === 'malformed') return { ok: false, refusal: refusals.malformed(ctx), ctx };
  try {
    // RFC 9449 §4.3 step 1: one DPoP header. Node joins repeated ones with ", ", which no JWT holds.
    const dpop = request.dpop;
    if (Array.isArray(dpop) || (dpop !== undefined && dpop.includes(','))) {
      throw new TokenVerificationError('invalid_dpop_proof', 'The DPoP proof is invalid: more than one DPoP header');
    }
    const claims = await verifier.verify(credentials.token, {
      scheme: credentials.scheme,
      dpop,
      method: request.method,
      url: request.url,
      clientCertificate: request.clientCertificate,
    });
    return { ok: true, claims, ctx };
  } catch (err) {
    if (!(err instanceof TokenVerificationError)) throw err;
    return { ok: false, refusal: err.unavailable ? refusals.unavailable(err) : refusals.invalid(ctx, err, verifier.dpop?.nonce()), ctx };
  }
}

/** Every scope token of `required` granted by the claims (RFC 6749 §3.3 scope tokens, all needed). */
export function hasScopes(claims: AccessTokenClaims, required: readonly string[]): boolean {
  return required.every((s) => claims.scope.includes(s));
}
