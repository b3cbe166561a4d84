// Names on the wire this server knows: token endpoint authentication methods (RFC 7591 §2),
// access token signing algorithms, client assertion algorithms and type (RFC 7523), grant types,
// the mutual-TLS client metadata (RFC 8705 §2.1.2).

export type TokenEndpointAuthMethod =
  | 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'federated_jwt' | 'tls_client_auth' | 'self_signed_tls_client_auth';

/** federated_jwt (no registered value exists): the client presents its platform's signed workload identity (see trusts.ts). */
export const TOKEN_ENDPOINT_AUTH_METHODS: readonly TokenEndpointAuthMethod[] = [
  'client_secret_basic',
  'client_secret_post',
  'private_key_jwt',
  'federated_jwt',
  'tls_client_auth',
  'self_signed_tls_client_auth',
];

/** The methods whose credential is the TLS client certificate (RFC 8705 §2). */
export function isMutualTlsMethod(method: TokenEndpointAuthMethod): boolean {
  return method === 'tls_client_auth' || method === 'self_signed_tls_client_auth';
}

/**
 * RFC 8705 §2.1.2: the certificate field a tls_client_auth client is known by; a client registers
 * exactly one of them.
 */
export type TlsClientAuthField =
  | 'tls_client_auth_subject_dn' | 'tls_client_auth_san_dns' | 'tls_client_auth_san_uri'
  | 'tls_client_auth_san_ip' | 'tls_client_auth_san_email';

export const TLS_CLIENT_AUTH_FIELDS: readonly TlsClientAuthField[] = [
  'tls_client_auth_subject_dn',
  'tls_client_auth_san_dns',
  'tls_client_auth_san_uri',
  'tls_client_auth_san_ip',
  'tls_client_auth_san_email',
];

export type SigningAlgorithm = 'ES256' | 'EdDSA' | 'PS256' | 'RS256';

export const SIGNING_ALGORITHMS: readonly SigningAlgorithm[] = ['ES256', 'EdDSA', 'PS256', 'RS256'];

export const CLIENT_ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** Client assertion algorithms: asymmetric only, never `none`, never HMAC (a public key is not a shared secret). */
export const CLIENT_ASSERTION_ALGS = [
  'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519', 'PS256', 'PS384', 'PS512', 'RS256', 'RS384', 'RS512',
] as const;

/**
 * RFC 9449 §5.1 dpop_signing_alg_values_supported: the DPoP proof algorithms, asymmetric only
 * (§4.2: never `none`, never a MAC); the ones this server signs its own tokens with, whose
 * verification (src/keys/algorithms.ts) the token endpoint already runs, and Ed25519 (RFC 9864's
 * name for EdDSA with Ed25519, which some clients send).
 */
export const DPOP_SIGNING_ALGS: readonly string[] = [...SIGNING_ALGORITHMS, 'Ed25519'];

/** FAPI 2.0 Security Profile (cryptography): the only algorithms a `fapi2` client's assertions and proofs may use. */
export const FAPI2_ALGS: readonly string[] = ['PS256', 'ES256', 'EdDSA', 'Ed25519'];

/** FAPI 2.0 Security Profile (client authentication): how a `fapi2` client may authenticate: private_key_jwt or mutual TLS (RFC 8705). */
export const FAPI2_AUTH_METHODS: readonly TokenEndpointAuthMethod[] = ['private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth'];

/** RFC 7591 §2 grant_types this server implements. */
export const GRANT_TYPES: readonly string[] = ['client_credentials'];

/**
 * Claim names a client's custom `claims` may not use: the registered JWT claims (RFC 7519 §4.1),
 * the ones RFC 9068 §2.2 and RFC 8693 §4 give a meaning in access tokens, the members of an
 * introspection answer (RFC 7662 §2.2), and every other name this server writes itself.
 */
export const RESERVED_CLAIM_NAMES: ReadonlySet<string> = new Set([
  'iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti', 'client_id', 'scope', 'cnf', 'act', 'may_act',
  'auth_time', 'acr', 'amr', 'active', 'token_type', 'username',
]);
