// /admin/trusted-issuers and federated_jwt clients (issue 17) through the admin API, on the
// embedded SQLite store: the trust fields' rules with hostile input, the (trust, subject) pair
// belonging to one client, and a trust that clients name refusing to go.

import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { registerAdminRoutes } from '../../src/admin/routes.js';
import { ClientRegistry } from '../../src/clients/registry.js';
import { EventBus, type EventName } from '../../src/observability/events.js';
import { openStorage } from '../../src/storage/open.js';
import type { Storage } from '../../src/storage/types.js';
import { TrustRegistry } from '../../src/trusts/registry.js';
import { keyPair } from '../clients/keys.js';
import { createTestCa, opensslMissing, type TestCa } from '../tls/test-ca.js';

const TOKEN = 'm2m_at_' + 'k'.repeat(43);
const T0 = Date.UTC(2030, 0, 1);
const API = 'https://api.example.com';

let app: FastifyInstance;
let storage: Storage;
let seen: Array<{ name: EventName; payload: unknown }>;
let ca: TestCa | undefined;

interface Answer {
  status: number;
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

async function call(method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, body?: unknown): Promise<Answer> {
  const res = await app.inject({
    method, url,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { payload: JSON.stringify(body) }),
  });
  return { status: res.statusCode, json: res.body === '' ? undefined : JSON.parse(res.body) };
}

function expect400(res: Answer, message: RegExp): void {
  expect(res.status, JSON.stringify(res.json)).toBe(400);
  expect(res.json.error).toBe('invalid_request');
  expect(res.json.message).toMatch(message);
}

const k8s = { name: 'prod-cluster', kind: 'kubernetes', issuer: 'https://kubernetes.default.svc.cluster.local' };
const mesh = { name: 'mesh', kind: 'spiffe', trust_domain: 'prod.example.org', jwks_uri: 'https://spire.example.org/bundle' };
const github = { name: 'github', kind: 'oidc', issuer: 'https://token.actions.githubusercontent.com', audiences: ['https://github.com/acme'] };

function federatedClient(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    client_name: 'billing', scope: 'read', audience: [API], token_endpoint_auth_method: 'federated_jwt',
    federated_issuer: 'prod-cluster', federated_subject: 'system:serviceaccount:payments:billing', ...extra,
  };
}

beforeAll(() => {
  if (opensslMissing() === undefined) ca = createTestCa();
});
afterAll(() => ca?.cleanup());

beforeEach(async () => {
  storage = await openStorage('sqlite::memory:');
  const events = new EventBus();
  seen = [];
  events.onAny((name, payload) => seen.push({ name, payload }));
  const now = (): number => T0;
  const trusts = new TrustRegistry(storage.trusts, events, { now });
  const registry = new ClientRegistry(storage.clients, events, {
    tokenTtlMin: 60, tokenTtlMax: 86_400, secretGracePeriod: 0, now, trusts: { get: (n) => storage.trusts.getTrust(n) },
  });
  app = Fastify({ logger: false });
  await registerAdminRoutes(app, {
    registry, trusts, adminToken: TOKEN, events,
    keys: { list: () => [], rotate: () => Promise.reject(new Error('unused')), revoke: () => Promise.reject(new Error('unused')) },
  });
  await app.ready();
});

afterEach(async () => {
  await app.close();
  await storage.close();
});

describe('/admin/trusted-issuers', () => {
  it('creates, reads, lists, updates and deletes a trust, with defaults and audit events', async () => {
    const created = await call('POST', '/admin/trusted-issuers', k8s);
    expect(created.status).toBe(201);
    expect(created.json).toEqual({
      name: 'prod-cluster', kind: 'kubernetes', issuer: k8s.issuer, trust_domain: null, jwks_uri: null, jwks: null, ca_bundle: null,
      allowed_private_hosts: [], audiences: [], max_token_lifetime: 86_400, single_use_jti: null,
      created_at: T0 / 1000, updated_at: T0 / 1000,
    });
    expect((await call('GET', '/admin/trusted-issuers/prod-cluster')).json).toEqual(created.json);
    expect((await call('POST', '/admin/trusted-issuers', mesh)).status).toBe(201);
    expect((await call('POST', '/admin/trusted-issuers', github)).status).toBe(201);

    const page1 = await call('GET', '/admin/trusted-issuers?limit=2');
    expect(page1.json.trusted_issuers.map((t: { name: string }) => t.name)).toEqual(['github', 'mesh']);
    expect(page1.json.next).toBe('mesh');
    const page2 = await call('GET', '/admin/trusted-issuers?limit=2&after=mesh');
    expect(page2.json).toMatchObject({ trusted_issuers: [{ name: 'prod-cluster' }], next: null });

    const updated = await call('PATCH', '/admin/trusted-issuers/prod-cluster', {
      max_token_lifetime: 7200, single_use_jti: false, allowed_private_hosts: ['10.0.0.1'], jwks_uri: 'https://10.0.0.1/openid/v1/jwks',
    });
    expect(updated.status).toBe(200);
    expect(updated.json).toMatchObject({ max_token_lifetime: 7200, single_use_jti: false, allowed_private_hosts: ['10.0.0.1'] });
    // Nothing changed: nothing written, no event.
    expect((await call('PATCH', '/admin/trusted-issuers/prod-cluster', { max_token_lifetime: 7200 })).status).toBe(200);

    expect((await call('DELETE', '/admin/trusted-issuers/github')).status).toBe(204);
    expect((await call('GET', '/admin/trusted-issuers/github')).status).toBe(404);
    expect((await call('DELETE', '/admin/trusted-issuers/github')).status).toBe(404);

    expect(seen.filter((e) => e.name.startsWith('trust.'))).toEqual([
      { name: 'trust.created', payload: { trust: 'prod-cluster', ip: '127.0.0.1', requestId: expect.any(String) } },
      { name: 'trust.created', payload: expect.objectContaining({ trust: 'mesh' }) },
      { name: 'trust.created', payload: expect.objectContaining({ trust: 'github' }) },
      { name: 'trust.updated', payload: expect.objectContaining({ trust: 'prod-cluster', fields: ['jwks_uri', 'allowed_private_hosts', 'max_token_lifetime', 'single_use_jti'] }) },
      { name: 'trust.deleted', payload: expect.objectContaining({ trust: 'github' }) },
    ]);
  });

  it('refuses a duplicate name with 409', async () => {
    await call('POST', '/admin/trusted-issuers', k8s);
    const again = await call('POST', '/admin/trusted-issuers', { ...github, name: 'prod-cluster' });
    expect(again.status).toBe(409);
    expect(again.json).toEqual({ error: 'conflict', message: 'A trusted issuer named "prod-cluster" already exists' });
  });

  it.each([
    ['an unknown field', { ...k8s, issuer_url: 'https://x' }, /Unknown field "issuer_url"/],
    ['a read-only field', { ...k8s, created_at: 1 }, /created_at is read-only/],
    ['a bad name', { ...k8s, name: 'Prod_Cluster' }, /name must be 1 to 64 of lowercase letters/],
    ['a name starting with a digit', { ...k8s, name: '1prod' }, /name must be 1 to 64/],
    ['a name too long', { ...k8s, name: 'a'.repeat(65) }, /name must be 1 to 64/],
    ['a missing name', { kind: 'oidc', issuer: 'https://x.example' }, /name is required/],
    ['a number for a name', { ...k8s, name: 7 }, /name must be 1 to 64 .*got a number/],
    ['an unknown kind', { ...k8s, kind: 'aws' }, /kind must be one of kubernetes, spiffe, oidc/],
    ['a missing kind', { name: 'x', issuer: 'https://x.example' }, /kind is required/],
    ['an http issuer', { ...k8s, issuer: 'http://kubernetes.default.svc' }, /issuer must be an https URL/],
    ['an http loopback issuer without the test setting', { ...k8s, issuer: 'http://127.0.0.1:8080' }, /issuer must be an https URL/],
    ['an issuer that is not a URL', { ...k8s, issuer: 'kubernetes' }, /is not an absolute URL/],
    ['an issuer with credentials', { ...k8s, issuer: 'https://u:p@k8s.example' }, /must not carry credentials/],
    ['an issuer with a query', { ...k8s, issuer: 'https://k8s.example/?a=1' }, /must not have a query/],
    ['an issuer of the wrong type', { ...k8s, issuer: ['https://k8s.example'] }, /issuer must be a string .*got an array/],
    ['a kubernetes trust without issuer', { name: 'k', kind: 'kubernetes' }, /issuer is required for kind kubernetes/],
    ['an oidc trust with a trust domain', { ...github, trust_domain: 'x.org' }, /trust_domain is only for kind spiffe/],
    ['a spiffe trust without trust domain', { name: 's', kind: 'spiffe', jwks_uri: 'https://b.example' }, /trust_domain is required for kind spiffe/],
    ['a spiffe trust with an issuer', { ...mesh, issuer: 'https://spire.example.org' }, /issuer is not for kind spiffe/],
    ['a spiffe trust with audiences', { ...mesh, audiences: ['x'] }, /audiences is not for kind spiffe/],
    ['a spiffe trust without keys', { name: 's', kind: 'spiffe', trust_domain: 'x.org' }, /needs jwks_uri .* or jwks/],
    ['a bad trust domain', { ...mesh, trust_domain: 'Prod.Example.org' }, /trust_domain must be a SPIFFE trust domain name/],
    ['an http jwks_uri', { ...k8s, jwks_uri: 'http://10.0.0.1/jwks' }, /jwks_uri must be an https URL/],
    ['a lifetime too long', { ...k8s, max_token_lifetime: 8 * 86_400 }, /max_token_lifetime must be a whole number of seconds from 60 to 604800/],
    ['a lifetime too short', { ...k8s, max_token_lifetime: 59 }, /max_token_lifetime must be/],
    ['a fractional lifetime', { ...k8s, max_token_lifetime: 3600.5 }, /max_token_lifetime must be/],
    ['a lifetime as a string', { ...k8s, max_token_lifetime: '3600' }, /max_token_lifetime must be/],
    ['single_use_jti as a string', { ...k8s, single_use_jti: 'yes' }, /single_use_jti must be true, false or null/],
    ['a host with a port', { ...k8s, allowed_private_hosts: ['10.0.0.1:6443'] }, /allowed_private_hosts\[0\] must be a lowercase host name or an IP address/],
    ['hosts that are not a list', { ...k8s, allowed_private_hosts: '10.0.0.1' }, /allowed_private_hosts must be an array/],
    ['an empty audience', { ...github, audiences: [''] }, /audiences\[0\] must be a non-empty string/],
    ['a repeated audience', { ...github, audiences: ['a', 'a'] }, /audiences lists "a" more than once/],
    ['jwks that is not a set', { ...k8s, jwks: [] }, /jwks must be a JSON Web Key Set object/],
    ['jwks with no keys', { ...k8s, jwks: { keys: [] } }, /at least one public key/],
    ['jwks with a symmetric key', { ...k8s, jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }, /symmetric key/],
    ['a ca_bundle that is not PEM', { ...k8s, jwks_uri: 'https://10.0.0.1/jwks', ca_bundle: 'not a certificate' }, /ca_bundle must hold at least one PEM certificate/],
    ['a ca_bundle with a broken certificate', { ...k8s, jwks_uri: 'https://10.0.0.1/jwks', ca_bundle: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n' }, /ca_bundle certificate 1 is not a valid X.509 certificate/],
    ['a ca_bundle of the wrong type', { ...k8s, ca_bundle: 42 }, /ca_bundle must be a string of PEM certificates/],
  ])('refuses %s with 400 and a clear message', async (_what, body, message) => {
    expect400(await call('POST', '/admin/trusted-issuers', body), message);
    expect((await call('GET', '/admin/trusted-issuers')).json.trusted_issuers).toEqual([]);
  });

  it('refuses a private key in jwks, without echoing it', async () => {
    const { privateJwk } = keyPair('ec');
    const res = await call('POST', '/admin/trusted-issuers', { ...k8s, jwks: { keys: [privateJwk] } });
    expect400(res, /contains the private key member "d"; register the public key only/);
    expect(JSON.stringify(res.json)).not.toContain(privateJwk.d);
  });

  it('keeps the public members of static keys only; a SPIFFE bundle\'s jwt-svid keys are kept as sig, an x509-svid key without a CA certificate is refused', async () => {
    const { publicJwk } = keyPair('ec');
    const refused = await call('POST', '/admin/trusted-issuers', {
      ...mesh, jwks_uri: null,
      jwks: { spiffe_sequence: 3, spiffe_refresh_hint: 300, keys: [{ ...publicJwk, kid: 'a', use: 'jwt-svid' }, { ...publicJwk, kid: 'b', use: 'x509-svid', x5c: ['AAAA'] }] },
    });
    expect400(refused, /jwks.keys\[1\] x5c\[0\] is not a valid X.509 certificate/);
    const res = await call('POST', '/admin/trusted-issuers', {
      ...mesh, jwks_uri: null,
      jwks: { spiffe_sequence: 3, spiffe_refresh_hint: 300, keys: [{ ...publicJwk, kid: 'a', use: 'jwt-svid', x5c: ['AAAA'] }] },
    });
    expect(res.status, JSON.stringify(res.json)).toBe(201);
    expect(res.json.jwks).toEqual({ keys: [{ kty: 'EC', crv: 'P-256', x: publicJwk.x, y: publicJwk.y, kid: 'a', use: 'sig' }] });
  });

  it.skipIf(opensslMissing() !== undefined)('keeps a SPIFFE bundle\'s x509-svid authority (its key and x5c CA certificate), for kind spiffe only', async () => {
    const { X509Certificate } = await import('node:crypto');
    const cert = new X509Certificate(ca!.ca);
    const x5c = [cert.raw.toString('base64')];
    const key = { ...cert.publicKey.export({ format: 'jwk' }), kid: 'x1', use: 'x509-svid', x5c };
    const res = await call('POST', '/admin/trusted-issuers', { ...mesh, name: 'mesh-x509', jwks_uri: null, jwks: { keys: [key] } });
    expect(res.status, JSON.stringify(res.json)).toBe(201);
    expect(res.json.jwks.keys).toEqual([expect.objectContaining({ kid: 'x1', use: 'x509-svid', x5c })]);
    const { publicJwk } = keyPair('ec');
    expect400(await call('POST', '/admin/trusted-issuers', { ...mesh, name: 'mesh-x509b', jwks_uri: null, jwks: { keys: [{ ...publicJwk, use: 'x509-svid', x5c }] } }), /does not hold the key's public key/);
    expect400(await call('POST', '/admin/trusted-issuers', { ...k8s, name: 'k8s-x509', jwks: { keys: [key] } }), /for kind spiffe only/);
  });

  it.skipIf(opensslMissing() !== undefined)('accepts a PEM CA bundle and refuses a certificate that is not a CA, or a key pasted in', async () => {
    const body = { ...k8s, jwks_uri: 'https://10.0.0.1/openid/v1/jwks', allowed_private_hosts: ['10.0.0.1'] };
    const leaf = ca!.issue('leaf', '0A');
    const { readFileSync } = await import('node:fs');
    expect400(await call('POST', '/admin/trusted-issuers', { ...body, ca_bundle: readFileSync(leaf.certPath, 'utf8') }), /is not a CA certificate/);
    const withKey = `${ca!.ca}\n${readFileSync(leaf.keyPath, 'utf8')}`;
    const refused = await call('POST', '/admin/trusted-issuers', { ...body, ca_bundle: withKey });
    expect400(refused, /ca_bundle must hold PEM certificates only/);
    expect(JSON.stringify(refused.json)).not.toContain('PRIVATE KEY');
    const ok = await call('POST', '/admin/trusted-issuers', { ...body, ca_bundle: ca!.ca });
    expect(ok.status, JSON.stringify(ok.json)).toBe(201);
    expect(ok.json.ca_bundle).toBe(ca!.ca);
  });

  it('updates check the whole record, and the name cannot change', async () => {
    await call('POST', '/admin/trusted-issuers', k8s);
    expect400(await call('PATCH', '/admin/trusted-issuers/prod-cluster', { kind: 'spiffe' }), /trust_domain is required for kind spiffe/);
    expect400(await call('PATCH', '/admin/trusted-issuers/prod-cluster', { name: 'other' }), /name cannot be changed/);
    expect400(await call('PATCH', '/admin/trusted-issuers/prod-cluster', { issuer: null }), /issuer is required for kind kubernetes/);
    expect400(await call('PATCH', '/admin/trusted-issuers/prod-cluster', { updated_at: 5 }), /updated_at is read-only/);
    expect400(await call('PATCH', '/admin/trusted-issuers/prod-cluster', []), /must be a JSON object/);
    expect((await call('PATCH', '/admin/trusted-issuers/absent', { audiences: [] })).status).toBe(404);
    expect((await call('GET', '/admin/trusted-issuers/prod-cluster')).json.kind).toBe('kubernetes');
  });

  it('refuses bad list queries', async () => {
    expect400(await call('GET', '/admin/trusted-issuers?limit=0'), /limit/);
    expect400(await call('GET', '/admin/trusted-issuers?after='), /after must be a trust name/);
    expect400(await call('GET', '/admin/trusted-issuers?colour=red'), /colour/);
  });
});

describe('federated_jwt clients', () => {
  beforeEach(async () => {
    expect((await call('POST', '/admin/trusted-issuers', k8s)).status).toBe(201);
    expect((await call('POST', '/admin/trusted-issuers', mesh)).status).toBe(201);
  });

  it('registers a federated client: no secret, no jwks, its federation shown', async () => {
    const res = await call('POST', '/admin/clients', federatedClient({ federated_claims: { 'kubernetes.io': { namespace: 'payments' } } }));
    expect(res.status, JSON.stringify(res.json)).toBe(201);
    expect(res.json).toMatchObject({
      token_endpoint_auth_method: 'federated_jwt', jwks: null, federated_issuer: 'prod-cluster',
      federated_subject: 'system:serviceaccount:payments:billing', federated_claims: { 'kubernetes.io': { namespace: 'payments' } },
    });
    expect(res.json).not.toHaveProperty('client_secret');
    const stored = await storage.clients.getClient(res.json.client_id);
    expect(stored?.secrets).toEqual([]);
    // A secret client shows the federated fields as null.
    const plain = await call('POST', '/admin/clients', { client_name: 'p', scope: 'read', audience: [API] });
    expect(plain.json).toMatchObject({ federated_issuer: null, federated_subject: null, federated_claims: null });
  });

  it('gives a (trust, subject) pair to one client only: 409 with a clear message', async () => {
    expect((await call('POST', '/admin/clients', federatedClient())).status).toBe(201);
    const again = await call('POST', '/admin/clients', federatedClient({ client_name: 'copy' }));
    expect(again.status).toBe(409);
    expect(again.json).toEqual({
      error: 'conflict',
      message: 'Another client already has federated_subject "system:serviceaccount:payments:billing" at trust "prod-cluster": a (federated_issuer, federated_subject) pair belongs to one client at most',
    });
    const other = await call('POST', '/admin/clients', federatedClient({ federated_subject: 'system:serviceaccount:payments:other' }));
    expect(other.status).toBe(201);
    const moved = await call('PATCH', `/admin/clients/${other.json.client_id}`, { federated_subject: 'system:serviceaccount:payments:billing' });
    expect(moved.status).toBe(409);
    expect((await call('GET', `/admin/clients/${other.json.client_id}`)).json.federated_subject).toBe('system:serviceaccount:payments:other');
  });

  it.each([
    ['a missing trust', { federated_issuer: 'absent' }, /federated_issuer "absent" names no trusted issuer/],
    ['no federated_issuer', { federated_issuer: undefined }, /federated_issuer is required with federated_subject/],
    ['no federated_subject', { federated_subject: undefined }, /federated_subject is required with federated_issuer/],
    ['no federation at all', { federated_issuer: undefined, federated_subject: undefined }, /federated_issuer and federated_subject are required for token_endpoint_auth_method federated_jwt/],
    ['a bad trust name', { federated_issuer: 'Prod' }, /federated_issuer must be the name of a trusted issuer/],
    ['an empty subject', { federated_subject: '' }, /federated_subject must not be empty/],
    ['a subject with a control character', { federated_subject: 'system:serviceaccount:a\nb' }, /must not contain control characters/],
    ['a subject too long', { federated_subject: 's'.repeat(1025) }, /federated_subject must be at most 1024 characters/],
    ['a subject of the wrong type', { federated_subject: 42 }, /federated_subject must be a string .*got a number/],
    ['jwks besides the federation', { jwks: { keys: [keyPair('ec').publicJwk] } }, /jwks is not for token_endpoint_auth_method federated_jwt/],
    ['a secret digest', { client_secret_sha256: 'a'.repeat(64) }, /client_secret_sha256 is only for the secret methods/],
    ['required claims naming sub', { federated_claims: { sub: 'x' } }, /federated_claims may not name "sub"/],
    ['required claims that are not an object', { federated_claims: ['repository'] }, /federated_claims must be a JSON object/],
    ['required claims too big', { federated_claims: { big: 'x'.repeat(5000) } }, /federated_claims take \d+ bytes of JSON, more than the 4096 allowed/],
    ['a non-SPIFFE subject at a spiffe trust', { federated_issuer: 'mesh' }, /federated_subject must be a SPIFFE ID in trust domain prod.example.org/],
    ['a SPIFFE ID of another trust domain', { federated_issuer: 'mesh', federated_subject: 'spiffe://evil.example.org/ns/payments/sa/billing' }, /SPIFFE ID in trust domain prod.example.org/],
    ['a SPIFFE ID with a dot segment', { federated_issuer: 'mesh', federated_subject: 'spiffe://prod.example.org/ns/../sa' }, /SPIFFE ID/],
  ])('refuses %s with 400', async (_what, extra, message) => {
    expect400(await call('POST', '/admin/clients', federatedClient(extra)), message);
  });

  it('accepts a SPIFFE ID in the trust domain', async () => {
    const res = await call('POST', '/admin/clients', federatedClient({ federated_issuer: 'mesh', federated_subject: 'spiffe://prod.example.org/ns/payments/sa/billing' }));
    expect(res.status, JSON.stringify(res.json)).toBe(201);
  });

  it('other methods refuse the federated fields; switching methods drops or needs them', async () => {
    expect400(await call('POST', '/admin/clients', { client_name: 'p', scope: 'read', audience: [API], federated_issuer: 'prod-cluster', federated_subject: 's' }),
      /only for token_endpoint_auth_method federated_jwt/);
    const fed = await call('POST', '/admin/clients', federatedClient());
    const id = fed.json.client_id as string;
    // To a secret method: the federation goes, a secret is issued once.
    const toSecret = await call('PATCH', `/admin/clients/${id}`, { token_endpoint_auth_method: 'client_secret_basic' });
    expect(toSecret.status).toBe(200);
    expect(toSecret.json).toMatchObject({ federated_issuer: null, federated_subject: null, client_secret: expect.stringMatching(/^m2m_cs_/) });
    // Back: the federation is needed, the secrets go.
    expect400(await call('PATCH', `/admin/clients/${id}`, { token_endpoint_auth_method: 'federated_jwt' }), /federated_issuer and federated_subject are required/);
    const back = await call('PATCH', `/admin/clients/${id}`, { token_endpoint_auth_method: 'federated_jwt', federated_issuer: 'prod-cluster', federated_subject: 'system:serviceaccount:payments:billing' });
    expect(back.status, JSON.stringify(back.json)).toBe(200);
    expect((await storage.clients.getClient(id))?.secrets).toEqual([]);
    const rotate = await call('POST', `/admin/clients/${id}/secret`);
    expect400(rotate, /authenticates with federated_jwt and has no secret to rotate/);
    expect(seen.filter((e) => e.name === 'client.updated').map((e) => (e.payload as { fields: string[] }).fields)).toEqual([
      ['token_endpoint_auth_method', 'federated_issuer', 'federated_subject', 'federated_claims', 'client_secret'],
      ['token_endpoint_auth_method', 'federated_issuer', 'federated_subject', 'federated_claims', 'client_secret'],
    ]);
  });

  it('refuses to delete a trust that clients name, naming them; deletes it once they are gone', async () => {
    const a = await call('POST', '/admin/clients', { ...federatedClient(), client_id: 'cl_billing' });
    const b = await call('POST', '/admin/clients', { ...federatedClient({ federated_subject: 'system:serviceaccount:payments:ledger' }), client_id: 'cl_ledger' });
    expect([a.status, b.status]).toEqual([201, 201]);
    const refused = await call('DELETE', '/admin/trusted-issuers/prod-cluster');
    expect(refused.status).toBe(409);
    expect(refused.json).toEqual({
      error: 'conflict',
      message: 'Trusted issuer "prod-cluster" is the federated_issuer of clients cl_billing, cl_ledger: change or delete them first',
    });
    expect((await call('GET', '/admin/trusted-issuers/prod-cluster')).status).toBe(200);
    expect((await call('DELETE', '/admin/clients/cl_billing')).status).toBe(204);
    const one = await call('DELETE', '/admin/trusted-issuers/prod-cluster');
    expect(one.json.message).toBe('Trusted issuer "prod-cluster" is the federated_issuer of client cl_ledger: change or delete it first');
    expect((await call('DELETE', '/admin/clients/cl_ledger')).status).toBe(204);
    expect((await call('DELETE', '/admin/trusted-issuers/prod-cluster')).status).toBe(204);
  });

  it('refuses to change the kind or trust domain of a trust that clients name: their subjects were checked against it', async () => {
    const c = await call('POST', '/admin/clients', { ...federatedClient({ federated_issuer: 'mesh', federated_subject: 'spiffe://prod.example.org/ns/a/sa/b' }), client_id: 'cl_mesh' });
    expect(c.status, JSON.stringify(c.json)).toBe(201);
    const moved = await call('PATCH', '/admin/trusted-issuers/mesh', { trust_domain: 'evil.example.org' });
    expect(moved.status).toBe(409);
    expect(moved.json.message).toBe('Cannot change trust_domain: Trusted issuer "mesh" is the federated_issuer of client cl_mesh: change or delete it first');
    // Other fields change freely.
    expect((await call('PATCH', '/admin/trusted-issuers/mesh', { max_token_lifetime: 600 })).status).toBe(200);
    expect((await call('GET', '/admin/trusted-issuers/mesh')).json.trust_domain).toBe('prod.example.org');
  });
});
