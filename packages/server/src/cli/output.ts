// Human output of the CLI: aligned tables and key/value listings of the admin API's wire forms.

import type { ClientWire } from '../clients/wire.js';
import { TLS_CLIENT_AUTH_FIELDS } from '../ground/names.js';
import type { KeyWire } from '../admin/key-wire.js';
import type { TrustWire } from '../trusts/wire.js';

export interface Output {
  out(line: string): void;
  err(line: string): void;
}

export const stdio: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** Replaces control characters so that a value cannot rearrange the terminal. */
function clean(value: string): string {
  // eslint-disable-next-line no-control-regex
  return value.replace(/[\u0000-\u001F\u007F-\u009F]/g, '?');
}

/** Columns padded to their widest cell; the last column is not padded. */
export function table(headers: string[], rows: string[][]): string[] {
  const all = [headers, ...rows].map((r) => r.map(clean));
  const widths = headers.map((_, i) => Math.max(...all.map((r) => [...(r[i] ?? '')].length)));
  return all.map((r) =>
    r.map((cell, i) => (i === r.length - 1 ? cell : cell + ' '.repeat(widths[i]! - [...cell].length))).join('  ').trimEnd(),
  );
}

export function isoTime(epochSeconds: number | null | undefined): string {
  if (epochSeconds === null || epochSeconds === undefined) return '-';
  return new Date(epochSeconds * 1000).toISOString().replace('.000Z', 'Z');
}

function jwksSummary(jwks: ClientWire['jwks']): string {
  if (jwks === null) return '-';
  const keys = jwks.keys.map((k) => `${typeof k.kid === 'string' ? k.kid : '(no kid)'} ${k.kty}${typeof k.alg === 'string' ? ` ${k.alg}` : ''}`);
  return `${jwks.keys.length} key${jwks.keys.length === 1 ? '' : 's'}: ${keys.join(', ')}`;
}

/** One client as key/value lines, wire names on the left. */
export function clientDetails(c: ClientWire & { client_secret?: string }): string[] {
  const rows: Array<[string, string]> = [
    ['client_id', c.client_id],
    ['client_name', c.client_name],
    ['status', c.disabled ? 'disabled' : 'enabled'],
    ['token_endpoint_auth_method', c.token_endpoint_auth_method],
    ['grant_types', c.grant_types.length ? c.grant_types.join(' ') : '(none: introspection and revocation only)'],
    ['scope', c.scope === '' ? '(none)' : c.scope],
    ['default_scope', c.default_scope === null ? '(all of scope)' : c.default_scope === '' ? '(none)' : c.default_scope],
    ['audience', c.audience.length ? c.audience.join(' ') : '(none)'],
    ['default_audience', c.default_audience === null ? '(all of audience)' : c.default_audience.join(' ')],
    ['resource_uris', c.resource_uris.length ? c.resource_uris.join(' ') : '-'],
    ['jwks', jwksSummary(c.jwks)],
    ['access_token_ttl', c.access_token_ttl === null ? '(server default)' : `${c.access_token_ttl}s`],
    ['rate_limit', c.rate_limit === null ? '(server default)' : c.rate_limit === 0 ? 'none' : `${c.rate_limit}/s`],
    ['token_reuse', c.token_reuse ? 'on' : 'off'],
    ['dpop_bound_access_tokens', c.dpop_bound_access_tokens ? 'on' : 'off'],
    ['fapi2', c.fapi2 ? 'on' : 'off'],
    ['claims', Object.keys(c.claims ?? {}).length === 0 ? '(none)' : JSON.stringify(c.claims)],
    ...(c.federated_issuer == null ? [] : [
      ['federated_issuer', c.federated_issuer],
      ['federated_subject', c.federated_subject ?? '-'],
      ['federated_claims', Object.keys(c.federated_claims ?? {}).length === 0 ? '(none)' : JSON.stringify(c.federated_claims)],
    ] as Array<[string, string]>),
    // RFC 8705: the one certificate name of a tls_client_auth client, and certificate-bound tokens.
    ...TLS_CLIENT_AUTH_FIELDS.filter((f) => typeof c[f] === 'string').map((f): [string, string] => [f, c[f]!]),
    ['tls_client_certificate_bound_access_tokens', c.tls_client_certificate_bound_access_tokens ? 'on' : 'off'],
    ['tokens_revoked_at', isoTime(c.tokens_revoked_at)],
    ['created_at', isoTime(c.created_at)],
    ['updated_at', isoTime(c.updated_at)],
  ];
  if (c.client_secret !== undefined) rows.splice(1, 0, ['client_secret', c.client_secret]);
  return keyValueLines(rows);
}

/** Key/value pairs as aligned lines, without a header row. */
export function keyValueLines(rows: Array<[string, string]>): string[] {
  return table(['FIELD', 'VALUE'], rows).slice(1);
}

export function clientsTable(clients: ClientWire[]): string[] {
  if (clients.length === 0) return ['No clients.'];
  return table(
    ['CLIENT_ID', 'NAME', 'STATUS', 'AUTH_METHOD', 'SCOPE', 'AUDIENCE'],
    clients.map((c) => [
      c.client_id,
      c.client_name,
      c.disabled ? 'disabled' : 'enabled',
      c.token_endpoint_auth_method,
      c.scope === '' ? '-' : c.scope,
      c.audience.length ? c.audience.join(' ') : '-',
    ]),
  );
}

/** One trusted issuer as key/value lines, wire names on the left. */
export function trustDetails(t: TrustWire): string[] {
  return keyValueLines([
    ['name', t.name],
    ['kind', t.kind],
    ['issuer', t.issuer ?? '-'],
    ['trust_domain', t.trust_domain ?? '-'],
    ['jwks_uri', t.jwks_uri ?? (t.kind === 'spiffe' ? '-' : '(from the issuer\'s OIDC discovery)')],
    ['jwks', jwksSummary(t.jwks)],
    ['ca_bundle', t.ca_bundle === null ? '(system CAs)' : `${(t.ca_bundle.match(/-----BEGIN CERTIFICATE-----/g) ?? []).length} certificate(s)`],
    ['allowed_private_hosts', t.allowed_private_hosts.length ? t.allowed_private_hosts.join(' ') : '(none)'],
    ['audiences', t.audiences.length ? t.audiences.join(' ') : '(this server\'s issuer and token endpoint only)'],
    ['max_token_lifetime', `${t.max_token_lifetime}s`],
    ['single_use_jti', t.single_use_jti === null ? '(the kind\'s default)' : t.single_use_jti ? 'on' : 'off'],
    ['created_at', isoTime(t.created_at)],
    ['updated_at', isoTime(t.updated_at)],
  ]);
}

export function trustsTable(trusts: TrustWire[]): string[] {
  if (trusts.length === 0) return ['No trusted issuers.'];
  return table(
    ['NAME', 'KIND', 'ISSUER_OR_TRUST_DOMAIN', 'KEYS_FROM'],
    trusts.map((t) => [
      t.name, t.kind, t.issuer ?? t.trust_domain ?? '-',
      t.jwks_uri ?? (t.jwks !== null ? 'static jwks' : 'OIDC discovery'),
    ]),
  );
}

export function keysTable(keys: KeyWire[]): string[] {
  if (keys.length === 0) return ['No signing keys.'];
  return table(
    ['KID', 'ALG', 'STATUS', 'CREATED', 'SIGNS_FROM', 'RETIRED', 'REVOKED', 'UNPUBLISHED_AT'],
    // A revoked key left the JWKS when it was revoked; its expires_at is only when it leaves this list.
    keys.map((k) => [
      k.kid, k.alg, k.status ?? '-', isoTime(k.created_at), isoTime(k.activates_at), isoTime(k.retired_at), isoTime(k.revoked_at),
      isoTime(k.revoked_at ?? k.expires_at),
    ]),
  );
}

export const SECRET_WARNING =
  'Store the client secret now: it is shown only this once and cannot be retrieved again (rotate it to get a new one).';
