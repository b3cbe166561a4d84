// The token endpoint (RFC 6749 §3.2, §5): parse, reject repeats, check grant_type, authenticate
// the client, run the grant, mint an RFC 9068 access token, write the response.

import { OAuthError } from '../../ground/errors.js';
import { MAX_TOKEN_LENGTH } from '../../keys/jwt.js';
import { newJti, type AccessTokenClaims, type RevocationCheck, type TokenSigner } from '../access-token.js';
import { param, rejectRepeatedParams, type FormParams } from '../request/form.js';
import { JSON_NO_STORE, type OAuthRequest, type OAuthResponse } from '../request/context.js';
import { withClientId, type ClientAuthenticator } from '../client-auth/authenticate.js';
import type { ClientRecord } from '../../ground/records.js';
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
  /** The client's request rate (src/limits): throws a 429 OAuthError when it is over. */
  rateLimit?: (client: ClientRecord) => void | Promise<void>;
  /** Revoked jtis: a revoked token is never handed out again by token reuse. */
  revocations: RevocationCheck;
}

/** A token kept for a client with token reuse on. */
interface ReusableToken {
  /** The record it was minted for: the registry replaces the record on every change (update, disable, kill switch), which ends reuse. */
  client: ClientRecord;
  token: string;
  jti: string;
  issuedAtMs: number;
  expMs: number;
  ttl: number;
  scope: string;
}

/**
 * A grant's answer for one client record, with what every token of it shares: the scope string
 * and the leading claims (RFC 9068 §2.2: iss, sub, aud, client_id, scope) as JSON without the
 * closing brace; each token appends exp, iat and jti.
 */
interface Granted {
  client: ClientRecord;
  result: GrantResult;
  scope: string;
  claimsJson: string;
}

/** Most (client, scope, audience) tokens remembered for clients with token reuse on. */
const REUSE_CACHE_SIZE = 10_000;

export interface TokenOutcome {
  response: OAuthResponse;
  clientId?: string;
}

export class TokenEndpoint {
  readonly #o: TokenEndpointOptions;
  readonly #now: () => number;
  /** JSON [clientId, scope, audience] -> token; insertion order is recency order (LRU). */
  readonly #reusable = new Map<string, ReusableToken>();
  /** The last grant answer per params object (see #grant). */
  readonly #granted = new WeakMap<FormParams, Granted>();

  constructor(options: TokenEndpointOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    // A newly active signing key should sign the next token; do not keep handing out the old key's.
    options.events.on('key.activated', () => this.#reusable.clear());
  }

  /** Throws OAuthError for every protocol failure; the HTTP layer writes it. */
  async handle(req: OAuthRequest): Promise<TokenOutcome> {
    const params = req.params;
    rejectRepeatedParams(params, REPEATABLE);
    const grant = selectGrant(param(params, 'grant_type'));
    const { client } = await this.#o.authenticator.authenticate(req);
    const limited = this.#o.rateLimit?.(client);
    if (limited) await limited;
    const granted = this.#grant(grant, client, params);
    if (!client.tokenReuse) return { response: this.#issue(client, granted, req), clientId: client.clientId };
    const key = JSON.stringify([client.clientId, granted.result.scope, granted.result.audience]);
    const reused = this.#reuse(key, client);
    if (reused) return { response: reused, clientId: client.clientId };
    return { response: this.#issue(client, granted, req, key), clientId: client.clientId };
  }

  /**
   * The grant's answer for this client and these params. The HTTP layer hands out the same params
   * object again for a body equal to the connection's last one (src/http/public-app.ts), and a
   * grant's answer depends only on the client record and the params, so it is remembered per
   * params object for as long as the client record is the same, with the claims JSON its tokens
   * share (written once per connection rather than per token).
   */
  #grant(grant: Grant, client: ClientRecord, params: FormParams): Granted {
    const last = this.#granted.get(params);
    // The same params object means the same grant_type, so the same grant.
    if (last !== undefined && last.client === client) return last;
    let result: GrantResult;
    try {
      result = grant({ client, params });
    } catch (err) {
      throw withClientId(err, client.clientId);
    }
    const scope = result.scope.join(' ');
    const leading: Omit<AccessTokenClaims, 'exp' | 'iat' | 'jti'> = {
      iss: this.#o.issuer,
      sub: client.clientId,
      aud: result.audience.length === 1 ? result.audience[0]! : result.audience,
      client_id: client.clientId,
    };
    if (scope.length > 0) leading.scope = scope;
    const granted: Granted = { client, result, scope, claimsJson: JSON.stringify(leading).slice(0, -1) };
    this.#granted.set(params, granted);
    return granted;
  }

  /**
   * The remembered token for this client, scope and audience, answered with its remaining
   * lifetime, while more than half of that lifetime is left and the token is still active; else
   * undefined (and the entry is dropped).
   */
  #reuse(key: string, client: ClientRecord): OAuthResponse | undefined {
    const entry = this.#reusable.get(key);
    if (!entry) return undefined;
    this.#reusable.delete(key);
    const nowMs = this.#now();
    const remainingMs = entry.expMs - nowMs;
    if (
      entry.client !== client
      || remainingMs * 2 <= entry.ttl * 1000
      || this.#o.revocations.has(entry.jti)
      || (client.tokensRevokedAt !== null && entry.issuedAtMs <= client.tokensRevokedAt)
    ) {
      return undefined;
    }
    this.#reusable.set(key, entry);
    // Never promise more than is left: round the remaining lifetime down.
    return tokenResponse(entry.token, Math.floor(remainingMs / 1000), entry.scope);
  }

  #remember(key: string, entry: ReusableToken): void {
    this.#reusable.delete(key);
    this.#reusable.set(key, entry);
    if (this.#reusable.size > REUSE_CACHE_SIZE) {
      const oldest = this.#reusable.keys().next();
      if (!oldest.done) this.#reusable.delete(oldest.value);
    }
  }

  #issue(client: ClientRecord, granted: Granted, req: OAuthRequest, reuseKey?: string): OAuthResponse {
    const nowMs = this.#now();
    const iat = Math.floor(nowMs / 1000);
    const ttl = Math.min(this.#o.tokenTtlMax, Math.max(this.#o.tokenTtlMin, client.accessTokenTtl ?? this.#o.tokenTtl));
    const { scope, claimsJson } = granted;
    const exp = iat + ttl;
    const jti = newJti(nowMs);
    // exp and iat are whole numbers and jti is base64url: nothing in them needs escaping.
    const { token, kid } = this.#o.signer.sign(`${claimsJson},"exp":${exp},"iat":${iat},"jti":"${jti}"}`);
    // Introspection, revocation and the SDK refuse longer tokens unread: never hand one out.
    if (token.length > MAX_TOKEN_LENGTH) {
      throw withClientId(new OAuthError('invalid_scope', `The requested scope and audiences make an access token longer than ${MAX_TOKEN_LENGTH} characters; request fewer.`, {
        detail: `token of ${token.length} characters`,
      }), client.clientId);
    }
    this.#o.events.emit('token.issued', {
      clientId: client.clientId, jti, scope, aud: granted.result.audience, exp, kid,
      ip: req.ip, requestId: req.requestId,
    });
    if (reuseKey !== undefined) {
      this.#remember(reuseKey, {
        client, token, jti, issuedAtMs: nowMs, expMs: exp * 1000, ttl, scope,
      });
    }
    return tokenResponse(token, ttl, scope);
  }
}

/** RFC 6749 §5.1; no refresh_token for client credentials (§4.4.3). */
function tokenResponse(token: string, expiresIn: number, scope: string): OAuthResponse {
  const body =
    scope.length > 0
      ? `{"access_token":"${token}","token_type":"Bearer","expires_in":${expiresIn},"scope":${JSON.stringify(scope)}}`
      : `{"access_token":"${token}","token_type":"Bearer","expires_in":${expiresIn}}`;
  return { status: 200, headers: JSON_NO_STORE, body };
}

function selectGrant(grantType: string | undefined): Grant {
  if (grantType === undefined) throw new OAuthError('invalid_request', 'The grant_type parameter is required.');
  const grant = Object.hasOwn(GRANTS, grantType) ? GRANTS[grantType] : undefined;
  if (!grant) throw new OAuthError('unsupported_grant_type', 'The grant_type is not supported by this server.');
  return grant;
}
