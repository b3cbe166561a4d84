// serve --workers: when every worker dies at once (an OOM kill of the lot, a bad deploy), the
// primary stays up and starts them again; before, its restart timer was unref'd, so with no worker
// left nothing kept the primary alive and it exited with 13 (a top-level await never settled).

import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { CLI, REPO, ensureBuilt } from '../helpers/process.js';

const data = mkdtempSync(join(tmpdir(), 'm2m-auth-primary-'));
afterAll(() => rmSync(data, { recursive: true, force: true }));

it('starts new workers when every worker was killed, and still stops cleanly', async () => {
  ensureBuilt();
  const child = spawn(process.execPath, [CLI, 'serve'], {
    cwd: REPO,
    env: {
      PATH: process.env.PATH ?? '', M2M_AUTH_DATA_DIR: data, M2M_AUTH_LISTEN: '127.0.0.1:0',
      M2M_AUTH_ADMIN_LISTEN: '127.0.0.1:0', M2M_AUTH_WORKERS: '2', M2M_AUTH_LOG_FORMAT: 'json',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const workers = (): number[] => {
    try {
      return readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  };
  const listening = (): number => (output.match(/"msg":"m2m-auth listening"/g) ?? []).length;
  // Port 0: the workers share the port the first of them got; new workers after all died may get
  // another one, so the last listening line says where to look.
  const lastPublicUrl = (): string => [...output.matchAll(/"publicUrl":"([^"]+)"/g)].at(-1)![1]!;
  const until = async (what: string, check: () => boolean | Promise<boolean>): Promise<void> => {
    const deadline = Date.now() + 30_000;
    while (!(await check())) {
      if (child.exitCode !== null) throw new Error(`the primary exited (${child.exitCode}) before ${what}:\n${output}`);
      if (Date.now() > deadline) throw new Error(`not ${what} in 30 s:\n${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  try {
    await until('listening twice', () => listening() === 2 && workers().length === 2);
    const first = workers();
    for (const pid of first) process.kill(pid, 'SIGKILL');
    await until('two new workers listening', async () => listening() === 4 && workers().length === 2
      && (await fetch(`${lastPublicUrl()}/readyz`).then((r) => r.ok, () => false)));
    expect(workers().filter((pid) => first.includes(pid))).toEqual([]);
    expect((output.match(/worker exited; starting a new one/g) ?? []).length).toBe(2);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
  }
}, 60_000);
