// Token introspection (RFC 7662) as a chain of named steps: parse the form, reject repeated
// parameters, authenticate the caller, apply its request rate, introspect, respond.

import { OAuthError } from '../../ground/errors.js';
import { RESERVED_CLAIM_NAMES } from '../../ground/names.js';
import type { ClientRecord } from '../../ground/records.js';
import type { EventBus } from '../../observability/events.js';
import { audiences, type AccessTokenReader, type AccessTokenClaims } from '../access-token.js';
import { param, rejectRepeatedParams, type FormParams } from '../request/form.js';
import { JSON_NO_STORE as HEADERS, type OAuthRequest, type OAuthResponse } from '../request/context.js';
import { answered, denied, type EndpointAnswer } from '../respond.js';
import type { Steps } from '../steps.js';
import { tokenTypeOf } from '../request/binding.js';

export interface IntrospectionEndpointOptions {
  /** The plain steps (a connection's own, with its memos, are passed to handle()). */
  steps: Steps;
  tokens: AccessTokenReader;
  events: EventBus;
  /** The caller's request rate (src/limits): throws a 429 OAuthError when it is over. */
  rateLimit?: (caller: ClientRecord) => void | Promise<void>;
}

// RFC 7662 §2.2: for an inactive token, the response contains only "active": false.
const INACTIVE: OAuthResponse = Object.freeze({ status: 200, headers: HEADERS, body: '{"active":false}' });

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

export class IntrospectionEndpoint {
  readonly #o: IntrospectionEndpointOptions;

  constructor(options: IntrospectionEndpointOptions) {
    this.#o = options;
  }

  /** The chain; never throws: a failure is answered. */
  async handle(req: OAuthRequest, steps: Steps = this.#o.steps): Promise<EndpointAnswer> {
    let caller: ClientRecord | undefined;
    try {
      const params = steps.parse(req);
      rejectRepeatedParams(params);
      caller = (await steps.authenticate(req, params)).client;
      const limited = this.#o.rateLimit?.(caller);
      if (limited) await limited;
      return answered(await this.#introspect(caller, params, req), caller.clientId);
    } catch (err) {
      return denied(err, caller);
    }
  }

  async #introspect(caller: ClientRecord, params: FormParams, req: OAuthRequest): Promise<OAuthResponse> {
    const token = param(params, 'token');
    if (token === undefined) throw new OAuthError('invalid_request', 'The token parameter is required.');
    // token_type_hint is optional and only a hint (§2.1): we have one kind of token.
    const state = await this.#o.tokens.state(token);
    const visible = state.active && mayIntrospect(caller, state.claims);
    this.#o.events.emit('token.introspected', {
      callerClientId: caller.clientId, active: visible, ip: req.ip, requestId: req.requestId,
    });
    if (!state.active || !visible) return INACTIVE;
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
      // RFC 9449 §6.2, RFC 8705 §3.2: a bound token's cnf, and DPoP as the type of a DPoP-bound one.
      token_type: tokenTypeOf(c.cnf),
    };
    if (c.cnf !== undefined) body.cnf = c.cnf;
    // The client's custom claims, as the token carries them (RFC 7662 §2.2 allows other members).
    for (const name of Object.keys(c)) {
      if (!RESERVED_CLAIM_NAMES.has(name) && name !== '__proto__') body[name] = (c as unknown as Record<string, unknown>)[name];
    }
    return { status: 200, headers: HEADERS, body: JSON.stringify(body) };
  }
}
