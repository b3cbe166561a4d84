// TrustStore on SQLite (migration 7): one row per trusted issuer, lists and the JWKS as JSON columns.

import type { Database } from 'better-sqlite3';
import type { TrustedIssuerRecord, TrustKind } from '../../ground/trusts.js';
import type { ListTrustsOptions, TrustStore } from '../types.js';
import { trustConflictMessage } from '../conflict-messages.js';
import { conflictOnConstraint, preparedOnce, type Gate } from './constraint.js';

interface TrustRow {
  name: string;
  kind: string;
  issuer: string | null;
  trust_domain: string | null;
  jwks_uri: string | null;
  jwks: string | null;
  ca_bundle: string | null;
  allowed_private_hosts: string;
  audiences: string;
  max_token_lifetime: number;
  single_use_jti: number | null;
  created_at: number;
  updated_at: number;
}

const COLUMNS = `name, kind, issuer, trust_domain, jwks_uri, jwks, ca_bundle, allowed_private_hosts, audiences,
  max_token_lifetime, single_use_jti, created_at, updated_at`;

function toRow(t: TrustedIssuerRecord): TrustRow {
  return {
    name: t.name,
    kind: t.kind,
    issuer: t.issuer,
    trust_domain: t.trustDomain,
    jwks_uri: t.jwksUri,
    jwks: t.jwks === null ? null : JSON.stringify(t.jwks),
    ca_bundle: t.caBundle,
    allowed_private_hosts: JSON.stringify(t.allowedPrivateHosts),
    audiences: JSON.stringify(t.audiences),
    max_token_lifetime: t.maxTokenLifetime,
    // SQLite has no boolean type and better-sqlite3 refuses to bind one.
    single_use_jti: t.singleUseJti === null ? null : t.singleUseJti ? 1 : 0,
    created_at: t.createdAt,
    updated_at: t.updatedAt,
  };
}

function fromRow(row: TrustRow): TrustedIssuerRecord {
  return {
    name: row.name,
    kind: row.kind as TrustKind,
    issuer: row.issuer,
    trustDomain: row.trust_domain,
    jwksUri: row.jwks_uri,
    jwks: row.jwks === null ? null : (JSON.parse(row.jwks) as TrustedIssuerRecord['jwks']),
    caBundle: row.ca_bundle,
    allowedPrivateHosts: JSON.parse(row.allowed_private_hosts) as string[],
    audiences: JSON.parse(row.audiences) as string[],
    maxTokenLifetime: row.max_token_lifetime,
    singleUseJti: row.single_use_jti === null ? null : row.single_use_jti === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function prepareStatements(db: Database) {
  return {
    insert: db.prepare<[TrustRow]>(`INSERT INTO trusted_issuers (${COLUMNS}) VALUES (
      @name, @kind, @issuer, @trust_domain, @jwks_uri, @jwks, @ca_bundle, @allowed_private_hosts, @audiences,
      @max_token_lifetime, @single_use_jti, @created_at, @updated_at)`),
    get: db.prepare<[string], TrustRow>(`SELECT ${COLUMNS} FROM trusted_issuers WHERE name = ?`),
    listFirst: db.prepare<[number], TrustRow>(`SELECT ${COLUMNS} FROM trusted_issuers ORDER BY name LIMIT ?`),
    listAfter: db.prepare<[string, number], TrustRow>(`SELECT ${COLUMNS} FROM trusted_issuers WHERE name > ? ORDER BY name LIMIT ?`),
    update: db.prepare<[TrustRow]>(`UPDATE trusted_issuers SET
      kind = @kind, issuer = @issuer, trust_domain = @trust_domain, jwks_uri = @jwks_uri, jwks = @jwks,
      ca_bundle = @ca_bundle, allowed_private_hosts = @allowed_private_hosts, audiences = @audiences,
      max_token_lifetime = @max_token_lifetime, single_use_jti = @single_use_jti,
      created_at = @created_at, updated_at = @updated_at
      WHERE name = @name`),
    delete: db.prepare<[string]>('DELETE FROM trusted_issuers WHERE name = ?'),
    clients: db.prepare<[string, number], string>(
      'SELECT client_id FROM clients WHERE federated_issuer = ? ORDER BY client_id LIMIT ?',
    ).pluck(),
  };
}

export class SqliteTrustStore implements TrustStore {
  private readonly statements: () => ReturnType<typeof prepareStatements>;

  constructor(db: Database, gate?: Gate) {
    this.statements = preparedOnce(() => prepareStatements(db), gate);
  }

  async createTrust(trust: TrustedIssuerRecord): Promise<void> {
    const row = toRow(trust);
    conflictOnConstraint(() => this.statements().insert.run(row), (reason) => trustConflictMessage(trust.name, reason), 'duplicate');
  }

  async getTrust(name: string): Promise<TrustedIssuerRecord | undefined> {
    const row = this.statements().get.get(name);
    return row === undefined ? undefined : fromRow(row);
  }

  async listTrusts(options: ListTrustsOptions): Promise<TrustedIssuerRecord[]> {
    const { listFirst, listAfter } = this.statements();
    const rows = options.after === undefined ? listFirst.all(options.limit) : listAfter.all(options.after, options.limit);
    return rows.map(fromRow);
  }

  async updateTrust(trust: TrustedIssuerRecord): Promise<boolean> {
    return this.statements().update.run(toRow(trust)).changes === 1;
  }

  async deleteTrust(name: string): Promise<boolean> {
    const run = () => this.statements().delete.run(name);
    return conflictOnConstraint(run, (reason) => trustConflictMessage(name, reason), 'trust_in_use').changes === 1;
  }

  async clientsOfTrust(name: string, limit: number): Promise<string[]> {
    return this.statements().clients.all(name, limit);
  }
}
