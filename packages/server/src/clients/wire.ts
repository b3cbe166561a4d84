// The RFC 7591 §2 client metadata wire form of a ClientRecord, as the admin API reads and writes it.
//
// Choices:
// - Field names are the RFC 7591 metadata names where one exists (client_id, client_name, scope,
//   token_endpoint_auth_method, jwks, client_secret, client_secret_expires_at); the others follow
//   the same snake_case style.
// - Times are epoch seconds (integers), the NumericDate of RFC 7591 §3.2.1 and RFC 7519 §2, so
//   they compare directly with a token's `iat` and `exp`.
// - `client_secret` appears only in the responses that issue one (create, rotate, an update that
//   switches to a secret method); stored digests never leave the server.

import type { ClientRecord, PublicJwk } from '../ground/records.js';
import { TLS_CLIENT_AUTH_FIELDS, type TlsClientAuthField, type TokenEndpointAuthMethod } from '../ground/names.js';
import { publicJwk } from './jwk.js';

/** Metadata a caller may send to create or update a client (validated by ClientRegistry). */
export interface ClientMetadataInput {
  client_name?: string;
  /** Space-delimited scope tokens (RFC 6749 §3.3). */
  scope?: string;
  /** Space-delimited subset of `scope`; null = all of `scope`. */
  default_scope?: string | null;
  /** Absolute URIs of the resource servers (RFC 8707 resources). */
  audience?: string[];
  /** Subset of `audience`; null = all of `audience`. */
  default_audience?: string[] | null;
  /** ['client_credentials'] (default) or [] for a client that only introspects or revokes. */
  grant_types?: string[];
  /** Audience identifiers this client answers to as a resource server (introspection); default []. */
  resource_uris?: string[];
  token_endpoint_auth_method?: TokenEndpointAuthMethod;
  jwks?: { keys: PublicJwk[] } | null;
  /** Seconds; null = the server default. */
  access_token_ttl?: number | null;
  /** Token requests per second (fractions allowed; 0 = no limit); null = the server default. */
  rate_limit?: number | null;
  /** Reuse the last token for a repeated request while it has more than half its lifetime left; default false. */
  token_reuse?: boolean;
  /** RFC 9449 §5.2: every token request needs a DPoP proof; default false. */
  dpop_bound_access_tokens?: boolean;
  /** FAPI 2.0 Security Profile for this client (docs/sender-constrained-tokens.md); default false. */
  fapi2?: boolean;
  disabled?: boolean;
  /** Custom claims copied into every access token of the client; {} or null = none. */
  claims?: Record<string, unknown> | null;
  /** federated_jwt: the name of the trusted issuer whose platform tokens authenticate the client. */
  federated_issuer?: string | null;
  /** federated_jwt: the exact `sub` of those platform tokens. */
  federated_subject?: string | null;
  /** federated_jwt: claims the platform token must carry, with these exact values; {} or null = none. */
  federated_claims?: Record<string, unknown> | null;
  /** RFC 8705 §2.1.2, tls_client_auth only: exactly one of these five; null removes it. */
  tls_client_auth_subject_dn?: string | null;
  tls_client_auth_san_dns?: string | null;
  tls_client_auth_san_uri?: string | null;
  tls_client_auth_san_ip?: string | null;
  tls_client_auth_san_email?: string | null;
  /** RFC 8705 §3: tokens bound to the client certificate of the token request; default false. */
  tls_client_certificate_bound_access_tokens?: boolean;
}

/** What a create may send besides the metadata: a chosen client_id, the digest of an existing secret. */
export interface ClientCreateInput extends ClientMetadataInput {
  /** cl_ and 1 to 64 of [A-Za-z0-9_-]; absent = the server issues one. */
  client_id?: string;
  /** Hex SHA-256 of an existing secret, for a client re-created elsewhere; absent = a new secret is issued. */
  client_secret_sha256?: string;
}

export interface ClientWire {
  client_id: string;
  client_name: string;
  scope: string;
  default_scope: string | null;
  audience: string[];
  default_audience: string[] | null;
  grant_types: string[];
  resource_uris: string[];
  token_endpoint_auth_method: TokenEndpointAuthMethod;
  jwks: { keys: PublicJwk[] } | null;
  access_token_ttl: number | null;
  rate_limit: number | null;
  token_reuse: boolean;
  dpop_bound_access_tokens: boolean;
  fapi2: boolean;
  disabled: boolean;
  /** Custom claims copied into every access token of the client; {} = none. */
  claims: Record<string, unknown>;
  /** federated_jwt clients only (null otherwise): the trust's name, the exact subject, the required claims. */
  federated_issuer: string | null;
  federated_subject: string | null;
  federated_claims: Record<string, unknown> | null;
  /** RFC 8705 §2.1.2: the one certificate name of a tls_client_auth client; null for the others. */
  tls_client_auth_subject_dn: string | null;
  tls_client_auth_san_dns: string | null;
  tls_client_auth_san_uri: string | null;
  tls_client_auth_san_ip: string | null;
  tls_client_auth_san_email: string | null;
  tls_client_certificate_bound_access_tokens: boolean;
  /** Kill switch instant (epoch seconds): tokens issued before it are inactive; null = never used. */
  tokens_revoked_at: number | null;
  created_at: number;
  updated_at: number;
}

export interface ClientWireWithSecret extends ClientWire {
  client_secret: string;
  /** RFC 7591 §3.2.1: REQUIRED with client_secret; 0 = the secret does not expire. */
  client_secret_expires_at: 0;
}

export function epochSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/** The five RFC 8705 §2.1.2 fields: the registered one with its value, the others null. */
function tlsClientAuthWire(name: ClientRecord['tlsClientAuth']): Record<TlsClientAuthField, string | null> {
  return Object.fromEntries(TLS_CLIENT_AUTH_FIELDS.map((f) => [f, name?.field === f ? name.value : null])) as Record<TlsClientAuthField, string | null>;
}

export function clientToWire(client: ClientRecord): ClientWire {
  return {
    client_id: client.clientId,
    client_name: client.clientName,
    scope: client.scope.join(' '),
    default_scope: client.defaultScope === null ? null : client.defaultScope.join(' '),
    audience: [...client.audience],
    default_audience: client.defaultAudience === null ? null : [...client.defaultAudience],
    grant_types: [...client.grantTypes],
    resource_uris: [...client.resourceUris],
    token_endpoint_auth_method: client.tokenEndpointAuthMethod,
    // The canonical public keys, also for a record stored before keys were stored canonically.
    jwks: client.jwks === null ? null : { keys: client.jwks.keys.map(publicJwk) },
    access_token_ttl: client.accessTokenTtl,
    rate_limit: client.rateLimit,
    token_reuse: client.tokenReuse,
    dpop_bound_access_tokens: client.dpopBoundAccessTokens,
    fapi2: client.fapi2,
    disabled: client.disabled,
    claims: JSON.parse(JSON.stringify(client.claims)) as Record<string, unknown>,
    federated_issuer: client.federation?.trust ?? null,
    federated_subject: client.federation?.subject ?? null,
    federated_claims: client.federation === null ? null : JSON.parse(JSON.stringify(client.federation.claims)) as Record<string, unknown>,
    ...tlsClientAuthWire(client.tlsClientAuth),
    tls_client_certificate_bound_access_tokens: client.tlsClientCertificateBoundAccessTokens,
    tokens_revoked_at: client.tokensRevokedAt === null ? null : epochSeconds(client.tokensRevokedAt),
    created_at: epochSeconds(client.createdAt),
    updated_at: epochSeconds(client.updatedAt),
  };
}

/** The wire form with a newly issued secret: the only time the secret is ever shown. */
export function clientToWireWithSecret(client: ClientRecord, clientSecret: string): ClientWireWithSecret {
  return { ...clientToWire(client), client_secret: clientSecret, client_secret_expires_at: 0 };
}
