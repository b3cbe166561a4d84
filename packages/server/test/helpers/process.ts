// Real server processes for multi-instance tests: the built CLI (`dist/cli/main.js serve`) on
// free loopback ports, stopped with SIGTERM (or SIGKILL) at the end.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, statSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';

/** The server package (packages/server). */
export const REPO = resolve(new URL('../..', import.meta.url).pathname);
/** The repository: its README, docs/, examples/ and deploy/. */
export const REPOSITORY = resolve(REPO, '../..');
export const CLI = join(REPO, 'dist/cli/main.js');
/** TypeScript's compiler, wherever npm put it. */
export const TSC = createRequire(import.meta.url).resolve('typescript/bin/tsc');

/**
 * Rate limit keys of this test run's servers in a shared Redis: a prefix of their own, so runs on
 * one Redis never share counters (the keys expire within seconds of their window).
 */
const REDIS_KEY_PREFIX = `m2m-auth-test-${randomBytes(6).toString('hex')}:`;

function newestMtime(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(p) : statSync(p).mtimeMs);
  }
  return newest;
}

/** The packages the server's build needs, in build order, with the file that says each is built. */
const PACKAGES = [
  { dir: join(REPOSITORY, 'packages/sdk'), built: 'dist/client.js' },
  { dir: join(REPOSITORY, 'packages/tools'), built: 'dist/index.js' },
  { dir: REPO, built: 'dist/cli/main.js' },
];

/** Builds the dist/ of the SDK, the tools and the server when one is missing or older than its src/. */
export function ensureBuilt(): void {
  for (const p of PACKAGES) {
    const built = join(p.dir, p.built);
    if (existsSync(built) && statSync(built).mtimeMs >= newestMtime(join(p.dir, 'src'))) continue;
    const r = spawnSync(process.execPath, [TSC, '-p', 'tsconfig.build.json'], { cwd: p.dir, stdio: 'inherit' });
    if (r.status !== 0 && !existsSync(built)) throw new Error(`build of ${p.dir} failed`);
  }
  if (existsSync(CLI)) chmodSync(CLI, 0o755);
}

/** Ports handed out by this process: the kernel may offer a closed port again at once. */
const handedOut = new Set<number>();

/** A port that was free a moment ago, never one this process has handed out before. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((res, rej) => {
      const srv = createServer();
      srv.once('error', rej);
      srv.listen(0, '127.0.0.1', () => {
        const { port } = srv.address() as { port: number };
        srv.close(() => res(port));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

export interface ServerProcess {
  child: ChildProcess;
  publicUrl: string;
  adminUrl: string;
  adminToken: string;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export async function startServerProcess(env: Record<string, string>, adminToken: string, args: string[] = []): Promise<ServerProcess> {
  const port = await freePort();
  const adminPort = await freePort();
  const publicUrl = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [CLI, 'serve', ...args], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH ?? '',
      M2M_AUTH_LISTEN: `127.0.0.1:${port}`,
      M2M_AUTH_ADMIN_LISTEN: `127.0.0.1:${adminPort}`,
      M2M_AUTH_ISSUER: env.M2M_AUTH_ISSUER ?? publicUrl,
      M2M_AUTH_ADMIN_TOKEN: adminToken,
      M2M_AUTH_LOG_LEVEL: 'warn',
      M2M_AUTH_REDIS_KEY_PREFIX: REDIS_KEY_PREFIX,
      // All test traffic comes from 127.0.0.1: failure throttling is tested in test/limits.
      M2M_AUTH_AUTH_FAILURES_PER_ADDRESS: '0',
      M2M_AUTH_AUTH_FAILURES_PER_CLIENT: '0',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited early (${child.exitCode}):\n${out}`);
    try {
      const r = await fetch(`${publicUrl}/readyz`);
      if (r.status === 200) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server not ready in time:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child, publicUrl, adminUrl: `http://127.0.0.1:${adminPort}`, adminToken,
    output: () => out,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

/** Polls `check` until it returns true; resolves to the elapsed ms, or throws after `limitMs`. */
export async function within(limitMs: number, check: () => Promise<boolean>): Promise<number> {
  const start = Date.now();
  for (;;) {
    if (await check()) return Date.now() - start;
    if (Date.now() - start > limitMs) throw new Error(`condition not met within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
