// The server's error types, each with a closed set of codes: OAuthError, the RFC 6749 §5.2 error
// responses (plus RFC 8707 §2 invalid_target, RFC 7009 §2.2.1 unsupported_token_type and RFC 9449
// §12.2 invalid_dpop_proof and use_dpop_nonce) and the
// one function that writes its body; ConfigError, configuration and programmer mistakes.

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'unsupported_token_type'
  | 'invalid_dpop_proof'
  | 'use_dpop_nonce'
  | 'server_error'
  | 'temporarily_unavailable';

const DEFAULT_STATUS: Record<OAuthErrorCode, number> = {
  invalid_request: 400,
  invalid_client: 401,
  invalid_grant: 400,
  unauthorized_client: 400,
  unsupported_grant_type: 400,
  invalid_scope: 400,
  invalid_target: 400,
  unsupported_token_type: 400,
  invalid_dpop_proof: 400,
  use_dpop_nonce: 400,
  server_error: 500,
  temporarily_unavailable: 503,
};

export interface OAuthErrorOptions {
  /** Private detail: reaches logs, never the response body. */
  detail?: string;
  /** The client the error was raised for, when known and of our shape (logs, audit, metrics). */
  clientId?: string;
  cause?: unknown;
  status?: number;
  headers?: Record<string, string>;
}

/**
 * An error the client is told about. `error` and `description` are public words sent in the
 * body; `detail` and `cause` are private and only reach logs.
 */
export class OAuthError extends Error {
  readonly error: OAuthErrorCode;
  readonly description: string;
  readonly status: number;
  readonly detail: string | undefined;
  readonly headers: Record<string, string>;
  /** The client the error was raised for, when known (logs, audit, metrics). */
  readonly clientId: string | undefined;

  constructor(error: OAuthErrorCode, description: string, options: OAuthErrorOptions = {}) {
    // A protocol error is an expected answer, not a bug: skip the stack capture (about 4 µs),
    // which bad-input floods would otherwise pay on every request.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(description, options.cause === undefined ? undefined : { cause: options.cause });
    Error.stackTraceLimit = limit;
    this.name = 'OAuthError';
    this.error = error;
    this.description = description;
    this.status = options.status ?? DEFAULT_STATUS[error];
    this.detail = options.detail;
    this.headers = options.headers ?? {};
    this.clientId = options.clientId;
  }
}

/** What a client is told to wait before retrying while storage is unavailable. */
export const RETRY_AFTER_SECONDS = 5;

/** The 503 an OAuth endpoint answers while it cannot rely on storage (RFC 6749 §5.2). */
export function temporarilyUnavailable(detail: string, cause?: unknown): OAuthError {
  return new OAuthError('temporarily_unavailable', 'The authorization server is temporarily unavailable; retry later.', {
    status: 503,
    detail,
    headers: { 'retry-after': String(RETRY_AFTER_SECONDS) },
    ...(cause !== undefined && { cause }),
  });
}

export interface OAuthErrorBody {
  error: OAuthErrorCode;
  error_description: string;
}

/** The public body for any thrown value: OAuthErrors keep their words, anything else is server_error. */
export function errorBody(err: unknown): { status: number; body: OAuthErrorBody; headers: Record<string, string> } {
  if (err instanceof OAuthError) {
    return {
      status: err.status,
      body: { error: err.error, error_description: err.description },
      headers: err.headers,
    };
  }
  return {
    status: 500,
    body: { error: 'server_error', error_description: 'The server encountered an unexpected condition.' },
    headers: {},
  };
}

/** Every ConfigError code, and what it means (one table, as fastify's lib/errors.js keeps its codes). */
export const CONFIG_ERROR_CODES = Object.freeze({
  CONFIG_INVALID: 'a configuration value (environment, flag or database URL) is invalid',
  DATABASE_EXISTS: '--init would create a new embedded database where one exists',
  DATABASE_MISSING: 'the embedded database is missing where files of an earlier start show it existed',
  ADMIN_TOKEN_INVALID: 'the admin token (configured or in its file) is too short',
  KEK_INVALID: 'the key-encryption key is malformed or its file cannot be used',
  KEY_DECRYPT_FAILED: 'a stored signing key does not decrypt with the key-encryption key',
  KEY_INVALID: 'a signing key is malformed or does not fit its algorithm',
  KEYRING_NOT_READY: 'no signing key is loaded',
  ROTATE_INVALID: 'a key rotation was asked with an invalid activation time',
  SIGNING_ALG_INVALID: 'the signing algorithm is not one this server signs with',
  TLS_FILE_UNREADABLE: 'a TLS certificate or key file cannot be read',
  TLS_INVALID: 'the TLS certificate or key is not PEM, or they do not belong together',
});

export type ConfigErrorCode = keyof typeof CONFIG_ERROR_CODES;

/** Configuration and programmer mistakes: stable codes, never sent to OAuth clients. */
export class ConfigError extends Error {
  readonly code: ConfigErrorCode;
  constructor(code: ConfigErrorCode, message: string) {
    super(message);
    this.name = 'ConfigError';
    this.code = code;
  }
}
