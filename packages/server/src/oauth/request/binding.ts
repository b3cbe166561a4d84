// Sender-constrained access tokens: the binding a token request proved (RFC 9449 §6 DPoP key,
// RFC 8705 §3 client certificate), written into the token as its `cnf` claim (RFC 7800 §3.1) and
// answered with its token_type (RFC 9449 §5: "DPoP"; RFC 8705 keeps "Bearer").

/**
 * What a token request proved possession of, set by an earlier step: the DPoP proof check
 * (`jkt`, the RFC 7638 SHA-256 thumbprint of the proof's key) or the mutual-TLS step (`x5tS256`,
 * the base64url SHA-256 of the client certificate's DER). Both are base64url: nothing to escape.
 */
export type TokenBinding = { jkt: string } | { x5tS256: string };

/** The `cnf` claim as a token and an introspection answer carry it. */
export interface Confirmation {
  jkt?: string;
  'x5t#S256'?: string;
}

export function confirmation(binding: TokenBinding): Confirmation {
  return 'jkt' in binding ? { jkt: binding.jkt } : { 'x5t#S256': binding.x5tS256 };
}

/** `,"cnf":{...}` for the claims JSON of a bound token; "" for an unbound one. */
export function cnfMember(binding: TokenBinding | undefined): string {
  if (binding === undefined) return '';
  return 'jkt' in binding ? `,"cnf":{"jkt":"${binding.jkt}"}` : `,"cnf":{"x5t#S256":"${binding.x5tS256}"}`;
}

/** RFC 9449 §5 token_type "DPoP" for a DPoP-bound token; RFC 8705 §3 keeps "Bearer" for a certificate-bound one. */
export function tokenTypeOf(cnf: Confirmation | undefined): 'DPoP' | 'Bearer' {
  return cnf?.jkt !== undefined ? 'DPoP' : 'Bearer';
}

export function bindingTokenType(binding: TokenBinding | undefined): 'DPoP' | 'Bearer' {
  return binding !== undefined && 'jkt' in binding ? 'DPoP' : 'Bearer';
}

/**
 * What token reuse tells bindings apart by: a bound token is handed out again only to a request
 * that proved the same key or certificate, and never to an unbound one (nor an unbound one to a
 * bound request).
 */
export function bindingReuseKey(binding: TokenBinding | undefined): string | null {
  if (binding === undefined) return null;
  return 'jkt' in binding ? `jkt:${binding.jkt}` : `x5t#S256:${binding.x5tS256}`;
}

/** A `cnf` claim of the shape we write (one string member), or undefined when it is absent or malformed. */
export function isConfirmation(v: unknown): v is Confirmation {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const c = v as Record<string, unknown>;
  return (c.jkt === undefined || typeof c.jkt === 'string')
    && (c['x5t#S256'] === undefined || typeof c['x5t#S256'] === 'string')
    && (c.jkt !== undefined || c['x5t#S256'] !== undefined);
}
