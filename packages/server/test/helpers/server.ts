// Test servers: the real createServer on SQLite (in memory unless a file is asked for), with a
// controllable clock and every log line captured for redaction checks.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { loadConfig, type Config } from '../../src/config/schema.js';
import { createServer, type M2MAuthServer } from '../../src/server.js';
import { createLogger } from '../../src/observability/logger.js';

export interface Clock {
  now: () => number;
  /** Moves the clock forward by ms. */
  advance(ms: number): void;
  set(ms: number): void;
}

export function testClock(start = Date.now()): Clock {
  let t = start;
  return { now: () => t, advance: (ms) => { t += ms; }, set: (ms) => { t = ms; } };
}

export interface TestServer {
  server: M2MAuthServer;
  config: Config;
  clock: Clock;
  logs: string[];
  dataDir: string;
  /** POSTs a form to the public app. */
  post(path: string, form: Record<string, string | string[]>, headers?: Record<string, string>): Promise<LightMyRequestResponse>;
  inject(opts: InjectOptions): Promise<LightMyRequestResponse>;
  admin(opts: InjectOptions): Promise<LightMyRequestResponse>;
  /** Registers a client through the registry; returns its id and secret (if any). */
  client(input?: Record<string, unknown>): Promise<{ clientId: string; clientSecret: string }>;
  /** client_secret_basic token request. */
  token(clientId: string, secret: string, form?: Record<string, string | string[]>): Promise<LightMyRequestResponse>;
  close(): Promise<void>;
}

export function basic(clientId: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s);
  return 'Basic ' + Buffer.from(`${enc(clientId)}:${enc(secret)}`).toString('base64');
}

export function formBody(form: Record<string, string | string[]>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(form)) for (const x of Array.isArray(v) ? v : [v]) p.append(k, x);
  return p.toString();
}

export const ORDERS = 'https://orders.example.com';
export const BILLING = 'https://billing.example.com';

export async function startTestServer(
  overrides: Partial<Record<keyof Config, unknown>> = {},
  options: { dataDir?: string; clock?: Clock } = {},
): Promise<TestServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'm2m-auth-test-'));
  const ownDir = options.dataDir === undefined;
  const config = loadConfig({}, {
    dataDir,
    databaseUrl: 'sqlite::memory:',
    issuer: 'http://localhost:8080',
    listen: '127.0.0.1:0',
    adminListen: '127.0.0.1:0',
    adminToken: 'test-admin-token-0123456789abcdef0123456789',
    // Every injected request comes from 127.0.0.1 and a file shares one server, so the protocol
    // tests' deliberate bad credentials would add up to a throttled address. test/limits turns
    // the throttle on (pass undefined for the defaults).
    authFailuresPerAddress: 0,
    authFailuresPerClient: 0,
    ...overrides,
  });
  const logs: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (s: string) => void logs.push(s) } });
  const clock = options.clock ?? testClock();
  const server = await createServer(config, { logger, now: clock.now });
  await server.publicApp.ready();
  await server.adminApp.ready();

  // A request's log line is written after the answers of its batch, in the same event-loop turn
  // (src/http/batch.ts): wait for that turn to end, so that `logs` has the line when this resolves.
  const publicInject = async (opts: InjectOptions): Promise<LightMyRequestResponse> => {
    const res = await server.publicApp.inject(opts);
    await new Promise((resolve) => setImmediate(resolve));
    return res;
  };
  const post: TestServer['post'] = (path, form, headers = {}) =>
    publicInject({
      method: 'POST',
      url: path,
      headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
      payload: formBody(form),
    });

  return {
    server, config, clock, logs, dataDir, post,
    inject: (opts) => publicInject(opts),
    admin: (opts) =>
      server.adminApp.inject({ ...opts, headers: { authorization: `Bearer ${config.adminToken}`, ...(opts.headers ?? {}) } }),
    async client(input = {}) {
      const { client, clientSecret } = await server.clients.create({
        client_name: 'test client',
        scope: 'orders:read orders:write',
        audience: [ORDERS],
        ...input,
      } as never);
      return { clientId: client.clientId, clientSecret: clientSecret ?? '' };
    },
    token: (clientId, secret, form = {}) =>
      post('/oauth2/token', { grant_type: 'client_credentials', ...form }, { authorization: basic(clientId, secret) }),
    async close() {
      await server.close();
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
