// Redis down: instances keep serving and fall back to polling the change log (a change made on
// one instance still takes effect on the other within the sync interval); when Redis returns,
// pub/sub resumes by itself (both instances subscribed again, wake-ups fast again). Also covers
// an instance that starts while Redis is down.
//
// Uses a private redis-server on a free port that it kills (SIGKILL) and restarts; the shared
// Redis is never touched. The two instances share a SQLite file. Skips when redis-server is missing.

import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHANGE_CHANNEL } from '../../src/sync/redis-notifier.js';
import { ensureBuilt, startServerProcess, within, type ServerProcess } from '../helpers/process.js';
import { NO_LIMITS, admin, alive, crashLines, get, newClient, privateRedis, redisSubscribers, token, type PrivateRedis } from './helpers.js';

let skip: string | undefined;
let redis: PrivateRedis | undefined;
const made = await privateRedis();
if ('skip' in made) skip = made.skip;
else redis = made;
if (skip) console.warn(`Redis outage tests skipped: ${skip}`);

const ADMIN = 'faults-admin-token-' + randomBytes(16).toString('hex');
/** The longest sync interval the schema allows: polling alone is then visibly slower than pub/sub. */
const SYNC_INTERVAL_MS = 1000;
/** A wake-up over pub/sub arrives in a few ms; polling alone takes SYNC_INTERVAL_MS / 2 on average. */
const FAST_MS = 300;

describe.skipIf(skip !== undefined)('Redis outage (private redis-server killed and restarted)', () => {
  let dir: string | undefined;
  let a: ServerProcess;
  let b: ServerProcess;

  beforeAll(async () => {
    ensureBuilt();
    dir = mkdtempSync(join(tmpdir(), 'm2m-auth-faults-redis-'));
    const env = {
      ...NO_LIMITS,
      M2M_AUTH_DATABASE_URL: `sqlite:${join(dir, 'shared.db')}`,
      M2M_AUTH_DATA_DIR: dir,
      M2M_AUTH_KEK: randomBytes(32).toString('base64'),
      M2M_AUTH_REDIS_URL: redis!.url,
      M2M_AUTH_SYNC_INTERVAL: String(SYNC_INTERVAL_MS),
    };
    // Both start while Redis is down: they must come up anyway, on polling.
    a = await startServerProcess(env, ADMIN);
    b = await startServerProcess({ ...env, M2M_AUTH_ISSUER: a.publicUrl }, ADMIN);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  /** ms until a client disabled through A is refused by B, which had it cached. */
  async function propagation(limitMs: number): Promise<number> {
    const c = await newClient(a);
    expect((await token(b, c)).status).toBe(200);
    expect((await admin(a, 'POST', `/admin/clients/${c.id}/disable`)).status).toBe(200);
    return within(limitMs, async () => (await token(b, c)).status === 401);
  }

  function healthy(p: ServerProcess): void {
    expect(alive(p)).toBe(true);
    expect(crashLines(p)).toEqual([]);
  }

  it('subscribes once Redis comes up after the instances started', async () => {
    // Without Redis, changes still arrive through the change log within the sync interval.
    expect(await propagation(SYNC_INTERVAL_MS + 1500)).toBeLessThan(SYNC_INTERVAL_MS + 1500);

    await redis!.start();
    // ioredis retries every 2 s at most; both instances subscribe on their own.
    await within(10_000, async () => (await redisSubscribers(redis!.port, CHANGE_CHANNEL)) === 2);
    // A's publisher reconnects on its own schedule (a retry every 2 s at most); from then on B is
    // woken at once, far faster than its poll.
    await within(10_000, async () => (await propagation(5_000)) < FAST_MS);
    for (let i = 0; i < 5; i++) expect(await propagation(5_000)).toBeLessThan(FAST_MS);
    healthy(a);
    healthy(b);
  }, 60_000);

  it('falls back to polling while Redis is killed, and resumes pub/sub when it returns', async () => {
    await redis!.kill();
    // Still serving and still ready: Redis only speeds propagation up.
    for (const p of [a, b]) {
      expect((await get(p, '/readyz')).status).toBe(200);
      expect((await get(p, '/healthz')).status).toBe(200);
    }
    // Writes still succeed (publishing fails quietly) and reach the other instance by polling.
    for (let i = 0; i < 3; i++) expect(await propagation(SYNC_INTERVAL_MS + 1500)).toBeLessThan(SYNC_INTERVAL_MS + 1500);
    healthy(a);
    healthy(b);

    await redis!.start();
    await within(10_000, async () => (await redisSubscribers(redis!.port, CHANGE_CHANNEL)) === 2);
    // The publisher may reconnect a moment after the subscribers; then every wake-up is fast.
    await within(10_000, async () => (await propagation(5_000)) < FAST_MS);
    for (let i = 0; i < 5; i++) expect(await propagation(5_000)).toBeLessThan(FAST_MS);
    healthy(a);
    healthy(b);
  }, 90_000);
});
