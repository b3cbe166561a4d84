// Logs for people and for machines (M2M_AUTH_LOG_FORMAT): readable lines (pino-pretty) when stdout
// is a terminal, JSON lines otherwise. The pretty format is made from the JSON line after
// redaction, so secrets stay out of it too; the JSON format keeps the request line's fast writer on
// the destination itself; pino-pretty is loaded only when used. End to end: package.json's start
// command in a pseudo-terminal (util-linux `script`) prints readable lines, piped it prints JSON.

import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/schema.js';
import { createLogger, defaultLogFormat, infoLineWriter, SENSITIVE_FIELDS } from '../../src/observability/logger.js';
import { requestLineMembers } from '../../src/http/public-app.js';
import { REPO, ensureBuilt } from '../helpers/process.js';

const KEYS = ['reqId', 'method', 'path', 'status', 'client_id', 'outcome', 'ms', 'ip'] as const;
const LINE = { reqId: 'r-1', method: 'POST', path: '/oauth2/token', status: 200, client_id: 'cl_abcdefghijklmnop', outcome: 'ok', ms: 0.5, ip: '127.0.0.1' };

function capture(format: 'json' | 'pretty'): { log: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger({ level: 'trace', format, destination: { write: (s: string) => void lines.push(s) } }), lines };
}

/** A pretty line: `[HH:MM:ss.mmm] LEVEL: message {fields}` on one line. */
const PRETTY = /^\[\d\d:\d\d:\d\d\.\d{3}\] (INFO|WARN|ERROR|DEBUG|TRACE|FATAL): /;

describe('M2M_AUTH_LOG_FORMAT', () => {
  it('is a configuration key: json or pretty, unset by default (then chosen by the terminal)', () => {
    expect(loadConfig({}).logFormat).toBeUndefined();
    expect(loadConfig({ M2M_AUTH_LOG_FORMAT: 'pretty' }).logFormat).toBe('pretty');
    expect(loadConfig({ M2M_AUTH_LOG_FORMAT: 'json' }).logFormat).toBe('json');
    expect(loadConfig({}, { logFormat: 'pretty' }).logFormat).toBe('pretty');
    expect(() => loadConfig({ M2M_AUTH_LOG_FORMAT: 'text' })).toThrow('environment variable (M2M_AUTH_LOG_FORMAT) must be one of json, pretty, got "text"');
  });

  it('defaults to pretty on a terminal and to JSON anywhere else', () => {
    expect(defaultLogFormat({ isTTY: true })).toBe('pretty');
    expect(defaultLogFormat({ isTTY: false })).toBe('json');
    expect(defaultLogFormat({})).toBe('json');
  });
});

describe('pretty lines', () => {
  it('are one readable line per entry: time, level, message, then the fields', () => {
    const { log, lines } = capture('pretty');
    log.info({ publicUrl: 'http://127.0.0.1:8080' }, 'm2m-auth listening');
    log.warn('something to look at');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(PRETTY);
    expect(lines[0]).toContain('INFO: m2m-auth listening {"publicUrl":"http://127.0.0.1:8080"}');
    expect(lines[1]).toMatch(/WARN: something to look at\n$/);
    // No colours when the lines do not go to a terminal, and no JSON line.
    for (const line of lines) {
      expect(line).not.toContain('\u001b[');
      expect(line.split('\n').filter(Boolean)).toHaveLength(1);
      expect(() => JSON.parse(line)).toThrow();
    }
  });

  it('censor every sensitive field, at the top level and one level down, as the JSON lines do', () => {
    const { log, lines } = capture('pretty');
    const values: string[] = [];
    for (const key of SENSITIVE_FIELDS) {
      const value = `v-${key}-${Math.random().toString(36).slice(2)}`;
      values.push(value);
      log.info({ client_id: 'cl_visible', [key]: value }, 'top level');
      log.info({ req: { headers: { authorization: `Basic ${value}` } }, config: { [key]: value } }, 'nested');
    }
    expect(lines).toHaveLength(2 * SENSITIVE_FIELDS.length);
    for (const line of lines) for (const value of values) expect(line).not.toContain(value);
    expect(lines.filter((l) => l.includes('"[REDACTED]"'))).toHaveLength(lines.length);
    expect(lines[0]).toContain('cl_visible');
  });

  it('come from the request line\'s fast writer too, the same as through pino', () => {
    const { log, lines } = capture('pretty');
    const write = infoLineWriter(log, 'request', KEYS);
    expect(write).toBeTypeOf('function');
    log.info(LINE, 'request');
    write!(requestLineMembers(LINE), LINE);
    const untimed = lines.map((l) => l.replace(/^\[[^\]]+\]/, '[time]'));
    expect(untimed[1]).toBe(untimed[0]);
    expect(lines[0]).toMatch(PRETTY);
    expect(lines[0]).toContain('INFO: request {"reqId":"r-1","method":"POST","path":"/oauth2/token","status":200');
  });
});

describe('JSON lines', () => {
  it('go to the destination itself, with the request line\'s fast writer writing to it directly', () => {
    const sink = { write: (_s: string) => true };
    const log = createLogger({ format: 'json', destination: sink });
    expect((log as unknown as Record<symbol, unknown>)[pino.symbols.streamSym]).toBe(sink);
    const lines: string[] = [];
    sink.write = (s: string) => (lines.push(s), true);
    infoLineWriter(log, 'request', KEYS)!(requestLineMembers(LINE), LINE);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'info', service: 'm2m-auth', msg: 'request', ...LINE });
  });

  it('are the default for a given destination (tests, the in-process load generator)', () => {
    const lines: string[] = [];
    createLogger({ destination: { write: (s: string) => void lines.push(s) } }).info('x');
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 'info', msg: 'x' });
  });
});

describe('pino-pretty', () => {
  it('is loaded only by a logger that writes pretty lines', () => {
    ensureBuilt();
    const script = `
      import { createRequire } from 'node:module';
      import { createLogger } from './dist/observability/logger.js';
      const loaded = () => Object.keys(createRequire(import.meta.url).cache).some((p) => p.includes('/node_modules/pino-pretty/'));
      createLogger({ format: 'json', destination: { write() {} } }).info('x');
      const afterJson = loaded();
      createLogger({ format: 'pretty', destination: { write() {} } }).info('x');
      process.stdout.write(JSON.stringify([afterJson, loaded()]));
    `;
    const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO, encoding: 'utf8', timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([false, true]);
  });
});

// --- package.json's start command, in a terminal and piped ------------------------------------

const SCRIPT = spawnSync('script', ['--version'], { encoding: 'utf8' }).status === 0;
if (!SCRIPT) console.warn('test/observability/log-format.test.ts: the terminal test is skipped: `script` (util-linux) not found');

const START = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { scripts: { start: string } }).scripts.start;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

interface Run {
  output: string;
  code: number | null;
}

/**
 * Runs `npm start`'s command (without npm's build step, which the suite has done) on free ports
 * with a data folder of its own; once it listens, sends SIGTERM to the server and collects what it
 * printed until it exited. In a terminal: the command runs in `script`'s pseudo-terminal, whose
 * child is the server (`exec`).
 */
async function runStart(terminal: boolean, env: Record<string, string> = {}): Promise<Run> {
  ensureBuilt();
  const dataDir = mkdtempSync(join(tmpdir(), 'm2m-auth-logformat-'));
  dirs.push(dataDir);
  const command = `exec ${START} --listen 127.0.0.1:0 --admin-listen 127.0.0.1:0 --data-dir ${dataDir}`;
  const childEnv = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TERM: 'xterm', ...env };
  const child = terminal
    ? spawn('script', ['-qec', command, '/dev/null'], { cwd: REPO, env: childEnv, stdio: ['pipe', 'pipe', 'pipe'] })
    : spawn('sh', ['-c', command], { cwd: REPO, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the server did not report listening in 30 s:\n${output}`));
    }, 30_000);
    const onData = (d: Buffer): void => {
      output += d.toString();
      if (output.includes('m2m-auth listening')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', () => {
      clearTimeout(timer);
      reject(new Error(`the server exited before listening:\n${output}`));
    });
  });
  // In the terminal case the server is script's child (exec), not script itself.
  const serverPid = terminal ? Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)[0]) : child.pid!;
  expect(serverPid).toBeGreaterThan(0);
  process.kill(serverPid, 'SIGTERM');
  const code = await exited;
  return { output, code };
}

describe.skipIf(!SCRIPT)('npm start in a terminal (skipped without util-linux script)', () => {
  it('prints readable lines, the shutdown steps included, and stops cleanly on SIGTERM', async () => {
    const { output, code } = await runStart(true);
    expect(code).toBe(0);
    const lines = output.replace(/\u001b\[[0-9;]*m/g, '').split(/\r?\n/).filter(Boolean);
    expect(lines.length).toBeGreaterThan(4);
    for (const line of lines) expect(line).toMatch(PRETTY);
    // Colours on a terminal.
    expect(output).toContain('\u001b[');
    const text = lines.join('\n');
    for (const step of ['m2m-auth listening', 'SIGTERM received: shutting down gracefully', 'shutting down: /readyz answers 503', 'listeners closed', 'shutdown complete']) {
      expect(text).toContain(step);
    }
  }, 60_000);

  it('prints JSON lines in a terminal too when M2M_AUTH_LOG_FORMAT=json', async () => {
    const { output, code } = await runStart(true, { M2M_AUTH_LOG_FORMAT: 'json' });
    expect(code).toBe(0);
    const lines = output.split(/\r?\n/).filter(Boolean);
    for (const line of lines) expect(JSON.parse(line)).toHaveProperty('msg');
  }, 60_000);
});

describe('npm start piped (npm start | cat)', () => {
  it('prints JSON lines, the shutdown steps included', async () => {
    const { output, code } = await runStart(false);
    expect(code).toBe(0);
    const lines = output.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { msg: string; level: string; signal?: string });
    const msgs = lines.map((l) => l.msg);
    expect(msgs).toContain('m2m-auth listening');
    expect(lines.find((l) => l.msg === 'SIGTERM received: shutting down gracefully')).toMatchObject({ level: 'info', signal: 'SIGTERM' });
    expect(msgs.slice(-3)).toEqual([
      'shutting down: /readyz answers 503 and connections are asked to close',
      'listeners closed and requests in flight finished; closing storage',
      'shutdown complete',
    ]);
  }, 60_000);

  it('prints pretty lines when M2M_AUTH_LOG_FORMAT=pretty, without colours off a terminal', async () => {
    const { output, code } = await runStart(false, { M2M_AUTH_LOG_FORMAT: 'pretty' });
    expect(code).toBe(0);
    expect(output).not.toContain('\u001b[');
    for (const line of output.split('\n').filter(Boolean)) expect(line).toMatch(PRETTY);
  }, 60_000);
});
