// What a request brings for the binding checks of sender-constrained tokens: its absolute URL for
// the DPoP `htu` (RFC 9449 §4.3), and its client certificate (RFC 8705 §3), from the TLS
// connection or, behind a TLS-terminating proxy, from the RFC 9440 Client-Cert header.

import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { SdkOptionsError } from '../shared/errors.js';

export interface RequestBindingOptions {
  /**
   * The origin clients address this API with (`https://orders.example.com`): the scheme and host
   * of the DPoP `htu`. Default: from the connection (TLS or not) and the Host header. Set it
   * behind a proxy, and wherever the Host header may not be what clients used.
   */
  origin?: string;
  /**
   * Addresses of TLS-terminating proxies whose RFC 9440 `Client-Cert` header is believed (exact
   * IP addresses, as the socket reports them). From any other address the header is ignored.
   */
  trustedProxies?: readonly string[];
}

export interface RequestBinding {
  url: string;
  clientCertificate: Uint8Array | undefined;
}

/** ::ffff:127.0.0.1 and 127.0.0.1 are the same peer. */
function normalizeAddress(address: string): string {
  const a = address.toLowerCase();
  return a.startsWith('::ffff:') && a.includes('.') ? a.slice(7) : a;
}

export function checkBindingOptions(options: RequestBindingOptions): { origin: string | undefined; proxies: ReadonlySet<string> } {
  let origin: string | undefined;
  if (options.origin !== undefined) {
    let u: URL;
    try {
      u = new URL(options.origin);
    } catch {
      throw new SdkOptionsError(`origin must be an absolute URL, got ${JSON.stringify(options.origin)}`);
    }
    if ((u.protocol !== 'https:' && u.protocol !== 'http:') || u.pathname !== '/' || u.search !== '' || u.hash !== '') {
      throw new SdkOptionsError('origin must be scheme://host[:port] of this API, without a path');
    }
    origin = u.origin;
  }
  const list = options.trustedProxies ?? [];
  if (!Array.isArray(list) || list.some((a) => typeof a !== 'string' || a === '')) throw new SdkOptionsError('trustedProxies must be IP addresses');
  return { origin, proxies: new Set(list.map(normalizeAddress)) };
}

/** RFC 9440 §2.1: the header is an RFC 8941 Byte Sequence, `:base64 of the DER:`. */
function parseClientCertHeader(value: string | string[] | undefined): Uint8Array | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^\s*:([A-Za-z0-9+/]+={0,2}):\s*$/.exec(value);
  if (m === null) return undefined;
  const der = Buffer.from(m[1]!, 'base64');
  return der.length === 0 ? undefined : der;
}

function socketCertificate(req: IncomingMessage): Uint8Array | undefined {
  const socket = req.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const cert = socket.getPeerCertificate(false);
  return cert !== null && typeof cert === 'object' && Buffer.isBuffer(cert.raw) && cert.raw.length > 0 ? cert.raw : undefined;
}

/** `path` is the request target as received (path and query). */
export function requestBinding(
  req: IncomingMessage,
  path: string,
  config: { origin: string | undefined; proxies: ReadonlySet<string> },
): RequestBinding {
  const tls = typeof (req.socket as Partial<TLSSocket>).getPeerCertificate === 'function';
  const origin = config.origin ?? `${tls ? 'https' : 'http'}://${req.headers.host ?? 'invalid.invalid'}`;
  const peer = req.socket.remoteAddress === undefined ? undefined : normalizeAddress(req.socket.remoteAddress);
  // Only a trusted proxy speaks for the client; its own certificate (if any) is not the client's.
  const clientCertificate = peer !== undefined && config.proxies.has(peer) ? parseClientCertHeader(req.headers['client-cert']) : socketCertificate(req);
  return { url: `${origin}${path.startsWith('/') ? path : `/${path}`}`, clientCertificate };
}
