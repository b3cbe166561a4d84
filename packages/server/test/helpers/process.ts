// Real server processes for multi-instance tests: the built CLI (`dist/cli/main.js serve`) on
// port 0 of 127.0.0.1 (they report the ports they got), stopped with SIGTERM (or SIGKILL) at the end.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { createRequire } from 'node:module';
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

/** Where reservations of reservedPort() live: one file a port, naming the process that holds it. */
const RESERVATIONS = join(tmpdir(), 'm2m-auth-test-ports');
const reserved: string[] = [];

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((res) => {
    const srv = createNetServer();
    srv.once('error', () => res(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => res(true)));
  });
}

/**
 * A port for what must listen on a port known in advance: a private PostgreSQL or Redis (neither
 * can listen on port 0 and say which port it got) and a server restarted on the port of its first
 * start. Taken BELOW the kernel's ephemeral range (net.ipv4.ip_local_port_range), so no port-0 bind
 * and no outgoing connection anywhere on the machine can take it, and reserved against every other
 * test process by a file created exclusively (`wx`) under the temp folder, held until this process
 * exits (a file whose process is gone is taken over). So nothing races for it between the moment
 * it is chosen and the moment it is bound, or between a stop and the restart.
 */
export async function reservedPort(): Promise<number> {
  const [ephemeralLow] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
  const low = 20_000;
  const high = (ephemeralLow ?? 32_768) - 1;
  if (high - low < 1000) throw new Error(`too few ports below the ephemeral range (${ephemeralLow})`);
  mkdirSync(RESERVATIONS, { recursive: true });
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = low + randomInt(high - low + 1);
    const file = join(RESERVATIONS, String(port));
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(file, 'utf8').trim());
      if (holder > 0 && alive(holder)) continue;
      rmSync(file, { force: true });
      continue; // taken over on a later attempt, unless another process is quicker
    }
    if (reserved.length === 0) process.once('exit', () => reserved.forEach((f) => rmSync(f, { force: true })));
    reserved.push(file);
    // Something started by hand may hold it: then keep the reservation and pick another.
    if (await bindable(port)) return port;
  }
  throw new Error('no port could be reserved');
}

/** Where a server listens, as its 'm2m-auth listening' log line says. */
export interface Listening {
  publicUrl: string;
  adminUrl: string;
  issuer: string;
}

/**
 * The first 'm2m-auth listening' line in a server's output (JSON lines), once it is there. Servers
 * in tests listen on port 0 and report the ports they got on that line (written even at log level
 * warn), so no port is ever chosen free first and bound later, a race that parallel test files lose.
 */
export function listeningLine(output: string): Listening | undefined {
  for (const line of output.split('\n')) {
    if (!line.includes('"m2m-auth listening"')) continue;
    try {
      const entry = JSON.parse(line) as Partial<Listening> & { msg?: string };
      if (entry.msg === 'm2m-auth listening' && entry.publicUrl && entry.adminUrl && entry.issuer) {
        return { publicUrl: entry.publicUrl, adminUrl: entry.adminUrl, issuer: entry.issuer };
      }
    } catch {
      // a line cut in the middle: the rest comes with the next chunk
    }
  }
  return undefined;
}

/** Resolves to the server's listening line; throws when it exits first or after `limitMs`. */
export async function waitForListening(child: ChildProcess, output: () => string, limitMs = 20_000): Promise<Listening> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const found = listeningLine(output());
    if (found) return found;
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited early (${child.exitCode ?? child.signalCode}):\n${output()}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server did not report listening in time:\n${output()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

export interface ServerProcess {
  child: ChildProcess;
  publicUrl: string;
  adminUrl: string;
  /** The issuer it serves: the public URL unless M2M_AUTH_ISSUER says otherwise. */
  issuer: string;
  adminToken: string;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/**
 * `m2m-auth serve` as a child process: both listeners on port 0 of 127.0.0.1 and the issuer
 * `http://127.0.0.1:0` (= the public URL it gets) unless `env` says otherwise; resolves once the
 * server reported its ports and /readyz answers 200.
 */
export async function startServerProcess(env: Record<string, string>, adminToken: string, args: string[] = []): Promise<ServerProcess> {
  const child = spawn(process.execPath, [CLI, 'serve', ...args], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH ?? '',
      M2M_AUTH_LISTEN: '127.0.0.1:0',
      M2M_AUTH_ADMIN_LISTEN: '127.0.0.1:0',
      M2M_AUTH_ISSUER: 'http://127.0.0.1:0',
      M2M_AUTH_ADMIN_TOKEN: adminToken,
      M2M_AUTH_LOG_LEVEL: 'warn',
      M2M_AUTH_LOG_FORMAT: 'json',
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
  const { publicUrl, adminUrl, issuer } = await waitForListening(child, () => out);
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited early (${child.exitCode}):\n${out}`);
    try {
      const r = await fetch(`${publicUrl}/readyz`);
      if (r.status === 200) break;
    } catch {
      // not ready yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`server not ready in time:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    child, publicUrl, adminUrl, issuer, adminToken,
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
