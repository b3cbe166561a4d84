// `m2m-auth serve` and `m2m-auth migrate`: flags generated from the configuration schema.

import { constants } from 'node:os';
import { Command, Option } from 'commander';
import { CONFIG_SCHEMA, loadConfig, type Config, type ConfigKey } from '../config/schema.js';
import { CliError } from './admin-client.js';
import type { Output } from './output.js';
import type { SignalHandlers } from './workers.js';

function placeholder(spec: ConfigKey): string {
  switch (spec.kind) {
    case 'enum': return (spec.values ?? []).join('|');
    case 'bool': return 'true|false';
    case 'address': return 'host:port';
    case 'url': return 'url';
    case 'int': return 'n';
    default: return 'value';
  }
}

/** Adds one option per schema key; returns a reader of the given flags as loadConfig overrides. */
function addConfigOptions(cmd: Command, keys: ReadonlyArray<keyof Config> | 'all'): () => Partial<Record<keyof Config, unknown>> {
  const names = new Map<string, keyof Config>();
  for (const spec of CONFIG_SCHEMA) {
    if (keys !== 'all' && !keys.includes(spec.key)) continue;
    const def = spec.defaultText ?? (spec.default === undefined ? undefined : String(spec.default));
    const option = new Option(`${spec.flag} <${placeholder(spec)}>`, `${spec.description} [env ${spec.env}${def ? `; default ${def}` : ''}]`);
    names.set(option.attributeName(), spec.key);
    cmd.addOption(option);
  }
  return () => {
    const opts = cmd.opts<Record<string, unknown>>();
    const overrides: Partial<Record<keyof Config, unknown>> = {};
    for (const [attribute, key] of names) if (opts[attribute] !== undefined) overrides[key] = opts[attribute];
    return overrides;
  };
}

/** The database a URL names, without anything that could be a password. */
function databaseLabel(url: string): string {
  if (url.startsWith('sqlite:')) return url;
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
  return scheme ? `the ${scheme} database` : 'the database';
}

/**
 * SIGTERM, SIGINT and SIGHUP each get one listener for the life of the process, pointed first at
 * the start's handling, then at the running server's (`route`). Listeners are never removed and
 * added again: a signal that arrives between the two can be lost.
 *
 * During the start, SIGTERM and SIGINT end it at once, as their default action would: Node run as
 * PID 1 (a container without an init process) gets no default action, and would ignore a stop
 * during the start (migrations, a database that does not answer yet) until the runtime's SIGKILL.
 * SIGHUP (reload TLS) must not end a start, as its default action would (`systemctl reload` right
 * after a start): it is noted, and handed to the running server's handler once there is one.
 */
function routeSignals(): (handlers: SignalHandlers) => void {
  let reloadAsked = false;
  let current: SignalHandlers = {
    stop: (signal) => exitOnSignal(signal, 'during the start'),
    reload() {
      reloadAsked = true;
    },
  };
  process.on('SIGINT', (signal) => current.stop(signal));
  process.on('SIGTERM', (signal) => current.stop(signal));
  process.on('SIGHUP', () => current.reload());
  return (handlers) => {
    current = handlers;
    if (reloadAsked) handlers.reload();
  };
}

/** Exits as the signal's default action would (128 + its number), saying so. */
function exitOnSignal(signal: NodeJS.Signals, when: string): never {
  process.stderr.write(`m2m-auth: ${signal} ${when}: exiting\n`);
  process.exit(128 + (constants.signals[signal] ?? 0));
}

export function serveCommand(): Command {
  const cmd = new Command('serve').description('run the authorization server: the public OAuth listener and the admin listener');
  const overrides = addConfigOptions(cmd, 'all');
  cmd.option('--init', 'create a new, empty embedded database although files of an earlier start (data/kek, data/admin-token) show that one existed; refused when the database exists. Keeps those files. Without it, such a start is refused');
  cmd.action(async () => {
    const config = loadConfig(process.env, overrides());
    const route = routeSignals();
    const { isWorker, runPrimary, workerCount } = await import('./workers.js');
    const count = workerCount(config);
    // Workers run with the same arguments, and find the database their primary created.
    const init = cmd.opts<{ init?: boolean }>().init === true && !isWorker();
    if (count > 1 && !isWorker()) {
      await runPrimary(config, count, route, { init });
      return;
    }
    const { startServer } = await import('../server.js');
    const running = await startServer(config, { init });
    const log = running.server.logger;
    await new Promise<void>((resolve, reject) => {
      let stopping = false;
      route({
        stop(signal) {
          // A second signal while closing gives up waiting for in-flight requests.
          if (stopping) {
            log.warn({ signal }, `${signal} while shutting down: exiting at once`);
            process.exit(1);
          }
          stopping = true;
          log.info({ signal }, `${signal} received: shutting down gracefully`);
          running.close().then(resolve, (err: unknown) => reject(new CliError(`Shutdown failed: ${(err as Error).message}`)));
        },
        // New TLS certificate and key files: new connections get them, open ones keep theirs.
        reload: () => void running.server.reloadTls(),
      });
    });
    // A cluster worker's IPC channel would keep it alive after a clean close.
    if (isWorker()) process.disconnect?.();
  });
  return cmd;
}

export function migrateCommand(io: Output): Command {
  const cmd = new Command('migrate').description('apply pending database schema migrations, then exit');
  const overrides = addConfigOptions(cmd, ['databaseUrl', 'dataDir']);
  cmd.action(async () => {
    const config = loadConfig(process.env, overrides());
    // As PID 1 (a Kubernetes init container) SIGTERM has no default action: a stop would wait for
    // SIGKILL. A migration interrupted here is rolled back by the database.
    for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => exitOnSignal(signal, 'during the migration'));
    const { openStorage } = await import('../storage/open.js');
    const { checkDatabaseFile } = await import('../server.js');
    // Not a way around the refusal of `serve`: migrating creates the database file.
    checkDatabaseFile(config, false);
    const storage = await openStorage(config.databaseUrl, { migrate: false });
    try {
      await storage.migrate();
      io.out(`${databaseLabel(config.databaseUrl)}: every migration is applied; the schema is up to date.`);
    } finally {
      await storage.close();
    }
  });
  return cmd;
}
