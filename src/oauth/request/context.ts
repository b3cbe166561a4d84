// The typed context every endpoint step receives: what the HTTP layer extracted, nothing else.

import type { FormParams } from './form.js';

export interface OAuthRequest {
  /** The parsed form body (RFC 6749 §3.2); duplicates not yet rejected. */
  params: FormParams;
  /** The raw Authorization header, if any. */
  authorization: string | undefined;
  /** The source address. */
  ip: string;
  requestId: string;
  /**
   * Stays the same object for every request of one client connection (the socket), so that a
   * step may remember what it verified on it (src/oauth/client-auth/authenticate.ts); absent when
   * the HTTP layer has none to give.
   */
  connection?: object;
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
