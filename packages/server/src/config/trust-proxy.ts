// M2M_AUTH_TRUST_PROXY parsed: which proxies may name the source address in X-Forwarded-For.
// Off by default: X-Forwarded-For is then ignored, since any client can send one, and a forged
// address would let it step around the failed-authentication throttle.

import { isIP } from 'node:net';
import { ConfigError } from '../ground/errors.js';

/** M2M_AUTH_TRUST_PROXY parsed: off, a hop count, or the proxies' addresses and CIDRs. */
export type TrustProxy = false | number | string[];

// proxy-addr's names for the usual private ranges.
const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

function validEntry(entry: string): boolean {
  if (NAMED_RANGES.has(entry)) return true;
  const slash = entry.indexOf('/');
  if (slash === -1) return isIP(entry) !== 0;
  const family = isIP(entry.slice(0, slash));
  const bits = entry.slice(slash + 1);
  if (family === 0 || !/^\d{1,3}$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}

/**
 * Parses M2M_AUTH_TRUST_PROXY: empty (off); a number of proxy hops in front of the server (only
 * sound when the listener can be reached through those proxies alone); or a comma-separated list
 * of the proxies' addresses and CIDRs (or `loopback`, `linklocal`, `uniquelocal`). `true` is
 * refused: trusting every sender trusts a forged X-Forwarded-For.
 */
export function parseTrustProxy(raw: string): TrustProxy {
  const value = raw.trim();
  if (value === '' || value === 'false' || value === '0') return false;
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    if (hops > 100) throw new ConfigError('CONFIG_INVALID', `M2M_AUTH_TRUST_PROXY hop count must be at most 100, got ${hops}`);
    return hops;
  }
  if (value === 'true') {
    throw new ConfigError('CONFIG_INVALID', 'M2M_AUTH_TRUST_PROXY=true would trust a forged X-Forwarded-For from anyone: name the proxies (addresses or CIDRs) or give a hop count');
  }
  const entries = value.split(',').map((e) => e.trim()).filter((e) => e !== '');
  const bad = entries.find((e) => !validEntry(e));
  if (bad !== undefined) {
    throw new ConfigError('CONFIG_INVALID', `M2M_AUTH_TRUST_PROXY must be a hop count or a list of addresses and CIDRs, got "${bad}"`);
  }
  return entries;
}
