// A Notifier on PostgreSQL LISTEN/NOTIFY: the default wake-up channel when the database is
// PostgreSQL and no Redis is configured. Polling the change log still holds the guarantee.

import type { Logger } from 'pino';
import type { PostgresStorage } from '../storage/postgres/index.js';
import type { ChangeFeed } from '../storage/postgres/notify.js';
import type { Notifier } from './change-log-sync.js';

export const CHANGE_CHANNEL_PG = 'm2m_auth_changes';

export class PostgresNotifier implements Notifier {
  readonly #storage: PostgresStorage;
  readonly #logger: Logger;
  #feed: ChangeFeed | undefined;
  #onReconnect: (() => void) | undefined;

  constructor(storage: PostgresStorage, logger: Logger) {
    this.#storage = storage;
    this.#logger = logger;
  }

  #open(): ChangeFeed {
    this.#feed ??= this.#storage.changeFeed({
      onReconnect: () => {
        this.#logger.info('postgres change channel reconnected');
        this.#onReconnect?.();
      },
      onError: (err) => this.#logger.debug({ err: err.message }, 'postgres change feed error'),
    });
    return this.#feed;
  }

  async publish(): Promise<void> {
    await this.#open().notify(CHANGE_CHANNEL_PG, '1');
  }

  async subscribe(onWake: () => void, onReconnect: () => void): Promise<void> {
    this.#onReconnect = onReconnect;
    await this.#open().listen(CHANGE_CHANNEL_PG, () => onWake());
  }

  async close(): Promise<void> {
    await this.#feed?.close();
  }
}
