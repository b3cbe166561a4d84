// ClientStore on PostgreSQL: one row per client, list-valued fields as jsonb.

import type { ClientRecord } from '../../ground/records.js';
import type { ClientStore, ListClientsOptions } from '../types.js';
import { TLS_CLIENT_AUTH_FIELDS, type TlsClientAuthField, type TokenEndpointAuthMethod } from '../../ground/names.js';
import { conflictMessage } from '../conflict-messages.js';
import { conflictOnConstraint, int8FromDb, int8OrNullFromDb, jsonb, jsonbOrNull, type Queryable } from './sql.js';

interface ClientRow {
  client_id: string;
  client_name: string;
  scope: string[];
  default_scope: string[] | null;
  audience: string[];
  default_audience: string[] | null;
  token_endpoint_auth_method: string;
  grant_types: string[];
  resource_uris: string[];
  jwks: ClientRecord['jwks'];
  access_token_ttl: string | null;
  rate_limit: number | null;
  token_reuse: boolean;
  dpop_bound_access_tokens: boolean;
  fapi2: boolean;
  disabled: boolean;
  claims: ClientRecord['claims'];
  federated_issuer: string | null;
  federated_subject: string | null;
  federated_claims: Record<string, unknown> | null;
  tls_client_auth_subject_dn: string | null;
  tls_client_auth_san_dns: string | null;
  tls_client_auth_san_uri: string | null;
  tls_client_auth_san_ip: string | null;
  tls_client_auth_san_email: string | null;
  tls_client_certificate_bound_access_tokens: boolean;
  secrets: ClientRecord['secrets'];
  tokens_revoked_at: string | null;
  created_at: string;
  updated_at: string;
}

const COLUMNS = `client_id, client_name, scope, default_scope, audience, default_audience,
  token_endpoint_auth_method, grant_types, resource_uris, jwks, access_token_ttl, disabled, secrets, tokens_revoked_at,
  created_at, updated_at, rate_limit, token_reuse, claims, dpop_bound_access_tokens, fapi2, federated_issuer, federated_subject, federated_claims,
  ${TLS_CLIENT_AUTH_FIELDS.join(', ')}, tls_client_certificate_bound_access_tokens`;

function tlsFromColumns(row: Record<TlsClientAuthField, string | null>): ClientRecord['tlsClientAuth'] {
  const field = TLS_CLIENT_AUTH_FIELDS.find((f) => row[f] !== null);
  return field === undefined ? null : { field, value: row[field]! };
}

/** Parameters $1..$30 in COLUMNS order. */
function toParams(client: ClientRecord): unknown[] {
  return [
    client.clientId,
    client.clientName,
    jsonb(client.scope),
    jsonbOrNull(client.defaultScope),
    jsonb(client.audience),
    jsonbOrNull(client.defaultAudience),
    client.tokenEndpointAuthMethod,
    jsonb(client.grantTypes),
    jsonb(client.resourceUris),
    jsonbOrNull(client.jwks),
    client.accessTokenTtl,
    client.disabled,
    jsonb(client.secrets),
    client.tokensRevokedAt,
    client.createdAt,
    client.updatedAt,
    client.rateLimit,
    client.tokenReuse,
    jsonb(client.claims),
    // A record of an export made before these fields existed has none: off.
    client.dpopBoundAccessTokens === true,
    client.fapi2 === true,
    client.federation?.trust ?? null,
    client.federation?.subject ?? null,
    client.federation === null ? null : jsonb(client.federation.claims),
    // RFC 8705 §2.1.2: a column per metadata field, at most one set.
    ...TLS_CLIENT_AUTH_FIELDS.map((f) => (client.tlsClientAuth?.field === f ? client.tlsClientAuth.value : null)),
    client.tlsClientCertificateBoundAccessTokens === true,
  ];
}

function fromRow(row: ClientRow): ClientRecord {
  return {
    clientId: row.client_id,
    clientName: row.client_name,
    scope: row.scope,
    defaultScope: row.default_scope,
    audience: row.audience,
    defaultAudience: row.default_audience,
    tokenEndpointAuthMethod: row.token_endpoint_auth_method as TokenEndpointAuthMethod,
    grantTypes: row.grant_types,
    resourceUris: row.resource_uris,
    jwks: row.jwks,
    federation: row.federated_issuer === null || row.federated_subject === null ? null : {
      trust: row.federated_issuer,
      subject: row.federated_subject,
      claims: row.federated_claims ?? {},
    },
    accessTokenTtl: int8OrNullFromDb(row.access_token_ttl),
    // double precision comes back as a JS number.
    rateLimit: row.rate_limit,
    tokenReuse: row.token_reuse,
    dpopBoundAccessTokens: row.dpop_bound_access_tokens,
    fapi2: row.fapi2,
    disabled: row.disabled,
    claims: row.claims,
    tlsClientAuth: tlsFromColumns(row),
    tlsClientCertificateBoundAccessTokens: row.tls_client_certificate_bound_access_tokens,
    secrets: row.secrets,
    tokensRevokedAt: int8OrNullFromDb(row.tokens_revoked_at),
    createdAt: int8FromDb(row.created_at),
    updatedAt: int8FromDb(row.updated_at),
  };
}

const INSERT = `INSERT INTO clients (${COLUMNS})
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30)`;
const GET = `SELECT ${COLUMNS} FROM clients WHERE client_id = $1`;
// Keyset pagination: ORDER BY and `>` both use the column's collation, "C" (code point order).
const LIST_FIRST = `SELECT ${COLUMNS} FROM clients ORDER BY client_id LIMIT $1`;
const LIST_AFTER = `SELECT ${COLUMNS} FROM clients WHERE client_id > $1 ORDER BY client_id LIMIT $2`;
const UPDATE = `UPDATE clients SET
  client_name = $2, scope = $3, default_scope = $4, audience = $5, default_audience = $6,
  token_endpoint_auth_method = $7, grant_types = $8, resource_uris = $9, jwks = $10,
  access_token_ttl = $11, disabled = $12, secrets = $13, tokens_revoked_at = $14, created_at = $15, updated_at = $16,
  rate_limit = $17, token_reuse = $18, claims = $19, dpop_bound_access_tokens = $20, fapi2 = $21,
  federated_issuer = $22, federated_subject = $23, federated_claims = $24,
  tls_client_auth_subject_dn = $25, tls_client_auth_san_dns = $26, tls_client_auth_san_uri = $27, tls_client_auth_san_ip = $28,
  tls_client_auth_san_email = $29, tls_client_certificate_bound_access_tokens = $30
  WHERE client_id = $1`;
const DELETE = 'DELETE FROM clients WHERE client_id = $1';

export class PostgresClientStore implements ClientStore {
  constructor(private readonly db: Queryable) {}

  async createClient(client: ClientRecord): Promise<void> {
    const params = toParams(client);
    await conflictOnConstraint(() => this.db.query(INSERT, params), (reason) => conflictMessage(client, reason), 'unknown_trust');
  }

  async getClient(clientId: string): Promise<ClientRecord | undefined> {
    const { rows } = await this.db.query<ClientRow>(GET, [clientId]);
    return rows[0] === undefined ? undefined : fromRow(rows[0]);
  }

  async listClients(options: ListClientsOptions): Promise<ClientRecord[]> {
    const { rows } =
      options.after === undefined
        ? await this.db.query<ClientRow>(LIST_FIRST, [options.limit])
        : await this.db.query<ClientRow>(LIST_AFTER, [options.after, options.limit]);
    return rows.map(fromRow);
  }

  async updateClient(client: ClientRecord): Promise<boolean> {
    const params = toParams(client);
    const result = await conflictOnConstraint(() => this.db.query(UPDATE, params), (reason) => conflictMessage(client, reason), 'unknown_trust');
    return result.rowCount === 1;
  }

  async deleteClient(clientId: string): Promise<boolean> {
    return (await this.db.query(DELETE, [clientId])).rowCount === 1;
  }
}
