// The keys of each trusted issuer, fetched and cached: OIDC discovery of the issuer to its
// jwks_uri (kubernetes, oidc), an explicit JWKS URL, a SPIFFE bundle endpoint (SPIFFE Trust Domain
// and Bundle §4: a JWKS with spiffe_refresh_hint and spiffe_sequence, keys of use "jwt-svid"), or
// keys given by value. A SPIFFE bundle's X.509-SVID authorities (use "x509-svid", x5c) are kept
// beside its keys, for client certificates that are X.509-SVIDs. Refreshed when the issuer's
// Cache-Control max-age or the bundle's refresh hint says (bounded both ways), and on an unknown
// kid (at most once per trust every UNKNOWN_KID_INTERVAL_MS). An issuer that is down keeps its
// last keys in use for KEYS_STALE_BOUND_MS after their last successful fetch; after that its
// clients' requests fail.

import { X509Certificate } from 'node:crypto';
import { createLocalJWKSet, type JSONWebKeySet, type JWK } from 'jose';
import type { TrustedIssuerRecord } from '../ground/trusts.js';
import type { EventBus } from '../observability/events.js';
import { DEFAULT_FETCH_MAX_BYTES, DEFAULT_FETCH_TIMEOUT_MS, FetchError, fetchJson, type FetchPolicy } from './fetch-json.js';

/** Refresh interval when the issuer says nothing (no max-age, no refresh hint). */
export const DEFAULT_REFRESH_MS = 5 * 60_000;
/** Bounds of the refresh interval, whatever the issuer says. */
export const MIN_REFRESH_MS = 60_000;
export const MAX_REFRESH_MS = 60 * 60_000;
/** A kid not among the cached keys makes a fetch at most this often per trust. */
export const UNKNOWN_KID_INTERVAL_MS = 30_000;
/** After a failed fetch, the next attempt waits at least this long. */
export const RETRY_AFTER_FAILURE_MS = 30_000;
/** Cached keys stay in use this long after their last successful fetch while the issuer is down. */
export const KEYS_STALE_BOUND_MS = 6 * 3600_000;
/** At most this many keys of one trust are kept (a larger JWKS is refused). */
export const MAX_KEYS = 100;

export type KeySet = ReturnType<typeof createLocalJWKSet>;

export class KeysUnavailableError extends Error {}

export interface TrustKeysOptions {
  events: EventBus;
  /** M2M_AUTH_UNSAFE_FEDERATION_HTTP_LOOPBACK. */
  allowHttpLoopback?: boolean;
  now?: () => number;
  timeoutMs?: number;
  maxBytes?: number;
}

interface Entry {
  /** What the keys were fetched for: a changed trust is fetched again. */
  source: string;
  keySet: KeySet | undefined;
  /** The bundle's X.509-SVID authorities (use "x509-svid", x5c[0]); none for other kinds. */
  authorities: readonly X509Certificate[];
  kids: ReadonlySet<string>;
  /** Last successful fetch (epoch ms); 0 = never. */
  fetchedAt: number;
  refreshAt: number;
  lastAttemptAt: number;
  sequence: number | undefined;
  lastError: string | undefined;
  inflight: Promise<void> | undefined;
}

const KEY_TYPES = new Set(['RSA', 'EC', 'OKP']);
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** The keys of a JWKS that may verify a platform token: asymmetric, public members only. */
export function usableKeys(body: unknown, from: 'jwks' | 'spiffe-bundle' | 'static'): JWK[] {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { keys?: unknown }).keys)) {
    throw new FetchError('not a JWKS (no "keys" array)');
  }
  const keys: JWK[] = [];
  for (const k of (body as { keys: unknown[] }).keys) {
    if (typeof k !== 'object' || k === null) continue;
    const jwk = { ...(k as Record<string, unknown>) };
    if (typeof jwk.kty !== 'string' || !KEY_TYPES.has(jwk.kty)) continue;
    // SPIFFE bundles carry X.509 authorities too; only jwt-svid keys verify JWT-SVIDs.
    const use = jwk.use;
    if (from === 'spiffe-bundle' ? use !== 'jwt-svid' : use !== undefined && use !== 'sig' && !(from === 'static' && use === 'jwt-svid')) continue;
    for (const m of PRIVATE_MEMBERS) delete jwk[m];
    delete jwk.use;
    keys.push(jwk as JWK);
  }
  if (keys.length > MAX_KEYS) throw new FetchError(`${keys.length} keys, over the limit of ${MAX_KEYS}`);
  return keys;
}

/**
 * The X.509-SVID authorities of a SPIFFE bundle (SPIFFE Trust Domain and Bundle §4.2.1): the
 * certificate in x5c of each key of use "x509-svid" that parses and is a CA; others are skipped.
 */
export function x509Authorities(body: unknown): X509Certificate[] {
  if (typeof body !== 'object' || body === null || !Array.isArray((body as { keys?: unknown }).keys)) return [];
  const cas: X509Certificate[] = [];
  for (const k of (body as { keys: unknown[] }).keys) {
    if (typeof k !== 'object' || k === null) continue;
    const { use, x5c } = k as { use?: unknown; x5c?: unknown };
    if (use !== 'x509-svid' || !Array.isArray(x5c) || typeof x5c[0] !== 'string') continue;
    try {
      const cert = new X509Certificate(Buffer.from(x5c[0], 'base64'));
      if (cert.ca) cas.push(cert);
    } catch {
      // not a certificate: skipped like a key of an unknown type
    }
  }
  if (cas.length > MAX_KEYS) throw new FetchError(`${cas.length} X.509 authorities, over the limit of ${MAX_KEYS}`);
  return cas;
}

function sourceOf(trust: TrustedIssuerRecord): string {
  return JSON.stringify([trust.kind, trust.issuer, trust.jwksUri, trust.jwks, trust.caBundle, trust.allowedPrivateHosts]);
}

function clampRefresh(ms: number): number {
  return Math.min(MAX_REFRESH_MS, Math.max(MIN_REFRESH_MS, ms));
}

/** The key cache of every trust of one server (each worker process has its own). */
export class TrustKeys {
  readonly #entries = new Map<string, Entry>();
  readonly #events: EventBus;
  readonly #allowHttpLoopback: boolean;
  readonly #now: () => number;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;

  constructor(options: TrustKeysOptions) {
    this.#events = options.events;
    this.#allowHttpLoopback = options.allowHttpLoopback ?? false;
    this.#now = options.now ?? Date.now;
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_FETCH_TIMEOUT_MS;
    this.#maxBytes = options.maxBytes ?? DEFAULT_FETCH_MAX_BYTES;
  }

  /**
   * The trust's current keys: fetched when there are none yet, refreshed in the background when
   * due, waited for once the cached ones are older than KEYS_STALE_BOUND_MS. Throws
   * KeysUnavailableError when there are no usable keys.
   */
  async keySet(trust: TrustedIssuerRecord): Promise<KeySet> {
    const entry = this.#entry(trust);
    const now = this.#now();
    if (entry.keySet !== undefined && now < entry.refreshAt) return entry.keySet;
    // Due: one fetch at a time, and none sooner than RETRY_AFTER_FAILURE_MS after the last attempt.
    let refresh = entry.inflight;
    if (refresh === undefined && now - entry.lastAttemptAt >= RETRY_AFTER_FAILURE_MS) refresh = this.#refresh(trust, entry);
    // Cached keys within the bound answer at once; the fetch goes on behind.
    const stale = entry.keySet === undefined || now - entry.fetchedAt > KEYS_STALE_BOUND_MS;
    if (stale && refresh !== undefined) await refresh;
    return this.#usable(trust, entry);
  }

  /**
   * A token named a kid the cached keys lack (the issuer rotated): fetch again unless the trust
   * was fetched less than UNKNOWN_KID_INTERVAL_MS ago. True when new keys arrived.
   */
  async refreshForUnknownKid(trust: TrustedIssuerRecord, kid: string | undefined): Promise<boolean> {
    const entry = this.#entry(trust);
    if (kid !== undefined && entry.kids.has(kid)) return false;
    if (this.#now() - entry.lastAttemptAt < UNKNOWN_KID_INTERVAL_MS) {
      if (entry.inflight === undefined) return false;
      await entry.inflight;
      return kid !== undefined && entry.kids.has(kid);
    }
    const before = entry.fetchedAt;
    await this.#refresh(trust, entry);
    return entry.fetchedAt !== before;
  }

  /**
   * The trust's X.509-SVID authorities (kind spiffe), from the same bundle and under the same
   * refresh and staleness rules as its keys. Throws KeysUnavailableError as keySet does.
   */
  async x509Authorities(trust: TrustedIssuerRecord): Promise<readonly X509Certificate[]> {
    await this.keySet(trust);
    return this.#entry(trust).authorities;
  }

  /** Seconds since each trust's keys were last fetched successfully (the key age gauge). */
  keyAges(): Array<{ trust: string; ageSeconds: number }> {
    const now = this.#now();
    const ages: Array<{ trust: string; ageSeconds: number }> = [];
    for (const [trust, e] of this.#entries) if (e.fetchedAt > 0 && e.refreshAt !== Number.POSITIVE_INFINITY) ages.push({ trust, ageSeconds: (now - e.fetchedAt) / 1000 });
    return ages;
  }

  /** Forgets a trust's keys (it was deleted). */
  forget(name: string): void {
    this.#entries.delete(name);
  }

  /**
   * A trust was changed: its keys are fetched again at its next use, behind the requests, which
   * go on with the keys held meanwhile. A change of where its keys come from (kind, issuer,
   * jwks_uri, jwks, CA bundle, allowed hosts) starts a new entry at the next use instead (#entry),
   * which waits for its fetch.
   */
  invalidate(name: string): void {
    const entry = this.#entries.get(name);
    if (entry !== undefined && entry.refreshAt !== Number.POSITIVE_INFINITY) entry.refreshAt = 0;
  }

  /** Forgets every trust's keys. */
  clear(): void {
    this.#entries.clear();
  }

  #usable(trust: TrustedIssuerRecord, entry: Entry): KeySet {
    if (entry.keySet !== undefined && this.#now() - entry.fetchedAt <= KEYS_STALE_BOUND_MS) return entry.keySet;
    const reason = entry.keySet === undefined
      ? `no keys fetched yet (${entry.lastError ?? 'no answer'})`
      : `keys last fetched ${Math.round((this.#now() - entry.fetchedAt) / 60_000)} min ago, past the ${KEYS_STALE_BOUND_MS / 3600_000} h bound (${entry.lastError ?? 'no answer'})`;
    this.#events.emit('federation.keys_unavailable', { trust: trust.name, reason });
    throw new KeysUnavailableError(reason);
  }

  #entry(trust: TrustedIssuerRecord): Entry {
    const source = sourceOf(trust);
    let entry = this.#entries.get(trust.name);
    if (entry === undefined || entry.source !== source) {
      entry = {
        source, keySet: undefined, authorities: [], kids: new Set(), fetchedAt: 0, refreshAt: 0, lastAttemptAt: 0,
        sequence: undefined, lastError: undefined, inflight: undefined,
      };
      this.#entries.set(trust.name, entry);
      // Keys given by value (a JWKS file, a static SPIFFE bundle): no fetch, never stale.
      if (trust.jwks !== null) {
        try {
          this.#install(entry, usableKeys(trust.jwks, 'static'), trust.kind === 'spiffe' ? x509Authorities(trust.jwks) : [], Number.POSITIVE_INFINITY);
        } catch (err) {
          entry.lastError = `the trust's jwks: ${(err as Error).message}`;
        }
        // Never fetched, not even for an unknown kid.
        entry.lastAttemptAt = Number.POSITIVE_INFINITY;
      }
    }
    return entry;
  }

  #install(entry: Entry, keys: JWK[], authorities: readonly X509Certificate[], refreshAt: number): void {
    entry.keySet = createLocalJWKSet({ keys } as JSONWebKeySet);
    entry.authorities = authorities;
    entry.kids = new Set(keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string'));
    entry.fetchedAt = refreshAt === Number.POSITIVE_INFINITY ? Number.MAX_SAFE_INTEGER : this.#now();
    entry.refreshAt = refreshAt;
    entry.lastError = undefined;
  }

  /** One fetch at a time per trust; its failure is recorded and announced, not thrown. */
  #refresh(trust: TrustedIssuerRecord, entry: Entry): Promise<void> {
    if (entry.inflight !== undefined) return entry.inflight;
    entry.lastAttemptAt = this.#now();
    entry.inflight = (async () => {
      try {
        const { keys, authorities, refreshMs, sequence } = await this.#fetch(trust);
        // A bundle older than the one held (a lagging replica) does not replace it.
        if (sequence !== undefined && entry.sequence !== undefined && sequence < entry.sequence && entry.keySet !== undefined) {
          entry.refreshAt = this.#now() + MIN_REFRESH_MS;
          return;
        }
        this.#install(entry, keys, authorities, this.#now() + clampRefresh(refreshMs));
        // The trust was changed or forgotten while this fetch ran (another instance's change seen
        // through the change log, or this one's own): the requests that waited for it still get
        // the keys of the trust they read; the next ones start a new entry and fetch again.
        if (this.#entries.get(trust.name) !== entry) return;
        entry.sequence = sequence;
        this.#events.emit('federation.keys_fetched', { trust: trust.name, result: 'ok', keys: keys.length });
      } catch (err) {
        const reason = err instanceof FetchError ? err.message : `unexpected: ${(err as Error).message}`;
        entry.lastError = reason;
        this.#events.emit('federation.keys_fetched', { trust: trust.name, result: 'failed', reason });
      } finally {
        entry.inflight = undefined;
      }
    })();
    return entry.inflight;
  }

  async #fetch(trust: TrustedIssuerRecord): Promise<{ keys: JWK[]; authorities: X509Certificate[]; refreshMs: number; sequence: number | undefined }> {
    const policy: FetchPolicy = {
      allowedPrivateHosts: trust.allowedPrivateHosts.map((h) => h.toLowerCase()),
      ...(trust.caBundle !== null && { ca: trust.caBundle }),
      allowHttpLoopback: this.#allowHttpLoopback,
      timeoutMs: this.#timeoutMs,
      maxBytes: this.#maxBytes,
    };
    if (trust.kind === 'spiffe') {
      if (trust.jwksUri === null) throw new FetchError('the trust has neither a bundle endpoint nor a static bundle');
      const { body, maxAgeSeconds } = await fetchJson(trust.jwksUri, policy);
      const keys = usableKeys(body, 'spiffe-bundle');
      const b = body as { spiffe_refresh_hint?: unknown; spiffe_sequence?: unknown };
      const hint = typeof b.spiffe_refresh_hint === 'number' && b.spiffe_refresh_hint > 0 ? b.spiffe_refresh_hint : maxAgeSeconds;
      const sequence = typeof b.spiffe_sequence === 'number' && Number.isSafeInteger(b.spiffe_sequence) ? b.spiffe_sequence : undefined;
      return { keys, authorities: x509Authorities(body), refreshMs: hint !== undefined ? hint * 1000 : DEFAULT_REFRESH_MS, sequence };
    }
    let jwksUri = trust.jwksUri;
    if (jwksUri === null) {
      if (trust.issuer === null) throw new FetchError('the trust has no issuer to discover');
      const discovery = await fetchJson(`${trust.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`, policy);
      const doc = discovery.body as { issuer?: unknown; jwks_uri?: unknown } | null;
      if (typeof doc !== 'object' || doc === null || typeof doc.jwks_uri !== 'string') throw new FetchError('discovery names no jwks_uri');
      // OpenID Connect Discovery §4.3: the issuer in the document is the one asked for.
      if (doc.issuer !== trust.issuer) throw new FetchError('discovery names another issuer');
      jwksUri = doc.jwks_uri;
    }
    const { body, maxAgeSeconds } = await fetchJson(jwksUri, policy);
    const keys = usableKeys(body, 'jwks');
    return { keys, authorities: [], refreshMs: maxAgeSeconds !== undefined ? maxAgeSeconds * 1000 : DEFAULT_REFRESH_MS, sequence: undefined };
  }
}
