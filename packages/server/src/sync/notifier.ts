// The wake-up channel between instances that share a database: Redis pub/sub when a Redis URL is
// set, else PostgreSQL LISTEN/NOTIFY on a PostgreSQL database, else none (polling alone).

import type { Logger } from 'pino';
import type { PostgresStorage } from '../storage/postgres/index.js';
import type { Storage } from '../storage/types.js';
import type { Notifier } from './change-log-sync.js';
import { PostgresNotifier } from './postgres-notifier.js';

/** The PostgreSQL backend, told apart without loading it (src/storage/open.ts loads it only for a postgres:// URL). */
function isPostgres(storage: Storage): storage is PostgresStorage {
  return typeof (storage as Partial<PostgresStorage>).changeFeed === 'function';
}

/** ioredis is loaded only when Redis is configured (as pg is by openStorage). */
export async function openNotifier(o: { redisUrl: string | undefined; storage: Storage; logger: Logger }): Promise<Notifier | undefined> {
  if (o.redisUrl) return new (await import('./redis-notifier.js')).RedisNotifier(o.redisUrl, o.logger);
  return isPostgres(o.storage) ? new PostgresNotifier(o.storage, o.logger) : undefined;
}
