// Fault-injection helpers: a private PostgreSQL (initdb + pg_ctl) and a private Redis that tests
// may stop, kill and restart without touching the shared servers, plus HTTP helpers for the
// server processes of test/helpers/process.ts.

import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { reservedPort, type ServerProcess } from '../helpers/process.js';

const run = promisify(execFile);

/**
 * Request and failed-authentication limits off: these tests poll endpoints in tight loops and
 * provoke 401s on purpose; the limits have tests of their own.
 */
export const NO_LIMITS: Readonly<Record<string, string>> = {
  M2M_AUTH_TOKEN_RATE_LIMIT: '0',
  M2M_AUTH_INTROSPECTION_RATE_LIMIT: '0',
  M2M_AUTH_AUTH_FAILURES_PER_ADDRESS: '0',
  M2M_AUTH_AUTH_FAILURES_PER_CLIENT: '0',
};

export const basic = (id: string, secret: string): string => 'Basic ' + Buffer.from(`${id}:${secret}`).toString('base64');

export interface HttpResult {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  json: any;
}

async function result(r: Response): Promise<HttpResult> {
  const text = await r.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  return { status: r.status, headers: r.headers, json };
}

/** Every request a test makes is bounded: a hung server fails the test instead of stalling it. */
const REQUEST_TIMEOUT_MS = 15_000;

export async function admin(p: ServerProcess, method: string, path: string, body?: unknown): Promise<HttpResult> {
  return result(await fetch(p.adminUrl + path, {
    method,
    headers: { authorization: `Bearer ${p.adminToken}`, ...(body !== undefined && { 'content-type': 'application/json' }) },
    ...(body !== undefined && { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  }));
}

export async function form(p: ServerProcess, path: string, params: Record<string, string>, auth?: string): Promise<HttpResult> {
  return result(await fetch(p.publicUrl + path, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...(auth && { authorization: auth }) },
    body: new URLSearchParams(params),
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
  }));
}

export async function get(p: ServerProcess, path: string): Promise<HttpResult> {
  return result(await fetch(p.publicUrl + path, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) }));
}

export interface TestClient {
  id: string;
  secret: string;
}

export async function newClient(p: ServerProcess, extra: Record<string, unknown> = {}): Promise<TestClient> {
  const r = await admin(p, 'POST', '/admin/clients', {
    client_name: 'fault-test', scope: 'orders:read', audience: ['https://orders.example.com'], ...extra,
  });
  if (r.status !== 201) throw new Error(`client create answered ${r.status}: ${JSON.stringify(r.json)}`);
  return { id: r.json.client_id as string, secret: (r.json.client_secret as string | undefined) ?? '' };
}

export const token = (p: ServerProcess, c: TestClient): Promise<HttpResult> =>
  form(p, '/oauth2/token', { grant_type: 'client_credentials' }, basic(c.id, c.secret));

export const introspect = (p: ServerProcess, c: TestClient, t: string): Promise<HttpResult> =>
  form(p, '/oauth2/introspect', { token: t }, basic(c.id, c.secret));

/** True while the process has neither exited nor been killed. */
export function alive(p: ServerProcess): boolean {
  return p.child.exitCode === null && p.child.signalCode === null;
}

/** Output lines that would mean a crash or an unhandled failure. */
export function crashLines(p: ServerProcess): string[] {
  return p.output().split('\n').filter((l) => /unhandled|uncaught|FATAL ERROR|\"level\":60/i.test(l));
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------------
// A private PostgreSQL cluster.

/** The folder with initdb and pg_ctl (newest installed version first), or undefined. */
export function postgresBinaries(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root).filter((v) => /^\d+(\.\d+)?$/.test(v)).sort((a, b) => Number(b) - Number(a));
    for (const v of versions) {
      const bin = join(root, v, 'bin');
      if (existsSync(join(bin, 'initdb')) && existsSync(join(bin, 'pg_ctl'))) return bin;
    }
  }
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'initdb')) && existsSync(join(dir, 'pg_ctl'))) return dir;
  }
  return undefined;
}

/** uid and gid of an OS user, from `id`. */
function osUser(name: string): { uid: number; gid: number } | undefined {
  const id = (flag: string) => spawnSync('id', [flag, name], { encoding: 'utf8' });
  const uid = id('-u');
  const gid = id('-g');
  if (uid.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

export interface PrivatePostgres {
  port: number;
  /** postgres://postgres@127.0.0.1:<port>/postgres (trust authentication). */
  url: string;
  /** initdb into a temp folder, then start. */
  init(): Promise<void>;
  start(): Promise<void>;
  /** Fast shutdown: sessions are terminated, new connections refused. */
  stop(): Promise<void>;
  /** Stops (immediately) if running and removes the temp folder. Idempotent. */
  destroy(): Promise<void>;
}

/**
 * A private PostgreSQL cluster on a reserved port (see reservedPort: it cannot listen on port 0 and report it), run as the `postgres` OS user when this runs as
 * root (initdb refuses root). Checks only what it needs (binaries, user, runuser) and resolves to
 * a skip reason when something is missing; nothing is created before init().
 */
export async function privatePostgres(): Promise<PrivatePostgres | { skip: string }> {
  const bin = postgresBinaries();
  if (bin === undefined) return { skip: 'initdb/pg_ctl not found (looked in /usr/lib/postgresql/*/bin and PATH)' };
  const root = process.getuid?.() === 0;
  let owner: { uid: number; gid: number } | undefined;
  if (root) {
    owner = osUser('postgres');
    if (owner === undefined) return { skip: 'running as root and there is no `postgres` OS user to run initdb as' };
    if (spawnSync('runuser', ['--help']).status !== 0) return { skip: 'running as root and runuser is not available to run initdb as `postgres`' };
  }
  const port = await reservedPort();
  let dir: string | undefined;
  const as = (cmd: string, args: string[]) =>
    root ? run('runuser', ['-u', 'postgres', '--', join(bin, cmd), ...args], { timeout: 60_000 }) : run(join(bin, cmd), args, { timeout: 60_000 });
  const pgCtl = (args: string[]) => {
    if (dir === undefined) throw new Error('init() first');
    return as('pg_ctl', ['-D', join(dir, 'data'), ...args]);
  };
  const options = () => `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`;
  const pg: PrivatePostgres = {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    async init() {
      dir = mkdtempSync(join(tmpdir(), 'm2m-auth-pg-'));
      if (owner) chownSync(dir, owner.uid, owner.gid);
      await as('initdb', ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8']);
      await pg.start();
    },
    async start() {
      await pgCtl(['-o', options(), '-l', join(dir!, 'log'), '-w', '-t', '30', 'start']);
    },
    async stop() {
      await pgCtl(['-m', 'fast', '-w', '-t', '30', 'stop']);
    },
    async destroy() {
      if (dir === undefined) return;
      const d = dir;
      await pgCtl(['-m', 'immediate', '-w', '-t', '30', 'stop']).catch(() => undefined);
      dir = undefined;
      rmSync(d, { recursive: true, force: true });
    },
  };
  return pg;
}

// ---------------------------------------------------------------------------------------------
// A private Redis.

export function redisServerBinary(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir && existsSync(join(dir, 'redis-server'))) return join(dir, 'redis-server');
  }
  return undefined;
}

/** Sends one inline command and resolves to the raw reply once `complete` accepts it, or rejects. */
function redisCommand(port: number, command: string, complete: (reply: string) => boolean, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    let data = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('redis did not answer'));
    }, timeoutMs);
    socket.on('connect', () => socket.write(`${command}\r\n`));
    socket.on('data', (d) => {
      data += d.toString();
      if (complete(data)) {
        clearTimeout(timer);
        socket.end();
        resolve(data);
      }
    });
    socket.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** Subscribers of a pub/sub channel (PUBSUB NUMSUB): the reply ends with the count as an integer. */
export async function redisSubscribers(port: number, channel: string): Promise<number> {
  const reply = await redisCommand(port, `PUBSUB NUMSUB ${channel}`, (r) => /\r\n:\d+\r\n$/.test(r) || r.startsWith('-'));
  const m = /:(\d+)\r\n$/.exec(reply);
  if (!m) throw new Error(`unexpected NUMSUB reply ${JSON.stringify(reply)}`);
  return Number(m[1]);
}

export interface PrivateRedis {
  port: number;
  url: string;
  start(): Promise<void>;
  /** SIGKILL, as a crash would. */
  kill(): Promise<void>;
  /** Kills it if running. Idempotent. */
  destroy(): Promise<void>;
}

export async function privateRedis(): Promise<PrivateRedis | { skip: string }> {
  const binary = redisServerBinary();
  if (binary === undefined) return { skip: 'redis-server not found on PATH' };
  const port = await reservedPort();
  let child: ChildProcess | undefined;
  let exited: Promise<void> | undefined;
  const redis: PrivateRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      const c = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no'], {
        stdio: 'ignore',
      });
      child = c;
      exited = new Promise((r) => c.once('exit', () => r()));
      const deadline = Date.now() + 10_000;
      for (;;) {
        if (c.exitCode !== null) throw new Error(`redis-server exited with ${c.exitCode}`);
        try {
          if ((await redisCommand(port, 'PING', (r) => r.endsWith('\r\n'))).startsWith('+PONG')) return;
        } catch {
          // not up yet
        }
        if (Date.now() > deadline) {
          c.kill('SIGKILL');
          throw new Error('redis-server did not answer PING within 10 s');
        }
        await sleep(50);
      }
    },
    async kill() {
      if (child && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      child = undefined;
    },
    destroy: () => redis.kill(),
  };
  return redis;
}

/** A schema name of its own for a test on the shared PostgreSQL server. */
export function schemaName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`;
}

/** `base` with `schema` as the connection's search_path. */
export function schemaUrl(base: string, schema: string): string {
  const url = new URL(base);
  url.searchParams.set('options', `-c search_path=${schema}`);
  return url.href;
}
