// Token introspection (RFC 7662): an authenticated caller asks whether a token is active.

import { OAuthError } from '../../ground/errors.js';
import { audiences, type AccessTokenReader, type AccessTokenClaims } from '../access-token.js';
import { param, rejectRepeatedParams } from '../request/form.js';
import { JSON_NO_STORE as HEADERS, type OAuthRequest, type OAuthResponse } from '../request/context.js';
import { withClientId, type ClientAuthenticator } from '../client-auth/authenticate.js';
import type { ClientRecord } from '../../ground/records.js';
import type { EventBus } from '../../observability/events.js';

export interface IntrospectionEndpointOptions {
  authenticator: ClientAuthenticator;
  tokens: AccessTokenReader;
  events: EventBus;
  /** The caller's request rate (src/limits): throws a 429 OAuthError when it is over. */
  rateLimit?: (caller: ClientRecord) => void | Promise<void>;
}

// RFC 7662 §2.2: for an inactive token, the response contains only "active": false.
const INACTIVE = '{"active":false}';

/**
 * RFC 7662 §4: the server must decide who may see what. A caller sees a token it was issued, or
 * one addressed to it as a resource server (its client_id or one of its resource_uris in `aud`).
 */
function mayIntrospect(caller: ClientRecord, claims: AccessTokenClaims): boolean {
  if (caller.clientId === claims.client_id) return true;
  for (const aud of audiences(claims)) {
    if (aud === caller.clientId || caller.resourceUris.includes(aud)) return true;
  }
  return false;
}

export interface IntrospectionOutcome {
  response: OAuthResponse;
  clientId: string;
}

export class IntrospectionEndpoint {
  readonly #o: IntrospectionEndpointOptions;

  constructor(options: IntrospectionEndpointOptions) {
    this.#o = options;
  }

  async handle(req: OAuthRequest): Promise<IntrospectionOutcome> {
    rejectRepeatedParams(req.params);
    const { client: caller } = await this.#o.authenticator.authenticate(req);
    const limited = this.#o.rateLimit?.(caller);
    if (limited) await limited;
    try {
      return await this.#introspect(caller, req);
    } catch (err) {
      throw withClientId(err, caller.clientId);
    }
  }

  async #introspect(caller: ClientRecord, req: OAuthRequest): Promise<IntrospectionOutcome> {
    const token = param(req.params, 'token');
    if (token === undefined) throw new OAuthError('invalid_request', 'The token parameter is required.');
    // token_type_hint is optional and only a hint (§2.1): we have one kind of token.
    const state = await this.#o.tokens.state(token);
    const visible = state.active && mayIntrospect(caller, state.claims);
    this.#o.events.emit('token.introspected', {
      callerClientId: caller.clientId, active: visible, ip: req.ip, requestId: req.requestId,
    });
    if (!state.active || !visible) return { response: { status: 200, headers: HEADERS, body: INACTIVE }, clientId: caller.clientId };
    const c = state.claims;
    const body: Record<string, unknown> = {
      active: true,
      scope: c.scope,
      client_id: c.client_id,
      sub: c.sub,
      aud: c.aud,
      iss: c.iss,
      exp: c.exp,
      iat: c.iat,
      jti: c.jti,
      token_type: 'Bearer',
    };
    return { response: { status: 200, headers: HEADERS, body: JSON.stringify(body) }, clientId: caller.clientId };
  }
}
