// A server for the load test and the profiler to run against when no URL is given: the real
// `m2m-auth serve` in a child process, on the embedded default (SQLite in memory) unless a database
// URL is given, optionally pinned to CPUs (taskset), on port 0 of the loopback (it reports the port it
// got) with its own temporary data folder (removed when it stops). The command that runs the m2m-auth
// CLI is given by the caller (the CLI passes its own), so the tools never import it.

import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export interface ServerProcessOptions {
  /** The m2m-auth command, e.g. [process.execPath, '/path/to/m2m-auth/dist/cli/main.js']; `serve` is appended. */
  command: readonly string[];
  /**
   * Settings as M2M_AUTH_* environment variables, over this process's environment; the listeners,
   * the database, the data folder, the admin token and JSON logs are always the ones chosen here.
   */
  env?: Record<string, string>;
  /** Where the server's JSON log lines go; default nowhere (they are still formatted and written to a pipe). */
  logFile?: string;
  /** The server's database; default the embedded one in memory (sqlite::memory:). */
  databaseUrl?: string;
  /** CPUs the server is pinned to (taskset -c list, Linux), e.g. "1"; default not pinned. */
  cpus?: string;
}

export interface ServerProcess {
  /** The issuer, which is also the public listener's URL. */
  issuer: string;
  adminUrl: string;
  adminToken: string;
  dataDir: string;
  pid: number;
  /** Stops the server (SIGTERM, then SIGKILL after 10 s) and removes its data folder. */
  close(): Promise<void>;
}

const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 10_000;
/** Most bytes of the server's stderr kept for an error message. */
const MAX_STDERR = 64 * 1024;

class StartFailed extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartFailed';
  }
}

export async function startServerProcess(options: ServerProcessOptions): Promise<ServerProcess> {
  const command = options.cpus !== undefined ? ['taskset', '-c', options.cpus, ...options.command] : options.command;
  const [executable, ...args] = command;
  if (executable === undefined) throw new Error('startServerProcess: the command is empty');
  const dataDir = mkdtempSync(join(tmpdir(), 'm2m-auth-loadtest-'));
  const adminToken = randomBytes(32).toString('base64url');
  try {
    // Both listeners on port 0 and the issuer http://127.0.0.1:0, which the server turns into its
    // public URL once it has a port: it reports both on its 'm2m-auth listening' line, so no port is
    // chosen free first and bound later (a race with every other process on the machine).
    return await start(executable, [...args, 'serve'], {
      ...process.env,
      // All load comes from 127.0.0.1: per-address failure throttling would only turn a run with
      // wrong credentials into 429s.
      M2M_AUTH_AUTH_FAILURES_PER_ADDRESS: '0',
      M2M_AUTH_AUTH_FAILURES_PER_CLIENT: '0',
      M2M_AUTH_LOG_LEVEL: 'info',
      ...options.env,
      M2M_AUTH_ISSUER: 'http://127.0.0.1:0',
      M2M_AUTH_LISTEN: '127.0.0.1:0',
      M2M_AUTH_ADMIN_LISTEN: '127.0.0.1:0',
      M2M_AUTH_DATA_DIR: dataDir,
      M2M_AUTH_DATABASE_URL: options.databaseUrl ?? 'sqlite::memory:',
      M2M_AUTH_ADMIN_TOKEN: adminToken,
      M2M_AUTH_WORKERS: '1',
      M2M_AUTH_SHUTDOWN_DELAY: '0',
      // The 'listening' line is read as JSON.
      M2M_AUTH_LOG_FORMAT: 'json',
    }, { adminToken, dataDir, logFile: options.logFile });
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
}

async function start(
  executable: string, args: string[], env: NodeJS.ProcessEnv,
  o: { adminToken: string; dataDir: string; logFile: string | undefined },
): Promise<ServerProcess> {
  const child = spawn(executable, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    if (stderr.length < MAX_STDERR) stderr += chunk;
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });

  // The server says where it listens on its 'm2m-auth listening' line (written even at level warn).
  const lines = createInterface({ input: child.stdout, crlfDelay: Infinity });
  const listening = new Promise<{ issuer: string; adminUrl: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new StartFailed(`the server did not start within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
    lines.on('line', (line) => {
      if (!line.includes('"m2m-auth listening"')) return;
      try {
        const { adminUrl, issuer } = JSON.parse(line) as { adminUrl?: unknown; issuer?: unknown };
        if (typeof adminUrl !== 'string' || typeof issuer !== 'string') return;
        clearTimeout(timer);
        resolve({ issuer, adminUrl });
      } catch {
        // not a log line
      }
    });
    void exited.then(({ code, signal }) => {
      clearTimeout(timer);
      const why = stderr.trim().split('\n').slice(-5).join('\n');
      reject(new StartFailed(`the server exited (${signal ?? `code ${code}`}) before listening${why ? `: ${why}` : ''}`));
    });
  });

  let issuer: string;
  let adminUrl: string;
  try {
    ({ issuer, adminUrl } = await listening);
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw err;
  }
  // From here on the log lines go to the file, or are read and dropped.
  lines.close();
  if (o.logFile !== undefined) child.stdout.pipe(createWriteStream(o.logFile));
  else child.stdout.resume();

  let closing: Promise<void> | undefined;
  return {
    issuer,
    adminUrl,
    adminToken: o.adminToken,
    dataDir: o.dataDir,
    pid: child.pid!,
    close() {
      closing ??= (async () => {
        try {
          if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGTERM');
            const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
            await exited;
            clearTimeout(timer);
          }
        } finally {
          rmSync(o.dataDir, { recursive: true, force: true });
        }
      })();
      return closing;
    },
  };
}
