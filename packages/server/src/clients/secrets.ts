// Client secrets (RFC 6749 §2.3.1): server-generated, 256 bits of randomness, a recognisable
// prefix for secret scanners, stored only as a SHA-256 digest and compared in constant time.
//
// Why not bcrypt: these secrets are machine-generated with 256 bits of entropy, so a slow hash
// adds nothing against guessing and would cap the token endpoint at a few hundred requests a second.

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { sameBytes, sha256 } from '../ground/bytes.js';
import { CLIENT_ID_PREFIX, SECRET_PREFIX } from '../ground/client-id.js';
import type { ClientRecord, ClientSecretRecord } from '../ground/records.js';

/** A new client secret: the prefix and 32 random bytes as base64url. */
export function generateClientSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64url');
}

/** A new client_id: the prefix and 12 random bytes as base64url. */
export function generateClientId(): string {
  return CLIENT_ID_PREFIX + randomBytes(12).toString('base64url');
}

export function secretDigest(secret: string): string {
  return sha256(secret).toString('hex');
}

const DUMMY_DIGEST = Buffer.alloc(32);

/** Stored digests decoded once per secret record (the registry replaces records on every change). */
const decodedDigests = new WeakMap<ClientSecretRecord, Buffer>();

function storedDigest(secret: ClientSecretRecord): Buffer {
  let bytes = decodedDigests.get(secret);
  if (bytes === undefined) {
    bytes = Buffer.from(secret.digest, 'hex');
    decodedDigests.set(secret, bytes);
  }
  return bytes;
}

/**
 * The secret of the client that `presented` matches and that has not expired at `now`, or
 * undefined. Every stored digest is compared, in constant time, whether or not an earlier one
 * matched; a missing client is compared against a dummy so that unknown clients take the same time.
 */
export function matchClientSecret(client: ClientRecord | undefined, presented: string, now: number): ClientSecretRecord | undefined {
  const presentedDigest = sha256(presented);
  let matched: ClientSecretRecord | undefined;
  if (!client || client.secrets.length === 0) {
    timingSafeEqual(presentedDigest, DUMMY_DIGEST);
    return undefined;
  }
  for (const s of client.secrets) {
    const stored = storedDigest(s);
    const live = s.expiresAt === null || s.expiresAt > now;
    if (sameBytes(presentedDigest, stored) && live) matched = s;
  }
  return matched;
}

/** True when `presented` matches a secret of the client that has not expired at `now` (matchClientSecret). */
export function verifyClientSecret(client: ClientRecord | undefined, presented: string, now: number): boolean {
  return matchClientSecret(client, presented, now) !== undefined;
}
