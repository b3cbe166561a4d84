// Signing key life cycle and the JWK Set (RFC 7517 §5) of RFC 9068 access tokens: publish a key
// before it signs, sign with exactly one key, keep retired keys published until their tokens expired.
//
// A key moves through three states:
//   pending  published in the JWKS from createdAt, does not sign before activatesAt;
//   active   the newest key whose activatesAt has passed: every token is signed with it;
//   retired  a newer key took over at retiredAt; stays published (and verifiable) until
//            expiresAt = retiredAt + maxTokenTtlMs + CLOCK_SKEW_MS, then refresh() deletes it.
// and one more when a key leaked:
//   revoked  revoke() took it out at revokedAt: never signs again, not published, and every
//            token it signed fails verify(); listed until its expiresAt, then deleted.
//
// The newest pending key wins: rotate() while a key is pending retires the pending one at once
// (it never signs) and the new key takes its place. So the admin's latest rotation is the one
// that happens, and at most one pending key exists per instance. A rotation that activates at
// once (rotate({ activateAt: now }), `keys rotate --now`) retires every other key at once too.
//
// Several instances on one database converge on the same active key: the choice depends only on
// the stored records and the clock (highest activatesAt, then createdAt, then kid), and refresh()
// picks up keys other instances created or retired. Keep keyPrepublish above the refresh period
// so that every instance publishes a key before any instance signs with it. Automatic rotation
// happens once per cluster: its insert succeeds only when no instance created a key within the
// rotation interval (KeyStore.insertKeyIfNoneSince); an instance that loses reloads the winner's key.

import type { KeyObject } from 'node:crypto';
import { createPrivateKey, createPublicKey } from 'node:crypto';
import { ConfigError } from '../ground/errors.js';
import type { AuditContext, EventBus } from '../observability/events.js';
import type { KeyStore } from '../storage/types.js';
import type { PublicJwk, SigningKeyRecord } from '../ground/records.js';
import type { SigningAlgorithm } from '../ground/names.js';
import { generateSigningKeyPair, importPublicJwk, isSigningAlgorithm, publicJwkOf } from './algorithms.js';
import {
  createJwtSigner,
  createVerificationKey,
  verifyJwt,
  type JwtHeader,
  type JwtPayload,
  type JwtSigner,
  type JwtVerificationKey,
} from './jwt.js';
import { decryptPrivateKey, encryptPrivateKey, KEK_BYTES } from './kek.js';

/** Tolerance for clocks of verifiers (and of other instances) running ahead. */
export const CLOCK_SKEW_MS = 60_000;
export const DEFAULT_REFRESH_INTERVAL_MS = 60_000;

/**
 * How often the KeyRing reloads keys and checks for automatic rotation: every minute, or a quarter
 * of a short rotation interval so that rotation is not late by more than that.
 */
export function keyMaintenanceInterval(rotationIntervalMs: number): number {
  if (rotationIntervalMs <= 0) return DEFAULT_REFRESH_INTERVAL_MS;
  return Math.min(DEFAULT_REFRESH_INTERVAL_MS, Math.max(250, Math.floor(rotationIntervalMs / 4)));
}
/** How recent another instance's first key must be for this one to load it instead of making its own. */
const FIRST_KEY_RACE_MS = 60_000;

export type KeyStatus = 'pending' | 'active' | 'retired' | 'revoked';

/** A key as the admin API shows it: never private material. */
export interface KeySummary {
  kid: string;
  alg: SigningAlgorithm;
  status: KeyStatus;
  createdAt: number;
  activatesAt: number;
  retiredAt: number | null;
  expiresAt: number | null;
  revokedAt: number | null;
}

/** revoke() of a kid the ring does not hold (never existed, or deleted once expired). */
export class KeyNotFoundError extends Error {
  constructor(readonly kid: string) {
    super(`Signing key ${JSON.stringify(kid)} not found`);
    this.name = 'KeyNotFoundError';
  }
}

/** revoke() of the key that signs now, without a replacement: no token could be issued. */
export class KeyRevocationRefusedError extends Error {
  constructor(readonly kid: string) {
    super(`Signing key ${JSON.stringify(kid)} is the key that signs tokens now; revoking it alone would stop every token request. `
      + 'Revoke it with a replacement that signs at once: {"rotate": true} (m2m-auth keys revoke KID --rotate).');
    this.name = 'KeyRevocationRefusedError';
  }
}

/** What revoke() did: the revoked key, and the key that replaced it when one was asked for. */
export interface KeyRevocation {
  revoked: KeySummary;
  replacement: KeySummary | undefined;
}

export interface KeyRingOptions {
  kek: Buffer;
  /** Algorithm of keys created from now on; existing keys keep theirs. */
  alg: SigningAlgorithm;
  /** How long a new key is published before it signs. */
  prepublishMs: number;
  /** Automatic rotation period; 0 turns automatic rotation off. */
  rotationIntervalMs: number;
  /** The longest access token lifetime: how long a retired key stays published. */
  maxTokenTtlMs: number;
  events: EventBus;
  now?: () => number;
  /** Period of the start() timer (refresh and automatic rotation); default 60 s. */
  refreshIntervalMs?: number;
}

interface LoadedKey extends JwtVerificationKey {
  readonly createdAt: number;
  readonly activatesAt: number;
  retiredAt: number | null;
  expiresAt: number | null;
  revokedAt: number | null;
  /** Public members plus kid, alg and use, rebuilt from the key itself (never copied from storage). */
  readonly publicJwk: PublicJwk;
  /** Present while the key may sign (not retired). */
  signer: JwtSigner | undefined;
}

export class KeyRing {
  readonly #store: KeyStore;
  readonly #kek: Buffer;
  readonly #alg: SigningAlgorithm;
  readonly #prepublishMs: number;
  readonly #rotationIntervalMs: number;
  readonly #retentionMs: number;
  readonly #events: EventBus;
  readonly #now: () => number;
  readonly #refreshIntervalMs: number;

  #keys = new Map<string, LoadedKey>();
  #current: LoadedKey | undefined;
  /** The earliest activatesAt of a pending key: the hot path compares the clock with this only. */
  #nextTransitionAt = Infinity;
  #jwksJson: string | undefined;
  #jwksValidUntil = Infinity;
  /** How many keys this ring saw revoked (revocationEpoch). */
  #revocations = 0;
  /** rotate(), refresh() and the maintenance run one at a time. */
  #queue: Promise<unknown> = Promise.resolve();
  /** Retirements being written in the background. */
  readonly #writes = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | undefined;
  #running = false;
  #maintenance: Promise<void> | undefined;

  private constructor(store: KeyStore, opts: KeyRingOptions) {
    this.#store = store;
    this.#kek = opts.kek;
    this.#alg = opts.alg;
    this.#prepublishMs = opts.prepublishMs;
    this.#rotationIntervalMs = opts.rotationIntervalMs;
    this.#retentionMs = opts.maxTokenTtlMs + CLOCK_SKEW_MS;
    this.#events = opts.events;
    this.#now = opts.now ?? Date.now;
    this.#refreshIntervalMs = opts.refreshIntervalMs ?? DEFAULT_REFRESH_INTERVAL_MS;
  }

  /**
   * Loads the keys and decrypts the private parts of those that may still sign. On an empty
   * store (or one where no key can sign) creates a key that signs at once: there is nothing
   * a verifier could have cached yet.
   */
  static async open(store: KeyStore, opts: KeyRingOptions): Promise<KeyRing> {
    if (opts.kek.length !== KEK_BYTES) throw new ConfigError('KEK_INVALID', `the key-encryption key must be ${KEK_BYTES} bytes`);
    if (!isSigningAlgorithm(opts.alg)) throw new ConfigError('SIGNING_ALG_INVALID', `unsupported signing algorithm ${String(opts.alg)}`);
    for (const name of ['prepublishMs', 'rotationIntervalMs', 'maxTokenTtlMs'] as const) {
      if (!Number.isFinite(opts[name]) || opts[name] < 0) throw new ConfigError('CONFIG_INVALID', `KeyRing ${name} must be a number >= 0`);
    }
    if (opts.refreshIntervalMs !== undefined && !(opts.refreshIntervalMs > 0)) {
      throw new ConfigError('CONFIG_INVALID', 'KeyRing refreshIntervalMs must be > 0');
    }
    const ring = new KeyRing(store, opts);
    await ring.#exclusive(() => ring.#reload());
    return ring;
  }

  /** True once a key that may sign is loaded. */
  isReady(): boolean {
    return this.#current !== undefined;
  }

  /** Signs `claims` (or their JSON) with the active key. Throws only when no key is loaded (isReady() false). */
  sign(claims: object | string): { token: string; kid: string } {
    const now = this.#now();
    if (now >= this.#nextTransitionAt) this.#advance(now);
    const key = this.#current;
    if (!key?.signer) throw new ConfigError('KEYRING_NOT_READY', 'no signing key is loaded');
    return { token: key.signer(claims), kid: key.kid };
  }

  /**
   * Verifies the signature of a token against the published keys (pending, active, retired and
   * not expired; never a revoked key). Does not check exp, iss, aud or token revocation. Null for
   * anything that fails.
   */
  verify(token: string): { header: JwtHeader; payload: JwtPayload } | null {
    const now = this.#now();
    const result = verifyJwt(token, (kid) => {
      const key = this.#keys.get(kid);
      return key && key.revokedAt === null && (key.expiresAt === null || now < key.expiresAt) ? key : undefined;
    });
    return result.ok ? { header: result.header, payload: result.payload } : null;
  }

  /**
   * A number that grows each time a loaded key becomes revoked, by revoke() or by a refresh that
   * finds another instance's revocation: whoever remembers verified tokens checks them again.
   */
  revocationEpoch(): number {
    return this.#revocations;
  }

  /** The JWK Set: public members, kid, alg and use of every key that has not expired or been revoked. */
  jwks(): { keys: PublicJwk[] } {
    return JSON.parse(this.jwksJson()) as { keys: PublicJwk[] };
  }

  /** The JWK Set as served, rebuilt only when the key set changes or a retired key expires. */
  jwksJson(): string {
    const now = this.#now();
    if (this.#jwksJson === undefined || now >= this.#jwksValidUntil) {
      let validUntil = Infinity;
      const keys: PublicJwk[] = [];
      for (const key of this.#sorted()) {
        if (key.revokedAt !== null) continue;
        if (key.expiresAt !== null) {
          if (key.expiresAt <= now) continue;
          validUntil = Math.min(validUntil, key.expiresAt);
        }
        keys.push(key.publicJwk);
      }
      this.#jwksJson = JSON.stringify({ keys });
      this.#jwksValidUntil = validUntil;
    }
    return this.#jwksJson;
  }

  /** Every loaded key, newest first. */
  list(): KeySummary[] {
    const now = this.#now();
    if (now >= this.#nextTransitionAt) this.#advance(now);
    return this.#sorted().map((key) => summarize(key, now));
  }

  /**
   * Creates a key with the configured algorithm, published now and signing from
   * now + prepublishMs (or `activateAt`; a time in the past means now). A key still pending is
   * retired at once: the newest pending key wins. A key that signs at once (activateAt now or
   * earlier) also retires the key that signed until then, at once.
   */
  async rotate(opts: { activateAt?: number } = {}): Promise<KeySummary> {
    if (opts.activateAt !== undefined && !Number.isFinite(opts.activateAt)) {
      throw new ConfigError('ROTATE_INVALID', 'activateAt must be a time in epoch milliseconds');
    }
    return this.#exclusive(async () => {
      const key = await this.#createKey(opts.activateAt);
      return summarize(key, this.#now());
    });
  }

  /**
   * Revokes a key (it leaked): it leaves the JWKS at once, never signs again, and verify() refuses
   * every token it signed, here at once and on other instances when they read the change. The key
   * that signs now is revoked only with `rotate`, which first stores a new key that signs at once
   * (verifiers fetch it on its unknown kid); `rotate` on any other key also asks for one. Revoking
   * a revoked key again changes nothing. Emits key.revoked with `audit`.
   */
  async revoke(kid: string, opts: { rotate?: boolean; audit?: AuditContext } = {}): Promise<KeyRevocation> {
    return this.#exclusive(async () => {
      // Another instance may have created, retired or revoked the key moments ago.
      await this.#reload();
      const key = this.#keys.get(kid);
      if (!key) throw new KeyNotFoundError(kid);
      if (key.revokedAt !== null) return { revoked: summarize(key, this.#now()), replacement: undefined };
      const now = this.#now();
      if (now >= this.#nextTransitionAt) this.#advance(now);
      if (key === this.#current && !opts.rotate) throw new KeyRevocationRefusedError(kid);
      const replacement = opts.rotate ? await this.#createKey(now) : undefined;

      const revokedAt = this.#now();
      const expiresAt = Math.min(key.expiresAt ?? Infinity, revokedAt + this.#retentionMs);
      if (await this.#store.revokeKey(kid, revokedAt, expiresAt)) {
        key.revokedAt = revokedAt;
        key.retiredAt ??= revokedAt;
        key.expiresAt = expiresAt;
      } else {
        // Another instance deleted it meanwhile (it had expired): it is gone everywhere.
        this.#keys.delete(kid);
      }
      key.signer = undefined;
      this.#jwksJson = undefined;
      // In the same turn as the change above, so that no verification made before it outlives it.
      this.#revocations += 1;
      this.#events.emit('key.revoked', { kid, ...opts.audit });
      return { revoked: summarize(key, revokedAt), replacement: replacement && summarize(replacement, revokedAt) };
    });
  }

  /** Reloads the keys from the store and deletes those whose expiresAt has passed. */
  async refresh(): Promise<void> {
    await this.#exclusive(() => this.#reload());
  }

  /**
   * One maintenance run: refresh, then the automatic rotation (when rotationIntervalMs > 0, the
   * newest key is older than that and no key is pending), which stores its key only if no other
   * instance created one within the interval meanwhile. Never rejects: failures emit
   * key.rotation_failed.
   */
  async maintain(): Promise<void> {
    try {
      await this.refresh();
    } catch (err) {
      this.#failed(err);
    }
    if (this.#rotationIntervalMs <= 0) return;
    try {
      await this.#exclusive(async () => {
        const now = this.#now();
        let newest = -Infinity;
        for (const key of this.#keys.values()) {
          if (key.retiredAt === null && key.activatesAt > now) return;
          newest = Math.max(newest, key.createdAt);
        }
        if (now - newest >= this.#rotationIntervalMs) await this.#createKeyOncePerCluster();
      });
    } catch (err) {
      this.#failed(err);
    }
  }

  /** Runs maintain() every refreshIntervalMs on an unref'd timer; idempotent. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#schedule();
  }

  /** Stops the timer; resolves once a running maintenance and background writes have finished. */
  async stop(): Promise<void> {
    this.#running = false;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#maintenance;
    await this.#settleWrites();
  }

  #schedule(): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#maintenance = this.maintain().finally(() => {
        this.#maintenance = undefined;
        if (this.#running) this.#schedule();
      });
    }, this.#refreshIntervalMs);
    this.#timer.unref();
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #failed(err: unknown): void {
    this.#events.emit('key.rotation_failed', { error: err instanceof Error ? err.message : String(err) });
  }

  async #settleWrites(): Promise<void> {
    while (this.#writes.size > 0) await Promise.allSettled([...this.#writes]);
  }

  /**
   * Chooses the active key at `now`: the non-retired key with the highest activatesAt (then
   * createdAt, then kid) that has been published and whose activatesAt has passed. Retires
   * the keys it supersedes.
   */
  #advance(now: number): void {
    let best: LoadedKey | undefined;
    let next = Infinity;
    for (const key of this.#keys.values()) {
      if (key.retiredAt !== null || !key.signer) continue;
      // Never sign before activatesAt: until then verifiers may not have the key yet.
      if (key.activatesAt > now) {
        next = Math.min(next, key.activatesAt);
      } else if (!best || newer(key, best)) {
        best = key;
      }
    }
    this.#nextTransitionAt = next;
    const previous = this.#current;
    this.#current = best;
    if (!best) return;
    for (const key of this.#keys.values()) {
      if (key !== best && key.retiredAt === null && key.activatesAt <= now) this.#retire(key, best.activatesAt, false);
    }
    if (previous && previous !== best) this.#events.emit('key.activated', { kid: best.kid });
  }

  /** Marks a key retired now; the store write runs in the background unless awaited by the caller. */
  #retire(key: LoadedKey, retiredAt: number, awaited: true): Promise<void>;
  #retire(key: LoadedKey, retiredAt: number, awaited: false): void;
  #retire(key: LoadedKey, retiredAt: number, awaited: boolean): Promise<void> | void {
    key.retiredAt = retiredAt;
    key.expiresAt = retiredAt + this.#retentionMs;
    key.signer = undefined;
    this.#jwksJson = undefined;
    const write = this.#persistRetirement(key);
    if (awaited) return write;
    this.#writes.add(write);
    void write.finally(() => this.#writes.delete(write));
  }

  async #persistRetirement(key: LoadedKey): Promise<void> {
    const { retiredAt, expiresAt } = key;
    if (retiredAt === null || expiresAt === null) return;
    try {
      // A false result means another instance already deleted the key; nothing left to do.
      if (await this.#store.retireKey(key.kid, retiredAt, expiresAt)) {
        this.#events.emit('key.retired', { kid: key.kid, expiresAt });
      }
    } catch (err) {
      // The next refresh finds the key still unretired in storage and writes it again.
      this.#failed(err);
    }
  }

  async #createKey(activateAt: number | undefined): Promise<LoadedKey> {
    const { record, generated } = await this.#generateKey(activateAt);
    await this.#store.insertKey(record);
    return this.#adopt(record, generated);
  }

  /**
   * The automatic rotation: stores the new key only when no key anywhere has a createdAt within
   * the last rotation interval. When another instance rotated first, loads its key instead.
   */
  async #createKeyOncePerCluster(): Promise<LoadedKey | undefined> {
    const { record, generated } = await this.#generateKey(undefined);
    if (!(await this.#store.insertKeyIfNoneSince(record, record.createdAt - this.#rotationIntervalMs))) {
      await this.#reload();
      return undefined;
    }
    return this.#adopt(record, generated);
  }

  async #generateKey(activateAt: number | undefined): Promise<{
    record: SigningKeyRecord;
    generated: Awaited<ReturnType<typeof generateSigningKeyPair>>;
  }> {
    const generated = await generateSigningKeyPair(this.#alg);
    const now = this.#now();
    const activatesAt = activateAt === undefined ? now + this.#prepublishMs : Math.max(now, activateAt);
    const der = generated.privateKey.export({ format: 'der', type: 'pkcs8' });
    const record: SigningKeyRecord = {
      kid: generated.kid,
      alg: generated.alg,
      publicJwk: generated.publicJwk,
      privateKeyEncrypted: encryptPrivateKey(this.#kek, der, generated.kid),
      createdAt: now,
      activatesAt,
      retiredAt: null,
      expiresAt: null,
      revokedAt: null,
    };
    der.fill(0);
    return { record, generated };
  }

  /** Makes a stored new key part of the ring: published now, signing from its activatesAt. */
  async #adopt(record: SigningKeyRecord, generated: { publicKey: KeyObject; privateKey: KeyObject }): Promise<LoadedKey> {
    const now = record.createdAt;
    const activatesAt = record.activatesAt;
    const key = buildKey(record, generated.publicKey, generated.privateKey);
    // A key that signs at once supersedes every other key now, so that nothing else (say a key of
    // the same activatesAt and a higher kid) can win the choice of #advance.
    const superseded = [...this.#keys.values()].filter((k) => k.retiredAt === null && (k.activatesAt > now || activatesAt <= now));
    this.#keys.set(key.kid, key);
    this.#jwksJson = undefined;
    this.#events.emit('key.created', { kid: key.kid, alg: key.alg, activatesAt });
    // The newest pending key wins: the ones it replaces never sign.
    await Promise.all(superseded.map((k) => this.#retire(k, now, true)));
    const hadCurrent = this.#current !== undefined;
    this.#advance(now);
    if (!hadCurrent && this.#current === key) this.#events.emit('key.activated', { kid: key.kid });
    return key;
  }

  /** Replaces the in-memory keys with the stored ones; keeps the old state if anything fails to load. */
  async #reload(retried = false): Promise<void> {
    await this.#settleWrites();
    const now = this.#now();
    const records = await this.#store.listKeys();

    // The storage sweep leaves keys alone, so every deletion is announced here; of several
    // instances racing to delete the same keys, each announces the ones its own delete removed.
    if (records.some((r) => r.expiresAt !== null && r.expiresAt <= now)) {
      for (const kid of await this.#store.deleteExpiredKeys(now)) this.#events.emit('key.deleted', { kid });
    }

    // Load every new key first, so that a key that fails to decrypt leaves the ring as it was.
    const next = new Map<string, LoadedKey>();
    const unpersisted: LoadedKey[] = [];
    const retiredByStore: Array<[LoadedKey, SigningKeyRecord]> = [];
    for (const record of records) {
      if (record.expiresAt !== null && record.expiresAt <= now) continue;
      const known = this.#keys.get(record.kid);
      if (known) {
        if (record.retiredAt !== null) {
          if (known.retiredAt === null || known.expiresAt !== record.expiresAt || known.revokedAt !== record.revokedAt) {
            retiredByStore.push([known, record]);
          }
        } else if (known.retiredAt !== null) {
          unpersisted.push(known);
        }
        next.set(record.kid, known);
      } else {
        next.set(record.kid, loadKey(record, this.#kek));
      }
    }

    for (const [known, record] of retiredByStore) {
      if (known.revokedAt === null && record.revokedAt !== null) this.#revocations += 1;
      known.retiredAt = record.retiredAt;
      known.expiresAt = record.expiresAt;
      known.revokedAt = record.revokedAt;
      known.signer = undefined;
    }
    this.#keys = next;
    this.#jwksJson = undefined;
    for (const key of unpersisted) await this.#retire(key, key.retiredAt as number, true);

    const canSign = [...next.values()].some((k) => k.retiredAt === null && k.signer && k.activatesAt <= now);
    if (!canSign) {
      // Instances starting together on an empty database: only one stores a first key, the
      // others load it (a key stored within the last minute means someone just did).
      const { record, generated } = await this.#generateKey(now);
      if (await this.#store.insertKeyIfNoneSince(record, now - FIRST_KEY_RACE_MS)) await this.#adopt(record, generated);
      else if (!retried) await this.#reload(true);
      else await this.#createKey(now);
    } else {
      this.#advance(now);
    }
  }

  #sorted(): LoadedKey[] {
    return [...this.#keys.values()].sort((a, b) => (newer(a, b) ? -1 : 1));
  }
}

/** The order in which keys take over signing. */
function newer(a: LoadedKey, b: LoadedKey): boolean {
  if (a.activatesAt !== b.activatesAt) return a.activatesAt > b.activatesAt;
  if (a.createdAt !== b.createdAt) return a.createdAt > b.createdAt;
  return a.kid > b.kid;
}

function summarize(key: LoadedKey, now: number): KeySummary {
  return {
    kid: key.kid,
    alg: key.alg,
    status: key.revokedAt !== null ? 'revoked' : key.retiredAt !== null ? 'retired' : key.activatesAt > now ? 'pending' : 'active',
    createdAt: key.createdAt,
    activatesAt: key.activatesAt,
    retiredAt: key.retiredAt,
    expiresAt: key.expiresAt,
    revokedAt: key.revokedAt,
  };
}

function buildKey(record: SigningKeyRecord, publicKey: KeyObject, privateKey: KeyObject | undefined): LoadedKey {
  const publicJwk = Object.freeze({ ...publicJwkOf(record.alg, publicKey), kid: record.kid });
  const verification = createVerificationKey(record.alg, record.kid, publicKey);
  return {
    ...verification,
    createdAt: record.createdAt,
    activatesAt: record.activatesAt,
    retiredAt: record.retiredAt,
    expiresAt: record.expiresAt,
    revokedAt: record.revokedAt,
    publicJwk,
    signer: privateKey ? createJwtSigner(record.alg, record.kid, privateKey) : undefined,
  };
}

/** Imports a stored key; decrypts the private part only while the key may sign. */
function loadKey(record: SigningKeyRecord, kek: Buffer): LoadedKey {
  if (!isSigningAlgorithm(record.alg)) {
    throw new ConfigError('KEY_INVALID', `signing key ${record.kid} has an unsupported algorithm ${String(record.alg)}`);
  }
  const publicKey = importPublicJwk(record.alg, record.publicJwk);
  if (record.retiredAt !== null) return buildKey(record, publicKey, undefined);

  const der = decryptPrivateKey(kek, record.privateKeyEncrypted, record.kid);
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
  } finally {
    der.fill(0);
  }
  // A private key that does not match the published one would sign tokens nobody can verify.
  if (!publicKey.equals(createPublicKey(privateKey))) {
    throw new ConfigError('KEY_INVALID', `signing key ${record.kid}: the private key does not match the public JWK`);
  }
  return buildKey(record, publicKey, privateKey);
}
