// Mutual TLS (RFC 8705) end to end: the real server with its mTLS listener, TLS certificates and a
// client CA made by openssl for the test, and undici presenting client certificates. Each
// authentication method, certificate-bound tokens with introspection and token reuse, discovery's
// aliases, the RFC 9440 Client-Cert header from a trusted proxy (and from anyone else), and the
// hostile cases: no certificate, another certificate, a wrong name, a certificate of another CA,
// both certificate names registered, a garbage header. Never a 500; the reason only in the log.

import { createHash, X509Certificate } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect as h2connect } from 'node:http2';
import { Agent, fetch as undiciFetch } from 'undici';
import { admin, basicAuth, registerClient, startListening, type ListeningServer } from '../e2e/listening-server.js';
import { createTestCa, opensslMissing, type TestCa } from '../tls/test-ca.js';
import { createClientCa, type ClientCa, type ClientCertificate } from './client-certs.js';

const missing = opensslMissing();
if (missing) console.warn(`mutual-TLS tests skipped: ${missing}. Install openssl to run them.`);

const AUD = 'https://orders.example.com';
const TOKEN = '/oauth2/token';

interface Answer { status: number; body: Record<string, unknown> }

describe.skipIf(missing !== undefined)('mutual TLS (RFC 8705)', () => {
  let serverCa: TestCa;
  let clientCa: ClientCa;
  let otherCa: ClientCa;
  let s: ListeningServer;
  let mtlsUrl: string;
  const agents: Agent[] = [];
  const certs: Record<string, ClientCertificate> = {};
  const ids: Record<string, string> = {};
  let rsAuth: string;
  let boundSecretAuth: string;

  /** An undici agent trusting the server's CA, presenting `cert` (none when absent), from `localAddress`. */
  function agent(cert?: ClientCertificate, localAddress?: string): Agent {
    const a = new Agent({ ...(localAddress && { localAddress }), connect: { ca: serverCa.ca, ...(cert && { cert: cert.cert, key: cert.key }) } });
    agents.push(a);
    return a;
  }

  async function post(url: string, form: Record<string, string>, dispatcher: Agent, headers: Record<string, string> = {}): Promise<Answer> {
    const res = await undiciFetch(url, {
      method: 'POST', dispatcher,
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(form).toString(),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  const token = (clientId: string, cert?: ClientCertificate, headers?: Record<string, string>) =>
    post(`${mtlsUrl}${TOKEN}`, { grant_type: 'client_credentials', client_id: clientId }, agent(cert), headers);

  function thumbprint(cert: ClientCertificate): string {
    return createHash('sha256').update(cert.der).digest('base64url');
  }

  function payload(jwt: string): Record<string, unknown> {
    return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
  }

  function expectInvalidClient(a: Answer): void {
    expect(a.status).toBe(401);
    expect(a.body).toStrictEqual({ error: 'invalid_client', error_description: 'Client authentication failed.' });
  }

  beforeAll(async () => {
    serverCa = createTestCa();
    const serverCert = serverCa.issue('server', '5005');
    clientCa = createClientCa();
    otherCa = createClientCa('another CA');
    certs.billing = clientCa.issue('billing', '/CN=billing', 'DNS:billing.example.com,DNS:other.example.com');
    certs.reports = clientCa.issue('reports', '/C=US/O=Example, Inc./CN=reports');
    certs.orders = clientCa.issue('orders', '/CN=orders', 'URI:spiffe://example.org/ns/prod/sa/orders');
    certs.ip = clientCa.issue('ip', '/CN=ip', 'IP:2001:db8:0:0:0:0:0:7');
    certs.mail = clientCa.issue('mail', '/CN=mail', 'email:ops@example.com');
    certs.stranger = clientCa.issue('stranger', '/CN=stranger', 'DNS:stranger.example.com');
    certs.foreign = otherCa.issue('foreign', '/CN=billing', 'DNS:billing.example.com');
    certs.selfBilling = clientCa.selfSigned('self-billing', '/CN=billing', 'DNS:billing.example.com');
    certs.self = clientCa.selfSigned('self', '/CN=self-signed worker');
    certs.self2 = clientCa.selfSigned('self2', '/CN=self-signed worker');

    s = await startListening({
      captureLogs: 'debug',
      overrides: {
        tlsCert: serverCert.certPath, tlsKey: serverCert.keyPath, mtlsListen: '127.0.0.1:0', mtlsCa: clientCa.caPath,
        // 127.0.0.2 plays the TLS-terminating proxy; requests from 127.0.0.1 are anyone's.
        trustProxy: '127.0.0.2',
        // Many refusals on purpose: the failed-authentication throttle would answer 429 to the later ones.
        authFailuresPerAddress: 0, authFailuresPerClient: 0,
      },
    });
    const port = (s.server.mtlsApp!.server.address() as { port: number }).port;
    mtlsUrl = `https://127.0.0.1:${port}`;

    const base = { scope: 'orders:read', audience: [AUD] };
    const reg = async (name: string, metadata: Record<string, unknown>) => {
      const c = await registerClient(s, { client_name: name, ...base, ...metadata });
      ids[name] = c.client_id;
      return c;
    };
    await reg('dns', { token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_san_dns: 'Billing.Example.com' });
    await reg('dn', { token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_subject_dn: 'CN=reports, O=Example\\, Inc., C=US' });
    await reg('uri', { token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_san_uri: 'spiffe://example.org/ns/prod/sa/orders' });
    await reg('ip', { token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_san_ip: '2001:db8::7' });
    await reg('email', { token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_san_email: 'ops@EXAMPLE.com' });
    const selfJwk = new X509Certificate(certs.self!.cert).publicKey.export({ format: 'jwk' });
    await reg('self', {
      token_endpoint_auth_method: 'self_signed_tls_client_auth', jwks: { keys: [{ ...selfJwk, kid: 'w1', alg: 'ES256', use: 'sig' }] },
      tls_client_certificate_bound_access_tokens: true, token_reuse: true,
    });
    const bound = await reg('boundSecret', { tls_client_certificate_bound_access_tokens: true, token_reuse: true });
    boundSecretAuth = basicAuth(bound.client_id, bound.client_secret!);
    await reg('fapiTls', { token_endpoint_auth_method: 'tls_client_auth', tls_client_auth_san_dns: 'billing.example.com', fapi2: true });
    const rs = await reg('rs', { grant_types: [], resource_uris: [AUD], audience: [] });
    rsAuth = basicAuth(rs.client_id, rs.client_secret!);
  });

  afterAll(async () => {
    await Promise.all(agents.map((a) => a.close()));
    await s?.close();
    serverCa?.cleanup();
    clientCa?.cleanup();
    otherCa?.cleanup();
  });

  it('publishes the mTLS aliases, certificate-bound tokens and both methods in discovery', async () => {
    const res = await undiciFetch(`${s.publicUrl}/.well-known/oauth-authorization-server`, { dispatcher: agent() });
    const doc = (await res.json()) as Record<string, unknown>;
    expect(doc.mtls_endpoint_aliases).toStrictEqual({
      token_endpoint: `${mtlsUrl}/oauth2/token`,
      introspection_endpoint: `${mtlsUrl}/oauth2/introspect`,
      revocation_endpoint: `${mtlsUrl}/oauth2/revoke`,
    });
    expect(doc.tls_client_certificate_bound_access_tokens).toBe(true);
    for (const member of ['token_endpoint_auth_methods_supported', 'introspection_endpoint_auth_methods_supported', 'revocation_endpoint_auth_methods_supported']) {
      expect(doc[member]).toEqual(expect.arrayContaining(['tls_client_auth', 'self_signed_tls_client_auth']));
    }
  });

  it.each([
    ['dns', 'billing', 'a subjectAltName DNS name (case ignored)'],
    ['dn', 'reports', 'the subject DN (RFC 4514, spacing and escapes)'],
    ['uri', 'orders', 'a subjectAltName URI'],
    ['ip', 'ip', 'a subjectAltName IP address (another spelling of the same IPv6 address)'],
    ['email', 'mail', 'a subjectAltName e-mail address (domain case ignored)'],
  ])('authenticates a tls_client_auth client by %s', async (client, cert) => {
    const a = await token(ids[client]!, certs[cert]);
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    expect(a.body.token_type).toBe('Bearer');
    // Not bound: the client did not ask for certificate-bound tokens.
    expect(payload(a.body.access_token as string)).toMatchObject({ client_id: ids[client], aud: AUD });
    expect(payload(a.body.access_token as string).cnf).toBeUndefined();
  });

  it('authenticates self_signed_tls_client_auth by the registered key, and binds its token to the certificate', async () => {
    const a = await token(ids.self!, certs.self);
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    expect(a.body.token_type).toBe('Bearer');
    expect(payload(a.body.access_token as string).cnf).toStrictEqual({ 'x5t#S256': thumbprint(certs.self!) });

    // Introspection answers the cnf, to a resource server on either listener.
    for (const url of [s.publicUrl, mtlsUrl]) {
      const i = await post(`${url}/oauth2/introspect`, { token: a.body.access_token as string }, agent(), { authorization: rsAuth });
      expect(i.status).toBe(200);
      expect(i.body).toMatchObject({ active: true, client_id: ids.self, cnf: { 'x5t#S256': thumbprint(certs.self!) }, token_type: 'Bearer' });
    }
  });

  it('reads the certificate of an HTTP/2 connection (ALPN h2), for each of its streams', async () => {
    const session = h2connect(mtlsUrl, { ca: serverCa.ca, cert: certs.billing!.cert, key: certs.billing!.key });
    try {
      const one = () => new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
        const stream = session.request({ ':method': 'POST', ':path': TOKEN, 'content-type': 'application/x-www-form-urlencoded' });
        let status = 0;
        let body = '';
        stream.on('response', (h) => (status = Number(h[':status'])));
        stream.setEncoding('utf8');
        stream.on('data', (d: string) => (body += d));
        stream.on('end', () => resolve({ status, body: JSON.parse(body) as Record<string, unknown> }));
        stream.on('error', reject);
        stream.end(`grant_type=client_credentials&client_id=${ids.dns}`);
      });
      const answers = await Promise.all([one(), one(), one()]);
      expect(answers.map((a) => a.status)).toStrictEqual([200, 200, 200]);
    } finally {
      session.close();
    }
  });

  it('refuses a self-signed certificate whose key is not registered', async () => {
    expectInvalidClient(await token(ids.self!, certs.self2));
  });

  it('binds the tokens of a secret client to whichever certificate its request presents, and reuses only for the same one', async () => {
    const auth = { authorization: boundSecretAuth };
    const form = { grant_type: 'client_credentials' };
    const first = await post(`${mtlsUrl}${TOKEN}`, form, agent(certs.billing), auth);
    const again = await post(`${mtlsUrl}${TOKEN}`, form, agent(certs.billing), auth);
    const other = await post(`${mtlsUrl}${TOKEN}`, form, agent(certs.stranger), auth);
    expect([first.status, again.status, other.status]).toStrictEqual([200, 200, 200]);
    expect(payload(first.body.access_token as string).cnf).toStrictEqual({ 'x5t#S256': thumbprint(certs.billing!) });
    // Token reuse: the same certificate gets the same token; another never gets it.
    expect(again.body.access_token).toBe(first.body.access_token);
    expect(other.body.access_token).not.toBe(first.body.access_token);
    expect(payload(other.body.access_token as string).cnf).toStrictEqual({ 'x5t#S256': thumbprint(certs.stranger!) });

    // Without a certificate (the public listener, or the mTLS one without one): no token at all.
    for (const url of [s.publicUrl, mtlsUrl]) {
      const none = await post(`${url}${TOKEN}`, form, agent(), auth);
      expect(none.status).toBe(400);
      expect(none.body.error).toBe('invalid_request');
    }
  });

  it('refuses a tls_client_auth client without a certificate, with another one, or one of another CA', async () => {
    expectInvalidClient(await token(ids.dns!));
    // Another certificate of the same CA, with other names.
    expectInvalidClient(await token(ids.dns!, certs.stranger));
    // Right names, wrong field: the DN client presents a certificate whose CN is not its DN.
    expectInvalidClient(await token(ids.dn!, certs.billing));
    // The right name, but issued by a CA the server does not trust, or self-signed.
    expectInvalidClient(await token(ids.dns!, certs.foreign));
    expectInvalidClient(await token(ids.dns!, certs.selfBilling));
    // The certificate of another tls_client_auth client.
    expectInvalidClient(await token(ids.uri!, certs.billing));
    // A client of another method, with a certificate and no other credentials.
    expectInvalidClient(await token(ids.boundSecret!, certs.billing));
    const reasons = s.logs.filter((l) => l.includes('oauth error detail')).map((l) => JSON.parse(l).detail as string);
    expect(reasons).toEqual(expect.arrayContaining([
      'no client authentication',
      'client certificate does not carry the registered tls_client_auth_san_dns',
      'client certificate does not carry the registered tls_client_auth_subject_dn',
      'client certificate is not issued by a CA of M2M_AUTH_MTLS_CA',
      'client is registered for client_secret_basic, used a client certificate',
    ]));
  });

  it('believes a Client-Cert header from the trusted proxy only', async () => {
    const header = { 'client-cert': `:${certs.billing!.der.toString('base64')}:` };
    const form = { grant_type: 'client_credentials', client_id: ids.dns! };
    const viaProxy = await post(`${s.publicUrl}${TOKEN}`, form, agent(undefined, '127.0.0.2'), header);
    expect(viaProxy.status, JSON.stringify(viaProxy.body)).toBe(200);
    // A bound token through the proxy carries the header's certificate.
    const bound = await post(`${s.publicUrl}${TOKEN}`, { grant_type: 'client_credentials' }, agent(undefined, '127.0.0.2'), { ...header, authorization: boundSecretAuth });
    expect(bound.status).toBe(200);
    expect(payload(bound.body.access_token as string).cnf).toStrictEqual({ 'x5t#S256': thumbprint(certs.billing!) });

    // From anyone else the header is ignored: no certificate, so no client.
    expectInvalidClient(await post(`${s.publicUrl}${TOKEN}`, form, agent(), header));
    expect(s.logs.some((l) => l.includes('not a trusted proxy'))).toBe(true);
    // On the mTLS listener only the handshake's certificate counts, whoever sends the header.
    expectInvalidClient(await post(`${mtlsUrl}${TOKEN}`, form, agent(undefined, '127.0.0.2'), header));
    expectInvalidClient(await post(`${mtlsUrl}${TOKEN}`, form, agent(certs.stranger, '127.0.0.2'), header));
  });

  it('answers a garbage Client-Cert header from the trusted proxy with invalid_client, never a 500', async () => {
    const form = { grant_type: 'client_credentials', client_id: ids.dns! };
    const garbage = [
      'not a byte sequence', ':!!!:', '::', `:${Buffer.from('not DER').toString('base64')}:`,
      `${certs.billing!.der.toString('base64')}`, `:${certs.billing!.der.toString('base64url')}:`, `:${'A'.repeat(12_000)}:`,
      `:${certs.billing!.der.subarray(0, 100).toString('base64')}:`,
    ];
    for (const value of garbage) {
      expectInvalidClient(await post(`${s.publicUrl}${TOKEN}`, form, agent(undefined, '127.0.0.2'), { 'client-cert': value }));
    }
    // Beyond the HTTP layer's header limit: refused there, before the endpoint.
    const huge = await undiciFetch(`${s.publicUrl}${TOKEN}`, {
      method: 'POST', dispatcher: agent(undefined, '127.0.0.2'),
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'client-cert': `:${'A'.repeat(20_000)}:` },
      body: new URLSearchParams(form).toString(),
    });
    expect(huge.status).toBe(431);
    await huge.body?.cancel();
    // A secret client is not disturbed by it.
    const ok = await post(`${s.publicUrl}${TOKEN}`, { grant_type: 'client_credentials' }, agent(undefined, '127.0.0.2'), { 'client-cert': ':!!!:', authorization: rsAuth });
    expect(ok.status).toBe(400);
    expect(ok.body.error).toBe('unauthorized_client');
  });

  it('keeps the Client-Cert header and the reasons out of error bodies', async () => {
    const header = `:${certs.stranger!.der.toString('base64')}:`;
    const res = await undiciFetch(`${s.publicUrl}${TOKEN}`, {
      method: 'POST', dispatcher: agent(undefined, '127.0.0.2'),
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'client-cert': header },
      body: `grant_type=client_credentials&client_id=${ids.dns}`,
    });
    const text = await res.text();
    expect(res.status).toBe(401);
    expect(text).not.toContain('san_dns');
    expect(text).not.toContain(header.slice(1, 40));
    for (const line of s.logs) expect(line).not.toContain(header.slice(1, 60));
  });

  it('refuses certificate names that break RFC 8705 §2.1.2 at registration', async () => {
    const base = { client_name: 'bad', scope: 'orders:read', audience: [AUD], token_endpoint_auth_method: 'tls_client_auth' };
    const both = await admin(s, 'POST', '/clients', { ...base, tls_client_auth_san_dns: 'a.example.com', tls_client_auth_san_uri: 'spiffe://example.org/a' });
    expect(both.status).toBe(400);
    expect(both.body.message).toContain('only one of');
    const none = await admin(s, 'POST', '/clients', base);
    expect(none.status).toBe(400);
    expect(none.body.message).toContain('needs exactly one of');
    for (const [field, value] of [
      ['tls_client_auth_san_ip', '999.1.1.1'], ['tls_client_auth_san_dns', 'not a name'], ['tls_client_auth_san_uri', 'relative/path'],
      ['tls_client_auth_subject_dn', 'no equals sign'], ['tls_client_auth_san_email', 'nobody'], ['tls_client_auth_san_dns', 42],
    ] as const) {
      const r = await admin(s, 'POST', '/clients', { ...base, [field]: value });
      expect(r.status, `${field}=${value}`).toBe(400);
      expect(r.body.message).toContain(field);
    }
    const notTls = await admin(s, 'POST', '/clients', { client_name: 'x', scope: 'orders:read', audience: [AUD], tls_client_auth_san_dns: 'a.example.com' });
    expect(notTls.status).toBe(400);
    const noJwks = await admin(s, 'POST', '/clients', { client_name: 'x', scope: 'orders:read', audience: [AUD], token_endpoint_auth_method: 'self_signed_tls_client_auth' });
    expect(noJwks.status).toBe(400);

    // An update moves the name only by clearing the old one; switching method drops it.
    const c = await admin(s, 'POST', '/clients', { ...base, tls_client_auth_san_dns: 'a.example.com' });
    expect(c.status).toBe(201);
    expect(c.body).toMatchObject({ tls_client_auth_san_dns: 'a.example.com', tls_client_auth_san_uri: null, tls_client_certificate_bound_access_tokens: false });
    expect(c.body.client_secret).toBeUndefined();
    const second = await admin(s, 'PATCH', `/clients/${c.body.client_id}`, { tls_client_auth_san_uri: 'spiffe://example.org/a' });
    expect(second.status).toBe(400);
    const moved = await admin(s, 'PATCH', `/clients/${c.body.client_id}`, { tls_client_auth_san_dns: null, tls_client_auth_san_uri: 'spiffe://example.org/a' });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ tls_client_auth_san_dns: null, tls_client_auth_san_uri: 'spiffe://example.org/a' });
    const switched = await admin(s, 'PATCH', `/clients/${c.body.client_id}`, { token_endpoint_auth_method: 'client_secret_basic' });
    expect(switched.status).toBe(200);
    expect(switched.body).toMatchObject({ tls_client_auth_san_uri: null, token_endpoint_auth_method: 'client_secret_basic' });
    expect(typeof switched.body.client_secret).toBe('string');
  });

  it('FAPI 2.0: a fapi2 client authenticates by mutual TLS and its tokens are bound to the certificate', async () => {
    const a = await token(ids.fapiTls!, certs.billing);
    expect(a.status, JSON.stringify(a.body)).toBe(200);
    expect(payload(a.body.access_token as string).cnf).toStrictEqual({ 'x5t#S256': thumbprint(certs.billing!) });
    // Through the trusted proxy's header as well.
    const viaProxy = await post(`${s.publicUrl}${TOKEN}`, { grant_type: 'client_credentials', client_id: ids.fapiTls! }, agent(undefined, '127.0.0.2'),
      { 'client-cert': `:${certs.billing!.der.toString('base64')}:` });
    expect(viaProxy.status).toBe(200);
    expect(payload(viaProxy.body.access_token as string).cnf).toStrictEqual({ 'x5t#S256': thumbprint(certs.billing!) });
    // A secret method is still refused for fapi2, at registration.
    const secret = await admin(s, 'POST', '/clients', { client_name: 'f', scope: 'orders:read', audience: [AUD], fapi2: true });
    expect(secret.status).toBe(400);
    expect(secret.body.message).toContain('tls_client_auth');
  });

  it('never answers 500', () => {
    expect(s.logs.filter((l) => l.includes('"status":500'))).toStrictEqual([]);
  });
});
