// `m2m-auth serve` as PID 1, as in a container started without an init process: the kernel gives
// PID 1 no default action for SIGTERM, so only handlers of our own stop it. Run in a new PID
// namespace (`unshare --pid --fork`, which needs root; skipped with a message otherwise): SIGTERM
// after the start drains and exits 0, and SIGTERM during the start (a database that accepts the
// connection and never answers) exits 143 at once instead of waiting for a SIGKILL, as does
// `migrate` (a Kubernetes init container) during its migration.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CLI, REPO, ensureBuilt } from '../helpers/process.js';

const UNSHARE = spawnSync('unshare', ['--pid', '--fork', 'true'], { encoding: 'utf8' }).status === 0;
if (!UNSHARE) console.warn('test/lifecycle/pid1-signals.test.ts: skipped: `unshare --pid --fork` is not available (needs root and util-linux)');

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Pid1Server {
  child: ChildProcess;
  /** The server's pid as seen from here (it is 1 in its own namespace). */
  pid: number;
  output(): string;
  exited: Promise<number | null>;
}

/** Starts `serve` as PID 1 of a new PID namespace; `unshare` waits for it and passes on its exit code. */
function startAsPid1(env: Record<string, string>, command = 'serve'): Pid1Server {
  ensureBuilt();
  const dataDir = mkdtempSync(join(tmpdir(), 'm2m-auth-pid1-'));
  dirs.push(dataDir);
  const child = spawn('unshare', ['--pid', '--fork', '--kill-child', process.execPath, CLI, command], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH ?? '', M2M_AUTH_DATA_DIR: dataDir, M2M_AUTH_LISTEN: '127.0.0.1:0', M2M_AUTH_ADMIN_LISTEN: '127.0.0.1:0',
      M2M_AUTH_LOG_FORMAT: 'json', ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return {
    child,
    get pid() {
      return Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)[0]);
    },
    output: () => out,
    exited,
  };
}

async function until(what: string, check: () => boolean, server: Pid1Server): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!check()) {
    if (server.child.exitCode !== null) throw new Error(`exited before ${what}:\n${server.output()}`);
    if (Date.now() > deadline) throw new Error(`not ${what} in 30 s:\n${server.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Resolves to the exit code, or fails the test with the output after 30 s (PID 1 ignoring the signal). */
async function exitOf(server: Pid1Server): Promise<number | null> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      server.child.kill('SIGKILL');
      reject(new Error(`still running 30 s after SIGTERM:\n${server.output()}`));
    }, 30_000);
  });
  try {
    return await Promise.race([server.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe.skipIf(!UNSHARE)('serve as PID 1 (skipped without unshare --pid)', () => {
  it('drains and exits 0 on SIGTERM', async () => {
    const server = startAsPid1({});
    await until('listening', () => server.output().includes('m2m-auth listening'), server);
    expect(readFileSync(`/proc/${server.pid}/status`, 'utf8')).toMatch(/^NSpid:\s+\d+\s+1$/m);
    const listening = server.output().split('\n').map((l) => (l.startsWith('{') ? JSON.parse(l) : {})).find((l) => l.msg === 'm2m-auth listening');
    expect((await fetch(`${listening.publicUrl}/readyz`)).status).toBe(200);
    process.kill(server.pid, 'SIGTERM');
    expect(await exitOf(server)).toBe(0);
    expect(server.output()).toContain('"msg":"shutdown complete"');
  }, 60_000);

  for (const [command, said] of [['serve', 'during the start'], ['migrate', 'during the migration']] as const) {
    it(`${command} exits 143 on SIGTERM ${said}, while the database does not answer`, async () => {
      // A "database" that accepts the connection and never answers: the start waits on it.
      const sockets: Socket[] = [];
      let connected = false;
      const silent: Server = createServer((s) => {
        connected = true;
        sockets.push(s);
      });
      await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
      const port = (silent.address() as { port: number }).port;
      try {
        const server = startAsPid1({ M2M_AUTH_DATABASE_URL: `postgres://m2m@127.0.0.1:${port}/m2m` }, command);
        await until('connected to the database', () => connected, server);
        process.kill(server.pid, 'SIGTERM');
        expect(await exitOf(server)).toBe(143);
        expect(server.output()).toContain(`m2m-auth: SIGTERM ${said}: exiting`);
        expect(server.output()).not.toContain('m2m-auth listening');
      } finally {
        for (const s of sockets) s.destroy();
        silent.close();
      }
    }, 60_000);
  }
});

describe('SIGHUP during the start (systemctl reload right after a start)', () => {
  it('does not end the start, as its default action would', async () => {
    ensureBuilt();
    const sockets: Socket[] = [];
    let connected = false;
    const silent: Server = createServer((s) => {
      connected = true;
      sockets.push(s);
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const dataDir = mkdtempSync(join(tmpdir(), 'm2m-auth-hup-'));
    dirs.push(dataDir);
    const child = spawn(process.execPath, [CLI, 'serve'], {
      cwd: REPO,
      env: {
        PATH: process.env.PATH ?? '', M2M_AUTH_DATA_DIR: dataDir, M2M_AUTH_LISTEN: '127.0.0.1:0', M2M_AUTH_ADMIN_LISTEN: '127.0.0.1:0',
        M2M_AUTH_DATABASE_URL: `postgres://m2m@127.0.0.1:${(silent.address() as { port: number }).port}/m2m`,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (code, signal) => resolve([code, signal])));
    try {
      const server = { child, output: () => out, exited: exited.then(([code]) => code), pid: child.pid! };
      await until('connected to the database', () => connected, server);
      child.kill('SIGHUP');
      // Still starting: a SIGTERM now ends it through the start's handler (143), not SIGHUP's default action.
      child.kill('SIGTERM');
      expect(await exited).toEqual([143, null]);
    } finally {
      for (const s of sockets) s.destroy();
      silent.close();
    }
  }, 60_000);
});
