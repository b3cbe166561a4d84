// Whether the embedded database's files are still the ones this process opened. SQLite keeps
// working on an open file after it was deleted or replaced (`rm data/m2m-auth.db*`, a backup moved
// over it): every write would be acknowledged and then lost at the next start. So the paths of the
// database and of its -wal and -shm files are checked against the device and inode they had when
// opened; better-sqlite3 does not expose its file descriptors, so the identity is taken from the
// path once the connection has the files open, which is the same file then.

import { statSync } from 'node:fs';
import { stat } from 'node:fs/promises';

/** How often the paths are checked: a vanished file is noticed within about this long. */
export const FILE_CHECK_INTERVAL_MS = 500;

export interface DatabaseFileLost {
  /** The database file this storage opened. */
  database: string;
  /** The file that no longer names what was opened: the database, or its -wal or -shm file. */
  path: string;
  /** Nothing at the path any more, or another file. */
  change: 'deleted' | 'replaced';
}

interface Identity {
  dev: bigint;
  ino: bigint;
}

/** The companion files of a WAL database (https://www.sqlite.org/tempfiles.html). */
export function companionFiles(filename: string): string[] {
  return [`${filename}-wal`, `${filename}-shm`];
}

function identityNow(path: string): Identity | undefined {
  try {
    const s = statSync(path, { bigint: true });
    return { dev: s.dev, ino: s.ino };
  } catch {
    return undefined;
  }
}

export class DatabaseFileWatch {
  readonly #database: string;
  /** Each path and the identity it had when opened (undefined until the file exists). */
  readonly #files = new Map<string, Identity | undefined>();
  readonly #onLost: (lost: DatabaseFileLost) => void;
  #timer: NodeJS.Timeout | undefined;
  #checking = false;
  #lost = false;

  /** Takes the files' identities now: call it once the connection has read from the database. */
  constructor(database: string, onLost: (lost: DatabaseFileLost) => void) {
    this.#database = database;
    this.#onLost = onLost;
    for (const path of [database, ...companionFiles(database)]) this.#files.set(path, identityNow(path));
  }

  start(intervalMs = FILE_CHECK_INTERVAL_MS): void {
    this.#timer ??= setInterval(() => void this.check(), intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** True when `path` names a file other than the one opened there (nothing there is not another file). */
  foreign(path: string): boolean {
    const opened = this.#files.get(path);
    const now = identityNow(path);
    if (now === undefined) return false;
    return opened === undefined || now.dev !== opened.dev || now.ino !== opened.ino;
  }

  /** Checks every path once; reports the first that changed (once). */
  async check(): Promise<void> {
    if (this.#checking || this.#lost) return;
    this.#checking = true;
    try {
      for (const [path, opened] of this.#files) {
        let now: Identity | undefined;
        try {
          const s = await stat(path, { bigint: true });
          now = { dev: s.dev, ino: s.ino };
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') continue;
        }
        if (opened === undefined) {
          // -wal and -shm appear with the first transaction; their identity is taken then.
          if (now !== undefined) this.#files.set(path, now);
          continue;
        }
        if (now === undefined || now.dev !== opened.dev || now.ino !== opened.ino) {
          this.#lost = true;
          this.stop();
          this.#onLost({ database: this.#database, path, change: now === undefined ? 'deleted' : 'replaced' });
          return;
        }
      }
    } finally {
      this.#checking = false;
    }
  }
}
