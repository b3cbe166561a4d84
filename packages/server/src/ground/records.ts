// The records every part of the server speaks of: clients, their secrets, signing keys and
// revocations, as storage keeps them and the registry, the key ring and the OAuth core read them.
// All times are epoch milliseconds.

import type { SigningAlgorithm, TlsClientAuthField, TokenEndpointAuthMethod } from './names.js';
import type { PublicJwk } from './public-jwk.js';
import type { FederatedIdentity } from './trusts.js';

/** One client secret, stored as the hex SHA-256 digest of the secret string. */
export interface ClientSecretRecord {
  /** Hex SHA-256 of the secret as the client sends it. */
  digest: string;
  createdAt: number;
  /** When this secret stops working (set on the previous secret when a new one is issued); null = no expiry. */
  expiresAt: number | null;
}

export type { PublicJwk } from './public-jwk.js';

/** A client's custom claims: claim names (none reserved, see RESERVED_CLAIM_NAMES) to JSON values. */
export type CustomClaims = Record<string, unknown>;

export interface ClientRecord {
  clientId: string;
  clientName: string;
  /** Scopes the client may request. */
  scope: string[];
  /** Scopes granted when the request names none; null = all of `scope`. */
  defaultScope: string[] | null;
  /** Audiences (RFC 8707 resources) the client may request tokens for. */
  audience: string[];
  /** Audiences a token gets when the request names none; null = all of `audience`. */
  defaultAudience: string[] | null;
  tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  /**
   * RFC 7591 `grant_types`: ['client_credentials'] for a client that gets tokens; [] for a client
   * that only introspects or revokes (a resource server). Added by the lead: default ['client_credentials'].
   */
  grantTypes: string[];
  /**
   * The audience identifiers this client answers to as a resource server: it may introspect tokens
   * whose `aud` names one of them (RFC 7662 §4). Wire name `resource_uris`; default [].
   */
  resourceUris: string[];
  /** Public keys for private_key_jwt and self_signed_tls_client_auth; null for the other methods. */
  jwks: { keys: PublicJwk[] } | null;
  /**
   * federated_jwt only: the trust and the external subject whose platform token authenticates the
   * client (wire names federated_issuer, federated_subject, federated_claims); null otherwise.
   */
  federation: FederatedIdentity | null;
  /** Access token lifetime in seconds; null = the server default. */
  accessTokenTtl: number | null;
  /**
   * Token requests per second this client may make (fractions allowed; 0 = no limit); null = the
   * server default (M2M_AUTH_TOKEN_RATE_LIMIT). Wire name `rate_limit`.
   */
  rateLimit: number | null;
  /**
   * Answer a repeated request for the same scope and audience with the client's last token while
   * it has more than half its lifetime left, instead of signing a new one. Wire name `token_reuse`;
   * default false.
   */
  tokenReuse: boolean;
  /**
   * RFC 9449 §5.2 `dpop_bound_access_tokens`: every token request must carry a DPoP proof, and
   * every token is DPoP-bound. Default false.
   */
  dpopBoundAccessTokens: boolean;
  /**
   * FAPI 2.0 Security Profile for this client (wire name `fapi2`): private_key_jwt (or mutual TLS)
   * authentication only, sender-constrained tokens only, PS256, ES256 or EdDSA only, assertion
   * `aud` the issuer only. Default false.
   */
  fapi2: boolean;
  disabled: boolean;
  /**
   * Custom claims copied into every access token of the client, after the RFC 9068 ones; {} for
   * none. Wire name `claims`.
   */
  claims: CustomClaims;
  /**
   * tls_client_auth (RFC 8705 §2.1.2): the one certificate field the client is known by and its
   * expected value; null for the other methods.
   */
  tlsClientAuth: { field: TlsClientAuthField; value: string } | null;
  /**
   * RFC 8705 §3: access tokens are bound to the client certificate of the token request
   * (`cnf.x5t#S256`). Wire name `tls_client_certificate_bound_access_tokens`; default false.
   */
  tlsClientCertificateBoundAccessTokens: boolean;
  /** Current secrets (newest first); empty for private_key_jwt, federated_jwt and the mTLS methods. */
  secrets: ClientSecretRecord[];
  /** Kill switch: tokens issued to this client before this instant are inactive; null = never used. */
  tokensRevokedAt: number | null;
  createdAt: number;
  updatedAt: number;
}

export interface SigningKeyRecord {
  kid: string;
  alg: SigningAlgorithm;
  /** The public JWK (with kid, alg, use: "sig"). */
  publicJwk: PublicJwk;
  /** PKCS#8 private key encrypted with AES-256-GCM under the key-encryption key (see keys/kek.ts). */
  privateKeyEncrypted: string;
  createdAt: number;
  /** Published from createdAt; signs from activatesAt on. */
  activatesAt: number;
  /** When a newer key took over signing; null while this key may still sign. */
  retiredAt: number | null;
  /** When the key leaves the JWKS (the last token it signed has expired); null while not retired. */
  expiresAt: number | null;
  /**
   * When an operator revoked the key (it leaked): from then on it never signs, is not published,
   * and every token it signed is refused. Null unless revoked; a revoked key is also retired.
   */
  revokedAt: number | null;
}

export interface RevocationRecord {
  jti: string;
  clientId: string;
  /** The token's exp (ms): the revocation is kept until then. */
  expiresAt: number;
  revokedAt: number;
}

/** Where clients come from: the registry's cache in production, anything with get() in tests. */
export interface ClientLookup {
  get(clientId: string): Promise<ClientRecord | undefined>;
}
