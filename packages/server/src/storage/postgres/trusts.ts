// TrustStore on PostgreSQL (migration 7): one row per trusted issuer, lists and the JWKS as jsonb.

import type { TrustedIssuerRecord, TrustKind } from '../../ground/trusts.js';
import type { ListTrustsOptions, TrustStore } from '../types.js';
import { trustConflictMessage } from '../conflict-messages.js';
import { conflictOnConstraint, int8FromDb, jsonb, jsonbOrNull, type Queryable } from './sql.js';

interface TrustRow {
  name: string;
  kind: string;
  issuer: string | null;
  trust_domain: string | null;
  jwks_uri: string | null;
  jwks: TrustedIssuerRecord['jwks'];
  ca_bundle: string | null;
  allowed_private_hosts: string[];
  audiences: string[];
  max_token_lifetime: number;
  single_use_jti: boolean | null;
  created_at: string;
  updated_at: string;
}

const COLUMNS = `name, kind, issuer, trust_domain, jwks_uri, jwks, ca_bundle, allowed_private_hosts, audiences,
  max_token_lifetime, single_use_jti, created_at, updated_at`;

/** Parameters $1..$13 in COLUMNS order. */
function toParams(t: TrustedIssuerRecord): unknown[] {
  return [
    t.name, t.kind, t.issuer, t.trustDomain, t.jwksUri, jsonbOrNull(t.jwks), t.caBundle,
    jsonb(t.allowedPrivateHosts), jsonb(t.audiences), t.maxTokenLifetime, t.singleUseJti, t.createdAt, t.updatedAt,
  ];
}

function fromRow(row: TrustRow): TrustedIssuerRecord {
  return {
    name: row.name,
    kind: row.kind as TrustKind,
    issuer: row.issuer,
    trustDomain: row.trust_domain,
    jwksUri: row.jwks_uri,
    jwks: row.jwks,
    caBundle: row.ca_bundle,
    allowedPrivateHosts: row.allowed_private_hosts,
    audiences: row.audiences,
    maxTokenLifetime: row.max_token_lifetime,
    singleUseJti: row.single_use_jti,
    createdAt: int8FromDb(row.created_at),
    updatedAt: int8FromDb(row.updated_at),
  };
}

const INSERT = `INSERT INTO trusted_issuers (${COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`;
const GET = `SELECT ${COLUMNS} FROM trusted_issuers WHERE name = $1`;
const LIST_FIRST = `SELECT ${COLUMNS} FROM trusted_issuers ORDER BY name LIMIT $1`;
const LIST_AFTER = `SELECT ${COLUMNS} FROM trusted_issuers WHERE name > $1 ORDER BY name LIMIT $2`;
const UPDATE = `UPDATE trusted_issuers SET
  kind = $2, issuer = $3, trust_domain = $4, jwks_uri = $5, jwks = $6, ca_bundle = $7, allowed_private_hosts = $8,
  audiences = $9, max_token_lifetime = $10, single_use_jti = $11, created_at = $12, updated_at = $13
  WHERE name = $1`;
const DELETE = 'DELETE FROM trusted_issuers WHERE name = $1';
const CLIENTS = 'SELECT client_id FROM clients WHERE federated_issuer = $1 ORDER BY client_id LIMIT $2';

export class PostgresTrustStore implements TrustStore {
  constructor(private readonly db: Queryable) {}

  async createTrust(trust: TrustedIssuerRecord): Promise<void> {
    const params = toParams(trust);
    await conflictOnConstraint(() => this.db.query(INSERT, params), (reason) => trustConflictMessage(trust.name, reason), 'duplicate');
  }

  async getTrust(name: string): Promise<TrustedIssuerRecord | undefined> {
    const { rows } = await this.db.query<TrustRow>(GET, [name]);
    return rows[0] === undefined ? undefined : fromRow(rows[0]);
  }

  async listTrusts(options: ListTrustsOptions): Promise<TrustedIssuerRecord[]> {
    const { rows } = options.after === undefined
      ? await this.db.query<TrustRow>(LIST_FIRST, [options.limit])
      : await this.db.query<TrustRow>(LIST_AFTER, [options.after, options.limit]);
    return rows.map(fromRow);
  }

  async updateTrust(trust: TrustedIssuerRecord): Promise<boolean> {
    return (await this.db.query(UPDATE, toParams(trust))).rowCount === 1;
  }

  async deleteTrust(name: string): Promise<boolean> {
    const result = await conflictOnConstraint(() => this.db.query(DELETE, [name]), (reason) => trustConflictMessage(name, reason), 'trust_in_use');
    return result.rowCount === 1;
  }

  async clientsOfTrust(name: string, limit: number): Promise<string[]> {
    const { rows } = await this.db.query<{ client_id: string }>(CLIENTS, [name, limit]);
    return rows.map((r) => r.client_id);
  }
}
