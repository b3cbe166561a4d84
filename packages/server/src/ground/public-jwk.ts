// RFC 7517 public keys as the server keeps them: a private_key_jwt client's registered keys, the
// static keys of a trusted issuer. Apart from records.ts so that trusts.ts and records.ts both use it.

/** A public JWK (RFC 7517 §4). */
export type PublicJwk = Record<string, unknown> & { kty: string; kid?: string; alg?: string; use?: string };
