// Attribution of profile samples to components by the source files on their stacks.

import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { cpuBreakdown, frameComponent, heapBreakdown, stackComponent } from '../../src/profiling/components.js';
import type { CallFrame, CpuProfile, SamplingHeapProfile } from '../../src/observability/profiles/inspector.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function frame(functionName: string, url: string): CallFrame {
  return { functionName, url, scriptId: '0', lineNumber: 0, columnNumber: 0 };
}

const own = (path: string): string => `file://${SRC}${path}`;

describe('frameComponent', () => {
  it.each([
    [own('keys/jwt.ts'), 'token_signing'],
    ['node:internal/crypto/sig', 'token_signing'],
    [own('oauth/client-auth/basic.ts'), 'client_auth'],
    [own('clients/registry.ts'), 'client_auth'],
    [own('storage/sqlite/clients.ts'), 'storage'],
    ['/app/node_modules/better-sqlite3/lib/methods/wrappers.js', 'storage'],
    [own('observability/logger.ts'), 'logging'],
    ['file:///app/node_modules/pino/lib/tools.js', 'logging'],
    ['/app/node_modules/sonic-boom/index.js', 'logging'],
    [own('http/public-app.ts'), 'http'],
    [own('oauth/request/form.ts'), 'http'],
    ['node:_http_server', 'http'],
    ['/app/node_modules/fastify/lib/route.js', 'http'],
    ['/app/node_modules/find-my-way/index.js', 'http'],
    ['/app/node_modules/light-my-request/index.js', 'http'],
    [own('oauth/token/token-endpoint.ts'), 'oauth'],
    [own('loadtest/run.ts'), 'load_generator'],
    ['/app/node_modules/undici/lib/dispatcher/client-h1.js', 'load_generator'],
  ])('%s is %s', (url, component) => {
    expect(frameComponent(frame('f', url))).toBe(component);
  });

  it('says nothing about generic Node internals and native frames', () => {
    expect(frameComponent(frame('emit', 'node:events'))).toBeUndefined();
    expect(frameComponent(frame('writev', ''))).toBeUndefined();
    // Another package's src/keys is not ours.
    expect(frameComponent(frame('f', '/app/node_modules/other/src/keys/x.js'))).toBeUndefined();
  });

  it('knows the VM pseudo-frames', () => {
    expect(frameComponent(frame('(garbage collector)', ''))).toBe('gc');
    expect(frameComponent(frame('(idle)', ''))).toBe('idle');
    expect(frameComponent(frame('(program)', ''))).toBeUndefined();
  });
});

describe('stackComponent', () => {
  it('takes the frame nearest the leaf that names a component', () => {
    const stack = [frame('writeString', ''), frame('write', '/app/node_modules/sonic-boom/index.js'), frame('onResponse', own('http/public-app.ts'))];
    expect(stackComponent(stack)).toBe('logging');
    expect(stackComponent([frame('sign', ''), frame('sign', 'node:internal/crypto/sig'), frame('issue', own('oauth/token/token-endpoint.ts'))])).toBe('token_signing');
  });

  it('gives a stack with any load-generator frame to the load generator', () => {
    expect(stackComponent([frame('verify', 'node:internal/crypto/sig'), frame('check', own('loadtest/token-check.ts'))])).toBe('load_generator');
  });

  it('is other when no frame names a component', () => {
    expect(stackComponent([frame('(program)', '')])).toBe('other');
    expect(stackComponent([frame('emit', 'node:events'), frame('processTicksAndRejections', 'node:internal/process/task_queues')])).toBe('other');
  });
});

describe('breakdowns', () => {
  // (root) -> handler (src/http) -> sign (src/keys); (root) -> (idle); (root) -> (garbage collector)
  const profile: CpuProfile = {
    startTime: 0,
    endTime: 10_000,
    nodes: [
      { id: 1, callFrame: frame('(root)', ''), children: [2, 4, 5] },
      { id: 2, callFrame: frame('handler', own('http/public-app.ts')), children: [3] },
      { id: 3, callFrame: frame('sign', own('keys/jwt.ts')), children: [] },
      { id: 4, callFrame: frame('(idle)', ''), children: [] },
      { id: 5, callFrame: frame('(garbage collector)', ''), children: [] },
    ],
    // Each sample stands for the delta to the next one; the last one for the mean interval (10000/5).
    samples: [3, 3, 2, 4, 5],
    timeDeltas: [0, 1000, 2000, 3000, 1000],
  };

  it('splits CPU self time by component, idle apart', () => {
    const b = cpuBreakdown(profile);
    const by = Object.fromEntries(b.components.map((c) => [c.component, c.value]));
    expect(by).toEqual({ token_signing: 1000 + 2000, http: 3000, idle: 1000, gc: 2000 });
    expect(b.totalUs).toBe(9000);
    expect(b.busyUs).toBe(8000);
    expect(b.components.reduce((a, c) => a + c.share, 0)).toBeCloseTo(1, 10);
    expect(b.topFunctions[0]).toMatchObject({ name: 'sign', component: 'token_signing', selfUs: 3000 });
    expect(b.topFunctions.some((f) => f.name === '(idle)')).toBe(false);
  });

  it('splits sampled heap bytes by component through each node\'s stack', () => {
    const heap: SamplingHeapProfile = {
      head: {
        id: 1, callFrame: frame('(root)', ''), selfSize: 0, children: [
          { id: 2, callFrame: frame('handler', own('http/public-app.ts')), selfSize: 100, children: [
            { id: 3, callFrame: frame('info', '/app/node_modules/pino/pino.js'), selfSize: 50, children: [] },
          ] },
          { id: 4, callFrame: frame('run', own('loadtest/run.ts')), selfSize: 25, children: [] },
        ],
      },
    };
    const b = heapBreakdown(heap);
    expect(b.totalBytes).toBe(175);
    expect(Object.fromEntries(b.components.map((c) => [c.component, c.value]))).toEqual({ http: 100, logging: 50, load_generator: 25 });
  });
});
