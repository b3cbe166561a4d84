// The README walkthrough, word for word: the compiled CLI serves in a fresh folder, and the ```sh
// blocks between the walkthrough markers run as one bash script against it, with only the
// host/port and the command name substituted. Their output must be what the README shows.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureBuilt, REPOSITORY, waitForListening } from '../helpers/process.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const MAIN = join(ROOT, 'dist', 'cli', 'main.js');
const README = readFileSync(join(REPOSITORY, 'README.md'), 'utf8');

/**
 * Source files whose compiled dist/*.js is missing or older than the source. Sources changed at or
 * after `since` (while a build ran: others work in this checkout at the same time) are left out.
 */
function staleOutputs(since = Infinity): string[] {
  const stale: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.d.ts') && !entry.name.endsWith('.test.ts')) {
        const out = join(ROOT, 'dist', relative(join(ROOT, 'src'), path)).replace(/\.ts$/, '.js');
        const source = statSync(path).mtimeMs;
        if (source < since && (!existsSync(out) || statSync(out).mtimeMs < source)) stale.push(relative(ROOT, path));
      }
    }
  };
  walk(join(ROOT, 'src'));
  return stale;
}

/** The walkthrough section of the README. */
function walkthrough(): string {
  const m = /<!-- walkthrough:start -->([\s\S]*?)<!-- walkthrough:end -->/.exec(README);
  if (!m) throw new Error('README.md has no walkthrough markers');
  return m[1]!;
}

function fencedBlocks(text: string, lang: string): string[] {
  const re = new RegExp('^```' + lang + '\\n([\\s\\S]*?)^```$', 'gm');
  return [...text.matchAll(re)].map((m) => m[1]!);
}

/**
 * The script's stdout as the separate outputs a reader sees: JSON objects (curl prints them without
 * a newline, so they may touch) and plain lines.
 */
function outputs(stdout: string): unknown[] {
  const items: unknown[] = [];
  let i = 0;
  while (i < stdout.length) {
    const c = stdout[i]!;
    if (/\s/.test(c)) {
      i++;
    } else if (c === '{') {
      let depth = 0;
      let inString = false;
      let j = i;
      for (; j < stdout.length; j++) {
        const d = stdout[j];
        if (inString) {
          if (d === '\\') j++;
          else if (d === '"') inString = false;
        } else if (d === '"') inString = true;
        else if (d === '{') depth++;
        else if (d === '}' && --depth === 0) break;
      }
      items.push(JSON.parse(stdout.slice(i, j + 1)));
      i = j + 1;
    } else {
      const end = stdout.indexOf('\n', i);
      const stop = end === -1 ? stdout.length : end;
      items.push(stdout.slice(i, stop).trim());
      i = stop;
    }
  }
  return items;
}

let work: string;
let server: ChildProcess;
let serverExit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
let serverOutput = '';
let publicUrl: string;
let adminUrl: string;

/** Resolves once the server's output contains `text`, or after `timeoutMs` (the caller's expect then fails). */
async function serverSaid(text: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!serverOutput.includes(text) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}

async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer';
  while (Date.now() < deadline) {
    if (server.exitCode !== null) throw new Error(`the server exited with ${server.exitCode}:\n${serverOutput}`);
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.status === 200) return;
      last = `${res.status} ${await res.text()}`;
    } catch (err) {
      last = String((err as Error).cause ?? err);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the server was not ready after ${timeoutMs} ms (${last}):\n${serverOutput}`);
}

async function startCli(): Promise<void> {
  server = spawn(process.execPath, [MAIN, 'serve'], {
    cwd: work,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? work,
      // Port 0: the server reports the ports it got; the issuer takes the public one.
      M2M_AUTH_LISTEN: '127.0.0.1:0',
      M2M_AUTH_ADMIN_LISTEN: '127.0.0.1:0',
      M2M_AUTH_ISSUER: 'http://127.0.0.1:0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout!.on('data', (b: Buffer) => { serverOutput += b.toString(); });
  server.stderr!.on('data', (b: Buffer) => { serverOutput += b.toString(); });
  const child = server;
  serverExit = new Promise((done) => child.on('exit', (code, signal) => done({ code, signal })));
  ({ publicUrl, adminUrl } = await waitForListening(child, () => serverOutput));
  await waitReady(publicUrl, 20_000);
}

beforeAll(async () => {
  const stale = staleOutputs();
  if (stale.length > 0) {
    // Whole seconds: some filesystems store coarser times than Date.now().
    const started = Math.floor(Date.now() / 1000) * 1000;
    ensureBuilt();
    // Type errors elsewhere in a shared checkout do not stop the emit; stale output does.
    const still = staleOutputs(started);
    if (still.length > 0) throw new Error(`build left stale output for ${still.join(', ')}`);
  }

  work = mkdtempSync(join(tmpdir(), 'm2m-readme-'));
  await startCli();
}, 180_000);

afterAll(async () => {
  if (server && server.exitCode === null && server.signalCode === null) {
    server.kill('SIGKILL');
    await serverExit;
  }
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the README walkthrough', () => {
  it('runs word for word and prints what the README shows', async () => {
    const section = walkthrough();
    const blocks = fencedBlocks(section, 'sh');
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    const original = blocks.join('\n');
    // Exactly the two substitutions, and each must have something to substitute.
    expect(original).toContain('npx m2m-auth');
    expect(original).toContain('http://localhost:8080');
    const script = original
      .replaceAll('npx m2m-auth', `node ${JSON.stringify(MAIN)}`)
      .replaceAll('http://localhost:8080', publicUrl);

    const run = spawnSync('bash', ['-euo', 'pipefail', '-c', script], {
      cwd: work,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? work, M2M_AUTH_ADMIN_URL: adminUrl },
      encoding: 'utf8',
      timeout: 60_000,
      // stdin from /dev/null: bash reads ~/.bashrc when stdin is a socket (as Node's pipes are).
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    expect(run.error).toBeUndefined();
    expect(run.status, run.stderr).toBe(0);
    // stderr carries the CLI's "store the secret now" note at most, never the secret.
    expect(run.stderr).not.toMatch(/m2m_cs_|error/i);

    // In order: the token response, an active introspection, 200, the inactive introspection.
    const out = outputs(run.stdout);
    expect(out, run.stdout).toHaveLength(4);
    const [token, introspection, status, inactive] = out as [Record<string, unknown>, Record<string, unknown>, string, unknown];

    const shown = fencedBlocks(section, 'json').map((b) => JSON.parse(b) as Record<string, unknown>);
    expect(shown).toHaveLength(2);
    // The README's example bodies have the same members, in the same order, as the real ones.
    expect(Object.keys(token)).toEqual(Object.keys(shown[0]!));
    expect(Object.keys(introspection)).toEqual(Object.keys(shown[1]!));

    expect(token).toEqual({
      access_token: expect.stringMatching(/^eyJhbGciOiJFUzI1NiIsInR5cCI6ImF0K2p3dCIsImtpZCI6[\w-]+\.[\w-]+\.[\w-]+$/),
      token_type: 'Bearer',
      expires_in: 3600,
      scope: 'orders:read orders:write',
    });
    const clientId = introspection.client_id as string;
    expect(clientId).toMatch(/^cl_[\w-]+$/);
    const claims = JSON.parse(Buffer.from((token.access_token as string).split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
    expect(introspection).toEqual({
      active: true,
      scope: 'orders:read orders:write',
      client_id: clientId,
      sub: clientId,
      aud: 'https://orders.example.com',
      iss: publicUrl,
      exp: claims.exp,
      iat: claims.iat,
      jti: claims.jti,
      token_type: 'Bearer',
    });
    expect(status).toBe('200');
    expect(inactive).toEqual({ active: false });
    // The plain block shows exactly the last two outputs.
    const plain = fencedBlocks(section, '').map((b) => b.trim());
    expect(plain).toContain(`200\n${JSON.stringify(inactive)}`);

    // The clean-up step ran: nothing holding the secret or the token is left behind.
    expect(existsSync(join(work, 'billing.json'))).toBe(false);
    expect(existsSync(join(work, 'token.json'))).toBe(false);
    // The CLI found the admin token in ./data by itself; the server logged its path, never its value.
    const adminToken = readFileSync(join(work, 'data', 'admin-token'), 'utf8').trim();
    // The server writes its log lines in batches (at most 100 ms late), and spawnSync above held
    // this process's event loop, so lines written meanwhile may not have been read yet: wait for them.
    await serverSaid(join('data', 'admin-token'), 10_000);
    expect(serverOutput).toContain(join('data', 'admin-token'));
    expect(serverOutput).not.toContain(adminToken);
    expect(serverOutput).not.toContain(token.access_token as string);
  });

  it('stops on SIGTERM with exit code 0', async () => {
    expect(server.kill('SIGTERM')).toBe(true);
    const exit = await Promise.race([
      serverExit,
      new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 15_000)),
    ]);
    expect(exit).toEqual({ code: 0, signal: null });
    await expect(fetch(`${publicUrl}/healthz`)).rejects.toThrow();
  });
});
