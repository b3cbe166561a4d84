// Cache coherence for instances that share a database: every instance reads the change log
// (written by the database in the same transaction as each write) on a short interval, and
// sooner when a notification channel (PostgreSQL LISTEN/NOTIFY or Redis pub/sub) wakes it.
// The interval is the guarantee; notifications only make it faster. The workers of one server
// (`serve --workers`) do more: a write waits until the other workers have read it (`propagate`).

import type { Logger } from 'pino';
import type { ChangeLog, ChangeRecord } from '../storage/types.js';

/** A wake-up channel between instances. Messages carry nothing: the change log is the truth. */
export interface Notifier {
  publish(): Promise<void>;
  /**
   * Calls onWake for every message, and onReconnect after the channel came back (messages may be
   * lost). onWake returns the read of the change log it started, for a channel that reports back.
   */
  subscribe(onWake: () => unknown, onReconnect: () => void): Promise<void>;
  close(): Promise<void>;
}

/** What a change means for this instance's caches. */
export interface SyncTargets {
  client(clientId: string): void;
  /** A trusted issuer changed (created, updated or deleted). */
  trust(name: string): void;
  revocation(jti: string, expiresAt: number): void;
  /** Reload the key set (once per batch, however many key changes it holds). */
  keys(): Promise<void>;
  /** The instance fell behind the retained log: drop every cache and reload. */
  resyncAll(): Promise<void>;
}

export interface ClusterSyncOptions {
  changes: ChangeLog;
  targets: SyncTargets;
  notifier?: Notifier | undefined;
  /**
   * The other workers of this server (src/sync/ipc-notifier.ts), whose publish() resolves once
   * they have read the change log: `propagate` waits for it.
   */
  workers?: Notifier | undefined;
  logger: Logger;
  /** Poll interval in ms: changes made elsewhere take effect here within about this long. */
  pollIntervalMs: number;
  /**
   * The change log's head read before the caches were first loaded (default: read at start()).
   * Changes written between that read and start() are then applied by start() instead of skipped.
   */
  cursor?: number | undefined;
}

const BATCH = 500;

export class ClusterSync {
  readonly #o: ClusterSyncOptions;
  #cursor = 0;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;
  #lastSuccess = 0;
  #failing = false;

  constructor(options: ClusterSyncOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    this.#cursor = this.#o.cursor ?? await this.#o.changes.head();
    this.#lastSuccess = Date.now();
    this.#timer = setInterval(() => void this.poll(), this.#o.pollIntervalMs);
    this.#timer.unref();
    if (this.#o.notifier) {
      try {
        await this.#o.notifier.subscribe(() => void this.poll(), () => void this.poll());
      } catch (err) {
        // Polling still holds the guarantee; the channel only makes it faster.
        this.#o.logger.warn({ err }, 'change notifications unavailable; relying on polling');
      }
    }
    await this.#o.workers?.subscribe(() => this.poll(), () => void this.poll());
    // What was written since the cursor (while the caches loaded, and before the channels above
    // were listening: no wake-up, and a writing worker's primary did not wait for this one) is
    // applied now, before the first request, rather than at the first poll.
    await this.poll();
  }

  /** Wakes the other instances after a local write (best effort). */
  nudge(): void {
    this.#o.notifier?.publish().catch((err: unknown) => this.#o.logger.debug({ err }, 'change notification not sent'));
  }

  /**
   * Resolves once the other workers of this server have read the change log, so that a write
   * awaited with it is seen by whichever worker takes the next request; at once without workers.
   */
  async propagate(): Promise<void> {
    try {
      await this.#o.workers?.publish();
    } catch (err) {
      this.#o.logger.debug({ err }, 'workers not told of a change; they read it at their next poll');
    }
  }

  /** When the change log was last read successfully (ms). */
  get lastSuccess(): number {
    return this.#lastSuccess;
  }

  /** Reads and applies every change since the cursor. Coalesces concurrent calls. */
  poll(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      try {
        // What a drain read is as fresh as its start, not its end.
        let started: number;
        do {
          this.#again = false;
          started = Date.now();
          await this.#drain();
        } while (this.#again && !this.#stopped);
        this.#lastSuccess = started;
        if (this.#failing) this.#o.logger.info('change log reachable again');
        this.#failing = false;
      } catch (err) {
        if (!this.#failing) this.#o.logger.warn({ err }, 'reading the change log failed; caches may be stale until it answers');
        this.#failing = true;
      } finally {
        this.#running = undefined;
      }
    })();
    return this.#running;
  }

  async #drain(): Promise<void> {
    for (;;) {
      const { changes, complete } = await this.#o.changes.since(this.#cursor, BATCH);
      if (!complete) {
        this.#o.logger.warn({ cursor: this.#cursor }, 'fell behind the change log; resynchronising everything');
        const head = await this.#o.changes.head();
        await this.#o.targets.resyncAll();
        this.#cursor = head;
        continue;
      }
      if (changes.length === 0) return;
      await this.#apply(changes);
      this.#cursor = changes[changes.length - 1]!.seq;
      if (changes.length < BATCH) return;
    }
  }

  async #apply(changes: ChangeRecord[]): Promise<void> {
    let keys = false;
    for (const c of changes) {
      if (c.kind === 'client') this.#o.targets.client(c.key);
      else if (c.kind === 'trust') this.#o.targets.trust(c.key);
      else if (c.kind === 'revocation') this.#o.targets.revocation(c.key, c.expiresAt ?? 0);
      else keys = true;
    }
    if (keys) await this.#o.targets.keys();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    await this.#running;
    await this.#o.notifier?.close().catch(() => undefined);
    await this.#o.workers?.close().catch(() => undefined);
  }
}
