// Client authentication at the token, introspection and revocation endpoints (RFC 6749 §2.3,
// RFC 7523 §2.2, RFC 8705 §2): exactly one method per request, and it must be the client's
// registered one.
// One chain every endpoint shares: pick the method, ask the throttle, check the credentials, and
// count the failures. The connection memo (../connection-memo.ts) wraps it with a fast path for a
// repeated client_secret_basic header, built from the named steps below.

import { OAuthError } from '../../ground/errors.js';
import { hasIssuedClientIdShape } from '../../ground/client-id.js';
import type { X509Certificate } from 'node:crypto';
import { CLIENT_ASSERTION_TYPE, isMutualTlsMethod, type TokenEndpointAuthMethod } from '../../ground/names.js';
import type { ClientLookup, ClientRecord, ClientSecretRecord } from '../../ground/records.js';
import { matchClientSecret } from '../../clients/secrets.js';
import type { AuthThrottle } from '../../limits/limits.js';
import type { ReplayStore } from '../../storage/types.js';
import { param, type FormParams } from '../request/form.js';
import type { OAuthRequest } from '../request/context.js';
import { isBasic, parseBasicAuthorization } from './basic.js';
import { assertionClientId, verifyClientAssertion } from './private-key-jwt.js';
import { CLIENT_ASSERTION_TYPE_SPIFFE, FEDERATED_JWT, type FederatedIdentity } from '../../ground/trusts.js';
import { verifyFederatedAssertion, type FederationPorts } from './federated-jwt.js';
import { CertificateRefused, checkClientCertificate, checkX509Svid } from './mutual-tls.js';
import { KeysUnavailableError } from '../../federation/trust-keys.js';

export interface AuthenticatedClient {
  client: ClientRecord;
  method: TokenEndpointAuthMethod;
  /**
   * The secret that matched (client_secret_basic and client_secret_post); undefined for
   * private_key_jwt, and when the connection's memo vouched for a repeated Basic header.
   */
  secret: ClientSecretRecord | undefined;
}

export interface ClientAuthenticationOptions {
  clients: ClientLookup;
  replay: ReplayStore;
  /** Read on every assertion: the issuer is final once the public listener listens. */
  issuer: () => string;
  tokenEndpoint: () => string;
  now?: () => number;
  /** Throttling of failed authentication (src/limits); none when absent. */
  throttle?: AuthThrottle;
  /** The CAs trusted to issue the certificates of tls_client_auth clients (M2M_AUTH_MTLS_CA); none when absent. */
  clientCas?: readonly X509Certificate[];
  /** Trusts, their keys and single-use jtis for federated_jwt clients; none = no federated client authenticates. */
  federation?: FederationPorts;
}

/** A federated client's identity at its trust; undefined for every other client. */
export function federationOf(client: ClientRecord): FederatedIdentity | undefined {
  return client.tokenEndpointAuthMethod === FEDERATED_JWT && client.federation !== null ? client.federation : undefined;
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

export class ClientAuthentication {
  readonly #clients: ClientLookup;
  readonly #replay: ReplayStore;
  readonly #issuer: () => string;
  readonly #tokenEndpoint: () => string;
  readonly #now: () => number;
  readonly #throttle: AuthThrottle | undefined;
  readonly #federation: FederationPorts | undefined;
  readonly #clientCas: readonly X509Certificate[];

  constructor(opts: ClientAuthenticationOptions) {
    this.#clients = opts.clients;
    this.#replay = opts.replay;
    this.#issuer = opts.issuer;
    this.#tokenEndpoint = opts.tokenEndpoint;
    this.#now = opts.now ?? Date.now;
    this.#throttle = opts.throttle;
    this.#federation = opts.federation;
    this.#clientCas = opts.clientCas ?? [];
  }

  /**
   * The chain: the client that `req` authenticates as, by exactly one method; throws OAuthError
   * (invalid_client, or invalid_request for a malformed attempt). Call after duplicate parameters
   * were rejected. `req.ip` is the source address, for the throttle.
   */
  async authenticate(req: OAuthRequest, params: FormParams): Promise<AuthenticatedClient> {
    if (this.#throttle === undefined) return this.#verify(req, params);
    try {
      return await this.#verify(req, params);
    } catch (err) {
      const counted = this.counted(err, req.ip);
      if (counted) await counted;
      throw err;
    }
  }

  /**
   * Counts a failure: every invalid_client counts the same, whatever the reason, so the throttle
   * tells an unknown client from a wrong secret no better than the answer does.
   */
  counted(err: unknown, ip: string | undefined): void | Promise<void> {
    if (this.#throttle !== undefined && err instanceof OAuthError && err.error === 'invalid_client') return this.#throttle.failed(err.clientId, ip);
  }

  /** Waits for, or throws, the throttle's verdict on a presented client_id and address. */
  throttled(clientId: string, ip: string | undefined): void | Promise<void> {
    return this.#throttle?.check(hasIssuedClientIdShape(clientId) ? clientId : undefined, ip);
  }

  /** The client as the endpoints see it (the registry's cache behind the staleness bound). */
  lookup(clientId: string): Promise<ClientRecord | undefined> {
    return this.#clients.get(clientId);
  }

  /** client_secret_basic against a client already looked up: the header's secret, checked as on the full path. */
  basicAgainst(client: ClientRecord | undefined, authorization: string): AuthenticatedClient {
    const creds = parseBasicAuthorization(authorization);
    return this.#checkSecret(client, creds.clientId, creds.clientSecret, 'client_secret_basic', true);
  }

  async #verify(req: OAuthRequest, params: FormParams): Promise<AuthenticatedClient> {
    const { authorization, ip } = req;
    const bodyId = param(params, 'client_id');
    const bodySecret = param(params, 'client_secret');
    const assertion = param(params, 'client_assertion');
    const basicTried = authorization !== undefined && authorization.length > 0;

    // RFC 6749 §2.3: a client MUST NOT use more than one authentication method per request.
    const methods = (basicTried ? 1 : 0) + (bodySecret !== undefined ? 1 : 0) + (assertion !== undefined ? 1 : 0);
    if (methods > 1) {
      throw new OAuthError('invalid_request', 'The request uses more than one client authentication method.');
    }
    if (methods === 0) {
      // RFC 8705 §2: the certificate is the credential, client_id names the client.
      if (bodyId !== undefined && (req.clientCertificate !== undefined || req.clientCertificateProblem !== undefined)) {
        return this.#certificate(req, bodyId);
      }
      throw invalidClient('no client authentication', false, bodyId);
    }

    if (basicTried) {
      if (!isBasic(authorization)) throw invalidClient('unsupported Authorization scheme', true);
      const creds = parseBasicAuthorization(authorization);
      // RFC 6749 §2.3.1 does not forbid client_id in the body with Basic, but it must agree.
      if (bodyId !== undefined && bodyId !== creds.clientId) {
        throw new OAuthError('invalid_request', 'The client_id parameter does not match the Authorization header.');
      }
      const wait = this.throttled(creds.clientId, ip);
      if (wait) await wait;
      return this.#secret(creds.clientId, creds.clientSecret, 'client_secret_basic', true);
    }
    if (bodySecret !== undefined) {
      if (bodyId === undefined) throw new OAuthError('invalid_request', 'The client_id parameter is required with client_secret.');
      const wait = this.throttled(bodyId, ip);
      if (wait) await wait;
      return this.#secret(bodyId, bodySecret, 'client_secret_post', false);
    }
    // RFC 7521 §4.2: client_assertion_type names the assertion format.
    const assertionType = param(params, 'client_assertion_type');
    if (assertionType === CLIENT_ASSERTION_TYPE_SPIFFE) {
      // draft-ietf-oauth-spiffe-client-auth; client_id is required here, as for every federated client.
      if (bodyId === undefined) throw new OAuthError('invalid_request', 'The client_id parameter is required with a jwt-spiffe client assertion.');
      return this.#federated(bodyId, assertion!, assertionType, ip);
    }
    if (assertionType !== CLIENT_ASSERTION_TYPE) {
      throw new OAuthError('invalid_request', `The client_assertion_type parameter must be ${CLIENT_ASSERTION_TYPE} or ${CLIENT_ASSERTION_TYPE_SPIFFE}.`);
    }
    return this.#assertion(assertion!, bodyId, ip);
  }

  /** A platform token for the federated client `clientId` (federated_jwt); throws invalid_client. */
  async #federated(clientId: string, assertion: string, assertionType: string, ip: string | undefined, looked?: { client: ClientRecord | undefined }): Promise<AuthenticatedClient> {
    if (!looked) {
      const wait = this.throttled(clientId, ip);
      if (wait) await wait;
    }
    const client = looked ? looked.client : clientId.length <= MAX_CLIENT_ID_LENGTH ? await this.#clients.get(clientId) : undefined;
    if (!client) throw invalidClient('unknown client', false, clientId);
    const federation = federationOf(client);
    if (federation === undefined) {
      throw invalidClient(`client is registered for ${client.tokenEndpointAuthMethod}, used ${FEDERATED_JWT}`, false, clientId);
    }
    if (client.disabled) throw invalidClient('client is disabled', false, clientId);
    if (this.#federation === undefined) throw invalidClient('federated client authentication is not wired', false, clientId);
    try {
      await verifyFederatedAssertion(client.clientId, federation, assertion, assertionType, this.#federation, {
        issuer: this.#issuer(), tokenEndpoint: this.#tokenEndpoint(), now: this.#now(),
      });
    } catch (err) {
      if (err instanceof OAuthError) throw invalidClient(err.detail ?? 'platform token rejected', false, clientId);
      throw err;
    }
    return { client, method: FEDERATED_JWT, secret: undefined };
  }

  /** The client whose secret `secret` is; throws invalid_client. */
  async #secret(clientId: string, secret: string, method: TokenEndpointAuthMethod, basic: boolean): Promise<AuthenticatedClient> {
    const client = clientId.length <= MAX_CLIENT_ID_LENGTH ? await this.#clients.get(clientId) : undefined;
    return this.#checkSecret(client, clientId, secret, method, basic);
  }

  #checkSecret(client: ClientRecord | undefined, clientId: string, secret: string, method: TokenEndpointAuthMethod, basic: boolean): AuthenticatedClient {
    // Always run the constant-time comparison, even for an unknown client.
    const matched = matchClientSecret(client, secret, this.#now());
    if (!client) throw invalidClient('unknown client', basic, clientId);
    if (!matched) throw invalidClient('wrong or expired client secret', basic, clientId);
    if (client.tokenEndpointAuthMethod !== method) {
      throw invalidClient(`client is registered for ${client.tokenEndpointAuthMethod}, used ${method}`, basic, clientId);
    }
    if (client.disabled) throw invalidClient('client is disabled', basic, clientId);
    return { client, method, secret: matched };
  }

  /** tls_client_auth or self_signed_tls_client_auth: the client `clientId` names, if the request's certificate is its credential. */
  async #certificate(req: OAuthRequest, clientId: string): Promise<AuthenticatedClient> {
    const wait = this.throttled(clientId, req.ip);
    if (wait) await wait;
    const client = clientId.length <= MAX_CLIENT_ID_LENGTH ? await this.#clients.get(clientId) : undefined;
    if (!client) throw invalidClient('unknown client', false, clientId);
    const federation = federationOf(client);
    if (federation !== undefined) return this.#x509Svid(req, client, federation);
    const method = client.tokenEndpointAuthMethod;
    if (!isMutualTlsMethod(method)) throw invalidClient(`client is registered for ${method}, used a client certificate`, false, clientId);
    if (client.disabled) throw invalidClient('client is disabled', false, clientId);
    const cert = req.clientCertificate;
    if (cert === undefined) throw invalidClient(req.clientCertificateProblem ?? 'no client certificate', false, clientId);
    try {
      checkClientCertificate(client, cert, this.#clientCas, this.#now());
    } catch (err) {
      if (err instanceof CertificateRefused) throw invalidClient(err.message, false, clientId);
      throw err;
    }
    return { client, method, secret: undefined };
  }

  /**
   * A federated client of a spiffe trust whose credential is the request's client certificate, an
   * X.509-SVID of its federated_subject signed by one of the trust bundle's X.509-SVID authorities.
   */
  async #x509Svid(req: OAuthRequest, client: ClientRecord, federation: FederatedIdentity): Promise<AuthenticatedClient> {
    const clientId = client.clientId;
    if (client.disabled) throw invalidClient('client is disabled', false, clientId);
    if (this.#federation === undefined) throw invalidClient('federated client authentication is not wired', false, clientId);
    const trust = await this.#federation.trusts.get(federation.trust);
    if (trust === undefined) throw invalidClient(`trust ${federation.trust} does not exist`, false, clientId);
    if (trust.kind !== 'spiffe' || trust.trustDomain === null) {
      throw invalidClient(`client certificate used for a federated client of trust kind ${trust.kind}; only spiffe trusts take X.509-SVIDs`, false, clientId);
    }
    const cert = req.clientCertificate;
    if (cert === undefined) throw invalidClient(req.clientCertificateProblem ?? 'no client certificate', false, clientId);
    let authorities: readonly X509Certificate[];
    try {
      authorities = await this.#federation.keys.x509Authorities(trust);
    } catch (err) {
      if (err instanceof KeysUnavailableError) throw invalidClient(`X.509-SVID authorities of trust ${trust.name} unavailable: ${err.message}`, false, clientId);
      throw err;
    }
    try {
      checkX509Svid(cert, federation.subject, trust.trustDomain, authorities, this.#now());
    } catch (err) {
      if (err instanceof CertificateRefused) throw invalidClient(err.message, false, clientId);
      throw err;
    }
    return { client, method: FEDERATED_JWT, secret: undefined };
  }

  async #assertion(assertion: string, bodyId: string | undefined, ip: string | undefined): Promise<AuthenticatedClient> {
    // A platform token's iss and sub name the platform, not the client: client_id says which client.
    if (bodyId !== undefined && this.#federation !== undefined) {
      const wait = this.throttled(bodyId, ip);
      if (wait) await wait;
      const client = bodyId.length <= MAX_CLIENT_ID_LENGTH ? await this.#clients.get(bodyId) : undefined;
      if (client !== undefined && federationOf(client) !== undefined) {
        return this.#federated(bodyId, assertion, CLIENT_ASSERTION_TYPE, ip, { client });
      }
    }
    const claimed = assertionClientId(assertion);
    if (claimed === undefined) throw invalidClient('client assertion is not a JWT with iss/sub', false, bodyId);
    // RFC 7523 §3: when client_id is sent too, it must identify the same client.
    if (bodyId !== undefined && bodyId !== claimed) throw invalidClient('client_id does not match the assertion', false, bodyId);
    const wait = this.throttled(claimed, ip);
    if (wait) await wait;
    const client = claimed.length <= MAX_CLIENT_ID_LENGTH ? await this.#clients.get(claimed) : undefined;
    if (!client) throw invalidClient('unknown client', false, claimed);
    // A federated_jwt client's platform token without client_id (or with federation not wired) ends
    // here, refused like any other wrong method.
    if (client.tokenEndpointAuthMethod !== 'private_key_jwt' || !client.jwks) {
      throw invalidClient(`client is registered for ${client.tokenEndpointAuthMethod}, used private_key_jwt`, false, claimed);
    }
    if (client.disabled) throw invalidClient('client is disabled', false, claimed);
    try {
      await verifyClientAssertion(client, assertion, {
        issuer: this.#issuer(),
        tokenEndpoint: this.#tokenEndpoint(),
        replay: this.#replay,
        now: this.#now(),
      });
    } catch (err) {
      if (err instanceof OAuthError) throw invalidClient(err.detail ?? 'client assertion rejected', false, claimed);
      throw err;
    }
    return { client, method: 'private_key_jwt', secret: undefined };
  }
}
