// A client credentials token source (RFC 6749 §4.4): discovers the token endpoint (RFC 8414),
// caches the access token, refreshes it ahead of expiry, shares one request among concurrent
// callers and retries only what is worth retrying. With DPoP (RFC 9449) the tokens are bound to
// the provider's key, and each token request carries a proof.

import { checkIssuer, endpoint, fetchMetadata, type FetchLike } from '../shared/discovery.js';
import { DiscoveryError, SdkOptionsError } from '../shared/errors.js';
import {
  privateKeyJwtAuthentication,
  secretAuthentication,
  type AssertionAlgorithm,
  type Authenticate,
  type PrivateKeyInput,
} from './client-auth.js';
import { createDPoPProver, type DPoPOptions, type DPoPProver } from './dpop.js';
import { TokenRequestError } from './errors.js';
import { platformTokenAuthentication, type PlatformAssertionType, type PlatformAuthentication, type PlatformTokenSource } from './platform-token.js';
import { USE_DPOP_NONCE } from '../shared/dpop.js';
import { DEFAULT_RETRY, retryAfterMs, withRetry, type RetryOptions, type RetryPolicy } from './retry.js';

interface TokenProviderCommonOptions {
  /** The issuer identifier, exactly as the server's metadata states it (e.g. http://localhost:8080). */
  issuer: string;
  clientId: string;
  /** Scopes to ask for (RFC 6749 §3.3); default: what the server grants the client by default. */
  scope?: string | readonly string[];
  /** `audience` parameters: the resource servers the token is for. */
  audience?: string | readonly string[];
  /** RFC 8707 `resource` parameters. */
  resource?: string | readonly string[];
  /** The fetch used for discovery and token requests (default globalThis.fetch). */
  fetch?: FetchLike;
  /** Fraction of a token's lifetime after which it is refreshed (default 0.8, jittered down by up to 10 %). */
  refreshRatio?: number;
  /**
   * Seconds before `exp` at which a cached token is no longer handed out, for clock differences and
   * transit time (default 30; at most a tenth of the token's lifetime).
   */
  clockSkew?: number;
  /** Timeout of one HTTP request (default 10000 ms). */
  timeoutMs?: number;
  /** Retries on network errors, 5xx answers and 429 (after its Retry-After); never on another 4xx. */
  retry?: RetryOptions;
  /** Clock in epoch ms (default Date.now). */
  now?: () => number;
  /**
   * DPoP-bound tokens (RFC 9449): `true` for a new ES256 key held in memory, or your own key. Every
   * token request then carries a proof, and the token must come back with token_type DPoP.
   */
  dpop?: DPoPOptions;
  /**
   * RFC 8705 §5: send token requests to discovery's `mtls_endpoint_aliases.token_endpoint` when the
   * server publishes one (its listener that asks for client certificates). Use with a `fetch` whose
   * dispatcher holds the client certificate. Default false.
   */
  mtlsEndpointAliases?: boolean;
}

export interface ClientSecretOptions extends TokenProviderCommonOptions {
  clientSecret: string;
  /** Default client_secret_basic. */
  tokenEndpointAuthMethod?: 'client_secret_basic' | 'client_secret_post';
  privateKey?: never;
  alg?: never;
  kid?: never;
  platformToken?: never;
  platformTokenType?: never;
  tlsClientAuth?: never;
}

export interface PrivateKeyJwtOptions extends TokenProviderCommonOptions {
  /** The private key whose public half is in the client's registered jwks. */
  privateKey: PrivateKeyInput;
  /** Its JWS algorithm. */
  alg: AssertionAlgorithm;
  /** `kid` of the assertion header (default the JWK's kid, if any). */
  kid?: string;
  clientSecret?: never;
  tokenEndpointAuthMethod?: never;
  platformToken?: never;
  platformTokenType?: never;
  tlsClientAuth?: never;
}

/** federated_jwt: the client authenticates with a token its platform issued to the workload. */
export interface PlatformTokenOptions extends TokenProviderCommonOptions {
  /** `{ file: path }` (read again when it changes) or a function called for each token request. */
  platformToken: PlatformTokenSource;
  /** `jwt-spiffe` for a SPIFFE JWT-SVID; default `jwt-bearer`. */
  platformTokenType?: PlatformAssertionType;
  clientSecret?: never;
  tokenEndpointAuthMethod?: never;
  privateKey?: never;
  alg?: never;
  kid?: never;
  tlsClientAuth?: never;
}

/**
 * tls_client_auth and self_signed_tls_client_auth (RFC 8705 §2): the client certificate of the TLS
 * connection authenticates; give a `fetch` whose dispatcher holds it.
 */
export interface TlsClientAuthOptions extends TokenProviderCommonOptions {
  tlsClientAuth: true;
  fetch: FetchLike;
  clientSecret?: never;
  tokenEndpointAuthMethod?: never;
  privateKey?: never;
  alg?: never;
  kid?: never;
  platformToken?: never;
  platformTokenType?: never;
}

export type TokenProviderOptions = ClientSecretOptions | PrivateKeyJwtOptions | PlatformTokenOptions | TlsClientAuthOptions;

export interface TokenProvider {
  /** A valid access token: the cached one, or a new one when it is due for refresh. */
  getToken(): Promise<string>;
  /**
   * Drops the cached token, so the next getToken() asks for a new one. With `token`, only when that
   * is still the cached token (another caller may already have replaced it).
   */
  invalidate(token?: string): void;
  /** The DPoP key's proofs, when the provider was created with `dpop`; createAuthFetch uses it. */
  readonly dpop?: DPoPProver;
}

interface CachedToken {
  accessToken: string;
  /** From here on getToken() asks for a new token, and uses this one while that fails. */
  refreshAt: number;
  /** From here on this token is never handed out. */
  usableUntil: number;
}

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_CLOCK_SKEW_S = 30;
/** RFC 6749 §5.1 makes expires_in RECOMMENDED; without it, assume a short life. */
const ASSUMED_LIFETIME_S = 300;
const REFRESH_JITTER = 0.1;
/** After a failed early refresh, the still-valid token is used this long before trying again. */
const EARLY_REFRESH_COOLDOWN_MS = 5_000;

function list(value: string | readonly string[] | undefined, option: string): string[] {
  if (value === undefined) return [];
  const values = typeof value === 'string' ? [value] : [...value];
  for (const v of values) if (typeof v !== 'string' || v === '') throw new SdkOptionsError(`${option} must be non-empty strings`);
  return values;
}

function checkPolicy(retry: RetryOptions | undefined): RetryPolicy {
  const policy = { ...DEFAULT_RETRY, ...retry };
  if (!Number.isInteger(policy.attempts) || policy.attempts < 1) throw new SdkOptionsError('retry.attempts must be a whole number >= 1');
  for (const key of ['baseDelayMs', 'maxDelayMs'] as const) {
    if (!Number.isFinite(policy[key]) || policy[key] < 0) throw new SdkOptionsError(`retry.${key} must be a number >= 0`);
  }
  return policy;
}

function isTransient(err: unknown): boolean {
  return (err instanceof TokenRequestError || err instanceof DiscoveryError) && err.transient;
}

function askedWait(err: unknown): number | undefined {
  return err instanceof TokenRequestError ? err.retryAfterMs : undefined;
}

async function readJson(res: Response): Promise<unknown> {
  try {
    return await res.json();
  } catch {
    return undefined;
  }
}

function member(body: unknown, name: string): unknown {
  return typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>)[name] : undefined;
}

export function createTokenProvider(options: TokenProviderOptions): TokenProvider {
  if (typeof options !== 'object' || options === null) throw new SdkOptionsError('createTokenProvider needs an options object');
  const issuer = checkIssuer(options.issuer);
  const { clientId } = options;
  if (typeof clientId !== 'string' || clientId === '') throw new SdkOptionsError('clientId must be a non-empty string');
  const fetchImpl: FetchLike = options.fetch ?? globalThis.fetch;
  const now = options.now ?? Date.now;
  const refreshRatio = options.refreshRatio ?? 0.8;
  if (!(refreshRatio > 0 && refreshRatio <= 1)) throw new SdkOptionsError('refreshRatio must be in (0, 1]');
  const clockSkewMs = (options.clockSkew ?? DEFAULT_CLOCK_SKEW_S) * 1000;
  if (!(clockSkewMs >= 0)) throw new SdkOptionsError('clockSkew must be a number of seconds >= 0');
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!(timeoutMs > 0)) throw new SdkOptionsError('timeoutMs must be > 0');
  const policy = checkPolicy(options.retry);

  let authenticate: Authenticate;
  let platform: PlatformAuthentication | undefined;
  const given = [options.clientSecret, options.privateKey, options.platformToken, options.tlsClientAuth].filter((v) => v !== undefined).length;
  if (given > 1) throw new SdkOptionsError('give one of clientSecret, privateKey, platformToken and tlsClientAuth');
  if (options.tlsClientAuth !== undefined) {
    if (options.tlsClientAuth !== true) throw new SdkOptionsError('tlsClientAuth must be true');
    if (options.fetch === undefined) throw new SdkOptionsError('tlsClientAuth needs a fetch whose dispatcher holds the client certificate');
    // RFC 8705 §2: the certificate authenticates; client_id names the client it must match.
    const form: [string, string][] = [['client_id', clientId]];
    authenticate = () => Promise.resolve({ headers: {}, form });
  } else if (options.platformToken !== undefined) {
    platform = platformTokenAuthentication(clientId, options.platformToken, options.platformTokenType);
    authenticate = platform.authenticate;
  } else if (options.privateKey !== undefined) {
    authenticate = privateKeyJwtAuthentication(clientId, issuer, options.privateKey, options.alg, options.kid);
  } else {
    if (typeof options.clientSecret !== 'string' || options.clientSecret === '') {
      throw new SdkOptionsError('clientSecret (or privateKey with alg, platformToken or tlsClientAuth) is required');
    }
    const method = options.tokenEndpointAuthMethod ?? 'client_secret_basic';
    if (method !== 'client_secret_basic' && method !== 'client_secret_post') {
      throw new SdkOptionsError('tokenEndpointAuthMethod must be client_secret_basic or client_secret_post');
    }
    authenticate = secretAuthentication(clientId, options.clientSecret, method);
  }

  const dpop = options.dpop === undefined || (options.dpop as unknown) === false ? undefined : createDPoPProver(options.dpop, now);

  const params: [string, string][] = [['grant_type', 'client_credentials']];
  const scope = list(options.scope, 'scope');
  if (scope.length > 0) params.push(['scope', scope.join(' ')]);
  for (const r of list(options.resource, 'resource')) params.push(['resource', r]);
  for (const a of list(options.audience, 'audience')) params.push(['audience', a]);

  let tokenEndpoint: Promise<string> | undefined;
  let cached: CachedToken | undefined;
  let inFlight: Promise<CachedToken> | undefined;
  let earlyRefreshBlockedUntil = 0;

  function discover(): Promise<string> {
    tokenEndpoint ??= fetchMetadata(issuer, fetchImpl, timeoutMs)
      .then((metadata) => {
        const aliases = metadata.mtls_endpoint_aliases;
        if (options.mtlsEndpointAliases === true && typeof aliases === 'object' && aliases !== null && !Array.isArray(aliases)
          && (aliases as Record<string, unknown>).token_endpoint !== undefined) {
          return endpoint({ issuer: metadata.issuer, token_endpoint: (aliases as Record<string, unknown>).token_endpoint }, 'token_endpoint');
        }
        return endpoint(metadata, 'token_endpoint');
      })
      .catch((err: unknown) => {
        tokenEndpoint = undefined;
        throw err;
      });
    return tokenEndpoint;
  }

  /** One POST to the token endpoint; the answer's JSON and status. */
  async function post(url: string, sentAt: number): Promise<{ res: Response; json: unknown }> {
    const auth = await authenticate(sentAt);
    const body = new URLSearchParams([...params, ...auth.form]);
    const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...auth.headers };
    // RFC 9449 §5: a new proof for every request, with the server's latest nonce.
    if (dpop !== undefined) headers.dpop = await dpop.proof('POST', url);
    let res: Response;
    try {
      res = await fetchImpl(url, { method: 'POST', headers, body: body.toString(), signal: AbortSignal.timeout(timeoutMs) });
    } catch (err) {
      throw new TokenRequestError('network_error', { error_description: (err as Error).message, cause: err });
    }
    dpop?.rememberNonce(url, res.headers);
    return { res, json: await readJson(res) };
  }

  async function requestOnce(): Promise<CachedToken> {
    const url = await discover();
    const sentAt = now();
    let { res, json } = await post(url, sentAt);
    // RFC 9449 §8: the server wants its nonce in the proof; it sent one, so ask again at once.
    if (dpop !== undefined && res.status === 400 && member(json, 'error') === USE_DPOP_NONCE && res.headers.has('dpop-nonce')) {
      ({ res, json } = await post(url, sentAt));
    }
    // A refused platform token may have been replaced by the platform since it was read: the
    // source is read again (always, so the next request has the newest), and asked again at once
    // when it changed.
    if (platform !== undefined && member(json, 'error') === 'invalid_client' && (await platform.refused())) {
      ({ res, json } = await post(url, sentAt));
      if (dpop !== undefined && res.status === 400 && member(json, 'error') === USE_DPOP_NONCE && res.headers.has('dpop-nonce')) {
        ({ res, json } = await post(url, sentAt));
      }
      if (member(json, 'error') === 'invalid_client') await platform.refused();
    }
    if (res.status !== 200) {
      // RFC 6749 §5.2: the error body; anything else is described by its status.
      const error = member(json, 'error');
      const description = member(json, 'error_description');
      throw new TokenRequestError(typeof error === 'string' && error !== '' ? error : res.status >= 500 ? 'server_error' : 'invalid_response', {
        status: res.status,
        error_description: typeof description === 'string' ? description : undefined,
        retryAfterMs: retryAfterMs(res.headers.get('retry-after'), now()),
      });
    }
    const accessToken = member(json, 'access_token');
    const tokenType = member(json, 'token_type');
    const expiresIn = member(json, 'expires_in');
    if (typeof accessToken !== 'string' || accessToken === '') {
      throw new TokenRequestError('invalid_response', { status: res.status, error_description: 'no access_token in the token response' });
    }
    // RFC 6749 §7.1: the type is case-insensitive. Without DPoP only Bearer (RFC 6750) is something
    // we can send; with DPoP only a DPoP token: a Bearer one would silently drop the binding asked for.
    const expected = dpop === undefined ? 'bearer' : 'dpop';
    if (typeof tokenType !== 'string' || tokenType.toLowerCase() !== expected) {
      throw new TokenRequestError('invalid_response', {
        status: res.status,
        error_description: `unsupported token_type ${JSON.stringify(tokenType)}${dpop === undefined ? '' : ' (a DPoP-bound token was asked for)'}`,
      });
    }
    const lifetimeMs =
      (typeof expiresIn === 'number' && Number.isFinite(expiresIn) && expiresIn > 0 ? expiresIn : ASSUMED_LIFETIME_S) * 1000;
    // Lifetimes count from when the request was sent: the server started the clock no earlier.
    const ratio = refreshRatio * (1 - REFRESH_JITTER * Math.random());
    return {
      accessToken,
      refreshAt: sentAt + lifetimeMs * ratio,
      usableUntil: sentAt + lifetimeMs - Math.min(clockSkewMs, lifetimeMs / 10),
    };
  }

  function refresh(): Promise<CachedToken> {
    inFlight ??= withRetry(policy, isTransient, requestOnce, askedWait)
      .then((token) => {
        cached = token;
        earlyRefreshBlockedUntil = 0;
        return token;
      })
      .finally(() => {
        inFlight = undefined;
      });
    return inFlight;
  }

  return {
    async getToken() {
      const t = now();
      const current = cached;
      if (current !== undefined && t < current.refreshAt) return current.accessToken;
      if (current !== undefined && t < current.usableUntil) {
        if (t < earlyRefreshBlockedUntil) return current.accessToken;
        try {
          return (await refresh()).accessToken;
        } catch (err) {
          // Refreshing early is an optimisation: while the token is still good, a failure can wait.
          earlyRefreshBlockedUntil = now() + EARLY_REFRESH_COOLDOWN_MS;
          if (cached === current && now() < current.usableUntil) return current.accessToken;
          throw err;
        }
      }
      return (await refresh()).accessToken;
    },
    invalidate(token) {
      if (token === undefined || cached?.accessToken === token) cached = undefined;
    },
    ...(dpop !== undefined && { dpop }),
  };
}
