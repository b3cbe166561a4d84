// Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3,
// RFC 7523 §2.2): exactly one method per request, and it must be the client's registered one.

import { OAuthError } from '../../ground/errors.js';
import { param } from '../request/form.js';
import type { OAuthRequest } from '../request/context.js';
import { isBasic, parseBasicAuthorization } from './basic.js';
import { assertionClientId, verifyClientAssertion } from './private-key-jwt.js';
import { CLIENT_ASSERTION_TYPE } from '../../ground/names.js';
import { hasIssuedClientIdShape } from '../../ground/client-id.js';
import { matchClientSecret } from '../../clients/secrets.js';
import { ownCopy, sameBytes } from '../../ground/bytes.js';
import type { ClientLookup, ClientRecord, ClientSecretRecord } from '../../ground/records.js';
import type { ReplayStore } from '../../storage/types.js';
import type { TokenEndpointAuthMethod } from '../../ground/names.js';
import type { AuthThrottle } from '../../limits/limits.js';

export interface AuthenticatedClient {
  client: ClientRecord;
  method: TokenEndpointAuthMethod;
}

export interface ClientAuthenticatorOptions {
  clients: ClientLookup;
  replay: ReplayStore;
  issuer: string;
  tokenEndpoint: string;
  now?: () => number;
  /** Throttling of failed authentication (src/limits); none when absent. */
  throttle?: AuthThrottle;
}

const MAX_CLIENT_ID_LENGTH = 256;
const BASIC_CHALLENGE = { 'www-authenticate': 'Basic realm="m2m-auth", charset="UTF-8"' };

/**
 * The one invalid_client response: the same words for an unknown client, a wrong secret, a
 * disabled client and a wrong method, so a caller learns nothing about which it was.
 */
function invalidClient(detail: string, basicTried: boolean, clientId?: string): OAuthError {
  return new OAuthError('invalid_client', 'Client authentication failed.', {
    detail,
    headers: basicTried ? BASIC_CHALLENGE : {},
    ...(clientId !== undefined && hasIssuedClientIdShape(clientId) && { clientId }),
  });
}

/** The client_id an OAuthError was raised for, when known (for logs and audit). */
export function errorClientId(err: unknown): string | undefined {
  return err instanceof OAuthError ? err.clientId : undefined;
}

/** Names the authenticated client on an error raised after authentication (for logs and audit). */
export function withClientId(err: unknown, clientId: string): unknown {
  if (err instanceof OAuthError && err.clientId === undefined) err.clientId = clientId;
  return err;
}

/** The request parts client authentication reads. */
export type AuthenticationRequest = Pick<OAuthRequest, 'params' | 'authorization' | 'ip' | 'connection'>;

/**
 * What a connection last proved with client_secret_basic. Clients send the same Authorization
 * header on every request of a keep-alive connection; when the next one does, the header is
 * compared with this one in constant time instead of being decoded and hashed again. It counts
 * only while the registry still hands out the very record the secret was checked against (the
 * registry replaces a record on every change: secret rotation, disabling, deletion, kill switch)
 * and the secret that matched has not expired; the throttle and the staleness bound apply as on
 * the full path. Kept per connection, never in a table looked up by the header: a lookup by
 * secret would not take constant time.
 */
interface BasicMemo {
  /** The Authorization header as UTF-8 bytes. */
  header: Buffer;
  client: ClientRecord;
  /** The expiry of the secret that matched; null = none. */
  expiresAt: number | null;
}

/** Longest Authorization header remembered; ours are about 100 characters. */
const MAX_REMEMBERED_HEADER = 512;

/** True when `header` is the remembered one, compared in constant time (the length is not secret). */
function sameHeader(memo: BasicMemo, header: string): boolean {
  return header.length <= MAX_REMEMBERED_HEADER && sameBytes(Buffer.from(header, 'utf8'), memo.header);
}

interface CheckedSecret {
  client: ClientRecord;
  secret: ClientSecretRecord;
}

export class ClientAuthenticator {
  readonly #clients: ClientLookup;
  readonly #replay: ReplayStore;
  readonly #issuer: string;
  readonly #tokenEndpoint: string;
  readonly #now: () => number;
  readonly #throttle: AuthThrottle | undefined;
  readonly #basicMemos = new WeakMap<object, BasicMemo>();

  constructor(opts: ClientAuthenticatorOptions) {
    this.#clients = opts.clients;
    this.#replay = opts.replay;
    this.#issuer = opts.issuer;
    this.#tokenEndpoint = opts.tokenEndpoint;
    this.#now = opts.now ?? Date.now;
    this.#throttle = opts.throttle;
  }

  /** Call after duplicate parameters were rejected. `req.ip` is the source address, for the throttle. */
  async authenticate(req: AuthenticationRequest): Promise<AuthenticatedClient> {
    if (this.#throttle === undefined) return this.#authenticate(req);
    try {
      return await this.#authenticate(req);
    } catch (err) {
      // Every invalid_client counts the same, whatever the reason, so the throttle tells an
      // unknown client from a wrong secret no better than the answer does.
      if (err instanceof OAuthError && err.error === 'invalid_client') {
        const counted = this.#throttle.failed(errorClientId(err), req.ip);
        if (counted) await counted;
      }
      throw err;
    }
  }

  /** Waits for, or throws, the throttle's verdict on a presented client_id and address. */
  #throttled(clientId: string, ip: string | undefined): void | Promise<void> {
    return this.#throttle?.check(hasIssuedClientIdShape(clientId) ? clientId : undefined, ip);
  }

  async #authenticate({ params, authorization, ip, connection }: AuthenticationRequest): Promise<AuthenticatedClient> {
    const bodyId = param(params, 'client_id');
    const bodySecret = param(params, 'client_secret');
    const assertion = param(params, 'client_assertion');
    const assertionType = param(params, 'client_assertion_type');
    const basicTried = authorization !== undefined && authorization.length > 0;

    // RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request.
    const methods = (basicTried ? 1 : 0) + (bodySecret !== undefined ? 1 : 0) + (assertion !== undefined ? 1 : 0);
    if (methods > 1) {
      throw new OAuthError('invalid_request', 'The request uses more than one client authentication method.');
    }
    if (methods === 0) {
      throw invalidClient('no client authentication', false, bodyId);
    }

    if (basicTried) {
      const memo = connection === undefined ? undefined : this.#basicMemos.get(connection);
      if (memo !== undefined && (bodyId === undefined || bodyId === memo.client.clientId) && sameHeader(memo, authorization)) {
        const clientId = memo.client.clientId;
        const wait = this.#throttled(clientId, ip);
        if (wait) await wait;
        const client = await this.#clients.get(clientId);
        if (client === memo.client && (memo.expiresAt === null || memo.expiresAt > this.#now())) {
          return { client, method: 'client_secret_basic' };
        }
        // The record changed or the secret expired: check the same credentials against what the
        // registry holds now (the throttle and the lookup above were for this very client_id).
        this.#basicMemos.delete(connection!);
        const creds = parseBasicAuthorization(authorization);
        return this.#rememberBasic(connection, authorization, this.#checkSecret(client, clientId, creds.clientSecret, 'client_secret_basic', true));
      }
      if (!isBasic(authorization)) throw invalidClient('unsupported Authorization scheme', true);
      const creds = parseBasicAuthorization(authorization);
      // RFC 6749 §2.3.1 does not forbid client_id in the body with Basic, but it must agree.
      if (bodyId !== undefined && bodyId !== creds.clientId) {
        throw new OAuthError('invalid_request', 'The client_id parameter does not match the Authorization header.');
      }
      const wait = this.#throttled(creds.clientId, ip);
      if (wait) await wait;
      return this.#rememberBasic(connection, authorization, await this.#secret(creds.clientId, creds.clientSecret, 'client_secret_basic', true));
    }
    if (bodySecret !== undefined) {
      if (bodyId === undefined) throw new OAuthError('invalid_request', 'The client_id parameter is required with client_secret.');
      const wait = this.#throttled(bodyId, ip);
      if (wait) await wait;
      const { client } = await this.#secret(bodyId, bodySecret, 'client_secret_post', false);
      return { client, method: 'client_secret_post' };
    }
    // RFC 7521 §4.2: client_assertion_type names the assertion format.
    if (assertionType !== CLIENT_ASSERTION_TYPE) {
      throw new OAuthError('invalid_request', `The client_assertion_type parameter must be ${CLIENT_ASSERTION_TYPE}.`);
    }
    return this.#assertion(assertion!, bodyId, ip);
  }

  /** Remembers what `connection` proved with this Basic header (a short one: a longer header is checked every time). */
  #rememberBasic(connection: object | undefined, authorization: string, checked: CheckedSecret): AuthenticatedClient {
    if (connection !== undefined && authorization.length <= MAX_REMEMBERED_HEADER) {
      this.#basicMemos.set(connection, { header: ownCopy(authorization), client: checked.client, expiresAt: checked.secret.expiresAt });
    }
    return { client: checked.client, method: 'client_secret_basic' };
  }

  /** The client whose secret `secret` is, and that secret's record; throws invalid_client. */
  async #secret(clientId: string, secret: string, method: TokenEndpointAuthMethod, basic: boolean): Promise<CheckedSecret> {
    const client = clientId.length <= MAX_CLIENT_ID_LENGTH ? await this.#clients.get(clientId) : undefined;
    return this.#checkSecret(client, clientId, secret, method, basic);
  }

  #checkSecret(client: ClientRecord | undefined, clientId: string, secret: string, method: TokenEndpointAuthMethod, basic: boolean): CheckedSecret {
    // Always run the constant-time comparison, even for an unknown client.
    const matched = matchClientSecret(client, secret, this.#now());
    if (!client) throw invalidClient('unknown client', basic, clientId);
    if (!matched) throw invalidClient('wrong or expired client secret', basic, clientId);
    if (client.tokenEndpointAuthMethod !== method) {
      throw invalidClient(`client is registered for ${client.tokenEndpointAuthMethod}, used ${method}`, basic, clientId);
    }
    if (client.disabled) throw invalidClient('client is disabled', basic, clientId);
    return { client, secret: matched };
  }

  async #assertion(assertion: string, bodyId: string | undefined, ip: string | undefined): Promise<AuthenticatedClient> {
    const claimed = assertionClientId(assertion);
    if (claimed === undefined) throw invalidClient('client assertion is not a JWT with iss/sub', false, bodyId);
    // RFC 7523 §3: when client_id is sent too, it must identify the same client.
    if (bodyId !== undefined && bodyId !== claimed) throw invalidClient('client_id does not match the assertion', false, bodyId);
    const wait = this.#throttled(claimed, ip);
    if (wait) await wait;
    const client = claimed.length <= MAX_CLIENT_ID_LENGTH ? await this.#clients.get(claimed) : undefined;
    if (!client) throw invalidClient('unknown client', false, claimed);
    if (client.tokenEndpointAuthMethod !== 'private_key_jwt' || !client.jwks) {
      throw invalidClient(`client is registered for ${client.tokenEndpointAuthMethod}, used private_key_jwt`, false, claimed);
    }
    if (client.disabled) throw invalidClient('client is disabled', false, claimed);
    try {
      await verifyClientAssertion(client, assertion, {
        issuer: this.#issuer,
        tokenEndpoint: this.#tokenEndpoint,
        replay: this.#replay,
        now: this.#now(),
      });
    } catch (err) {
      if (err instanceof OAuthError) throw invalidClient(err.detail ?? 'client assertion rejected', false, claimed);
      throw err;
    }
    return { client, method: 'private_key_jwt' };
  }
}
