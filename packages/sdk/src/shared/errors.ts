// Errors both SDK entry points share: a mistake in the options, and a discovery document (RFC 8414)
// that cannot be fetched or does not describe the configured issuer.

/** A programmer mistake in the options given to an SDK factory; thrown synchronously. */
export class SdkOptionsError extends Error {
  readonly code = 'SDK_OPTIONS_INVALID';
  override readonly name = 'SdkOptionsError';
}

export type DiscoveryErrorCode =
  /** No HTTP answer: connection refused or reset, DNS failure, timeout. */
  | 'unreachable'
  /** An HTTP answer other than 200. */
  | 'http_status'
  /** The body is not a metadata document, or an endpoint the SDK needs is missing or not a URL. */
  | 'invalid_metadata'
  /** RFC 8414 §3.3: the document's `issuer` is not the configured issuer. */
  | 'issuer_mismatch';

export class DiscoveryError extends Error {
  override readonly name = 'DiscoveryError';
  readonly code: DiscoveryErrorCode;
  /** The HTTP status, for `http_status`. */
  readonly status: number | undefined;

  constructor(code: DiscoveryErrorCode, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status;
  }

  /** True when asking again later may succeed (no answer, or a 5xx). */
  get transient(): boolean {
    return this.code === 'unreachable' || (this.code === 'http_status' && (this.status ?? 0) >= 500);
  }
}
