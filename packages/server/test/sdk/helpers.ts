// Real m2m-auth servers on 127.0.0.1 for the SDK tests: every request the public listener sees is
// recorded, and the server can sit behind a programmable front proxy (the issuer is then the
// proxy's URL, as with a load balancer) that fails requests on demand.

import { createServer as createHttpServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';
import { loadConfig, type Config } from '../../src/config/schema.js';
import { createLogger } from '../../src/observability/logger.js';
import { createServer, type M2MAuthServer } from '../../src/server.js';

export const ORDERS = 'https://orders.example.com';
export const ADMIN_TOKEN = 'sdk-test-admin-token-0123456789abcdef01234';

export interface SeenRequest {
  method: string;
  /** Path and query. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  /** The form parameters, once the body was read (token, introspection, revocation). */
  form?: URLSearchParams;
}

/** What the front proxy does with one request: pass it on, answer itself, or drop the connection. */
export type ProxyAction = 'forward' | 'reset' | { status: number; body?: unknown; headers?: Record<string, string> };

export interface FrontProxy {
  url: string;
  /** Every request that reached the proxy, in order. */
  seen: { method: string; url: string }[];
  /** Decides per request; default forward. */
  behave: (req: { method: string; url: string; index: number }) => ProxyAction;
  close(): Promise<void>;
}

/** Listens on port 0 of 127.0.0.1; resolves to the port it got. */
function listenOnPortZero(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

async function startProxy(target: () => string): Promise<FrontProxy> {
  const proxy: FrontProxy = {
    url: '',
    seen: [],
    behave: () => 'forward',
    close: () => closeServer(server),
  };
  const server = createHttpServer((req, res) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const index = proxy.seen.push({ method, url }) - 1;
    const action = proxy.behave({ method, url, index });
    if (action === 'reset') {
      req.socket.destroy();
      return;
    }
    if (action !== 'forward') {
      const body = action.body === undefined ? '' : JSON.stringify(action.body);
      res.writeHead(action.status, { 'content-type': 'application/json', ...action.headers });
      res.end(body);
      return;
    }
    const upstream = new URL(target());
    const out = httpRequest(
      { host: upstream.hostname, port: upstream.port, method, path: url, headers: req.headers },
      (answer: IncomingMessage) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    out.on('error', () => req.socket.destroy());
    req.pipe(out);
  });
  proxy.url = `http://127.0.0.1:${await listenOnPortZero(server)}`;
  return proxy;
}

export interface AuthServer {
  server: M2MAuthServer;
  issuer: string;
  /** Where the server itself listens (= issuer unless behind the proxy). */
  directUrl: string;
  proxy: FrontProxy | undefined;
  /** The admin API (bearer ADMIN_TOKEN). */
  adminUrl: string;
  /** Every request the server saw. */
  seen: SeenRequest[];
  /** How many requests the server saw for a path (query ignored). */
  count(path: string): number;
  close(): Promise<void>;
}

export interface AuthServerOptions {
  overrides?: Partial<Record<keyof Config, unknown>>;
  /** Clock of the server in epoch ms. */
  now?: () => number;
  /** Put a FrontProxy in front; the issuer becomes the proxy's URL. */
  behindProxy?: boolean;
}

export async function startAuthServer(options: AuthServerOptions = {}): Promise<AuthServer> {
  const dataDir = mkdtempSync(join(tmpdir(), 'm2m-auth-sdk-'));
  // The server listens on port 0 and its issuer `http://127.0.0.1:0` becomes its URL once it has a
  // port; behind the proxy (listening already, on a port 0 of its own) the issuer is the proxy's URL.
  let directUrl = '';
  const proxy = options.behindProxy ? await startProxy(() => directUrl) : undefined;
  const config = loadConfig({}, {
    dataDir,
    databaseUrl: 'sqlite::memory:',
    issuer: proxy?.url ?? 'http://127.0.0.1:0',
    listen: '127.0.0.1:0',
    adminListen: '127.0.0.1:0',
    adminToken: ADMIN_TOKEN,
    keyRotationInterval: 0,
    logLevel: 'silent',
    ...options.overrides,
  });
  const logger = createLogger({ level: 'silent' });
  const server = await createServer(config, { logger, ...(options.now && { now: options.now }) });
  const seen: SeenRequest[] = [];
  const records = new WeakMap<object, SeenRequest>();
  server.publicApp.addHook('onRequest', async (request) => {
    const record: SeenRequest = { method: request.method, url: request.url, headers: { ...request.headers } };
    seen.push(record);
    records.set(request, record);
  });
  server.publicApp.addHook('preHandler', async (request) => {
    const record = records.get(request);
    if (record && Buffer.isBuffer(request.body)) record.form = new URLSearchParams(request.body.toString('utf8'));
  });
  let urls: { publicUrl: string; adminUrl: string };
  try {
    urls = await server.listen();
  } catch (err) {
    await server.close();
    await proxy?.close();
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  }
  directUrl = urls.publicUrl;
  return {
    server, issuer: config.issuer, directUrl, proxy, seen, adminUrl: urls.adminUrl,
    count: (path) => seen.filter((r) => r.url.split('?')[0] === path).length,
    async close() {
      await proxy?.close();
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Registers a client_secret_basic client for the orders API. */
export async function registerClient(
  s: AuthServer,
  input: Record<string, unknown> = {},
): Promise<{ clientId: string; clientSecret: string }> {
  const { client, clientSecret } = await s.server.clients.create({
    client_name: 'sdk test client',
    scope: 'orders:read orders:write',
    audience: [ORDERS],
    ...input,
  } as never);
  return { clientId: client.clientId, clientSecret: clientSecret ?? '' };
}

/** A client_credentials token straight from the server (client_secret_basic), without the SDK. */
export async function rawToken(
  s: AuthServer,
  c: { clientId: string; clientSecret: string },
  form: Record<string, string | string[]> = {},
): Promise<string> {
  const body = new URLSearchParams({ grant_type: 'client_credentials' });
  for (const [k, v] of Object.entries(form)) for (const x of Array.isArray(v) ? v : [v]) body.append(k, x);
  const res = await fetch(`${s.directUrl}/oauth2/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      authorization: 'Basic ' + Buffer.from(`${encodeURIComponent(c.clientId)}:${encodeURIComponent(c.clientSecret)}`).toString('base64'),
    },
    body: body.toString(),
  });
  const answer = (await res.json()) as { access_token?: string };
  if (res.status !== 200 || typeof answer.access_token !== 'string') throw new Error(`token request failed: ${res.status} ${JSON.stringify(answer)}`);
  return answer.access_token;
}

/** A small HTTP server answering every request with `handler`; records what it saw. */
export interface StubServer {
  url: string;
  seen: { method: string; url: string; headers: Record<string, string | string[] | undefined>; body: string }[];
  close(): Promise<void>;
}

export async function startStub(
  handler: (req: { method: string; url: string; headers: Record<string, string | string[] | undefined>; body: string }, base: string) =>
    { status: number; body?: unknown; headers?: Record<string, string> },
): Promise<StubServer> {
  const seen: StubServer['seen'] = [];
  let base = '';
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const entry = { method: req.method ?? 'GET', url: req.url ?? '/', headers: { ...req.headers }, body: Buffer.concat(chunks).toString('utf8') };
      seen.push(entry);
      const answer = handler(entry, base);
      res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
      res.end(answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : JSON.stringify(answer.body));
    });
  });
  base = `http://127.0.0.1:${await listenOnPortZero(server)}`;
  return { url: base, seen, close: () => closeServer(server) };
}

/**
 * An issuer whose keys the test holds (metadata and JWKS only), to sign tokens the real server
 * never would: another typ with a valid signature, for instance.
 */
export interface FakeIssuer {
  issuer: string;
  jwksRequests(): number;
  sign(header: Record<string, unknown>, claims: JWTPayload): Promise<string>;
  close(): Promise<void>;
}

export async function startFakeIssuer(): Promise<FakeIssuer> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  const jwk: JWK = { ...(await exportJWK(publicKey)), kid: 'fake-key', alg: 'ES256', use: 'sig' };
  const stub = await startStub((req, base) => {
    if (req.url === '/.well-known/oauth-authorization-server') {
      return { status: 200, body: { issuer: base, jwks_uri: `${base}/jwks`, token_endpoint: `${base}/token` } };
    }
    if (req.url === '/jwks') return { status: 200, body: { keys: [jwk] } };
    return { status: 404, body: { error: 'not_found' } };
  });
  return {
    issuer: stub.url,
    jwksRequests: () => stub.seen.filter((r) => r.url === '/jwks').length,
    sign: (header, claims) =>
      new SignJWT(claims).setProtectedHeader({ alg: 'ES256', kid: 'fake-key', ...header }).sign(privateKey as CryptoKey),
    close: () => stub.close(),
  };
}

export function b64json(value: unknown): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url');
}

export function decodePart(token: string, index: 0 | 1): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split('.')[index]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
