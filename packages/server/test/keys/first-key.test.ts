// Instances starting together on an empty database store one first signing key between them.

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyRing } from '../../src/keys/keyring.js';
import { EventBus } from '../../src/observability/events.js';
import { openStorage } from '../../src/storage/open.js';

describe('first key', () => {
  it('three key rings opening at once on an empty store end up with one key, and all sign with it', async () => {
    const storage = await openStorage('sqlite::memory:');
    try {
      const opts = {
        kek: randomBytes(32), alg: 'ES256' as const, prepublishMs: 3_600_000, rotationIntervalMs: 30 * 86_400_000,
        maxTokenTtlMs: 86_400_000, events: new EventBus(),
      };
      const rings = await Promise.all([1, 2, 3].map(() => KeyRing.open(storage.keys, opts)));
      const keys = await storage.keys.listKeys();
      expect(keys).toHaveLength(1);
      for (const ring of rings) expect(ring.sign({ a: 1 }).kid).toBe(keys[0]!.kid);
      await Promise.all(rings.map((r) => r.stop()));
    } finally {
      await storage.close();
    }
  });
});
