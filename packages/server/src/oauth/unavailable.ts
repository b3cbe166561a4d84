// Storage that does not answer, as the OAuth answer it deserves: 503 temporarily_unavailable
// (RFC 6749 §5.2) with Retry-After, where any other unexpected failure is a 500 server_error.

import { OAuthError, temporarilyUnavailable } from '../ground/errors.js';
import { isStorageUnavailable } from '../storage/unavailable.js';

/** An unexpected endpoint failure as the OAuth error it deserves: 503 when storage did not answer. */
export function asUnavailable(err: unknown): unknown {
  if (err instanceof OAuthError || !isStorageUnavailable(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return temporarilyUnavailable(`storage unavailable: ${message}`, err);
}
