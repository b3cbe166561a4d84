// The error of a failed token request: RFC 6749 §5.2 error responses, and the failures around them.

/**
 * `error` is the RFC 6749 §5.2 code the server answered (`invalid_client`, `invalid_scope`, ...),
 * or one of the SDK's own: `server_error` for a 5xx without an error body, `network_error` when no
 * HTTP answer came, `invalid_response` when the answer is not an RFC 6749 response,
 * `platform_token_unavailable` when the platform token could not be read (missing or empty file,
 * the function failed; its message names the file, never the token).
 */
export class TokenRequestError extends Error {
  override readonly name = 'TokenRequestError';
  readonly error: string;
  readonly error_description: string | undefined;
  /** The HTTP status of the last answer; undefined for `network_error`. */
  readonly status: number | undefined;
  /** How long the server asked the client to wait before trying again (its Retry-After), when it said. */
  readonly retryAfterMs: number | undefined;

  constructor(
    error: string,
    options: { error_description?: string | undefined; status?: number | undefined; retryAfterMs?: number | undefined; cause?: unknown } = {},
  ) {
    const where = options.status === undefined ? '' : ` (HTTP ${options.status})`;
    const description = options.error_description === undefined ? '' : `: ${options.error_description}`;
    super(`token request failed${where}: ${error}${description}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.error = error;
    this.error_description = options.error_description;
    this.status = options.status;
    this.retryAfterMs = options.retryAfterMs;
  }

  /** True when the same request may succeed later: no answer, a 5xx, a 429 (too many requests), or no platform token yet. Never for another 4xx. */
  get transient(): boolean {
    return this.error === 'network_error' || this.error === 'platform_token_unavailable' || (this.status !== undefined && (this.status >= 500 || this.status === 429));
  }
}
