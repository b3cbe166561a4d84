// The client credentials grant (RFC 6749 §4.4): the authenticated client asks for a token for itself.

import { OAuthError } from '../../../ground/errors.js';
import { param } from '../../request/form.js';
import { grantedAudience, grantedScope } from '../scope.js';
import type { Grant } from './grant.js';

export const clientCredentialsGrant: Grant = (ctx) => {
  const { client } = ctx;
  // RFC 6749 §4.4.2 / §5.2: a client registered without this grant is unauthorized_client.
  if (!client.grantTypes.includes('client_credentials')) {
    throw new OAuthError('unauthorized_client', 'The client is not allowed to use the client_credentials grant.');
  }
  const scope = grantedScope(client, param(ctx.params, 'scope'));
  const audience = grantedAudience(client, ctx.params.get('resource'), ctx.params.get('audience'));
  if (audience.length === 0) {
    throw new OAuthError('invalid_target', 'No audience: request a resource the client is allowed.');
  }
  // RFC 6749 §4.4.3: a refresh token SHOULD NOT be included.
  return { scope, audience };
};
