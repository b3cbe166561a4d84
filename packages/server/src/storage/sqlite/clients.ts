// ClientStore on SQLite: one row per client, list-valued fields as JSON columns.

import type { Database } from 'better-sqlite3';
import type { ClientRecord } from '../../ground/records.js';
import type { ClientStore, ListClientsOptions } from '../types.js';
import { TLS_CLIENT_AUTH_FIELDS, type TlsClientAuthField, type TokenEndpointAuthMethod } from '../../ground/names.js';
import { conflictMessage } from '../conflict-messages.js';
import { conflictOnConstraint, preparedOnce, type Gate } from './constraint.js';

interface ClientRow {
  client_id: string;
  client_name: string;
  scope: string;
  default_scope: string | null;
  audience: string;
  default_audience: string | null;
  token_endpoint_auth_method: string;
  grant_types: string;
  resource_uris: string;
  jwks: string | null;
  access_token_ttl: number | null;
  rate_limit: number | null;
  token_reuse: number;
  dpop_bound_access_tokens: number;
  fapi2: number;
  disabled: number;
  claims: string;
  federated_issuer: string | null;
  federated_subject: string | null;
  federated_claims: string | null;
  tls_client_auth_subject_dn: string | null;
  tls_client_auth_san_dns: string | null;
  tls_client_auth_san_uri: string | null;
  tls_client_auth_san_ip: string | null;
  tls_client_auth_san_email: string | null;
  tls_client_certificate_bound_access_tokens: number;
  secrets: string;
  tokens_revoked_at: number | null;
  created_at: number;
  updated_at: number;
}

const COLUMNS = `client_id, client_name, scope, default_scope, audience, default_audience,
  token_endpoint_auth_method, grant_types, resource_uris, jwks, access_token_ttl, rate_limit, disabled, secrets, tokens_revoked_at,
  created_at, updated_at, token_reuse, claims, dpop_bound_access_tokens, fapi2, federated_issuer, federated_subject, federated_claims,
  tls_client_auth_subject_dn, tls_client_auth_san_dns, tls_client_auth_san_uri,
  tls_client_auth_san_ip, tls_client_auth_san_email, tls_client_certificate_bound_access_tokens`;

/** The one RFC 8705 §2.1.2 column a client fills (a column per wire field, at most one set). */
function tlsColumns(name: ClientRecord['tlsClientAuth']): Record<TlsClientAuthField, string | null> {
  return Object.fromEntries(TLS_CLIENT_AUTH_FIELDS.map((f) => [f, name?.field === f ? name.value : null])) as Record<TlsClientAuthField, string | null>;
}

function tlsFromColumns(row: Record<TlsClientAuthField, string | null>): ClientRecord['tlsClientAuth'] {
  const field = TLS_CLIENT_AUTH_FIELDS.find((f) => row[f] !== null);
  return field === undefined ? null : { field, value: row[field]! };
}

function jsonOrNull(value: unknown): string | null {
  return value === null ? null : JSON.stringify(value);
}

function parseOrNull<T>(text: string | null): T | null {
  return text === null ? null : (JSON.parse(text) as T);
}

function toRow(client: ClientRecord): ClientRow {
  return {
    client_id: client.clientId,
    client_name: client.clientName,
    scope: JSON.stringify(client.scope),
    default_scope: jsonOrNull(client.defaultScope),
    audience: JSON.stringify(client.audience),
    default_audience: jsonOrNull(client.defaultAudience),
    token_endpoint_auth_method: client.tokenEndpointAuthMethod,
    grant_types: JSON.stringify(client.grantTypes),
    resource_uris: JSON.stringify(client.resourceUris),
    jwks: jsonOrNull(client.jwks),
    access_token_ttl: client.accessTokenTtl,
    rate_limit: client.rateLimit,
    // SQLite has no boolean type and better-sqlite3 refuses to bind one.
    disabled: client.disabled ? 1 : 0,
    token_reuse: client.tokenReuse ? 1 : 0,
    dpop_bound_access_tokens: client.dpopBoundAccessTokens ? 1 : 0,
    fapi2: client.fapi2 ? 1 : 0,
    claims: JSON.stringify(client.claims),
    federated_issuer: client.federation?.trust ?? null,
    federated_subject: client.federation?.subject ?? null,
    federated_claims: client.federation === null ? null : JSON.stringify(client.federation.claims),
    ...tlsColumns(client.tlsClientAuth),
    tls_client_certificate_bound_access_tokens: client.tlsClientCertificateBoundAccessTokens === true ? 1 : 0,
    secrets: JSON.stringify(client.secrets),
    tokens_revoked_at: client.tokensRevokedAt,
    created_at: client.createdAt,
    updated_at: client.updatedAt,
  };
}

function fromRow(row: ClientRow): ClientRecord {
  return {
    clientId: row.client_id,
    clientName: row.client_name,
    scope: JSON.parse(row.scope) as string[],
    defaultScope: parseOrNull<string[]>(row.default_scope),
    audience: JSON.parse(row.audience) as string[],
    defaultAudience: parseOrNull<string[]>(row.default_audience),
    tokenEndpointAuthMethod: row.token_endpoint_auth_method as TokenEndpointAuthMethod,
    grantTypes: JSON.parse(row.grant_types) as string[],
    resourceUris: JSON.parse(row.resource_uris) as string[],
    jwks: parseOrNull<ClientRecord['jwks']>(row.jwks),
    federation: row.federated_issuer === null || row.federated_subject === null ? null : {
      trust: row.federated_issuer,
      subject: row.federated_subject,
      claims: row.federated_claims === null ? {} : JSON.parse(row.federated_claims) as Record<string, unknown>,
    },
    accessTokenTtl: row.access_token_ttl,
    rateLimit: row.rate_limit,
    tokenReuse: row.token_reuse === 1,
    dpopBoundAccessTokens: row.dpop_bound_access_tokens === 1,
    fapi2: row.fapi2 === 1,
    disabled: row.disabled === 1,
    claims: JSON.parse(row.claims) as ClientRecord['claims'],
    tlsClientAuth: tlsFromColumns(row),
    tlsClientCertificateBoundAccessTokens: row.tls_client_certificate_bound_access_tokens === 1,
    secrets: JSON.parse(row.secrets) as ClientRecord['secrets'],
    tokensRevokedAt: row.tokens_revoked_at,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function prepareStatements(db: Database) {
  return {
    insert: db.prepare<[ClientRow]>(`INSERT INTO clients (${COLUMNS}) VALUES (
      @client_id, @client_name, @scope, @default_scope, @audience, @default_audience,
      @token_endpoint_auth_method, @grant_types, @resource_uris, @jwks, @access_token_ttl, @rate_limit, @disabled, @secrets,
      @tokens_revoked_at, @created_at, @updated_at, @token_reuse, @claims, @dpop_bound_access_tokens, @fapi2, @federated_issuer, @federated_subject, @federated_claims,
      @tls_client_auth_subject_dn, @tls_client_auth_san_dns,
      @tls_client_auth_san_uri, @tls_client_auth_san_ip, @tls_client_auth_san_email, @tls_client_certificate_bound_access_tokens)`),
    get: db.prepare<[string], ClientRow>(`SELECT ${COLUMNS} FROM clients WHERE client_id = ?`),
    // Keyset pagination: ORDER BY and the `>` comparison use the same (binary) collation.
    listFirst: db.prepare<[number], ClientRow>(`SELECT ${COLUMNS} FROM clients ORDER BY client_id LIMIT ?`),
    listAfter: db.prepare<[string, number], ClientRow>(
      `SELECT ${COLUMNS} FROM clients WHERE client_id > ? ORDER BY client_id LIMIT ?`,
    ),
    update: db.prepare<[ClientRow]>(`UPDATE clients SET
      client_name = @client_name, scope = @scope, default_scope = @default_scope,
      audience = @audience, default_audience = @default_audience,
      token_endpoint_auth_method = @token_endpoint_auth_method, grant_types = @grant_types,
      resource_uris = @resource_uris, jwks = @jwks,
      access_token_ttl = @access_token_ttl, rate_limit = @rate_limit, disabled = @disabled, secrets = @secrets,
      tokens_revoked_at = @tokens_revoked_at, created_at = @created_at, updated_at = @updated_at,
      token_reuse = @token_reuse, claims = @claims, dpop_bound_access_tokens = @dpop_bound_access_tokens, fapi2 = @fapi2,
      federated_issuer = @federated_issuer, federated_subject = @federated_subject, federated_claims = @federated_claims,
      tls_client_auth_subject_dn = @tls_client_auth_subject_dn,
      tls_client_auth_san_dns = @tls_client_auth_san_dns, tls_client_auth_san_uri = @tls_client_auth_san_uri,
      tls_client_auth_san_ip = @tls_client_auth_san_ip, tls_client_auth_san_email = @tls_client_auth_san_email,
      tls_client_certificate_bound_access_tokens = @tls_client_certificate_bound_access_tokens
      WHERE client_id = @client_id`),
    delete: db.prepare<[string]>('DELETE FROM clients WHERE client_id = ?'),
  };
}

export class SqliteClientStore implements ClientStore {
  private readonly statements: () => ReturnType<typeof prepareStatements>;

  constructor(db: Database, gate?: Gate) {
    this.statements = preparedOnce(() => prepareStatements(db), gate);
  }

  async createClient(client: ClientRecord): Promise<void> {
    const row = toRow(client);
    conflictOnConstraint(() => this.statements().insert.run(row), (reason) => conflictMessage(client, reason), 'unknown_trust');
  }

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    const row = this.statements().get.get(clientId);
    return row === undefined ? undefined : fromRow(row);
  }

  async listClients(options: ListClientsOptions): Promise<ClientRecord[]> {
    const { listFirst, listAfter } = this.statements();
    const rows =
      options.after === undefined ? listFirst.all(options.limit) : listAfter.all(options.after, options.limit);
    return rows.map(fromRow);
  }

  async updateClient(client: ClientRecord): Promise<boolean> {
    const row = toRow(client);
    return conflictOnConstraint(() => this.statements().update.run(row), (reason) => conflictMessage(client, reason), 'unknown_trust').changes === 1;
  }

  async deleteClient(clientId: string): Promise<boolean> {
    return this.statements().delete.run(clientId).changes === 1;
  }
}
