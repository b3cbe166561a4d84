// The configuration schema: one table that validates, supplies defaults, maps environment
// variables (prefix M2M_AUTH_) and CLI flags, and generates the configuration reference (docs/configuration.md).

import { ConfigError } from '../ground/errors.js';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../ground/names.js';
import { parseTrustProxy } from './trust-proxy.js';

export interface Config {
  issuer: string;
  listen: string;
  adminListen: string;
  tlsCert: string | undefined;
  tlsKey: string | undefined;
  mtlsListen: string | undefined;
  mtlsUrl: string | undefined;
  mtlsCa: string | undefined;
  databaseUrl: string;
  dataDir: string;
  signingAlg: SigningAlgorithm;
  tokenTtl: number;
  tokenTtlMin: number;
  tokenTtlMax: number;
  adminToken: string | undefined;
  kek: string | undefined;
  keyRotationInterval: number;
  keyPrepublish: number;
  secretGracePeriod: number;
  bodyLimit: number;
  requestTimeout: number;
  keepAliveTimeout: number;
  maxConnections: number | undefined;
  tokenRateLimit: number;
  introspectionRateLimit: number;
  rateLimitBurst: number;
  authFailuresPerAddress: number;
  authFailuresPerClient: number;
  authFailureWindow: number;
  trustProxy: string;
  autoMigrate: boolean;
  dpopNonce: boolean;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  logFormat: 'json' | 'pretty' | undefined;
  auditSampleRate: number;
  redisUrl: string | undefined;
  redisKeyPrefix: string;
  syncInterval: number;
  stalenessBound: number;
  workers: string;
  shutdownDelay: number;
  shutdownTimeout: number;
  pprof: boolean;
  otelEnabled: boolean;
  unsafeFederationHttpLoopback: boolean;
}

type Kind = 'string' | 'url' | 'address' | 'int' | 'number' | 'bool' | 'enum' | 'secret';

export interface ConfigKey<K extends keyof Config = keyof Config> {
  key: K;
  env: string;
  flag: string;
  kind: Kind;
  values?: readonly string[];
  min?: number;
  max?: number;
  default: Config[K];
  /** How the default reads in the reference table when it is computed. */
  defaultText?: string;
  description: string;
}

function k<K extends keyof Config>(spec: ConfigKey<K>): ConfigKey<K> {
  return spec;
}

export const CONFIG_SCHEMA: readonly ConfigKey[] = [
  k({
    key: 'issuer', env: 'M2M_AUTH_ISSUER', flag: '--issuer', kind: 'url', default: 'http://localhost:8080',
    description: 'Issuer identifier (RFC 8414): the public base URL of the server; `iss` of every token and base of every endpoint URL. Use https in production. Port 0 (`http://127.0.0.1:0`, with `M2M_AUTH_LISTEN` on port 0) stands for the port the public listener gets, reported on the `m2m-auth listening` log line.',
  }),
  k({
    key: 'listen', env: 'M2M_AUTH_LISTEN', flag: '--listen', kind: 'address', default: '127.0.0.1:8080',
    description: 'host:port of the public OAuth listener (token, introspection, revocation, discovery, JWKS).',
  }),
  k({
    key: 'adminListen', env: 'M2M_AUTH_ADMIN_LISTEN', flag: '--admin-listen', kind: 'address', default: '127.0.0.1:8081',
    description: 'host:port of the admin API listener. Keep it on a private interface.',
  }),
  k({
    key: 'tlsCert', env: 'M2M_AUTH_TLS_CERT', flag: '--tls-cert', kind: 'string', default: undefined,
    description: 'PEM certificate file (then any intermediates) for TLS on the public listener, which then speaks HTTP/2 and HTTP/1.1. Give it with `M2M_AUTH_TLS_KEY`; both are read again on SIGHUP.',
  }),
  k({
    key: 'tlsKey', env: 'M2M_AUTH_TLS_KEY', flag: '--tls-key', kind: 'string', default: undefined,
    description: 'PEM private key file of `M2M_AUTH_TLS_CERT`.',
  }),
  k({
    key: 'mtlsListen', env: 'M2M_AUTH_MTLS_LISTEN', flag: '--mtls-listen', kind: 'address', default: undefined,
    description: 'host:port of a mutual-TLS listener (RFC 8705): the public endpoints again, with the certificate of `M2M_AUTH_TLS_CERT` (required), asking every client for its certificate (never requiring one) for `tls_client_auth`, `self_signed_tls_client_auth` and certificate-bound tokens. Discovery names it in `mtls_endpoint_aliases`. Unset: no such listener.',
  }),
  k({
    key: 'mtlsUrl', env: 'M2M_AUTH_MTLS_URL', flag: '--mtls-url', kind: 'url', default: undefined,
    defaultText: 'the issuer with https and the mTLS port',
    description: 'The public base URL of the mutual-TLS listener, for discovery\'s `mtls_endpoint_aliases`: set it when clients reach that listener under another name or port than the issuer\'s host and `M2M_AUTH_MTLS_LISTEN`\'s port.',
  }),
  k({
    key: 'mtlsCa', env: 'M2M_AUTH_MTLS_CA', flag: '--mtls-ca', kind: 'string', default: undefined,
    description: 'PEM file of the CA certificates (roots or intermediates) whose client certificates `tls_client_auth` accepts (RFC 8705 §2.1): a certificate must be issued by one of them directly and be valid now. The mTLS listener names them in its certificate request. Read at start; unset, `tls_client_auth` authenticates nobody (`self_signed_tls_client_auth` needs no CA).',
  }),
  k({
    key: 'dataDir', env: 'M2M_AUTH_DATA_DIR', flag: '--data-dir', kind: 'string', default: './data',
    description: 'Folder for the embedded database, the generated admin token and the generated key-encryption key.',
  }),
  k({
    key: 'databaseUrl', env: 'M2M_AUTH_DATABASE_URL', flag: '--database-url', kind: 'string', default: '',
    defaultText: 'sqlite:<data-dir>/m2m-auth.db',
    description: 'Storage: `sqlite:<path>` (embedded, WAL), `sqlite::memory:`, or `postgres://user:password@host:port/db` (many instances).',
  }),
  k({
    key: 'signingAlg', env: 'M2M_AUTH_SIGNING_ALG', flag: '--signing-alg', kind: 'enum', values: SIGNING_ALGORITHMS,
    default: 'ES256',
    description: 'Algorithm of new signing keys. Existing keys keep theirs until rotated.',
  }),
  k({
    key: 'tokenTtl', env: 'M2M_AUTH_TOKEN_TTL', flag: '--token-ttl', kind: 'int', min: 1, default: 3600,
    description: 'Default access token lifetime in seconds (a client\'s `access_token_ttl` overrides it within the bounds).',
  }),
  k({
    key: 'tokenTtlMin', env: 'M2M_AUTH_TOKEN_TTL_MIN', flag: '--token-ttl-min', kind: 'int', min: 1, default: 60,
    description: 'Smallest `access_token_ttl` a client may have, in seconds.',
  }),
  k({
    key: 'tokenTtlMax', env: 'M2M_AUTH_TOKEN_TTL_MAX', flag: '--token-ttl-max', kind: 'int', min: 1, default: 86400,
    description: 'Largest `access_token_ttl` a client may have, in seconds. Retired keys stay published this long.',
  }),
  k({
    key: 'adminToken', env: 'M2M_AUTH_ADMIN_TOKEN', flag: '--admin-token', kind: 'secret', default: undefined,
    defaultText: 'generated into <data-dir>/admin-token',
    description: 'Bearer token of the admin API (at least 32 characters). When unset, one is generated at first start into the data folder (mode 0600): `m2m_at_` and 43 base64url characters, a prefix secret scanners and the log lines\' masking recognise (a token file written before the prefix keeps working). A configured token is masked in log lines by its value.',
  }),
  k({
    key: 'kek', env: 'M2M_AUTH_KEK', flag: '--kek', kind: 'secret', default: undefined,
    defaultText: 'generated into <data-dir>/kek',
    description: 'Key-encryption key for signing keys at rest: 32 bytes as base64 or hex (AES-256-GCM). When unset, one is generated into the data folder (mode 0600).',
  }),
  k({
    key: 'keyRotationInterval', env: 'M2M_AUTH_KEY_ROTATION_INTERVAL', flag: '--key-rotation-interval', kind: 'int', min: 0,
    default: 30 * 24 * 3600,
    description: 'Seconds between automatic signing key rotations; 0 turns automatic rotation off.',
  }),
  k({
    key: 'keyPrepublish', env: 'M2M_AUTH_KEY_PREPUBLISH', flag: '--key-prepublish', kind: 'int', min: 0, default: 3600,
    description: 'Seconds a new key is published in the JWKS before it signs anything, so verifiers with a cached JWKS know it first.',
  }),
  k({
    key: 'secretGracePeriod', env: 'M2M_AUTH_SECRET_GRACE_PERIOD', flag: '--secret-grace-period', kind: 'int', min: 0,
    default: 86400,
    description: 'Default seconds a rotated client secret keeps working after a new one is issued.',
  }),
  k({
    key: 'bodyLimit', env: 'M2M_AUTH_BODY_LIMIT', flag: '--body-limit', kind: 'int', min: 1024, max: 1048576, default: 65536,
    description: 'Largest request body in bytes; larger bodies get 413. Below about 17,000, introspection and revocation of the longest tokens (16,384 characters) get 413 too.',
  }),
  k({
    key: 'requestTimeout', env: 'M2M_AUTH_REQUEST_TIMEOUT', flag: '--request-timeout', kind: 'int', min: 1, max: 3600, default: 10,
    description: 'Seconds a request\'s headers and body may take to arrive, on both listeners (and a TLS handshake, and an HTTP/2 connection its first request); a request still arriving then gets `408` with `Connection: close` (HTTP/2: 408, then its connection goes away), or, before its headers are complete, its connection is closed. Counted from the request\'s first byte, or from the connection\'s opening for its first request.',
  }),
  k({
    key: 'keepAliveTimeout', env: 'M2M_AUTH_KEEP_ALIVE_TIMEOUT', flag: '--keep-alive-timeout', kind: 'int', min: 1, max: 3600, default: 72,
    description: 'Seconds an idle keep-alive connection (an HTTP/2 connection without an open request) stays open. Keep it above the idle timeout of any load balancer or proxy in front (60 s for AWS ALB and nginx\'s upstream keep-alive; GCP\'s load balancers need 620), so that the balancer, not the server, closes idle connections and never sends a request on one the server is closing.',
  }),
  k({
    key: 'maxConnections', env: 'M2M_AUTH_MAX_CONNECTIONS', flag: '--max-connections', kind: 'int', min: 1, max: 1_000_000, default: undefined,
    defaultText: '4096, lowered to fit the open-file limit',
    description: 'Open connections each listener holds (per worker); connections beyond it are closed as soon as they are accepted. The default is lowered where the process\'s open-file limit (`ulimit -n`) could not hold both listeners at 4096 plus 64 files for the database and logs. The value in force is logged at start.',
  }),
  k({
    key: 'tokenRateLimit', env: 'M2M_AUTH_TOKEN_RATE_LIMIT', flag: '--token-rate-limit', kind: 'int', min: 0, max: 1_000_000, default: 100,
    description: 'Token requests per second each client may make (a client\'s `rate_limit` overrides it); beyond it the answer is `429 temporarily_unavailable` with `Retry-After`. 0 turns the limit off.',
  }),
  k({
    key: 'introspectionRateLimit', env: 'M2M_AUTH_INTROSPECTION_RATE_LIMIT', flag: '--introspection-rate-limit', kind: 'int', min: 0, max: 1_000_000, default: 1000,
    description: 'Introspection requests per second each calling client may make; beyond it, `429` with `Retry-After`. 0 turns the limit off.',
  }),
  k({
    key: 'rateLimitBurst', env: 'M2M_AUTH_RATE_LIMIT_BURST', flag: '--rate-limit-burst', kind: 'int', min: 1, max: 3600, default: 2,
    description: 'Seconds\' worth of its rate a quiet client may send at once: with 100 a second and 2, a burst of 200, then 100 a second.',
  }),
  k({
    key: 'authFailuresPerAddress', env: 'M2M_AUTH_AUTH_FAILURES_PER_ADDRESS', flag: '--auth-failures-per-address', kind: 'int', min: 0, max: 1_000_000, default: 10,
    description: 'Failed client authentications a source address (an IPv6 /64) may have in a window; then every attempt from it gets `429` with `Retry-After`, before any secret is checked, until the window ends (RFC 6749 §2.3.1). 0 turns it off. Behind a load balancer, set `M2M_AUTH_TRUST_PROXY` or all clients share its address.',
  }),
  k({
    key: 'authFailuresPerClient', env: 'M2M_AUTH_AUTH_FAILURES_PER_CLIENT', flag: '--auth-failures-per-client', kind: 'int', min: 0, max: 1_000_000, default: 50,
    description: 'Failed authentications a client_id may have in a window, from all addresses together; then `429` for that client_id until the window ends. Higher than per address because client_ids are not secret: anyone may spend this allowance. 0 turns it off.',
  }),
  k({
    key: 'authFailureWindow', env: 'M2M_AUTH_AUTH_FAILURE_WINDOW', flag: '--auth-failure-window', kind: 'int', min: 1, max: 86400, default: 60,
    description: 'Seconds of a failed-authentication window. It opens at the first failure; only its end clears it (a success does not).',
  }),
  k({
    key: 'trustProxy', env: 'M2M_AUTH_TRUST_PROXY', flag: '--trust-proxy', kind: 'string', default: '',
    description: 'Proxies in front of the public listener whose `X-Forwarded-For` gives the client address (limits, logs): a comma-separated list of addresses and CIDRs, or a number of hops. Unset: the connection\'s address is used and `X-Forwarded-For` is ignored.',
  }),
  k({
    key: 'autoMigrate', env: 'M2M_AUTH_AUTO_MIGRATE', flag: '--auto-migrate', kind: 'bool', default: true,
    description: 'Apply schema migrations at start (`m2m-auth migrate` applies them explicitly).',
  }),
  k({
    key: 'dpopNonce', env: 'M2M_AUTH_DPOP_NONCE', flag: '--dpop-nonce', kind: 'bool', default: false,
    description: 'Require a server nonce in DPoP proofs at the token endpoint (RFC 9449 §8): a proof without a current one gets `400 use_dpop_nonce` and a `DPoP-Nonce` header to retry with. Nonces need no storage: each is good for two to four minutes on every instance that shares the key-encryption key. Off by default: the proof\'s `iat` window and single-use `jti` already bound a replay.',
  }),
  k({
    key: 'redisUrl', env: 'M2M_AUTH_REDIS_URL', flag: '--redis-url', kind: 'secret', default: undefined,
    description: 'Optional Redis (`redis://...`) for pub/sub wake-ups between instances and for rate limits shared by every instance; without it, instances poll the change log and each counts its own limits.',
  }),
  k({
    key: 'redisKeyPrefix', env: 'M2M_AUTH_REDIS_KEY_PREFIX', flag: '--redis-key-prefix', kind: 'string', default: 'm2m-auth:',
    description: 'Prefix of the rate limit keys in Redis, so several deployments can share one Redis.',
  }),
  k({
    key: 'syncInterval', env: 'M2M_AUTH_SYNC_INTERVAL', flag: '--sync-interval', kind: 'int', min: 50, max: 1000, default: 250,
    description: 'Milliseconds between reads of the change log: a revocation, kill switch, client change or key change made on another instance takes effect here within this long (and at once with a notification channel).',
  }),
  k({
    key: 'stalenessBound', env: 'M2M_AUTH_STALENESS_BOUND', flag: '--staleness-bound', kind: 'int', min: 1, max: 86400, default: 60,
    description: 'Seconds the token endpoint and introspection keep answering known clients from memory while the database does not answer, counted from the last successful read of the change log; beyond it they answer `503 temporarily_unavailable` (a revocation or change made elsewhere may go unseen for up to this long).',
  }),
  k({
    key: 'workers', env: 'M2M_AUTH_WORKERS', flag: '--workers', kind: 'string', default: '1',
    description: 'Worker processes for `serve` (node:cluster), sharing the listeners and the database: a number, or `auto` for one per core.',
  }),
  k({
    key: 'shutdownDelay', env: 'M2M_AUTH_SHUTDOWN_DELAY', flag: '--shutdown-delay', kind: 'int', min: 0, max: 300, default: 0,
    description: 'Seconds to keep serving after SIGTERM with `/readyz` answering 503, before the listener closes, so a load balancer stops sending new connections first.',
  }),
  k({
    key: 'shutdownTimeout', env: 'M2M_AUTH_SHUTDOWN_TIMEOUT', flag: '--shutdown-timeout', kind: 'int', min: 1, max: 3600, default: 10,
    description: 'Seconds in-flight requests get to finish once the listener has closed on SIGTERM; connections still open then are closed.',
  }),
  k({
    key: 'pprof', env: 'M2M_AUTH_PPROF', flag: '--pprof', kind: 'bool', default: false,
    description: 'Serve CPU and heap profiles (pprof) at `/debug/pprof/profile?seconds=N`, `/debug/pprof/heap` and `/debug/pprof/allocs?seconds=N`, and runtime measurements at `/debug/runtime?seconds=N`, on the admin listener, behind the admin token (`m2m-auth profile` reads them). Off by default: profiles expose function names, file paths and allocation sites.',
  }),
  k({
    key: 'unsafeFederationHttpLoopback', env: 'M2M_AUTH_UNSAFE_FEDERATION_HTTP_LOOPBACK', flag: '--unsafe-federation-http-loopback', kind: 'bool', default: false,
    description: 'Let a trusted issuer whose keys are fetched from a loopback address (127.0.0.0/8, ::1, localhost) be fetched over plain http, for tests. Any other issuer is fetched over https only, whatever this says.',
  }),
  k({
    key: 'otelEnabled', env: 'M2M_AUTH_OTEL_ENABLED', flag: '--otel-enabled', kind: 'bool', default: false,
    description: 'OpenTelemetry tracing of the OAuth endpoints and their storage calls, exported with OTLP over HTTP to `OTEL_EXPORTER_OTLP_ENDPOINT` as `OTEL_SERVICE_NAME` (default `m2m-auth`); continues the caller\'s W3C `traceparent`.',
  }),
  k({
    key: 'logLevel', env: 'M2M_AUTH_LOG_LEVEL', flag: '--log-level', kind: 'enum',
    values: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info',
    description: 'Log level of the logs on stdout.',
  }),
  k({
    key: 'logFormat', env: 'M2M_AUTH_LOG_FORMAT', flag: '--log-format', kind: 'enum', values: ['json', 'pretty'],
    default: undefined, defaultText: 'pretty on a terminal, else json',
    description: 'Format of the log lines on stdout: `json`, one JSON object a line for log collectors, or `pretty`, readable lines for a person (pino-pretty; colours unless `NO_COLOR` is set). Unset, it is `pretty` when stdout is a terminal and `json` otherwise (a pipe, a file, a container\'s log).',
  }),
  k({
    key: 'auditSampleRate', env: 'M2M_AUTH_AUDIT_SAMPLE_RATE', flag: '--audit-sample-rate', kind: 'number', min: 0, max: 1,
    default: 0.01,
    description: 'Fraction (0 to 1) of the high-volume `token.issued` and active `token.introspected` audit lines written (each request still has its request line). Denials, revocations, client, key and admin events are always written.',
  }),
];

function parseValue(spec: ConfigKey, raw: string, source: string): unknown {
  const where = `${source} (${spec.env})`;
  switch (spec.kind) {
    case 'string':
    case 'secret':
      return raw;
    case 'url': {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        throw new ConfigError('CONFIG_INVALID', `${where} must be an absolute URL, got "${raw}"`);
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') {
        throw new ConfigError('CONFIG_INVALID', `${where} must be an http or https URL`);
      }
      // RFC 8414 §2: no query or fragment in the issuer identifier.
      if (url.search || url.hash) throw new ConfigError('CONFIG_INVALID', `${where} must not have a query or fragment`);
      return raw.replace(/\/+$/, '');
    }
    case 'address': {
      parseAddress(raw, where);
      return raw;
    }
    case 'int': {
      if (!/^\d+$/.test(raw.trim())) throw new ConfigError('CONFIG_INVALID', `${where} must be a whole number, got "${raw}"`);
      const n = Number(raw.trim());
      if (spec.min !== undefined && n < spec.min) throw new ConfigError('CONFIG_INVALID', `${where} must be at least ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) throw new ConfigError('CONFIG_INVALID', `${where} must be at most ${spec.max}`);
      return n;
    }
    case 'number': {
      const n = /^\s*(\d+(\.\d*)?|\.\d+)\s*$/.test(raw) ? Number(raw) : NaN;
      if (Number.isNaN(n)) throw new ConfigError('CONFIG_INVALID', `${where} must be a number, got "${raw}"`);
      if (spec.min !== undefined && n < spec.min) throw new ConfigError('CONFIG_INVALID', `${where} must be at least ${spec.min}`);
      if (spec.max !== undefined && n > spec.max) throw new ConfigError('CONFIG_INVALID', `${where} must be at most ${spec.max}`);
      return n;
    }
    case 'bool': {
      const v = raw.trim().toLowerCase();
      if (['1', 'true', 'yes', 'on'].includes(v)) return true;
      if (['0', 'false', 'no', 'off'].includes(v)) return false;
      throw new ConfigError('CONFIG_INVALID', `${where} must be true or false, got "${raw}"`);
    }
    case 'enum': {
      if (!spec.values?.includes(raw)) {
        throw new ConfigError('CONFIG_INVALID', `${where} must be one of ${spec.values?.join(', ')}, got "${raw}"`);
      }
      return raw;
    }
  }
}

export interface ListenAddress {
  host: string;
  port: number;
}

export function parseAddress(raw: string, where = 'address'): ListenAddress {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(raw.trim());
  if (!m) throw new ConfigError('CONFIG_INVALID', `${where} must be host:port, got "${raw}"`);
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError('CONFIG_INVALID', `${where} has an invalid port ${port}`);
  return { host: m[1] ?? (m[2] || '0.0.0.0'), port };
}

/**
 * Builds the configuration from defaults, then the environment, then explicit overrides (CLI
 * flags or code), and checks the keys against each other.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  overrides: Partial<Record<keyof Config, unknown>> = {},
): Config {
  const out: Record<string, unknown> = {};
  for (const spec of CONFIG_SCHEMA) {
    let value: unknown = spec.default;
    const fromEnv = env[spec.env];
    if (fromEnv !== undefined && fromEnv !== '') value = parseValue(spec, fromEnv, 'environment variable');
    const override = overrides[spec.key];
    if (override !== undefined) {
      value = typeof override === 'string' ? parseValue(spec, override, `option ${spec.flag}`) : override;
    }
    out[spec.key] = value;
  }
  const config = out as unknown as Config;
  if (!config.databaseUrl) config.databaseUrl = `sqlite:${config.dataDir.replace(/\/+$/, '')}/m2m-auth.db`;
  if (config.tokenTtlMin > config.tokenTtlMax) {
    throw new ConfigError('CONFIG_INVALID', 'M2M_AUTH_TOKEN_TTL_MIN must not exceed M2M_AUTH_TOKEN_TTL_MAX');
  }
  if (config.tokenTtl < config.tokenTtlMin || config.tokenTtl > config.tokenTtlMax) {
    throw new ConfigError('CONFIG_INVALID', 'M2M_AUTH_TOKEN_TTL must lie between M2M_AUTH_TOKEN_TTL_MIN and M2M_AUTH_TOKEN_TTL_MAX');
  }
  if (!/^(auto|[1-9]\d{0,2})$/.test(config.workers)) {
    throw new ConfigError('CONFIG_INVALID', `M2M_AUTH_WORKERS must be a whole number from 1 or auto, got "${config.workers}"`);
  }
  parseTrustProxy(config.trustProxy);
  if (config.adminToken !== undefined && config.adminToken.length < 32) {
    throw new ConfigError('CONFIG_INVALID', 'M2M_AUTH_ADMIN_TOKEN must be at least 32 characters');
  }
  if ((config.tlsCert === undefined) !== (config.tlsKey === undefined)) {
    throw new ConfigError('CONFIG_INVALID', 'M2M_AUTH_TLS_CERT and M2M_AUTH_TLS_KEY go together: set both, or neither');
  }
  if (config.mtlsListen !== undefined && config.tlsCert === undefined) {
    throw new ConfigError('CONFIG_INVALID', 'M2M_AUTH_MTLS_LISTEN needs M2M_AUTH_TLS_CERT and M2M_AUTH_TLS_KEY: the mutual-TLS listener serves that certificate');
  }
  if (config.mtlsUrl !== undefined && !config.mtlsUrl.startsWith('https:')) {
    throw new ConfigError('CONFIG_INVALID', 'M2M_AUTH_MTLS_URL must be an https URL');
  }
  return config;
}

/** The configuration reference as a Markdown table (docs/configuration.md; checked by test/config). */
export function configReference(): string {
  const rows = CONFIG_SCHEMA.map((s) => {
    const def = s.defaultText ?? (s.default === undefined ? '' : String(s.default));
    const kind = s.kind === 'enum' ? (s.values ?? []).join(' \\| ') : s.kind;
    return `| \`${s.env}\` | \`${s.flag}\` | ${kind} | ${def === '' ? '' : `\`${def}\``} | ${s.description} |`;
  });
  return ['| Environment variable | Flag | Type | Default | Description |', '|---|---|---|---|---|', ...rows].join('\n');
}
