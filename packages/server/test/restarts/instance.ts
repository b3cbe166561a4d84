// A real `m2m-auth serve` process on port 0 (it reports the ports it got) or on a port the test
// reserved (reservedPort, to restart it on the same port), over plain HTTP or TLS, with its exit code and output kept for assertions.

import { spawn, type ChildProcess } from 'node:child_process';
import { Agent, request } from 'undici';
import { CLI, REPO, waitForListening } from '../helpers/process.js';

export interface InstanceOptions {
  env: Record<string, string>;
  /** Defaults to port 0: the ports it got are read from its 'm2m-auth listening' line. */
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
  /** As the server reported it (M2M_AUTH_ISSUER with port 0 takes the port it got). */
  issuer: string;
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
      M2M_AUTH_LOG_FORMAT: 'json',
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
  const { child, output, exited } = spawnServe({ ...options, port: options.port ?? 0, adminPort: options.adminPort ?? 0 });
  const listening = await waitForListening(child, output, options.readyTimeoutMs ?? 20_000);
  const port = Number(new URL(listening.publicUrl).port);
  const adminPort = Number(new URL(listening.adminUrl).port);
  const scheme = options.ca ? 'https' : 'http';
  const publicUrl = `${scheme}://127.0.0.1:${port}`;
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
    child, port, adminPort, publicUrl, adminUrl: `http://127.0.0.1:${adminPort}`, issuer: listening.issuer, output, exited,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}
