// RFC 7591 §2 client metadata rules: what a create or an update may send, each field checked on
// its own (names, scopes, URIs, grant types, methods, JWKs, lifetimes, limits), the rules between
// fields on the whole record, and which wire fields an update changed. The registry applies them.

import {
  FAPI2_AUTH_METHODS, GRANT_TYPES, RESERVED_CLAIM_NAMES, TLS_CLIENT_AUTH_FIELDS, TOKEN_ENDPOINT_AUTH_METHODS, type TlsClientAuthField,
  type TokenEndpointAuthMethod,
} from '../ground/names.js';
import type { ClientRecord, CustomClaims, PublicJwk } from '../ground/records.js';
import { FEDERATED_JWT, TRUST_NAME, type FederatedIdentity, type TrustedIssuerRecord } from '../ground/trusts.js';
import { CLIENT_ID_PREFIX, hasIssuedClientIdShape, MAX_CHOSEN_CLIENT_ID_LENGTH } from '../ground/client-id.js';
import { SCOPE_TOKEN, URI_SCHEME } from '../ground/scope.js';
import { parseClientJwk } from './jwk.js';
import { describeJsonType, isPlainObject } from '../ground/json.js';
import { tlsClientAuthValueProblem } from './tls-client-auth.js';

/** Bad client metadata or arguments; the message is written for the caller (an HTTP 400). */
export class ClientValidationError extends Error {
  readonly code = 'CLIENT_INVALID';
  /** The metadata field at fault, when there is one. */
  readonly field: string | undefined;
  constructor(message: string, field?: string) {
    super(message);
    this.name = 'ClientValidationError';
    this.field = field;
  }
}

/** Most clients a page of the list holds. */
export const MAX_LIST_LIMIT = 1000;
/** Longest grace period a rotation accepts, in seconds (one year). */
export const MAX_GRACE_PERIOD = 365 * 24 * 3600;

export const MAX_NAME_LENGTH = 200;
const MAX_SCOPE_TOKENS = 100;
const MAX_SCOPE_TOKEN_LENGTH = 200;
export const MAX_AUDIENCES = 100;
export const MAX_URI_LENGTH = 2000;
export const MAX_KEYS = 20;
/**
 * Most characters of JSON that the scope and audience of a client's default token (a request
 * that names no scope and no resource) may take. The token endpoint never issues a token longer
 * than 16,384 characters (MAX_TOKEN_LENGTH); base64url makes these 10,000 about 13,400, which
 * leaves room for the header, an RSA-4096 signature and the other claims with an issuer of up to
 * about 1,000 characters. Without this check such a client would be registered, then refused
 * invalid_scope on every request that asks for its defaults.
 */
const MAX_DEFAULT_GRANT_JSON = 10_000;

/** What a client's default token is made of (see MAX_DEFAULT_GRANT_JSON). */
export const DEFAULT_GRANT_FIELDS = ['scope', 'defaultScope', 'audience', 'defaultAudience', 'grantTypes', 'claims'] as const;

/** Most custom claims a client may carry. */
export const MAX_CLAIMS = 50;
/** Longest custom claim name, in characters. */
export const MAX_CLAIM_NAME_LENGTH = 64;
/**
 * Most bytes of JSON (UTF-8) a client's custom claims take together; they also count in the
 * default token's MAX_DEFAULT_GRANT_JSON.
 */
export const MAX_CLAIMS_JSON = 4096;
/** Deepest nesting of arrays and objects in a claim value. */
const MAX_CLAIM_DEPTH = 8;

const FIELDS = new Set<string>([
  'client_name', 'scope', 'default_scope', 'audience', 'default_audience', 'grant_types', 'resource_uris',
  'token_endpoint_auth_method', 'jwks', 'access_token_ttl', 'rate_limit', 'token_reuse', 'disabled', 'claims',
  ...TLS_CLIENT_AUTH_FIELDS, 'tls_client_certificate_bound_access_tokens',
  'dpop_bound_access_tokens', 'fapi2',
  'federated_issuer', 'federated_subject', 'federated_claims',
]);

/** Fields a caller may see in the wire form but never set; named so the error says why. */
const REFUSED: Record<string, string> = {
  client_secret: 'client_secret cannot be chosen: the server generates every secret (rotate the secret to get a new one)',
  client_id: 'client_id cannot be changed: create a new client with the client_id you want',
  client_secret_expires_at: 'client_secret_expires_at is read-only',
  client_secret_sha256: 'client_secret_sha256 is accepted on create only (rotate the secret to get a new one)',
  created_at: 'created_at is read-only',
  updated_at: 'updated_at is read-only',
  tokens_revoked_at: 'tokens_revoked_at is read-only (use the revoke-tokens action)',
  jwks_uri: 'jwks_uri is not supported: register the public keys in jwks',
};

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001F\u007F-\u009F]/;

export function isSecretMethod(method: TokenEndpointAuthMethod): boolean {
  return method === 'client_secret_basic' || method === 'client_secret_post';
}

export function invalid(field: string, message: string): never {
  throw new ClientValidationError(message, field);
}

function parseName(v: unknown): string {
  if (typeof v !== 'string') invalid('client_name', `client_name must be a string, got ${describeJsonType(v)}`);
  const length = [...v].length;
  if (v.trim().length === 0) invalid('client_name', 'client_name must not be empty');
  if (length > MAX_NAME_LENGTH) invalid('client_name', `client_name must be at most ${MAX_NAME_LENGTH} characters`);
  if (CONTROL_CHARS.test(v)) invalid('client_name', 'client_name must not contain control characters');
  return v;
}

/** A space-delimited scope string (RFC 6749 §3.3) as a list; "" is the empty list. */
function parseScope(field: string, v: unknown): string[] {
  if (typeof v !== 'string') invalid(field, `${field} must be a space-delimited string, got ${describeJsonType(v)}`);
  if (v === '') return [];
  const tokens = v.split(' ');
  if (tokens.some((t) => t === '')) invalid(field, `${field} must separate scope tokens with single spaces`);
  if (tokens.length > MAX_SCOPE_TOKENS) invalid(field, `${field} must have at most ${MAX_SCOPE_TOKENS} scope tokens`);
  const seen = new Set<string>();
  for (const t of tokens) {
    if (!SCOPE_TOKEN.test(t)) {
      invalid(field, `${field} token ${JSON.stringify(t)} is not a valid scope token (RFC 6749 §3.3: printable ASCII except space, " and \\)`);
    }
    if (t.length > MAX_SCOPE_TOKEN_LENGTH) invalid(field, `${field} tokens must be at most ${MAX_SCOPE_TOKEN_LENGTH} characters`);
    if (seen.has(t)) invalid(field, `${field} lists ${JSON.stringify(t)} more than once`);
    seen.add(t);
  }
  return tokens;
}

function parseUris(field: string, v: unknown, allowEmpty: boolean): string[] {
  if (!Array.isArray(v)) invalid(field, `${field} must be an array of absolute URIs, got ${describeJsonType(v)}`);
  if (v.length === 0 && !allowEmpty) invalid(field, `${field} must name at least one resource URI`);
  if (v.length > MAX_AUDIENCES) invalid(field, `${field} must have at most ${MAX_AUDIENCES} entries`);
  const seen = new Set<string>();
  for (const [i, a] of v.entries()) {
    if (typeof a !== 'string') invalid(field, `${field}[${i}] must be a string, got ${describeJsonType(a)}`);
    if (a.length > MAX_URI_LENGTH) invalid(field, `${field}[${i}] must be at most ${MAX_URI_LENGTH} characters`);
    // RFC 8707 §2: a resource is an absolute URI without a fragment.
    if (!URI_SCHEME.test(a) || /[\s<>"{}|\\^`]/.test(a) || CONTROL_CHARS.test(a) || !URL.canParse(a)) {
      invalid(field, `${field}[${i}] ${JSON.stringify(a)} is not an absolute URI`);
    }
    if (a.includes('#')) invalid(field, `${field}[${i}] ${JSON.stringify(a)} must not have a fragment (RFC 8707 §2)`);
    if (seen.has(a)) invalid(field, `${field} lists ${JSON.stringify(a)} more than once`);
    seen.add(a);
  }
  return [...v] as string[];
}

function parseGrantTypes(v: unknown): string[] {
  if (!Array.isArray(v)) invalid('grant_types', `grant_types must be an array, got ${describeJsonType(v)}`);
  const seen = new Set<string>();
  for (const g of v) {
    if (typeof g !== 'string' || !GRANT_TYPES.includes(g)) {
      invalid('grant_types', `grant_types may only contain ${GRANT_TYPES.map((t) => JSON.stringify(t)).join(', ')} ([] for a client that only introspects or revokes)`);
    }
    if (seen.has(g)) invalid('grant_types', `grant_types lists ${JSON.stringify(g)} more than once`);
    seen.add(g);
  }
  return [...seen];
}

/** Most token requests per second a client's rate_limit may name. */
export const MAX_RATE_LIMIT = 1_000_000;

function parseRateLimit(v: unknown): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > MAX_RATE_LIMIT) {
    invalid('rate_limit', `rate_limit must be a number of token requests per second from 0 (no limit) to ${MAX_RATE_LIMIT}, or null for the server default`);
  }
  return v;
}

function parseBoolean(field: string, v: unknown): boolean {
  if (typeof v !== 'boolean') invalid(field, `${field} must be true or false, got ${describeJsonType(v)}`);
  return v;
}

function parseMethod(v: unknown): TokenEndpointAuthMethod {
  if (typeof v !== 'string' || !(TOKEN_ENDPOINT_AUTH_METHODS as readonly string[]).includes(v)) {
    invalid('token_endpoint_auth_method', `token_endpoint_auth_method must be one of ${TOKEN_ENDPOINT_AUTH_METHODS.join(', ')}`);
  }
  return v as TokenEndpointAuthMethod;
}

function parseJwks(v: unknown): { keys: PublicJwk[] } {
  if (!isPlainObject(v)) invalid('jwks', `jwks must be a JSON Web Key Set object, got ${describeJsonType(v)}`);
  const extra = Object.keys(v).find((k) => k !== 'keys');
  if (extra !== undefined) invalid('jwks', `jwks has an unknown member ${JSON.stringify(extra)}`);
  if (!Array.isArray(v.keys)) invalid('jwks', 'jwks.keys must be an array');
  if (v.keys.length === 0) invalid('jwks', 'jwks must contain at least one public key');
  if (v.keys.length > MAX_KEYS) invalid('jwks', `jwks must contain at most ${MAX_KEYS} keys`);
  const keys = v.keys.map((k, i) => parseClientJwk(k, `jwks.keys[${i}]`, invalid));
  const kids = keys.map((k) => k.kid).filter((k) => k !== undefined);
  if (new Set(kids).size !== kids.length) invalid('jwks', 'jwks key ids (kid) must be unique');
  return { keys };
}

/** A claim value: JSON only, finite numbers, bounded depth (the whole object's size is checked by the caller). */
function checkClaimValue(name: string, v: unknown, depth: number, field = 'claims'): void {
  if (depth > MAX_CLAIM_DEPTH) invalid(field, `${field}.${name} nests arrays and objects more than ${MAX_CLAIM_DEPTH} deep`);
  // PostgreSQL cannot store U+0000 in a JSON string (nor can many JWT libraries read it back).
  if (typeof v === 'string') {
    if (v.includes('\u0000')) invalid(field, `${field}.${name} must not contain the NUL character (U+0000)`);
    return;
  }
  if (v === null || typeof v === 'boolean') return;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) invalid(field, `${field}.${name} holds a number that does not fit in JSON`);
    return;
  }
  if (Array.isArray(v)) {
    for (const item of v) checkClaimValue(name, item, depth + 1, field);
    return;
  }
  if (isPlainObject(v)) {
    for (const [key, item] of Object.entries(v)) {
      if (key.includes('\u0000')) invalid(field, `${field}.${name} must not contain the NUL character (U+0000)`);
      checkClaimValue(name, item, depth + 1, field);
    }
    return;
  }
  invalid(field, `${field}.${name} must be a JSON value, got ${describeJsonType(v)}`);
}

/**
 * Custom claims copied into every access token of the client (and so shown by introspection):
 * names the server or the RFCs give a meaning are refused, all named at once.
 */
function parseClaims(v: unknown): CustomClaims {
  if (v === null) return {};
  if (!isPlainObject(v)) invalid('claims', `claims must be a JSON object of claim names to JSON values, got ${describeJsonType(v)}`);
  const names = Object.keys(v);
  const reserved = names.filter((n) => RESERVED_CLAIM_NAMES.has(n));
  if (reserved.length > 0) {
    invalid('claims', `claims may not set ${reserved.map((n) => JSON.stringify(n)).join(', ')}: `
      + `${reserved.length === 1 ? 'this name is' : 'these names are'} set by the server or reserved by the OAuth and JWT RFCs`);
  }
  if (names.length > MAX_CLAIMS) invalid('claims', `claims must have at most ${MAX_CLAIMS} names`);
  for (const name of names) {
    if (name.length === 0) invalid('claims', 'claims names must not be empty');
    if (name.length > MAX_CLAIM_NAME_LENGTH) invalid('claims', `claims names must be at most ${MAX_CLAIM_NAME_LENGTH} characters`);
    if (CONTROL_CHARS.test(name)) invalid('claims', `claims name ${JSON.stringify(name)} must not contain control characters`);
    // An own "__proto__" member would become a prototype when copied by assignment.
    if (name === '__proto__') invalid('claims', 'claims may not set "__proto__"');
    checkClaimValue(name, v[name], 1);
  }
  const json = JSON.stringify(v);
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > MAX_CLAIMS_JSON) invalid('claims', `claims take ${bytes} bytes of JSON, more than the ${MAX_CLAIMS_JSON} allowed`);
  return JSON.parse(json) as CustomClaims;
}

/** Longest federated_subject, in characters. */
export const MAX_FEDERATED_SUBJECT_LENGTH = 1024;
/**
 * Claims a federated client may not require in federated_claims: the registered ones the trust
 * checks itself (RFC 7519 §4.1; sub is federated_subject).
 */
const TRUST_CHECKED_CLAIMS = new Set(['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti']);

function parseTrustName(v: unknown): string {
  if (typeof v !== 'string' || !TRUST_NAME.test(v)) {
    invalid('federated_issuer', `federated_issuer must be the name of a trusted issuer (1 to 64 of lowercase letters, digits and "-", starting with a letter)${typeof v === 'string' ? '' : `, got ${describeJsonType(v)}`}`);
  }
  return v;
}

function parseFederatedSubject(v: unknown): string {
  if (typeof v !== 'string') invalid('federated_subject', `federated_subject must be a string (the exact sub of the platform token), got ${describeJsonType(v)}`);
  if (v.length === 0) invalid('federated_subject', 'federated_subject must not be empty');
  if (v.length > MAX_FEDERATED_SUBJECT_LENGTH) invalid('federated_subject', `federated_subject must be at most ${MAX_FEDERATED_SUBJECT_LENGTH} characters`);
  if (CONTROL_CHARS.test(v)) invalid('federated_subject', 'federated_subject must not contain control characters');
  if (v.trim() !== v) invalid('federated_subject', 'federated_subject must not begin or end with white space');
  return v;
}

/** Required claim values of the platform token: like `claims`, bounded the same way, but the registered JWT claims are the trust's to check. */
function parseFederatedClaims(v: unknown): Record<string, unknown> {
  const field = 'federated_claims';
  if (v === null) return {};
  if (!isPlainObject(v)) invalid(field, `${field} must be a JSON object of claim names to the values they must have, got ${describeJsonType(v)}`);
  const names = Object.keys(v);
  const checked = names.filter((n) => TRUST_CHECKED_CLAIMS.has(n));
  if (checked.length > 0) {
    invalid(field, `${field} may not name ${checked.map((n) => JSON.stringify(n)).join(', ')}: the trust checks these itself (sub is federated_subject)`);
  }
  if (names.length > MAX_CLAIMS) invalid(field, `${field} must have at most ${MAX_CLAIMS} names`);
  for (const name of names) {
    if (name.length === 0) invalid(field, `${field} names must not be empty`);
    if (name.length > MAX_CLAIM_NAME_LENGTH) invalid(field, `${field} names must be at most ${MAX_CLAIM_NAME_LENGTH} characters`);
    if (CONTROL_CHARS.test(name)) invalid(field, `${field} name ${JSON.stringify(name)} must not contain control characters`);
    if (name === '__proto__') invalid(field, `${field} may not name "__proto__"`);
    checkClaimValue(name, v[name], 1, field);
  }
  const json = JSON.stringify(v);
  const bytes = Buffer.byteLength(json, 'utf8');
  if (bytes > MAX_CLAIMS_JSON) invalid(field, `${field} take ${bytes} bytes of JSON, more than the ${MAX_CLAIMS_JSON} allowed`);
  return JSON.parse(json) as Record<string, unknown>;
}
/** The RFC 8705 §2.1.2 fields an input sets (a value) or clears (null). */
export type TlsClientAuthPatch = Partial<Record<TlsClientAuthField, string | null>>;

/** The fields of a create or update input, checked one by one; cross-field rules come later. */
export type ParsedMetadata = Partial<Pick<ClientRecord,
  'clientName' | 'scope' | 'defaultScope' | 'audience' | 'defaultAudience' | 'grantTypes' | 'resourceUris'
  | 'tokenEndpointAuthMethod' | 'jwks' | 'accessTokenTtl' | 'rateLimit' | 'tokenReuse' | 'disabled' | 'claims'
  | 'tlsClientCertificateBoundAccessTokens' | 'dpopBoundAccessTokens' | 'fapi2'>> & {
  tlsClientAuth?: TlsClientAuthPatch;
  /** federated_issuer, federated_subject, federated_claims as sent (null = cleared). */
  federatedIssuer?: string | null;
  federatedSubject?: string | null;
  federatedClaims?: Record<string, unknown> | null;
};

function parseTlsClientAuthValue(field: TlsClientAuthField, v: unknown): string | null {
  if (v === null) return null;
  if (typeof v !== 'string') invalid(field, `${field} must be a string (or null to remove it), got ${describeJsonType(v)}`);
  const problem = tlsClientAuthValueProblem(field, v);
  if (problem !== undefined) invalid(field, `${field} ${problem}`);
  return v;
}

/**
 * The certificate name a tls_client_auth client is known by after `patch` on `current`: RFC 8705
 * §2.1.2 allows exactly one of the five fields, so a second one set is refused, not chosen.
 */
export function patchTlsClientAuth(current: ClientRecord['tlsClientAuth'], patch: TlsClientAuthPatch | undefined): ClientRecord['tlsClientAuth'] {
  if (patch === undefined) return current;
  const values = new Map<TlsClientAuthField, string>();
  if (current !== null) values.set(current.field, current.value);
  for (const field of TLS_CLIENT_AUTH_FIELDS) {
    if (!Object.hasOwn(patch, field)) continue;
    const v = patch[field];
    if (v === null || v === undefined) values.delete(field);
    else values.set(field, v);
  }
  if (values.size > 1) {
    const names = [...values.keys()];
    invalid(names.find((n) => Object.hasOwn(patch, n) && patch[n] != null) ?? names[0]!,
      `only one of ${TLS_CLIENT_AUTH_FIELDS.join(', ')} may be set (RFC 8705 §2.1.2), got ${names.join(' and ')}${current !== null && values.has(current.field) ? ` (set ${current.field} to null to replace it)` : ''}`);
  }
  const [entry] = values;
  return entry === undefined ? null : { field: entry[0], value: entry[1] };
}

function parseTtl(v: unknown, { min, max }: { min: number; max: number }): number {

  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
    invalid('access_token_ttl', `access_token_ttl must be a whole number of seconds between ${min} and ${max}, or null for the server default`);
  }
  return v;
}

/**
 * The fields of a create or update input, each checked on its own (cross-field rules: checkRecord).
 * `ttl` bounds access_token_ttl (M2M_AUTH_TOKEN_TTL_MIN and _MAX).
 */
export function parseMetadata(input: unknown, ttl: { min: number; max: number }): ParsedMetadata {
  if (!isPlainObject(input)) throw new ClientValidationError(`Client metadata must be a JSON object, got ${describeJsonType(input)}`);
  for (const key of Object.keys(input)) {
    if (Object.hasOwn(REFUSED, key)) invalid(key, REFUSED[key]!);
    if (!FIELDS.has(key)) invalid(key, `Unknown field ${JSON.stringify(key)}`);
  }
  const out: ParsedMetadata = {};
  const has = (k: string): boolean => Object.hasOwn(input, k) && input[k] !== undefined;
  if (has('client_name')) out.clientName = parseName(input.client_name);
  if (has('scope')) out.scope = parseScope('scope', input.scope);
  if (has('default_scope')) out.defaultScope = input.default_scope === null ? null : parseScope('default_scope', input.default_scope);
  if (has('audience')) out.audience = parseUris('audience', input.audience, true);
  if (has('default_audience')) {
    out.defaultAudience = input.default_audience === null ? null : parseUris('default_audience', input.default_audience, false);
  }
  if (has('grant_types')) out.grantTypes = parseGrantTypes(input.grant_types);
  if (has('resource_uris')) out.resourceUris = parseUris('resource_uris', input.resource_uris, true);
  if (has('token_endpoint_auth_method')) out.tokenEndpointAuthMethod = parseMethod(input.token_endpoint_auth_method);
  if (has('jwks')) out.jwks = input.jwks === null ? null : parseJwks(input.jwks);
  if (has('access_token_ttl')) out.accessTokenTtl = input.access_token_ttl === null ? null : parseTtl(input.access_token_ttl, ttl);
  if (has('rate_limit')) out.rateLimit = input.rate_limit === null ? null : parseRateLimit(input.rate_limit);
  if (has('token_reuse')) out.tokenReuse = parseBoolean('token_reuse', input.token_reuse);
  if (has('dpop_bound_access_tokens')) out.dpopBoundAccessTokens = parseBoolean('dpop_bound_access_tokens', input.dpop_bound_access_tokens);
  if (has('fapi2')) out.fapi2 = parseBoolean('fapi2', input.fapi2);
  if (has('disabled')) out.disabled = parseBoolean('disabled', input.disabled);
  if (has('claims')) out.claims = parseClaims(input.claims);
  if (has('federated_issuer')) out.federatedIssuer = input.federated_issuer === null ? null : parseTrustName(input.federated_issuer);
  if (has('federated_subject')) out.federatedSubject = input.federated_subject === null ? null : parseFederatedSubject(input.federated_subject);
  if (has('federated_claims')) out.federatedClaims = input.federated_claims === null ? null : parseFederatedClaims(input.federated_claims);
  for (const field of TLS_CLIENT_AUTH_FIELDS) {
    if (has(field) || (Object.hasOwn(input, field) && input[field] === null)) {
      (out.tlsClientAuth ??= {})[field] = parseTlsClientAuthValue(field, input[field]);
    }
  }
  if (has('tls_client_certificate_bound_access_tokens')) {
    out.tlsClientCertificateBoundAccessTokens = parseBoolean('tls_client_certificate_bound_access_tokens', input.tls_client_certificate_bound_access_tokens);
  }
  return out;
}

/**
 * RFC 7591 §3.2.1 leaves client_id to the server; an operator may still choose one on create (a
 * client managed from a file keeps its name everywhere): cl_ and 1 to 64 of [A-Za-z0-9_-].
 */
export function parseChosenClientId(v: unknown): string {
  if (typeof v !== 'string' || !hasIssuedClientIdShape(v)) {
    // The value is not echoed: it may be a secret pasted into the wrong field.
    invalid('client_id', `client_id must be "${CLIENT_ID_PREFIX}" followed by 1 to ${MAX_CHOSEN_CLIENT_ID_LENGTH} letters, digits, "_" or "-"`
      + `${typeof v === 'string' ? '' : `, got ${describeJsonType(v)}`} (leave it out and the server issues one)`);
  }
  return v;
}

/**
 * The hex SHA-256 digest of an existing secret (as stored, see secrets.ts), so that a client
 * re-created elsewhere keeps its credential; the secret itself never travels.
 */
export function parseSecretDigest(v: unknown): string {
  if (typeof v !== 'string' || !/^[0-9a-f]{64}$/.test(v)) {
    invalid('client_secret_sha256', 'client_secret_sha256 must be the SHA-256 digest of the client secret as 64 lowercase hex digits');
  }
  return v;
}

/** Cross-field rules, checked on the whole record after create or update; the default token's size only when `grantChanged` (a create, or an update of what it is made of). */
export function checkRecord(c: Omit<ClientRecord, 'clientId'>, grantChanged = true): void {
  // RFC 9068 §2.2: every access token has an aud, so a client that gets tokens needs one.
  if (c.grantTypes.includes('client_credentials') && c.audience.length === 0) {
    invalid('audience', 'audience is required: the resource URIs (absolute, no fragment) this client may get tokens for');
  }
  if (c.defaultScope !== null) {
    const extra = c.defaultScope.find((s) => !c.scope.includes(s));
    if (extra !== undefined) invalid('default_scope', `default_scope ${JSON.stringify(extra)} is not in scope`);
  }
  if (c.defaultAudience !== null) {
    const extra = c.defaultAudience.find((a) => !c.audience.includes(a));
    if (extra !== undefined) invalid('default_audience', `default_audience ${JSON.stringify(extra)} is not in audience`);
  }
  if (c.tokenEndpointAuthMethod === FEDERATED_JWT) {
    if (c.federation === null) invalid('federated_issuer', 'federated_issuer and federated_subject are required for token_endpoint_auth_method federated_jwt');
    if (c.jwks !== null) invalid('jwks', 'jwks is not for token_endpoint_auth_method federated_jwt: the client proves itself with its platform\'s token');
  } else if (c.federation !== null) {
    invalid('federated_issuer', 'federated_issuer, federated_subject and federated_claims are only for token_endpoint_auth_method federated_jwt');
  }
  if ((c.tokenEndpointAuthMethod === 'private_key_jwt' || c.tokenEndpointAuthMethod === 'self_signed_tls_client_auth') && c.jwks === null) {
    invalid('jwks', `jwks with at least one public key is required for token_endpoint_auth_method ${c.tokenEndpointAuthMethod}`);
  }
  if (c.tokenEndpointAuthMethod === 'tls_client_auth' && c.tlsClientAuth === null) {
    invalid('token_endpoint_auth_method', `token_endpoint_auth_method tls_client_auth needs exactly one of ${TLS_CLIENT_AUTH_FIELDS.join(', ')} (RFC 8705 §2.1.2)`);
  }
  if (c.tokenEndpointAuthMethod !== 'tls_client_auth' && c.tlsClientAuth !== null) {
    invalid(c.tlsClientAuth.field, `${c.tlsClientAuth.field} is only for token_endpoint_auth_method tls_client_auth`);
  }
  // FAPI 2.0 Security Profile (client authentication): private_key_jwt or mutual TLS only.
  if (c.fapi2 && !FAPI2_AUTH_METHODS.includes(c.tokenEndpointAuthMethod)) {
    invalid('fapi2', `fapi2 requires token_endpoint_auth_method ${FAPI2_AUTH_METHODS.slice(0, -1).join(', ')} or ${FAPI2_AUTH_METHODS.at(-1)!}`);
  }
  if (grantChanged && c.grantTypes.includes('client_credentials')) {
    const scope = c.defaultScope ?? c.scope;
    const audience = c.defaultAudience ?? c.audience;
    // UTF-8 bytes, as base64url will count them.
    const grantSize = Buffer.byteLength(JSON.stringify(scope.join(' ')), 'utf8') + Buffer.byteLength(JSON.stringify(audience), 'utf8');
    const claimsSize = Object.keys(c.claims).length === 0 ? 0 : Buffer.byteLength(JSON.stringify(c.claims), 'utf8');
    const size = grantSize + claimsSize;
    if (size > MAX_DEFAULT_GRANT_JSON) {
      const what = `${c.defaultScope === null ? 'every scope' : 'default_scope'} and ${c.defaultAudience === null ? 'every audience' : 'default_audience'}`;
      if (claimsSize > 0 && grantSize <= MAX_DEFAULT_GRANT_JSON) {
        invalid('claims', `claims take ${claimsSize} bytes and a token request that names no scope and no resource gets ${what}, `
          + `which take ${grantSize}: together more than the ${MAX_DEFAULT_GRANT_JSON} that fit in an access token; `
          + 'use fewer or shorter claims (or set default_audience and default_scope to fewer values)');
      }
      invalid(c.defaultAudience === null ? 'audience' : 'default_audience',
        `a token request that names no scope and no resource gets ${what}, and these take ${size} characters, more than the ${MAX_DEFAULT_GRANT_JSON} `
        + 'that fit in an access token; set default_audience (and default_scope) to fewer values');
    }
  }
}

const METADATA_FIELDS: ReadonlyArray<[keyof ClientRecord, string]> = [
  ['clientName', 'client_name'],
  ['scope', 'scope'],
  ['defaultScope', 'default_scope'],
  ['audience', 'audience'],
  ['defaultAudience', 'default_audience'],
  ['grantTypes', 'grant_types'],
  ['resourceUris', 'resource_uris'],
  ['tokenEndpointAuthMethod', 'token_endpoint_auth_method'],
  ['jwks', 'jwks'],
  ['accessTokenTtl', 'access_token_ttl'],
  ['rateLimit', 'rate_limit'],
  ['tokenReuse', 'token_reuse'],
  ['dpopBoundAccessTokens', 'dpop_bound_access_tokens'],
  ['fapi2', 'fapi2'],
  ['disabled', 'disabled'],
  ['claims', 'claims'],
  ['federation', 'federation'],
  ['tlsClientCertificateBoundAccessTokens', 'tls_client_certificate_bound_access_tokens'],
  ['secrets', 'client_secret'],
];

/** Wire names of the fields that differ. */
export function changedFields(a: ClientRecord, b: ClientRecord): string[] {
  const names: string[] = [];
  for (const [k, name] of METADATA_FIELDS) {
    if (k === 'federation') {
      const [fa, fb] = [a.federation, b.federation];
      if (fa?.trust !== fb?.trust) names.push('federated_issuer');
      if (fa?.subject !== fb?.subject) names.push('federated_subject');
      if (JSON.stringify(fa?.claims ?? null) !== JSON.stringify(fb?.claims ?? null)) names.push('federated_claims');
    } else if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) {
      names.push(name);
    }
  }
  // The certificate name's wire field is the one that was or is set (both when it moved).
  const tls = TLS_CLIENT_AUTH_FIELDS.filter((f) => (a.tlsClientAuth?.field === f ? a.tlsClientAuth.value : null) !== (b.tlsClientAuth?.field === f ? b.tlsClientAuth.value : null));
  return [...names, ...tls];
}

/**
 * The federation a create or update leaves: the current one changed by what was sent; null when
 * nothing names a trust. A federation needs both federated_issuer and federated_subject.
 */
export function mergedFederation(current: FederatedIdentity | null, f: ParsedMetadata): FederatedIdentity | null {
  const trust = f.federatedIssuer === undefined ? current?.trust ?? null : f.federatedIssuer;
  const subject = f.federatedSubject === undefined ? current?.subject ?? null : f.federatedSubject;
  const claims = f.federatedClaims === undefined ? current?.claims ?? {} : f.federatedClaims ?? {};
  if (trust === null && subject === null) {
    if (f.federatedClaims != null && Object.keys(f.federatedClaims).length > 0) {
      invalid('federated_claims', 'federated_claims needs federated_issuer and federated_subject');
    }
    return null;
  }
  if (trust === null) invalid('federated_issuer', 'federated_issuer is required with federated_subject: the name of the trusted issuer');
  if (subject === null) invalid('federated_subject', 'federated_subject is required with federated_issuer: the exact sub of the platform token');
  return { trust, subject, claims };
}

/** SPIFFE ID path segments (SPIFFE ID spec §2.2): [A-Za-z0-9.-_], none empty, "." or "..". */
const SPIFFE_SEGMENT = /^[A-Za-z0-9._-]+$/;

/**
 * The rules that need the trust itself: it must exist, and for a spiffe trust the subject must be
 * a SPIFFE ID in its trust domain (spiffe://<trust domain>/<path>).
 */
export function checkFederationAgainst(federation: FederatedIdentity, trust: TrustedIssuerRecord | undefined): void {
  if (trust === undefined) {
    invalid('federated_issuer', `federated_issuer ${JSON.stringify(federation.trust)} names no trusted issuer: create it first (POST /admin/trusted-issuers)`);
  }
  if (trust.kind === 'spiffe') {
    const prefix = `spiffe://${trust.trustDomain}/`;
    const path = federation.subject.startsWith(prefix) ? federation.subject.slice(prefix.length) : undefined;
    const segments = path?.split('/');
    if (segments === undefined || segments.some((s) => !SPIFFE_SEGMENT.test(s) || s === '.' || s === '..')) {
      invalid('federated_subject', `federated_subject must be a SPIFFE ID in trust domain ${trust.trustDomain ?? ''} (spiffe://${trust.trustDomain ?? ''}/path, path segments of letters, digits, ".", "-" and "_") for trust ${JSON.stringify(trust.name)} of kind spiffe`);
    }
  }
}
