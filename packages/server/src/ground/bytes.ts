// Byte helpers every floor shares: SHA-256, a constant-time comparison, and a copy that owns its memory.

import * as crypto from 'node:crypto';
import { createHash, timingSafeEqual } from 'node:crypto';

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
