// The client registry: clients kept in a ClientStore, their metadata checked by ./metadata.ts, with
// an in-memory cache in front of it for the token endpoint and write-through on every change.
//
// Every write goes through here, so every write replaces or drops the cached record before it
// returns: a disabled or deleted client, a rotated secret or the kill switch takes effect on the
// next token request of this instance. Other instances are told through invalidate()/clear().

import type { ClientRecord, ClientSecretRecord } from '../ground/records.js';
import { FEDERATED_JWT, type TrustLookup } from '../ground/trusts.js';
import type { AuditContext, EventBus } from '../observability/events.js';
import { StorageConflictError, type ClientStore } from '../storage/types.js';
import { ClientValidationError } from './metadata.js';
import {
  changedFields, checkFederationAgainst, checkRecord, DEFAULT_GRANT_FIELDS, invalid, isSecretMethod, MAX_GRACE_PERIOD, MAX_LIST_LIMIT,
  mergedFederation, parseChosenClientId, parseMetadata, parseSecretDigest, patchTlsClientAuth, type ParsedMetadata,
} from './metadata.js';
import { generateClientId, generateClientSecret, secretDigest } from './secrets.js';
import type { ClientCreateInput, ClientMetadataInput } from './wire.js';
import { makeRoom } from '../ground/bounded-map.js';

export class ClientNotFoundError extends Error {
  readonly code = 'CLIENT_NOT_FOUND';
  readonly clientId: string;
  constructor(clientId: string) {
    super(`Client ${JSON.stringify(clientId.length > 100 ? `${clientId.slice(0, 100)}...` : clientId)} not found`);
    this.name = 'ClientNotFoundError';
    this.clientId = clientId;
  }
}

/** A create that chose a client_id already taken (HTTP 409). */
export class ClientExistsError extends Error {
  readonly code = 'CLIENT_EXISTS';
  readonly clientId: string;
  constructor(clientId: string) {
    super(`A client with client_id ${JSON.stringify(clientId)} already exists`);
    this.name = 'ClientExistsError';
    this.clientId = clientId;
  }
}

/** A federated (trust, subject) pair another client already has (HTTP 409). */
export class FederatedIdentityTakenError extends Error {
  readonly code = 'FEDERATED_IDENTITY_TAKEN';
  constructor(message: string) {
    super(`${message.charAt(0).toUpperCase()}${message.slice(1)}: a (federated_issuer, federated_subject) pair belongs to one client at most`);
    this.name = 'FederatedIdentityTakenError';
  }
}

/** The registry's words for a store conflict on a federated client; undefined for other conflicts. */
function federationConflict(err: unknown): Error | undefined {
  if (!(err instanceof StorageConflictError)) return undefined;
  if (err.reason === 'federated_identity') return new FederatedIdentityTakenError(err.message);
  // A trust deleted between the check and the write.
  if (err.reason === 'unknown_trust') return new ClientValidationError(`federated_issuer names no trusted issuer (${err.message})`, 'federated_issuer');
  return undefined;
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
  /**
   * Where a federated client's trust is read when the client is written (it must exist; a spiffe
   * trust's domain bounds the subject). Read fresh, not from a cache. Without it only the
   * database's reference check applies.
   */
  trusts?: TrustLookup;
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

/**
 * A new client from a create input, checked by every rule the registry applies (metadata, the
 * rules between fields, the default token's size), without writing it: the registry's create,
 * and `m2m-auth apply`, which validates a whole client file before applying any of it. The input
 * may choose its client_id (else one is issued at write time) and, for a secret method, carry
 * client_secret_sha256, the digest of an existing secret, instead of getting a new secret.
 * `ttl` bounds access_token_ttl (M2M_AUTH_TOKEN_TTL_MIN and _MAX).
 */
export function draftNewClient(input: unknown, ttl: { min: number; max: number }, now: number): NewClient {
  const isObject = typeof input === 'object' && input !== null && !Array.isArray(input);
  const { client_id: chosenId, client_secret_sha256: digest, ...metadata }: ClientCreateInput = isObject ? input : {};
  // Anything but an object is refused by the metadata parser, with its own words.
  const fields = parseMetadata(isObject ? metadata : input, ttl);
  const clientId = chosenId === undefined ? undefined : parseChosenClientId(chosenId);
  const givenDigest = digest === undefined ? undefined : parseSecretDigest(digest);
  if (fields.clientName === undefined) invalid('client_name', 'client_name is required');
  const method = fields.tokenEndpointAuthMethod ?? 'client_secret_basic';
  if (isSecretMethod(method) && fields.jwks != null) {
    invalid('jwks', 'jwks is only for token_endpoint_auth_method private_key_jwt');
  }
  const federation = mergedFederation(null, fields);
  if (givenDigest !== undefined && !isSecretMethod(method)) {
    invalid('client_secret_sha256', 'client_secret_sha256 is only for the secret methods (client_secret_basic, client_secret_post)');
  }
  const clientSecret = isSecretMethod(method) && givenDigest === undefined ? generateClientSecret() : undefined;
  const secretDigests = clientSecret !== undefined ? [secretDigest(clientSecret)] : givenDigest !== undefined ? [givenDigest] : [];
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
    federation,
    accessTokenTtl: fields.accessTokenTtl ?? null,
    rateLimit: fields.rateLimit ?? null,
    tokenReuse: fields.tokenReuse ?? false,
    dpopBoundAccessTokens: fields.dpopBoundAccessTokens ?? false,
    fapi2: fields.fapi2 ?? false,
    disabled: fields.disabled ?? false,
    claims: fields.claims ?? {},
    tlsClientAuth: patchTlsClientAuth(null, fields.tlsClientAuth),
    tlsClientCertificateBoundAccessTokens: fields.tlsClientCertificateBoundAccessTokens ?? false,
    secrets: secretDigests.map((d) => ({ digest: d, createdAt: now, expiresAt: null })),
    tokensRevokedAt: null,
    createdAt: now,
    updatedAt: now,
  };
  checkRecord(draft);
  return { clientId, draft, ...(clientSecret !== undefined && { clientSecret }) };
}

export interface NewClient {
  /** The chosen client_id; undefined = one is issued when the client is written. */
  clientId: string | undefined;
  draft: Omit<ClientRecord, 'clientId'>;
  /** The new secret, when one was issued. */
  clientSecret?: string;
}

export const DEFAULT_CACHE_SIZE = 10_000;

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
  readonly #opts: Required<Omit<ClientRegistryOptions, 'now' | 'trusts'>>;
  readonly #trusts: TrustLookup | undefined;
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
    this.#trusts = opts.trusts;
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

  /**
   * Registers a client. The input may choose its client_id (else one is issued, see
   * parseChosenClientId) and, for a secret method, carry client_secret_sha256, the digest of an
   * existing secret, instead of getting a new secret (then none is returned).
   */
  async create(input: ClientCreateInput, ctx: AuditContext = {}): Promise<IssuedClient> {
    const { clientId, draft, clientSecret } = draftNewClient(input, { min: this.#opts.tokenTtlMin, max: this.#opts.tokenTtlMax }, this.#now());
    await this.#checkFederation(draft);
    // 96 random bits make a collision unheard of; a retry keeps one from surfacing as an error.
    // A chosen client_id is tried once: a clash is the operator's to resolve.
    for (let attempt = 0; ; attempt++) {
      const client: ClientRecord = { clientId: clientId ?? generateClientId(), ...draft };
      try {
        await this.#store.createClient(client);
      } catch (err) {
        const federated = federationConflict(err);
        if (federated) throw federated;
        if (err instanceof StorageConflictError && clientId !== undefined) throw new ClientExistsError(clientId);
        if (err instanceof StorageConflictError && attempt < 2) continue;
        throw err;
      }
      this.#written(client);
      this.#events.emit('client.created', { clientId: client.clientId, ...ctx });
      return clientSecret === undefined ? { client } : { client, clientSecret };
    }
  }

  /** The checks of create, without writing: throws the ClientValidationError create would (the admin API's words for a request its schema refuses). */
  checkCreate(input: unknown): void {
    draftNewClient(input, { min: this.#opts.tokenTtlMin, max: this.#opts.tokenTtlMax }, this.#now());
  }

  /** The checks of update that need no stored record, without writing (as checkCreate). */
  checkUpdate(input: unknown): void {
    this.#fields(input);
  }

  /**
   * Applies a partial metadata update. Switching to a secret method from private_key_jwt issues a
   * secret (returned once) and drops jwks; switching to private_key_jwt needs jwks and drops the
   * secrets. An update that changes nothing writes nothing.
   */
  async update(clientId: string, patch: ClientMetadataInput, ctx: AuditContext = {}): Promise<IssuedClient> {
    const fields = this.#fields(patch);
    return this.#exclusive(clientId, async () => {
      const current = await this.#load(clientId);
      const now = this.#now();
      const { federatedIssuer, federatedSubject, federatedClaims, tlsClientAuth: tlsPatch, ...recordFields } = fields;
      const next: ClientRecord = { ...current, ...recordFields, tlsClientAuth: patchTlsClientAuth(current.tlsClientAuth, tlsPatch) };
      const federationSent = federatedIssuer !== undefined || federatedSubject !== undefined || federatedClaims !== undefined;
      // Switching away from federated_jwt drops the federation, as switching away from private_key_jwt drops jwks.
      next.federation = next.tokenEndpointAuthMethod !== FEDERATED_JWT && !federationSent ? null : mergedFederation(current.federation, fields);
      if (next.tokenEndpointAuthMethod === FEDERATED_JWT && fields.jwks === undefined) next.jwks = null;
      // Leaving tls_client_auth drops its certificate name, as leaving private_key_jwt drops jwks;
      // a name sent in the same update is still refused by checkRecord.
      if (next.tokenEndpointAuthMethod !== 'tls_client_auth' && tlsPatch === undefined) next.tlsClientAuth = null;
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
      checkRecord(next, DEFAULT_GRANT_FIELDS.some((f) => fields[f] !== undefined));
      const changed = changedFields(current, next);
      if (changed.length === 0) return { client: current };
      if (changed.some((f) => f.startsWith('federated_'))) await this.#checkFederation(next);
      next.updatedAt = now;
      try {
        await this.#replace(next);
      } catch (err) {
        throw federationConflict(err) ?? err;
      }
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
   * Issues a new secret (newest first) and keeps at most one previous secret: the one that was
   * current stops working at now + grace at the latest (a shorter expiry it already has is kept),
   * and every older one still in its grace ends at once. Grace 0 ends the previous secret at once.
   */
  async rotateSecret(clientId: string, graceSeconds?: number, ctx: AuditContext = {}): Promise<RotatedSecret> {
    const grace = graceSeconds ?? this.#opts.secretGracePeriod;
    if (!Number.isSafeInteger(grace) || grace < 0 || grace > MAX_GRACE_PERIOD) {
      invalid('grace_period', `grace_period must be a whole number of seconds between 0 and ${MAX_GRACE_PERIOD}`);
    }
    return this.#exclusive(clientId, async () => {
      const current = await this.#load(clientId);
      if (!isSecretMethod(current.tokenEndpointAuthMethod)) {
        invalid('token_endpoint_auth_method', `The client authenticates with ${current.tokenEndpointAuthMethod} and has no secret to rotate`);
      }
      const now = this.#now();
      const until = now + grace * 1000;
      // secrets[0] is the current one; the rest are earlier secrets whose grace ends with this rotation.
      const previous = current.secrets[0];
      const kept: ClientSecretRecord | undefined =
        previous && { ...previous, expiresAt: previous.expiresAt === null ? until : Math.min(previous.expiresAt, until) };
      const previousExpiresAt = kept?.expiresAt ?? null;
      const clientSecret = generateClientSecret();
      const secrets: ClientSecretRecord[] = [{ digest: secretDigest(clientSecret), createdAt: now, expiresAt: null }];
      if (kept && kept.expiresAt !== null && kept.expiresAt > now) secrets.push(kept);
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

  async #checkFederation(client: Omit<ClientRecord, 'clientId'>): Promise<void> {
    if (client.federation === null || this.#trusts === undefined) return;
    checkFederationAgainst(client.federation, await this.#trusts.get(client.federation.trust));
  }

  #fields(input: unknown): ParsedMetadata {
    return parseMetadata(input, { min: this.#opts.tokenTtlMin, max: this.#opts.tokenTtlMax });
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
    makeRoom(this.#cache, this.#opts.cacheSize);
    this.#cache.set(record.clientId, record);
    this.#newest = record.clientId;
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

