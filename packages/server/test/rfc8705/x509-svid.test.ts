// SPIFFE X.509-SVIDs as client certificates (issue 18) end to end: the real server with its mTLS
// listener (and no M2M_AUTH_MTLS_CA: the SVID path trusts the trust's bundle only), a SPIFFE CA
// made by openssl for the test, a trusted issuer of kind spiffe whose static bundle holds that CA
// as an x509-svid authority (x5c), a federated client whose federated_subject is the SVID's SPIFFE
// ID, and undici presenting the certificates. Refusals: another SPIFFE ID, another CA, an expired
// SVID, another trust domain, a CA certificate as the SVID, no certificate. The reason is in the
// log only.

import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent, fetch as undiciFetch } from 'undici';
import { admin, startListening, type ListeningServer } from '../e2e/listening-server.js';
import { createTestCa, opensslMissing, type TestCa } from '../tls/test-ca.js';
import { createClientCa, type ClientCa, type ClientCertificate } from './client-certs.js';

const missing = opensslMissing();
if (missing) console.warn(`X.509-SVID tests skipped: ${missing}. Install openssl to run them.`);

const AUD = 'https://orders.example.com';
const BILLING = 'spiffe://example.org/ns/payments/sa/billing';

interface Answer { status: number; body: Record<string, unknown> }

/** A certificate of `ca` whose validity ended in 2020 (openssl ca takes explicit dates). */
function issueExpired(ca: ClientCa, name: string, san: string): ClientCertificate {
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: ca.dir, encoding: 'utf8' });
    if (r.error || r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.error?.message ?? r.stderr}`);
  };
  writeFileSync(join(ca.dir, 'index.txt'), '');
  writeFileSync(join(ca.dir, 'serial'), '2000\n');
  writeFileSync(join(ca.dir, 'ca.cnf'), [
    '[ca]', 'default_ca = d', '[d]', 'database = index.txt', 'new_certs_dir = .', 'serial = serial', 'default_md = sha256',
    'policy = p', 'unique_subject = no', '[p]', 'commonName = supplied',
  ].join('\n') + '\n');
  writeFileSync(join(ca.dir, `${name}.ext`), `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nsubjectAltName=${san}\n`);
  run(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
  run([
    'ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.crt', '-keyfile', 'ca.key', '-in', `${name}.csr`, '-out', `${name}.crt`,
    '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-extfile', `${name}.ext`, '-notext',
  ]);
  const cert = readFileSync(join(ca.dir, `${name}.crt`), 'utf8');
  return { cert, key: readFileSync(join(ca.dir, `${name}.key`), 'utf8'), der: new X509Certificate(cert).raw };
}

describe.skipIf(missing !== undefined)('SPIFFE X.509-SVIDs over mutual TLS', () => {
  let serverCa: TestCa;
  let spiffeCa: ClientCa;
  let otherCa: ClientCa;
  let s: ListeningServer;
  let mtlsUrl: string;
  const agents: Agent[] = [];
  const certs: Record<string, ClientCertificate> = {};
  let billingId: string;
  let reportsId: string;

  function agent(cert?: ClientCertificate, localAddress?: string): Agent {
    const a = new Agent({ ...(localAddress && { localAddress }), connect: { ca: serverCa.ca, ...(cert && { cert: cert.cert, key: cert.key }) } });
    agents.push(a);
    return a;
  }

  async function token(clientId: string, cert?: ClientCertificate, via?: { url: string; localAddress: string; header: string }): Promise<Answer> {
    const res = await undiciFetch(`${via?.url ?? mtlsUrl}/oauth2/token`, {
      method: 'POST', dispatcher: via ? agent(undefined, via.localAddress) : agent(cert),
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...(via && { 'client-cert': via.header }) },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: clientId }).toString(),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  function expectInvalidClient(a: Answer): void {
    expect(a.status).toBe(401);
    expect(a.body).toStrictEqual({ error: 'invalid_client', error_description: 'Client authentication failed.' });
  }

  function authority(ca: ClientCa): Record<string, unknown> {
    const x509 = new X509Certificate(ca.ca);
    return { ...x509.publicKey.export({ format: 'jwk' }), use: 'x509-svid', x5c: [x509.raw.toString('base64')] };
  }

  beforeAll(async () => {
    serverCa = createTestCa();
    const serverCert = serverCa.issue('server', '5105');
    spiffeCa = createClientCa('SPIFFE CA example.org');
    otherCa = createClientCa('another SPIFFE CA');
    certs.billing = spiffeCa.issue('billing', '/O=SPIRE', `URI:${BILLING}`);
    certs.reports = spiffeCa.issue('reports', '/O=SPIRE', 'URI:spiffe://example.org/ns/payments/sa/reports');
    certs.foreign = otherCa.issue('foreign', '/O=SPIRE', `URI:${BILLING}`);
    certs.otherDomain = spiffeCa.issue('other-domain', '/O=SPIRE', 'URI:spiffe://example.net/ns/payments/sa/billing');
    certs.twoUris = spiffeCa.issue('two-uris', '/O=SPIRE', `URI:${BILLING},URI:spiffe://example.org/ns/payments/sa/reports`);
    certs.expired = issueExpired(spiffeCa, 'expired', `URI:${BILLING}`);

    s = await startListening({
      captureLogs: 'debug',
      overrides: {
        tlsCert: serverCert.certPath, tlsKey: serverCert.keyPath, mtlsListen: '127.0.0.1:0',
        // 127.0.0.2 plays the TLS-terminating proxy that sends Client-Cert.
        trustProxy: '127.0.0.2',
        authFailuresPerAddress: 0, authFailuresPerClient: 0,
      },
    });
    const port = (s.server.mtlsApp!.server.address() as { port: number }).port;
    mtlsUrl = `https://127.0.0.1:${port}`;

    const trust = await admin(s, 'POST', '/trusted-issuers', {
      name: 'mesh', kind: 'spiffe', trust_domain: 'example.org', jwks: { spiffe_sequence: 1, keys: [authority(spiffeCa)] },
    });
    expect(trust.status, JSON.stringify(trust.body)).toBe(201);
    expect(trust.body.jwks.keys[0].use).toBe('x509-svid');
    const reg = async (name: string, subject: string) => {
      const c = await admin(s, 'POST', '/clients', {
        client_name: name, scope: 'orders:read', audience: [AUD], token_endpoint_auth_method: 'federated_jwt',
        federated_issuer: 'mesh', federated_subject: subject,
      });
      expect(c.status, JSON.stringify(c.body)).toBe(201);
      return c.body.client_id as string;
    };
    billingId = await reg('billing', BILLING);
    reportsId = await reg('reports', 'spiffe://example.org/ns/payments/sa/reports');
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.close()));
    await s?.close();
    serverCa?.cleanup();
    spiffeCa?.cleanup();
    otherCa?.cleanup();
  });

  it('issues a token to the federated client whose federated_subject is the SVID\'s SPIFFE ID', async () => {
    const a = await token(billingId, certs.billing);
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    expect(a.body.token_type).toBe('Bearer');
    const claims = JSON.parse(Buffer.from((a.body.access_token as string).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(claims.client_id).toBe(billingId);
    expect(claims.sub).toBe(billingId);
    expect((await token(reportsId, certs.reports)).status).toBe(200);
  });

  it('takes the SVID from the trusted proxy\'s Client-Cert header, and from no one else', async () => {
    const header = `:${certs.billing!.der.toString('base64')}:`;
    const viaProxy = await token(billingId, undefined, { url: s.publicUrl, localAddress: '127.0.0.2', header });
    expect(viaProxy.status, JSON.stringify(viaProxy.body)).toBe(200);
    expectInvalidClient(await token(billingId, undefined, { url: s.publicUrl, localAddress: '127.0.0.1', header }));
  });

  it('refuses another SPIFFE ID, another CA, an expired SVID, another trust domain, two URI SANs, a CA certificate and no certificate', async () => {
    // The SVID of another workload of the same trust domain.
    expectInvalidClient(await token(billingId, certs.reports));
    // The right SPIFFE ID, signed by a CA that is not in the bundle.
    expectInvalidClient(await token(billingId, certs.foreign));
    expectInvalidClient(await token(billingId, certs.expired));
    expectInvalidClient(await token(billingId, certs.otherDomain));
    expectInvalidClient(await token(billingId, certs.twoUris));
    // The CA's own certificate (no SPIFFE ID in it).
    expectInvalidClient(await token(billingId, { cert: spiffeCa.ca, key: readFileSync(join(spiffeCa.dir, 'ca.key'), 'utf8'), der: Buffer.alloc(0) }));
    expectInvalidClient(await token(billingId));
    const reasons = s.logs.filter((l) => l.includes('oauth error detail')).map((l) => JSON.parse(l).detail as string);
    expect(reasons).toEqual(expect.arrayContaining([
      'client certificate\'s SPIFFE ID is not the client\'s federated subject',
      'client certificate is not signed by an X.509-SVID authority of trust domain example.org',
      'client certificate is expired or not yet valid',
      'client certificate\'s URI SAN is not a SPIFFE ID of trust domain example.org',
      'client certificate has 2 URI SANs; an X.509-SVID has exactly one',
      'client certificate has 0 URI SANs; an X.509-SVID has exactly one',
    ]));
    expect(reasons.some((r) => r === 'no client authentication' || r === 'no client certificate')).toBe(true);
    expect(s.logs.filter((l) => l.includes('"status":500'))).toStrictEqual([]);
  });
});

