// DPoP (RFC 9449) end to end over real sockets with clients someone else wrote: openid-client 6
// and oauth4webapi 3 obtain DPoP-bound tokens for client_credentials (client_secret_basic,
// private_key_jwt for a fapi2 client, a dpop_bound_access_tokens client, the server-nonce retry);
// two DPoP header lines on the wire; and a proof replayed at another instance on PostgreSQL.

import { randomBytes, randomUUID } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as client from 'openid-client';
import * as oauth from 'oauth4webapi';
import pg from 'pg';
import { calculateJwkThumbprint, createRemoteJWKSet, exportJWK, generateKeyPair, jwtVerify, SignJWT, type CryptoKey } from 'jose';
import { basicAuth, postForm, registerClient, startListening, type ListeningServer } from './listening-server.js';

const ORDERS = 'https://orders.example.com';
const insecure = { execute: [client.allowInsecureRequests] };
const PG_URL = process.env.M2M_AUTH_TEST_DATABASE_URL;

type KeyPair = { publicKey: CryptoKey; privateKey: CryptoKey };

async function jktOf(keyPair: KeyPair): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(keyPair.publicKey));
}

async function cnfOf(s: ListeningServer, token: string): Promise<unknown> {
  const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL(`${s.issuer}/oauth2/jwks`)), { issuer: s.issuer, audience: ORDERS, typ: 'at+jwt' });
  return payload.cnf;
}

async function proof(s: ListeningServer, key: KeyPair, claims: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT({ htm: 'POST', htu: `${s.issuer}/oauth2/token`, jti: randomUUID(), ...claims })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(key.publicKey) })
    .setIssuedAt()
    .sign(key.privateKey);
}

describe('third-party clients obtain DPoP-bound tokens', () => {
  let s: ListeningServer;
  let basicClient: { id: string; secret: string };
  let boundClient: { id: string; secret: string };
  let fapiClient: { id: string; privateKey: CryptoKey; kid: string };

  beforeAll(async () => {
    s = await startListening();
    const b = await registerClient(s, { client_name: 'basic', scope: 'orders:read', audience: [ORDERS] });
    basicClient = { id: b.client_id, secret: b.client_secret! };
    const d = await registerClient(s, { client_name: 'bound', scope: 'orders:read', audience: [ORDERS], dpop_bound_access_tokens: true });
    boundClient = { id: d.client_id, secret: d.client_secret! };
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const kid = 'fapi-key';
    const f = await registerClient(s, {
      client_name: 'fapi2', scope: 'orders:read', audience: [ORDERS], token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }] }, fapi2: true,
    });
    fapiClient = { id: f.client_id, privateKey, kid };
  });
  afterAll(() => s?.close());

  it('openid-client: client_secret_basic with a DPoP handle', async () => {
    const config = await client.discovery(new URL(s.issuer), basicClient.id, undefined, client.ClientSecretBasic(basicClient.secret), insecure);
    expect(config.serverMetadata().dpop_signing_alg_values_supported).toContain('ES256');
    const keyPair = await client.randomDPoPKeyPair('ES256');
    const tokens = await client.clientCredentialsGrant(config, { scope: 'orders:read' }, { DPoP: client.getDPoPHandle(config, keyPair) });
    expect(tokens.token_type).toBe('dpop');
    expect(await cnfOf(s, tokens.access_token)).toEqual({ jkt: await jktOf(keyPair) });
  });

  it('openid-client: a dpop_bound_access_tokens client gets nothing without its proof', async () => {
    const config = await client.discovery(new URL(s.issuer), boundClient.id, undefined, client.ClientSecretBasic(boundClient.secret), insecure);
    const err = await client.clientCredentialsGrant(config).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(client.ResponseBodyError);
    expect((err as client.ResponseBodyError).error).toBe('invalid_dpop_proof');
    expect((err as client.ResponseBodyError).status).toBe(400);
    const keyPair = await client.randomDPoPKeyPair('ES256');
    const tokens = await client.clientCredentialsGrant(config, {}, { DPoP: client.getDPoPHandle(config, keyPair) });
    expect(tokens.token_type).toBe('dpop');
  });

  it('openid-client: a fapi2 client with private_key_jwt (aud the issuer) and DPoP', async () => {
    const config = await client.discovery(
      new URL(s.issuer), fapiClient.id, undefined, client.PrivateKeyJwt({ key: fapiClient.privateKey, kid: fapiClient.kid }), insecure,
    );
    const keyPair = await client.randomDPoPKeyPair('ES256');
    const tokens = await client.clientCredentialsGrant(config, {}, { DPoP: client.getDPoPHandle(config, keyPair) });
    expect(tokens.token_type).toBe('dpop');
    expect(await cnfOf(s, tokens.access_token)).toEqual({ jkt: await jktOf(keyPair) });
  });

  describe('oauth4webapi', () => {
    let as: oauth.AuthorizationServer;
    beforeAll(async () => {
      const issuer = new URL(s.issuer);
      as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', [oauth.allowInsecureRequests]: true }));
    });

    it('client_secret_basic and private_key_jwt (fapi2) with a DPoP handle, for EdDSA and ES256 keys', async () => {
      const cases: Array<[oauth.Client, oauth.ClientAuth, string]> = [
        [{ client_id: basicClient.id }, oauth.ClientSecretBasic(basicClient.secret), 'EdDSA'],
        [{ client_id: fapiClient.id }, oauth.PrivateKeyJwt({ key: fapiClient.privateKey, kid: fapiClient.kid }), 'ES256'],
      ];
      for (const [c, auth, alg] of cases) {
        const keyPair = await oauth.generateKeyPair(alg);
        const DPoP = oauth.DPoP(c, keyPair);
        const res = await oauth.clientCredentialsGrantRequest(as, c, auth, {}, { DPoP, [oauth.allowInsecureRequests]: true });
        const tokens = await oauth.processClientCredentialsResponse(as, c, res);
        expect(tokens.token_type).toBe('dpop');
        expect(await cnfOf(s, tokens.access_token)).toEqual({ jkt: await jktOf(keyPair) });
      }
    });

    it('introspection answers cnf and token_type DPoP', async () => {
      const c: oauth.Client = { client_id: basicClient.id };
      const keyPair = await oauth.generateKeyPair('ES256');
      const res = await oauth.clientCredentialsGrantRequest(as, c, oauth.ClientSecretBasic(basicClient.secret), {}, { DPoP: oauth.DPoP(c, keyPair), [oauth.allowInsecureRequests]: true });
      const { access_token } = await oauth.processClientCredentialsResponse(as, c, res);
      const introspected = await (await postForm(`${s.issuer}/oauth2/introspect`, { token: access_token }, { authorization: basicAuth(basicClient.id, basicClient.secret) })).json();
      expect(introspected).toMatchObject({ active: true, token_type: 'DPoP', cnf: { jkt: await jktOf(keyPair) } });
    });
  });

  it('two DPoP header lines on the wire: 400 invalid_dpop_proof', async () => {
    const key = await generateKeyPair('ES256');
    const body = 'grant_type=client_credentials';
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(`${s.issuer}/oauth2/token`, {
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body),
          authorization: basicAuth(basicClient.id, basicClient.secret),
        },
      }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => { text += c.toString(); });
        res.on('end', () => resolve({ status: res.statusCode!, body: text }));
      });
      req.on('error', reject);
      Promise.all([proof(s, key), proof(s, key)]).then(([a, b]) => {
        req.setHeader('dpop', [a, b]);
        req.end(body);
      }, reject);
    });
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.body).error).toBe('invalid_dpop_proof');
  });
});

describe('server nonces with third-party clients', () => {
  let s: ListeningServer;
  let c: { id: string; secret: string };
  beforeAll(async () => {
    s = await startListening({ overrides: { dpopNonce: true } });
    const r = await registerClient(s, { client_name: 'nonce', scope: 'orders:read', audience: [ORDERS] });
    c = { id: r.client_id, secret: r.client_secret! };
  });
  afterAll(() => s?.close());

  it('openid-client retries with the DPoP-Nonce on its own', async () => {
    const config = await client.discovery(new URL(s.issuer), c.id, undefined, client.ClientSecretBasic(c.secret), insecure);
    const tokens = await client.clientCredentialsGrant(config, {}, { DPoP: client.getDPoPHandle(config, await client.randomDPoPKeyPair()) });
    expect(tokens.token_type).toBe('dpop');
  });

  it('oauth4webapi: use_dpop_nonce, then the retry succeeds', async () => {
    const issuer = new URL(s.issuer);
    const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', [oauth.allowInsecureRequests]: true }));
    const cl: oauth.Client = { client_id: c.id };
    const DPoP = oauth.DPoP(cl, await oauth.generateKeyPair('ES256'));
    const grant = async () => oauth.processClientCredentialsResponse(as, cl,
      await oauth.clientCredentialsGrantRequest(as, cl, oauth.ClientSecretBasic(c.secret), {}, { DPoP, [oauth.allowInsecureRequests]: true }));
    const err = await grant().catch((e: unknown) => e);
    expect(oauth.isDPoPNonceError(err)).toBe(true);
    expect((await grant()).token_type).toBe('dpop');
  });
});

describe.skipIf(!PG_URL)('a proof replayed at another instance on PostgreSQL', () => {
  const schema = `m2m_dpop_${randomBytes(6).toString('hex')}`;
  let a: ListeningServer;
  let b: ListeningServer;
  beforeAll(async () => {
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`CREATE SCHEMA ${schema}`);
    await admin.end();
    const databaseUrl = `${PG_URL}${PG_URL!.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    const kek = randomBytes(32).toString('base64');
    a = await startListening({ overrides: { databaseUrl, kek } });
    // One issuer for both, as behind a load balancer: the proof's htu fits either.
    b = await startListening({ overrides: { databaseUrl, kek, issuer: a.issuer } });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
    const admin = new pg.Client({ connectionString: PG_URL });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
    await admin.end();
  });

  it('is refused with 400 invalid_dpop_proof', async () => {
    const r = await registerClient(a, { client_name: 'pg', scope: 'orders:read', audience: [ORDERS] });
    const key = await generateKeyPair('ES256');
    const p = await proof(a, key);
    const headers = { authorization: basicAuth(r.client_id, r.client_secret!), dpop: p };
    const first = await postForm(`${a.publicUrl}/oauth2/token`, { grant_type: 'client_credentials' }, headers);
    expect(first.status, await first.clone().text()).toBe(200);
    expect(((await first.json()) as { token_type: string }).token_type).toBe('DPoP');
    const replayed = await postForm(`${b.publicUrl}/oauth2/token`, { grant_type: 'client_credentials' }, headers);
    expect(replayed.status).toBe(400);
    expect(((await replayed.json()) as { error: string }).error).toBe('invalid_dpop_proof');
    // A fresh proof is good at the other instance.
    const fresh = await postForm(`${b.publicUrl}/oauth2/token`, { grant_type: 'client_credentials' }, { ...headers, dpop: await proof(a, key) });
    expect(fresh.status).toBe(200);
  });
});
if (!PG_URL) console.warn('DPoP replay across PostgreSQL instances skipped: set M2M_AUTH_TEST_DATABASE_URL');
