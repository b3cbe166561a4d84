// Wrong client secrets that are wrong by construction, never by luck.

import { SECRET_PREFIX } from '../../src/ground/client-id.js';

const BASE64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

/**
 * `secret` with the first character after `m2m_cs_` moved 32 places along the base64url alphabet.
 * Of the 43 characters that encode the 32 random bytes, the first 42 each carry 6 full bits and the
 * last only 4 (so replacing the last one by `A` gives the same secret back one time in sixteen);
 * the first one always changes, so the result differs from `secret` in every run, with the same
 * length and alphabet (it still reaches the digest comparison rather than a shape check).
 */
export function wrongSecret(secret: string): string {
  if (!secret.startsWith(SECRET_PREFIX) || secret.length <= SECRET_PREFIX.length) throw new Error('not a client secret');
  const at = SECRET_PREFIX.length;
  const index = BASE64URL.indexOf(secret[at]!);
  if (index < 0) throw new Error('not a base64url client secret');
  return secret.slice(0, at) + BASE64URL[(index + 32) % 64] + secret.slice(at + 1);
}
