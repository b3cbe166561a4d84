// Trusted issuers ("trusts"): the platforms whose signed workload identities authenticate
// federated clients (token_endpoint_auth_method federated_jwt) instead of a secret or a key the
// client holds. A Kubernetes cluster's service-account issuer, a SPIFFE trust domain, or any
// issuer with OIDC discovery (GitHub Actions, GitLab, a cloud IdP). All times are epoch ms.

import type { PublicJwk } from './public-jwk.js';

export type TrustKind = 'kubernetes' | 'spiffe' | 'oidc';

export const TRUST_KINDS: readonly TrustKind[] = ['kubernetes', 'spiffe', 'oidc'];

/** The token endpoint authentication method of a federated client (no registered value exists). */
export const FEDERATED_JWT = 'federated_jwt';

/** The client assertion type of a SPIFFE JWT-SVID (draft-ietf-oauth-spiffe-client-auth). */
export const CLIENT_ASSERTION_TYPE_SPIFFE = 'urn:ietf:params:oauth:client-assertion-type:jwt-spiffe';

/** A trust's name (what a client's federated_issuer names): 1 to 64 of [a-z0-9-], starting with a letter. */
export const TRUST_NAME = /^[a-z][a-z0-9-]{0,63}$/;

/** Longest platform token lifetime (exp - iat, or exp - now) a trust accepts by default: 24 h. */
export const DEFAULT_MAX_TOKEN_LIFETIME = 24 * 3600;

export interface TrustedIssuerRecord {
  /** The trust's name: 1 to 64 of [a-z0-9-], starting with a letter; what clients name. */
  name: string;
  kind: TrustKind;
  /**
   * The `iss` its tokens carry, an https URL (kubernetes: the cluster's service-account issuer;
   * oidc: the issuer of OIDC discovery). Null for spiffe, whose trust domain is in `sub`.
   */
  issuer: string | null;
  /** spiffe only: the trust domain (prod.example.org). Null for the other kinds. */
  trustDomain: string | null;
  /**
   * Where keys are fetched when not from the issuer's discovery: a JWKS URL (kubernetes, oidc) or
   * the SPIFFE bundle endpoint (spiffe). Null = OIDC discovery of `issuer` (or `jwks` only).
   */
  jwksUri: string | null;
  /** Keys given by value (a JWKS file, or a static SPIFFE bundle); null = fetched. */
  jwks: { keys: PublicJwk[] } | null;
  /** PEM CA bundle to trust when fetching keys (an in-cluster API server); null = the system CAs. */
  caBundle: string | null;
  /**
   * Hosts (exact names or IP literals) this trust may fetch from even though they resolve to a
   * private, loopback or link-local address (the in-cluster API server). [] = none.
   */
  allowedPrivateHosts: string[];
  /** Audiences accepted besides our issuer and token endpoint (not for spiffe). [] = none. */
  audiences: string[];
  /** Longest lifetime a platform token may have, in seconds (default DEFAULT_MAX_TOKEN_LIFETIME). */
  maxTokenLifetime: number;
  /**
   * Single-use `jti`: null = the kind's default (off for kubernetes and spiffe, whose tokens are
   * reused by design; on for oidc when the token carries a jti); true/false = forced.
   */
  singleUseJti: boolean | null;
  createdAt: number;
  updatedAt: number;
}

/** A federated client's identity at its trust (ClientRecord.federation). */
export interface FederatedIdentity {
  /** The trust's name (federated_issuer on the wire). */
  trust: string;
  /** The exact external subject (federated_subject): `sub` of the platform token. */
  subject: string;
  /** Claims that must hold in the platform token, name to exact JSON value (federated_claims); {} = none. */
  claims: Record<string, unknown>;
}

/** Where trusts come from: the trust registry's cache in production, anything with get() in tests. */
export interface TrustLookup {
  get(name: string): Promise<TrustedIssuerRecord | undefined>;
}
