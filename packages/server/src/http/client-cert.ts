// The client certificate of a request (RFC 8705): on the mTLS listener the one the TLS handshake
// proved, read once per connection; behind a TLS-terminating proxy the RFC 9440 `Client-Cert`
// header, believed only when the connection comes from a proxy of M2M_AUTH_TRUST_PROXY (anyone
// else could name any certificate) and ignored otherwise.

import { X509Certificate } from 'node:crypto';
import { BlockList, isIP } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { TrustProxy } from '../config/trust-proxy.js';

export const CLIENT_CERT_HEADER = 'client-cert';

/** What the request says about its client certificate, as the core reads it (OAuthRequest). */
export interface PresentedCertificate {
  clientCertificate?: X509Certificate;
  clientCertificateProblem?: string;
}

/** No certificate: one object for every request without one. */
export const NO_CERTIFICATE: PresentedCertificate = Object.freeze({});

/** proxy-addr's named ranges, as M2M_AUTH_TRUST_PROXY accepts them. */
const NAMED_RANGES: Record<string, Array<[string, number, 'ipv4' | 'ipv6']>> = {
  loopback: [['127.0.0.0', 8, 'ipv4'], ['::1', 128, 'ipv6']],
  linklocal: [['169.254.0.0', 16, 'ipv4'], ['fe80::', 10, 'ipv6']],
  uniquelocal: [['10.0.0.0', 8, 'ipv4'], ['172.16.0.0', 12, 'ipv4'], ['192.168.0.0', 16, 'ipv4'], ['fc00::', 7, 'ipv6']],
};

function family(address: string): 'ipv4' | 'ipv6' {
  return isIP(address) === 6 ? 'ipv6' : 'ipv4';
}

/** An IPv4-mapped IPv6 address (a dual-stack socket's peer) as the IPv4 address it is. */
function unmapped(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1]! : address;
}

/**
 * Whether a connection from `address` comes from a trusted proxy: with a hop count every peer is
 * the first proxy; with a list, the peer must be in it; with none, no peer is.
 */
export function trustedPeer(trust: TrustProxy): (address: string | undefined) => boolean {
  if (trust === false) return () => false;
  if (typeof trust === 'number') return (address) => trust > 0 && address !== undefined;
  const list = new BlockList();
  for (const entry of trust) {
    const named = NAMED_RANGES[entry];
    if (named) {
      for (const [net, bits, fam] of named) list.addSubnet(net, bits, fam);
      continue;
    }
    const slash = entry.indexOf('/');
    if (slash === -1) list.addAddress(unmapped(entry), family(unmapped(entry)));
    else list.addSubnet(entry.slice(0, slash), Number(entry.slice(slash + 1)), family(entry.slice(0, slash)));
  }
  return (address) => {
    if (address === undefined || isIP(address) === 0) return false;
    const a = unmapped(address);
    return list.check(a, family(a));
  };
}

/** Longest Client-Cert header read: a certificate of 12 KiB of DER in base64, with room. */
const MAX_HEADER_LENGTH = 16_384;

/**
 * RFC 9440 §2.2: the header is an RFC 8941 byte sequence, `:` base64 of the DER `:`. Returns the
 * certificate, or why the header is not one.
 */
export function parseClientCertHeader(value: string | string[] | undefined): PresentedCertificate {
  if (value === undefined) return NO_CERTIFICATE;
  if (Array.isArray(value)) return { clientCertificateProblem: 'more than one Client-Cert header' };
  const text = value.trim();
  if (text.length > MAX_HEADER_LENGTH) return { clientCertificateProblem: 'Client-Cert header is too long' };
  // RFC 8941 §3.3.5: base64 (RFC 4648 §4, padded) between colons.
  const m = /^:([A-Za-z0-9+/]*={0,2}):$/.exec(text);
  if (!m || m[1]!.length % 4 !== 0 || m[1]!.length === 0) return { clientCertificateProblem: 'Client-Cert header is not a structured-field byte sequence' };
  try {
    return { clientCertificate: new X509Certificate(Buffer.from(m[1]!, 'base64')) };
  } catch {
    return { clientCertificateProblem: 'Client-Cert header does not hold a DER certificate' };
  }
}

/**
 * The certificates of TLS connections, read once each: the same object for every request of a
 * connection (HTTP/1.1 keep-alive, or the streams of an HTTP/2 session).
 */
export class PeerCertificates {
  readonly #byConnection = new WeakMap<object, PresentedCertificate>();

  /** `connection`: the socket, or the HTTP/2 session; `socket`: what reads the peer certificate (for HTTP/2 its proxy of the TLS socket). */
  of(connection: object | undefined, socket: Pick<TLSSocket, 'getPeerX509Certificate'> | undefined): PresentedCertificate {
    if (connection === undefined || socket === undefined) return NO_CERTIFICATE;
    let presented = this.#byConnection.get(connection);
    if (presented === undefined) {
      let cert: X509Certificate | undefined;
      try {
        cert = typeof socket.getPeerX509Certificate === 'function' ? socket.getPeerX509Certificate() : undefined;
      } catch {
        cert = undefined;
      }
      presented = cert === undefined ? NO_CERTIFICATE : { clientCertificate: cert };
      this.#byConnection.set(connection, presented);
    }
    return presented;
  }
}

/**
 * With no trusted proxy: a function that logs once when a request carries Client-Cert from an
 * address that may not send it (the header is ignored: the request has no certificate).
 */
export function untrustedClientCertWarning(logger: Logger): (address: string | undefined) => void {
  let warned = false;
  return (address) => {
    if (warned) return;
    warned = true;
    logger.warn({ ip: address }, 'a request carries Client-Cert from an address that is not a trusted proxy (M2M_AUTH_TRUST_PROXY): the header is ignored');
  };
}
