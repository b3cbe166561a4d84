// The one Storage conformance suite (vitest): every backend runs it and must pass all of it.
//
// Usage, in a backend's test file:
//   storageConformance('sqlite memory', () => openStorage('sqlite::memory:'));
// The factory returns a fresh, migrated, empty Storage; each test closes the one it got.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StorageConflictError, type Storage } from './types.js';
import { type ClientRecord, type RevocationRecord, type SigningKeyRecord } from '../ground/records.js';
import type { TrustedIssuerRecord } from '../ground/trusts.js';

const T0 = Date.UTC(2030, 0, 1);
const HOUR = 3_600_000;

function digest(n: number): string {
  return n.toString(16).padStart(64, '0');
}

/** A client_secret_basic client with every nullable field null and two secrets, one rotated out. */
function secretClient(clientId: string): ClientRecord {
  return {
    clientId,
    clientName: `Client ${clientId}`,
    scope: ['orders:read', 'orders:write'],
    defaultScope: null,
    audience: ['https://api.example.com'],
    defaultAudience: null,
    tokenEndpointAuthMethod: 'client_secret_basic',
    federation: null,
    grantTypes: ['client_credentials'],
    resourceUris: [],
    jwks: null,
    accessTokenTtl: null,
    rateLimit: null,
    tokenReuse: false,
    dpopBoundAccessTokens: false,
    fapi2: false,
    disabled: false,
    claims: {},
    tlsClientAuth: null,
    tlsClientCertificateBoundAccessTokens: false,
    secrets: [
      { digest: digest(2), createdAt: T0 + 10, expiresAt: null },
      { digest: digest(1), createdAt: T0, expiresAt: T0 + HOUR },
    ],
    tokensRevokedAt: null,
    createdAt: T0,
    updatedAt: T0 + 10,
  };
}

/** A private_key_jwt client with every nullable field set. */
function jwtClient(clientId: string): ClientRecord {
  return {
    clientId,
    clientName: 'Billing worker ✓',
    scope: ['billing:read', 'billing:write', 'audit'],
    defaultScope: ['billing:read'],
    audience: ['https://billing.example.com', 'urn:example:ledger'],
    defaultAudience: ['urn:example:ledger'],
    tokenEndpointAuthMethod: 'private_key_jwt',
    federation: null,
    grantTypes: [],
    resourceUris: ['https://billing.example.com', 'urn:example:ledger'],
    jwks: {
      keys: [
        {
          kty: 'EC',
          crv: 'P-256',
          x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
          y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
          kid: 'worker-1',
          alg: 'ES256',
          use: 'sig',
        },
        { kty: 'OKP', crv: 'Ed25519', x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo', kid: 'worker-2' },
      ],
    },
    accessTokenTtl: 600,
    // A fraction: the column keeps it exactly.
    rateLimit: 2.5,
    tokenReuse: true,
    dpopBoundAccessTokens: true,
    fapi2: true,
    disabled: true,
    // Member order, nesting and unicode kept as written (PostgreSQL's jsonb would reorder the members).
    claims: { zone: 'eu-west', tenant: 'acme ✓', roles: ['reader', 'auditor'], limits: { orders: 10, ratio: 0.25, on: true, none: null }, note: 'line\nbreak' },
    tlsClientAuth: null,
    tlsClientCertificateBoundAccessTokens: false,
    secrets: [],
    tokensRevokedAt: T0 + 5 * HOUR,
    createdAt: T0 + 1,
    updatedAt: T0 + 2,
  };
}

function signingKey(kid: string, overrides: Partial<SigningKeyRecord> = {}): SigningKeyRecord {
  return {
    kid,
    alg: 'ES256',
    publicJwk: {
      kty: 'EC',
      crv: 'P-256',
      x: 'WKn-ZIGevcwGIyyrzFoZNBdaq9_TsqzGl96oc0CWuis',
      y: 'y77t-RvAHRKTsSGdIYUfweuOvwrvDD-Q3Hv5J0fSKbE',
      kid,
      alg: 'ES256',
      use: 'sig',
    },
    privateKeyEncrypted: `v1.${kid}.aXYtYnl0ZXM.Y2lwaGVydGV4dA.dGFn`,
    createdAt: T0,
    activatesAt: T0 + HOUR,
    retiredAt: null,
    expiresAt: null,
    revokedAt: null,
    ...overrides,
  };
}

/** A kubernetes trust with every nullable field set (a static JWKS, a CA bundle, single-use jti forced on). */
function kubernetesTrust(name: string): TrustedIssuerRecord {
  return {
    name,
    kind: 'kubernetes',
    issuer: 'https://kubernetes.default.svc.cluster.local',
    trustDomain: null,
    jwksUri: 'https://10.0.0.1/openid/v1/jwks',
    jwks: { keys: [{ kty: 'EC', crv: 'P-256', x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU', y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0', kid: 'sa-1' }] },
    caBundle: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
    allowedPrivateHosts: ['10.0.0.1', 'kubernetes.default.svc'],
    audiences: ['https://auth.example.com', 'm2m-auth'],
    maxTokenLifetime: 48 * 3600,
    singleUseJti: true,
    createdAt: T0,
    updatedAt: T0 + 10,
  };
}

/** A spiffe trust whose nullable fields are null and lists empty. */
function spiffeTrust(name: string): TrustedIssuerRecord {
  return {
    name, kind: 'spiffe', issuer: null, trustDomain: 'prod.example.org', jwksUri: null, jwks: null, caBundle: null,
    allowedPrivateHosts: [], audiences: [], maxTokenLifetime: 3600, singleUseJti: null, createdAt: T0, updatedAt: T0,
  };
}

function federatedClient(clientId: string, trust: string, subject: string): ClientRecord {
  return {
    ...secretClient(clientId),
    tokenEndpointAuthMethod: 'federated_jwt',
    federation: { trust, subject, claims: { repository: 'acme/billing', environment: 'production', run: { attempt: 1 } } },
    secrets: [],
  };
}

function revocation(jti: string, expiresAt: number, revokedAt = T0): RevocationRecord {
  return { jti, clientId: 'cl_revoker', expiresAt, revokedAt };
}

function byKid(a: { kid: string }, b: { kid: string }): number {
  return a.kid < b.kid ? -1 : a.kid > b.kid ? 1 : 0;
}

function byJti(a: { jti: string }, b: { jti: string }): number {
  return a.jti < b.jti ? -1 : a.jti > b.jti ? 1 : 0;
}

export function storageConformance(name: string, factory: () => Promise<Storage>): void {
  describe(`Storage conformance: ${name}`, () => {
    let storage: Storage;
    let closed: boolean;

    beforeEach(async () => {
      storage = await factory();
      closed = false;
    });

    afterEach(async () => {
      if (!closed) await storage.close();
    });

    describe('clients', () => {
      it('round-trips a secret client whose nullable fields are null', async () => {
        const client = secretClient('cl_secret');
        await storage.clients.createClient(client);
        expect(await storage.clients.getClient('cl_secret')).toStrictEqual(client);
      });

      it('round-trips a private_key_jwt client whose nullable fields are set', async () => {
        const client = jwtClient('cl_jwt');
        await storage.clients.createClient(client);
        expect(await storage.clients.getClient('cl_jwt')).toStrictEqual(client);
      });

      it('keeps empty lists apart from null', async () => {
        const client: ClientRecord = {
          ...secretClient('cl_empty'),
          scope: [],
          defaultScope: [],
          audience: [],
          defaultAudience: [],
          grantTypes: [],
          resourceUris: [],
          jwks: { keys: [] },
          secrets: [],
          accessTokenTtl: 0,
          rateLimit: 0,
          tokensRevokedAt: 0,
        };
        await storage.clients.createClient(client);
        expect(await storage.clients.getClient('cl_empty')).toStrictEqual(client);
      });

      it('keeps custom claims as written: member order, nesting and every value', async () => {
        const client = jwtClient('cl_claims');
        await storage.clients.createClient(client);
        const read = await storage.clients.getClient('cl_claims');
        // toStrictEqual ignores member order; tokens carry the claims in the order they were set.
        expect(JSON.stringify(read?.claims)).toBe(JSON.stringify(client.claims));
        const reordered = { ...client, claims: { b: [{ y: 1, x: 2 }], a: 'é' } };
        expect(await storage.clients.updateClient(reordered)).toBe(true);
        expect(JSON.stringify((await storage.clients.getClient('cl_claims'))?.claims)).toBe('{"b":[{"y":1,"x":2}],"a":"é"}');
        expect(await storage.clients.updateClient({ ...client, claims: {} })).toBe(true);
        expect((await storage.clients.getClient('cl_claims'))?.claims).toStrictEqual({});
      });

      it('keeps the mutual-TLS metadata: each certificate name in its field, and the binding', async () => {
        const fields = ['tls_client_auth_subject_dn', 'tls_client_auth_san_dns', 'tls_client_auth_san_uri', 'tls_client_auth_san_ip', 'tls_client_auth_san_email'] as const;
        const values = ['CN=billing,O=Example\\, Inc.,C=US', 'billing.example.com', 'spiffe://example.org/billing', '2001:db8::1', 'billing@example.com'];
        const client: ClientRecord = { ...secretClient('cl_mtls'), tokenEndpointAuthMethod: 'tls_client_auth', secrets: [], tlsClientCertificateBoundAccessTokens: true };
        await storage.clients.createClient({ ...client, tlsClientAuth: { field: fields[0], value: values[0]! } });
        expect(await storage.clients.getClient('cl_mtls')).toStrictEqual({ ...client, tlsClientAuth: { field: fields[0], value: values[0] } });
        for (const [i, field] of fields.entries()) {
          expect(await storage.clients.updateClient({ ...client, tlsClientAuth: { field, value: values[i]! } })).toBe(true);
          expect((await storage.clients.getClient('cl_mtls'))?.tlsClientAuth).toStrictEqual({ field, value: values[i] });
        }
        expect(await storage.clients.updateClient({ ...client, tlsClientAuth: null, tlsClientCertificateBoundAccessTokens: false })).toBe(true);
        expect(await storage.clients.getClient('cl_mtls')).toMatchObject({ tlsClientAuth: null, tlsClientCertificateBoundAccessTokens: false });
      });

      it('returns undefined for an unknown client', async () => {
        await storage.clients.createClient(secretClient('cl_known'));
        expect(await storage.clients.getClient('cl_unknown')).toBeUndefined();
        expect(await storage.clients.getClient('CL_KNOWN')).toBeUndefined();
      });

      it('is not affected by later changes to the objects passed in or returned', async () => {
        const client = secretClient('cl_copy');
        await storage.clients.createClient(client);
        client.scope.push('mutated');
        client.secrets.pop();
        const read = await storage.clients.getClient('cl_copy');
        read?.audience.push('mutated');
        expect(await storage.clients.getClient('cl_copy')).toStrictEqual(secretClient('cl_copy'));
      });

      it('rejects a duplicate clientId with StorageConflictError and keeps the original', async () => {
        await storage.clients.createClient(secretClient('cl_dup'));
        const attempt = storage.clients.createClient({ ...jwtClient('cl_dup') });
        await expect(attempt).rejects.toBeInstanceOf(StorageConflictError);
        await expect(attempt).rejects.toMatchObject({ code: 'STORAGE_CONFLICT' });
        expect(await storage.clients.getClient('cl_dup')).toStrictEqual(secretClient('cl_dup'));
      });

      it('replaces every field on update', async () => {
        await storage.clients.createClient(secretClient('cl_upd'));
        const updated: ClientRecord = { ...jwtClient('cl_upd'), createdAt: T0 + 7, updatedAt: T0 + 8 * HOUR };
        expect(await storage.clients.updateClient(updated)).toBe(true);
        expect(await storage.clients.getClient('cl_upd')).toStrictEqual(updated);

        // And back: values to null, private_key_jwt to a secret method, disabled to enabled.
        const reverted: ClientRecord = { ...secretClient('cl_upd'), updatedAt: T0 + 9 * HOUR };
        expect(await storage.clients.updateClient(reverted)).toBe(true);
        expect(await storage.clients.getClient('cl_upd')).toStrictEqual(reverted);
      });

      it('stores rotated secrets and the kill switch through update', async () => {
        const client = secretClient('cl_rotate');
        await storage.clients.createClient(client);
        const rotated: ClientRecord = {
          ...client,
          secrets: [
            { digest: digest(3), createdAt: T0 + HOUR, expiresAt: null },
            { digest: digest(2), createdAt: T0 + 10, expiresAt: T0 + 2 * HOUR },
          ],
          tokensRevokedAt: T0 + HOUR,
          updatedAt: T0 + HOUR,
        };
        expect(await storage.clients.updateClient(rotated)).toBe(true);
        expect(await storage.clients.getClient('cl_rotate')).toStrictEqual(rotated);
      });

      it('returns false when updating a missing client and does not create it', async () => {
        await storage.clients.createClient(secretClient('cl_other'));
        expect(await storage.clients.updateClient(secretClient('cl_missing'))).toBe(false);
        expect(await storage.clients.getClient('cl_missing')).toBeUndefined();
        expect(await storage.clients.getClient('cl_other')).toStrictEqual(secretClient('cl_other'));
      });

      it('deletes a client once: true, then false', async () => {
        await storage.clients.createClient(secretClient('cl_del'));
        await storage.clients.createClient(secretClient('cl_keep'));
        expect(await storage.clients.deleteClient('cl_del')).toBe(true);
        expect(await storage.clients.getClient('cl_del')).toBeUndefined();
        expect(await storage.clients.deleteClient('cl_del')).toBe(false);
        expect(await storage.clients.deleteClient('cl_never')).toBe(false);
        expect(await storage.clients.getClient('cl_keep')).toStrictEqual(secretClient('cl_keep'));
      });

      it('lets a deleted clientId be created again', async () => {
        await storage.clients.createClient(secretClient('cl_again'));
        await storage.clients.deleteClient('cl_again');
        await storage.clients.createClient(jwtClient('cl_again'));
        expect(await storage.clients.getClient('cl_again')).toStrictEqual(jwtClient('cl_again'));
      });

      it('lists nothing when there are no clients', async () => {
        expect(await storage.clients.listClients({ limit: 10 })).toStrictEqual([]);
        expect(await storage.clients.listClients({ after: 'cl_a', limit: 10 })).toStrictEqual([]);
      });

      it('lists full records ordered by clientId', async () => {
        for (const id of ['cl_c', 'cl_a', 'cl_e', 'cl_b', 'cl_d']) {
          await storage.clients.createClient(id === 'cl_d' ? jwtClient(id) : secretClient(id));
        }
        const all = await storage.clients.listClients({ limit: 100 });
        expect(all.map((c) => c.clientId)).toStrictEqual(['cl_a', 'cl_b', 'cl_c', 'cl_d', 'cl_e']);
        expect(all[3]).toStrictEqual(jwtClient('cl_d'));
        expect(all[0]).toStrictEqual(secretClient('cl_a'));
      });

      it('pages through clients with after and limit', async () => {
        for (const id of ['cl_c', 'cl_a', 'cl_e', 'cl_b', 'cl_d']) await storage.clients.createClient(secretClient(id));
        const ids = async (after: string | undefined, limit: number) => {
          const page = await storage.clients.listClients(after === undefined ? { limit } : { after, limit });
          return page.map((c) => c.clientId);
        };

        expect(await ids(undefined, 2)).toStrictEqual(['cl_a', 'cl_b']);
        expect(await ids('cl_b', 2)).toStrictEqual(['cl_c', 'cl_d']);
        expect(await ids('cl_d', 2)).toStrictEqual(['cl_e']);
        expect(await ids('cl_e', 2)).toStrictEqual([]);
        // `after` need not be an existing id: keyset pagination resumes after the gap.
        expect(await ids('cl_b0', 10)).toStrictEqual(['cl_c', 'cl_d', 'cl_e']);
        expect(await ids('', 1)).toStrictEqual(['cl_a']);
        expect(await ids('cl_c', 1)).toStrictEqual(['cl_d']);

        const walked: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await ids(after, 2);
          if (page.length === 0) break;
          walked.push(...page);
          after = page[page.length - 1];
        }
        expect(walked).toStrictEqual(['cl_a', 'cl_b', 'cl_c', 'cl_d', 'cl_e']);
      });

      it('orders clientIds by code point, not by locale (PostgreSQL needs COLLATE "C")', async () => {
        const ids = ['cl_b', 'Zeta', 'cl_B', '0x', 'cl__', 'alpha', 'cl_a'];
        for (const id of ids) await storage.clients.createClient(secretClient(id));
        const expected = ['0x', 'Zeta', 'alpha', 'cl_B', 'cl__', 'cl_a', 'cl_b'];
        const listed = (await storage.clients.listClients({ limit: 100 })).map((c) => c.clientId);
        expect(listed).toStrictEqual(expected);
        const page = (await storage.clients.listClients({ after: 'cl_B', limit: 2 })).map((c) => c.clientId);
        expect(page).toStrictEqual(['cl__', 'cl_a']);
      });
    });

    describe('trusts', () => {
      it('round-trips a trust whose nullable fields are set, and one whose are null', async () => {
        await storage.trusts.createTrust(kubernetesTrust('prod-cluster'));
        await storage.trusts.createTrust(spiffeTrust('mesh'));
        expect(await storage.trusts.getTrust('prod-cluster')).toStrictEqual(kubernetesTrust('prod-cluster'));
        expect(await storage.trusts.getTrust('mesh')).toStrictEqual(spiffeTrust('mesh'));
        await storage.trusts.createTrust({ ...spiffeTrust('off'), singleUseJti: false });
        expect((await storage.trusts.getTrust('off'))?.singleUseJti).toBe(false);
      });

      it('returns undefined for an unknown trust', async () => {
        expect(await storage.trusts.getTrust('nope')).toBeUndefined();
      });

      it('rejects a duplicate name with StorageConflictError (reason duplicate) and keeps the original', async () => {
        await storage.trusts.createTrust(kubernetesTrust('prod'));
        const err = await storage.trusts.createTrust({ ...spiffeTrust('prod') }).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StorageConflictError);
        expect((err as StorageConflictError).reason).toBe('duplicate');
        expect(await storage.trusts.getTrust('prod')).toStrictEqual(kubernetesTrust('prod'));
      });

      it('replaces every field on update; false for a missing trust, which is not created', async () => {
        await storage.trusts.createTrust(kubernetesTrust('t'));
        const next: TrustedIssuerRecord = { ...spiffeTrust('t'), createdAt: T0 + 1, updatedAt: T0 + 2 };
        expect(await storage.trusts.updateTrust(next)).toBe(true);
        expect(await storage.trusts.getTrust('t')).toStrictEqual(next);
        expect(await storage.trusts.updateTrust(spiffeTrust('missing'))).toBe(false);
        expect(await storage.trusts.getTrust('missing')).toBeUndefined();
      });

      it('lists and pages trusts by name, in code point order', async () => {
        for (const n of ['b-2', 'a-1', 'c-3', 'a-10']) await storage.trusts.createTrust(spiffeTrust(n));
        expect((await storage.trusts.listTrusts({ limit: 10 })).map((t) => t.name)).toStrictEqual(['a-1', 'a-10', 'b-2', 'c-3']);
        expect((await storage.trusts.listTrusts({ limit: 2 })).map((t) => t.name)).toStrictEqual(['a-1', 'a-10']);
        expect((await storage.trusts.listTrusts({ after: 'a-10', limit: 2 })).map((t) => t.name)).toStrictEqual(['b-2', 'c-3']);
        expect(await storage.trusts.listTrusts({ after: 'c-3', limit: 2 })).toStrictEqual([]);
      });

      it('deletes a trust once: true, then false', async () => {
        await storage.trusts.createTrust(spiffeTrust('gone'));
        expect(await storage.trusts.deleteTrust('gone')).toBe(true);
        expect(await storage.trusts.deleteTrust('gone')).toBe(false);
        expect(await storage.trusts.getTrust('gone')).toBeUndefined();
      });

      it('round-trips a federated client, its claims as written', async () => {
        await storage.trusts.createTrust(kubernetesTrust('prod'));
        const client = federatedClient('cl_fed', 'prod', 'system:serviceaccount:payments:billing');
        await storage.clients.createClient(client);
        expect(await storage.clients.getClient('cl_fed')).toStrictEqual(client);
        expect(JSON.stringify((await storage.clients.getClient('cl_fed'))!.federation)).toBe(JSON.stringify(client.federation));
        const moved: ClientRecord = { ...client, federation: { trust: 'prod', subject: 'system:serviceaccount:payments:other', claims: {} } };
        expect(await storage.clients.updateClient(moved)).toBe(true);
        expect(await storage.clients.getClient('cl_fed')).toStrictEqual(moved);
        const plain: ClientRecord = { ...secretClient('cl_fed') };
        expect(await storage.clients.updateClient(plain)).toBe(true);
        expect(await storage.clients.getClient('cl_fed')).toStrictEqual(plain);
      });

      it('refuses a second client with the same (trust, subject): reason federated_identity; the same subject at another trust is fine', async () => {
        await storage.trusts.createTrust(kubernetesTrust('prod'));
        await storage.trusts.createTrust(kubernetesTrust('staging'));
        await storage.clients.createClient(federatedClient('cl_a', 'prod', 'sub-1'));
        const created = await storage.clients.createClient(federatedClient('cl_b', 'prod', 'sub-1')).catch((e: unknown) => e);
        expect(created).toBeInstanceOf(StorageConflictError);
        expect((created as StorageConflictError).reason).toBe('federated_identity');
        expect((created as StorageConflictError).message).toBe('another client already has federated_subject "sub-1" at trust "prod"');
        expect(await storage.clients.getClient('cl_b')).toBeUndefined();
        await storage.clients.createClient(federatedClient('cl_b', 'staging', 'sub-1'));
        await storage.clients.createClient(federatedClient('cl_c', 'prod', 'sub-2'));
        const updated = await storage.clients.updateClient(federatedClient('cl_c', 'prod', 'sub-1')).catch((e: unknown) => e);
        expect((updated as StorageConflictError).reason).toBe('federated_identity');
        expect((await storage.clients.getClient('cl_c'))?.federation?.subject).toBe('sub-2');
        // Clients without a federation never clash with each other.
        await storage.clients.createClient(secretClient('cl_d'));
        await storage.clients.createClient(secretClient('cl_e'));
      });

      it('refuses a client naming a missing trust: reason unknown_trust', async () => {
        const err = await storage.clients.createClient(federatedClient('cl_x', 'absent', 's')).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StorageConflictError);
        expect((err as StorageConflictError).reason).toBe('unknown_trust');
        expect(await storage.clients.getClient('cl_x')).toBeUndefined();
        await storage.clients.createClient(secretClient('cl_y'));
        const updated = await storage.clients.updateClient(federatedClient('cl_y', 'absent', 's')).catch((e: unknown) => e);
        expect((updated as StorageConflictError).reason).toBe('unknown_trust');
      });

      it('refuses to delete a trust that clients name (reason trust_in_use) and names them; deletes it once they are gone', async () => {
        await storage.trusts.createTrust(kubernetesTrust('prod'));
        await storage.clients.createClient(federatedClient('cl_2', 'prod', 's2'));
        await storage.clients.createClient(federatedClient('cl_1', 'prod', 's1'));
        const err = await storage.trusts.deleteTrust('prod').catch((e: unknown) => e);
        expect(err).toBeInstanceOf(StorageConflictError);
        expect((err as StorageConflictError).reason).toBe('trust_in_use');
        expect(await storage.trusts.getTrust('prod')).toStrictEqual(kubernetesTrust('prod'));
        expect(await storage.trusts.clientsOfTrust('prod', 10)).toStrictEqual(['cl_1', 'cl_2']);
        expect(await storage.trusts.clientsOfTrust('prod', 1)).toStrictEqual(['cl_1']);
        expect(await storage.trusts.clientsOfTrust('other', 10)).toStrictEqual([]);
        await storage.clients.deleteClient('cl_1');
        await storage.clients.updateClient(secretClient('cl_2'));
        expect(await storage.trusts.deleteTrust('prod')).toBe(true);
      });
    });

    describe('keys', () => {
      it('lists no keys in an empty store', async () => {
        expect(await storage.keys.listKeys()).toStrictEqual([]);
      });

      it('round-trips keys, retired or not', async () => {
        const active = signingKey('k-active');
        const retired = signingKey('k-retired', {
          alg: 'EdDSA',
          publicJwk: {
            kty: 'OKP',
            crv: 'Ed25519',
            x: '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo',
            kid: 'k-retired',
            alg: 'EdDSA',
            use: 'sig',
          },
          createdAt: T0 - 10 * HOUR,
          activatesAt: T0 - 9 * HOUR,
          retiredAt: T0 + HOUR,
          expiresAt: T0 + 2 * HOUR,
        });
        await storage.keys.insertKey(active);
        await storage.keys.insertKey(retired);
        expect([...(await storage.keys.listKeys())].sort(byKid)).toStrictEqual([active, retired]);
      });

      it('rejects a duplicate kid with StorageConflictError', async () => {
        await storage.keys.insertKey(signingKey('k-dup'));
        await expect(storage.keys.insertKey(signingKey('k-dup', { alg: 'RS256' }))).rejects.toBeInstanceOf(
          StorageConflictError,
        );
        expect(await storage.keys.listKeys()).toStrictEqual([signingKey('k-dup')]);
      });

      it('retires a key, changing only retiredAt and expiresAt', async () => {
        await storage.keys.insertKey(signingKey('k-1'));
        await storage.keys.insertKey(signingKey('k-2'));
        expect(await storage.keys.retireKey('k-1', T0 + 3 * HOUR, T0 + 4 * HOUR)).toBe(true);
        expect([...(await storage.keys.listKeys())].sort(byKid)).toStrictEqual([
          signingKey('k-1', { retiredAt: T0 + 3 * HOUR, expiresAt: T0 + 4 * HOUR }),
          signingKey('k-2'),
        ]);
      });

      it('returns false when retiring a missing key', async () => {
        await storage.keys.insertKey(signingKey('k-1'));
        expect(await storage.keys.retireKey('k-missing', T0, T0 + HOUR)).toBe(false);
        expect(await storage.keys.listKeys()).toStrictEqual([signingKey('k-1')]);
      });

      it('revokes a key that signs: revokedAt and retiredAt set, expiresAt given; a retirement afterwards changes nothing', async () => {
        await storage.keys.insertKey(signingKey('k-1'));
        await storage.keys.insertKey(signingKey('k-2'));
        expect(await storage.keys.revokeKey('k-1', T0 + 2 * HOUR, T0 + 26 * HOUR)).toBe(true);
        const revoked = signingKey('k-1', { revokedAt: T0 + 2 * HOUR, retiredAt: T0 + 2 * HOUR, expiresAt: T0 + 26 * HOUR });
        expect([...(await storage.keys.listKeys())].sort(byKid)).toStrictEqual([revoked, signingKey('k-2')]);
        // Another instance that had not heard of the revocation yet retires the key: refused.
        expect(await storage.keys.retireKey('k-1', T0 + 3 * HOUR, T0 + 27 * HOUR)).toBe(false);
        expect([...(await storage.keys.listKeys())].sort(byKid)).toStrictEqual([revoked, signingKey('k-2')]);
      });

      it('revoking a retired key keeps its retiredAt and the earlier expiresAt; revoking again keeps the first revokedAt', async () => {
        await storage.keys.insertKey(signingKey('k-early', { retiredAt: T0, expiresAt: T0 + HOUR }));
        await storage.keys.insertKey(signingKey('k-late', { retiredAt: T0, expiresAt: T0 + 30 * HOUR }));
        expect(await storage.keys.revokeKey('k-early', T0 + 2 * HOUR, T0 + 26 * HOUR)).toBe(true);
        expect(await storage.keys.revokeKey('k-late', T0 + 2 * HOUR, T0 + 26 * HOUR)).toBe(true);
        expect(await storage.keys.revokeKey('k-late', T0 + 3 * HOUR, T0 + 27 * HOUR)).toBe(true);
        expect([...(await storage.keys.listKeys())].sort(byKid)).toStrictEqual([
          signingKey('k-early', { retiredAt: T0, expiresAt: T0 + HOUR, revokedAt: T0 + 2 * HOUR }),
          signingKey('k-late', { retiredAt: T0, expiresAt: T0 + 26 * HOUR, revokedAt: T0 + 2 * HOUR }),
        ]);
      });

      it('returns false when revoking a missing key', async () => {
        await storage.keys.insertKey(signingKey('k-1'));
        expect(await storage.keys.revokeKey('k-missing', T0, T0 + HOUR)).toBe(false);
        expect(await storage.keys.listKeys()).toStrictEqual([signingKey('k-1')]);
      });

      it('deletes keys expiring at or before now, keeps later and unexpiring ones', async () => {
        const now = T0 + 10 * HOUR;
        await storage.keys.insertKey(signingKey('k-past', { retiredAt: T0, expiresAt: now - 1 }));
        await storage.keys.insertKey(signingKey('k-now', { retiredAt: T0, expiresAt: now }));
        await storage.keys.insertKey(signingKey('k-later', { retiredAt: T0, expiresAt: now + 1 }));
        await storage.keys.insertKey(signingKey('k-live'));
        expect((await storage.keys.deleteExpiredKeys(now)).sort()).toStrictEqual(['k-now', 'k-past']);
        expect((await storage.keys.listKeys()).map((k) => k.kid).sort()).toStrictEqual(['k-later', 'k-live']);
        expect(await storage.keys.deleteExpiredKeys(now)).toStrictEqual([]);
      });

      it('inserts with insertKeyIfNoneSince only while no key has createdAt after since', async () => {
        const first = signingKey('k-first', { createdAt: T0 });
        expect(await storage.keys.insertKeyIfNoneSince(first, T0 - HOUR)).toBe(true);
        // k-first was created after T0 - 1: refused, and nothing stored.
        expect(await storage.keys.insertKeyIfNoneSince(signingKey('k-early', { createdAt: T0 + 1 }), T0 - 1)).toBe(false);
        expect(await storage.keys.listKeys()).toStrictEqual([first]);
        // createdAt equal to since is not after it.
        const second = signingKey('k-second', { createdAt: T0 + HOUR });
        expect(await storage.keys.insertKeyIfNoneSince(second, T0)).toBe(true);
        expect([...(await storage.keys.listKeys())].sort(byKid)).toStrictEqual([first, second]);
      });

      it('counts retired keys too in insertKeyIfNoneSince', async () => {
        await storage.keys.insertKey(signingKey('k-retired', { createdAt: T0, retiredAt: T0 + 1, expiresAt: T0 + HOUR }));
        expect(await storage.keys.insertKeyIfNoneSince(signingKey('k-new', { createdAt: T0 + 2 }), T0 - 1)).toBe(false);
        expect((await storage.keys.listKeys()).map((k) => k.kid)).toStrictEqual(['k-retired']);
      });

      it('rejects a duplicate kid in insertKeyIfNoneSince with StorageConflictError', async () => {
        await storage.keys.insertKey(signingKey('k-dup', { createdAt: T0 }));
        await expect(
          storage.keys.insertKeyIfNoneSince(signingKey('k-dup', { createdAt: T0 + 2 * HOUR, alg: 'RS256' }), T0 + HOUR),
        ).rejects.toBeInstanceOf(StorageConflictError);
        expect(await storage.keys.listKeys()).toStrictEqual([signingKey('k-dup', { createdAt: T0 })]);
      });

      it('lets exactly one of 10 concurrent insertKeyIfNoneSince calls insert', async () => {
        await storage.keys.insertKey(signingKey('k-old', { createdAt: T0 - 2 * HOUR }));
        const candidates = Array.from({ length: 10 }, (_, i) => signingKey(`k-race-${i}`, { createdAt: T0 + i }));
        const results = await Promise.all(candidates.map((k) => storage.keys.insertKeyIfNoneSince(k, T0 - HOUR)));
        expect(results.filter(Boolean)).toHaveLength(1);
        const winner = candidates[results.indexOf(true)]!;
        expect([...(await storage.keys.listKeys())].sort(byKid)).toStrictEqual([signingKey('k-old', { createdAt: T0 - 2 * HOUR }), winner]);
      });
    });

    describe('revocations', () => {
      it('reports an unknown jti as not revoked', async () => {
        await storage.revocations.revokeToken(revocation('jti-known', T0 + HOUR));
        expect(await storage.revocations.isTokenRevoked('jti-unknown', T0)).toBe(false);
      });

      it('reports a jti revoked before its expiry and not at or after it', async () => {
        const expiresAt = T0 + HOUR;
        await storage.revocations.revokeToken(revocation('jti-1', expiresAt));
        expect(await storage.revocations.isTokenRevoked('jti-1', T0)).toBe(true);
        expect(await storage.revocations.isTokenRevoked('jti-1', expiresAt - 1)).toBe(true);
        expect(await storage.revocations.isTokenRevoked('jti-1', expiresAt)).toBe(false);
        expect(await storage.revocations.isTokenRevoked('jti-1', expiresAt + HOUR)).toBe(false);
      });

      it('is idempotent: revoking again is not an error and keeps one revocation', async () => {
        const record = revocation('jti-twice', T0 + HOUR);
        await storage.revocations.revokeToken(record);
        await storage.revocations.revokeToken(record);
        await storage.revocations.revokeToken({ ...record, revokedAt: T0 + 5 });
        const listed = await storage.revocations.listRevocations(T0);
        expect(listed).toHaveLength(1);
        expect(listed[0]).toMatchObject({ jti: 'jti-twice', clientId: 'cl_revoker', expiresAt: T0 + HOUR });
        expect(await storage.revocations.isTokenRevoked('jti-twice', T0 + HOUR - 1)).toBe(true);
      });

      it('lists only revocations that have not expired at now', async () => {
        const now = T0 + 10 * HOUR;
        const past = revocation('jti-past', now - 1);
        const atNow = revocation('jti-now', now);
        const later = { jti: 'jti-later', clientId: 'cl_other', expiresAt: now + 1, revokedAt: T0 + 3 };
        const muchLater = revocation('jti-much-later', now + 24 * HOUR, T0 + 4);
        for (const r of [later, past, muchLater, atNow]) await storage.revocations.revokeToken(r);
        expect([...(await storage.revocations.listRevocations(now))].sort(byJti)).toStrictEqual([later, muchLater]);
        expect([...(await storage.revocations.listRevocations(T0))].sort(byJti)).toStrictEqual(
          [later, muchLater, atNow, past].sort(byJti),
        );
        expect(await storage.revocations.listRevocations(now + 24 * HOUR)).toStrictEqual([]);
      });
    });

    describe('replay', () => {
      it('lists the keys still in force, in key order', async () => {
        await storage.replay.consumeOnce('cl_b:jti-2', T0 + 2 * HOUR, T0);
        await storage.replay.consumeOnce('cl_a:jti-1', T0 + HOUR, T0);
        await storage.replay.consumeOnce('cl_c:jti-3', T0 + 10, T0);
        expect(await storage.replay.listReplay(T0)).toStrictEqual([
          { key: 'cl_a:jti-1', expiresAt: T0 + HOUR },
          { key: 'cl_b:jti-2', expiresAt: T0 + 2 * HOUR },
          { key: 'cl_c:jti-3', expiresAt: T0 + 10 },
        ]);
        expect(await storage.replay.listReplay(T0 + 10)).toHaveLength(2);
        expect(await storage.replay.listReplay(T0 + 2 * HOUR)).toStrictEqual([]);
      });

      it('consumes a key once until it expires, then once again', async () => {
        const expiresAt = T0 + 5 * 60_000;
        expect(await storage.replay.consumeOnce('cl_a:jti-1', expiresAt, T0)).toBe(true);
        expect(await storage.replay.consumeOnce('cl_a:jti-1', expiresAt, T0 + 1)).toBe(false);
        expect(await storage.replay.consumeOnce('cl_a:jti-1', expiresAt + HOUR, expiresAt - 1)).toBe(false);
        // At expiresAt the earlier use has expired, so the key is free again, with the new expiry.
        expect(await storage.replay.consumeOnce('cl_a:jti-1', expiresAt + HOUR, expiresAt)).toBe(true);
        expect(await storage.replay.consumeOnce('cl_a:jti-1', expiresAt + HOUR, expiresAt + 1)).toBe(false);
        expect(await storage.replay.consumeOnce('cl_a:jti-1', expiresAt + 2 * HOUR, expiresAt + HOUR)).toBe(true);
      });

      it('keeps keys independent', async () => {
        expect(await storage.replay.consumeOnce('cl_a:jti-1', T0 + HOUR, T0)).toBe(true);
        expect(await storage.replay.consumeOnce('cl_b:jti-1', T0 + HOUR, T0)).toBe(true);
        expect(await storage.replay.consumeOnce('cl_a:jti-2', T0 + HOUR, T0)).toBe(true);
        expect(await storage.replay.consumeOnce('cl_a:jti-1', T0 + HOUR, T0)).toBe(false);
        expect(await storage.replay.consumeOnce('cl_b:jti-1', T0 + HOUR, T0)).toBe(false);
      });

      it('lets exactly one of many concurrent uses of a key win', async () => {
        const results = await Promise.all(
          Array.from({ length: 20 }, () => storage.replay.consumeOnce('cl_a:race', T0 + HOUR, T0)),
        );
        expect(results.filter(Boolean)).toHaveLength(1);
      });
    });

    describe('sweep', () => {
      it('removes expired revocations and replay entries and returns how many; keys are the key ring\'s to delete', async () => {
        const now = T0 + 10 * HOUR;
        await storage.revocations.revokeToken(revocation('jti-past', now - 1));
        await storage.revocations.revokeToken(revocation('jti-now', now));
        await storage.revocations.revokeToken(revocation('jti-live', now + 1));
        await storage.replay.consumeOnce('replay-past', now - 1, T0);
        await storage.replay.consumeOnce('replay-live', now + HOUR, T0);
        await storage.keys.insertKey(signingKey('k-expired', { retiredAt: T0, expiresAt: now }));
        await storage.keys.insertKey(signingKey('k-retired', { retiredAt: T0, expiresAt: now + 1 }));
        await storage.keys.insertKey(signingKey('k-active'));
        await storage.clients.createClient(secretClient('cl_untouched'));

        expect(await storage.sweep(now)).toBe(3);

        // Listing as of T0 shows every row still stored, expired or not.
        expect((await storage.revocations.listRevocations(T0)).map((r) => r.jti)).toStrictEqual(['jti-live']);
        // An expired key stays until the key ring deletes it and announces it (key.deleted).
        expect((await storage.keys.listKeys()).map((k) => k.kid).sort()).toStrictEqual(['k-active', 'k-expired', 'k-retired']);
        // A swept replay key is free even for a `now` before its old expiry; a live one is not.
        expect(await storage.replay.consumeOnce('replay-past', now + HOUR, T0)).toBe(true);
        expect(await storage.replay.consumeOnce('replay-live', now + HOUR, T0)).toBe(false);
        expect(await storage.clients.getClient('cl_untouched')).toStrictEqual(secretClient('cl_untouched'));

        expect(await storage.sweep(now)).toBe(0);
      });

      it('returns 0 on an empty store', async () => {
        expect(await storage.sweep(T0)).toBe(0);
      });
    });

    describe('changes', () => {
      async function all(after = 0) {
        return (await storage.changes.since(after, 1000)).changes.map((c) => [c.kind, c.key, c.expiresAt]);
      }

      it('starts empty at head 0 and complete', async () => {
        const start = await storage.changes.head();
        expect(await storage.changes.since(start, 10)).toStrictEqual({ changes: [], complete: true });
      });

      it('records every client, key, revocation and trust write, in order, with increasing seq', async () => {
        const start = await storage.changes.head();
        await storage.clients.createClient(secretClient('cl_a'));
        await storage.clients.updateClient({ ...secretClient('cl_a'), disabled: true });
        await storage.clients.deleteClient('cl_a');
        await storage.keys.insertKey(signingKey('k1'));
        await storage.keys.retireKey('k1', T0, T0 + HOUR);
        await storage.keys.revokeKey('k1', T0, T0 + HOUR);
        await storage.keys.deleteExpiredKeys(T0 + HOUR);
        // A conditional insert that inserts records its change; one that declines records nothing.
        await storage.keys.insertKeyIfNoneSince(signingKey('k2', { createdAt: T0 }), T0 - HOUR);
        await storage.keys.insertKeyIfNoneSince(signingKey('k3', { createdAt: T0 + 1 }), T0 - HOUR);
        await storage.revocations.revokeToken(revocation('jti-1', T0 + HOUR));
        // No-ops write nothing: a second revocation, an update or delete of a missing client.
        await storage.revocations.revokeToken(revocation('jti-1', T0 + HOUR));
        await storage.clients.updateClient(secretClient('cl_missing'));
        await storage.clients.deleteClient('cl_missing');
        await storage.replay.consumeOnce('r', T0 + HOUR, T0);
        await storage.trusts.createTrust(spiffeTrust('mesh'));
        await storage.trusts.updateTrust({ ...spiffeTrust('mesh'), maxTokenLifetime: 60 });
        await storage.trusts.updateTrust(spiffeTrust('missing'));
        await storage.trusts.deleteTrust('mesh');
        await storage.trusts.deleteTrust('mesh');
        expect(await all(start)).toStrictEqual([
          ['client', 'cl_a', null],
          ['client', 'cl_a', null],
          ['client', 'cl_a', null],
          ['keys', 'k1', null],
          ['keys', 'k1', null],
          ['keys', 'k1', null],
          ['keys', 'k1', null],
          ['keys', 'k2', null],
          ['revocation', 'jti-1', T0 + HOUR],
          ['trust', 'mesh', null],
          ['trust', 'mesh', null],
          ['trust', 'mesh', null],
        ]);
        const { changes } = await storage.changes.since(start, 1000);
        for (let i = 1; i < changes.length; i++) expect(changes[i]!.seq).toBeGreaterThan(changes[i - 1]!.seq);
        expect(await storage.changes.head()).toBe(changes.at(-1)!.seq);
        expect(typeof changes[0]!.createdAt).toBe('number');
      });

      it('pages with after and limit', async () => {
        const start = await storage.changes.head();
        for (const id of ['cl_1', 'cl_2', 'cl_3']) await storage.clients.createClient(secretClient(id));
        const first = await storage.changes.since(start, 2);
        expect(first.changes.map((c) => c.key)).toStrictEqual(['cl_1', 'cl_2']);
        const rest = await storage.changes.since(first.changes[1]!.seq, 2);
        expect(rest.changes.map((c) => c.key)).toStrictEqual(['cl_3']);
        expect(rest.complete).toBe(true);
      });

      it('keeps recent changes through a sweep', async () => {
        const start = await storage.changes.head();
        await storage.clients.createClient(secretClient('cl_recent'));
        await storage.sweep(Date.now());
        expect(await all(start)).toStrictEqual([['client', 'cl_recent', null]]);
      });
    });

    describe('lifecycle', () => {
      it('answers ping', async () => {
        await expect(storage.ping()).resolves.toBeUndefined();
      });

      it('is harmless to migrate again, twice', async () => {
        await storage.clients.createClient(jwtClient('cl_before'));
        await storage.revocations.revokeToken(revocation('jti-before', T0 + HOUR));
        await storage.migrate();
        await storage.migrate();
        expect(await storage.clients.getClient('cl_before')).toStrictEqual(jwtClient('cl_before'));
        expect(await storage.revocations.isTokenRevoked('jti-before', T0)).toBe(true);
        await storage.clients.createClient(secretClient('cl_after'));
        expect((await storage.clients.listClients({ limit: 10 })).map((c) => c.clientId)).toStrictEqual([
          'cl_after',
          'cl_before',
        ]);
      });

      it('rejects ping once closed', async () => {
        await storage.close();
        closed = true;
        await expect(storage.ping()).rejects.toThrow();
      });
    });
  });
}
