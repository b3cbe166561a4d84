// The rules of a trusted issuer's fields (issue 17), as the admin API, the client file and an
// import send them: each field checked on its own, then the rules between fields on the whole
// record (what each kind needs and refuses), and which wire fields an update changed.

import { createPublicKey, type JsonWebKey, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { describeJsonType, isPlainObject } from '../ground/json.js';
import type { PublicJwk } from '../ground/public-jwk.js';
import { DEFAULT_MAX_TOKEN_LIFETIME, TRUST_KINDS, TRUST_NAME, type TrustedIssuerRecord, type TrustKind } from '../ground/trusts.js';
import { parseClientJwk } from '../clients/jwk.js';

/** Bad trust fields or arguments; the message is written for the caller (an HTTP 400). */
export class TrustValidationError extends Error {
  readonly code = 'TRUST_INVALID';
  /** The wire field at fault, when there is one. */
  readonly field: string | undefined;
  constructor(message: string, field?: string) {
    super(message);
    this.name = 'TrustValidationError';
    this.field = field;
  }
}

export function invalid(field: string, message: string): never {
  throw new TrustValidationError(message, field);
}

/** Shortest and longest max_token_lifetime, in seconds: one minute to seven days. */
export const MIN_TOKEN_LIFETIME = 60;
export const MAX_TOKEN_LIFETIME = 7 * 24 * 3600;
const MAX_URL_LENGTH = 2000;
const MAX_LIST = 20;
const MAX_KEYS = 50;
/** A CA bundle of a few dozen certificates fits; a mistaken file of megabytes does not. */
export const MAX_CA_BUNDLE_LENGTH = 256 * 1024;
const MAX_TRUST_DOMAIN_LENGTH = 255;
const MAX_HOST_LENGTH = 253;
/** Most trusts a page of the list holds. */
export const MAX_TRUST_LIST_LIMIT = 1000;

/** SPIFFE trust domain name (SPIFFE ID spec §2.1): lowercase letters, digits, '.', '-', '_'. */
const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$/;
// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001F\u007F-\u009F]/;
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** The wire fields a create or update may send. */
const FIELDS = new Set<string>([
  'name', 'kind', 'issuer', 'trust_domain', 'jwks_uri', 'jwks', 'ca_bundle', 'allowed_private_hosts', 'audiences',
  'max_token_lifetime', 'single_use_jti',
]);

const READ_ONLY: Record<string, string> = {
  created_at: 'created_at is read-only',
  updated_at: 'updated_at is read-only',
};

export interface TrustRuleOptions {
  /**
   * Accept plain http URLs whose host is a loopback address (127.0.0.1, [::1], localhost) as
   * issuer and jwks_uri: for tests with local issuers only. Default false: https only.
   */
  allowHttpLoopback?: boolean;
}

export type ParsedTrust = Partial<Omit<TrustedIssuerRecord, 'createdAt' | 'updatedAt'>>;

function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

/** An absolute https URL (http for a loopback host when allowed), no credentials, no fragment. */
function parseUrl(field: string, v: unknown, opts: TrustRuleOptions, what: string): string {
  if (typeof v !== 'string') invalid(field, `${field} must be a string (${what}), got ${describeJsonType(v)}`);
  if (v.length > MAX_URL_LENGTH) invalid(field, `${field} must be at most ${MAX_URL_LENGTH} characters`);
  if (CONTROL_CHARS.test(v) || /\s/.test(v) || !URL.canParse(v)) invalid(field, `${field} ${JSON.stringify(v)} is not an absolute URL`);
  const url = new URL(v);
  const loopbackHttp = opts.allowHttpLoopback === true && url.protocol === 'http:' && isLoopbackHost(url.hostname);
  if (url.protocol !== 'https:' && !loopbackHttp) {
    invalid(field, `${field} must be an https URL (${what}), got ${JSON.stringify(v)}`);
  }
  if (url.username !== '' || url.password !== '') invalid(field, `${field} must not carry credentials`);
  if (v.includes('#')) invalid(field, `${field} must not have a fragment`);
  return v;
}

function parseIssuer(v: unknown, opts: TrustRuleOptions): string {
  const issuer = parseUrl('issuer', v, opts, "the iss its tokens carry");
  // OpenID Connect Discovery §3: an issuer has no query component.
  if (new URL(issuer).search !== '') invalid('issuer', 'issuer must not have a query');
  return issuer;
}

function parseName(v: unknown): string {
  if (typeof v !== 'string' || !TRUST_NAME.test(v)) {
    invalid('name', `name must be 1 to 64 of lowercase letters, digits and "-", starting with a letter${typeof v === 'string' ? '' : `, got ${describeJsonType(v)}`}`);
  }
  return v;
}

function parseKind(v: unknown): TrustKind {
  if (typeof v !== 'string' || !(TRUST_KINDS as readonly string[]).includes(v)) {
    invalid('kind', `kind must be one of ${TRUST_KINDS.join(', ')}`);
  }
  return v as TrustKind;
}

function parseTrustDomain(v: unknown): string {
  if (typeof v !== 'string') invalid('trust_domain', `trust_domain must be a string, got ${describeJsonType(v)}`);
  if (v.length === 0 || v.length > MAX_TRUST_DOMAIN_LENGTH || !TRUST_DOMAIN.test(v)) {
    invalid('trust_domain', `trust_domain must be a SPIFFE trust domain name (1 to ${MAX_TRUST_DOMAIN_LENGTH} of lowercase letters, digits, ".", "-" and "_"), such as "prod.example.org"`);
  }
  return v;
}

/**
 * An X.509-SVID authority of a static SPIFFE bundle (SPIFFE Trust Domain and Bundle §4.2.1): use
 * "x509-svid", its public key, and x5c holding exactly one CA certificate whose key it is. Kept as
 * kty, the public members, kid when given, use and x5c.
 */
function parseX509Authority(key: Record<string, unknown>, where: string): PublicJwk {
  const { x5c, use: _use, ...rest } = key;
  const canonical = parseClientJwk(rest, where, invalid);
  if (!Array.isArray(x5c) || x5c.length !== 1 || typeof x5c[0] !== 'string' || x5c[0].length > MAX_CA_BUNDLE_LENGTH) {
    invalid('jwks', `${where} (use "x509-svid") must carry x5c with exactly one base64 DER certificate`);
  }
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(Buffer.from(x5c[0], 'base64'));
  } catch {
    invalid('jwks', `${where} x5c[0] is not a valid X.509 certificate`);
  }
  if (!cert.ca) invalid('jwks', `${where} x5c[0] is not a CA certificate`);
  let same = false;
  try {
    same = createPublicKey({ key: canonical as JsonWebKey, format: 'jwk' }).equals(cert.publicKey);
  } catch {
    same = false;
  }
  if (!same) invalid('jwks', `${where} x5c[0] does not hold the key's public key`);
  return { ...canonical, use: 'x509-svid', x5c: [cert.raw.toString('base64')] };
}

/**
 * Keys given by value: a JWKS (or a static SPIFFE bundle: its spiffe_sequence and
 * spiffe_refresh_hint members are accepted and dropped, use "jwt-svid" is kept as "sig", and
 * X.509-SVID authorities, use "x509-svid" with their x5c, are kept as they are). Public keys only,
 * each checked as a client's registered key.
 */
function parseJwks(v: unknown): { keys: PublicJwk[] } {
  if (!isPlainObject(v)) invalid('jwks', `jwks must be a JSON Web Key Set object, got ${describeJsonType(v)}`);
  const extra = Object.keys(v).find((k) => k !== 'keys' && k !== 'spiffe_sequence' && k !== 'spiffe_refresh_hint');
  if (extra !== undefined) invalid('jwks', `jwks has an unknown member ${JSON.stringify(extra)}`);
  if (!Array.isArray(v.keys)) invalid('jwks', 'jwks.keys must be an array');
  if (v.keys.length > MAX_KEYS) invalid('jwks', `jwks must contain at most ${MAX_KEYS} keys`);
  const keys: PublicJwk[] = [];
  for (const [i, key] of v.keys.entries()) {
    let k: unknown = key;
    if (isPlainObject(key) && Object.hasOwn(key, 'use')) {
      if (key.use === 'x509-svid') {
        keys.push(parseX509Authority(key, `jwks.keys[${i}]`));
        continue;
      }
      if (key.use === 'jwt-svid') k = { ...key, use: 'sig' };
    }
    keys.push(parseClientJwk(k, `jwks.keys[${i}]`, invalid));
  }
  if (keys.length === 0) invalid('jwks', 'jwks must contain at least one public key (for JWT signatures, or an X.509-SVID authority)');
  const kids = keys.map((k) => k.kid).filter((k) => k !== undefined);
  if (new Set(kids).size !== kids.length) invalid('jwks', 'jwks key ids (kid) must be unique');
  return { keys };
}

/** A PEM bundle of one or more CA certificates, each of which node:crypto parses; nothing else in it. */
function parseCaBundle(v: unknown): string {
  if (typeof v !== 'string') invalid('ca_bundle', `ca_bundle must be a string of PEM certificates, got ${describeJsonType(v)}`);
  if (v.length > MAX_CA_BUNDLE_LENGTH) invalid('ca_bundle', `ca_bundle must be at most ${MAX_CA_BUNDLE_LENGTH} characters`);
  const blocks = v.match(PEM_CERTIFICATE) ?? [];
  if (blocks.length === 0) invalid('ca_bundle', 'ca_bundle must hold at least one PEM certificate (-----BEGIN CERTIFICATE-----)');
  // Only certificates: a private key pasted into the bundle is refused, never stored.
  if (v.replace(PEM_CERTIFICATE, '').trim() !== '') invalid('ca_bundle', 'ca_bundle must hold PEM certificates only');
  for (const [i, block] of blocks.entries()) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch {
      invalid('ca_bundle', `ca_bundle certificate ${i + 1} is not a valid X.509 certificate`);
    }
    if (!cert.ca) invalid('ca_bundle', `ca_bundle certificate ${i + 1} (${cert.subject.replace(/\n/g, ', ')}) is not a CA certificate`);
  }
  return v;
}

function parseHosts(v: unknown): string[] {
  if (!Array.isArray(v)) invalid('allowed_private_hosts', `allowed_private_hosts must be an array of host names or IP addresses, got ${describeJsonType(v)}`);
  if (v.length > MAX_LIST) invalid('allowed_private_hosts', `allowed_private_hosts must have at most ${MAX_LIST} entries`);
  const seen = new Set<string>();
  for (const [i, h] of v.entries()) {
    if (typeof h !== 'string' || h.length === 0 || h.length > MAX_HOST_LENGTH || (isIP(h) === 0 && !HOST_NAME.test(h))) {
      invalid('allowed_private_hosts', `allowed_private_hosts[${i}] must be a lowercase host name or an IP address (no port, no brackets)`);
    }
    if (seen.has(h)) invalid('allowed_private_hosts', `allowed_private_hosts lists ${JSON.stringify(h)} more than once`);
    seen.add(h);
  }
  return [...seen];
}

function parseAudiences(v: unknown): string[] {
  if (!Array.isArray(v)) invalid('audiences', `audiences must be an array of strings, got ${describeJsonType(v)}`);
  if (v.length > MAX_LIST) invalid('audiences', `audiences must have at most ${MAX_LIST} entries`);
  const seen = new Set<string>();
  for (const [i, a] of v.entries()) {
    if (typeof a !== 'string' || a.length === 0 || a.length > MAX_URL_LENGTH || CONTROL_CHARS.test(a)) {
      invalid('audiences', `audiences[${i}] must be a non-empty string of at most ${MAX_URL_LENGTH} characters without control characters`);
    }
    if (seen.has(a)) invalid('audiences', `audiences lists ${JSON.stringify(a)} more than once`);
    seen.add(a);
  }
  return [...seen];
}

function parseLifetime(v: unknown): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < MIN_TOKEN_LIFETIME || v > MAX_TOKEN_LIFETIME) {
    invalid('max_token_lifetime', `max_token_lifetime must be a whole number of seconds from ${MIN_TOKEN_LIFETIME} to ${MAX_TOKEN_LIFETIME} (default ${DEFAULT_MAX_TOKEN_LIFETIME})`);
  }
  return v;
}

/**
 * The fields of a create or update input, each checked on its own (cross-field rules: checkTrust).
 * `null` clears a nullable field (issuer, trust_domain, jwks_uri, jwks, ca_bundle, single_use_jti).
 */
export function parseTrustFields(input: unknown, opts: TrustRuleOptions = {}): ParsedTrust {
  if (!isPlainObject(input)) throw new TrustValidationError(`A trusted issuer must be a JSON object, got ${describeJsonType(input)}`);
  for (const key of Object.keys(input)) {
    if (Object.hasOwn(READ_ONLY, key)) invalid(key, READ_ONLY[key]!);
    if (!FIELDS.has(key)) invalid(key, `Unknown field ${JSON.stringify(key)}`);
  }
  const out: ParsedTrust = {};
  const has = (k: string): boolean => Object.hasOwn(input, k) && input[k] !== undefined;
  if (has('name')) out.name = parseName(input.name);
  if (has('kind')) out.kind = parseKind(input.kind);
  if (has('issuer')) out.issuer = input.issuer === null ? null : parseIssuer(input.issuer, opts);
  if (has('trust_domain')) out.trustDomain = input.trust_domain === null ? null : parseTrustDomain(input.trust_domain);
  if (has('jwks_uri')) out.jwksUri = input.jwks_uri === null ? null : parseUrl('jwks_uri', input.jwks_uri, opts, 'where the keys are fetched');
  if (has('jwks')) out.jwks = input.jwks === null ? null : parseJwks(input.jwks);
  if (has('ca_bundle')) out.caBundle = input.ca_bundle === null ? null : parseCaBundle(input.ca_bundle);
  if (has('allowed_private_hosts')) out.allowedPrivateHosts = parseHosts(input.allowed_private_hosts);
  if (has('audiences')) out.audiences = parseAudiences(input.audiences);
  if (has('max_token_lifetime')) out.maxTokenLifetime = parseLifetime(input.max_token_lifetime);
  if (has('single_use_jti')) {
    if (input.single_use_jti !== null && typeof input.single_use_jti !== 'boolean') {
      invalid('single_use_jti', `single_use_jti must be true, false or null (the kind's default), got ${describeJsonType(input.single_use_jti)}`);
    }
    out.singleUseJti = input.single_use_jti as boolean | null;
  }
  return out;
}

/** What each kind needs and refuses, checked on the whole record after a create or an update. */
export function checkTrust(t: Omit<TrustedIssuerRecord, 'createdAt' | 'updatedAt'>): void {
  if (t.kind === 'spiffe') {
    if (t.trustDomain === null) invalid('trust_domain', 'trust_domain is required for kind spiffe');
    if (t.issuer !== null) invalid('issuer', 'issuer is not for kind spiffe: a JWT-SVID names its trust domain in sub, not in iss');
    if (t.audiences.length > 0) {
      invalid('audiences', 'audiences is not for kind spiffe: a JWT-SVID must name this server\'s issuer as its audience (draft-ietf-oauth-spiffe-client-auth)');
    }
    if (t.jwksUri === null && t.jwks === null) {
      invalid('jwks_uri', 'kind spiffe needs jwks_uri (the trust domain\'s bundle endpoint) or jwks (a static bundle)');
    }
  } else {
    if (t.jwks !== null && t.jwks.keys.some((k) => k.use === 'x509-svid')) invalid('jwks', `keys of use "x509-svid" are for kind spiffe only`);
    if (t.issuer === null) invalid('issuer', `issuer is required for kind ${t.kind}: the https URL its tokens carry in iss`);
    if (t.trustDomain !== null) invalid('trust_domain', 'trust_domain is only for kind spiffe');
  }
  if (t.caBundle !== null && t.jwksUri === null && t.jwks !== null) {
    invalid('ca_bundle', 'ca_bundle is for fetching keys; a trust with jwks only fetches nothing');
  }
}

const WIRE_NAMES: ReadonlyArray<[keyof TrustedIssuerRecord, string]> = [
  ['kind', 'kind'],
  ['issuer', 'issuer'],
  ['trustDomain', 'trust_domain'],
  ['jwksUri', 'jwks_uri'],
  ['jwks', 'jwks'],
  ['caBundle', 'ca_bundle'],
  ['allowedPrivateHosts', 'allowed_private_hosts'],
  ['audiences', 'audiences'],
  ['maxTokenLifetime', 'max_token_lifetime'],
  ['singleUseJti', 'single_use_jti'],
];

/** Wire names of the fields that differ. */
export function changedTrustFields(a: TrustedIssuerRecord, b: TrustedIssuerRecord): string[] {
  return WIRE_NAMES.filter(([k]) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).map(([, name]) => name);
}

/** A new trust from a create input, checked by every rule, without writing it (the registry's create, and `apply`). */
export function draftNewTrust(input: unknown, opts: TrustRuleOptions, now: number): TrustedIssuerRecord {
  const fields = parseTrustFields(input, opts);
  if (fields.name === undefined) invalid('name', 'name is required');
  if (fields.kind === undefined) invalid('kind', `kind is required: one of ${TRUST_KINDS.join(', ')}`);
  const trust: TrustedIssuerRecord = {
    name: fields.name,
    kind: fields.kind,
    issuer: fields.issuer ?? null,
    trustDomain: fields.trustDomain ?? null,
    jwksUri: fields.jwksUri ?? null,
    jwks: fields.jwks ?? null,
    caBundle: fields.caBundle ?? null,
    allowedPrivateHosts: fields.allowedPrivateHosts ?? [],
    audiences: fields.audiences ?? [],
    maxTokenLifetime: fields.maxTokenLifetime ?? DEFAULT_MAX_TOKEN_LIFETIME,
    singleUseJti: fields.singleUseJti ?? null,
    createdAt: now,
    updatedAt: now,
  };
  checkTrust(trust);
  return trust;
}
