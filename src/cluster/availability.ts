// Serving through a storage outage (RFC 6749 §5.2 temporarily_unavailable): which failures mean
// "the database did not answer", and how long cached clients stay trusted without it.
//
// The token endpoint and introspection answer from the client cache and the in-memory revocation
// list. Those are only as fresh as the last successful read of the change log: while it cannot be
// read, a revocation, disabled client or rotated secret made on another instance is not seen here.
// So cached state is trusted for a bounded time after that read (M2M_AUTH_STALENESS_BOUND) and
// beyond it every request that needs it gets 503 with Retry-After instead of a stale answer.

import { OAuthError } from '../oauth/errors.js';
import type { ClientLookup } from '../oauth/client-auth/authenticate.js';
import type { ClientRecord } from '../storage/types.js';

/** What a client is told to wait before retrying while storage is unavailable. */
export const RETRY_AFTER_SECONDS = 5;

// Node's socket errors for a peer that is down, unreachable or went away.
const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN',
  'ENETDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED',
]);

// SQLSTATEs that mean the server cannot serve right now, not that the statement is wrong:
// class 08 connection exception, class 53 insufficient resources, 57014 query_canceled (our
// statement_timeout), 57P01-57P05 shutdown / starting up / idle session timeout, 25006 a read-only
// server (a failover in progress), 40001/40P01 serialization failure and deadlock (retryable).
const UNAVAILABLE_SQLSTATE = /^(08|53|57P0[1-5]$|57014$|25006$|40001$|40P01$)/;

// pg raises these as plain Errors without a code.
const PG_CONNECTION_MESSAGES = [
  'Connection terminated',
  'timeout exceeded when trying to connect',
  'Query read timeout',
  'is not queryable',
  'Client was closed',
];

// better-sqlite3 SqliteError codes for a locked, full, unwritable or unreadable database.
const SQLITE_UNAVAILABLE = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|READONLY|PROTOCOL|NOLFS)/;

/**
 * pg's DatabaseError, made known by the PostgreSQL backend when it is loaded
 * (src/storage/postgres/sql.ts): an embedded server never loads pg, and no pg error exists then.
 */
let PostgresError: (abstract new (...args: never[]) => Error) | undefined;

export function recognisePostgresErrors(databaseError: abstract new (...args: never[]) => Error): void {
  PostgresError = databaseError;
}

function unavailableOne(err: unknown): boolean {
  if (typeof err !== 'object' || err === null) return false;
  const code = (err as { code?: unknown }).code;
  if (PostgresError !== undefined && err instanceof PostgresError) return typeof code === 'string' && UNAVAILABLE_SQLSTATE.test(code);
  if (typeof code === 'string') {
    if (NETWORK_CODES.has(code)) return true;
    // StorageUnavailableError: a backend that refuses every call (an embedded database whose file vanished).
    if (code === 'STORAGE_UNAVAILABLE') return true;
    // A Unix socket whose server is down (its socket file gone).
    if (code === 'ENOENT' && (err as { syscall?: unknown }).syscall === 'connect') return true;
    if (SQLITE_UNAVAILABLE.test(code)) return true;
  }
  const message = (err as { message?: unknown }).message;
  return typeof message === 'string' && PG_CONNECTION_MESSAGES.some((m) => message.includes(m));
}

/**
 * True when `err` (or what caused it) says the database could not answer: unreachable, down,
 * restarting, timed out, locked or full. Such a failure is worth a 503 and a retry; anything else
 * stays a bug (500).
 */
export function isStorageUnavailable(err: unknown): boolean {
  const seen = new Set<unknown>();
  const queue: unknown[] = [err];
  while (queue.length > 0 && seen.size < 10) {
    const e = queue.shift();
    if (e === undefined || e === null || seen.has(e)) continue;
    seen.add(e);
    if (unavailableOne(e)) return true;
    // Node reports a refused dual-stack connect as an AggregateError of one error per address.
    if (e instanceof AggregateError) queue.push(...(e.errors as unknown[]));
    if (e instanceof Error && e.cause !== undefined) queue.push(e.cause);
  }
  return false;
}

/** The 503 an OAuth endpoint answers while it cannot rely on storage (RFC 6749 §5.2). */
export function temporarilyUnavailable(detail: string, cause?: unknown): OAuthError {
  return new OAuthError('temporarily_unavailable', 'The authorization server is temporarily unavailable; retry later.', {
    status: 503,
    detail,
    headers: { 'retry-after': String(RETRY_AFTER_SECONDS) },
    ...(cause !== undefined && { cause }),
  });
}

/** An unexpected endpoint failure as the OAuth error it deserves: 503 when storage did not answer. */
export function asUnavailable(err: unknown): unknown {
  if (err instanceof OAuthError || !isStorageUnavailable(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return temporarilyUnavailable(`storage unavailable: ${message}`, err);
}

export interface StalenessGuardOptions {
  clients: ClientLookup;
  /** When the change log was last read successfully (epoch ms): ClusterSync.lastSuccess. */
  lastSuccess: () => number;
  /** How long after that read cached state is still trusted (ms). */
  boundMs: number;
  /** Wall clock in epoch ms; the same clock lastSuccess is measured on. */
  now?: () => number;
}

/**
 * The client lookup of the OAuth endpoints: the registry's cache, refused once the change log has
 * not been read for longer than the bound, so no decision rests on state that may be stale beyond it.
 */
export class StalenessGuard implements ClientLookup {
  readonly #o: StalenessGuardOptions;
  readonly #now: () => number;

  constructor(options: StalenessGuardOptions) {
    if (!(options.boundMs > 0)) throw new RangeError('StalenessGuard boundMs must be > 0');
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Milliseconds since the change log was last read. */
  age(): number {
    return this.#now() - this.#o.lastSuccess();
  }

  /** True while cached clients and revocations may be used. */
  fresh(): boolean {
    return this.age() <= this.#o.boundMs;
  }

  /** Throws temporarily_unavailable when cached state is past the bound. */
  check(): void {
    const age = this.age();
    if (age > this.#o.boundMs) {
      throw temporarilyUnavailable(`change log not read for ${age} ms (bound ${this.#o.boundMs} ms): cached clients and revocations not trusted`);
    }
  }

  /** The registry's lookup, or a rejection when cached state is past the bound (not an async function: one promise a lookup, not two). */
  get(clientId: string): Promise<ClientRecord | undefined> {
    try {
      this.check();
    } catch (err) {
      return Promise.reject(err);
    }
    return this.#o.clients.get(clientId);
  }
}
