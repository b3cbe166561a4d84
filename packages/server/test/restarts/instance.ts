// A real `m2m-auth serve` process on ports the test chooses (so it can be restarted on the same
// port), over plain HTTP or TLS, with its exit code and output kept for assertions.

import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'undici';
import { CLI, REPO, freePort } from '../helpers/process.js';

export interface InstanceOptions {
  env: Record<string, string>;
  /** Defaults to free ports. */
  port?: number;
  adminPort?: number;
  /** Extra arguments for node before the CLI (e.g. --import). */
  nodeArgs?: string[];
  /** Extra arguments for `serve` (e.g. --workers 2). */
  args?: string[];
  /** CA certificate (PEM) when the public listener uses TLS. */
  ca?: string;
  readyTimeoutMs?: number;
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface Instance {
  child: ChildProcess;
  port: number;
  adminPort: number;
  publicUrl: string;
  adminUrl: string;
  output(): string;
  exited: Promise<Exit>;
  /** Sends the signal (SIGTERM by default) and resolves when the process has exited. */
  stop(signal?: NodeJS.Signals): Promise<Exit>;
}

export function spawnServe(options: InstanceOptions & { port: number; adminPort: number }): {
  child: ChildProcess; output: () => string; exited: Promise<Exit>;
} {
  const child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, 'serve', ...(options.args ?? [])], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH ?? '',
      M2M_AUTH_LISTEN: `127.0.0.1:${options.port}`,
      M2M_AUTH_ADMIN_LISTEN: `127.0.0.1:${options.adminPort}`,
      M2M_AUTH_LOG_LEVEL: 'warn',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, output: () => out, exited };
}

export async function startInstance(options: InstanceOptions): Promise<Instance> {
  const port = options.port ?? (await freePort());
  const adminPort = options.adminPort ?? (await freePort());
  const scheme = options.ca ? 'https' : 'http';
  const publicUrl = `${scheme}://127.0.0.1:${port}`;
  const { child, output, exited } = spawnServe({ ...options, port, adminPort });
  const dispatcher = new Agent(options.ca ? { connect: { ca: options.ca } } : {});
  const deadline = Date.now() + (options.readyTimeoutMs ?? 20_000);
  try {
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`server exited early (${child.exitCode ?? child.signalCode}):\n${output()}`);
      try {
        const r = await request(`${publicUrl}/readyz`, { dispatcher, headersTimeout: 1000 });
        await r.body.dump();
        if (r.statusCode === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`server not ready in time:\n${output()}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  } finally {
    await dispatcher.close();
  }
  return {
    child, port, adminPort, publicUrl, adminUrl: `http://127.0.0.1:${adminPort}`, output, exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
