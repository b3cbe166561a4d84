import { createHmac, randomBytes } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CLOCK_SKEW_MS, KeyNotFoundError, KeyRevocationRefusedError, KeyRing, type KeyRingOptions } from '../../src/keys/keyring.js';
import { ConfigError } from '../../src/ground/errors.js';
import { openStorage } from '../../src/storage/open.js';
import { EventBus, type EventMap, type EventName } from '../../src/observability/events.js';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../../src/ground/names.js';
import { StorageConflictError, type KeyStore } from '../../src/storage/types.js';
import { type SigningKeyRecord } from '../../src/ground/records.js';

/** An in-memory KeyStore with the semantics of storage/types.ts; copies records in and out like a database. */
class MemoryKeyStore implements KeyStore {
  readonly rows = new Map<string, SigningKeyRecord>();
  failNextRetire = false;
  failNextInsert = false;

  async listKeys(): Promise<SigningKeyRecord[]> {
    return [...this.rows.values()].map((r) => structuredClone(r));
  }
  async insertKey(key: SigningKeyRecord): Promise<void> {
    if (this.failNextInsert) {
      this.failNextInsert = false;
      throw new Error('database is locked');
    }
    if (this.rows.has(key.kid)) throw new StorageConflictError(`key ${key.kid} exists`);
    this.rows.set(key.kid, structuredClone(key));
  }
  async insertKeyIfNoneSince(key: SigningKeyRecord, since: number): Promise<boolean> {
    // An injected failure comes before the check, as a lost connection would.
    if (!this.failNextInsert && [...this.rows.values()].some((r) => r.createdAt > since)) return false;
    await this.insertKey(key);
    return true;
  }
  async retireKey(kid: string, retiredAt: number, expiresAt: number): Promise<boolean> {
    if (this.failNextRetire) {
      this.failNextRetire = false;
      throw new Error('connection reset');
    }
    const row = this.rows.get(kid);
    if (!row || row.revokedAt !== null) return false;
    row.retiredAt = retiredAt;
    row.expiresAt = expiresAt;
    return true;
  }
  async revokeKey(kid: string, revokedAt: number, expiresAt: number): Promise<boolean> {
    const row = this.rows.get(kid);
    if (!row) return false;
    row.revokedAt ??= revokedAt;
    row.retiredAt ??= revokedAt;
    row.expiresAt = Math.min(row.expiresAt ?? expiresAt, expiresAt);
    return true;
  }
  async deleteExpiredKeys(now: number): Promise<string[]> {
    const deleted: string[] = [];
    for (const [kid, row] of this.rows) {
      if (row.expiresAt !== null && row.expiresAt <= now) {
        this.rows.delete(kid);
        deleted.push(kid);
      }
    }
    return deleted;
  }
}

const T0 = 1_700_000_000_000;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const PREPUBLISH = HOUR;
const MAX_TTL = DAY;

interface Harness {
  store: MemoryKeyStore;
  events: EventBus;
  seen: Array<{ name: EventName; payload: EventMap[EventName] }>;
  clock: { now: number };
  opts: KeyRingOptions;
}

function harness(overrides: Partial<KeyRingOptions> = {}, store = new MemoryKeyStore()): Harness {
  const events = new EventBus();
  const seen: Harness['seen'] = [];
  events.onAny((name, payload) => seen.push({ name, payload }));
  const clock = { now: T0 };
  const opts: KeyRingOptions = {
    kek: randomBytes(32),
    alg: 'ES256',
    prepublishMs: PREPUBLISH,
    rotationIntervalMs: 0,
    maxTokenTtlMs: MAX_TTL,
    events,
    now: () => clock.now,
    ...overrides,
  };
  return { store, events, seen, clock, opts };
}

function names(h: Harness): EventName[] {
  return h.seen.map((e) => e.name);
}

function claims(now: number, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { iss: 'https://as.example', sub: 'client-1', aud: 'https://api.example', client_id: 'client-1', iat: Math.floor(now / 1000), exp: Math.floor(now / 1000) + 3600, jti: randomBytes(8).toString('hex'), ...extra };
}

function b64(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

describe.each(SIGNING_ALGORITHMS)('%s', (alg: SigningAlgorithm) => {
  it('signs tokens that jose verifies against jwks(), with typ at+jwt, alg and kid in the header', async () => {
    const h = harness({ alg });
    const ring = await KeyRing.open(h.store, h.opts);
    const { token, kid } = ring.sign(claims(T0));
    const jwks = ring.jwks();
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kid, alg, use: 'sig' });
    for (const member of PRIVATE_MEMBERS) expect(jwks.keys[0]).not.toHaveProperty(member);

    // jose checks exp against the real clock; tokens here are minted at T0 (2023), so verify at T0.
    const verified = await jwtVerify(token, createLocalJWKSet(jwks), {
      typ: 'at+jwt',
      algorithms: [alg],
      issuer: 'https://as.example',
      audience: 'https://api.example',
      currentDate: new Date(T0),
    });
    expect(verified.protectedHeader).toEqual({ alg, typ: 'at+jwt', kid });
    expect(verified.payload.sub).toBe('client-1');

    const ours = ring.verify(token);
    expect(ours?.header).toEqual({ alg, typ: 'at+jwt', kid });
    expect(ours?.payload).toEqual(verified.payload);
  });

  it('verify() rejects tampered, re-signed and garbage tokens', async () => {
    const h = harness({ alg });
    const ring = await KeyRing.open(h.store, h.opts);
    const { token, kid } = ring.sign(claims(T0, { scope: 'read' }));
    const [header, payload, signature] = token.split('.') as [string, string, string];
    expect(ring.verify(token)).not.toBeNull();

    const tamperedPayload = b64({ ...JSON.parse(Buffer.from(payload, 'base64url').toString()), scope: 'admin' });
    expect(ring.verify(`${header}.${tamperedPayload}.${signature}`)).toBeNull();

    const sigBytes = Buffer.from(signature, 'base64url');
    sigBytes[10] = (sigBytes[10] as number) ^ 0x40;
    expect(ring.verify(`${header}.${payload}.${sigBytes.toString('base64url')}`)).toBeNull();

    const none = b64({ alg: 'none', typ: 'at+jwt', kid });
    expect(ring.verify(`${none}.${payload}.`)).toBeNull();
    expect(ring.verify(`${none}.${payload}.${signature}`)).toBeNull();

    // The classic confusion: HS256 keyed with the public key the server publishes.
    const hs = `${b64({ alg: 'HS256', typ: 'at+jwt', kid })}.${payload}`;
    const publicJwkJson = JSON.stringify(ring.jwks().keys[0]);
    const mac = createHmac('sha256', publicJwkJson).update(hs).digest('base64url');
    expect(ring.verify(`${hs}.${mac}`)).toBeNull();

    const otherAlg = alg === 'ES256' ? 'RS256' : 'ES256';
    expect(ring.verify(`${b64({ alg: otherAlg, typ: 'at+jwt', kid })}.${payload}.${signature}`)).toBeNull();
    expect(ring.verify(`${b64({ alg, typ: 'at+jwt', kid: 'unknown' })}.${payload}.${signature}`)).toBeNull();
    expect(ring.verify(`${b64({ alg, typ: 'JWT', kid })}.${payload}.${signature}`)).toBeNull();
    expect(ring.verify(`${b64({ alg, typ: 'at+jwt', kid, crit: ['b64'], b64: true })}.${payload}.${signature}`)).toBeNull();

    for (const garbage of ['', '.', '..', 'a.b.c', 'not a token', `${token}.`, `${token} `, ` ${token}`, token.replace('.', '$'), '€.€.€']) {
      expect(ring.verify(garbage)).toBeNull();
    }
    expect(ring.verify(undefined as unknown as string)).toBeNull();
    expect(ring.verify({} as unknown as string)).toBeNull();
  });
});

describe('KeyRing life cycle', () => {
  it('creates the first key active at once on an empty store, stored encrypted', async () => {
    const h = harness();
    const ring = await KeyRing.open(h.store, h.opts);
    expect(ring.isReady()).toBe(true);
    const [summary] = ring.list();
    expect(summary).toEqual({
      kid: expect.any(String), alg: 'ES256', status: 'active', createdAt: T0, activatesAt: T0, retiredAt: null, expiresAt: null, revokedAt: null,
    });
    expect(names(h)).toEqual(['key.created', 'key.activated']);
    expect(h.seen[0]?.payload).toEqual({ kid: summary?.kid, alg: 'ES256', activatesAt: T0 });
    expect(ring.sign(claims(T0)).kid).toBe(summary?.kid);

    const row = h.store.rows.get(summary?.kid as string);
    expect(row?.privateKeyEncrypted).toMatch(/^v1\./);
    expect(Object.keys(row?.publicJwk ?? {})).not.toContain('d');
  });

  it('rotates: publishes the new key at once, signs with it from activatesAt, keeps the old key until expiresAt', async () => {
    const h = harness();
    const ring = await KeyRing.open(h.store, h.opts);
    const oldKid = ring.sign(claims(T0)).kid;

    h.clock.now = T0 + 10_000;
    h.seen.length = 0;
    const created = await ring.rotate();
    expect(created).toMatchObject({ status: 'pending', createdAt: T0 + 10_000, activatesAt: T0 + 10_000 + PREPUBLISH });
    expect(names(h)).toEqual(['key.created']);
    const newKid = created.kid;
    expect(newKid).not.toBe(oldKid);

    // Published immediately, not signing yet.
    expect(ring.jwks().keys.map((k) => k.kid).sort()).toEqual([oldKid, newKid].sort());
    expect(JSON.parse(ring.jwksJson())).toEqual(ring.jwks());
    const before = ring.sign(claims(h.clock.now));
    expect(before.kid).toBe(oldKid);
    expect(decodeProtectedHeader(before.token).kid).toBe(oldKid);

    h.clock.now = created.activatesAt - 1;
    const lastOld = ring.sign(claims(h.clock.now));
    expect(lastOld.kid).toBe(oldKid);
    expect(ring.list().map((k) => [k.kid, k.status])).toEqual([[newKid, 'pending'], [oldKid, 'active']]);

    h.clock.now = created.activatesAt;
    const first = ring.sign(claims(h.clock.now));
    expect(first.kid).toBe(newKid);
    expect(decodeProtectedHeader(first.token).kid).toBe(newKid);
    await ring.refresh(); // settles the background retirement
    const expiresAt = created.activatesAt + MAX_TTL + CLOCK_SKEW_MS;
    expect(h.store.rows.get(oldKid)).toMatchObject({ retiredAt: created.activatesAt, expiresAt });
    expect(h.seen.filter((e) => e.name !== 'key.created')).toEqual([
      { name: 'key.activated', payload: { kid: newKid } },
      { name: 'key.retired', payload: { kid: oldKid, expiresAt } },
    ]);
    expect(ring.list().map((k) => [k.kid, k.status])).toEqual([[newKid, 'active'], [oldKid, 'retired']]);

    // The retired key stays published and verifying until expiresAt.
    h.clock.now = expiresAt - 1;
    expect(ring.verify(lastOld.token)).not.toBeNull();
    expect(ring.jwks().keys.map((k) => k.kid)).toEqual([newKid, oldKid]);
    await ring.refresh();
    expect(h.store.rows.has(oldKid)).toBe(true);

    // Then it leaves the JWKS (even before the next refresh) and its tokens stop verifying.
    h.clock.now = expiresAt;
    expect(ring.jwks().keys.map((k) => k.kid)).toEqual([newKid]);
    expect(JSON.parse(ring.jwksJson()).keys).toHaveLength(1);
    expect(ring.verify(lastOld.token)).toBeNull();
    h.seen.length = 0;
    await ring.refresh();
    expect(h.store.rows.has(oldKid)).toBe(false);
    expect(h.seen).toEqual([{ name: 'key.deleted', payload: { kid: oldKid } }]);
    expect(ring.list().map((k) => k.kid)).toEqual([newKid]);
    expect(ring.verify(lastOld.token)).toBeNull();
    expect(ring.verify(first.token)).not.toBeNull();
    await expect(
      jwtVerify(lastOld.token, createLocalJWKSet(ring.jwks()), { currentDate: new Date(created.activatesAt) }),
    ).rejects.toThrow();
  });

  it('rotate({ activateAt }) honours the time, and a time in the past means now', async () => {
    const h = harness();
    const ring = await KeyRing.open(h.store, h.opts);
    const later = await ring.rotate({ activateAt: T0 + 5 * 60_000 });
    expect(later.activatesAt).toBe(T0 + 5 * 60_000);

    h.clock.now = T0 + 60_000;
    h.seen.length = 0;
    const now = await ring.rotate({ activateAt: 0 });
    expect(now).toMatchObject({ status: 'active', activatesAt: T0 + 60_000 });
    expect(ring.sign(claims(h.clock.now)).kid).toBe(now.kid);
    expect(names(h)).toContain('key.activated');
    await expect(ring.rotate({ activateAt: Number.NaN })).rejects.toThrow(ConfigError);
  });

  it('the newest pending key wins: a second rotate() retires the first pending key, which never signs', async () => {
    const h = harness();
    const ring = await KeyRing.open(h.store, h.opts);
    const original = ring.sign(claims(T0)).kid;
    const first = await ring.rotate();
    h.clock.now = T0 + 30 * 60_000;
    h.seen.length = 0;
    const second = await ring.rotate();
    expect(h.seen.map((e) => e.name)).toEqual(['key.created', 'key.retired']);
    expect(ring.list().find((k) => k.kid === first.kid)).toMatchObject({ status: 'retired', retiredAt: h.clock.now });

    h.clock.now = first.activatesAt;
    expect(ring.sign(claims(h.clock.now)).kid).toBe(original);
    h.clock.now = second.activatesAt;
    expect(ring.sign(claims(h.clock.now)).kid).toBe(second.kid);
  });

  it('keys persist across KeyRing.open on the same store (same KEK)', async () => {
    const h = harness();
    const ring = await KeyRing.open(h.store, h.opts);
    const issued = ring.sign(claims(T0));
    const pending = await ring.rotate();

    h.seen.length = 0;
    const reopened = await KeyRing.open(h.store, h.opts);
    expect(h.seen).toEqual([]); // nothing created
    expect(reopened.list()).toEqual(ring.list());
    expect(reopened.jwksJson()).toBe(ring.jwksJson());
    expect(reopened.verify(issued.token)?.payload).toEqual(ring.verify(issued.token)?.payload);
    expect(reopened.sign(claims(T0)).kid).toBe(issued.kid);
    h.clock.now = pending.activatesAt;
    expect(reopened.sign(claims(h.clock.now)).kid).toBe(pending.kid);
  });

  it('refuses to open with another KEK', async () => {
    const h = harness();
    await KeyRing.open(h.store, h.opts);
    await expect(KeyRing.open(h.store, { ...h.opts, kek: randomBytes(32) })).rejects.toMatchObject({
      name: 'ConfigError', code: 'KEY_DECRYPT_FAILED',
    });
    await expect(KeyRing.open(h.store, { ...h.opts, kek: randomBytes(16) })).rejects.toMatchObject({ code: 'KEK_INVALID' });
  });

  it('refuses a stored private key that does not match its public JWK', async () => {
    const h = harness();
    const ring = await KeyRing.open(h.store, h.opts);
    const pending = await ring.rotate();
    const [a, b] = [...h.store.rows.values()] as [SigningKeyRecord, SigningKeyRecord];
    // Swap public halves: both still decrypt (the kid is the AAD) but no longer match.
    [a.publicJwk, b.publicJwk] = [b.publicJwk, a.publicJwk];
    await expect(KeyRing.open(h.store, h.opts)).rejects.toMatchObject({ code: 'KEY_INVALID' });
    expect(pending.kid).toBeTruthy();
  });

  it('never puts private material in jwks(), jwksJson() or list()', async () => {
    for (const alg of SIGNING_ALGORITHMS) {
      const h = harness({ alg });
      const ring = await KeyRing.open(h.store, h.opts);
      await ring.rotate();
      for (const jwk of ring.jwks().keys) {
        for (const member of PRIVATE_MEMBERS) expect(jwk).not.toHaveProperty(member);
      }
      for (const member of PRIVATE_MEMBERS) expect(ring.jwksJson()).not.toContain(`"${member}"`);
      for (const summary of ring.list()) {
        expect(Object.keys(summary).sort()).toEqual(['activatesAt', 'alg', 'createdAt', 'expiresAt', 'kid', 'retiredAt', 'revokedAt', 'status']);
      }
    }
  });

  it('jwks() returns a copy: changing it does not change what is served', async () => {
    const h = harness();
    const ring = await KeyRing.open(h.store, h.opts);
    const served = ring.jwksJson();
    const copy = ring.jwks();
    (copy.keys[0] as Record<string, unknown>).d = 'leak';
    copy.keys.push({ kty: 'oct' });
    expect(ring.jwksJson()).toBe(served);
  });

  it('a failed background retirement is reported and written again by the next refresh', async () => {
    const h = harness();
    const ring = await KeyRing.open(h.store, h.opts);
    const oldKid = ring.sign(claims(T0)).kid;
    const next = await ring.rotate();
    h.clock.now = next.activatesAt;
    h.store.failNextRetire = true;
    h.seen.length = 0;
    expect(ring.sign(claims(h.clock.now)).kid).toBe(next.kid);
    await ring.refresh();
    expect(names(h)).toEqual(['key.activated', 'key.rotation_failed', 'key.retired']);
    expect(h.store.rows.get(oldKid)?.retiredAt).toBe(next.activatesAt);
  });

  it('instances sharing a store converge after refresh', async () => {
    const h = harness();
    const a = await KeyRing.open(h.store, h.opts);
    const b = await KeyRing.open(h.store, h.opts);
    const k1 = a.sign(claims(T0)).kid;
    expect(b.sign(claims(T0)).kid).toBe(k1);

    const k2 = await a.rotate();
    expect(b.jwks().keys).toHaveLength(1);
    await b.refresh();
    expect(b.jwks().keys.map((k) => k.kid).sort()).toEqual([k1, k2.kid].sort());

    h.clock.now = k2.activatesAt;
    const fromA = a.sign(claims(h.clock.now));
    const fromB = b.sign(claims(h.clock.now));
    expect([fromA.kid, fromB.kid]).toEqual([k2.kid, k2.kid]);
    expect(b.verify(fromA.token)).not.toBeNull();
    await a.refresh();
    await b.refresh();
    expect(a.list()).toEqual(b.list());
  });

  it('a refresh that finds no key able to sign creates one rather than stop issuing', async () => {
    const h = harness();
    const ring = await KeyRing.open(h.store, h.opts);
    const old = ring.sign(claims(T0)).kid;
    h.store.rows.clear();
    h.seen.length = 0;
    await ring.refresh();
    expect(names(h)).toEqual(['key.created', 'key.activated']);
    expect(ring.sign(claims(T0)).kid).not.toBe(old);
    expect(ring.list()).toHaveLength(1);
  });

  it('rejects bad options with ConfigError', async () => {
    const h = harness();
    await expect(KeyRing.open(h.store, { ...h.opts, alg: 'HS256' as SigningAlgorithm })).rejects.toMatchObject({ code: 'SIGNING_ALG_INVALID' });
    await expect(KeyRing.open(h.store, { ...h.opts, prepublishMs: -1 })).rejects.toBeInstanceOf(ConfigError);
    await expect(KeyRing.open(h.store, { ...h.opts, maxTokenTtlMs: Number.NaN })).rejects.toBeInstanceOf(ConfigError);
  });
});

describe('a leaked key: rotate at once, revoke', () => {
  function kids(ring: KeyRing): string[] {
    return ring.jwks().keys.map((k) => k.kid as string);
  }

  it('rotate({ activateAt: now }) in the very millisecond the current key activated: the new key signs, the old one retires', async () => {
    // Same activatesAt and createdAt: only the kid would tell them apart without the explicit retirement.
    for (let i = 0; i < 8; i++) {
      const h = harness();
      const ring = await KeyRing.open(h.store, h.opts);
      const old = ring.sign(claims(T0)).kid;
      h.seen.length = 0;
      const next = await ring.rotate({ activateAt: 0 });
      expect(next).toMatchObject({ status: 'active', createdAt: T0, activatesAt: T0 });
      expect(ring.sign(claims(T0)).kid).toBe(next.kid);
      expect(h.store.rows.get(old)).toMatchObject({ retiredAt: T0, expiresAt: T0 + MAX_TTL + CLOCK_SKEW_MS });
      expect(names(h)).toEqual(['key.created', 'key.retired', 'key.activated']);
      // Another instance on the same store converges on the same key.
      expect((await KeyRing.open(h.store, h.opts)).sign(claims(T0)).kid).toBe(next.kid);
    }
  });

  it('revoking a retired key unpublishes it and fails every token it signed, at once', async () => {
    const h = harness();
    const ring = await KeyRing.open(h.store, h.opts);
    const old = ring.sign(claims(T0));
    h.clock.now = T0 + 1000;
    const next = await ring.rotate({ activateAt: 0 });
    expect(ring.verify(old.token)).not.toBeNull();
    expect(kids(ring)).toContain(old.kid);

    h.clock.now = T0 + 2000;
    h.seen.length = 0;
    const { revoked, replacement } = await ring.revoke(old.kid, { audit: { ip: '10.0.0.1', requestId: 'r1' } });
    expect(replacement).toBeUndefined();
    expect(revoked).toMatchObject({ kid: old.kid, status: 'revoked', retiredAt: T0 + 1000, revokedAt: T0 + 2000 });
    expect(ring.verify(old.token)).toBeNull();
    expect(kids(ring)).toEqual([next.kid]);
    expect(ring.sign(claims(h.clock.now)).kid).toBe(next.kid);
    expect(h.store.rows.get(old.kid)).toMatchObject({ revokedAt: T0 + 2000, retiredAt: T0 + 1000, expiresAt: T0 + 1000 + MAX_TTL + CLOCK_SKEW_MS });
    expect(h.seen).toEqual([{ name: 'key.revoked', payload: { kid: old.kid, ip: '10.0.0.1', requestId: 'r1' } }]);
    expect(ring.list().map((k) => [k.kid, k.status])).toEqual([[next.kid, 'active'], [old.kid, 'revoked']]);

    // Again: nothing changes, nothing is announced.
    h.seen.length = 0;
    h.clock.now = T0 + 3000;
    expect((await ring.revoke(old.kid)).revoked).toMatchObject({ status: 'revoked', revokedAt: T0 + 2000 });
    expect(h.seen).toEqual([]);

    // Listed until its expiresAt, then deleted like any expired key.
    h.clock.now = T0 + 1000 + MAX_TTL + CLOCK_SKEW_MS;
    await ring.refresh();
    expect(ring.list().map((k) => k.kid)).toEqual([next.kid]);
    expect(h.seen.map((e) => e.name)).toEqual(['key.deleted']);
  });

  it('revoking a pending key: it never signs', async () => {
    const h = harness();
    const ring = await KeyRing.open(h.store, h.opts);
    const current = ring.sign(claims(T0)).kid;
    const pending = await ring.rotate();
    await ring.revoke(pending.kid);
    expect(kids(ring)).toEqual([current]);
    h.clock.now = pending.activatesAt + 1;
    expect(ring.sign(claims(h.clock.now)).kid).toBe(current);
    expect(h.store.rows.get(pending.kid)).toMatchObject({ revokedAt: T0, retiredAt: T0, expiresAt: T0 + MAX_TTL + CLOCK_SKEW_MS });
  });

  it('refuses to revoke the key that signs without a replacement, and changes nothing', async () => {
    const h = harness();
    const ring = await KeyRing.open(h.store, h.opts);
    const current = ring.sign(claims(T0));
    h.seen.length = 0;
    await expect(ring.revoke(current.kid)).rejects.toBeInstanceOf(KeyRevocationRefusedError);
    await expect(ring.revoke(current.kid)).rejects.toThrow(/signs tokens now.*--rotate/);
    expect(ring.verify(current.token)).not.toBeNull();
    expect(ring.sign(claims(T0)).kid).toBe(current.kid);
    expect(h.store.rows.get(current.kid)).toMatchObject({ revokedAt: null, retiredAt: null });
    expect(h.seen).toEqual([]);
    await expect(ring.revoke('k-never')).rejects.toBeInstanceOf(KeyNotFoundError);
  });

  it('revoking the key that signs with rotate: a new key signs at once, the old one is gone', async () => {
    const h = harness();
    const ring = await KeyRing.open(h.store, h.opts);
    const old = ring.sign(claims(T0));
    const pending = await ring.rotate();
    h.clock.now = T0 + 5000;
    h.seen.length = 0;
    const { revoked, replacement } = await ring.revoke(old.kid, { rotate: true });
    expect(replacement).toMatchObject({ status: 'active', activatesAt: T0 + 5000 });
    expect(revoked).toMatchObject({ kid: old.kid, status: 'revoked', retiredAt: T0 + 5000, revokedAt: T0 + 5000 });
    const fresh = ring.sign(claims(h.clock.now));
    expect(fresh.kid).toBe(replacement!.kid);
    expect(ring.verify(old.token)).toBeNull();
    expect(ring.verify(fresh.token)).not.toBeNull();
    // The pending key was superseded: it never signs.
    expect(ring.list().find((k) => k.kid === pending.kid)?.status).toBe('retired');
    expect(kids(ring).sort()).toEqual([replacement!.kid, pending.kid].sort());
    expect(names(h)).toEqual(['key.created', 'key.retired', 'key.retired', 'key.activated', 'key.revoked']);
  });

  it('another key ring on the store sees the revocation at its next refresh', async () => {
    const a = harness();
    const b = harness({ kek: a.opts.kek }, a.store);
    const ringA = await KeyRing.open(a.store, a.opts);
    const ringB = await KeyRing.open(b.store, b.opts);
    const old = ringB.sign(claims(T0));
    a.clock.now = b.clock.now = T0 + 1000;
    const { replacement } = await ringA.revoke(old.kid, { rotate: true });
    expect(ringB.verify(old.token)).not.toBeNull();
    b.seen.length = 0;
    await ringB.refresh();
    expect(ringB.verify(old.token)).toBeNull();
    expect(ringB.jwks().keys.map((k) => k.kid)).toEqual([replacement!.kid]);
    expect(ringB.sign(claims(b.clock.now)).kid).toBe(replacement!.kid);
    expect(ringB.list().find((k) => k.kid === old.kid)?.status).toBe('revoked');
    expect(names(b)).toEqual(['key.activated']);
    // B knew the key as the one signing; it does not retire it again over the revocation.
    await ringB.refresh();
    expect(a.store.rows.get(old.kid)).toMatchObject({ revokedAt: T0 + 1000 });
  });
});

describe('deleting expired keys', () => {
  /**
   * Two key rings on one store. Ring A reads the keys through a view that can be held at an
   * earlier list (`view.held`), as an instance does that listed just before the other deleted.
   */
  async function twoRings() {
    const a = harness();
    const b = harness({ kek: a.opts.kek }, a.store);
    const view: { held?: Awaited<ReturnType<MemoryKeyStore['listKeys']>> } = {};
    const viewOfA = Object.create(a.store) as MemoryKeyStore;
    viewOfA.listKeys = async () => view.held ?? a.store.listKeys();
    const ringA = await KeyRing.open(viewOfA, a.opts);
    return { a, b, ringA, view };
  }

  it('of two key rings on one store, the one whose refresh deletes an expired key announces it, once', async () => {
    const { a, b, ringA, view } = await twoRings();
    const oldKid = ringA.sign(claims(T0)).kid;
    const created = await ringA.rotate();
    a.clock.now = created.activatesAt;
    await ringA.refresh();
    const expiresAt = created.activatesAt + MAX_TTL + CLOCK_SKEW_MS;
    expect(a.store.rows.get(oldKid)).toMatchObject({ expiresAt });
    b.clock.now = created.activatesAt;
    const ringB = await KeyRing.open(b.store, b.opts);

    a.clock.now = b.clock.now = expiresAt;
    a.seen.length = 0;
    b.seen.length = 0;
    view.held = await a.store.listKeys();
    await ringB.refresh();
    await ringA.refresh();
    expect(a.store.rows.has(oldKid)).toBe(false);
    expect(b.seen).toEqual([{ name: 'key.deleted', payload: { kid: oldKid } }]);
    expect(a.seen).toEqual([]);
    delete view.held;
    await ringA.refresh();
    expect(a.seen).toEqual([]);
    expect(ringA.list().map((k) => k.kid)).toEqual([created.kid]);
  });

  it('with clocks apart, each ring announces exactly the keys its own delete removed', async () => {
    const { a, b, ringA, view } = await twoRings();
    const k0 = ringA.sign(claims(T0)).kid;
    // Two rotations: k0 retires when k1 activates, k1 when k2 does; k0 expires first.
    const k1 = await ringA.rotate();
    a.clock.now = k1.activatesAt;
    await ringA.refresh();
    const k2 = await ringA.rotate();
    a.clock.now = k2.activatesAt;
    await ringA.refresh();
    const k0Expires = k1.activatesAt + MAX_TTL + CLOCK_SKEW_MS;
    const k1Expires = k2.activatesAt + MAX_TTL + CLOCK_SKEW_MS;
    b.clock.now = a.clock.now;
    const ringB = await KeyRing.open(b.store, b.opts);

    // A lists both as expired; B, whose clock is behind, deletes only k0 before A deletes.
    a.clock.now = k1Expires;
    b.clock.now = k0Expires;
    view.held = await a.store.listKeys();
    a.seen.length = 0;
    b.seen.length = 0;
    await ringB.refresh();
    await ringA.refresh();
    expect(b.seen).toEqual([{ name: 'key.deleted', payload: { kid: k0 } }]);
    expect(a.seen).toEqual([{ name: 'key.deleted', payload: { kid: k1.kid } }]);
    expect([...a.store.rows.keys()]).toEqual([k2.kid]);
  });
});

describe('automatic rotation', () => {
  const INTERVAL = 30 * DAY;

  it('maintain() rotates when the newest key is older than the interval and none is pending', async () => {
    const h = harness({ rotationIntervalMs: INTERVAL });
    const ring = await KeyRing.open(h.store, h.opts);
    h.clock.now = T0 + INTERVAL - 1;
    await ring.maintain();
    expect(ring.list()).toHaveLength(1);

    h.clock.now = T0 + INTERVAL;
    h.seen.length = 0;
    await ring.maintain();
    expect(names(h)).toEqual(['key.created']);
    const pending = ring.list()[0];
    expect(pending).toMatchObject({ status: 'pending', activatesAt: T0 + INTERVAL + PREPUBLISH });

    // A pending key holds further automatic rotations back, even long after.
    h.clock.now = T0 + INTERVAL + PREPUBLISH - 1;
    await ring.maintain();
    expect(ring.list()).toHaveLength(2);
    h.clock.now = T0 + INTERVAL + PREPUBLISH;
    await ring.maintain();
    expect(ring.list().map((k) => k.status)).toEqual(['active', 'retired']);
  });

  it('does nothing automatically when the interval is 0', async () => {
    const h = harness({ rotationIntervalMs: 0 });
    const ring = await KeyRing.open(h.store, h.opts);
    h.clock.now = T0 + 10 * 365 * DAY;
    await ring.maintain();
    expect(ring.list()).toHaveLength(1);
  });

  it('a failing rotation emits key.rotation_failed and never rejects', async () => {
    const h = harness({ rotationIntervalMs: INTERVAL });
    const ring = await KeyRing.open(h.store, h.opts);
    h.clock.now = T0 + INTERVAL;
    h.store.failNextInsert = true;
    h.seen.length = 0;
    await expect(ring.maintain()).resolves.toBeUndefined();
    expect(h.seen).toEqual([{ name: 'key.rotation_failed', payload: { error: 'database is locked' } }]);
    expect(ring.list()).toHaveLength(1);
    expect(ring.isReady()).toBe(true);
    // The next run tries again.
    await ring.maintain();
    expect(ring.list()).toHaveLength(2);
  });

  it('a failing refresh emits key.rotation_failed and keeps the loaded keys', async () => {
    const h = harness();
    const ring = await KeyRing.open(h.store, h.opts);
    const kid = ring.sign(claims(T0)).kid;
    h.store.listKeys = async () => {
      throw new Error('no connection');
    };
    h.seen.length = 0;
    await ring.maintain();
    expect(h.seen).toEqual([{ name: 'key.rotation_failed', payload: { error: 'no connection' } }]);
    expect(ring.sign(claims(T0)).kid).toBe(kid);
  });

  describe('start() / stop()', () => {
    beforeEach(() => {
      vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    it('runs maintenance every refreshIntervalMs until stopped', async () => {
      const h = harness({ rotationIntervalMs: INTERVAL, refreshIntervalMs: 1000 });
      const ring = await KeyRing.open(h.store, h.opts);
      let lists = 0;
      const listKeys = h.store.listKeys.bind(h.store);
      h.store.listKeys = () => {
        lists++;
        return listKeys();
      };
      ring.start();
      ring.start(); // idempotent
      await vi.advanceTimersByTimeAsync(999);
      expect(lists).toBe(0);
      await vi.advanceTimersByTimeAsync(1);
      expect(lists).toBe(1);
      h.clock.now = T0 + INTERVAL;
      await vi.advanceTimersByTimeAsync(1000);
      expect(lists).toBe(2);
      // stop() waits for the running maintenance (key generation runs off the fake clock).
      await ring.stop();
      expect(ring.list()).toHaveLength(2);
      await vi.advanceTimersByTimeAsync(10_000);
      expect(lists).toBe(2);
    });
  });
});

describe('with the SQLite store', () => {
  it('rotates, persists, expires and verifies against openStorage("sqlite::memory:")', async () => {
    const storage = await openStorage('sqlite::memory:');
    try {
      const h = harness();
      const ring = await KeyRing.open(storage.keys, h.opts);
      const first = ring.sign(claims(T0));
      const next = await ring.rotate();
      h.clock.now = next.activatesAt;
      expect(ring.sign(claims(h.clock.now)).kid).toBe(next.kid);
      await ring.refresh();
      const reopened = await KeyRing.open(storage.keys, h.opts);
      expect(reopened.list()).toEqual(ring.list());
      expect(reopened.list().map((k) => k.status)).toEqual(['active', 'retired']);
      expect(reopened.verify(first.token)).not.toBeNull();
      h.clock.now = next.activatesAt + MAX_TTL + CLOCK_SKEW_MS;
      await reopened.refresh();
      expect(reopened.list().map((k) => k.kid)).toEqual([next.kid]);
      expect(reopened.verify(first.token)).toBeNull();
      expect((await storage.keys.listKeys()).map((k) => k.kid)).toEqual([next.kid]);
      await ring.stop();
      await reopened.stop();
    } finally {
      await storage.close();
    }
  });
});
