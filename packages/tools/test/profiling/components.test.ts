// Attribution of profile samples to components by the source files on their stacks: the server's
// modules by SERVER_MODULES, checked here against the server's source tree, its dependencies by package.

import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Attribution, cpuBreakdown, heapBreakdown, SERVER_MODULES, serverCodeRoot, serverModuleComponent } from '../../src/profiling/components.js';
import type { CallFrame, CpuProfile, SamplingHeapProfile } from '../../src/profiling/devtools-profile.js';

import { SERVER_SRC } from '../helpers/server.js';

/** The server's source: the modules SERVER_MODULES lists, and what frames of its own code look like here. */
const SRC = SERVER_SRC;
/** This package's own source (the load generator and the profiler). */
const TOOLS_SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const attribution = new Attribution(SRC);
const frameComponent = (f: CallFrame) => attribution.frame(f);
const stackComponent = (stack: CallFrame[]) => attribution.stack(stack);

function frame(functionName: string, url: string): CallFrame {
  return { functionName, url, scriptId: '0', lineNumber: 0, columnNumber: 0 };
}

const own = (path: string): string => `file://${SRC}${path}`;
const tool = (path: string): string => `file://${TOOLS_SRC}${path}`;

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
    [tool('loadtest/run.ts'), 'load_generator'],
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
    expect(stackComponent([frame('verify', 'node:internal/crypto/sig'), frame('check', tool('loadtest/token-check.ts'))])).toBe('load_generator');
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
    const b = cpuBreakdown(profile, attribution);
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
          { id: 4, callFrame: frame('run', tool('loadtest/run.ts')), selfSize: 25, children: [] },
        ],
      },
    };
    const b = heapBreakdown(heap, attribution);
    expect(b.totalBytes).toBe(175);
    expect(Object.fromEntries(b.components.map((c) => [c.component, c.value]))).toEqual({ http: 100, logging: 50, load_generator: 25 });
  });
});

describe('SERVER_MODULES, the table of the server\'s modules', () => {
  /** Module paths of the server's source tree, without extension. */
  function serverModules(dir = SRC): string[] {
    return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
      const path = join(dir, e.name);
      const rel = relative(SRC, path);
      if (e.isDirectory()) return serverModules(path);
      return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [rel.replace(/\.ts$/, '')] : [];
    });
  }

  it('gives every module of the server a component', () => {
    const modules = serverModules();
    expect(modules.length).toBeGreaterThan(50);
    expect(modules.filter((m) => serverModuleComponent(m) === undefined)).toEqual([]);
  });

  it('names only modules that exist', () => {
    const modules = serverModules();
    const unused = Object.keys(SERVER_MODULES).filter((key) => !modules.some((m) => m === key || m.startsWith(`${key}/`)));
    expect(unused).toEqual([]);
  });

  it('takes the longest listed prefix', () => {
    expect(serverModuleComponent('observability/logger')).toBe('logging');
    expect(serverModuleComponent('observability/profiles/pprof')).toBe('profiler');
    expect(serverModuleComponent('oauth/request/form')).toBe('http');
    expect(serverModuleComponent('oauth/token/reuse')).toBe('oauth');
    expect(serverModuleComponent('nowhere/x')).toBeUndefined();
  });

  it('finds the server\'s code folder from its command\'s entry', () => {
    expect(serverCodeRoot(join(SRC, 'cli', 'main.ts'))).toBe(SRC);
  });
});
