// deploy/systemd: the unit passes `systemd-analyze verify` without a warning and scores "OK" or
// better in `systemd-analyze security` (skipped with a message where systemd-analyze is missing);
// it keeps the usual hardening, stops the way the server drains (SIGTERM to the main process only,
// in time), reloads TLS with SIGHUP; the example environment file names only configuration keys.
// The server then runs as the unit would start it (the example's settings, workers included):
// SIGHUP leaves it serving, SIGTERM to the main process alone stops every process with exit 0.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CONFIG_SCHEMA, loadConfig } from '../../src/config/schema.js';
import { CLI, REPO, REPOSITORY, ensureBuilt, listeningLine } from '../helpers/process.js';

const DIR = join(REPOSITORY, 'deploy/systemd');
const UNIT_TEXT = readFileSync(join(DIR, 'm2m-auth.service'), 'utf8');
const ENV_TEXT = readFileSync(join(DIR, 'm2m-auth.env.example'), 'utf8');

/** The unit's settings: section -> key -> every value given (keys may repeat). */
function parseUnit(text: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      section = header[1]!;
      out[section] ??= {};
      continue;
    }
    const eq = line.indexOf('=');
    const key = line.slice(0, eq);
    ((out[section] ??= {})[key] ??= []).push(line.slice(eq + 1));
  }
  return out;
}

const unit = parseUnit(UNIT_TEXT);
const service = unit.Service!;
const value = (key: string): string | undefined => service[key]?.at(-1);

/** Active settings of the example environment file, and the keys it mentions in comments. */
const envLines = ENV_TEXT.split('\n').map((l) => l.trim());
const activeEnv = Object.fromEntries(envLines.filter((l) => /^M2M_AUTH_\w+=/.test(l)).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
const mentioned = [...ENV_TEXT.matchAll(/^#?(M2M_AUTH_\w+)=/gm)].map((m) => m[1]!);

const ANALYZE = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' }).status === 0;
if (!ANALYZE) console.warn('test/deploy/systemd.test.ts: systemd-analyze checks skipped: systemd-analyze not found');

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The unit in a folder of its own, its interpreter being this machine's node (verify checks that it exists). */
function unitCopy(): string {
  const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-systemd-'));
  dirs.push(dir);
  const path = join(dir, 'm2m-auth.service');
  writeFileSync(path, UNIT_TEXT.replace(/^ExecStart=\/usr\/bin\/node /m, `ExecStart=${process.execPath} `));
  return path;
}

describe('deploy/systemd/m2m-auth.service', () => {
  it.skipIf(!ANALYZE)('passes systemd-analyze verify without a warning (skipped without systemd-analyze)', () => {
    const r = spawnSync('systemd-analyze', ['verify', unitCopy()], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
    expect(`${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes('m2m-auth'))).toEqual([]);
  });

  const offline = ANALYZE && spawnSync('systemd-analyze', ['security', '--help'], { encoding: 'utf8' }).stdout.includes('--offline');
  it.skipIf(!offline)('is rated OK or better by systemd-analyze security (skipped without its --offline mode)', () => {
    const r = spawnSync('systemd-analyze', ['security', '--offline=yes', unitCopy()], { encoding: 'utf8', timeout: 60_000 });
    const m = /Overall exposure level for m2m-auth\.service: (\d+(?:\.\d+)?) (\w+)/.exec(`${r.stdout}${r.stderr}`);
    expect(m, `${r.stdout}${r.stderr}`).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(2);
    expect(['OK', 'SAFE']).toContain(m![2]);
  });

  it('runs the server the way npm start does, from /opt/m2m-auth, with its state under /var/lib/m2m-auth', () => {
    const start = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
    expect(value('ExecStart')).toBe(`/usr/bin/${start.replace('dist/', '/opt/m2m-auth/dist/')}`);
    expect(value('Type')).toBe('exec');
    expect(value('DynamicUser')).toBe('yes');
    expect(value('StateDirectory')).toBe('m2m-auth');
    expect(value('StateDirectoryMode')).toBe('0700');
    expect(service.Environment).toContain('M2M_AUTH_DATA_DIR=%S/m2m-auth');
    expect(value('EnvironmentFile')).toBe('/etc/m2m-auth/m2m-auth.env');
    expect(value('Restart')).toBe('on-failure');
    expect(unit.Install!.WantedBy).toEqual(['multi-user.target']);
  });

  it('keeps the usual hardening, and nothing that stops Node', () => {
    for (const [key, v] of Object.entries({
      NoNewPrivileges: 'yes', ProtectSystem: 'strict', ProtectHome: 'yes', PrivateTmp: 'yes', PrivateDevices: 'yes',
      ProtectKernelTunables: 'yes', ProtectKernelModules: 'yes', ProtectControlGroups: 'yes', RestrictSUIDSGID: 'yes',
      RestrictNamespaces: 'yes', LockPersonality: 'yes', SystemCallArchitectures: 'native', CapabilityBoundingSet: '', UMask: '0077',
    })) {
      expect(value(key), key).toBe(v);
    }
    expect(service.SystemCallFilter).toContain('@system-service');
    // V8 writes machine code into memory it then executes.
    expect(value('MemoryDenyWriteExecute')).toBeUndefined();
  });

  it('stops as the server drains: SIGTERM to the main process only, within TimeoutStopSec; SIGHUP reloads TLS', () => {
    expect(value('KillSignal')).toBe('SIGTERM');
    expect(value('KillMode')).toBe('mixed');
    expect(value('ExecReload')).toBe('/bin/kill -HUP $MAINPID');
    const config = loadConfig({ ...activeEnv, M2M_AUTH_SHUTDOWN_DELAY: activeEnv.M2M_AUTH_SHUTDOWN_DELAY ?? '5' });
    expect(Number(value('TimeoutStopSec'))).toBeGreaterThan(config.shutdownDelay + config.shutdownTimeout);
  });
});

describe('deploy/systemd/m2m-auth.env.example', () => {
  it('names only keys of the configuration schema, and what it sets loads', () => {
    const known = new Set(CONFIG_SCHEMA.map((k) => k.env));
    expect(mentioned.length).toBeGreaterThan(8);
    expect(mentioned.filter((k) => !known.has(k))).toEqual([]);
    expect(() => loadConfig({ ...activeEnv, M2M_AUTH_DATA_DIR: '/var/lib/m2m-auth' })).not.toThrow();
    // The unit sets the data folder itself.
    expect(activeEnv.M2M_AUTH_DATA_DIR).toBeUndefined();
  });
});

describe('the server as the unit starts it', () => {
  it('keeps serving on SIGHUP (ExecReload), and on SIGTERM to the main process alone stops every worker and exits 0', async () => {
    ensureBuilt();
    const data = mkdtempSync(join(tmpdir(), 'm2m-auth-systemd-data-'));
    dirs.push(data);
    const child = spawn(process.execPath, [CLI, 'serve'], {
      cwd: REPO,
      env: {
        PATH: process.env.PATH ?? '', NODE_ENV: 'production', ...activeEnv, M2M_AUTH_DATA_DIR: data,
        // Port 0: both workers share the port the first one got, reported on their listening lines.
        M2M_AUTH_LISTEN: '127.0.0.1:0', M2M_AUTH_ADMIN_LISTEN: '127.0.0.1:0', M2M_AUTH_WORKERS: '2',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const publicUrl = (): string => listeningLine(output)?.publicUrl ?? 'http://127.0.0.1:0';
    const workers = (): number[] => {
      try {
        return readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
      } catch {
        return [];
      }
    };
    const until = async (what: string, check: () => boolean | Promise<boolean>): Promise<void> => {
      const deadline = Date.now() + 30_000;
      while (!(await check())) {
        if (child.exitCode !== null) throw new Error(`exited (${child.exitCode}) before ${what}:\n${output}`);
        if (Date.now() > deadline) throw new Error(`not ${what} in 30 s:\n${output}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    try {
      // A reload while the workers start (systemctl reload right after start, or after a worker
      // was restarted) must not end them: each does it once it runs.
      await until('forked the workers', () => output.includes('m2m-auth primary started workers'));
      child.kill('SIGHUP');
      await until('ready', async () => workers().length === 2 && (output.match(/"m2m-auth listening"/g) ?? []).length === 2
        && (await fetch(`${publicUrl()}/readyz`).then((r) => r.ok, () => false)));
      await until('reloaded in both workers', () => (output.match(/nothing to reload/g) ?? []).length === 2);
      // And a reload of running workers.
      child.kill('SIGHUP');
      await until('reloaded again', () => (output.match(/nothing to reload/g) ?? []).length === 4);
      const pids = workers();
      expect(output).not.toContain('worker exited');
      expect((await fetch(`${publicUrl()}/readyz`)).status).toBe(200);
      expect(child.exitCode).toBeNull();
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      for (const pid of pids) expect(() => process.kill(pid, 0), `worker ${pid}`).toThrow();
      const msgs = output.split('\n').filter((l) => l.startsWith('{')).map((l) => (JSON.parse(l) as { msg: string }).msg);
      expect(msgs.filter((m) => m === 'shutdown complete')).toHaveLength(2);
      expect(msgs.at(-1)).toBe('every worker has stopped; the primary exits');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  }, 60_000);
});
