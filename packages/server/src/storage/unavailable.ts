// Which failures mean "the database did not answer" (unreachable, down, restarting, timed out,
// locked or full): worth a 503 temporarily_unavailable and a retry, where anything else stays a
// bug (500). The backends make their drivers' errors known here; the layers above ask.

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
