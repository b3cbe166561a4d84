// The server factory: storage, keys, clients and the OAuth endpoints wired onto the public and
// admin listeners. `createServer` builds without listening; `startServer` also listens.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { parseAddress, type Config } from './config/schema.js';
import { openStorage, sqliteDatabaseFile } from './storage/open.js';
import { checkFreshDatabase } from './storage/sqlite/fresh-start.js';
import { ConfigError } from './ground/errors.js';
import type { KeyStore, Storage } from './storage/types.js';
import { deriveKey, KEK_FILE_NAME, loadKek } from './keys/kek.js';
import { KeyRing, keyMaintenanceInterval } from './keys/keyring.js';
import { ClientRegistry } from './clients/registry.js';
import { TrustRegistry } from './trusts/registry.js';
import { adminFrameworkErrors, registerAdminRoutes } from './admin/routes.js';
import { adminTokenPath, loadAdminToken } from './admin/admin-token.js';
import { registerPprofRoutes } from './admin/pprof-routes.js';
import { EventBus } from './observability/events.js';
import { createLogger } from './observability/logger.js';
import { LogSafety } from './observability/log-safety.js';
import { subscribeAuditLog } from './observability/audit.js';
import { registerMetricsRoute, ServerMetrics } from './observability/metrics.js';
import { ClientAuthentication } from './oauth/client-auth/authenticate.js';
import { plainSteps } from './oauth/steps.js';
import { ConnectionMemos } from './oauth/connection-memo.js';
import { AccessTokenReader, type TokenSigner } from './oauth/access-token.js';
import { TokenEndpoint } from './oauth/token/token-endpoint.js';
import { senderConstraint } from './oauth/token/sender-constraint.js';
import { DpopProofs, normalisedHtu } from './oauth/dpop/proof.js';
import { DpopNonces } from './oauth/dpop/nonce.js';
import { processReplay, sharedReplay } from './oauth/dpop/replay.js';
import { IntrospectionEndpoint } from './oauth/introspection/introspection-endpoint.js';
import { RevocationEndpoint } from './oauth/revocation/revocation-endpoint.js';
import { RevocationList } from './oauth/revocation/revocation-list.js';
import { endpointUrl, ENDPOINT_PATHS } from './oauth/discovery/metadata.js';
import { MetadataCache } from './oauth/discovery/metadata-cache.js';
import { buildPublicApp, type PublicAppDeps } from './http/public-app.js';
import { Limits } from './limits/limits.js';
import { fastifyTrustProxy } from './http/trusted-proxies.js';
import { parseTrustProxy } from './config/trust-proxy.js';
import { ClusterSync } from './sync/change-log-sync.js';
import { openNotifier } from './sync/notifier.js';
import { StalenessGuard } from './sync/staleness.js';
import { WorkerNotifier } from './sync/ipc-notifier.js';
import { propagatingWrites } from './sync/propagate.js';
import { inClusterWorker } from './observability/metrics-relay.js';
import { fastifyOptions } from './http/fastify-options.js';
import { ListenerDrain } from './http/drain.js';
import { connectionLimits, limitListener, openFileLimit, RESERVED_FILES } from './http/connections.js';
import { loadClientCas, loadTlsCredentials, reloadTls, swapTls, tlsFiles, type ReloadableTlsServer } from './http/tls.js';
import { trustedPeer } from './http/client-cert.js';
import { bindCertificate } from './oauth/token/certificate-binding.js';
import { databaseSystem, startTracing, TRACING_OFF, type Tracing } from './observability/tracing.js';
import { TrustKeys } from './federation/trust-keys.js';
import { SingleUseJtis } from './federation/single-use.js';
import { VerifiedTokens } from './federation/verified-tokens.js';

export interface ServerOptions {
  logger?: Logger;
  /**
   * Create a new, empty embedded database where files of an earlier start show that one existed
   * (`m2m-auth serve --init`); refused when the database exists. Without it such a start is refused.
   */
  init?: boolean;
  /** Clock in epoch ms (tests). */
  now?: () => number;
  /** Tracing to use instead of the one M2M_AUTH_OTEL_ENABLED starts; the caller shuts it down. */
  tracing?: Tracing;
}

export interface M2MAuthServer {
  readonly config: Config;
  readonly publicApp: FastifyInstance;
  /** The mutual-TLS listener (M2M_AUTH_MTLS_LISTEN); undefined when not configured. */
  readonly mtlsApp: FastifyInstance | undefined;
  readonly adminApp: FastifyInstance;
  /** Every route of the admin listener (method and path, HEAD left out), as registered: what the OpenAPI document must describe. */
  readonly adminRoutes: ReadonlyArray<{ readonly method: string; readonly url: string }>;
  readonly storage: Storage;
  readonly keys: KeyRing;
  readonly clients: ClientRegistry;
  /** Trusted issuers of federated clients (issue 17), cached and kept coherent like clients. */
  readonly trusts: TrustRegistry;
  readonly events: EventBus;
  readonly logger: Logger;
  readonly sync: ClusterSync;
  /** Starts the listeners; resolves to their URLs (mtlsUrl: the mutual-TLS listener's, when configured). */
  listen(): Promise<{ publicUrl: string; adminUrl: string; mtlsUrl?: string }>;
  /**
   * Drains and stops: readiness goes false at once, clients are told to reconnect elsewhere, the
   * listeners close after M2M_AUTH_SHUTDOWN_DELAY, in-flight requests get M2M_AUTH_SHUTDOWN_TIMEOUT
   * to finish, then storage closes. Idempotent.
   */
  close(): Promise<void>;
  /** Reads the TLS certificate and key files again (SIGHUP); false, and the old ones kept, on failure. */
  reloadTls(): boolean;
}

const SWEEP_INTERVAL_MS = 60_000;
/** Node's default listen backlog (511) overflows when a thousand clients connect at once. */
const LISTEN_BACKLOG = 4096;

function needsDataDir(config: Config): boolean {
  return config.databaseUrl.startsWith('sqlite:') && config.databaseUrl !== 'sqlite::memory:'
    || config.adminToken === undefined || config.kek === undefined;
}

/** The signing keys in storage, the first one created when there is none. */
function openKeyRing(config: Config, keyStore: KeyStore, events: EventBus, now: () => number, kek = loadKek({ kek: config.kek, dataDir: config.dataDir })): Promise<KeyRing> {
  return KeyRing.open(keyStore, {
    kek,
    alg: config.signingAlg,
    prepublishMs: config.keyPrepublish * 1000,
    rotationIntervalMs: config.keyRotationInterval * 1000,
    maxTokenTtlMs: config.tokenTtlMax * 1000,
    events,
    now,
    refreshIntervalMs: keyMaintenanceInterval(config.keyRotationInterval * 1000),
  });
}

function loadAdmin(config: Config, logger: Logger): ReturnType<typeof loadAdminToken> {
  const admin = loadAdminToken({ adminToken: config.adminToken, dataDir: config.dataDir });
  if (admin.generated) logger.info({ path: admin.path }, 'generated an admin token (mode 0600); read it from this file');
  else if (admin.path) logger.info({ path: admin.path }, 'admin token read from file');
  return admin;
}

/**
 * Refuses to create a new embedded database silently where one existed (src/storage/sqlite/fresh-start.ts):
 * the generated key-encryption key or admin token in the data folder is evidence of an earlier start.
 */
export function checkDatabaseFile(config: Config, init: boolean): void {
  const file = sqliteDatabaseFile(config.databaseUrl);
  if (file === undefined) {
    if (init && !config.databaseUrl.startsWith('sqlite:')) {
      throw new ConfigError('CONFIG_INVALID', '--init is for the embedded SQLite database; a PostgreSQL database is created by its administrator and set up with "m2m-auth migrate".');
    }
    return;
  }
  checkFreshDatabase(file, [join(config.dataDir, KEK_FILE_NAME), adminTokenPath(config.dataDir)], init);
}

/** The data folder, the database file and the TLS files checked, before anything is opened. */
function prepareFiles(config: Config, init = false): ReturnType<typeof tlsFiles> {
  checkDatabaseFile(config, init);
  if (needsDataDir(config)) mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  // Unusable TLS files stop the start with one clear line.
  return tlsFiles(config);
}

/**
 * What every start prepares, once, without serving: the data folder, the schema, the first
 * signing key and the admin token file. The primary of `serve --workers` runs it before forking,
 * so that workers do not race to create them.
 */
export async function prepareServer(config: Config, options: { logger?: Logger; init?: boolean } = {}): Promise<void> {
  const logger = options.logger ?? createLogger({ level: config.logLevel, format: config.logFormat });
  const tlsFileNames = prepareFiles(config, options.init);
  if (tlsFileNames) loadTlsCredentials(tlsFileNames);
  const storage = await openStorage(config.databaseUrl, { migrate: config.autoMigrate });
  try {
    const events = new EventBus();
    subscribeAuditLog(events, logger, { sampleRate: config.auditSampleRate });
    await openKeyRing(config, storage.keys, events, Date.now);
    loadAdmin(config, logger);
  } finally {
    await storage.close();
  }
}

export async function createServer(config: Config, options: ServerOptions = {}): Promise<M2MAuthServer> {
  const logger = options.logger ?? createLogger({ level: config.logLevel, format: config.logFormat });
  const now = options.now ?? Date.now;
  const tlsFileNames = prepareFiles(config, options.init);
  const tls = tlsFileNames && loadTlsCredentials(tlsFileNames);
  // RFC 8705 §2.1: the CAs whose certificates tls_client_auth accepts, read once at start.
  const clientCas = config.mtlsCa === undefined ? undefined : loadClientCas(config.mtlsCa);

  const storage = await openStorage(config.databaseUrl, {
    migrate: config.autoMigrate,
    // Served from then on as a database outage (src/storage/unavailable.ts); the line says what to do.
    onDatabaseFileLost: (lost) => logger.error({
      database: lost.database, file: lost.path, change: lost.change,
      ...(lost.rescued !== undefined && { rescued: lost.rescued }), ...(lost.rescueError !== undefined && { rescueError: lost.rescueError }),
    }, `The database file ${lost.path} was ${lost.change} while the server was running: writes now get 503 and nothing more is stored, `
      + `/readyz answers 503, and tokens and introspection are served from memory for at most M2M_AUTH_STALENESS_BOUND (${config.stalenessBound} s). `
      + `Stop the server, put the database back at ${lost.database} (${lost.rescued !== undefined ? `the copy saved at ${lost.rescued} holds every acknowledged write` : 'from your backup'}), `
      + 'and start it again.'),
  });
  const ownTracing = options.tracing === undefined && config.otelEnabled;
  let tracing: Tracing = options.tracing ?? TRACING_OFF;
  try {
    if (ownTracing) tracing = await startTracing();
    // Spans around the storage calls a request makes (the same objects when tracing is off).
    // With `serve --workers`, a write is acknowledged once the other workers have applied it
    // (src/sync/ipc-notifier.ts); `sync` below does the waiting once it runs.
    const workers = inClusterWorker() ? new WorkerNotifier() : undefined;
    let propagate = (): Promise<void> => Promise.resolve();
    const tracedStores = tracing.storage(storage, databaseSystem(config.databaseUrl));
    const traced = workers ? propagatingWrites(tracedStores, () => propagate()) : tracedStores;
    const keyStore = workers
      ? propagatingWrites({ clients: storage.clients, keys: storage.keys, revocations: storage.revocations }, () => propagate()).keys
      : storage.keys;
    const admin = loadAdmin(config, logger);
    // Client-supplied values in log and audit lines: bounded, and masked where they hold a secret's
    // shape or this server's admin token.
    const logSafety = new LogSafety({ secrets: [admin.token] });
    const events = new EventBus();
    subscribeAuditLog(events, logger, { sampleRate: config.auditSampleRate, safety: logSafety });

    // The change log's head before any cache is loaded: sync starts reading from there, so a change
    // written while this instance loads (another worker's revocation, say) is applied, not skipped.
    const changesHead = await traced.changes.head();
    const kek = loadKek({ kek: config.kek, dataDir: config.dataDir });
    const keys = await openKeyRing(config, keyStore, events, now, kek);
    // Trusted issuers (issue 17); a write waits for the other workers like a client's does.
    const trustStore = workers
      ? propagatingWrites({ clients: storage.clients, keys: storage.keys, revocations: storage.revocations, trusts: storage.trusts }, () => propagate()).trusts!
      : storage.trusts;
    const trusts = new TrustRegistry(trustStore, events, { now, allowHttpLoopback: config.unsafeFederationHttpLoopback });
    const clients = new ClientRegistry(traced.clients, events, {
      // A federated client's trust is read fresh when the client is written.
      trusts: { get: (name) => trustStore.getTrust(name) },
      tokenTtlMin: config.tokenTtlMin,
      tokenTtlMax: config.tokenTtlMax,
      secretGracePeriod: config.secretGracePeriod,
      now,
    });
    const revocations = new RevocationList(traced.revocations);
    await revocations.load(now());

    // The OAuth endpoints see clients through the staleness bound: cached clients (and the
    // revocation list beside them) are trusted only while the change log is being read.
    // `sync` is created below; no request reaches the guard before createServer returns.
    const guarded = new StalenessGuard({ clients, lastSuccess: () => sync.lastSuccess, boundMs: config.stalenessBound * 1000 });
    // An issuer written with port 0 (`http://127.0.0.1:0`) names the port the public listener gets:
    // `config.issuer` takes it in listen(), before the first request, and everything reads it there.
    const issuer = (): string => config.issuer;
    let tokenEndpointUrl = endpointUrl(config.issuer, ENDPOINT_PATHS.token);
    const tokenEndpoint = (): string => tokenEndpointUrl;
    // Request rates and failed-authentication throttling; shared through Redis when configured.
    const limits = new Limits(config, { logger, now });
    // Federated clients: their trusts' keys fetched and cached per process; single-use jtis decided
    // in Redis when configured, else remembered per process and written behind to the replay store.
    const trustKeys = new TrustKeys({ events, allowHttpLoopback: config.unsafeFederationHttpLoopback, now });
    // A trust changed here or on another instance: its keys are fetched again at its next use; a
    // deleted one's are forgotten. (Not forgotten on every change: each change is seen twice, once
    // when written and once through the change log, and forgetting the keys of a fetch in flight
    // made the requests waiting for it fail.)
    trusts.onChange((name) => {
      if (name === '') return trustKeys.clear();
      void trusts.get(name).then(
        (trust) => (trust === undefined ? trustKeys.forget(name) : trustKeys.invalidate(name)),
        () => trustKeys.forget(name),
      );
    });
    const authentication = new ClientAuthentication({
      clients: guarded, replay: traced.replay, issuer, tokenEndpoint, now, throttle: limits.authThrottle,
      federation: {
        trusts,
        keys: trustKeys,
        jtis: new SingleUseJtis({ replay: traced.replay, events, shared: limits.sharedFirstUse }),
        verified: new VerifiedTokens(),
      },
      ...(clientCas && { clientCas: clientCas.cas }),
    });
    // The endpoints' steps, and each connection's own, which remember what it sent last.
    const steps = plainSteps({ authentication, issuer });
    const memos = new ConnectionMemos({ steps, authentication, now });
    const signer: TokenSigner = {
      sign: (claimsJson) => keys.sign(claimsJson),
      verifyPayload: (token) => keys.verify(token)?.payload ?? null,
      revocationEpoch: () => keys.revocationEpoch(),
    };
    const tokens = new AccessTokenReader({ issuer, signer, revocations, clients: guarded, now });
    // DPoP (RFC 9449): proof jtis are spent in the shared replay table on PostgreSQL (single use
    // across instances), in this process's memory on SQLite (no database write per request).
    let htuOf = '';
    let htu: string[] = [];
    const bind = senderConstraint({
      proofs: new DpopProofs(),
      htu: () => {
        const url = tokenEndpoint();
        if (url !== htuOf) htu = [normalisedHtu((htuOf = url))];
        return htu;
      },
      consumeOnce: config.databaseUrl.startsWith('sqlite:') ? processReplay(traced.replay) : sharedReplay(traced.replay),
      ...(config.dpopNonce && { nonces: new DpopNonces(deriveKey(kek, 'dpop nonce'), now) }),
      now,
    });

    const trustProxy = parseTrustProxy(config.trustProxy);
    // The mutual-TLS listener's base URL once it listens (M2M_AUTH_MTLS_URL, or the issuer's host
    // with https and the listener's port), for discovery's mtls_endpoint_aliases.
    let mtlsBase = config.mtlsUrl;
    const mutualTls = config.mtlsListen !== undefined || trustProxy !== false
      ? () => ({ boundAccessTokens: true, ...(mtlsBase !== undefined && { aliasBase: mtlsBase }) })
      : () => undefined;
    const metadata = new MetadataCache(issuer, clients, keys, mutualTls);
    for (const e of ['client.created', 'client.updated', 'client.deleted'] as const) events.on(e, () => metadata.invalidate());
    for (const e of ['key.created', 'key.activated', 'key.deleted', 'key.revoked'] as const) events.on(e, () => metadata.invalidate());

    const fileLimit = openFileLimit();
    const connections = connectionLimits(config, fileLimit);
    const appDeps: Omit<PublicAppDeps, 'tls' | 'clientCertificates'> = {
      logger,
      logSafety,
      connections,
      tracing,
      bodyLimit: config.bodyLimit,
      trustProxy: fastifyTrustProxy(trustProxy),
      stepsFor: (connection) => memos.for(connection),
      token: new TokenEndpoint({
        steps, signer, events,
        tokenTtl: config.tokenTtl, tokenTtlMin: config.tokenTtlMin, tokenTtlMax: config.tokenTtlMax, now,
        rateLimit: limits.tokenRequest, revocations,
        // The bind step: the client certificate first (RFC 8705 §3, for a client that asks for
        // certificate-bound tokens, or a fapi2 client over mutual TLS), then a DPoP proof (RFC 9449),
        // which binds to its key instead, and the checks of what must be sender-constrained.
        bind: (req, client) => {
          bindCertificate(req, client);
          return bind(req, client);
        },
      }),
      introspection: new IntrospectionEndpoint({ steps, tokens, events, rateLimit: limits.introspectionRequest }),
      revocation: new RevocationEndpoint({ steps, tokens, revocations, events, now }),
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
    };
    // The public listener takes a client certificate only from a trusted proxy's Client-Cert
    // header (RFC 9440); the mutual-TLS listener only from its own handshake.
    const publicApp = buildPublicApp({
      ...appDeps, ...(tls && { tls }), clientCertificates: { from: 'header', trusted: trustedPeer(trustProxy) },
    });
    const mtlsApp = config.mtlsListen !== undefined && tls
      ? buildPublicApp({ ...appDeps, tls, clientCertificates: { from: 'tls', ...(clientCas && { clientCa: clientCas.pem }) } })
      : undefined;

    const adminApp = Fastify({ ...fastifyOptions(logger, config.bodyLimit), frameworkErrors: adminFrameworkErrors }) as unknown as FastifyInstance;
    const adminRoutes: Array<{ method: string; url: string }> = [];
    adminApp.addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) if (method !== 'HEAD') adminRoutes.push({ method, url: route.url });
    });
    limitListener(adminApp, connections, {
      logger, name: 'admin',
      timeoutBody: JSON.stringify({ error: 'invalid_request', message: 'The request did not arrive within the request timeout.' }),
    });
    await registerAdminRoutes(adminApp, { registry: clients, trusts, keys, adminToken: admin.token, events });
    await registerPprofRoutes(adminApp, { adminToken: admin.token, enabled: config.pprof, events });

    // Changes made by other instances (or worker processes) on the same database.
    const notifier = await openNotifier({ redisUrl: config.redisUrl, storage, logger });
    const sync = new ClusterSync({
      changes: traced.changes,
      notifier,
      workers,
      logger,
      pollIntervalMs: config.syncInterval,
      cursor: changesHead,
      targets: {
        client: (clientId) => {
          clients.invalidate(clientId);
          metadata.invalidate();
        },
        trust: (name) => trusts.invalidate(name),
        revocation: (jti, expiresAt) => revocations.remember(jti, expiresAt),
        keys: async () => {
          await keys.refresh();
          metadata.invalidate();
        },
        resyncAll: async () => {
          clients.clear();
          trusts.clear();
          await revocations.load(now());
          await keys.refresh();
          metadata.invalidate();
        },
      },
    });
    await sync.start();
    propagate = () => sync.propagate();
    for (const e of [
      'client.created', 'client.updated', 'client.disabled', 'client.enabled', 'client.deleted',
      'client.secret_rotated', 'client.tokens_revoked', 'trust.created', 'trust.updated', 'trust.deleted',
      'token.revoked', 'key.created', 'key.activated', 'key.retired',
      'key.revoked',
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
    await limits.start();

    // Prometheus metrics on the admin listener (GET /metrics, outside the admin token: the admin
    // listener is private, and scrapers carry no bearer token).
    const metrics = new ServerMetrics({
      events, keys, clients, storage, syncLastSuccess: () => sync.lastSuccess, keyRotationIntervalSeconds: config.keyRotationInterval,
      trustKeyAges: () => trustKeys.keyAges(),
    }, { now });
    metrics.instrument(publicApp);
    if (mtlsApp) metrics.instrument(mtlsApp);
    registerMetricsRoute(adminApp, metrics);
    metrics.start();

    // Connection: close / GOAWAY once draining, and a hard stop at the shutdown timeout.
    const drains = [new ListenerDrain(publicApp), new ListenerDrain(adminApp), ...(mtlsApp ? [new ListenerDrain(mtlsApp)] : [])];
    let listening = false;
    let closing = false;
    let closed: Promise<void> | undefined;
    const server: M2MAuthServer = {
      config, publicApp, mtlsApp, adminApp, adminRoutes, storage, keys, clients, trusts, events, logger, sync,
      async listen() {
        const pub = parseAddress(config.listen);
        const adm = parseAddress(config.adminListen);
        const publicUrl = await publicApp.listen({ host: pub.host, port: pub.port, backlog: LISTEN_BACKLOG });
        // At once, before anything else is awaited: no request is read before the issuer is final.
        const issuerUrl = new URL(config.issuer);
        if (issuerUrl.port === '0') {
          issuerUrl.port = String((publicApp.server.address() as AddressInfo).port);
          config.issuer = issuerUrl.href.replace(/\/+$/, '');
          tokenEndpointUrl = endpointUrl(config.issuer, ENDPOINT_PATHS.token);
          metadata.invalidate();
        }
        let mtlsUrl: string | undefined;
        if (mtlsApp && config.mtlsListen !== undefined) {
          const mtls = parseAddress(config.mtlsListen);
          mtlsUrl = await mtlsApp.listen({ host: mtls.host, port: mtls.port, backlog: LISTEN_BACKLOG });
          if (mtlsBase === undefined) {
            const base = new URL(config.issuer);
            base.protocol = 'https:';
            base.port = String((mtlsApp.server.address() as AddressInfo).port);
            mtlsBase = base.href.replace(/\/+$/, '');
          }
          metadata.invalidate();
        }
        const adminUrl = await adminApp.listen({ host: adm.host, port: adm.port, backlog: LISTEN_BACKLOG });
        listening = true;
        // Written at info even when the level is warn or error (not when silent): whoever started
        // the server learns the ports it got (port 0) from this line.
        (logger.isLevelEnabled('info') || logger.level === 'silent' ? logger : logger.child({}, { level: 'info' })).info({
          publicUrl, adminUrl, ...(mtlsUrl !== undefined && { mtlsUrl, mtlsBase }), issuer: config.issuer, ...(tls && { certificate: tls.info }),
          maxConnections: connections.maxConnections, openFileLimit: fileLimit ?? null,
        }, 'm2m-auth listening');
        if (fileLimit !== undefined && 2 * connections.maxConnections + RESERVED_FILES > fileLimit) {
          logger.warn({ maxConnections: connections.maxConnections, openFileLimit: fileLimit },
            'M2M_AUTH_MAX_CONNECTIONS on both listeners exceeds the open-file limit: raise the limit (ulimit -n) or lower the cap');
        }
        if (tls && !config.issuer.startsWith('https:')) logger.warn({ issuer: config.issuer }, 'TLS is on but the issuer is not an https URL');
        return { publicUrl, adminUrl, ...(mtlsUrl !== undefined && { mtlsUrl }) };
      },
      close() {
        closed ??= (async () => {
          // Readiness is false from here on, and clients are told to go elsewhere.
          closing = true;
          for (const d of drains) d.begin();
          logger.info({ delaySeconds: config.shutdownDelay, timeoutSeconds: config.shutdownTimeout }, 'shutting down: /readyz answers 503 and connections are asked to close');
          if (listening && config.shutdownDelay > 0) {
            logger.info({ seconds: config.shutdownDelay }, 'draining: serving with readiness false before closing the listeners');
            await new Promise((resolve) => setTimeout(resolve, config.shutdownDelay * 1000));
          }
          clearInterval(sweep);
          const force = setTimeout(() => {
            const open = drains.reduce((n, d) => n + d.destroyAll(), 0);
            logger.warn({ connections: open, seconds: config.shutdownTimeout }, 'shutdown timeout: closed the connections still open');
          }, config.shutdownTimeout * 1000);
          for (const d of drains) d.closeSessions();
          // In-flight requests finish with storage, keys and the change log still live.
          await Promise.allSettled([publicApp.close(), adminApp.close(), ...(mtlsApp ? [mtlsApp.close()] : [])]);
          clearTimeout(force);
          logger.info('listeners closed and requests in flight finished; closing storage');
          await metrics.stop();
          await sync.stop();
          await keys.stop();
          await limits.close();
          await storage.close();
          if (ownTracing) await tracing.shutdown().catch((err: unknown) => logger.warn({ err }, 'trace export at shutdown failed'));
          logger.info('shutdown complete');
          logger.flush?.();
        })();
        return closed;
      },
      reloadTls() {
        if (!tlsFileNames) {
          logger.warn('TLS is off (M2M_AUTH_TLS_CERT is not set): nothing to reload');
          return false;
        }
        try {
          const reloaded = reloadTls(publicApp.server as unknown as ReloadableTlsServer, tlsFileNames);
          if (mtlsApp) swapTls(mtlsApp.server as unknown as ReloadableTlsServer, reloaded, { clientCa: clientCas?.pem });
          logger.info({ certificate: reloaded.info }, 'TLS certificate reloaded; new connections use it');
          return true;
        } catch (err) {
          logger.error({ reason: (err as Error).message }, 'TLS reload failed; still serving the previous certificate');
          return false;
        }
      },
    };
    return server;
  } catch (err) {
    await storage.close().catch(() => undefined);
    if (ownTracing) await tracing.shutdown().catch(() => undefined);
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
