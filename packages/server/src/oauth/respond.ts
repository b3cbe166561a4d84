// The respond step every endpoint ends with: what the HTTP layer writes and logs. A protocol error
// keeps its RFC words; storage that did not answer becomes 503 temporarily_unavailable (RFC 6749
// §5.2); anything else unexpected is a 500 server_error whose details reach only the log.

import { errorBody, OAuthError } from '../ground/errors.js';
import type { ClientRecord } from '../ground/records.js';
import { JSON_NO_STORE, type OAuthResponse } from './request/context.js';
import { asUnavailable } from './unavailable.js';

export interface EndpointAnswer {
  response: OAuthResponse;
  /** The client the request was for, when known (request log, spans, audit). */
  clientId: string | undefined;
  /** "ok", or the error code answered (request log, spans). */
  outcome: string;
  /** The error answered: an OAuthError, or the unexpected failure behind a server_error (for the log). */
  error: unknown;
  /** The grant_type of a token request, as sent (spans). */
  grantType: string | undefined;
}

export function answered(response: OAuthResponse, clientId: string, grantType?: string): EndpointAnswer {
  return { response, clientId, outcome: 'ok', error: undefined, grantType };
}

/**
 * The answer to a request that failed with `caught`. An OAuthError names its client when it was
 * raised for one, or when it was raised after `client` authenticated; an unexpected failure names none.
 */
export function denied(caught: unknown, client: ClientRecord | undefined, grantType?: string): EndpointAnswer {
  const clientId = caught instanceof OAuthError ? (caught.clientId ?? client?.clientId) : undefined;
  const err = asUnavailable(caught);
  const { status, body, headers } = errorBody(err);
  return {
    response: { status, headers: { ...JSON_NO_STORE, ...headers }, body: JSON.stringify(body) },
    clientId,
    outcome: err instanceof OAuthError ? err.error : 'server_error',
    error: err,
    grantType,
  };
}
