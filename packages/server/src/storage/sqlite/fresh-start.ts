// Whether a start may create a new, empty embedded database. It may on a first start; where a
// database clearly existed before (files the earlier starts left beside it, or its own -wal and
// -shm files) but is gone, creating a new one silently would serve new signing keys and no
// clients as if nothing had happened, so the start is refused with what to do, unless the
// operator asks for a new database on purpose (`m2m-auth serve --init`).

import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ConfigError } from '../../ground/errors.js';
import { companionFiles } from './file-watch.js';

/** An absent file, or an empty one (a database file is never empty once created: migrations write to it). */
function absent(path: string): boolean {
  try {
    return statSync(path).size === 0;
  } catch {
    return true;
  }
}

/** The newest copy the server saved when the database vanished (SqliteStorage.watchFile), if any. */
export function rescuedCopy(filename: string): string | undefined {
  const prefix = `${basename(filename)}.rescued-`;
  let names: string[];
  try {
    names = readdirSync(dirname(filename)).filter((n) => n.startsWith(prefix));
  } catch {
    return undefined;
  }
  const newest = names.sort().at(-1);
  return newest === undefined ? undefined : join(dirname(filename), newest);
}

/**
 * Throws a ConfigError (one line: what is wrong and what to do) when `filename` should not be
 * created, or with `init` should not be there: `evidence` are files an earlier start left (the
 * generated key-encryption key, the admin token). With `init` the database must not exist yet.
 */
export function checkFreshDatabase(filename: string, evidence: readonly string[], init: boolean): void {
  const missing = absent(filename);
  if (init && !missing) {
    throw new ConfigError('DATABASE_EXISTS',
      `--init creates a new, empty database, but ${filename} already exists: start without --init to serve it, or move it away first to start anew.`);
  }
  if (!missing) return;
  // SQLite would read a -wal file left by the old database into the new one.
  const leftovers = companionFiles(filename).filter(existsSync);
  if (leftovers.length > 0) {
    throw new ConfigError('DATABASE_MISSING',
      `The database ${filename} is missing but ${leftovers.join(' and ')} of it are still there: restore the database file from your backup, `
      + `or move ${leftovers.length === 1 ? 'that file' : 'those files'} away and start with "m2m-auth serve --init" to begin with an empty database.`);
  }
  const found = evidence.filter(existsSync);
  if (found.length === 0 || init) return;
  const rescued = rescuedCopy(filename);
  throw new ConfigError('DATABASE_MISSING',
    `The database ${filename} is missing, but ${found.join(' and ')} ${found.length === 1 ? 'shows' : 'show'} that it existed: `
    + `restore it from your backup${rescued ? ` or from ${rescued} (saved by the server when the file vanished)` : ''} to ${filename}, `
    + 'or start anew on purpose with "m2m-auth serve --init" (an empty database: tokens issued so far stop verifying, and clients must be registered again).');
}
