// The token endpoint (RFC 6749 §3.2, §5) as a chain of named steps: parse the form, reject
// repeated parameters, pick the grant by grant_type, authenticate the client, apply its request
// rate, bind (the key or certificate the request proves, ../request/binding.ts), run the grant,
// issue an RFC 9068 access token (or reuse one), respond. It emits token.issued and token.denied.

import { federationOf } from '../client-auth/authenticate.js';
import { OAuthError } from '../../ground/errors.js';
import type { ClientRecord } from '../../ground/records.js';
import { MAX_TOKEN_LENGTH } from '../../keys/jwt.js';
import type { EventBus } from '../../observability/events.js';
import { newJti, type RevocationCheck, type TokenSigner } from '../access-token.js';
import { param, rejectRepeatedParams } from '../request/form.js';
import { JSON_NO_STORE, type OAuthRequest, type OAuthResponse } from '../request/context.js';
import { answered, denied, type EndpointAnswer } from '../respond.js';
import type { Steps } from '../steps.js';
import { selectGrant } from './grants/select.js';
import type { Granted } from './granted.js';
import { TokenReuse } from './reuse.js';
import { bindingTokenType, cnfMember, type TokenBinding } from '../request/binding.js';

/** RFC 8707 §2: resource may repeat; audience likewise (one value per audience). */
const REPEATABLE = new Set(['resource', 'audience']);

export interface TokenEndpointOptions {
  /** The plain steps (a connection's own, with its memos, are passed to handle()). */
  steps: Steps;
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
  /**
   * The binding step: sets `req.binding` from what the request proves (a DPoP proof, a client
   * certificate) and refuses a client that must be sender-constrained but proved nothing.
   * Unbound tokens only when absent.
   */
  bind?: (req: OAuthRequest, client: ClientRecord) => void | Promise<void>;
}

export class TokenEndpoint {
  readonly #o: TokenEndpointOptions;
  readonly #now: () => number;
  readonly #reuse: TokenReuse;

  constructor(options: TokenEndpointOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#reuse = new TokenReuse(options.revocations, this.#now);
    // A newly active signing key should sign the next token; do not keep handing out the old key's,
    // least of all a revoked key's.
    for (const e of ['key.activated', 'key.revoked'] as const) options.events.on(e, () => this.#reuse.clear());
  }

  /** The chain; never throws: a failure is answered (and announced as token.denied). */
  async handle(req: OAuthRequest, steps: Steps = this.#o.steps): Promise<EndpointAnswer> {
    let grantType: string | undefined;
    let client: ClientRecord | undefined;
    try {
      const params = steps.parse(req);
      grantType = param(params, 'grant_type');
      rejectRepeatedParams(params, REPEATABLE);
      const grant = selectGrant(grantType);
      client = (await steps.authenticate(req, params)).client;
      const limited = this.#o.rateLimit?.(client);
      if (limited) await limited;
      // After the rate: a client over it costs no proof verification (and spends no proof).
      const bound = this.#o.bind?.(req, client);
      if (bound) await bound;
      const granted = steps.grant(grant, client, params);
      return answered(this.#issue(client, granted, req), client.clientId, grantType);
    } catch (err) {
      return this.#deny(err, client, req, grantType);
    }
  }

  /** The token: the client's last one again when it reuses tokens and that one is still good, else a new one. */
  #issue(client: ClientRecord, granted: Granted, req: OAuthRequest): OAuthResponse {
    if (!client.tokenReuse) return this.#sign(client, granted, req, undefined);
    const key = this.#reuse.key(client, granted.result, req.binding);
    const reused = this.#reuse.take(key, client);
    if (reused) return tokenResponse(reused.entry.token, reused.entry.tokenType, reused.expiresIn, reused.entry.scope);
    return this.#sign(client, granted, req, key);
  }

  #sign(client: ClientRecord, granted: Granted, req: OAuthRequest, reuseKey: string | undefined): OAuthResponse {
    const nowMs = this.#now();
    const iat = Math.floor(nowMs / 1000);
    const ttl = Math.min(this.#o.tokenTtlMax, Math.max(this.#o.tokenTtlMin, client.accessTokenTtl ?? this.#o.tokenTtl));
    const { scope, claimsJson } = granted;
    const exp = iat + ttl;
    const jti = newJti(nowMs);
    // exp and iat are whole numbers and jti is base64url: nothing in them needs escaping.
    const binding: TokenBinding | undefined = req.binding;
    // RFC 7800 §3.1 cnf (RFC 9449 §6.1 jkt, RFC 8705 §3.1 x5t#S256): base64url, nothing to escape.
    const { token, kid } = this.#o.signer.sign(`${claimsJson}${cnfMember(binding)},"exp":${exp},"iat":${iat},"jti":"${jti}"}`);
    // Introspection, revocation and the SDK refuse longer tokens unread: never hand one out.
    if (token.length > MAX_TOKEN_LENGTH) {
      throw new OAuthError('invalid_scope', `The requested scope and audiences make an access token longer than ${MAX_TOKEN_LENGTH} characters; request fewer.`, {
        detail: `token of ${token.length} characters`,
      });
    }
    const federation = federationOf(client);
    this.#o.events.emit('token.issued', {
      clientId: client.clientId, jti, scope, aud: granted.result.audience, exp, kid,
      // The audit names the workload behind a federated client, not only the client.
      ...(federation !== undefined && { trust: federation.trust, federatedSubject: federation.subject }),
      ip: req.ip, requestId: req.requestId,
    });
    const tokenType = bindingTokenType(binding);
    if (reuseKey !== undefined) {
      this.#reuse.remember(reuseKey, {
        client, token, jti, issuedAtMs: nowMs, expMs: exp * 1000, ttl, scope, tokenType,
      });
    }
    return tokenResponse(token, tokenType, ttl, scope);
  }

  #deny(caught: unknown, client: ClientRecord | undefined, req: OAuthRequest, grantType: string | undefined): EndpointAnswer {
    const answer = denied(caught, client, grantType);
    const err = answer.error;
    if (err instanceof OAuthError) {
      this.#o.events.emit('token.denied', {
        ...(answer.clientId !== undefined && { clientId: answer.clientId }), error: err.error,
        ...(err.detail !== undefined && { reason: err.detail }), ip: req.ip, requestId: req.requestId,
      });
    }
    return answer;
  }
}

/** RFC 6749 §5.1 (RFC 9449 §5: token_type DPoP for a DPoP-bound token); no refresh_token for client credentials (§4.4.3). */
function tokenResponse(token: string, tokenType: 'DPoP' | 'Bearer', expiresIn: number, scope: string): OAuthResponse {
  const body =
    scope.length > 0
      ? `{"access_token":"${token}","token_type":"${tokenType}","expires_in":${expiresIn},"scope":${JSON.stringify(scope)}}`
      : `{"access_token":"${token}","token_type":"${tokenType}","expires_in":${expiresIn}}`;
  return { status: 200, headers: JSON_NO_STORE, body };
}
