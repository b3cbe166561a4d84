// A real m2m-auth server for the tools' tests: the built CLI's `serve`, started the way the tools
// start it (a child process), and the few admin API calls the tests make on it.

import { startServerProcess, type ServerProcess } from '../../src/loadtest/server-process.js';
import { CLI, ensureBuilt } from '../helpers/process.js';

/** The command the tools are given to start a server: the built CLI. */
export function serverCommand(): string[] {
  ensureBuilt();
  return [process.execPath, CLI];
}

export function startServer(env: Record<string, string> = {}): Promise<ServerProcess> {
  return startServerProcess({ command: serverCommand(), env });
}

async function admin(s: ServerProcess, method: string, path: string, body?: unknown): Promise<unknown> {
  const res = await fetch(`${s.adminUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${s.adminToken}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
  });
  if (!res.ok) throw new Error(`${method} ${path} answered ${res.status}: ${await res.text()}`);
  return res.json();
}

/** Registers a client through the admin API; its id and secret. */
export async function createClient(s: ServerProcess, metadata: Record<string, unknown>): Promise<{ clientId: string; clientSecret: string }> {
  const c = (await admin(s, 'POST', '/admin/clients', metadata)) as { client_id: string; client_secret: string };
  return { clientId: c.client_id, clientSecret: c.client_secret };
}

/** How many clients the server has. */
export async function countClients(s: ServerProcess): Promise<number> {
  return ((await admin(s, 'GET', '/admin/clients?limit=1000')) as { clients: unknown[] }).clients.length;
}
