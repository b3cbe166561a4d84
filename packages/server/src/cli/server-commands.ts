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

/** The KEK of an existing deployment: --kek / M2M_AUTH_KEK, else <data-dir>/kek; never a new one. */
async function existingKek(config: Config): Promise<Buffer> {
  const { existsSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { KEK_FILE_NAME, loadKek } = await import('../keys/kek.js');
  if ((config.kek === undefined || config.kek === '') && !existsSync(join(config.dataDir, KEK_FILE_NAME))) {
    throw new CliError(`No key-encryption key: pass --kek, set M2M_AUTH_KEK, or point --data-dir at the folder holding ${KEK_FILE_NAME}`);
  }
  return loadKek({ kek: config.kek, dataDir: config.dataDir });
}

export function exportCommand(io: Output): Command {
  const cmd = new Command('export')
    .description('write the whole state of a database (trusted issuers, clients, signing keys still encrypted, revocations, replay entries) as one sealed JSON document')
    .option('-o, --output <file>', 'write to this new file (mode 0600) instead of stdout');
  const overrides = addConfigOptions(cmd, ['databaseUrl', 'dataDir', 'kek']);
  cmd.action(async (flags: { output?: string }) => {
    const config = loadConfig(process.env, overrides());
    const kek = await existingKek(config);
    const { openStorage } = await import('../storage/open.js');
    const { checkDatabaseFile } = await import('../server.js');
    checkDatabaseFile(config, false);
    const { exportState } = await import('./state-document.js');
    const storage = await openStorage(config.databaseUrl, { migrate: false });
    let text: string;
    let summary: string;
    try {
      const doc = await exportState(storage, kek, Date.now());
      text = `${JSON.stringify(doc)}\n`;
      summary = `${doc.trusted_issuers.length} trusted issuers, ${doc.clients.length} clients, ${doc.signing_keys.length} signing keys, ${doc.revocations.length} revocations, ${doc.replay.length} replay entries`;
    } finally {
      await storage.close();
    }
    if (flags.output === undefined) {
      io.out(text.trimEnd());
      return;
    }
    const { writeFile } = await import('node:fs/promises');
    try {
      await writeFile(flags.output, text, { mode: 0o600, flag: 'wx' });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new CliError(code === 'EEXIST' ? `--output ${flags.output} exists; name a new file` : `Cannot write ${flags.output}: ${code ?? (err as Error).message}`);
    }
    io.err(`Exported ${summary} from ${databaseLabel(config.databaseUrl)} to ${flags.output}.`);
  });
  return cmd;
}

export function importCommand(io: Output): Command {
  const cmd = new Command('import')
    .description('load a document written by m2m-auth export into an empty database (migrated first), or with --merge add what is missing')
    .requiredOption('-f, --file <file>', 'the export document')
    .option('--merge', 'import into a database that is not empty: add what is missing, keep the clients and keys already there');
  const overrides = addConfigOptions(cmd, ['databaseUrl', 'dataDir', 'kek']);
  cmd.action(async (flags: { file: string; merge?: boolean }) => {
    const config = loadConfig(process.env, overrides());
    const kek = await existingKek(config);
    const { readFile } = await import('node:fs/promises');
    let text: string;
    try {
      text = await readFile(flags.file, 'utf8');
    } catch (err) {
      throw new CliError(`Cannot read ${flags.file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const { importState, readStateDocument } = await import('./state-document.js');
    // Checked whole before the database is opened: a bad document writes nothing anywhere.
    const body = readStateDocument(text, kek, flags.file);
    const { openStorage } = await import('../storage/open.js');
    const storage = await openStorage(config.databaseUrl, { migrate: false });
    try {
      await storage.migrate();
      const n = await importState(storage, body, { merge: flags.merge === true, now: Date.now() });
      io.out(`Imported into ${databaseLabel(config.databaseUrl)}: ${n.trustedIssuers} trusted issuers, ${n.clients} clients, ${n.signingKeys} signing keys, `
        + `${n.revocations} revocations, ${n.replay} replay entries${n.kept > 0 ? `; ${n.kept} trusts, clients or keys already there were kept` : ''}.`);
    } finally {
      await storage.close();
    }
  });
  return cmd;
}
