// private_key_jwt: RFC 7523 §2.2 and §3 client assertions, signed with a key from the client's
// registered jwks (RFC 7591 `jwks`), verified with jose.

import { compactVerify, createLocalJWKSet, decodeJwt, errors as joseErrors, type JSONWebKeySet } from 'jose';
import { OAuthError } from '../../ground/errors.js';
import { CLIENT_ASSERTION_ALGS, FAPI2_ALGS } from '../../ground/names.js';
import type { ClientRecord } from '../../ground/records.js';
import type { ReplayStore } from '../../storage/types.js';
import { publicJwk } from '../../clients/jwk.js';

/** RFC 7523 §3 rules as the issue sets them. */
const MAX_LIFETIME_S = 300;
const MAX_FUTURE_SKEW_S = 60;

export interface AssertionContext {
  issuer: string;
  tokenEndpoint: string;
  replay: ReplayStore;
  now: number;
}

const jwkSets = new WeakMap<ClientRecord, ReturnType<typeof createLocalJWKSet>>();

function keySet(client: ClientRecord): ReturnType<typeof createLocalJWKSet> {
  let set = jwkSets.get(client);
  if (!set) {
    // Only the public members of each key, whatever an older record holds besides.
    set = createLocalJWKSet({ keys: (client.jwks?.keys ?? []).map(publicJwk) } as JSONWebKeySet);
    jwkSets.set(client, set);
  }
  return set;
}

function fail(detail: string): never {
  throw new OAuthError('invalid_client', 'Client authentication failed.', { detail });
}

/** The client_id an assertion claims to come from, read before verification to find its keys. */
export function assertionClientId(assertion: string): string | undefined {
  try {
    const claims = decodeJwt(assertion);
    if (typeof claims.sub === 'string') return claims.sub;
    return typeof claims.iss === 'string' ? claims.iss : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The verified payload. Without a kid (optional, RFC 7515 §4.1.4) several registered keys may fit
 * the alg, as while a client rotates its keys; jose then leaves trying each one to the caller.
 */
const ANY_ALG = { algorithms: [...CLIENT_ASSERTION_ALGS] };
/** FAPI 2.0 Security Profile (cryptography): PS256, ES256 or EdDSA only. */
const FAPI2_ALG = { algorithms: CLIENT_ASSERTION_ALGS.filter((a) => FAPI2_ALGS.includes(a)) };

/**
 * The payload of `assertion` if a key of `keys` verifies it (jose's compactVerify); when several
 * keys match its header (no kid, a key set mid-rotation), each is tried in turn. Shared with
 * federated_jwt (./federated-jwt.ts).
 */
export async function verifiedByAnyKey(assertion: string, keys: ReturnType<typeof createLocalJWKSet>, options: { algorithms: string[] }): Promise<Uint8Array> {
  try {
    return (await compactVerify(assertion, keys, options)).payload;
  } catch (err) {
    if (!(err instanceof joseErrors.JWKSMultipleMatchingKeys)) throw err;
    for await (const key of err) {
      try {
        return (await compactVerify(assertion, key, options)).payload;
      } catch {
        // Not this key; try the next.
      }
    }
    throw new joseErrors.JWSSignatureVerificationFailed();
  }
}

function verifiedPayload(client: ClientRecord, assertion: string): Promise<Uint8Array> {
  return verifiedByAnyKey(assertion, keySet(client), client.fapi2 ? FAPI2_ALG : ANY_ALG);
}

export async function verifyClientAssertion(client: ClientRecord, assertion: string, ctx: AssertionContext): Promise<void> {
  let payloadBytes: Uint8Array;
  try {
    payloadBytes = await verifiedPayload(client, assertion);
  } catch (err) {
    const code = err instanceof joseErrors.JOSEError ? err.code : 'unknown';
    fail(`client assertion signature not verified (${code})`);
  }
  let claims: Record<string, unknown>;
  try {
    claims = JSON.parse(Buffer.from(payloadBytes).toString('utf8')) as Record<string, unknown>;
    if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) throw new Error('not an object');
  } catch {
    fail('client assertion payload is not a JSON object');
  }
  const nowS = ctx.now / 1000;
  // RFC 7523 §3 items 1 and 2: iss and sub are the client_id.
  if (claims.iss !== client.clientId) fail('client assertion iss is not the client_id');
  if (claims.sub !== client.clientId) fail('client assertion sub is not the client_id');
  // §3 item 3: aud identifies this authorization server (issuer identifier or token endpoint URL).
  const aud = claims.aud;
  if (client.fapi2) {
    // FAPI 2.0 Security Profile (client authentication): the issuer identifier only, as a string.
    if (aud !== ctx.issuer) fail('client assertion aud is not the issuer as a string (fapi2)');
  } else {
    const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud : [];
    if (!auds.some((a) => a === ctx.issuer || a === ctx.tokenEndpoint)) fail('client assertion aud does not name this server');
  }
  // §3 item 4: exp is required; we also bound how far ahead it may be.
  const exp = claims.exp;
  if (typeof exp !== 'number' || !Number.isFinite(exp)) fail('client assertion has no numeric exp');
  if (exp <= nowS) fail('client assertion expired');
  if (exp - nowS > MAX_LIFETIME_S) fail('client assertion exp is more than 5 minutes ahead');
  for (const name of ['iat', 'nbf'] as const) {
    const v = claims[name];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(`client assertion ${name} is not numeric`);
    if (v > nowS + MAX_FUTURE_SKEW_S) fail(`client assertion ${name} is in the future`);
  }
  // §3 item 7: jti, single-use within the assertion's lifetime.
  const jti = claims.jti;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > 512) fail('client assertion has no usable jti');
  const first = await ctx.replay.consumeOnce(`private_key_jwt:${client.clientId}:${jti}`, Math.ceil(exp * 1000), ctx.now);
  if (!first) fail('client assertion jti was already used');
}
