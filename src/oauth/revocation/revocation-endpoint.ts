// Token revocation (RFC 7009): an authenticated client says it no longer needs a token.

import { OAuthError } from '../../ground/errors.js';
import type { AccessTokenReader } from '../access-token.js';
import { param, rejectRepeatedParams } from '../request/form.js';
import { NO_STORE, type OAuthRequest, type OAuthResponse } from '../request/context.js';
import { withClientId, type ClientAuthenticator } from '../client-auth/authenticate.js';
import type { ClientRecord } from '../../ground/records.js';
import type { EventBus } from '../../observability/events.js';
import type { RevocationList } from './revocation-list.js';

export interface RevocationEndpointOptions {
  authenticator: ClientAuthenticator;
  tokens: AccessTokenReader;
  revocations: RevocationList;
  events: EventBus;
  now?: () => number;
}

const OK: OAuthResponse = { status: 200, headers: { ...NO_STORE }, body: '' };

export interface RevocationOutcome {
  response: OAuthResponse;
  clientId: string;
}

export class RevocationEndpoint {
  readonly #o: RevocationEndpointOptions;
  readonly #now: () => number;

  constructor(options: RevocationEndpointOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  async handle(req: OAuthRequest): Promise<RevocationOutcome> {
    rejectRepeatedParams(req.params);
    const { client } = await this.#o.authenticator.authenticate(req);
    try {
      return await this.#revoke(client, req);
    } catch (err) {
      throw withClientId(err, client.clientId);
    }
  }

  async #revoke(client: ClientRecord, req: OAuthRequest): Promise<RevocationOutcome> {
    const token = param(req.params, 'token');
    if (token === undefined) throw new OAuthError('invalid_request', 'The token parameter is required.');
    const claims = this.#o.tokens.claims(token);
    const now = this.#now();
    // §2.2: an invalid, unknown or already expired token needs no action and gets 200.
    if (!claims || claims.exp * 1000 <= now) return { response: OK, clientId: client.clientId };
    // §2.1: the server verifies that the token was issued to the client making the request.
    if (claims.client_id !== client.clientId) {
      throw new OAuthError('invalid_request', 'The token was not issued to this client.', {
        detail: `client ${client.clientId} tried to revoke a token of ${claims.client_id}`,
      });
    }
    // Kept until the token's exp, after which it is inactive anyway.
    await this.#o.revocations.revoke({ jti: claims.jti, clientId: claims.client_id, expiresAt: claims.exp * 1000, revokedAt: now });
    this.#o.events.emit('token.revoked', { clientId: client.clientId, jti: claims.jti, ip: req.ip, requestId: req.requestId });
    return { response: OK, clientId: client.clientId };
  }
}
