// Authorization server metadata (RFC 8414 §2), computed from configuration and the registered clients.

import { CLIENT_ASSERTION_ALGS, DPOP_SIGNING_ALGS } from '../../ground/names.js';
import { SUPPORTED_GRANT_TYPES } from '../token/grants/select.js';
import { TOKEN_ENDPOINT_AUTH_METHODS } from '../../ground/names.js';

export const ENDPOINT_PATHS = Object.freeze({
  token: '/oauth2/token',
  introspection: '/oauth2/introspect',
  revocation: '/oauth2/revoke',
  jwks: '/oauth2/jwks',
  metadata: '/.well-known/oauth-authorization-server',
  openidConfiguration: '/.well-known/openid-configuration',
});

export function endpointUrl(issuer: string, path: string): string {
  return issuer.replace(/\/+$/, '') + path;
}

export interface MetadataInput {
  issuer: string;
  /** Every scope some client may request (RECOMMENDED, §2). */
  scopes: string[];
  /** Algorithms of the published signing keys. */
  accessTokenSigningAlgs: string[];
  /** What this server offers of RFC 8705; nothing is published when absent. */
  mutualTls?: MutualTlsMetadata;
}

/** RFC 8705 in the metadata: the mTLS listener's base URL (§5), and whether tokens can be bound to certificates (§3.3). */
export interface MutualTlsMetadata {
  /** The base URL of the mutual-TLS listener; no aliases when absent (certificates come through a proxy). */
  aliasBase?: string;
  boundAccessTokens: boolean;
}

export function authorizationServerMetadata(input: MetadataInput): Record<string, unknown> {
  const { issuer } = input;
  const authMethods = [...TOKEN_ENDPOINT_AUTH_METHODS];
  const assertionAlgs = [...CLIENT_ASSERTION_ALGS];
  return {
    issuer,
    token_endpoint: endpointUrl(issuer, ENDPOINT_PATHS.token),
    jwks_uri: endpointUrl(issuer, ENDPOINT_PATHS.jwks),
    introspection_endpoint: endpointUrl(issuer, ENDPOINT_PATHS.introspection),
    revocation_endpoint: endpointUrl(issuer, ENDPOINT_PATHS.revocation),
    scopes_supported: input.scopes,
    // No authorization endpoint: this server has no response types (§2 requires the member).
    response_types_supported: [],
    grant_types_supported: [...SUPPORTED_GRANT_TYPES],
    token_endpoint_auth_methods_supported: authMethods,
    token_endpoint_auth_signing_alg_values_supported: assertionAlgs,
    introspection_endpoint_auth_methods_supported: authMethods,
    introspection_endpoint_auth_signing_alg_values_supported: assertionAlgs,
    revocation_endpoint_auth_methods_supported: authMethods,
    revocation_endpoint_auth_signing_alg_values_supported: assertionAlgs,
    // Not registered by RFC 8414, but how verifiers learn our RFC 9068 token algorithms.
    access_token_signing_alg_values_supported: input.accessTokenSigningAlgs,
    ...(input.mutualTls?.boundAccessTokens && { tls_client_certificate_bound_access_tokens: true }),
    // RFC 8705 §5: the endpoints again on the listener that asks for client certificates.
    ...(input.mutualTls?.aliasBase !== undefined && {
      mtls_endpoint_aliases: {
        token_endpoint: endpointUrl(input.mutualTls.aliasBase, ENDPOINT_PATHS.token),
        introspection_endpoint: endpointUrl(input.mutualTls.aliasBase, ENDPOINT_PATHS.introspection),
        revocation_endpoint: endpointUrl(input.mutualTls.aliasBase, ENDPOINT_PATHS.revocation),
      },
    }),
    // RFC 9449 §5.1: the DPoP proof algorithms the token endpoint accepts.
    dpop_signing_alg_values_supported: [...DPOP_SIGNING_ALGS],
  };
}
