// A real m2m-auth server for the tools' tests: the server package's built CLI (next to this package
// in the repository), started the way the tools start it (a child process), and the few admin API
// calls the tests make on it. The tools' code itself never refers to the server package.

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServerProcess, type ServerProcess } from '../../src/loadtest/server-process.js';

const REPOSITORY = fileURLToPath(new URL('../../../../', import.meta.url));
/** The server package's source and its command. */
export const SERVER_SRC = join(REPOSITORY, 'packages/server/src/');
export const SERVER_CLI = join(REPOSITORY, 'packages/server/dist/cli/main.js');
const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** Builds the SDK, the tools and the server (npm test has already) when one's dist/ is missing or stale. */
export function ensureServerBuilt(): void {
  for (const [name, built] of [['sdk', 'dist/client.js'], ['tools', 'dist/index.js'], ['server', 'dist/cli/main.js']] as const) {
    const dir = join(REPOSITORY, 'packages', name);
    const file = join(dir, built);
    if (existsSync(file) && statSync(file).mtimeMs >= newestMtime(join(dir, 'src'))) continue;
    const r = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.build.json'], { cwd: dir, stdio: 'inherit' });
    if (r.status !== 0 && !existsSync(file)) throw new Error(`build of packages/${name} failed`);
  }
}

/** The command the tools are given to start a server: the built CLI. */
export function serverCommand(): string[] {
  ensureServerBuilt();
  return [process.execPath, SERVER_CLI];
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
