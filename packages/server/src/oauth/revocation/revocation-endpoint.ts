// Token revocation (RFC 7009) as a chain of named steps: parse the form, reject repeated
// parameters, authenticate the client, revoke, respond.

import { OAuthError } from '../../ground/errors.js';
import type { ClientRecord } from '../../ground/records.js';
import type { EventBus } from '../../observability/events.js';
import type { AccessTokenReader } from '../access-token.js';
import { param, rejectRepeatedParams, type FormParams } from '../request/form.js';
import { NO_STORE, type OAuthRequest, type OAuthResponse } from '../request/context.js';
import { answered, denied, type EndpointAnswer } from '../respond.js';
import type { Steps } from '../steps.js';
import type { RevocationList } from './revocation-list.js';

export interface RevocationEndpointOptions {
  /** The plain steps (a connection's own, with its memos, are passed to handle()). */
  steps: Steps;
  tokens: AccessTokenReader;
  revocations: RevocationList;
  events: EventBus;
  now?: () => number;
}

const OK: OAuthResponse = { status: 200, headers: { ...NO_STORE }, body: '' };

export class RevocationEndpoint {
  readonly #o: RevocationEndpointOptions;
  readonly #now: () => number;

  constructor(options: RevocationEndpointOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** The chain; never throws: a failure is answered. */
  async handle(req: OAuthRequest, steps: Steps = this.#o.steps): Promise<EndpointAnswer> {
    let client: ClientRecord | undefined;
    try {
      const params = steps.parse(req);
      rejectRepeatedParams(params);
      client = (await steps.authenticate(req, params)).client;
      return answered(await this.#revoke(client, params, req), client.clientId);
    } catch (err) {
      return denied(err, client);
    }
  }

  async #revoke(client: ClientRecord, params: FormParams, req: OAuthRequest): Promise<OAuthResponse> {
    const token = param(params, 'token');
    if (token === undefined) throw new OAuthError('invalid_request', 'The token parameter is required.');
    const claims = this.#o.tokens.claims(token);
    const now = this.#now();
    // §2.2: an invalid, unknown or already expired token needs no action and gets 200.
    if (!claims || claims.exp * 1000 <= now) return OK;
    // §2.1: the server verifies that the token was issued to the client making the request.
    if (claims.client_id !== client.clientId) {
      throw new OAuthError('invalid_request', 'The token was not issued to this client.', {
        detail: `client ${client.clientId} tried to revoke a token of ${claims.client_id}`,
      });
    }
    // Kept until the token's exp, after which it is inactive anyway.
    await this.#o.revocations.revoke({ jti: claims.jti, clientId: claims.client_id, expiresAt: claims.exp * 1000, revokedAt: now });
    this.#o.events.emit('token.revoked', { clientId: client.clientId, jti: claims.jti, ip: req.ip, requestId: req.requestId });
    return OK;
  }
}
