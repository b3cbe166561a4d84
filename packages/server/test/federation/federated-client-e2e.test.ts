// A federated client end to end on the real server (createServer, SQLite, the admin API): a trust
// and a federated_jwt client created over /admin, a Kubernetes-shaped issuer over real HTTPS (test
// CA), and the token it gets working wherever a secret client's does: introspection, revocation
// (authenticated with the platform token again), the kill switch, disabling, and the audit line
// naming the external subject. The platform token never reaches a log line or an answer.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JWTPayload } from 'jose';
import { CLIENT_ASSERTION_TYPE } from '../../src/ground/names.js';
import { createTestCa, opensslMissing, type TestCa } from '../tls/test-ca.js';
import { basic, ORDERS, startTestServer, type TestServer } from '../helpers/server.js';
import { startIssuer, type LocalIssuer } from './local-issuer.js';

const SUBJECT = 'system:serviceaccount:payments:billing';
const skip = opensslMissing();
if (skip) console.warn(`federated client end-to-end tests skipped: ${skip}`);

describe.skipIf(skip)('a federated client on the real server', () => {
  let ca: TestCa;
  let issuer: LocalIssuer;
  let t: TestServer;
  let clientId: string;
  let rs: { clientId: string; clientSecret: string };

  const admin = async (method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown) => {
    const res = await t.admin({
      method, url, ...(body !== undefined && { headers: { 'content-type': 'application/json' }, payload: JSON.stringify(body) }),
    });
    return { status: res.statusCode, json: res.body === '' ? undefined : JSON.parse(res.body) };
  };
  const nowS = () => Math.floor(t.clock.now() / 1000);
  const platformToken = (over: JWTPayload = {}) => issuer.sign({
    iss: issuer.url, sub: SUBJECT, aud: [t.config.issuer], iat: nowS(), exp: nowS() + 3600,
    'kubernetes.io': { namespace: 'payments', serviceaccount: { name: 'billing', uid: 'u1' } }, ...over,
  });
  const asFederated = (assertion: string, id = clientId) => ({
    client_id: id, client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: assertion,
  });
  const introspect = (token: string) =>
    t.post('/oauth2/introspect', { token }, { authorization: basic(rs.clientId, rs.clientSecret) });

  beforeAll(async () => {
    ca = createTestCa();
    issuer = await startIssuer(ca.issue('k8s', '0c17'));
    t = await startTestServer({ auditSampleRate: 1 });
    const trust = await admin('POST', '/admin/trusted-issuers', {
      name: 'prod-cluster', kind: 'kubernetes', issuer: issuer.url, ca_bundle: ca.ca, allowed_private_hosts: ['127.0.0.1'],
    });
    expect(trust.status, JSON.stringify(trust.json)).toBe(201);
    const client = await admin('POST', '/admin/clients', {
      client_name: 'billing', scope: 'orders:read', audience: [ORDERS], token_endpoint_auth_method: 'federated_jwt',
      federated_issuer: 'prod-cluster', federated_subject: SUBJECT,
    });
    expect(client.status, JSON.stringify(client.json)).toBe(201);
    expect(client.json.client_secret).toBeUndefined();
    clientId = client.json.client_id;
    rs = await t.client({ scope: '', audience: [], grant_types: [], resource_uris: [ORDERS] });
  });

  afterAll(async () => {
    await t?.close();
    await issuer?.close();
    ca?.cleanup();
  });

  it('gets a token with its platform token; introspection, revocation and the audit line know it', async () => {
    const assertion = await platformToken();
    const res = await t.post('/oauth2/token', { grant_type: 'client_credentials', ...asFederated(assertion) });
    expect(res.statusCode, res.body).toBe(200);
    const token = res.json().access_token as string;
    const active = (await introspect(token)).json();
    expect(active).toMatchObject({ active: true, client_id: clientId, sub: clientId, scope: 'orders:read', aud: ORDERS });
    const issued = t.logs.map((l) => JSON.parse(l)).find((l) => l.audit && l.type === 'token.issued' && l.clientId === clientId);
    expect(issued).toMatchObject({ trust: 'prod-cluster', federatedSubject: SUBJECT });
    // RFC 7009: the client revokes its token, authenticating with its platform token again.
    const revoked = await t.post('/oauth2/revoke', { token, ...asFederated(assertion) });
    expect(revoked.statusCode, revoked.body).toBe(200);
    expect((await introspect(token)).json()).toStrictEqual({ active: false });
    // Neither the platform token nor its signature is in any line.
    const [, payload, signature] = assertion.split('.');
    for (const line of t.logs) {
      expect(line).not.toContain(payload);
      expect(line).not.toContain(signature);
    }
  });

  it('the kill switch and disabling end its tokens as any client\'s', async () => {
    const token = (await t.post('/oauth2/token', { grant_type: 'client_credentials', ...asFederated(await platformToken()) })).json().access_token;
    expect((await introspect(token)).json().active).toBe(true);
    t.clock.advance(1000);
    expect((await admin('POST', `/admin/clients/${clientId}/revoke-tokens`)).status).toBe(200);
    expect((await introspect(token)).json()).toStrictEqual({ active: false });
    t.clock.advance(1000);
    const next = (await t.post('/oauth2/token', { grant_type: 'client_credentials', ...asFederated(await platformToken()) })).json().access_token;
    expect((await introspect(next)).json().active).toBe(true);
    expect((await admin('POST', `/admin/clients/${clientId}/disable`)).status).toBe(200);
    expect((await introspect(next)).json()).toStrictEqual({ active: false });
    const refused = await t.post('/oauth2/token', { grant_type: 'client_credentials', ...asFederated(await platformToken()) });
    expect(refused.statusCode).toBe(401);
    expect((await admin('POST', `/admin/clients/${clientId}/enable`)).status).toBe(200);
  });

  it('answers a hostile platform token with the one invalid_client body, the reason in the log only', async () => {
    const before = t.logs.length;
    const assertion = await platformToken({ sub: 'system:serviceaccount:payments:default' });
    const res = await t.post('/oauth2/token', { grant_type: 'client_credentials', ...asFederated(assertion) });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toStrictEqual({ error: 'invalid_client', error_description: 'Client authentication failed.' });
    const lines = t.logs.slice(before).join('\n');
    expect(lines).toContain("platform token sub is not the client's federated subject");
    expect(lines).not.toContain(assertion.split('.')[2]);
  });

  it('follows a change of the trust at once: a trust audience added over the admin API is accepted', async () => {
    const assertion = await platformToken({ aud: 'https://payments.example.com' });
    expect((await t.post('/oauth2/token', { grant_type: 'client_credentials', ...asFederated(assertion) })).statusCode).toBe(401);
    const patched = await admin('PATCH', '/admin/trusted-issuers/prod-cluster', { audiences: ['https://payments.example.com'] });
    expect(patched.status, JSON.stringify(patched.json)).toBe(200);
    expect((await t.post('/oauth2/token', { grant_type: 'client_credentials', ...asFederated(assertion) })).statusCode).toBe(200);
  });

  it('publishes the key fetches in the metrics', async () => {
    const res = await t.admin({ method: 'GET', url: '/metrics' });
    expect(res.body).toMatch(/m2m_auth_federation_key_fetches_total\{trust="prod-cluster",result="ok"\} [1-9]/);
    expect(res.body).toMatch(/m2m_auth_federation_key_age_seconds\{trust="prod-cluster"\} \d/);
  });
});
