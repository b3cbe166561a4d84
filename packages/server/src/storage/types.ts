// Storage interfaces: the few things m2m-auth persists. Every backend implements them and
// passes the one conformance suite in ./conformance.ts.
//
// Rules every backend follows:
// - All times are epoch milliseconds (numbers).
// - Secrets and tokens are never stored: only SHA-256 digests of client secrets and the `jti`
//   of revoked tokens.
// - Every write that can expire carries its expiry, so SQL backends can sweep and Redis can use TTLs.
// - Methods are async so that network backends fit the same shape; the embedded SQLite backend
//   answers synchronously underneath.

import type { ClientRecord, RevocationRecord, SigningKeyRecord } from '../ground/records.js';
import type { TrustedIssuerRecord } from '../ground/trusts.js';

export interface ListClientsOptions {
  /** Return clients whose clientId sorts after this one (keyset pagination). */
  after?: string;
  limit: number;
}

export interface ClientStore {
  /**
   * Inserts a new client; rejects with StorageConflictError if the clientId exists (reason
   * 'duplicate'), if another client has its federation's (trust, subject) ('federated_identity'),
   * or if its federation names a trust that does not exist ('unknown_trust'). updateClient rejects
   * the last two alike.
   */
  createClient(client: ClientRecord): Promise<void>;
  getClient(clientId: string): Promise<ClientRecord | undefined>;
  /** Clients ordered by clientId ascending, compared by code point (binary; COLLATE "C" in PostgreSQL). */
  listClients(options: ListClientsOptions): Promise<ClientRecord[]>;
  /** Replaces the stored client; false when it does not exist. */
  updateClient(client: ClientRecord): Promise<boolean>;
  /** False when it did not exist. */
  deleteClient(clientId: string): Promise<boolean>;
}

export interface ListTrustsOptions {
  /** Return trusts whose name sorts after this one (keyset pagination). */
  after?: string;
  limit: number;
}

/** Trusted issuers (issue 17), each named by its unique name; clients name them in their federation. */
export interface TrustStore {
  /** Inserts a new trust; rejects with StorageConflictError (reason 'duplicate') if the name exists. */
  createTrust(trust: TrustedIssuerRecord): Promise<void>;
  getTrust(name: string): Promise<TrustedIssuerRecord | undefined>;
  /** Trusts ordered by name ascending, by code point. */
  listTrusts(options: ListTrustsOptions): Promise<TrustedIssuerRecord[]>;
  /** Replaces the stored trust (found by name); false when it does not exist. */
  updateTrust(trust: TrustedIssuerRecord): Promise<boolean>;
  /**
   * Deletes the trust; false when it did not exist. Rejects with StorageConflictError (reason
   * 'trust_in_use') while a client's federation names it: the database refuses it, so a client
   * written concurrently cannot be left naming a deleted trust.
   */
  deleteTrust(name: string): Promise<boolean>;
  /** The client_ids (ascending, at most `limit`) whose federation names the trust. */
  clientsOfTrust(name: string, limit: number): Promise<string[]>;
}

export interface KeyStore {
  listKeys(): Promise<SigningKeyRecord[]>;
  /** Rejects with StorageConflictError if the kid exists. */
  insertKey(key: SigningKeyRecord): Promise<void>;
  /**
   * Inserts `key` only when no stored key has createdAt > `since`; true when it inserted. Atomic
   * across every instance on the database, so that of many concurrent calls exactly one inserts
   * (automatic rotation happens once per cluster). Rejects with StorageConflictError if the kid exists.
   */
  insertKeyIfNoneSince(key: SigningKeyRecord, since: number): Promise<boolean>;
  /** Marks a key retired; false when the key does not exist or was revoked (a revocation stands). */
  retireKey(kid: string, retiredAt: number, expiresAt: number): Promise<boolean>;
  /**
   * Marks a key revoked at `revokedAt`: revokedAt is set (an earlier revocation's time is kept),
   * retiredAt too when the key was not retired yet, and expiresAt becomes the earlier of its own
   * and `expiresAt`. False when the key does not exist.
   */
  revokeKey(kid: string, revokedAt: number, expiresAt: number): Promise<boolean>;
  /** Deletes keys whose expiresAt is at or before `now`; returns the kids this call deleted. */
  deleteExpiredKeys(now: number): Promise<string[]>;
}

export interface RevocationStore {
  /** Idempotent: revoking a revoked jti again is not an error. */
  revokeToken(record: RevocationRecord): Promise<void>;
  isTokenRevoked(jti: string, now: number): Promise<boolean>;
  /** Revocations that have not expired at `now`. */
  listRevocations(now: number): Promise<RevocationRecord[]>;
}

export interface ReplayStore {
  /**
   * Records `key` as used until `expiresAt`. True the first time; false when the key was already
   * used and has not expired (RFC 7523 §3 jti replay).
   */
  consumeOnce(key: string, expiresAt: number, now: number): Promise<boolean>;
  /** Keys still in force at `now` (expiresAt > now), in key order: what an export carries. */
  listReplay(now: number): Promise<ReplayRecord[]>;
}

/** A single-use key and when its use stops counting. */
export interface ReplayRecord {
  key: string;
  expiresAt: number;
}

/** What changed: a client (key = client_id), a revocation (key = jti), the key set (key = kid) or a trust (key = name). */
export type ChangeKind = 'client' | 'revocation' | 'keys' | 'trust';

export interface ChangeRecord {
  /** Strictly increasing across the database (gaps allowed). */
  seq: number;
  kind: ChangeKind;
  key: string;
  /** For a revocation, the token's exp (ms); otherwise null. */
  expiresAt: number | null;
  createdAt: number;
}

/** How long changes are kept for instances to catch up (ms); an instance further behind resynchronises fully. */
export const CHANGE_RETENTION_MS = 60 * 60 * 1000;

/**
 * The change log: every write to clients, trusts, signing keys and revocations appends a change in the
 * same transaction (the backends use triggers), so instances sharing a database can invalidate
 * their caches by reading it (and by a notification channel where the backend has one).
 */
export interface ChangeLog {
  /** The highest seq written so far (0 when none); never goes back, even after pruning. */
  head(): Promise<number>;
  /**
   * Changes with seq > after, ascending, at most `limit`. `complete` is false when changes after
   * `after` were pruned: the caller missed some and must resynchronise everything.
   */
  since(after: number, limit: number): Promise<{ changes: ChangeRecord[]; complete: boolean }>;
}

export interface Storage {
  readonly clients: ClientStore;
  readonly trusts: TrustStore;
  readonly keys: KeyStore;
  readonly revocations: RevocationStore;
  readonly replay: ReplayStore;
  readonly changes: ChangeLog;
  /** Applies pending schema migrations; safe to call on every start. */
  migrate(): Promise<void>;
  /** Resolves when the backend answers; rejects otherwise. */
  ping(): Promise<void>;
  /**
   * Deletes expired revocations and replay entries, and changes older than CHANGE_RETENTION_MS;
   * returns how many rows went. Not signing keys: the key ring deletes those (deleteExpiredKeys)
   * and announces each one (key.deleted).
   */
  sweep(now: number): Promise<number>;
  close(): Promise<void>;
}

/**
 * Why a write conflicts: a duplicate id, a federated (trust, subject) pair another client has, a
 * client naming a trust that does not exist, or deleting a trust that clients name.
 */
export type ConflictReason = 'duplicate' | 'federated_identity' | 'unknown_trust' | 'trust_in_use';

/** A write that conflicts with existing rows (see ConflictReason). */
export class StorageConflictError extends Error {
  readonly code = 'STORAGE_CONFLICT';
  readonly reason: ConflictReason;
  constructor(message: string, reason: ConflictReason = 'duplicate') {
    super(message);
    this.name = 'StorageConflictError';
    this.reason = reason;
  }
}

/**
 * The storage refuses every call for good: its database cannot be trusted any more (the embedded
 * database's file was deleted or replaced under it). Served as a storage outage: 503, never a 500.
 */
export class StorageUnavailableError extends Error {
  readonly code = 'STORAGE_UNAVAILABLE';
  constructor(message: string) {
    super(message);
    this.name = 'StorageUnavailableError';
  }
}
