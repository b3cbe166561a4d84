// Secretless clients end to end (issue 17): the SDK reads a Kubernetes-shaped projected
// service-account token from a file and gets a token from a real m2m-auth (a trust and a
// federated_jwt client made through the server's registries), bound with DPoP too, which an API behind the SDK middleware accepts; an expired
// platform token is refused until the platform writes a new one, which the SDK picks up.

import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Fastify, { type FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { createAuthFetch, createTokenProvider, TokenRequestError } from '@m2m-auth/sdk/client';
import { createVerifier, fastifyBearerAuth } from '@m2m-auth/sdk/verify';
import { ORDERS, startAuthServer, type AuthServer } from './helpers.js';

const CLUSTER = 'https://kubernetes.default.svc.cluster.local';
const SUB = 'system:serviceaccount:payments:billing';

let s: AuthServer;
let api: FastifyInstance;
let apiUrl: string;
let dir: string;
let clusterKey: CryptoKey;

async function serviceAccountToken(over: { exp?: number } = {}): Promise<string> {
  const t = Math.floor(Date.now() / 1000);
  return new SignJWT({ 'kubernetes.io': { namespace: 'payments', serviceaccount: { name: 'billing' } } })
    .setProtectedHeader({ alg: 'RS256', kid: 'cluster-1' })
    .setIssuer(CLUSTER).setSubject(SUB).setAudience(s.issuer).setIssuedAt(t - 60).setExpirationTime(over.exp ?? t + 3600)
    .sign(clusterKey);
}

function kubeletWrites(path: string, token: string): void {
  writeFileSync(`${path}.tmp`, token);
  renameSync(`${path}.tmp`, path);
}

beforeAll(async () => {
  const pair = await generateKeyPair('RS256');
  clusterKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'cluster-1', alg: 'RS256', use: 'sig' };
  s = await startAuthServer();
  // The trust, as `m2m-auth trusts create` or POST /admin/trusted-issuers would make it: the
  // cluster's issuer and its keys given by value (the JWKS file of a cluster without discovery).
  await s.server.trusts.create({ name: 'prod-cluster', kind: 'kubernetes', issuer: CLUSTER, jwks: { keys: [jwk] } });
  dir = mkdtempSync(join(tmpdir(), 'm2m-auth-sdk-sa-'));
  api = Fastify();
  await api.register(async (scope) => {
    await scope.register(fastifyBearerAuth(createVerifier({ issuer: s.issuer, audience: ORDERS }), { realm: 'orders' }));
    scope.get('/orders', async (request) => ({ client_id: request.auth.client_id, cnf: request.auth.cnf }));
  });
  apiUrl = await api.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await api.close();
  await s.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a federated client with the SDK', () => {
  it('authenticates with the projected token file, DPoP-bound, and calls the API', async () => {
    const { client } = await s.server.clients.create({
      client_name: 'billing', scope: 'orders:read', audience: [ORDERS],
      token_endpoint_auth_method: 'federated_jwt', federated_issuer: 'prod-cluster', federated_subject: SUB,
    } as never);
    const file = join(dir, 'token');
    kubeletWrites(file, await serviceAccountToken());
    const provider = createTokenProvider({ issuer: s.issuer, clientId: client.clientId, platformToken: { file }, resource: ORDERS, dpop: true });
    const res = await createAuthFetch(provider)(`${apiUrl}/orders`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ client_id: client.clientId, cnf: { jkt: await provider.dpop!.thumbprint() } });
    const form = s.seen.find((r) => r.url === '/oauth2/token' && r.form?.get('client_id') === client.clientId)!.form!;
    expect(form.get('client_assertion_type')).toBe('urn:ietf:params:oauth:client-assertion-type:jwt-bearer');
    expect(form.has('client_secret')).toBe(false);
  });

  it('an expired platform token is refused (invalid_client, token not in the error); the next one the kubelet writes works', async () => {
    const { client } = await s.server.clients.create({
      client_name: 'billing-2', scope: 'orders:read', audience: [ORDERS],
      token_endpoint_auth_method: 'federated_jwt', federated_issuer: 'prod-cluster', federated_subject: `${SUB}-2`,
    } as never);
    const file = join(dir, 'token-2');
    const t = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'cluster-1' })
      .setIssuer(CLUSTER).setSubject(`${SUB}-2`).setAudience(s.issuer).setIssuedAt(t - 7200).setExpirationTime(t - 3600).sign(clusterKey);
    kubeletWrites(file, expired);
    const provider = createTokenProvider({ issuer: s.issuer, clientId: client.clientId, platformToken: { file }, resource: ORDERS });
    const err = await provider.getToken().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TokenRequestError);
    expect((err as TokenRequestError).error).toBe('invalid_client');
    expect(`${(err as Error).message} ${JSON.stringify(err)}`).not.toContain(expired.split('.')[2]!);
    const fresh = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'cluster-1' })
      .setIssuer(CLUSTER).setSubject(`${SUB}-2`).setAudience(s.issuer).setIssuedAt(t).setExpirationTime(t + 3600).sign(clusterKey);
    kubeletWrites(file, fresh);
    await expect(provider.getToken()).resolves.toMatch(/^ey/);
  });
});
