// The embedded default (SQLite, no Redis) never loads the PostgreSQL or Redis clients: they are
// imported only when a postgres:// URL or a Redis URL is configured (src/storage/open.ts,
// src/server.ts, src/limits/limits.ts), so a laptop server does not carry them. With Redis
// configured, ioredis is loaded and pg still is not.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO, ensureBuilt } from '../helpers/process.js';

/** Starts a real server in a child process with `overrides`, stops it, and lists the client packages it loaded. */
function loadedClients(overrides: Record<string, unknown>): string[] {
  ensureBuilt();
  const dataDir = mkdtempSync(join(tmpdir(), 'm2m-auth-footprint-'));
  const script = `
    import { createRequire } from 'node:module';
    import { createServer } from './dist/server.js';
    import { loadConfig } from './dist/config/schema.js';
    import { createLogger } from './dist/observability/logger.js';
    const config = loadConfig({}, {
      dataDir: ${JSON.stringify(dataDir)}, databaseUrl: 'sqlite::memory:', issuer: 'http://localhost:8080',
      listen: '127.0.0.1:0', adminListen: '127.0.0.1:0', adminToken: 'test-admin-token-0123456789abcdef0123456789',
      ...${JSON.stringify(overrides)},
    });
    const server = await createServer(config, { logger: createLogger({ level: 'silent', destination: { write() {} } }) });
    await server.listen();
    const packages = new Set(Object.keys(createRequire(import.meta.url).cache)
      .map((p) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(p)?.[1])
      .filter((p) => p === 'pg' || p === 'ioredis'));
    await server.close();
    process.stdout.write(JSON.stringify([...packages].sort()));
    process.exit(0);
  `;
  try {
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO, encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as string[];
  } finally {
    rmSync(dataDir, { recursive: true, force: true });
  }
}

describe('what a running server loads', () => {
  it('on the embedded default: neither pg nor ioredis', () => {
    expect(loadedClients({})).toEqual([]);
  });

  const redisUrl = process.env.M2M_AUTH_TEST_REDIS_URL;
  it.skipIf(!redisUrl)('with Redis configured: ioredis, still not pg (skipped without M2M_AUTH_TEST_REDIS_URL)', () => {
    expect(loadedClients({ redisUrl, redisKeyPrefix: `m2m-footprint-${process.pid}:` })).toEqual(['ioredis']);
  });
});
