// Which part of the system a profile sample belongs to, decided from the source file of the
// frames on its stack: CPU self time and allocated bytes broken down by component.

import { fileURLToPath } from 'node:url';
import type { CallFrame, CpuProfile, SamplingHeapProfile, SamplingHeapProfileNode } from '../observability/profiles/inspector.js';
import { cpuStacks, selfTimeByNode } from '../observability/profiles/pprof.js';

export type Component =
  | 'http'
  | 'client_auth'
  | 'token_signing'
  | 'oauth'
  | 'storage'
  | 'logging'
  | 'load_generator'
  | 'gc'
  | 'idle'
  | 'other';

export const COMPONENTS: readonly Component[] = [
  'http', 'client_auth', 'token_signing', 'oauth', 'storage', 'logging', 'load_generator', 'gc', 'idle', 'other',
];

export const COMPONENT_LABELS: Readonly<Record<Component, string>> = {
  http: 'HTTP and parsing (node:_http*, fastify, light-my-request, find-my-way, src/http, src/oauth/request)',
  client_auth: 'Client authentication (src/oauth/client-auth, src/clients)',
  token_signing: 'Token signing (src/keys, node:crypto sign)',
  oauth: 'OAuth endpoint logic (other src/oauth, src/admin, src/server)',
  storage: 'Storage (src/storage, better-sqlite3)',
  logging: 'Logging (pino, sonic-boom, src/observability)',
  load_generator: 'Load generator and profiler (undici, src/loadtest, src/profiling)',
  gc: 'Garbage collection',
  idle: 'Idle (waiting for I/O)',
  other: 'Other: VM, Node internals and native code with no attributable caller',
};

// This package's code: the folder holding profiling/ (src/ under vitest, dist/ or any other
// build output when compiled).
const CODE_ROOT = fileURLToPath(new URL('..', import.meta.url));
// Shown paths are relative to the package (the folder above the code).
const PACKAGE_ROOT = fileURLToPath(new URL('../..', import.meta.url));

function ownPath(path: string): string | undefined {
  return path.startsWith(CODE_ROOT) ? path.slice(CODE_ROOT.length) : undefined;
}

function filePath(url: string): string {
  if (url.startsWith('file://')) {
    try {
      return fileURLToPath(url);
    } catch {
      return url;
    }
  }
  return url;
}

const HTTP_PACKAGES = /\/node_modules\/(?:fastify|@fastify\/[^/]+|light-my-request|find-my-way|avvio|fast-json-stringify|secure-json-parse|fast-querystring|fast-decode-uri-component|toad-cache|proxy-addr|forwarded|ipaddr\.js|content-type|process-warning|abstract-logging|safe-regex2|ret|rfdc|fastq|reusify|fast-content-type-parse|fast-uri|json-schema-ref-resolver)\//;
const LOGGING_PACKAGES = /\/node_modules\/(?:pino|sonic-boom|thread-stream|pino-std-serializers|@pinojs\/[^/]+|fast-redact|quick-format-unescaped|fast-safe-stringify|atomic-sleep|on-exit-leak-free|safe-stable-stringify|real-require)\//;
const LOAD_GENERATOR_PACKAGES = /\/node_modules\/undici\/|^node:internal\/deps\/undici\//;
const STORAGE_PACKAGES = /\/node_modules\/better-sqlite3\//;

/** The component a single frame names, or undefined for a frame that says nothing by itself. */
export function frameComponent(frame: Pick<CallFrame, 'url' | 'functionName'>): Component | undefined {
  const url = frame.url;
  if (url === '') {
    if (frame.functionName === '(garbage collector)') return 'gc';
    if (frame.functionName === '(idle)') return 'idle';
    return undefined;
  }
  const path = filePath(url);
  const own = ownPath(path);
  if (own !== undefined) {
    if (/^(?:loadtest|profiling)\//.test(own)) return 'load_generator';
    if (/^observability\//.test(own)) return 'logging';
    if (/^storage\//.test(own)) return 'storage';
    if (/^(?:oauth\/client-auth|clients)\//.test(own)) return 'client_auth';
    if (/^keys\//.test(own)) return 'token_signing';
    if (/^(?:http|oauth\/request)\//.test(own)) return 'http';
    if (/^(?:oauth|admin)\/|^server\.[jt]s$/.test(own)) return 'oauth';
    return undefined;
  }
  if (LOAD_GENERATOR_PACKAGES.test(path)) return 'load_generator';
  if (LOGGING_PACKAGES.test(path)) return 'logging';
  if (STORAGE_PACKAGES.test(path)) return 'storage';
  if (HTTP_PACKAGES.test(path)) return 'http';
  if (path === 'node:internal/crypto/sig') return 'token_signing';
  if (/^node:_http_|^node:internal\/http/.test(path)) return 'http';
  return undefined;
}

/**
 * The component of a stack given leaf first. Requests made by the load generator are its cost
 * wherever they end (a socket write, a signature check); otherwise the frame nearest the leaf that
 * names a component decides, so logging called from a Fastify hook counts as logging.
 */
export function stackComponent(stack: ReadonlyArray<Pick<CallFrame, 'url' | 'functionName'>>): Component {
  let nearest: Component | undefined;
  for (const frame of stack) {
    const c = frameComponent(frame);
    if (c === 'load_generator') return c;
    nearest ??= c;
  }
  return nearest ?? 'other';
}

export interface ComponentShare {
  component: Component;
  label: string;
  /** Microseconds (CPU) or bytes (heap). */
  value: number;
  /** Share of the total, 0..1. */
  share: number;
}

function shares(totals: Map<Component, number>): ComponentShare[] {
  const sum = [...totals.values()].reduce((a, b) => a + b, 0);
  return COMPONENTS.filter((c) => (totals.get(c) ?? 0) > 0)
    .map((c) => ({ component: c, label: COMPONENT_LABELS[c], value: totals.get(c)!, share: sum > 0 ? totals.get(c)! / sum : 0 }))
    .sort((a, b) => b.value - a.value);
}

export interface CpuBreakdown {
  totalUs: number;
  /** Total minus idle. */
  busyUs: number;
  components: ComponentShare[];
  /** Functions by self time, largest first. */
  topFunctions: Array<{ name: string; location: string; component: Component; selfUs: number; share: number }>;
}

function location(frame: CallFrame): string {
  if (frame.url === '') return '(native)';
  const path = filePath(frame.url);
  const shown = ownPath(path) !== undefined && path.startsWith(PACKAGE_ROOT)
    ? path.slice(PACKAGE_ROOT.length)
    : path.replace(/^.*\/node_modules\//, '');
  return `${shown}:${frame.lineNumber + 1}`;
}

export function cpuBreakdown(profile: CpuProfile, top = 15): CpuBreakdown {
  const time = selfTimeByNode(profile);
  const stacks = cpuStacks(profile);
  const totals = new Map<Component, number>();
  const functions = new Map<string, { name: string; location: string; component: Component; selfUs: number }>();
  let total = 0;
  for (const [id, us] of time) {
    const stack = stacks.get(id) ?? [];
    const component = stackComponent(stack.map((n) => n.callFrame));
    totals.set(component, (totals.get(component) ?? 0) + us);
    total += us;
    const frame = stack[0]?.callFrame;
    if (frame === undefined) continue;
    const name = frame.functionName || '(anonymous)';
    const loc = location(frame);
    const key = `${name}\u0000${loc}\u0000${component}`;
    const entry = functions.get(key) ?? { name, location: loc, component, selfUs: 0 };
    entry.selfUs += us;
    functions.set(key, entry);
  }
  const idle = totals.get('idle') ?? 0;
  return {
    totalUs: total,
    busyUs: total - idle,
    components: shares(totals),
    topFunctions: [...functions.values()]
      .filter((f) => f.component !== 'idle')
      .sort((a, b) => b.selfUs - a.selfUs)
      .slice(0, top)
      .map((f) => ({ ...f, share: total - idle > 0 ? f.selfUs / (total - idle) : 0 })),
  };
}

export interface HeapBreakdown {
  totalBytes: number;
  components: ComponentShare[];
}

/** Sampled bytes by component, each node's selfSize attributed through its stack. */
export function heapBreakdown(profile: SamplingHeapProfile): HeapBreakdown {
  const totals = new Map<Component, number>();
  let total = 0;
  const walk = (node: SamplingHeapProfileNode, stack: CallFrame[]): void => {
    const here = node.callFrame.functionName === '(root)' && stack.length === 0 ? stack : [node.callFrame, ...stack];
    if (node.selfSize > 0) {
      const c = stackComponent(here);
      totals.set(c, (totals.get(c) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const child of node.children) walk(child, here);
  };
  walk(profile.head, []);
  return { totalBytes: total, components: shares(totals) };
}
