// The grants this server implements, by grant_type: looked up directly, no handler is asked
// "is this yours?".

import { OAuthError } from '../../../ground/errors.js';
import { clientCredentialsGrant } from './client-credentials.js';
import type { Grant } from './grant.js';

const GRANTS: Readonly<Record<string, Grant>> = Object.freeze({
  client_credentials: clientCredentialsGrant,
});

export const SUPPORTED_GRANT_TYPES = Object.keys(GRANTS);

/** The grant a grant_type names; throws invalid_request when absent, unsupported_grant_type when unknown. */
export function selectGrant(grantType: string | undefined): Grant {
  if (grantType === undefined) throw new OAuthError('invalid_request', 'The grant_type parameter is required.');
  const grant = Object.hasOwn(GRANTS, grantType) ? GRANTS[grantType] : undefined;
  if (!grant) throw new OAuthError('unsupported_grant_type', 'The grant_type is not supported by this server.');
  return grant;
}
