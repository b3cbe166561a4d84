// RFC 9449 pieces both ends share: the `htu` comparison form (§4.2, §4.3 step 9), the `ath`
// access token hash (§4.2) and the nonce header names (§8, §9).

import { createHash } from 'node:crypto';

export const DPOP_TYP = 'dpop+jwt';
export const DPOP_NONCE_HEADER = 'dpop-nonce';
export const USE_DPOP_NONCE = 'use_dpop_nonce';

/** Asymmetric JWS algorithms only (RFC 9449 §4.2: not `none`, not a MAC). */
export const DPOP_ALGORITHMS = [
  'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512',
] as const;
export type DPoPAlgorithm = (typeof DPOP_ALGORITHMS)[number];

/**
 * §4.2: `htu` is the target URI without query and fragment. Normalised per RFC 3986 §6.2.2-6.2.3
 * (scheme and host lower case, default port dropped, empty path as "/") as the WHATWG URL parser
 * does; undefined when `url` is not an absolute http(s) URL.
 */
export function htuOf(url: string | URL): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') return undefined;
  return `${u.protocol}//${u.host}${u.pathname}`;
}

/** §4.2 `ath`: base64url of the SHA-256 of the ASCII access token. */
export function accessTokenHash(accessToken: string): string {
  return createHash('sha256').update(accessToken, 'ascii').digest('base64url');
}
