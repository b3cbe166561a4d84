// A Notifier on Redis pub/sub (optional, M2M_AUTH_REDIS_URL): wakes every instance's change-log
// reader at once. When Redis is down, publishing fails quietly and polling keeps the guarantee.

import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Notifier } from './change-log-sync.js';

export const CHANGE_CHANNEL = 'm2m-auth:changes';

export class RedisNotifier implements Notifier {
  readonly #url: string;
  readonly #logger: Logger;
  #pub: Redis | undefined;
  #sub: Redis | undefined;

  constructor(url: string, logger: Logger) {
    this.#url = url;
    this.#logger = logger;
  }

  #client(): Redis {
    const client = new Redis(this.#url, {
      lazyConnect: true,
      // Fail fast instead of queueing: a lost wake-up is covered by polling.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    client.on('error', (err: Error) => this.#logger.debug({ err: err.message }, 'redis error'));
    return client;
  }

  async publish(): Promise<void> {
    this.#pub ??= this.#client();
    if (this.#pub.status === 'wait') await this.#pub.connect();
    await this.#pub.publish(CHANGE_CHANNEL, '1');
  }

  async subscribe(onWake: () => void, onReconnect: () => void): Promise<void> {
    const sub = (this.#sub = this.#client());
    sub.on('message', () => onWake());
    // 'starting': the first connect below is under way; 'late': it failed (Redis was down at
    // start), so the client's own reconnects keep trying and the first one that works subscribes.
    let phase: 'starting' | 'late' | 'subscribed' = 'starting';
    sub.on('ready', () => {
      if (phase === 'starting') return;
      if (phase === 'late') {
        sub.subscribe(CHANGE_CHANNEL).then(() => {
          phase = 'subscribed';
          this.#logger.info('redis change channel connected');
          onReconnect();
        }, (err: unknown) => this.#logger.debug({ err: (err as Error).message }, 'redis subscribe failed'));
        return;
      }
      // ioredis re-subscribes by itself after a reconnect; messages sent meanwhile were lost.
      this.#logger.info('redis change channel reconnected');
      onReconnect();
    });
    try {
      await sub.connect();
      await sub.subscribe(CHANGE_CHANNEL);
      phase = 'subscribed';
    } catch (err) {
      phase = 'late';
      throw err;
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.#pub?.quit(), this.#sub?.quit()]);
    this.#pub?.disconnect();
    this.#sub?.disconnect();
  }
}
