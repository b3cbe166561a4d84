// The plain steps an endpoint is made of, as one object so that a connection can wrap them
// (./connection-memo.ts): parse the form, authenticate the client, run the grant. The other steps
// (reject duplicates, limit, issue, respond) are the same for every connection and live with
// their endpoint.

import type { ClientRecord } from '../ground/records.js';
import type { AuthenticatedClient, ClientAuthentication } from './client-auth/authenticate.js';
import type { FormParams } from './request/form.js';
import { parseRequest } from './request/parse.js';
import type { OAuthRequest } from './request/context.js';
import type { Grant } from './token/grants/grant.js';
import { grantAnswer, type Granted } from './token/granted.js';

export interface Steps {
  /** The request's form parameters (RFC 6749 §3.2); throws invalid_request. */
  parse(req: OAuthRequest): FormParams;
  /** The client, by exactly one method (RFC 6749 §2.3); call after duplicates were rejected. */
  authenticate(req: OAuthRequest, params: FormParams): Promise<AuthenticatedClient>;
  /** The grant's answer for this client and these params, with the claims its tokens share. */
  grant(grant: Grant, client: ClientRecord, params: FormParams): Granted;
}

/** The steps with nothing remembered between requests. */
export function plainSteps(o: { authentication: ClientAuthentication; issuer: () => string }): Steps {
  const { authentication, issuer } = o;
  return {
    parse: parseRequest,
    authenticate: (req, params) => authentication.authenticate(req, params),
    grant: (grant, client, params) => grantAnswer(issuer(), grant, client, params),
  };
}
