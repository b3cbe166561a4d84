// The debug endpoints as createServer wires them from the configuration (M2M_AUTH_PPROF).

import { afterEach, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../helpers/server.js';

let s: TestServer | undefined;

afterEach(async () => {
  await s?.close();
  s = undefined;
});

describe('createServer and M2M_AUTH_PPROF', () => {
  it('serves no debug endpoint by default', async () => {
    s = await startTestServer();
    expect(s.config.pprof).toBe(false);
    expect((await s.admin({ method: 'GET', url: '/debug/pprof/heap' })).statusCode).toBe(404);
  });

  it('serves them on the admin listener, behind the admin token, when on', async () => {
    s = await startTestServer({ pprof: true });
    const heap = await s.admin({ method: 'GET', url: '/debug/pprof/heap' });
    expect(heap.statusCode).toBe(200);
    expect(heap.headers['content-type']).toBe('application/octet-stream');
    const anonymous = await s.server.adminApp.inject({ method: 'GET', url: '/debug/pprof/heap' });
    expect(anonymous.statusCode).toBe(401);
    expect((await s.admin({ method: 'GET', url: '/debug/pprof/profile?seconds=0' })).statusCode).toBe(400);
    // Never on the public listener.
    expect((await s.inject({ method: 'GET', url: '/debug/pprof/heap' })).statusCode).toBe(404);
  });
});
