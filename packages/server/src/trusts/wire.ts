// The wire form of a trusted issuer, as the admin API, the client file and the state document
// read and write it: snake_case names, times in epoch seconds like the clients' wire form.

import type { PublicJwk } from '../ground/public-jwk.js';
import type { TrustedIssuerRecord, TrustKind } from '../ground/trusts.js';

export interface TrustWire {
  name: string;
  kind: TrustKind;
  issuer: string | null;
  trust_domain: string | null;
  jwks_uri: string | null;
  jwks: { keys: PublicJwk[] } | null;
  ca_bundle: string | null;
  allowed_private_hosts: string[];
  audiences: string[];
  max_token_lifetime: number;
  single_use_jti: boolean | null;
  created_at: number;
  updated_at: number;
}

/** What a create may send (created_at and updated_at are the server's). */
export type TrustInput = Partial<Omit<TrustWire, 'created_at' | 'updated_at'>>;

export function trustToWire(t: TrustedIssuerRecord): TrustWire {
  return {
    name: t.name,
    kind: t.kind,
    issuer: t.issuer,
    trust_domain: t.trustDomain,
    jwks_uri: t.jwksUri,
    jwks: t.jwks === null ? null : { keys: t.jwks.keys.map((k) => ({ ...k })) },
    ca_bundle: t.caBundle,
    allowed_private_hosts: [...t.allowedPrivateHosts],
    audiences: [...t.audiences],
    max_token_lifetime: t.maxTokenLifetime,
    single_use_jti: t.singleUseJti,
    created_at: Math.floor(t.createdAt / 1000),
    updated_at: Math.floor(t.updatedAt / 1000),
  };
}

/** The fields a create takes, from the wire form (what export and `apply` write back). */
export function trustInputOf(w: TrustWire | TrustInput): TrustInput {
  const { created_at: _c, updated_at: _u, ...input } = w as TrustWire;
  return input;
}
