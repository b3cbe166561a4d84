// The real server on real sockets for end-to-end tests: createServer + listen() on 127.0.0.1, with
// the issuer equal to the URL clients use, file SQLite under a data folder, and (optionally) every
// log line captured. Also a small fetch client of the admin API.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, type Config } from '../../src/config/schema.js';
import { createLogger } from '../../src/observability/logger.js';
import { createServer, type M2MAuthServer } from '../../src/server.js';

export interface ListeningServer {
  server: M2MAuthServer;
  config: Config;
  /** = the public URL clients use. */
  issuer: string;
  publicUrl: string;
  adminUrl: string;
  /** The admin token in force (generated into the data folder unless configured). */
  adminToken: string;
  dataDir: string;
  /** Every log line, when started with captureLogs. */
  logs: string[];
  close(): Promise<void>;
}

export interface ListenOptions {
  /** A data folder to use (kept on close); default a fresh temporary one (removed on close). */
  dataDir?: string;
  overrides?: Partial<Record<keyof Config, unknown>>;
  /** Capture every log line at this level (default: logs off). */
  captureLogs?: Config['logLevel'];
  /**
   * The public port, to restart on the issuer of a previous run (take the first run's from
   * reservedPort(), so nothing can take it in between); default port 0.
   */
  port?: number;
}

/**
 * Starts the real server listening on 127.0.0.1: the public listener on port 0 (or `options.port`)
 * with the issuer `http://127.0.0.1:0`, which the server turns into http://127.0.0.1:PORT with the
 * port it got; the admin API on port 0 as well. Nothing is chosen free first and bound later.
 */
export async function startListening(options: ListenOptions = {}): Promise<ListeningServer> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'm2m-auth-e2e-'));
  const ownDir = options.dataDir === undefined;
  const logs: string[] = [];
  const logger = createLogger({
    level: options.captureLogs ?? 'silent',
    destination: { write: (line: string) => void logs.push(line) },
  });

  const port = options.port ?? 0;
  const config = loadConfig({}, {
    dataDir,
    issuer: `http://127.0.0.1:${port}`,
    listen: `127.0.0.1:${port}`,
    adminListen: '127.0.0.1:0',
    keyRotationInterval: 0,
    ...options.overrides,
  });
  const server = await createServer(config, { logger });
  let urls: { publicUrl: string; adminUrl: string };
  try {
    urls = await server.listen();
  } catch (err) {
    await server.close();
    throw err;
  }
  const adminToken = config.adminToken ?? readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  return {
    server, config, issuer: config.issuer, dataDir, logs, adminToken, ...urls,
    async close() {
      await server.close();
      if (ownDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface AdminAnswer {
  status: number;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

/** One admin API call over HTTP with the admin token. */
export async function admin(
  s: Pick<ListeningServer, 'adminUrl' | 'adminToken'>,
  method: string,
  path: string,
  body?: unknown,
  token = s.adminToken,
): Promise<AdminAnswer> {
  const res = await fetch(`${s.adminUrl}/admin${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      ...(body !== undefined && { 'content-type': 'application/json' }),
    },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : JSON.parse(text) };
}

/** Registers a client through the admin API; fails the test unless the server answers 201. */
export async function registerClient(
  s: Pick<ListeningServer, 'adminUrl' | 'adminToken'>,
  metadata: Record<string, unknown>,
): Promise<{ client_id: string; client_secret?: string } & Record<string, unknown>> {
  const res = await admin(s, 'POST', '/clients', metadata);
  if (res.status !== 201) throw new Error(`client registration failed: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body;
}

/** POSTs a form to the public listener. */
export function postForm(url: string, form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form).toString(),
  });
}

export function basicAuth(clientId: string, secret: string): string {
  return 'Basic ' + Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64');
}
