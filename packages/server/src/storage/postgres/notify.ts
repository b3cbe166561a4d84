// Change notifications between instances over PostgreSQL LISTEN/NOTIFY, on a self-healing connection.
//
// A notification is only delivered to sessions listening when it commits: while the LISTEN
// connection is down, messages are lost. So after every reconnect `onReconnect` runs, once the
// channels are listened to again, for callers to resynchronise (reload what they cache).

import pg from 'pg';
import type { Queryable } from './sql.js';

/** Receives the payload of one notification. */
export type ChangeHandler = (payload: string) => void;

export interface ChangeFeed {
  /**
   * Calls `onMessage` with each notification on `channel` until the returned function is called.
   * Rejects when the LISTEN connection cannot be opened (it is opened on first use).
   */
  listen(channel: string, onMessage: ChangeHandler): Promise<() => Promise<void>>;
  /** Sends `payload` to every session listening on `channel` (pg_notify), once the sender commits. */
  notify(channel: string, payload: string): Promise<void>;
  /** Stops reconnecting and closes the LISTEN connection; does not close the notifier. */
  close(): Promise<void>;
}

export interface ChangeFeedHooks {
  /**
   * Runs after the LISTEN connection was lost and is back, with every channel listened to again;
   * notifications sent in between were lost, so callers resynchronise here. Not run on first connect.
   */
  onReconnect?: () => void | Promise<void>;
  /** Background failures: a dropped connection, a failed reconnect attempt, a throwing handler. */
  onError?: (err: Error) => void;
  /** First delay before reconnecting; doubles on each failed attempt. Default 100 ms. */
  minBackoffMs?: number;
  /** Longest delay between reconnect attempts. Default 10 s. */
  maxBackoffMs?: number;
  /**
   * How often the idle LISTEN connection is probed with `SELECT 1`, so that a silently dead
   * connection (no FIN, no RST) is noticed and replaced; 0 disables. Default 30 s.
   */
  probeIntervalMs?: number;
}

export interface PostgresChangeFeedOptions extends ChangeFeedHooks {
  /** Settings for the dedicated LISTEN connection; include connectionTimeoutMillis and query_timeout. */
  connection: pg.ClientConfig;
  /** Where NOTIFY is sent from, usually the storage's pool. */
  notifier: Queryable;
}

/** Lower-case SQL identifiers only, so the LISTEN name and the pg_notify text cannot differ in case. */
const CHANNEL = /^[a-z_][a-z0-9_]{0,62}$/;

function assertChannel(channel: string): void {
  if (!CHANNEL.test(channel)) {
    throw new TypeError(`Invalid channel name ${JSON.stringify(channel)}: use 1-63 of [a-z0-9_], not starting with a digit`);
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

export class PostgresChangeFeed implements ChangeFeed {
  private readonly handlers = new Map<string, Set<ChangeHandler>>();
  private readonly hooks: Required<Omit<ChangeFeedHooks, 'onReconnect'>> & Pick<ChangeFeedHooks, 'onReconnect'>;
  /** The live LISTEN connection, set once it listens to every channel. */
  private client: pg.Client | undefined;
  /** Channels LISTENed on `client`. */
  private listened = new Set<string>();
  private pid: number | undefined;
  private connecting: Promise<pg.Client> | undefined;
  /** Set when a connection with subscribers was lost; cleared (and onReconnect run) on the next connect. */
  private lost = false;
  private attempts = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: PostgresChangeFeedOptions) {
    this.hooks = {
      onReconnect: options.onReconnect,
      onError: options.onError ?? (() => undefined),
      minBackoffMs: options.minBackoffMs ?? 100,
      maxBackoffMs: options.maxBackoffMs ?? 10_000,
      probeIntervalMs: options.probeIntervalMs ?? 30_000,
    };
  }

  /** The server process id of the LISTEN connection while it is up (pg_backend_pid()). */
  get backendPid(): number | undefined {
    return this.pid;
  }

  async listen(channel: string, onMessage: ChangeHandler): Promise<() => Promise<void>> {
    assertChannel(channel);
    if (this.closed) throw new Error('The change feed is closed');
    // A wrapper per call, so the same function listened twice needs two unlistens.
    const handler: ChangeHandler = (payload) => onMessage(payload);
    let set = this.handlers.get(channel);
    if (set === undefined) this.handlers.set(channel, (set = new Set()));
    set.add(handler);
    try {
      const client = await this.connected();
      // A connect that began before this channel was added did not LISTEN to it.
      if (client === this.client && !this.listened.has(channel)) {
        this.listened.add(channel);
        try {
          await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
        } catch (err) {
          this.listened.delete(channel);
          throw err;
        }
      }
    } catch (err) {
      this.removeHandler(channel, handler);
      throw err;
    }
    let unlistened = false;
    return async () => {
      if (unlistened) return;
      unlistened = true;
      if (!this.removeHandler(channel, handler)) return;
      const client = this.client;
      if (client === undefined || !this.listened.delete(channel)) return;
      // If this fails the connection is going away anyway, and a reconnect LISTENs only to channels with handlers.
      await client.query(`UNLISTEN ${pg.escapeIdentifier(channel)}`).catch((err: unknown) => this.report(err));
    };
  }

  async notify(channel: string, payload: string): Promise<void> {
    assertChannel(channel);
    await this.options.notifier.query('SELECT pg_notify($1, $2)', [channel, payload]);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.handlers.clear();
    await this.connecting?.catch(() => undefined);
    const client = this.client;
    this.detach();
    await client?.end().catch(() => undefined);
  }

  /** Removes one handler; true when it was the channel's last. */
  private removeHandler(channel: string, handler: ChangeHandler): boolean {
    const set = this.handlers.get(channel);
    if (set === undefined || !set.delete(handler) || set.size > 0) return false;
    this.handlers.delete(channel);
    return true;
  }

  private connected(): Promise<pg.Client> {
    if (this.client !== undefined) return Promise.resolve(this.client);
    this.connecting ??= this.connect().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  /** Opens a connection, LISTENs to every channel with handlers, and only then makes it current. */
  private async connect(): Promise<pg.Client> {
    const client = new pg.Client(this.options.connection);
    let failure: Error | undefined;
    const onFailure = (err?: Error) => {
      failure ??= err ?? new Error('The LISTEN connection ended');
      if (client === this.client) this.drop(failure);
    };
    client.on('error', onFailure);
    client.on('end', () => onFailure());
    client.on('notification', (message) => {
      if (client === this.client) this.dispatch(message);
    });
    try {
      await client.connect();
      const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      const listened = new Set<string>();
      for (const channel of this.handlers.keys()) {
        await client.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
        listened.add(channel);
      }
      if (failure !== undefined) throw failure;
      if (this.closed) throw new Error('The change feed is closed');
      this.client = client;
      this.listened = listened;
      this.pid = rows[0]?.pid;
      this.startProbe(client);
    } catch (err) {
      void client.end().catch(() => undefined);
      throw err;
    }
    this.attempts = 0;
    clearTimeout(this.reconnectTimer);
    this.reconnectTimer = undefined;
    if (this.lost) {
      this.lost = false;
      this.runOnReconnect();
    }
    return client;
  }

  private dispatch(message: pg.Notification): void {
    for (const handler of this.handlers.get(message.channel) ?? []) {
      try {
        handler(message.payload ?? '');
      } catch (err) {
        this.report(err);
      }
    }
  }

  /** Forgets the current connection (after an error, an unexpected end or a failed probe) and reconnects. */
  private drop(err: Error): void {
    const client = this.client;
    this.detach();
    void client?.end().catch(() => undefined);
    this.report(err);
    // With nothing subscribed there is nothing to resynchronise; the next listen() connects afresh.
    if (this.closed || this.handlers.size === 0) return;
    this.lost = true;
    this.scheduleReconnect();
  }

  private detach(): void {
    clearInterval(this.probeTimer);
    this.probeTimer = undefined;
    this.client = undefined;
    this.listened = new Set();
    this.pid = undefined;
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer !== undefined) return;
    const ceiling = Math.min(this.hooks.maxBackoffMs, this.hooks.minBackoffMs * 2 ** this.attempts);
    this.attempts += 1;
    // Half fixed, half random: instances that lost the server together do not all return at once.
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.connected().catch((err: unknown) => {
        this.report(err);
        if (this.lost) this.scheduleReconnect();
      });
    }, delay);
  }

  private startProbe(client: pg.Client): void {
    if (this.hooks.probeIntervalMs <= 0) return;
    this.probeTimer = setInterval(() => {
      client.query('SELECT 1').catch((err: unknown) => {
        if (client === this.client) this.drop(asError(err));
      });
    }, this.hooks.probeIntervalMs);
    this.probeTimer.unref();
  }

  private runOnReconnect(): void {
    const { onReconnect } = this.hooks;
    if (onReconnect === undefined) return;
    try {
      Promise.resolve(onReconnect()).catch((err: unknown) => this.report(err));
    } catch (err) {
      this.report(err);
    }
  }

  private report(err: unknown): void {
    try {
      this.hooks.onError(asError(err));
    } catch {
      // A throwing error hook must not break reconnecting.
    }
  }
}
