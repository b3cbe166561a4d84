// Helpers for the limit tests: requests from a chosen source address, the exact 429 answer, and
// Redis: random key prefixes (deleted afterwards) and private redis-server children.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { Redis } from 'ioredis';
import type { LightMyRequestResponse } from 'fastify';
import { basic, formBody, type TestServer } from '../helpers/server.js';
import { reservedPort } from '../helpers/process.js';

export const TOO_MANY = {
  error: 'temporarily_unavailable',
  error_description: 'Too many requests; retry after the number of seconds in Retry-After.',
};

/** POSTs a form to the public app as if from `ip` (the socket address), with extra headers. */
export function postFrom(
  t: TestServer, ip: string, path: string, form: Record<string, string>, headers: Record<string, string> = {},
): Promise<LightMyRequestResponse> {
  return t.inject({
    method: 'POST',
    url: path,
    remoteAddress: ip,
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    payload: formBody(form),
  });
}

/** A client_secret_basic token request from `ip`. */
export function tokenFrom(t: TestServer, ip: string, id: string, secret: string, headers: Record<string, string> = {}) {
  return postFrom(t, ip, '/oauth2/token', { grant_type: 'client_credentials' }, { authorization: basic(id, secret), ...headers });
}

/** The exact over-the-limit answer: 429, Retry-After in whole seconds, the RFC 6749 §5.2 body. */
export function expectTooMany(res: LightMyRequestResponse, retryAfter: number): void {
  expect(res.statusCode).toBe(429);
  expect(res.headers['retry-after']).toBe(String(retryAfter));
  expect(res.headers['cache-control']).toBe('no-store');
  expect(res.json()).toStrictEqual(TOO_MANY);
}

export const REDIS_URL = process.env.M2M_AUTH_TEST_REDIS_URL;

/** A key prefix of our own on the shared Redis. */
export function randomPrefix(): string {
  return `m2m-auth-test-${randomBytes(6).toString('hex')}:`;
}

/** Every key under `prefix`, with its remaining time to live (ms). */
export async function keysUnder(url: string, prefix: string): Promise<Map<string, number>> {
  const redis = new Redis(url, { lazyConnect: true });
  await redis.connect();
  try {
    const out = new Map<string, number>();
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
      cursor = next;
      for (const k of keys) out.set(k, await redis.pttl(k));
    } while (cursor !== '0');
    return out;
  } finally {
    redis.disconnect();
  }
}

/** Deletes every key under `prefix` (only ours: the prefix is random per run). */
export async function deleteKeysUnder(url: string, prefix: string): Promise<void> {
  const keys = [...(await keysUnder(url, prefix)).keys()];
  if (keys.length === 0) return;
  const redis = new Redis(url, { lazyConnect: true });
  await redis.connect();
  try {
    await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}

export interface PrivateRedis {
  url: string;
  child: ChildProcess;
  /** SIGSTOP: connected but never answering. */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

/** A redis-server of our own on a reserved port (see reservedPort), without persistence; never the shared one. */
export async function startPrivateRedis(): Promise<PrivateRedis> {
  const port = await reservedPort();
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  });
  const url = `redis://127.0.0.1:${port}`;
  const deadline = Date.now() + 5000;
  for (;;) {
    const probe = new Redis(url, { lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    probe.on('error', () => undefined);
    try {
      await probe.connect();
      await probe.ping();
      probe.disconnect();
      break;
    } catch {
      probe.disconnect();
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error('private redis-server did not start');
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  let exited = false;
  const exit = new Promise<void>((resolve) => child.once('exit', () => {
    exited = true;
    resolve();
  }));
  return {
    url,
    child,
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    async stop() {
      if (exited) return;
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exit;
    },
  };
}

/** Polls `condition` every 10 ms until it holds or `ms` pass. */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Log lines (JSON) whose msg contains `text`. */
export function logLines(logs: string[], text: string): Array<Record<string, unknown>> {
  return logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => typeof l.msg === 'string' && l.msg.includes(text));
}
