// The load test's accounting: every request is counted once, as a success only when the answer is a
// verifiable token (or a correct introspection answer), otherwise under the cause of its failure.
// Against the real server (a child process, over HTTP), and against a small HTTP server written here
// that answers each client with one kind of wrong answer. Tokens of the fake server are signed
// with jose, so the load test's own verification is checked against someone else's JWTs.

import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServerProcess } from '../../src/loadtest/server-process.js';
import { countClients, createClient, startServer } from '../helpers/server.js';
import { runLoadTest, type LoadTestResult } from '../../src/loadtest/run.js';

function expectConsistent(r: LoadTestResult): void {
  expect(r.successes + r.failures).toBe(r.totalRequests);
  expect(r.totalRequests + r.notSent).toBe(r.planned);
  expect(Object.values(r.failuresByCause).reduce((a, b) => a + b, 0)).toBe(r.failures);
  expect(r.latencyUs.count).toBe(r.totalRequests);
  expect(r.timeline.completed.reduce((a, b) => a + b, 0)).toBe(r.totalRequests);
  expect(r.timeline.failed.reduce((a, b) => a + b, 0)).toBe(r.failures);
  expect(r.histogram.reduce((a, b) => a + b.count, 0)).toBe(r.totalRequests);
}

describe('against the real server in a child process', () => {
  let s: ServerProcess;
  beforeAll(async () => {
    s = await startServer();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('open loop: requests follow the schedule (the last cannot start before its time), one token in 5 verified', async () => {
    const r = await runLoadTest({ url: s.issuer, admin: { url: s.adminUrl, token: s.adminToken }, clients: 4, requests: 25, clientCount: 2, ratePerSecond: 200, verifyOneIn: 5 });
    expectConsistent(r);
    expect(r).toMatchObject({ totalRequests: 100, successes: 100, failures: 0, stoppedBy: 'completed' });
    expect(r.config).toMatchObject({ ratePerSecond: 200, verifyOneIn: 5 });
    // Request 99 is scheduled 495 ms after the first; it may go out at most 1 ms early.
    expect(r.durationMs).toBeGreaterThanOrEqual(494);
  });

  it.each(['token', 'introspect', 'mixed'] as const)('%s: 20 clients x 5 requests are 100 successes', async (mode) => {
    const r = await runLoadTest({ url: s.issuer, admin: { url: s.adminUrl, token: s.adminToken }, clients: 20, requests: 5, clientCount: 4, mode });
    expectConsistent(r);
    expect(r).toMatchObject({ totalRequests: 100, successes: 100, failures: 0, notSent: 0, stoppedBy: 'completed', issuer: s.issuer });
    expect(r.failuresByCause).toEqual({});
    expect(r.config).toMatchObject({ clients: 20, requests: 5, clientCount: 4, connections: 20 });
    if (mode === 'mixed') {
      expect(r.latencyByOperation.token?.count).toBe(60);
      expect(r.latencyByOperation.introspect?.count).toBe(40);
    }
  });

  it('deletes the clients it registered', async () => {
    const before = await countClients(s);
    await runLoadTest({ url: s.issuer, admin: { url: s.adminUrl, token: s.adminToken }, clients: 3, requests: 1, clientCount: 3 });
    expect(await countClients(s)).toBe(before);
  });

  it('a wrong secret stops the test before the load, naming the cause', async () => {
    const client = await createClient(s, { client_name: 'lt', scope: 'a', audience: ['https://a.example.com'] });
    await expect(runLoadTest({ url: s.issuer, credentials: [{ clientId: client.clientId, clientSecret: 'wrong' }], clients: 2, requests: 1 }))
      .rejects.toThrow(/oauth_invalid_client/);
  });

  it('counts oauth_invalid_client for every request when the preflight is off', async () => {
    const client = await createClient(s, { client_name: 'lt', scope: 'a', audience: ['https://a.example.com'] });
    const r = await runLoadTest({ url: s.issuer, credentials: [{ clientId: client.clientId, clientSecret: 'wrong' }], clients: 4, requests: 3, preflight: false });
    expectConsistent(r);
    expect(r).toMatchObject({ totalRequests: 12, successes: 0, failures: 12, failuresByCause: { oauth_invalid_client: 12 } });
  });
});

/** One behaviour per client_id; each is used by the same number of virtual clients. */
type Behaviour =
  | 'ok' | 'foreign_key' | 'invalid_client' | 'status_500' | 'not_json' | 'hang' | 'reset'
  | 'expired' | 'wrong_typ' | 'wrong_client_id' | 'no_token';

interface FakeServer {
  url: string;
  hung: number;
  close(): Promise<void>;
}

const ISSUER_PLACEHOLDER = 'issuer';

async function startFakeServer(introspection: Record<string, 'active' | 'inactive' | 'other_client'> = {}): Promise<FakeServer> {
  const ours = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const foreign = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = 'fake-key-1';
  const jwk = { ...(await exportJWK(ours.publicKey)), kid, alg: 'ES256', use: 'sig' };
  const open = new Set<ServerResponse>();
  const state = { hung: 0 };
  let issuer = ISSUER_PLACEHOLDER;
  const audience = 'https://api.example.com';

  const token = async (clientId: string, key: KeyObject, opts: { exp?: number; typ?: string } = {}): Promise<string> =>
    new SignJWT({ client_id: clientId, scope: 'a' })
      .setProtectedHeader({ alg: 'ES256', typ: opts.typ ?? 'at+jwt', kid })
      .setIssuer(issuer)
      .setSubject(clientId)
      .setAudience(audience)
      .setIssuedAt()
      .setExpirationTime(opts.exp ?? Math.floor(Date.now() / 1000) + 600)
      .sign(key);

  const json = (res: ServerResponse, status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  };

  const clientOf = (req: IncomingMessage): string => {
    const b64 = /^Basic (.+)$/.exec(req.headers.authorization ?? '')?.[1] ?? '';
    return decodeURIComponent(Buffer.from(b64, 'base64').toString('utf8').split(':')[0] ?? '');
  };

  const handle = async (req: IncomingMessage, res: ServerResponse, body: string): Promise<void> => {
    if (req.method === 'GET' && req.url === '/.well-known/oauth-authorization-server') {
      return json(res, 200, { issuer, token_endpoint: `${issuer}/token`, introspection_endpoint: `${issuer}/introspect`, jwks_uri: `${issuer}/jwks` });
    }
    if (req.method === 'GET' && req.url === '/jwks') return json(res, 200, { keys: [jwk] });
    const clientId = clientOf(req);
    if (req.method === 'POST' && req.url === '/introspect') {
      const mode = introspection[clientId] ?? 'active';
      if (mode === 'inactive') return json(res, 200, { active: false });
      return json(res, 200, { active: true, client_id: mode === 'other_client' ? 'someone-else' : clientId, token: body.length });
    }
    if (req.method !== 'POST' || req.url !== '/token') return json(res, 404, { error: 'not_found' });
    const behaviour = clientId as Behaviour;
    switch (behaviour) {
      case 'ok':
        return json(res, 200, { access_token: await token(clientId, ours.privateKey), token_type: 'Bearer', expires_in: 600 });
      case 'foreign_key':
        return json(res, 200, { access_token: await token(clientId, foreign.privateKey), token_type: 'Bearer', expires_in: 600 });
      case 'expired':
        return json(res, 200, { access_token: await token(clientId, ours.privateKey, { exp: Math.floor(Date.now() / 1000) - 60 }), token_type: 'Bearer' });
      case 'wrong_typ':
        return json(res, 200, { access_token: await token(clientId, ours.privateKey, { typ: 'JWT' }), token_type: 'Bearer' });
      case 'wrong_client_id':
        return json(res, 200, { access_token: await token('another-client', ours.privateKey), token_type: 'Bearer' });
      case 'no_token':
        return json(res, 200, { token_type: 'Bearer' });
      case 'invalid_client':
        res.setHeader('www-authenticate', 'Basic');
        return json(res, 401, { error: 'invalid_client', error_description: 'Client authentication failed.' });
      case 'status_500':
        res.writeHead(500, { 'content-type': 'text/plain' }).end('Internal Server Error');
        return;
      case 'not_json':
        res.writeHead(200, { 'content-type': 'application/json' }).end('<html>surprise</html>');
        return;
      case 'hang':
        state.hung++;
        open.add(res);
        return;
      case 'reset':
        req.socket.resetAndDestroy();
        return;
      default:
        return json(res, 400, { error: 'invalid_request' });
    }
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks).toString('utf8')).catch((err: unknown) => {
        res.writeHead(599).end(String(err));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: issuer,
    get hung() {
      return state.hung;
    },
    close: () => new Promise<void>((resolve) => {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

describe('against a server that answers wrongly in every way', () => {
  let fake: FakeServer;
  beforeAll(async () => {
    fake = await startFakeServer();
  });
  afterAll(async () => {
    await fake?.close();
  });

  it('counts each request once, under the right cause', async () => {
    const behaviours: Behaviour[] = [
      'ok', 'foreign_key', 'invalid_client', 'status_500', 'not_json', 'hang', 'reset', 'expired', 'wrong_typ', 'wrong_client_id', 'no_token',
    ];
    const perClient = 2; // virtual clients per behaviour
    const requests = 3;
    const each = perClient * requests;
    const r = await runLoadTest({
      url: fake.url,
      credentials: behaviours.map((b) => ({ clientId: b, clientSecret: 'secret' })),
      clients: behaviours.length * perClient,
      requests,
      timeoutMs: 400,
      preflight: false,
    });
    expectConsistent(r);
    expect(r.totalRequests).toBe(behaviours.length * each);
    expect(r.successes).toBe(each);
    expect(r.failures).toBe((behaviours.length - 1) * each);
    const causes = r.failuresByCause;
    const network = Object.keys(causes).filter((c) => c.startsWith('network_'));
    expect(network, JSON.stringify(r.failureSamples)).toHaveLength(1);
    expect(causes).toEqual({
      bad_token_signature: each,
      oauth_invalid_client: each,
      http_500: each,
      bad_json: each,
      timeout: each,
      [network[0]!]: each,
      bad_token_exp: each,
      bad_token_typ: each,
      bad_token_client_id: each,
      bad_token_response: each,
    });
    expect(network[0]).toMatch(/^network_(ECONNRESET|UND_ERR_SOCKET|EPIPE)$/);
    expect(fake.hung).toBe(each);
    // A hung request costs the timeout, and is counted in the latency like any other.
    expect(r.latencyUs.max).toBeGreaterThanOrEqual(400_000);
    expect(r.failureSamples.timeout).toMatch(/Timeout/);
  });

  it('stops at the duration limit and says how many requests were not sent', async () => {
    const r = await runLoadTest({
      url: fake.url,
      credentials: [{ clientId: 'hang', clientSecret: 's' }],
      clients: 2,
      requests: 50,
      timeoutMs: 150,
      durationLimitMs: 400,
      preflight: false,
    });
    expectConsistent(r);
    expect(r.stoppedBy).toBe('duration_limit');
    expect(r.notSent).toBeGreaterThan(0);
    expect(r.failuresByCause).toEqual({ timeout: r.totalRequests });
    expect(r.totalRequests).toBeLessThanOrEqual(2 * Math.ceil(400 / 150) + 2);
  });

  it('stops when its signal is aborted', async () => {
    const controller = new AbortController();
    controller.abort();
    const r = await runLoadTest({ url: fake.url, credentials: [{ clientId: 'ok', clientSecret: 's' }], clients: 2, requests: 10, signal: controller.signal });
    expect(r).toMatchObject({ stoppedBy: 'aborted', totalRequests: 0, notSent: 20 });
  });
});

describe('introspection accounting', () => {
  async function withFake<T>(introspection: Record<string, 'active' | 'inactive' | 'other_client'>, run: (url: string) => Promise<T>): Promise<T> {
    const fake = await startFakeServer(introspection);
    try {
      return await run(fake.url);
    } finally {
      await fake.close();
    }
  }
  const ok = [{ clientId: 'ok', clientSecret: 's' }];

  it('an active answer for the right client is a success', async () => {
    const r = await withFake({ ok: 'active' }, (url) => runLoadTest({ url, credentials: ok, clients: 3, requests: 4, mode: 'introspect' }));
    expectConsistent(r);
    expect(r).toMatchObject({ totalRequests: 12, successes: 12, failures: 0 });
  });

  it('active: false is introspection_inactive (mixed: only the introspections fail)', async () => {
    const r = await withFake({ ok: 'inactive' }, (url) => runLoadTest({ url, credentials: ok, clients: 3, requests: 4, mode: 'mixed' }));
    expectConsistent(r);
    expect(r).toMatchObject({ totalRequests: 12, successes: 6, failures: 6, failuresByCause: { introspection_inactive: 6 } });
  });

  it('an active answer naming another client is bad_introspection_client_id', async () => {
    const r = await withFake({ ok: 'other_client' }, (url) => runLoadTest({ url, credentials: ok, clients: 2, requests: 2, mode: 'introspect' }));
    expectConsistent(r);
    expect(r).toMatchObject({ totalRequests: 4, successes: 0, failuresByCause: { bad_introspection_client_id: 4 } });
  });
});
