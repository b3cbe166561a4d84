// The source address behind a load balancer (M2M_AUTH_TRUST_PROXY), and the address a limit is
// keyed on. Off by default: X-Forwarded-For is then ignored, since any client can send one, and a
// forged address would let it step around the failed-authentication throttle.

import { isIP } from 'node:net';
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from 'pino';
import { ConfigError } from '../oauth/errors.js';

/** M2M_AUTH_TRUST_PROXY parsed: off, a hop count, or the proxies' addresses and CIDRs. */
export type TrustProxy = false | number | string[];

/** What Fastify's `trustProxy` option gets for it. */
export type FastifyTrustProxy = false | string[] | ((address: string, hop: number) => boolean);

/**
 * Fastify 5 ignores X-Forwarded-For for a numeric trustProxy (it cannot check the peer), so a hop
 * count becomes proxy-addr's function form: the socket peer is hop 0, then X-Forwarded-For from the
 * right; the first untrusted one is the client.
 */
export function fastifyTrustProxy(trust: TrustProxy): FastifyTrustProxy {
  if (typeof trust !== 'number') return trust;
  const hops = trust;
  return hops === 0 ? false : (_address, hop) => hop < hops;
}

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

/**
 * The key an address is limited by: IPv4 as it is (also when IPv4-mapped), and IPv6 by its /64,
 * since one host usually holds a whole /64 and could otherwise try from 2^64 addresses.
 */
export function addressKey(ip: string): string {
  if (ip.indexOf(':') === -1) return ip;
  if (ip.startsWith('::ffff:') && ip.indexOf('.') !== -1) return ip.slice(7);
  const zone = ip.indexOf('%');
  const bare = zone === -1 ? ip : ip.slice(0, zone);
  const gap = bare.indexOf('::');
  let groups: string[];
  if (gap === -1) {
    groups = bare.split(':');
  } else {
    const head = gap === 0 ? [] : bare.slice(0, gap).split(':');
    const tail = gap + 2 === bare.length ? [] : bare.slice(gap + 2).split(':');
    groups = [...head, ...Array<string>(Math.max(0, 8 - head.length - tail.length)).fill('0'), ...tail];
  }
  const prefix = groups.slice(0, 4).map((g) => (g.replace(/^0+/, '') || '0').toLowerCase());
  return `${prefix.join(':')}::/64`;
}

/**
 * With no trusted proxy: a function that logs once when a request carries X-Forwarded-For, the
 * sign of a proxy in front whose address every client then shares (and so shares one
 * failed-authentication allowance).
 */
export function forwardedForWarning(logger: Logger): (headers: IncomingHttpHeaders) => void {
  let warned = false;
  return (headers) => {
    if (warned || headers['x-forwarded-for'] === undefined) return;
    warned = true;
    logger.warn('requests carry X-Forwarded-For but M2M_AUTH_TRUST_PROXY is not set: limits and logs use the proxy\'s address, which every client behind it shares');
  };
}
