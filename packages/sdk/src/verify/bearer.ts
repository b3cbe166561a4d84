// RFC 6750 at a resource server, free of any HTTP framework: reading the Bearer credentials of the
// Authorization header (§2.1) and writing the WWW-Authenticate challenges of §3 for 401 and 403.

import { TokenVerificationError } from './errors.js';
import { describeVerificationError, type AccessTokenClaims, type Verifier } from './verifier.js';

export interface BearerAuthOptions {
  /** The realm named in challenges (RFC 6750 §3); none by default. */
  realm?: string;
}

/** An answer the framework adapter writes as is. */
export interface Refusal {
  status: 400 | 401 | 403 | 503;
  headers: Record<string, string>;
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

export function challenge(params: { realm?: string | undefined; error?: string; error_description?: string; scope?: string }): string {
  const parts: string[] = [];
  if (params.realm !== undefined) parts.push(`realm=${quoted(params.realm)}`);
  if (params.error !== undefined) parts.push(`error=${restricted(params.error)}`);
  if (params.error_description !== undefined) parts.push(`error_description=${restricted(params.error_description)}`);
  if (params.scope !== undefined) parts.push(`scope=${restricted(params.scope)}`);
  return parts.length === 0 ? 'Bearer' : `Bearer ${parts.join(', ')}`;
}

type Credentials = { kind: 'none' } | { kind: 'malformed' } | { kind: 'token'; token: string };

export function bearerCredentials(authorization: string | string[] | undefined): Credentials {
  const value = Array.isArray(authorization) ? authorization[0] : authorization;
  if (value === undefined) return { kind: 'none' };
  const match = /^([^\s]+)(?:[ ]+(.*))?$/.exec(value.trim());
  // RFC 7235 §2.1: the scheme is case-insensitive. Another scheme is not a Bearer attempt at all.
  if (match === null || match[1]!.toLowerCase() !== 'bearer') return { kind: 'none' };
  const token = match[2]?.trim() ?? '';
  return TOKEN68.test(token) ? { kind: 'token', token } : { kind: 'malformed' };
}

/** The §3 answers. */
export const refusals = {
  /** §3.1: a request without credentials gets a challenge without an error code. */
  missing(realm: string | undefined): Refusal {
    return { status: 401, headers: { 'www-authenticate': challenge({ realm }) }, body: undefined };
  },
  malformed(realm: string | undefined): Refusal {
    const error_description = 'The Authorization header is not a valid Bearer credential';
    return {
      status: 400,
      headers: { 'www-authenticate': challenge({ realm, error: 'invalid_request', error_description }) },
      body: { error: 'invalid_request', error_description },
    };
  },
  invalid(realm: string | undefined, err: TokenVerificationError): Refusal {
    const error_description = describeVerificationError(err.code);
    return {
      status: 401,
      headers: { 'www-authenticate': challenge({ realm, error: 'invalid_token', error_description }) },
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
  insufficientScope(realm: string | undefined, scopes: readonly string[]): Refusal {
    const error_description = 'The access token does not grant the scope this request needs';
    return {
      status: 403,
      headers: { 'www-authenticate': challenge({ realm, error: 'insufficient_scope', scope: scopes.join(' ') }) },
      body: { error: 'insufficient_scope', error_description, scope: scopes.join(' ') },
    };
  },
};

/** Reads and verifies the Bearer token of a request. Unexpected errors are rethrown. */
export async function authenticate(verifier: Verifier, authorization: string | string[] | undefined, realm: string | undefined): Promise<AuthOutcome> {
  const credentials = bearerCredentials(authorization);
  if (credentials.kind === 'none') return { ok: false, refusal: refusals.missing(realm) };
  if (credentials.kind === 'malformed') return { ok: false, refusal: refusals.malformed(realm) };
  try {
    return { ok: true, claims: await verifier.verify(credentials.token) };
  } catch (err) {
    if (!(err instanceof TokenVerificationError)) throw err;
    return { ok: false, refusal: err.unavailable ? refusals.unavailable(err) : refusals.invalid(realm, err) };
  }
}

/** Every scope token of `required` granted by the claims (RFC 6749 §3.3 scope tokens, all needed). */
export function hasScopes(claims: AccessTokenClaims, required: readonly string[]): boolean {
  return required.every((s) => claims.scope.includes(s));
}
