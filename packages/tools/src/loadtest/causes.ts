// Failure causes of a load-test request: one stable, machine-readable name per way a request can
// fail (http_<status>, oauth_<error>, network_<code>, timeout, bad_json, bad_token_<reason>,
// introspection_inactive, ...), so that a failure is counted exactly once and under one name.

const TIMEOUT_CODES = new Set([
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CONNECT_TIMEOUT',
  'ETIMEDOUT',
]);

function codeOf(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const code = (value as { code?: unknown }).code;
  return typeof code === 'string' && code !== '' ? code : undefined;
}

function sanitize(value: string): string {
  return value.replace(/[^A-Za-z0-9_]+/g, '_').slice(0, 64);
}

/** The cause of a request that threw instead of producing a response. */
export function errorCause(err: unknown): string {
  const code = codeOf(err);
  const name = err instanceof Error ? err.name : undefined;
  if ((code !== undefined && TIMEOUT_CODES.has(code)) || name === 'TimeoutError') return 'timeout';
  // undici wraps socket failures (UND_ERR_SOCKET); the system code underneath says more.
  const inner = codeOf((err as { cause?: unknown } | null)?.cause);
  if (inner !== undefined && TIMEOUT_CODES.has(inner)) return 'timeout';
  const best = code === 'UND_ERR_SOCKET' && inner !== undefined ? inner : code ?? inner;
  return `network_${sanitize(best ?? 'unknown')}`;
}

/** The cause of a response that is not a 200: the RFC 6749 §5.2 error code when the body has one. */
export function httpCause(status: number, body: string): string {
  try {
    const parsed: unknown = JSON.parse(body);
    if (typeof parsed === 'object' && parsed !== null) {
      const error = (parsed as { error?: unknown }).error;
      if (typeof error === 'string' && /^[\x20-\x7e]{1,64}$/.test(error)) return `oauth_${sanitize(error)}`;
    }
  } catch {
    // not JSON: the status is all we know
  }
  return `http_${status}`;
}

/** A short description of an error for the per-cause samples of the report. */
export function errorDetail(err: unknown): string {
  if (!(err instanceof Error)) return String(err).slice(0, 200);
  const inner = (err as { cause?: unknown }).cause;
  const innerText = inner instanceof Error ? ` (${inner.message})` : '';
  return `${err.name}: ${err.message}${innerText}`.slice(0, 200);
}
