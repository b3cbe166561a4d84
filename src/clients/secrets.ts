// Client secrets (RFC 6749 §2.3.1): server-generated, 256 bits of randomness, a recognisable
// prefix for secret scanners, stored only as a SHA-256 digest and compared in constant time.
//
// Why not bcrypt: these secrets are machine-generated with 256 bits of entropy, so a slow hash
// adds nothing against guessing and would cap the token endpoint at a few hundred requests a second.

import * as crypto from 'node:crypto';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { ClientRecord, ClientSecretRecord } from '../storage/types.js';

export const SECRET_PREFIX = 'm2m_cs_';
export const CLIENT_ID_PREFIX = 'cl_';

/** A new client secret: the prefix and 32 random bytes as base64url. */
export function generateClientSecret(): string {
  return SECRET_PREFIX + randomBytes(32).toString('base64url');
}

/** A new client_id: the prefix and 12 random bytes as base64url. */
export function generateClientId(): string {
  return CLIENT_ID_PREFIX + randomBytes(12).toString('base64url');
}

const ISSUED_CLIENT_ID = new RegExp(`^${CLIENT_ID_PREFIX}[A-Za-z0-9_-]{16}$`);

/**
 * True when `value` has the shape of the client_ids generateClientId() makes. Only such values
 * are logged, labelled or counted per client: anything else may be a secret sent in the wrong
 * field, or garbage a caller could use to mint log lines, metric labels or limiter keys.
 */
export function hasIssuedClientIdShape(value: string): boolean {
  return ISSUED_CLIENT_ID.test(value);
}

export function secretDigest(secret: string): string {
  return sha256(secret).toString('hex');
}

/** crypto.hash (Node 20.12 and later): a one-shot digest, about half the time of createHash. */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, outputEncoding: 'buffer') => Buffer }).hash;

export function sha256(value: string): Buffer {
  return oneShot ? oneShot('sha256', value, 'buffer') : createHash('sha256').update(value, 'utf8').digest();
}

/** True when `a` and `b` hold the same bytes, compared in constant time (only a length mismatch answers early). */
export function sameBytes(a: Buffer, b: Buffer): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * `value`'s bytes (UTF-8 for a string) in memory of their own, for keeping: a small Buffer.from()
 * or a slice of a socket read shares an 8 KiB pool slab, which it would keep alive.
 */
export function ownCopy(value: Buffer | string): Buffer {
  const bytes = Buffer.allocUnsafeSlow(typeof value === 'string' ? Buffer.byteLength(value, 'utf8') : value.length);
  if (typeof value === 'string') bytes.write(value, 'utf8');
  else value.copy(bytes);
  return bytes;
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
