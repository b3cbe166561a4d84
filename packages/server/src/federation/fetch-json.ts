// Fetching a trusted issuer's documents (OIDC discovery, JWKS, SPIFFE bundle) without letting the
// issuer's name take the server anywhere: https only, a timeout, a size limit, no redirect to
// another origin, and no private, loopback or link-local address unless the trust names that host.
// The address is checked where the connection is made (the socket's own DNS lookup), so a name
// that resolves to a public address when checked and a private one when connected (DNS
// rebinding) cannot get through.

import { lookup as dnsLookup, type LookupAddress, type LookupOptions } from 'node:dns';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { BlockList, isIP } from 'node:net';

/** What a fetch may do; the trust gives the hosts and CA, the server the loopback switch. */
export interface FetchPolicy {
  /** Hosts (exact names or IP literals) allowed to resolve to a private, loopback or link-local address. */
  allowedPrivateHosts: readonly string[];
  /** PEM CA bundle used instead of the system CAs; undefined = the system CAs. */
  ca?: string;
  /** Plain http to a loopback host (M2M_AUTH_UNSAFE_FEDERATION_HTTP_LOOPBACK, tests). */
  allowHttpLoopback: boolean;
  timeoutMs: number;
  maxBytes: number;
}

export const DEFAULT_FETCH_TIMEOUT_MS = 5_000;
/** A JWKS is a few kilobytes; a SPIFFE bundle of a large federation some tens. */
export const DEFAULT_FETCH_MAX_BYTES = 256 * 1024;
const MAX_REDIRECTS = 3;

export class FetchError extends Error {}

export interface FetchedJson {
  body: unknown;
  /** Cache-Control max-age in seconds; 0 for no-store/no-cache; undefined when absent. */
  maxAgeSeconds: number | undefined;
}

// Every range that is not the public internet: RFC 1918, loopback, link-local (cloud metadata
// at 169.254.169.254), CGNAT, "this network", multicast and reserved, and their IPv6 kin.
const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) PRIVATE.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8], ['64:ff9b::', 96],
] as const) PRIVATE.addSubnet(net, prefix, 'ipv6');

/** True for an address that is not on the public internet (IPv4-mapped IPv6 as its IPv4). */
export function isPrivateAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return PRIVATE.check(mapped[1]!, 'ipv4');
  const family = isIP(address);
  if (family === 0) return true;
  return PRIVATE.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

function bareHost(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname.toLowerCase();
}

function isLoopbackHost(host: string): boolean {
  if (host === 'localhost') return true;
  return isIP(host) !== 0 && (host === '::1' || /^127\./.test(host) || /^::ffff:127\./i.test(host));
}

/** Why `url` may not be fetched at all, or undefined. */
export function refusedUrl(url: URL, policy: FetchPolicy): string | undefined {
  const host = bareHost(url.hostname);
  if (url.protocol === 'http:') {
    if (!(policy.allowHttpLoopback && isLoopbackHost(host))) return 'not an https URL';
  } else if (url.protocol !== 'https:') {
    return 'not an https URL';
  }
  if (url.username !== '' || url.password !== '') return 'the URL carries credentials';
  // An IP literal is connected to without a lookup: check it here.
  if (isIP(host) !== 0 && isPrivateAddress(host) && !policy.allowedPrivateHosts.includes(host)) {
    return `${host} is a private, loopback or link-local address the trust does not allow`;
  }
  return undefined;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/** The socket's lookup: the addresses a name resolves to, refused when private and not allowed. */
function guardedLookup(allowed: boolean) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    const family = options.family === 'IPv4' ? 4 : options.family === 'IPv6' ? 6 : options.family ?? 0;
    dnsLookup(hostname, { all: true, family }, (err, addresses) => {
      if (err) return callback(err, []);
      const usable = allowed ? addresses : addresses.filter((a) => !isPrivateAddress(a.address));
      if (usable.length === 0) {
        const e = new FetchError(`${hostname} resolves to a private, loopback or link-local address the trust does not allow`) as NodeJS.ErrnoException;
        e.code = 'EPRIVATEADDRESS';
        return callback(e, []);
      }
      if (options.all) return callback(null, usable);
      callback(null, usable[0]!.address, usable[0]!.family);
    });
  };
}

function maxAge(cacheControl: string | undefined): number | undefined {
  if (cacheControl === undefined) return undefined;
  if (/(^|,)\s*(no-store|no-cache)\s*(,|$)/i.test(cacheControl)) return 0;
  const m = /(^|,)\s*max-age\s*=\s*"?(\d{1,10})"?\s*(,|$)/i.exec(cacheControl);
  return m ? Number(m[2]) : undefined;
}

interface Answer {
  status: number;
  location: string | undefined;
  cacheControl: string | undefined;
  body: Buffer;
}

function once(url: URL, policy: FetchPolicy, deadline: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const host = bareHost(url.hostname);
    const allowed = policy.allowedPrivateHosts.includes(host);
    const options = {
      method: 'GET',
      headers: { accept: 'application/json, application/jwk-set+json' },
      lookup: guardedLookup(allowed),
      agent: false as const,
      ...(url.protocol === 'https:' && policy.ca !== undefined && { ca: policy.ca }),
    };
    const timer = setTimeout(() => {
      req.destroy(new FetchError(`no complete answer within ${policy.timeoutMs} ms`));
    }, Math.max(1, deadline - Date.now()));
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, options, (res: IncomingMessage) => {
      const status = res.statusCode ?? 0;
      const header = (name: string): string | undefined => {
        const v = res.headers[name];
        return Array.isArray(v) ? v.join(',') : v;
      };
      if (status !== 200) {
        res.resume();
        clearTimeout(timer);
        resolve({ status, location: header('location'), cacheControl: undefined, body: Buffer.alloc(0) });
        return;
      }
      const declared = Number(header('content-length'));
      if (Number.isFinite(declared) && declared > policy.maxBytes) {
        req.destroy(new FetchError(`the answer is ${declared} bytes, over the limit of ${policy.maxBytes}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > policy.maxBytes) {
          req.destroy(new FetchError(`the answer is over the limit of ${policy.maxBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status, location: undefined, cacheControl: header('cache-control'), body: Buffer.concat(chunks) });
      });
      res.on('error', (err) => req.destroy(err));
    });
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err instanceof FetchError ? err : new FetchError((err as NodeJS.ErrnoException).code === 'EPRIVATEADDRESS' ? err.message : `${(err as NodeJS.ErrnoException).code ?? 'error'}: ${err.message}`));
    });
    req.end();
  });
}

/**
 * GETs `url` as JSON under `policy`. A redirect is followed only within the same origin (scheme,
 * host and port), at most three times. Throws FetchError with a reason fit for a log line.
 */
export async function fetchJson(url: string, policy: FetchPolicy): Promise<FetchedJson> {
  let current: URL;
  try {
    current = new URL(url);
  } catch {
    throw new FetchError('not a URL');
  }
  const deadline = Date.now() + policy.timeoutMs;
  for (let hop = 0; ; hop++) {
    const refused = refusedUrl(current, policy);
    if (refused !== undefined) throw new FetchError(refused);
    const answer = await once(current, policy, deadline);
    if (answer.status >= 300 && answer.status < 400 && answer.location !== undefined) {
      let next: URL;
      try {
        next = new URL(answer.location, current);
      } catch {
        throw new FetchError(`redirect to an invalid location (HTTP ${answer.status})`);
      }
      if (next.origin !== current.origin) throw new FetchError(`redirect to another origin (${next.origin}) refused`);
      if (hop >= MAX_REDIRECTS) throw new FetchError('too many redirects');
      current = next;
      continue;
    }
    if (answer.status !== 200) throw new FetchError(`HTTP ${answer.status}`);
    try {
      return { body: JSON.parse(answer.body.toString('utf8')) as unknown, maxAgeSeconds: maxAge(answer.cacheControl) };
    } catch {
      throw new FetchError('the answer is not JSON');
    }
  }
}
