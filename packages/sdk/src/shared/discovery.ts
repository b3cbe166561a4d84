// RFC 8414 §3: fetching authorization server metadata, and the §3.3 rule that the document must
// name exactly the issuer it was fetched for.

import { DiscoveryError, SdkOptionsError } from './errors.js';

export type FetchLike = typeof globalThis.fetch;

export interface AuthorizationServerMetadata {
  issuer: string;
  [member: string]: unknown;
}

export type EndpointName = 'token_endpoint' | 'jwks_uri' | 'introspection_endpoint';

/** Throws SdkOptionsError unless `issuer` is an http(s) URL without query or fragment (RFC 8414 §2). */
export function checkIssuer(issuer: unknown, option = 'issuer'): string {
  if (typeof issuer !== 'string' || issuer === '') throw new SdkOptionsError(`${option} must be the issuer URL, a non-empty string`);
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new SdkOptionsError(`${option} must be an absolute URL, got ${JSON.stringify(issuer)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new SdkOptionsError(`${option} must be an http or https URL`);
  if (url.search !== '' || url.hash !== '' || issuer.includes('?') || issuer.includes('#')) {
    throw new SdkOptionsError(`${option} must not have a query or fragment`);
  }
  return issuer;
}

/** RFC 8414 §3.1: the well-known segment goes between the host and any path of the issuer. */
export function metadataUrl(issuer: string): string {
  const url = new URL(issuer);
  const path = url.pathname === '/' ? '' : url.pathname.replace(/\/$/, '');
  return `${url.origin}/.well-known/oauth-authorization-server${path}`;
}

export async function fetchMetadata(issuer: string, fetchImpl: FetchLike, timeoutMs: number): Promise<AuthorizationServerMetadata> {
  const url = metadataUrl(issuer);
  let res: Response;
  let body: unknown;
  try {
    res = await fetchImpl(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
  } catch (err) {
    throw new DiscoveryError('unreachable', `cannot fetch ${url}: ${(err as Error).message}`, { cause: err });
  }
  if (res.status !== 200) {
    await res.body?.cancel().catch(() => undefined);
    throw new DiscoveryError('http_status', `${url} answered HTTP ${res.status}`, { status: res.status });
  }
  try {
    body = await res.json();
  } catch (err) {
    throw new DiscoveryError('invalid_metadata', `${url} did not answer JSON`, { cause: err });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new DiscoveryError('invalid_metadata', `${url} did not answer a JSON object`);
  }
  const metadata = body as Record<string, unknown>;
  // §3.3: a document for another issuer must not be used, or a proxy could substitute endpoints.
  if (metadata.issuer !== issuer) {
    throw new DiscoveryError(
      'issuer_mismatch',
      `the metadata at ${url} names issuer ${JSON.stringify(metadata.issuer)}, not the configured ${JSON.stringify(issuer)}`,
    );
  }
  return metadata as AuthorizationServerMetadata;
}

/** The URL of one endpoint the document must name. */
export function endpoint(metadata: AuthorizationServerMetadata, name: EndpointName): string {
  const value = metadata[name];
  if (typeof value === 'string') {
    try {
      const url = new URL(value);
      if (url.protocol === 'https:' || url.protocol === 'http:') return value;
    } catch {
      // reported below
    }
  }
  throw new DiscoveryError('invalid_metadata', `the metadata of ${metadata.issuer} has no usable ${name}`);
}
