// A server for the load test and the profiler to run against when no URL is given: the real
// createServer on the embedded default (SQLite in memory), on ephemeral loopback ports, with its
// own temporary data folder that is removed when it closes.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { devNull, tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { loadConfig, type Config } from '../config/schema.js';
import { createLogger } from '../observability/logger.js';
import type { M2MAuthServer } from '../server.js';

export interface InProcessServer {
  server: M2MAuthServer;
  /** The issuer, which is also the public listener's URL. */
  issuer: string;
  adminUrl: string;
  adminToken: string;
  dataDir: string;
  close(): Promise<void>;
}

export interface InProcessServerOptions {
  /** Configuration keys to set (e.g. signingAlg); listeners, storage and data folder are always ours. */
  overrides?: Partial<Record<keyof Config, unknown>>;
  /** Where the server's JSON log lines go; default the null device (they are still formatted and written). */
  logFile?: string;
  logLevel?: Config['logLevel'];
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createNetServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      probe.close(() => resolve(port));
    });
  });
}

function isAddressInUse(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === 'EADDRINUSE';
}

export async function startInProcessServer(options: InProcessServerOptions = {}): Promise<InProcessServer> {
  const { createServer } = await import('../server.js');
  const dataDir = mkdtempSync(join(tmpdir(), 'm2m-auth-loadtest-'));
  const adminToken = randomBytes(32).toString('base64url');
  const destination = pino.destination({ dest: options.logFile ?? devNull, sync: false, mkdir: true });
  const logger = createLogger({ level: options.logLevel ?? 'info', destination });
  const cleanup = (): void => {
    try {
      destination.flushSync();
    } catch {
      // nothing written yet: the stream may not have opened
    }
    destination.end();
    rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    // The issuer must be the URL the tokens are requested from, so the port is chosen first; another
    // process can take it in between, hence the retries.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const issuer = `http://127.0.0.1:${port}`;
      const config = loadConfig(process.env, {
        // All load comes from 127.0.0.1: per-address failure throttling would only turn a run with
        // wrong credentials into 429s.
        authFailuresPerAddress: 0,
        authFailuresPerClient: 0,
        ...options.overrides,
        issuer,
        listen: `127.0.0.1:${port}`,
        adminListen: '127.0.0.1:0',
        dataDir,
        databaseUrl: 'sqlite::memory:',
        adminToken,
        logLevel: options.logLevel ?? 'info',
      });
      const server = await createServer(config, { logger });
      try {
        const { adminUrl } = await server.listen();
        return {
          server, issuer, adminUrl, adminToken, dataDir,
          async close() {
            try {
              await server.close();
            } finally {
              cleanup();
            }
          },
        };
      } catch (err) {
        await server.close();
        if (!isAddressInUse(err) || attempt >= 5) throw err;
      }
    }
  } catch (err) {
    cleanup();
    throw err;
  }
}
