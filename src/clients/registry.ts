// The client registry: RFC 7591 §2 client metadata validated and kept in a ClientStore, with an
// in-memory cache in front of it for the token endpoint and write-through on every change.
//
// Every write goes through here, so every write replaces or drops the cached record before it
// returns: a disabled or deleted client, a rotated secret or the kill switch takes effect on the
// next token request of this instance. Other instances are told through invalidate()/clear().

import { createPublicKey, type JsonWebKey } from 'node:crypto';
import { CLIENT_ASSERTION_ALGS } from '../oauth/client-auth/private-key-jwt.js';
import type { AuditContext, EventBus } from '../observability/events.js';
import {
  StorageConflictError,
  TOKEN_ENDPOINT_AUTH_METHODS,
  type ClientRecord,
  type ClientSecretRecord,
  type ClientStore,
  type PublicJwk,
  type TokenEndpointAuthMethod,
} from '../storage/types.js';
import { generateClientId, generateClientSecret, secretDigest } from './secrets.js';
import type { ClientMetadataInput } from './wire.js';
import { SCOPE_TOKEN, URI_SCHEME } from '../oauth/token/scope.js';

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

export class ClientNotFoundError extends Error {
  readonly code = 'CLIENT_NOT_FOUND';
  readonly clientId: string;
  constructor(clientId: string) {
    super(`Client ${JSON.stringify(clientId.length > 100 ? `${clientId.slice(0, 100)}...` : clientId)} not found`);
    this.name = 'ClientNotFoundError';
    this.clientId = clientId;
  }
}

export interface ClientRegistryOptions {
  /** Bounds of a client's access_token_ttl, in seconds. */
  tokenTtlMin: number;
  tokenTtlMax: number;
  /** Default seconds a rotated secret keeps working. */
  secretGracePeriod: number;
  /** Clock in epoch ms (tests inject one). */
  now?: () => number;
  /** Most records kept in memory; default 10,000. */
  cacheSize?: number;
}

export interface IssuedClient {
  client: ClientRecord;
  /** The new secret, present only when one was issued; shown once, stored as a digest. */
  clientSecret?: string;
}

export interface RotatedSecret {
  client: ClientRecord;
  clientSecret: string;
  /** When the previous secret stops working (epoch ms); null when there was none. */
  previousExpiresAt: number | null;
}

export interface ClientPage {
  clients: ClientRecord[];
  /** Pass as `after` for the next page; null on the last page. */
  next: string | null;
}

export const DEFAULT_CACHE_SIZE = 10_000;
export const MAX_LIST_LIMIT = 1000;
/** A secret plus the previous ones still in their grace period; beyond this the oldest go at once. */
export const MAX_SECRETS = 5;
/** Longest grace period a rotation accepts, in seconds (one year). */
export const MAX_GRACE_PERIOD = 365 * 24 * 3600;

const MAX_NAME_LENGTH = 200;
const MAX_SCOPE_TOKENS = 100;
const MAX_SCOPE_TOKEN_LENGTH = 200;
const MAX_AUDIENCES = 100;
const MAX_URI_LENGTH = 2000;
const MAX_KEYS = 20;
const MIN_RSA_BITS = 2048;
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
const DEFAULT_GRANT_FIELDS = ['scope', 'defaultScope', 'audience', 'defaultAudience', 'grantTypes'] as const;

const FIELDS = new Set<string>([
  'client_name', 'scope', 'default_scope', 'audience', 'default_audience', 'grant_types', 'resource_uris',
  'token_endpoint_auth_method', 'jwks', 'access_token_ttl', 'rate_limit', 'token_reuse', 'disabled',
]);

/** RFC 7591 §2 grant_types this server implements. */
export const SUPPORTED_GRANT_TYPES: readonly string[] = ['client_credentials'];

/** Fields a caller may see in the wire form but never set; named so the error says why. */
const REFUSED: Record<string, string> = {
  client_secret: 'client_secret cannot be chosen: the server generates every secret (rotate the secret to get a new one)',
  client_id: 'client_id is assigned by the server and cannot be set',
  client_secret_expires_at: 'client_secret_expires_at is read-only',
  created_at: 'created_at is read-only',
  updated_at: 'updated_at is read-only',
  tokens_revoked_at: 'tokens_revoked_at is read-only (use the revoke-tokens action)',
  jwks_uri: 'jwks_uri is not supported: register the public keys in jwks',
};

// eslint-disable-next-line no-control-regex
const CONTROL_CHARS = /[\u0000-\u001F\u007F-\u009F]/;

/** JWK members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4). */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];
const SIGNING_CURVES: Record<string, readonly string[]> = {
  EC: ['P-256', 'P-384', 'P-521'],
  OKP: ['Ed25519', 'Ed448'],
};
const ALG_FAMILY: Record<string, (alg: string, crv: unknown) => boolean> = {
  EC: (alg, crv) =>
    (alg === 'ES256' && crv === 'P-256') || (alg === 'ES384' && crv === 'P-384') || (alg === 'ES512' && crv === 'P-521'),
  RSA: (alg) => /^(RS|PS)(256|384|512)$/.test(alg),
  OKP: (alg, crv) => alg === 'EdDSA' || (alg === 'Ed25519' && crv === 'Ed25519'),
};

function isSecretMethod(method: TokenEndpointAuthMethod): boolean {
  return method === 'client_secret_basic' || method === 'client_secret_post';
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

function invalid(field: string, message: string): never {
  throw new ClientValidationError(message, field);
}

function parseName(v: unknown): string {
  if (typeof v !== 'string') invalid('client_name', `client_name must be a string, got ${describe(v)}`);
  const length = [...v].length;
  if (v.trim().length === 0) invalid('client_name', 'client_name must not be empty');
  if (length > MAX_NAME_LENGTH) invalid('client_name', `client_name must be at most ${MAX_NAME_LENGTH} characters`);
  if (CONTROL_CHARS.test(v)) invalid('client_name', 'client_name must not contain control characters');
  return v;
}

/** A space-delimited scope string (RFC 6749 §3.3) as a list; "" is the empty list. */
function parseScope(field: string, v: unknown): string[] {
  if (typeof v !== 'string') invalid(field, `${field} must be a space-delimited string, got ${describe(v)}`);
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
  if (!Array.isArray(v)) invalid(field, `${field} must be an array of absolute URIs, got ${describe(v)}`);
  if (v.length === 0 && !allowEmpty) invalid(field, `${field} must name at least one resource URI`);
  if (v.length > MAX_AUDIENCES) invalid(field, `${field} must have at most ${MAX_AUDIENCES} entries`);
  const seen = new Set<string>();
  for (const [i, a] of v.entries()) {
    if (typeof a !== 'string') invalid(field, `${field}[${i}] must be a string, got ${describe(a)}`);
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
  if (!Array.isArray(v)) invalid('grant_types', `grant_types must be an array, got ${describe(v)}`);
  const seen = new Set<string>();
  for (const g of v) {
    if (typeof g !== 'string' || !SUPPORTED_GRANT_TYPES.includes(g)) {
      invalid('grant_types', `grant_types may only contain ${SUPPORTED_GRANT_TYPES.map((t) => JSON.stringify(t)).join(', ')} ([] for a client that only introspects or revokes)`);
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
  if (typeof v !== 'boolean') invalid(field, `${field} must be true or false, got ${describe(v)}`);
  return v;
}

function parseMethod(v: unknown): TokenEndpointAuthMethod {
  if (typeof v !== 'string' || !(TOKEN_ENDPOINT_AUTH_METHODS as readonly string[]).includes(v)) {
    invalid('token_endpoint_auth_method', `token_endpoint_auth_method must be one of ${TOKEN_ENDPOINT_AUTH_METHODS.join(', ')}`);
  }
  return v as TokenEndpointAuthMethod;
}

function parseJwk(key: unknown, i: number): PublicJwk {
  const where = `jwks.keys[${i}]`;
  if (!isPlainObject(key)) invalid('jwks', `${where} must be a JSON object, got ${describe(key)}`);
  const { kty } = key;
  if (typeof kty !== 'string') invalid('jwks', `${where} has no kty`);
  if (kty === 'oct') invalid('jwks', `${where} is a symmetric key (kty "oct"); register public keys only`);
  if (kty !== 'EC' && kty !== 'RSA' && kty !== 'OKP') invalid('jwks', `${where} has an unsupported kty ${JSON.stringify(kty)} (EC, RSA or OKP)`);
  for (const m of PRIVATE_JWK_MEMBERS) {
    if (m in key) invalid('jwks', `${where} contains the private key member "${m}"; register the public key only`);
  }
  const curves = SIGNING_CURVES[kty];
  if (curves && !curves.includes(key.crv as string)) {
    invalid('jwks', `${where} has an unsupported crv ${JSON.stringify(key.crv)} for ${kty} (${curves.join(', ')})`);
  }
  if (key.use !== undefined && key.use !== 'sig') invalid('jwks', `${where} use must be "sig"`);
  if (key.alg !== undefined) {
    if (typeof key.alg !== 'string' || !(CLIENT_ASSERTION_ALGS as readonly string[]).includes(key.alg)) {
      invalid('jwks', `${where} alg must be one of ${CLIENT_ASSERTION_ALGS.join(', ')}`);
    }
    if (!ALG_FAMILY[kty]?.(key.alg, key.crv)) invalid('jwks', `${where} alg ${key.alg} does not fit a ${kty} key`);
  }
  if (key.kid !== undefined && (typeof key.kid !== 'string' || key.kid.length === 0 || key.kid.length > 200)) {
    invalid('jwks', `${where} kid must be a non-empty string of at most 200 characters`);
  }
  let details;
  try {
    details = createPublicKey({ key: key as JsonWebKey, format: 'jwk' }).asymmetricKeyDetails;
  } catch {
    invalid('jwks', `${where} is not a valid ${kty} public key`);
  }
  if (kty === 'RSA' && (details?.modulusLength ?? 0) < MIN_RSA_BITS) {
    invalid('jwks', `${where} RSA modulus must be at least ${MIN_RSA_BITS} bits`);
  }
  return JSON.parse(JSON.stringify(key)) as PublicJwk;
}

function parseJwks(v: unknown): { keys: PublicJwk[] } {
  if (!isPlainObject(v)) invalid('jwks', `jwks must be a JSON Web Key Set object, got ${describe(v)}`);
  const extra = Object.keys(v).find((k) => k !== 'keys');
  if (extra !== undefined) invalid('jwks', `jwks has an unknown member ${JSON.stringify(extra)}`);
  if (!Array.isArray(v.keys)) invalid('jwks', 'jwks.keys must be an array');
  if (v.keys.length === 0) invalid('jwks', 'jwks must contain at least one public key');
  if (v.keys.length > MAX_KEYS) invalid('jwks', `jwks must contain at most ${MAX_KEYS} keys`);
  const keys = v.keys.map((k, i) => parseJwk(k, i));
  const kids = keys.map((k) => k.kid).filter((k) => k !== undefined);
  if (new Set(kids).size !== kids.length) invalid('jwks', 'jwks key ids (kid) must be unique');
  return { keys };
}

/** The fields of a create or update input, checked one by one; cross-field rules come later. */
type ParsedMetadata = Partial<Pick<ClientRecord,
  'clientName' | 'scope' | 'defaultScope' | 'audience' | 'defaultAudience' | 'grantTypes' | 'resourceUris'
  | 'tokenEndpointAuthMethod' | 'jwks' | 'accessTokenTtl' | 'rateLimit' | 'tokenReuse' | 'disabled'>>;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export class ClientRegistry {
  readonly #store: ClientStore;
  readonly #events: EventBus;
  readonly #opts: Required<Omit<ClientRegistryOptions, 'now'>>;
  readonly #now: () => number;
  /** Insertion order is recency order: a hit moves the entry to the end, eviction takes the first. */
  readonly #cache = new Map<string, ClientRecord>();
  /** The key last put at the end of #cache: hits on it need not move it (a busy client's run of hits moves nothing). */
  #newest: string | undefined;
  /** Bumped by every write and invalidation so that a read racing a write never caches the old record. */
  #generation = 0;
  readonly #locks = new Map<string, Promise<void>>();
  #hits = 0;
  #misses = 0;
  #onStoreRead: ((seconds: number) => void) | undefined;

  constructor(store: ClientStore, events: EventBus, opts: ClientRegistryOptions) {
    this.#store = store;
    this.#events = events;
    this.#now = opts.now ?? Date.now;
    this.#opts = {
      tokenTtlMin: opts.tokenTtlMin,
      tokenTtlMax: opts.tokenTtlMax,
      secretGracePeriod: opts.secretGracePeriod,
      cacheSize: opts.cacheSize ?? DEFAULT_CACHE_SIZE,
    };
  }

  /**
   * The client, from memory when cached. Unknown ids are not remembered, so they cannot fill the
   * cache. The record is frozen: it is shared by every caller until the next write replaces it.
   */
  async get(clientId: string): Promise<ClientRecord | undefined> {
    const hit = this.#cache.get(clientId);
    if (hit) {
      this.#hits++;
      if (clientId !== this.#newest) {
        this.#cache.delete(clientId);
        this.#cache.set(clientId, hit);
        this.#newest = clientId;
      }
      return hit;
    }
    this.#misses++;
    const generation = this.#generation;
    const started = this.#onStoreRead === undefined ? 0 : performance.now();
    const record = await this.#store.getClient(clientId);
    this.#onStoreRead?.((performance.now() - started) / 1000);
    if (!record) return undefined;
    deepFreeze(record);
    if (generation === this.#generation) this.#remember(record);
    return record;
  }

  /** The client as stored now, bypassing the cache (admin reads); throws ClientNotFoundError. */
  async read(clientId: string): Promise<ClientRecord> {
    return this.#load(clientId);
  }

  /** Drops one cached record (another instance changed it). */
  invalidate(clientId: string): void {
    this.#generation++;
    this.#cache.delete(clientId);
  }

  clear(): void {
    this.#generation++;
    this.#cache.clear();
  }

  /** Number of cached records. */
  get cacheSize(): number {
    return this.#cache.size;
  }

  /** Lookups answered from memory and from the store since start (metrics). */
  get cacheStats(): { hits: number; misses: number } {
    return { hits: this.#hits, misses: this.#misses };
  }

  /** Reports the seconds each store read made on a cache miss took (metrics). */
  observeStoreReads(observer: (seconds: number) => void): void {
    this.#onStoreRead = observer;
  }

  async create(input: ClientMetadataInput, ctx: AuditContext = {}): Promise<IssuedClient> {
    const fields = this.#parse(input);
    if (fields.clientName === undefined) invalid('client_name', 'client_name is required');
    const method = fields.tokenEndpointAuthMethod ?? 'client_secret_basic';
    const now = this.#now();
    if (isSecretMethod(method) && fields.jwks != null) {
      invalid('jwks', 'jwks is only for token_endpoint_auth_method private_key_jwt');
    }
    const clientSecret = isSecretMethod(method) ? generateClientSecret() : undefined;
    const draft: Omit<ClientRecord, 'clientId'> = {
      clientName: fields.clientName,
      scope: fields.scope ?? [],
      defaultScope: fields.defaultScope ?? null,
      audience: fields.audience ?? [],
      defaultAudience: fields.defaultAudience ?? null,
      grantTypes: fields.grantTypes ?? ['client_credentials'],
      resourceUris: fields.resourceUris ?? [],
      tokenEndpointAuthMethod: method,
      jwks: fields.jwks ?? null,
      accessTokenTtl: fields.accessTokenTtl ?? null,
      rateLimit: fields.rateLimit ?? null,
      tokenReuse: fields.tokenReuse ?? false,
      disabled: fields.disabled ?? false,
      secrets: clientSecret === undefined ? [] : [{ digest: secretDigest(clientSecret), createdAt: now, expiresAt: null }],
      tokensRevokedAt: null,
      createdAt: now,
      updatedAt: now,
    };
    this.#checkRecord(draft);
    // 96 random bits make a collision unheard of; a retry keeps one from surfacing as an error.
    for (let attempt = 0; ; attempt++) {
      const client: ClientRecord = { clientId: generateClientId(), ...draft };
      try {
        await this.#store.createClient(client);
      } catch (err) {
        if (err instanceof StorageConflictError && attempt < 2) continue;
        throw err;
      }
      this.#written(client);
      this.#events.emit('client.created', { clientId: client.clientId, ...ctx });
      return clientSecret === undefined ? { client } : { client, clientSecret };
    }
  }

  /**
   * Applies a partial metadata update. Switching to a secret method from private_key_jwt issues a
   * secret (returned once) and drops jwks; switching to private_key_jwt needs jwks and drops the
   * secrets. An update that changes nothing writes nothing.
   */
  async update(clientId: string, patch: ClientMetadataInput, ctx: AuditContext = {}): Promise<IssuedClient> {
    const fields = this.#parse(patch);
    return this.#exclusive(clientId, async () => {
      const current = await this.#load(clientId);
      const now = this.#now();
      const next: ClientRecord = { ...current, ...fields };
      let clientSecret: string | undefined;
      if (isSecretMethod(next.tokenEndpointAuthMethod)) {
        if (fields.jwks != null) invalid('jwks', 'jwks is only for token_endpoint_auth_method private_key_jwt');
        next.jwks = null;
        if (next.secrets.length === 0) {
          clientSecret = generateClientSecret();
          next.secrets = [{ digest: secretDigest(clientSecret), createdAt: now, expiresAt: null }];
        }
      } else {
        next.secrets = [];
      }
      // A client stored before the default-token check can still be changed in other ways.
      this.#checkRecord(next, DEFAULT_GRANT_FIELDS.some((f) => fields[f] !== undefined));
      const changed = changedFields(current, next);
      if (changed.length === 0) return { client: current };
      next.updatedAt = now;
      await this.#replace(next);
      this.#events.emit('client.updated', { clientId, fields: changed, ...ctx });
      if (current.disabled !== next.disabled) {
        this.#events.emit(next.disabled ? 'client.disabled' : 'client.enabled', { clientId, ...ctx });
      }
      return clientSecret === undefined ? { client: next } : { client: next, clientSecret };
    });
  }

  async setDisabled(clientId: string, disabled: boolean, ctx: AuditContext = {}): Promise<ClientRecord> {
    if (typeof disabled !== 'boolean') invalid('disabled', 'disabled must be a boolean');
    return this.#exclusive(clientId, async () => {
      const current = await this.#load(clientId);
      if (current.disabled === disabled) return current;
      const next: ClientRecord = { ...current, disabled, updatedAt: this.#now() };
      await this.#replace(next);
      this.#events.emit(disabled ? 'client.disabled' : 'client.enabled', { clientId, ...ctx });
      return next;
    });
  }

  /**
   * Issues a new secret (newest first). Every earlier secret stops working at now + grace at the
   * latest (a shorter expiry it already has is kept); expired ones are dropped, so grace 0 ends
   * the old secret at once.
   */
  async rotateSecret(clientId: string, graceSeconds?: number, ctx: AuditContext = {}): Promise<RotatedSecret> {
    const grace = graceSeconds ?? this.#opts.secretGracePeriod;
    if (!Number.isSafeInteger(grace) || grace < 0 || grace > MAX_GRACE_PERIOD) {
      invalid('grace_period', `grace_period must be a whole number of seconds between 0 and ${MAX_GRACE_PERIOD}`);
    }
    return this.#exclusive(clientId, async () => {
      const current = await this.#load(clientId);
      if (!isSecretMethod(current.tokenEndpointAuthMethod)) {
        invalid('token_endpoint_auth_method', 'The client authenticates with private_key_jwt and has no secret to rotate');
      }
      const now = this.#now();
      const until = now + grace * 1000;
      const capped: ClientSecretRecord[] = current.secrets.map((s) => ({
        ...s,
        expiresAt: s.expiresAt === null ? until : Math.min(s.expiresAt, until),
      }));
      const previousExpiresAt = capped[0]?.expiresAt ?? null;
      const clientSecret = generateClientSecret();
      const secrets = [
        { digest: secretDigest(clientSecret), createdAt: now, expiresAt: null },
        ...capped.filter((s) => s.expiresAt !== null && s.expiresAt > now),
      ].slice(0, MAX_SECRETS);
      const next: ClientRecord = { ...current, secrets, updatedAt: now };
      await this.#replace(next);
      this.#events.emit('client.secret_rotated', { clientId, previousExpiresAt, ...ctx });
      return { client: next, clientSecret, previousExpiresAt };
    });
  }

  /** Kill switch: every token issued to the client before now becomes inactive. */
  async revokeTokens(clientId: string, ctx: AuditContext = {}): Promise<ClientRecord> {
    return this.#exclusive(clientId, async () => {
      const current = await this.#load(clientId);
      const now = this.#now();
      const next: ClientRecord = { ...current, tokensRevokedAt: now, updatedAt: now };
      await this.#replace(next);
      this.#events.emit('client.tokens_revoked', { clientId, before: now, ...ctx });
      return next;
    });
  }

  async delete(clientId: string, ctx: AuditContext = {}): Promise<void> {
    await this.#exclusive(clientId, async () => {
      this.invalidate(clientId);
      const existed = await this.#store.deleteClient(clientId);
      this.invalidate(clientId);
      if (!existed) throw new ClientNotFoundError(clientId);
      this.#events.emit('client.deleted', { clientId, ...ctx });
    });
  }

  /** One page of clients in client_id order (keyset pagination). */
  async list(options: { after?: string; limit: number }): Promise<ClientPage> {
    const { after, limit } = options;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      invalid('limit', `limit must be a whole number between 1 and ${MAX_LIST_LIMIT}`);
    }
    if (after !== undefined && (typeof after !== 'string' || after.length === 0)) {
      invalid('after', 'after must be a non-empty client_id');
    }
    const rows = await this.#store.listClients(after === undefined ? { limit: limit + 1 } : { after, limit: limit + 1 });
    const clients = rows.slice(0, limit);
    const next = rows.length > limit ? (clients[clients.length - 1]?.clientId ?? null) : null;
    return { clients, next };
  }

  #parse(input: unknown): ParsedMetadata {
    if (!isPlainObject(input)) throw new ClientValidationError(`Client metadata must be a JSON object, got ${describe(input)}`);
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
    if (has('access_token_ttl')) out.accessTokenTtl = input.access_token_ttl === null ? null : this.#parseTtl(input.access_token_ttl);
    if (has('rate_limit')) out.rateLimit = input.rate_limit === null ? null : parseRateLimit(input.rate_limit);
    if (has('token_reuse')) out.tokenReuse = parseBoolean('token_reuse', input.token_reuse);
    if (has('disabled')) out.disabled = parseBoolean('disabled', input.disabled);
    return out;
  }

  #parseTtl(v: unknown): number {
    const { tokenTtlMin: min, tokenTtlMax: max } = this.#opts;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      invalid('access_token_ttl', `access_token_ttl must be a whole number of seconds between ${min} and ${max}, or null for the server default`);
    }
    return v;
  }

  /** Rules between fields, checked on the whole record after create or update. */
  /** Cross-field rules; the default token's size only when `grantChanged` (a create, or an update of what it is made of). */
  #checkRecord(c: Omit<ClientRecord, 'clientId'>, grantChanged = true): void {
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
    if (c.tokenEndpointAuthMethod === 'private_key_jwt' && c.jwks === null) {
      invalid('jwks', 'jwks with at least one public key is required for token_endpoint_auth_method private_key_jwt');
    }
    if (grantChanged && c.grantTypes.includes('client_credentials')) {
      const scope = c.defaultScope ?? c.scope;
      const audience = c.defaultAudience ?? c.audience;
      const size = JSON.stringify(scope.join(' ')).length + JSON.stringify(audience).length;
      if (size > MAX_DEFAULT_GRANT_JSON) {
        invalid(c.defaultAudience === null ? 'audience' : 'default_audience',
          `a token request that names no scope and no resource gets ${c.defaultScope === null ? 'every scope' : 'default_scope'} and `
          + `${c.defaultAudience === null ? 'every audience' : 'default_audience'}, and these take ${size} characters, more than the ${MAX_DEFAULT_GRANT_JSON} `
          + 'that fit in an access token; set default_audience (and default_scope) to fewer values');
      }
    }
  }

  async #load(clientId: string): Promise<ClientRecord> {
    const record = await this.#store.getClient(clientId);
    if (!record) throw new ClientNotFoundError(clientId);
    return record;
  }

  async #replace(next: ClientRecord): Promise<void> {
    let found: boolean;
    try {
      found = await this.#store.updateClient(next);
    } catch (err) {
      this.invalidate(next.clientId);
      throw err;
    }
    if (!found) {
      this.invalidate(next.clientId);
      throw new ClientNotFoundError(next.clientId);
    }
    this.#written(next);
  }

  #written(record: ClientRecord): void {
    this.#generation++;
    this.#remember(deepFreeze(record));
  }

  #remember(record: ClientRecord): void {
    // Deleted first so that a record already cached moves to the end too (Map.set keeps its place).
    this.#cache.delete(record.clientId);
    this.#cache.set(record.clientId, record);
    this.#newest = record.clientId;
    if (this.#cache.size > this.#opts.cacheSize) {
      const oldest = this.#cache.keys().next();
      if (!oldest.done) this.#cache.delete(oldest.value);
    }
  }

  /** Runs writes to one client one after another, so two rotations cannot lose a secret. */
  async #exclusive<T>(clientId: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.#locks.get(clientId) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const tail = previous.then(() => mine);
    this.#locks.set(clientId, tail);
    await previous;
    try {
      return await fn();
    } finally {
      release();
      if (this.#locks.get(clientId) === tail) this.#locks.delete(clientId);
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
  ['disabled', 'disabled'],
  ['secrets', 'client_secret'],
];

/** Wire names of the fields that differ. */
function changedFields(a: ClientRecord, b: ClientRecord): string[] {
  return METADATA_FIELDS.filter(([k]) => JSON.stringify(a[k]) !== JSON.stringify(b[k])).map(([, name]) => name);
}
