// The mutual-TLS client metadata (RFC 8705 §2.1.2, §3) through the client file of `m2m-auth apply`
// and through export and import: the one certificate name moves between fields, the binding
// travels, and an export made before these fields existed imports with their defaults.

import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { checkClientFile, planApply } from '../../src/cli/client-file.js';
import { exportState, importState } from '../../src/cli/state-document.js';
import { clientToWire } from '../../src/clients/wire.js';
import { draftNewClient } from '../../src/clients/registry.js';
import { openStorage } from '../../src/storage/open.js';
import type { ClientRecord } from '../../src/ground/records.js';

const AUD = 'https://orders.example.com';
const entry = (extra: Record<string, unknown>) => ({ client_id: 'cl_mtls', client_name: 'mtls', scope: 'a', audience: [AUD], token_endpoint_auth_method: 'tls_client_auth', ...extra });

describe('mutual-TLS metadata in the client file', () => {
  it('plans the move of the certificate name from one field to another, and the binding', () => {
    const [before] = checkClientFile({ version: 1, clients: [entry({ tls_client_auth_san_dns: 'a.example.com' })] }).clients;
    const current = clientToWire({ clientId: 'cl_mtls', ...draftNewClient(before!.input, { min: 1, max: 86400 }, 0).draft });
    const file = checkClientFile({ version: 1, clients: [entry({ tls_client_auth_san_uri: 'spiffe://example.org/a', tls_client_certificate_bound_access_tokens: true })] }).clients;
    const [step] = planApply(file, [current], false);
    expect(step).toStrictEqual({
      action: 'update', clientId: 'cl_mtls',
      fields: ['tls_client_auth_san_dns', 'tls_client_auth_san_uri', 'tls_client_certificate_bound_access_tokens'],
      body: { tls_client_auth_san_dns: null, tls_client_auth_san_uri: 'spiffe://example.org/a', tls_client_certificate_bound_access_tokens: true },
    });
    expect(planApply(checkClientFile({ version: 1, clients: [entry({ tls_client_auth_san_dns: 'a.example.com' })] }).clients, [current], false)[0]!.action).toBe('unchanged');
  });

  it('refuses a file entry with two names, or none, naming the client and the field', () => {
    expect(() => checkClientFile({ version: 1, clients: [entry({ tls_client_auth_san_dns: 'a.example.com', tls_client_auth_san_ip: '10.0.0.1' })] }).clients)
      .toThrow(/clients\[0\] "cl_mtls": field tls_client_auth_san_(dns|ip): only one of/);
    expect(() => checkClientFile({ version: 1, clients: [entry({})] }).clients).toThrow(/needs exactly one of/);
  });
});

describe('mutual-TLS metadata through export and import', () => {
  it('travels whole, and an older export without it imports with the defaults', async () => {
    const kek = randomBytes(32);
    const source = await openStorage('sqlite::memory:');
    const target = await openStorage('sqlite::memory:');
    const older = await openStorage('sqlite::memory:');
    try {
      const { draft } = draftNewClient(entry({ tls_client_auth_subject_dn: 'CN=a,O=Example\\, Inc.', tls_client_certificate_bound_access_tokens: true }), { min: 1, max: 86400 }, 1);
      const client: ClientRecord = { clientId: 'cl_mtls', ...draft };
      await source.clients.createClient(client);
      const doc = await exportState(source, kek, 2);
      await importState(target, doc, { merge: false, now: 2 });
      expect(await target.clients.getClient('cl_mtls')).toStrictEqual(client);

      // An export written before RFC 8705 metadata: the client record has neither field.
      const { tlsClientAuth: _a, tlsClientCertificateBoundAccessTokens: _b, ...old } = { ...client, clientId: 'cl_old', tokenEndpointAuthMethod: 'client_secret_basic' as const };
      await importState(older, { ...doc, clients: [old as ClientRecord] }, { merge: false, now: 2 });
      expect(await older.clients.getClient('cl_old')).toMatchObject({ tlsClientAuth: null, tlsClientCertificateBoundAccessTokens: false });
    } finally {
      await Promise.all([source.close(), target.close(), older.close()]);
    }
  });
});
