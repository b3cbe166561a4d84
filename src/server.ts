// The server factory: storage, keys, clients and the OAuth endpoints wired onto the public and
// admin listeners. `createServer` builds without listening; `startServer` also listens.

import { mkdirSync } from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { parseAddress, type Config } from './config/schema.js';
import { openStorage } from './storage/open.js';
import type { Storage } from './storage/types.js';
import { loadKek } from './keys/kek.js';
import { KeyRing } from './keys/keyring.js';
import { ClientRegistry } from './clients/registry.js';
import { registerAdminRoutes } from './admin/routes.js';
import { loadAdminToken } from './admin/admin-token.js';
import { EventBus } from './observability/events.js';
import { createLogger } from './observability/logger.js';
import { subscribeAuditLog } from './observability/audit.js';
import { ClientAuthenticator } from './oauth/client-auth/authenticate.js';
import { AccessTokenReader, type TokenSigner } from './oauth/access-token.js';
import { TokenEndpoint } from './oauth/token/token-endpoint.js';
import { IntrospectionEndpoint } from './oauth/introspection/introspection-endpoint.js';
import { RevocationEndpoint } from './oauth/revocation/revocation-endpoint.js';
import { RevocationList } from './oauth/revocation/revocation-list.js';
import { authorizationServerMetadata, endpointUrl, ENDPOINT_PATHS } from './oauth/discovery/metadata.js';
import { buildPublicApp } from './http/public-app.js';
import { ClusterSync, type Notifier } from './cluster/sync.js';
import { RedisNotifier } from './cluster/redis-notifier.js';
import { PostgresNotifier } from './cluster/postgres-notifier.js';
import { PostgresStorage } from './storage/postgres/index.js';
import { fastifyOptions } from './http/fastify-options.js';

export interface ServerOptions {
  logger?: Logger;
  /** Clock in epoch ms (tests). */
  now?: () => number;
}

export interface M2MAuthServer {
  readonly config: Config;
  readonly publicApp: FastifyInstance;
  readonly adminApp: FastifyInstance;
  readonly storage: Storage;
  readonly keys: KeyRing;
  readonly clients: ClientRegistry;
  readonly events: EventBus;
  readonly logger: Logger;
  readonly sync: ClusterSync;
  /** Starts both listeners; resolves to their URLs. */
  listen(): Promise<{ publicUrl: string; adminUrl: string }>;
  /** Stops accepting, lets in-flight requests finish, closes storage. Idempotent. */
  close(): Promise<void>;
}

const SWEEP_INTERVAL_MS = 60_000;

function needsDataDir(config: Config): boolean {
  return config.databaseUrl.startsWith('sqlite:') && config.databaseUrl !== 'sqlite::memory:'
    || config.adminToken === undefined || config.kek === undefined;
}

export async function createServer(config: Config, options: ServerOptions = {}): Promise<M2MAuthServer> {
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const now = options.now ?? Date.now;
  if (needsDataDir(config)) mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });

  const storage = await openStorage(config.databaseUrl, { migrate: config.autoMigrate });
  try {
    const events = new EventBus();
    subscribeAuditLog(events, logger);

    const kek = loadKek({ kek: config.kek, dataDir: config.dataDir });
    const keys = await KeyRing.open(storage.keys, {
      kek,
      alg: config.signingAlg,
      prepublishMs: config.keyPrepublish * 1000,
      rotationIntervalMs: config.keyRotationInterval * 1000,
      maxTokenTtlMs: config.tokenTtlMax * 1000,
      events,
      now,
    });
    const clients = new ClientRegistry(storage.clients, events, {
      tokenTtlMin: config.tokenTtlMin,
      tokenTtlMax: config.tokenTtlMax,
      secretGracePeriod: config.secretGracePeriod,
      now,
    });
    const revocations = new RevocationList(storage.revocations);
    await revocations.load(now());

    const admin = loadAdminToken({ adminToken: config.adminToken, dataDir: config.dataDir });
    if (admin.generated) logger.info({ path: admin.path }, 'generated an admin token (mode 0600); read it from this file');
    else if (admin.path) logger.info({ path: admin.path }, 'admin token read from file');

    const tokenEndpoint = endpointUrl(config.issuer, ENDPOINT_PATHS.token);
    const authenticator = new ClientAuthenticator({ clients, replay: storage.replay, issuer: config.issuer, tokenEndpoint, now });
    const signer: TokenSigner = {
      sign: (claims) => keys.sign(claims),
      verifyPayload: (token) => keys.verify(token)?.payload ?? null,
    };
    const tokens = new AccessTokenReader({ issuer: config.issuer, signer, revocations, clients, now });

    const metadata = new MetadataCache(config.issuer, clients, keys);
    for (const e of ['client.created', 'client.updated', 'client.deleted'] as const) events.on(e, () => metadata.invalidate());
    for (const e of ['key.created', 'key.activated', 'key.deleted'] as const) events.on(e, () => metadata.invalidate());

    const publicApp = buildPublicApp({
      logger,
      bodyLimit: config.bodyLimit,
      events,
      token: new TokenEndpoint({
        issuer: config.issuer, authenticator, signer, events,
        tokenTtl: config.tokenTtl, tokenTtlMin: config.tokenTtlMin, tokenTtlMax: config.tokenTtlMax, now,
      }),
      introspection: new IntrospectionEndpoint({ authenticator, tokens, events }),
      revocation: new RevocationEndpoint({ authenticator, tokens, revocations, events, now }),
      metadataJson: () => metadata.json(),
      jwksJson: () => keys.jwksJson(),
      ready: async () => {
        let storageOk = true;
        try {
          await storage.ping();
        } catch {
          storageOk = false;
        }
        const keyOk = keys.isReady();
        return { ok: storageOk && keyOk && !closing, checks: { storage: storageOk, signing_key: keyOk } };
      },
    });

    const adminApp = Fastify(fastifyOptions(logger, config.bodyLimit)) as unknown as FastifyInstance;
    await registerAdminRoutes(adminApp, { registry: clients, keys, adminToken: admin.token, events });

    // Changes made by other instances (or worker processes) on the same database.
    const notifier: Notifier | undefined = config.redisUrl
      ? new RedisNotifier(config.redisUrl, logger)
      : storage instanceof PostgresStorage ? new PostgresNotifier(storage, logger) : undefined;
    const sync = new ClusterSync({
      changes: storage.changes,
      notifier,
      logger,
      pollIntervalMs: config.syncInterval,
      targets: {
        client: (clientId) => {
          clients.invalidate(clientId);
          metadata.invalidate();
        },
        revocation: (jti, expiresAt) => revocations.remember(jti, expiresAt),
        keys: async () => {
          await keys.refresh();
          metadata.invalidate();
        },
        resyncAll: async () => {
          clients.clear();
          await revocations.load(now());
          await keys.refresh();
          metadata.invalidate();
        },
      },
    });
    await sync.start();
    for (const e of [
      'client.created', 'client.updated', 'client.disabled', 'client.enabled', 'client.deleted',
      'client.secret_rotated', 'client.tokens_revoked', 'token.revoked', 'key.created', 'key.activated', 'key.retired',
    ] as const) {
      events.on(e, () => sync.nudge());
    }

    const sweep = setInterval(() => {
      const t = now();
      revocations.prune(t);
      storage.sweep(t).catch((err: unknown) => logger.warn({ err }, 'storage sweep failed'));
    }, SWEEP_INTERVAL_MS);
    sweep.unref();
    keys.start();

    let closing = false;
    let closed: Promise<void> | undefined;
    const server: M2MAuthServer = {
      config, publicApp, adminApp, storage, keys, clients, events, logger, sync,
      async listen() {
        const pub = parseAddress(config.listen);
        const adm = parseAddress(config.adminListen);
        const publicUrl = await publicApp.listen({ host: pub.host, port: pub.port });
        const adminUrl = await adminApp.listen({ host: adm.host, port: adm.port });
        logger.info({ publicUrl, adminUrl, issuer: config.issuer }, 'm2m-auth listening');
        return { publicUrl, adminUrl };
      },
      close() {
        closed ??= (async () => {
          closing = true;
          clearInterval(sweep);
          await sync.stop();
          await keys.stop();
          await Promise.allSettled([publicApp.close(), adminApp.close()]);
          await storage.close();
          logger.flush?.();
        })();
        return closed;
      },
    };
    return server;
  } catch (err) {
    await storage.close().catch(() => undefined);
    throw err;
  }
}

export interface RunningServer {
  server: M2MAuthServer;
  publicUrl: string;
  adminUrl: string;
  close(): Promise<void>;
}

export async function startServer(config: Config, options: ServerOptions = {}): Promise<RunningServer> {
  const server = await createServer(config, options);
  try {
    const { publicUrl, adminUrl } = await server.listen();
    return { server, publicUrl, adminUrl, close: () => server.close() };
  } catch (err) {
    await server.close();
    throw err;
  }
}

/** The RFC 8414 document, recomputed only when clients or keys change. */
class MetadataCache {
  #json: Promise<string> | undefined;
  constructor(
    private readonly issuer: string,
    private readonly clients: ClientRegistry,
    private readonly keys: KeyRing,
  ) {}

  invalidate(): void {
    this.#json = undefined;
  }

  json(): Promise<string> {
    this.#json ??= this.#build().catch((err: unknown) => {
      this.#json = undefined;
      throw err;
    });
    return this.#json;
  }

  async #build(): Promise<string> {
    const scopes = new Set<string>();
    let after: string | undefined;
    for (;;) {
      const page = await this.clients.list({ ...(after !== undefined && { after }), limit: 1000 });
      for (const c of page.clients) for (const s of c.scope) scopes.add(s);
      if (page.next === null) break;
      after = page.next;
    }
    const algs = [...new Set(this.keys.jwks().keys.map((k) => String(k.alg)))];
    return JSON.stringify(authorizationServerMetadata({ issuer: this.issuer, scopes: [...scopes].sort(), accessTokenSigningAlgs: algs }));
  }
}
