// RFC 6749 §5.2 error responses (plus RFC 8707 §2 invalid_target and RFC 7009 §2.2.1
// unsupported_token_type): the one OAuthError type and the one function that writes its body.

export type OAuthErrorCode =
  | 'invalid_request'
  | 'invalid_client'
  | 'invalid_grant'
  | 'unauthorized_client'
  | 'unsupported_grant_type'
  | 'invalid_scope'
  | 'invalid_target'
  | 'unsupported_token_type'
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
  server_error: 500,
  temporarily_unavailable: 503,
};

export interface OAuthErrorOptions {
  /** Private detail: reaches logs, never the response body. */
  detail?: string;
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
  }
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

/** Configuration and programmer mistakes: stable codes, never sent to OAuth clients. */
export class ConfigError extends Error {
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.name = 'ConfigError';
    this.code = code;
  }
}
