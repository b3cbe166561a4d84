// The CLI's client of the admin API: where it is, which token to send, and errors as one line.

import { readFileSync } from 'node:fs';
import { adminTokenPath } from '../admin/admin-token.js';
import { parseAddress } from '../config/schema.js';

/** An error the CLI reports as one line on stderr with exit code 1. */
export class CliError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CliError';
  }
}

export interface AdminConnectionOptions {
  adminUrl?: string;
  adminToken?: string;
  dataDir?: string;
}

export interface AdminTarget {
  /** Base URL without a trailing slash, e.g. http://127.0.0.1:8081. */
  url: string;
  token: string;
}

export const DEFAULT_ADMIN_LISTEN = '127.0.0.1:8081';
export const DEFAULT_DATA_DIR = './data';

function envValue(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v === '' ? undefined : v;
}

/** http://host:port for a listen address; a wildcard host is reached on loopback. */
export function urlForListen(listen: string): string {
  const { host, port } = parseAddress(listen, 'M2M_AUTH_ADMIN_LISTEN');
  const reachable = host === '0.0.0.0' || host === '' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

/**
 * The admin API endpoint: --admin-url, M2M_AUTH_ADMIN_URL, else http://<M2M_AUTH_ADMIN_LISTEN or
 * 127.0.0.1:8081>. The token: --admin-token, M2M_AUTH_ADMIN_TOKEN, else <data-dir>/admin-token
 * (--data-dir, M2M_AUTH_DATA_DIR, default ./data).
 */
export function resolveAdminTarget(opts: AdminConnectionOptions, env: NodeJS.ProcessEnv = process.env): AdminTarget {
  let url = opts.adminUrl ?? envValue(env, 'M2M_AUTH_ADMIN_URL');
  if (url === undefined) {
    try {
      url = urlForListen(envValue(env, 'M2M_AUTH_ADMIN_LISTEN') ?? DEFAULT_ADMIN_LISTEN);
    } catch (err) {
      throw new CliError((err as Error).message);
    }
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(`The admin URL ${JSON.stringify(url)} is not a URL (expected e.g. http://127.0.0.1:8081)`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new CliError(`The admin URL must be http or https, got ${JSON.stringify(url)}`);
  }
  const base = url.replace(/\/+$/, '');

  const token = opts.adminToken ?? envValue(env, 'M2M_AUTH_ADMIN_TOKEN');
  if (token !== undefined) return { url: base, token };
  const path = adminTokenPath(opts.dataDir ?? envValue(env, 'M2M_AUTH_DATA_DIR') ?? DEFAULT_DATA_DIR);
  let fromFile: string;
  try {
    fromFile = readFileSync(path, 'utf8').trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(
      code === 'ENOENT'
        ? `No admin token: pass --admin-token, set M2M_AUTH_ADMIN_TOKEN, or point --data-dir at the server's data folder (${path} does not exist)`
        : `Cannot read the admin token from ${path}: ${code ?? (err as Error).message}`,
    );
  }
  if (fromFile === '') throw new CliError(`The admin token file ${path} is empty`);
  return { url: base, token: fromFile };
}

export interface AdminResponse {
  status: number;
  body: unknown;
}

function describeFetchFailure(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  if (cause?.code) return cause.code;
  if ((err as Error).name === 'TimeoutError') return 'timed out';
  return cause?.message ?? (err as Error).message;
}

function serverMessage(body: unknown): string | undefined {
  if (typeof body === 'object' && body !== null) {
    const { message, error } = body as { message?: unknown; error?: unknown };
    if (typeof message === 'string') return message;
    if (typeof error === 'string') return error;
  }
  return undefined;
}

export const REQUEST_TIMEOUT_MS = 30_000;

/** One admin API call; any answer other than 2xx becomes a CliError carrying the server's message. */
export async function adminRequest(target: AdminTarget, method: string, path: string, body?: unknown): Promise<AdminResponse> {
  const headers: Record<string, string> = { authorization: `Bearer ${target.token}`, accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(`${target.url}${path}`, {
      method,
      headers,
      ...(body !== undefined && { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
  } catch (err) {
    throw new CliError(`Cannot reach the admin API at ${target.url}: ${describeFetchFailure(err)}`);
  }
  const text = await res.text();
  let parsed: unknown;
  if (text !== '') {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  if (res.ok) return { status: res.status, body: parsed };
  const message = serverMessage(parsed) ?? res.statusText;
  if (res.status === 401) {
    throw new CliError(`The admin API at ${target.url} refused the admin token (401): ${message}`);
  }
  throw new CliError(`${message} (HTTP ${res.status})`);
}
