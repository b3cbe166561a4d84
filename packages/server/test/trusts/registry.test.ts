// The trust registry's cache (src/trusts/registry.ts): reads served from memory after the first,
// unknown names never remembered, every write and invalidation replacing what is cached and
// telling the listeners, records frozen.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EventBus } from '../../src/observability/events.js';
import { openStorage } from '../../src/storage/open.js';
import type { Storage, TrustStore } from '../../src/storage/types.js';
import { TrustRegistry } from '../../src/trusts/registry.js';

let storage: Storage;
let reads: number;
let registry: TrustRegistry;
let heard: string[];

beforeEach(async () => {
  storage = await openStorage('sqlite::memory:');
  reads = 0;
  const counting: TrustStore = Object.create(storage.trusts) as TrustStore;
  counting.getTrust = (name) => (reads++, storage.trusts.getTrust(name));
  registry = new TrustRegistry(counting, new EventBus(), { now: () => 1_000_000 });
  heard = [];
  registry.onChange((name) => heard.push(name));
});

afterEach(() => storage.close());

describe('TrustRegistry', () => {
  it('serves a trust from memory after the first read; an unknown name is read every time', async () => {
    await storage.trusts.createTrust({
      name: 'a', kind: 'oidc', issuer: 'https://a.example', trustDomain: null, jwksUri: null, jwks: null, caBundle: null,
      allowedPrivateHosts: [], audiences: [], maxTokenLifetime: 3600, singleUseJti: null, createdAt: 1, updatedAt: 1,
    });
    expect((await registry.get('a'))?.issuer).toBe('https://a.example');
    expect((await registry.get('a'))?.issuer).toBe('https://a.example');
    expect(reads).toBe(1);
    expect(Object.isFrozen(await registry.get('a'))).toBe(true);
    expect(await registry.get('nope')).toBeUndefined();
    expect(await registry.get('nope')).toBeUndefined();
    expect(reads).toBe(3);
  });

  it('a write replaces the cached record at once and tells the listeners; invalidate() and clear() drop it', async () => {
    await registry.create({ name: 'b', kind: 'oidc', issuer: 'https://b.example' });
    expect((await registry.get('b'))?.maxTokenLifetime).toBe(86_400);
    expect(reads).toBe(0);
    await registry.update('b', { max_token_lifetime: 120 });
    expect((await registry.get('b'))?.maxTokenLifetime).toBe(120);
    expect(reads).toBe(1); // the update's own read of the stored record
    // Changed under the registry (another instance): the cache holds the old one until told.
    await storage.trusts.updateTrust({ ...(await storage.trusts.getTrust('b'))!, maxTokenLifetime: 60 });
    expect((await registry.get('b'))?.maxTokenLifetime).toBe(120);
    registry.invalidate('b');
    expect((await registry.get('b'))?.maxTokenLifetime).toBe(60);
    await storage.trusts.updateTrust({ ...(await storage.trusts.getTrust('b'))!, maxTokenLifetime: 90 });
    registry.clear();
    expect((await registry.get('b'))?.maxTokenLifetime).toBe(90);
    await registry.delete('b');
    expect(await registry.get('b')).toBeUndefined();
    expect(heard).toEqual(['b', 'b', 'b', '', 'b']);
  });
});
