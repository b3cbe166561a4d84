// The trust registry (issue 17): trusted issuers kept in a TrustStore, their fields checked by
// ./rules.ts, with an in-memory cache in front for the token endpoint and write-through on every
// change. Other instances are told through invalidate()/clear() (the change log's 'trust' kind),
// and whoever keeps state per trust (fetched keys) hears of every change through onChange().

import type { TrustedIssuerRecord, TrustLookup } from '../ground/trusts.js';
import type { AuditContext, EventBus } from '../observability/events.js';
import { StorageConflictError, type TrustStore } from '../storage/types.js';
import {
  changedTrustFields, checkTrust, draftNewTrust, invalid, MAX_TRUST_LIST_LIMIT, parseTrustFields, type TrustRuleOptions,
} from './rules.js';

export class TrustNotFoundError extends Error {
  readonly code = 'TRUST_NOT_FOUND';
  constructor(readonly trust: string) {
    super(`Trusted issuer ${JSON.stringify(trust.length > 100 ? `${trust.slice(0, 100)}...` : trust)} not found`);
    this.name = 'TrustNotFoundError';
  }
}

/** A create that chose a name already taken (HTTP 409). */
export class TrustExistsError extends Error {
  readonly code = 'TRUST_EXISTS';
  constructor(readonly trust: string) {
    super(`A trusted issuer named ${JSON.stringify(trust)} already exists`);
    this.name = 'TrustExistsError';
  }
}

/**
 * Deleting a trust that clients still name, or changing its kind or trust domain, against which
 * their subjects were checked (HTTP 409); the message names them.
 */
export class TrustInUseError extends Error {
  readonly code = 'TRUST_IN_USE';
  constructor(readonly trust: string, readonly clientIds: string[], more: boolean, what = 'delete') {
    super(`${what === 'delete' ? '' : `Cannot change ${what}: `}Trusted issuer ${JSON.stringify(trust)} is the federated_issuer of client${clientIds.length === 1 && !more ? '' : 's'} `
      + `${clientIds.join(', ')}${more ? ' and more' : ''}: change or delete ${clientIds.length === 1 && !more ? 'it' : 'them'} first`);
    this.name = 'TrustInUseError';
  }
}

export interface TrustRegistryOptions extends TrustRuleOptions {
  /** Clock in epoch ms (tests inject one). */
  now?: () => number;
}

export interface TrustPage {
  trusts: TrustedIssuerRecord[];
  /** Pass as `after` for the next page; null on the last page. */
  next: string | null;
}

/** How many of the clients naming a trust a refused delete names. */
const NAMED_IN_USE = 10;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

export class TrustRegistry implements TrustLookup {
  readonly #store: TrustStore;
  readonly #events: EventBus;
  readonly #rules: TrustRuleOptions;
  readonly #now: () => number;
  /** Trusts are few (one per cluster or CI platform): every one read is kept, unknown names never. */
  readonly #cache = new Map<string, TrustedIssuerRecord>();
  /** Bumped by every write and invalidation so that a read racing a write never caches the old record. */
  #generation = 0;
  readonly #listeners = new Set<(name: string) => void>();

  constructor(store: TrustStore, events: EventBus, opts: TrustRegistryOptions = {}) {
    this.#store = store;
    this.#events = events;
    this.#now = opts.now ?? Date.now;
    this.#rules = { allowHttpLoopback: opts.allowHttpLoopback === true };
  }

  /** The rules this registry applies (the client file's validation uses the same). */
  get rules(): TrustRuleOptions {
    return this.#rules;
  }

  /** The trust, from memory when cached; frozen, shared until the next write replaces it. */
  async get(name: string): Promise<TrustedIssuerRecord | undefined> {
    const hit = this.#cache.get(name);
    if (hit) return hit;
    const generation = this.#generation;
    const record = await this.#store.getTrust(name);
    if (!record) return undefined;
    deepFreeze(record);
    if (generation === this.#generation) this.#cache.set(name, record);
    return record;
  }

  /** The trust as stored now, bypassing the cache (admin reads); throws TrustNotFoundError. */
  async read(name: string): Promise<TrustedIssuerRecord> {
    const record = await this.#store.getTrust(name);
    if (!record) throw new TrustNotFoundError(name);
    return record;
  }

  /**
   * Calls `listener` with a trust's name whenever it changed here or on another instance (and
   * with '' after clear(): every trust may have changed). Returns the unsubscribe function.
   */
  onChange(listener: (name: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Drops one cached trust (another instance changed it). */
  invalidate(name: string): void {
    this.#generation++;
    this.#cache.delete(name);
    this.#notify(name);
  }

  clear(): void {
    this.#generation++;
    this.#cache.clear();
    this.#notify('');
  }

  async create(input: unknown, ctx: AuditContext = {}): Promise<TrustedIssuerRecord> {
    const trust = draftNewTrust(input, this.#rules, this.#now());
    try {
      await this.#store.createTrust(trust);
    } catch (err) {
      if (err instanceof StorageConflictError && err.reason === 'duplicate') throw new TrustExistsError(trust.name);
      throw err;
    }
    this.#written(trust);
    this.#events.emit('trust.created', { trust: trust.name, ...ctx });
    return trust;
  }

  /** Applies a partial update (null clears a nullable field); the name cannot change. An update that changes nothing writes nothing. */
  async update(name: string, patch: unknown, ctx: AuditContext = {}): Promise<TrustedIssuerRecord> {
    const fields = parseTrustFields(patch, this.#rules);
    if (fields.name !== undefined && fields.name !== name) {
      invalid('name', 'name cannot be changed: create a trust with the new name, move its clients, then delete this one');
    }
    const current = await this.read(name);
    const next: TrustedIssuerRecord = { ...current, ...fields, name };
    checkTrust(next);
    const changed = changedTrustFields(current, next);
    if (changed.length === 0) return current;
    // Its clients' subjects were checked against the kind and the trust domain (a SPIFFE ID in it).
    const bound = changed.filter((f) => f === 'kind' || f === 'trust_domain');
    if (bound.length > 0) {
      const named = await this.#store.clientsOfTrust(name, NAMED_IN_USE + 1);
      if (named.length > 0) throw new TrustInUseError(name, named.slice(0, NAMED_IN_USE), named.length > NAMED_IN_USE, bound.join(' and '));
    }
    next.updatedAt = this.#now();
    let found: boolean;
    try {
      found = await this.#store.updateTrust(next);
    } catch (err) {
      this.invalidate(name);
      throw err;
    }
    if (!found) {
      this.invalidate(name);
      throw new TrustNotFoundError(name);
    }
    this.#written(next);
    this.#events.emit('trust.updated', { trust: name, fields: changed, ...ctx });
    return next;
  }

  /** Deletes the trust; refused (TrustInUseError) while clients name it. */
  async delete(name: string, ctx: AuditContext = {}): Promise<void> {
    let existed: boolean;
    try {
      existed = await this.#store.deleteTrust(name);
    } catch (err) {
      if (err instanceof StorageConflictError && err.reason === 'trust_in_use') {
        const named = await this.#store.clientsOfTrust(name, NAMED_IN_USE + 1);
        throw new TrustInUseError(name, named.slice(0, NAMED_IN_USE), named.length > NAMED_IN_USE);
      }
      throw err;
    } finally {
      this.invalidate(name);
    }
    if (!existed) throw new TrustNotFoundError(name);
    this.#events.emit('trust.deleted', { trust: name, ...ctx });
  }

  /** One page of trusts in name order (keyset pagination). */
  async list(options: { after?: string; limit: number }): Promise<TrustPage> {
    const { after, limit } = options;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_TRUST_LIST_LIMIT) {
      invalid('limit', `limit must be a whole number between 1 and ${MAX_TRUST_LIST_LIMIT}`);
    }
    if (after !== undefined && (typeof after !== 'string' || after.length === 0)) invalid('after', 'after must be a non-empty trust name');
    const rows = await this.#store.listTrusts(after === undefined ? { limit: limit + 1 } : { after, limit: limit + 1 });
    const trusts = rows.slice(0, limit);
    return { trusts, next: rows.length > limit ? (trusts[trusts.length - 1]?.name ?? null) : null };
  }

  /** The client_ids naming the trust, at most `limit`. */
  clientsOf(name: string, limit: number): Promise<string[]> {
    return this.#store.clientsOfTrust(name, limit);
  }

  #written(record: TrustedIssuerRecord): void {
    this.#generation++;
    this.#cache.set(record.name, deepFreeze(record));
    this.#notify(record.name);
  }

  #notify(name: string): void {
    for (const listener of this.#listeners) {
      try {
        listener(name);
      } catch {
        // a listener must never break the write that told it
      }
    }
  }
}
