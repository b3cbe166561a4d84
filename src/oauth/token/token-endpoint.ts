// The token endpoint (RFC 6749 §3.2, §5): parse, reject repeats, check grant_type, authenticate
// the client, run the grant, mint an RFC 9068 access token, write the response.

import { OAuthError } from '../errors.js';
import { newJti, type AccessTokenClaims, type TokenSigner } from '../access-token.js';
import { param, rejectRepeatedParams, type FormParams } from '../request/form.js';
import { NO_STORE, type OAuthRequest, type OAuthResponse } from '../request/context.js';
import { withClientId, type ClientAuthenticator } from '../client-auth/authenticate.js';
import type { ClientRecord } from '../../storage/types.js';
import type { EventBus } from '../../observability/events.js';
import { clientCredentialsGrant } from './grants/client-credentials.js';

export interface GrantContext {
  client: ClientRecord;
  params: FormParams;
}

export interface GrantResult {
  scope: string[];
  audience: string[];
}

export type Grant = (ctx: GrantContext) => GrantResult;

/** Grants by grant_type; looked up directly, no handler is asked "is this yours?". */
const GRANTS: Readonly<Record<string, Grant>> = Object.freeze({
  client_credentials: clientCredentialsGrant,
});

export const SUPPORTED_GRANT_TYPES = Object.keys(GRANTS);

/** RFC 8707 §2: resource may repeat; audience likewise (one value per audience). */
const REPEATABLE = new Set(['resource', 'audience']);

export interface TokenEndpointOptions {
  issuer: string;
  authenticator: ClientAuthenticator;
  signer: TokenSigner;
  events: EventBus;
  /** Default lifetime and the bounds a client's own lifetime is clamped to, in seconds. */
  tokenTtl: number;
  tokenTtlMin: number;
  tokenTtlMax: number;
  now?: () => number;
  /** The client's request rate (src/ratelimit): throws a 429 OAuthError when it is over. */
  rateLimit?: (client: ClientRecord) => void | Promise<void>;
}

export interface TokenOutcome {
  response: OAuthResponse;
  clientId?: string;
}

const TOKEN_HEADERS = Object.freeze({ ...NO_STORE, 'content-type': 'application/json; charset=utf-8' });

export class TokenEndpoint {
  readonly #o: TokenEndpointOptions;
  readonly #now: () => number;

  constructor(options: TokenEndpointOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** Throws OAuthError for every protocol failure; the HTTP layer writes it. */
  async handle(req: OAuthRequest): Promise<TokenOutcome> {
    const params = req.params;
    rejectRepeatedParams(params, REPEATABLE);
    const grant = selectGrant(param(params, 'grant_type'));
    const { client } = await this.#o.authenticator.authenticate(params, req.authorization, req.ip);
    const limited = this.#o.rateLimit?.(client);
    if (limited) await limited;
    let granted: GrantResult;
    try {
      granted = grant({ client, params });
    } catch (err) {
      throw withClientId(err, client.clientId);
    }
    return { response: this.#issue(client, granted, req), clientId: client.clientId };
  }

  #issue(client: ClientRecord, granted: GrantResult, req: OAuthRequest): OAuthResponse {
    const nowMs = this.#now();
    const iat = Math.floor(nowMs / 1000);
    const ttl = Math.min(this.#o.tokenTtlMax, Math.max(this.#o.tokenTtlMin, client.accessTokenTtl ?? this.#o.tokenTtl));
    const scope = granted.scope.join(' ');
    const claims: AccessTokenClaims = {
      iss: this.#o.issuer,
      sub: client.clientId,
      aud: granted.audience.length === 1 ? granted.audience[0]! : granted.audience,
      exp: iat + ttl,
      iat,
      jti: newJti(nowMs),
      client_id: client.clientId,
    };
    if (scope.length > 0) claims.scope = scope;
    const { token, kid } = this.#o.signer.sign(claims);
    this.#o.events.emit('token.issued', {
      clientId: client.clientId, jti: claims.jti, scope, aud: granted.audience, exp: claims.exp, kid,
      ip: req.ip, requestId: req.requestId,
    });
    // RFC 6749 §5.1; no refresh_token for client credentials (§4.4.3).
    const body =
      scope.length > 0
        ? `{"access_token":"${token}","token_type":"Bearer","expires_in":${ttl},"scope":${JSON.stringify(scope)}}`
        : `{"access_token":"${token}","token_type":"Bearer","expires_in":${ttl}}`;
    return { status: 200, headers: TOKEN_HEADERS, body };
  }
}

function selectGrant(grantType: string | undefined): Grant {
  if (grantType === undefined) throw new OAuthError('invalid_request', 'The grant_type parameter is required.');
  const grant = Object.hasOwn(GRANTS, grantType) ? GRANTS[grantType] : undefined;
  if (!grant) throw new OAuthError('unsupported_grant_type', 'The grant_type is not supported by this server.');
  return grant;
}
