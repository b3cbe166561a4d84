// Scope (RFC 6749 §3.3) and resource/audience (RFC 8707 §2) selection for a token request.

import { OAuthError } from '../../ground/errors.js';
import type { ClientRecord } from '../../ground/records.js';
import { isResourceUri, SCOPE_TOKEN } from '../../ground/scope.js';

/** RFC 6749 §3.3: the requested scopes, each allowed for the client; absent = the client's defaults. */
export function grantedScope(client: ClientRecord, requested: string | undefined): string[] {
  if (requested === undefined) return client.defaultScope ?? client.scope;
  const tokens = requested.split(' ').filter((s) => s.length > 0);
  if (tokens.length === 0) return client.defaultScope ?? client.scope;
  const out: string[] = [];
  for (const t of tokens) {
    // Registered scopes passed the registry's check of the same grammar: only others are parsed.
    if (!client.scope.includes(t)) {
      if (!SCOPE_TOKEN.test(t)) throw new OAuthError('invalid_scope', 'The requested scope is malformed.');
      throw new OAuthError('invalid_scope', 'The requested scope is invalid, unknown, or exceeds what the client may request.', {
        detail: `scope "${t}" not allowed`,
      });
    }
    if (!out.includes(t)) out.push(t);
  }
  return out;
}

/**
 * The token's audiences: every `resource` (RFC 8707) and `audience` value must be one the client
 * may request, else invalid_target; none requested = the client's default audiences.
 */
export function grantedAudience(client: ClientRecord, resources: string[] | undefined, audiences: string[] | undefined): string[] {
  const requested: string[] = [];
  for (const r of resources ?? []) {
    // A registered audience passed the registry's stricter URI check: only others are parsed.
    if (!client.audience.includes(r) && !isResourceUri(r)) {
      throw new OAuthError('invalid_target', 'The resource parameter must be an absolute URI without a fragment.');
    }
    requested.push(r);
  }
  for (const a of audiences ?? []) requested.push(a);
  if (requested.length === 0) return client.defaultAudience ?? client.audience;
  const out: string[] = [];
  for (const r of requested) {
    if (!client.audience.includes(r)) {
      throw new OAuthError('invalid_target', 'The requested resource is invalid, unknown, or not allowed for this client.', {
        detail: `audience "${r.slice(0, 200)}" not allowed`,
      });
    }
    if (!out.includes(r)) out.push(r);
  }
  return out;
}
