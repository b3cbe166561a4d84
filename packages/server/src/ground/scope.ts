// The grammar of scope tokens (RFC 6749 §3.3) and of resource URIs (RFC 8707 §2), shared by the
// registry that stores them and the token endpoint that grants them.

/** RFC 6749 §3.3: scope-token = 1*NQCHAR, NQCHAR = %x21 / %x23-5B / %x5D-7E. */
export const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;
/** RFC 3986 §3.1 scheme, which makes a URI absolute. */
export const URI_SCHEME = /^[A-Za-z][A-Za-z0-9+.-]*:/;

/** RFC 8707 §2: a resource is an absolute URI without a fragment. */
export function isResourceUri(value: string): boolean {
  return !value.includes('#') && URI_SCHEME.test(value) && URL.canParse(value);
}
