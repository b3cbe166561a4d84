// A restart loses nothing: a server on a file SQLite database in a data folder does the stateful
// things (clients, tokens, a secret rotation with grace, a revocation, the kill switch, a signing
// key rotation), closes, and a new server on the same folder gives the same answers.

import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oauth from 'oauth4webapi';
import { createRemoteJWKSet, decodeProtectedHeader, exportJWK, generateKeyPair, jwtVerify, type CryptoKey } from 'jose';
import { admin, basicAuth, postForm, registerClient, startListening, type ListeningServer } from '../e2e/listening-server.js';
import { wrongSecret } from '../helpers/secrets.js';
import { reservedPort } from '../helpers/process.js';

const ORDERS = 'https://orders.example.com';
const INSECURE = { [oauth.allowInsecureRequests]: true } as const;

interface FileState {
  content: string;
  mode: number;
  ino: number;
  mtimeMs: number;
}

function fileState(path: string): FileState {
  const st = statSync(path);
  return { content: readFileSync(path, 'utf8'), mode: st.mode & 0o777, ino: st.ino, mtimeMs: st.mtimeMs };
}

async function tokenBasic(s: ListeningServer, clientId: string, secret: string): Promise<Response> {
  return postForm(`${s.issuer}/oauth2/token`, { grant_type: 'client_credentials' }, { authorization: basicAuth(clientId, secret) });
}

async function issueBasic(s: ListeningServer, clientId: string, secret: string): Promise<string> {
  const res = await tokenBasic(s, clientId, secret);
  expect(res.status, await res.clone().text()).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

async function introspect(s: ListeningServer, token: string, clientId: string, secret: string): Promise<string> {
  const res = await postForm(`${s.issuer}/oauth2/introspect`, { token }, { authorization: basicAuth(clientId, secret) });
  expect(res.status).toBe(200);
  return res.text();
}

async function discover(s: ListeningServer): Promise<oauth.AuthorizationServer> {
  const issuer = new URL(s.issuer);
  return oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...INSECURE }));
}

let dataDir: string;
let first: ListeningServer | undefined;
let second: ListeningServer | undefined;

// State from the first run.
let secretClient: { id: string; oldSecret: string; newSecret: string };
let killed: { id: string; secret: string };
let jwtClient: { id: string; privateKey: CryptoKey; kid: string };
let tokens: { beforeKeyRotation: string; afterKeyRotation: string; revoked: string; killed: string; jwt: string };
/** Introspection bodies from the first run, by token name. */
let answers: Record<keyof typeof tokens, string>;
let keysBefore: Array<Record<string, unknown>>;
let kidBefore: string;
let kidAfter: string;
let kek: FileState;
let adminToken: FileState;

async function jwtGrant(s: ListeningServer): Promise<string> {
  const as = await discover(s);
  const c = { client_id: jwtClient.id };
  const res = await oauth.clientCredentialsGrantRequest(as, c, oauth.PrivateKeyJwt({ key: jwtClient.privateKey, kid: jwtClient.kid }), {}, INSECURE);
  return (await oauth.processClientCredentialsResponse(as, c, res)).access_token;
}

async function jwtIntrospect(s: ListeningServer, token: string): Promise<oauth.IntrospectionResponse> {
  const as = await discover(s);
  const c = { client_id: jwtClient.id };
  const res = await oauth.introspectionRequest(as, c, oauth.PrivateKeyJwt({ key: jwtClient.privateKey, kid: jwtClient.kid }), token, INSECURE);
  return oauth.processIntrospectionResponse(as, c, res);
}

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'm2m-restart-'));
  // Both runs on one port (the issuer, which every token carries, names it): a reserved one, so no
  // other process can take it between the stop and the restart.
  const port = await reservedPort();
  first = await startListening({ dataDir, port, overrides: { keyPrepublish: 0 } });
  const s = first;
  expect(s.config.databaseUrl).toBe(`sqlite:${dataDir}/m2m-auth.db`);
  expect(existsSync(join(dataDir, 'm2m-auth.db'))).toBe(true);

  const a = await registerClient(s, { client_name: 'secret', scope: 'orders:read', audience: [ORDERS] });
  const k = await registerClient(s, { client_name: 'killed', scope: 'orders:read', audience: [ORDERS] });
  const { publicKey, privateKey } = await generateKeyPair('ES256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'restart-key', alg: 'ES256', use: 'sig' };
  const j = await registerClient(s, {
    client_name: 'jwt', scope: 'orders:read', audience: [ORDERS], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] },
  });
  jwtClient = { id: j.client_id, privateKey, kid: 'restart-key' };
  killed = { id: k.client_id, secret: k.client_secret! };

  const beforeKeyRotation = await issueBasic(s, a.client_id, a.client_secret!);
  const revoked = await issueBasic(s, a.client_id, a.client_secret!);
  const killedToken = await issueBasic(s, killed.id, killed.secret);
  const jwt = await jwtGrant(s);

  // Secret rotation with a grace period: both secrets work.
  const rotated = await admin(s, 'POST', `/clients/${a.client_id}/secret`, { grace_period: 3600 });
  expect(rotated.status).toBe(200);
  secretClient = { id: a.client_id, oldSecret: a.client_secret!, newSecret: rotated.body.client_secret };
  expect(secretClient.newSecret).not.toBe(secretClient.oldSecret);
  expect((await tokenBasic(s, secretClient.id, secretClient.oldSecret)).status).toBe(200);

  // Revocation of one token, the kill switch on another client.
  const rev = await postForm(`${s.issuer}/oauth2/revoke`, { token: revoked }, { authorization: basicAuth(secretClient.id, secretClient.newSecret) });
  expect(rev.status).toBe(200);
  expect((await admin(s, 'POST', `/clients/${killed.id}/revoke-tokens`)).status).toBe(200);

  // Signing key rotation with no pre-publication: the new key signs at once.
  kidBefore = decodeProtectedHeader(beforeKeyRotation).kid!;
  const rotation = await admin(s, 'POST', '/keys/rotate');
  expect(rotation.status).toBe(200);
  kidAfter = rotation.body.key.kid;
  expect(kidAfter).not.toBe(kidBefore);
  const afterKeyRotation = await issueBasic(s, secretClient.id, secretClient.newSecret);
  expect(decodeProtectedHeader(afterKeyRotation).kid).toBe(kidAfter);

  tokens = { beforeKeyRotation, afterKeyRotation, revoked, killed: killedToken, jwt };
  answers = {
    beforeKeyRotation: await introspect(s, beforeKeyRotation, secretClient.id, secretClient.newSecret),
    afterKeyRotation: await introspect(s, afterKeyRotation, secretClient.id, secretClient.newSecret),
    revoked: await introspect(s, revoked, secretClient.id, secretClient.newSecret),
    killed: await introspect(s, killedToken, killed.id, killed.secret),
    jwt: JSON.stringify(await jwtIntrospect(s, jwt)),
  };
  // The answers the restart must reproduce.
  expect(JSON.parse(answers.beforeKeyRotation).active).toBe(true);
  expect(JSON.parse(answers.afterKeyRotation).active).toBe(true);
  expect(JSON.parse(answers.jwt).active).toBe(true);
  expect(answers.revoked).toBe('{"active":false}');
  expect(answers.killed).toBe('{"active":false}');

  keysBefore = (await admin(s, 'GET', '/keys')).body.keys;
  expect(keysBefore.map((key) => [key.kid, key.status])).toEqual([[kidAfter, 'active'], [kidBefore, 'retired']]);
  kek = fileState(join(dataDir, 'kek'));
  adminToken = fileState(join(dataDir, 'admin-token'));

  await s.close();
  first = undefined;
  // Same folder, same issuer (tokens carry it), a brand new process state.
  second = await startListening({ dataDir, port, overrides: { keyPrepublish: 0 } });
}, 60_000);

afterAll(async () => {
  await first?.close();
  await second?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('after a restart on the same data folder', () => {
  it('reuses the KEK and the admin token files (mode 0600), never regenerating them', () => {
    const s = second!;
    expect(s.config.databaseUrl).toBe(`sqlite:${dataDir}/m2m-auth.db`);
    for (const [name, before] of [['kek', kek], ['admin-token', adminToken]] as const) {
      const after = fileState(join(dataDir, name));
      expect(after, name).toEqual(before);
      expect(after.mode, name).toBe(0o600);
    }
    expect(s.adminToken).toBe(adminToken.content.trim());
  });

  it('keeps the signing keys: the retired one stays published, the rotated one still signs', async () => {
    const s = second!;
    const keys = (await admin(s, 'GET', '/keys')).body.keys;
    expect(keys).toEqual(keysBefore);
    const jwks = (await (await fetch(`${s.issuer}/oauth2/jwks`)).json()) as { keys: Array<{ kid: string }> };
    expect(jwks.keys.map((k) => k.kid)).toEqual([kidAfter, kidBefore]);
    const fresh = await issueBasic(s, secretClient.id, secretClient.newSecret);
    expect(decodeProtectedHeader(fresh).kid).toBe(kidAfter);
  });

  it('old tokens still verify against the JWKS found through discovery', async () => {
    const s = second!;
    const as = await discover(s);
    const jwks = createRemoteJWKSet(new URL(as.jwks_uri!));
    for (const [name, token] of Object.entries(tokens)) {
      const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: s.issuer, audience: ORDERS, typ: 'at+jwt' });
      expect(protectedHeader.kid, name).toBe(name === 'afterKeyRotation' ? kidAfter : kidBefore);
      expect(payload.exp, name).toBeGreaterThan(Date.now() / 1000);
    }
  });

  it('introspection gives the same answers: revoked and killed stay inactive, the others active', async () => {
    const s = second!;
    expect(await introspect(s, tokens.beforeKeyRotation, secretClient.id, secretClient.newSecret)).toBe(answers.beforeKeyRotation);
    expect(await introspect(s, tokens.afterKeyRotation, secretClient.id, secretClient.newSecret)).toBe(answers.afterKeyRotation);
    expect(await introspect(s, tokens.revoked, secretClient.id, secretClient.newSecret)).toBe('{"active":false}');
    expect(await introspect(s, tokens.killed, killed.id, killed.secret)).toBe('{"active":false}');
    expect(JSON.stringify(await jwtIntrospect(s, tokens.jwt))).toBe(answers.jwt);
  });

  it('both the new secret and the old one (still in its grace period) authenticate', async () => {
    const s = second!;
    expect((await tokenBasic(s, secretClient.id, secretClient.newSecret)).status).toBe(200);
    expect((await tokenBasic(s, secretClient.id, secretClient.oldSecret)).status).toBe(200);
    const wrong = await tokenBasic(s, secretClient.id, wrongSecret(secretClient.newSecret));
    expect(wrong.status).toBe(401);
  });

  it('the kill switch is kept: a token issued after it is active, the old one is not', async () => {
    const s = second!;
    const client = (await admin(s, 'GET', `/clients/${killed.id}`)).body;
    expect(client.tokens_revoked_at).toEqual(expect.any(Number));
    const fresh = await issueBasic(s, killed.id, killed.secret);
    expect(JSON.parse(await introspect(s, fresh, killed.id, killed.secret)).active).toBe(true);
    expect(await introspect(s, tokens.killed, killed.id, killed.secret)).toBe('{"active":false}');
  });

  it('the private_key_jwt client still authenticates with its registered key', async () => {
    const s = second!;
    const token = await jwtGrant(s);
    expect(JSON.parse(await introspect(s, token, secretClient.id, secretClient.newSecret))).toEqual({ active: false });
    expect((await jwtIntrospect(s, token)).active).toBe(true);
  });
});
