// The typed context every endpoint step receives: what the HTTP layer extracted, and the binding
// an earlier step of the token endpoint found the request proves.

import type { X509Certificate } from 'node:crypto';
import type { TokenBinding } from './binding.js';

export interface OAuthRequest {
  /** The Content-Type header, if any. */
  contentType: string | undefined;
  /** The request body as read (RFC 6749 §3.2: a form), undefined when there was none. */
  body: Buffer | undefined;
  /** The raw Authorization header, if any. */
  authorization: string | undefined;
  /** The source address. */
  ip: string;
  requestId: string;
  /**
   * The client certificate of the request (RFC 8705): the one the TLS handshake of the mTLS
   * listener proved, or the one a trusted proxy passed in Client-Cert (RFC 9440); absent when none.
   */
  clientCertificate?: X509Certificate;
  /** Why a Client-Cert header from a trusted proxy could not be read (for the log); absent when it could. */
  clientCertificateProblem?: string;
  /** The `DPoP` header (RFC 9449 §4.1): a string, or every value when it was sent more than once. */
  dpop?: string | string[] | undefined;
  /**
   * The key or certificate the request proved possession of (./binding.ts): set by the
   * token endpoint's binding step (a DPoP proof), or by the listener for a verified client
   * certificate; the issue step writes it into the token as `cnf`.
   */
  binding?: TokenBinding | undefined;
}

/** What an endpoint hands back to the HTTP layer. */
export interface OAuthResponse {
  status: number;
  headers: Record<string, string>;
  /** Already-serialised JSON. */
  body: string;
}

export const NO_STORE: Readonly<Record<string, string>> = Object.freeze({
  'cache-control': 'no-store',
  pragma: 'no-cache',
});

/** The headers of every OAuth JSON answer (RFC 6749 §5.1, RFC 7662 §2.2). */
export const JSON_NO_STORE: Readonly<Record<string, string>> = Object.freeze({
  ...NO_STORE,
  'content-type': 'application/json; charset=utf-8',
});
