// The pprof debug endpoints and the runtime window on an admin listener built as server.ts builds it
// (the same Fastify options, the admin routes, then registerPprofRoutes), over a real socket.

import { randomBytes } from 'node:crypto';
import { gunzipSync } from 'node:zlib';
import Fastify, { type FastifyInstance } from 'fastify';
import pino from 'pino';
import { Profile } from 'pprof-format';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerAdminRoutes } from '../../src/admin/routes.js';
import { ClientRegistry } from '../../src/clients/registry.js';
import { fastifyOptions } from '../../src/http/fastify-options.js';
import { EventBus } from '../../src/observability/events.js';
import { registerPprofRoutes } from '../../src/admin/pprof-routes.js';
import { openStorage } from '../../src/storage/open.js';
import { TrustRegistry } from '../../src/trusts/registry.js';
import type { Storage } from '../../src/storage/types.js';

const TOKEN = randomBytes(32).toString('base64url');

interface AdminListener {
  app: FastifyInstance;
  url: string;
  events: EventBus;
  /** Resolves once a request for `path` has reached its handler. */
  reached(path: string): Promise<void>;
}

let storage: Storage;

async function adminListener(enabled: boolean): Promise<AdminListener> {
  const events = new EventBus();
  const app = Fastify(fastifyOptions(pino({ level: 'silent' }), 65536)) as unknown as FastifyInstance;
  // The handler runs right after preHandler with nothing awaited before its claim of the profiler,
  // so a request that reached preHandler holds the profiler before any later request is read.
  const handled: string[] = [];
  app.addHook('preHandler', async (req) => {
    handled.push(req.url.split('?')[0]!);
  });
  const registry = new ClientRegistry(storage.clients, events, { tokenTtlMin: 60, tokenTtlMax: 86400, secretGracePeriod: 0, now: Date.now });
  await registerAdminRoutes(app, { registry, trusts: new TrustRegistry(storage.trusts, events), keys: { list: () => [], rotate: async () => undefined, revoke: async () => ({ revoked: undefined, replacement: undefined }) }, adminToken: TOKEN, events });
  await registerPprofRoutes(app, { adminToken: TOKEN, enabled, events });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  const reached = async (path: string): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!handled.includes(path)) {
      if (Date.now() > deadline) throw new Error(`no request for ${path} reached its handler in 10 s`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  return { app, url, events, reached };
}

/** GET with the admin token, another token, or none (null). */
function get(url: string, token: string | null = TOKEN): Promise<Response> {
  return fetch(url, token === null ? {} : { headers: { authorization: `Bearer ${token}` } });
}

function decodePprof(body: ArrayBuffer): Profile {
  return Profile.decode(gunzipSync(Buffer.from(body)));
}

function sampleTypes(p: Profile): string[] {
  return p.sampleType.map((t) => `${p.stringTable.strings[Number(t.type)]}/${p.stringTable.strings[Number(t.unit)]}`);
}

beforeAll(async () => {
  storage = await openStorage('sqlite::memory:');
});

afterAll(async () => {
  await storage?.close();
});

describe('when M2M_AUTH_PPROF is off', () => {
  let admin: AdminListener;
  beforeAll(async () => {
    admin = await adminListener(false);
  });
  afterAll(async () => {
    await admin?.app.close();
  });

  it('the debug paths do not exist, with or without the token', async () => {
    for (const path of ['/debug/pprof/profile?seconds=1', '/debug/pprof/heap', '/debug/pprof/allocs?seconds=1', '/debug/runtime?seconds=1']) {
      expect((await get(`${admin.url}${path}`)).status).toBe(404);
      expect((await get(`${admin.url}${path}`, null)).status).toBe(404);
    }
  });

  it('the admin API still works', async () => {
    expect((await get(`${admin.url}/admin/clients`)).status).toBe(200);
  });
});

describe('when M2M_AUTH_PPROF is on', () => {
  let admin: AdminListener;
  const failures: string[] = [];
  beforeAll(async () => {
    admin = await adminListener(true);
    admin.events.on('admin.auth_failed', (e) => failures.push(e.reason));
  });
  afterAll(async () => {
    await admin?.app.close();
  });

  it('answers 401 without the admin token, and with a wrong one', async () => {
    const none = await get(`${admin.url}/debug/pprof/heap`, null);
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toBe('Bearer realm="m2m-auth admin"');
    expect(await none.json()).toMatchObject({ error: 'unauthorized' });
    const wrong = await get(`${admin.url}/debug/pprof/profile?seconds=1`, 'x'.repeat(43));
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toContain('error="invalid_token"');
    expect(failures).toEqual(['missing_token', 'invalid_token']);
  });

  it.each(['0', '999', '61', 'abc', '1.5', '-1', ''])('answers 400 to seconds=%s', async (seconds) => {
    const res = await get(`${admin.url}/debug/pprof/profile?seconds=${seconds}`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('a 1-second CPU profile is gzipped pprof with samples and functions; a second one at the same time is 409', async () => {
    const started = Date.now();
    const first = get(`${admin.url}/debug/pprof/profile?seconds=1`);
    // Not a fixed pause: on a busy machine the first request may take longer than that to arrive.
    await admin.reached('/debug/pprof/profile');
    const second = await get(`${admin.url}/debug/pprof/profile?seconds=1`);
    expect(second.status).toBe(409);
    expect(await second.json()).toMatchObject({ error: 'conflict' });
    // Keep the server busy so that the profile has something to show.
    for (let i = 0; i < 20; i++) await get(`${admin.url}/admin/clients`);
    const res = await first;
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
    expect(res.headers.get('content-type')).toBe('application/octet-stream');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="profile.pb.gz"');
    const p = decodePprof(await res.arrayBuffer());
    expect(sampleTypes(p)).toEqual(['samples/count', 'cpu/nanoseconds']);
    expect(p.sample.length).toBeGreaterThan(0);
    expect(p.function.length).toBeGreaterThan(0);
    expect(Number(p.durationNanos)).toBeGreaterThanOrEqual(0.9e9);
  });

  it('the heap profile is gzipped pprof of the sampled live heap', async () => {
    const res = await get(`${admin.url}/debug/pprof/heap`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="heap.pb.gz"');
    const p = decodePprof(await res.arrayBuffer());
    expect(sampleTypes(p)).toEqual(['inuse_samples/count', 'inuse_space/bytes']);
    expect(p.stringTable.strings[Number(p.defaultSampleType)]).toBe('inuse_space');
    expect(Number(p.period)).toBe(512 * 1024);
  });
});

/** DELETE until the server says it ended the recording (the GET may not have reached it yet). */
async function end(url: string): Promise<void> {
  for (let i = 0; i < 250; i++) {
    const res = await fetch(url, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
    if (res.status === 204) return;
    expect(res.status).toBe(404);
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`DELETE ${url} never ended a recording`);
}

describe('allocation profiles, runtime windows, DevTools JSON and ending early', () => {
  let admin: AdminListener;
  beforeAll(async () => {
    admin = await adminListener(true);
  });
  afterAll(async () => {
    await admin?.app.close();
  });

  it('a CPU profile as DevTools JSON', async () => {
    const res = await get(`${admin.url}/debug/pprof/profile?seconds=1&format=devtools&interval=500`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="profile.cpuprofile"');
    const p = (await res.json()) as { nodes: unknown[]; samples: number[]; timeDeltas: number[]; startTime: number; endTime: number };
    expect(p.nodes.length).toBeGreaterThan(0);
    expect(p.timeDeltas).toHaveLength(p.samples.length);
    expect(p.endTime).toBeGreaterThan(p.startTime);
  });

  it('a profile asked for 60 s ends, and answers, when DELETE names it; DELETE with none running is 404', async () => {
    const started = Date.now();
    const pending = get(`${admin.url}/debug/pprof/profile?seconds=60`);
    await end(`${admin.url}/debug/pprof/profile`);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(sampleTypes(decodePprof(await res.arrayBuffer()))).toEqual(['samples/count', 'cpu/nanoseconds']);
    const none = await fetch(`${admin.url}/debug/pprof/profile`, { method: 'DELETE', headers: { authorization: `Bearer ${TOKEN}` } });
    expect(none.status).toBe(404);
    expect(await none.json()).toMatchObject({ error: 'not_found' });
  });

  it('an allocation profile has every allocation sampled; /heap still answers after it', async () => {
    const pending = get(`${admin.url}/debug/pprof/allocs?seconds=60&interval=4096`);
    for (let i = 0; i < 20; i++) await get(`${admin.url}/admin/clients`);
    await end(`${admin.url}/debug/pprof/allocs`);
    const res = await pending;
    expect(res.status).toBe(200);
    expect(res.headers.get('content-disposition')).toBe('attachment; filename="allocs.pb.gz"');
    const p = decodePprof(await res.arrayBuffer());
    expect(sampleTypes(p)).toEqual(['alloc_samples/count', 'alloc_space/bytes']);
    expect(Number(p.period)).toBe(4096);
    expect(p.sample.length).toBeGreaterThan(0);
    const devtools = await get(`${admin.url}/debug/pprof/allocs?seconds=1&format=devtools`);
    expect(((await devtools.json()) as { head: { callFrame: { functionName: string } } }).head.callFrame.functionName).toBe('(root)');
    expect((await get(`${admin.url}/debug/pprof/heap`)).status).toBe(200);
  });

  it('a runtime window: memory, active handles, event loop, GC and samples; one at a time', async () => {
    // Ended early by DELETE, as the profiler ends its windows.
    const pending = get(`${admin.url}/debug/runtime?seconds=60`);
    await end(`${admin.url}/debug/runtime`);
    expect((await pending).status).toBe(200);
    const first = get(`${admin.url}/debug/runtime?seconds=2`);
    // A second window while one runs: refused (or, if the first has not arrived yet, the first is).
    const second = await get(`${admin.url}/debug/runtime?seconds=2`);
    const statuses = [second.status, (await first).status].sort();
    expect(statuses).toEqual([200, 409]);
    const w = (await (second.status === 200 ? second : await first).json()) as {
      durationMs: number; memory: { before: { rss: number }; after: { rss: number } };
      resources: { before: Record<string, number>; max: Record<string, number>; after: Record<string, number> };
      eventLoop: { utilization: number; p99: number }; gc: { count: number; byKind: object }; samples: Array<{ t: number; rss: number }>;
    };
    expect(w.durationMs).toBeGreaterThanOrEqual(1900);
    expect(w.memory.after.rss).toBeGreaterThan(0);
    // The listener itself and the request being answered.
    expect(w.resources.after.TCPServerWrap).toBeGreaterThanOrEqual(1);
    expect(w.resources.max.TCPSocketWrap).toBeGreaterThanOrEqual(1);
    expect(w.eventLoop.utilization).toBeGreaterThanOrEqual(0);
    expect(w.eventLoop.utilization).toBeLessThanOrEqual(1);
    expect(w.gc.count).toBeGreaterThanOrEqual(0);
    expect(w.samples.length).toBeGreaterThanOrEqual(2);
    expect(w.samples[0]!.rss).toBeGreaterThan(0);
  });

  it.each([
    ['/debug/pprof/profile?seconds=1&format=xml'],
    ['/debug/pprof/profile?seconds=1&interval=10'],
    ['/debug/pprof/allocs?seconds=61'],
    ['/debug/pprof/allocs?seconds=1&interval=abc'],
    ['/debug/runtime?seconds=0'],
  ])('answers 400 to %s', async (path) => {
    const res = await get(`${admin.url}${path}`);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('answers 401 without the admin token on every new path and method', async () => {
    for (const path of ['/debug/pprof/allocs?seconds=1', '/debug/runtime?seconds=1']) expect((await get(`${admin.url}${path}`, null)).status).toBe(401);
    for (const path of ['/debug/pprof/profile', '/debug/pprof/allocs', '/debug/runtime']) {
      expect((await fetch(`${admin.url}${path}`, { method: 'DELETE' })).status).toBe(401);
    }
  });
});

describe('closing the server', () => {
  it('ends a CPU profile being taken instead of waiting for it', async () => {
    const admin = await adminListener(true);
    const pending = get(`${admin.url}/debug/pprof/profile?seconds=60`).then((r) => r.status, () => 'closed');
    await admin.reached('/debug/pprof/profile');
    const started = Date.now();
    await admin.app.close();
    expect(Date.now() - started).toBeLessThan(10_000);
    expect([200, 503, 'closed']).toContain(await pending);
  });
});
