// Which part of the system a profile sample belongs to, decided from the source file of the
// frames on its stack (the server's modules by a tested table, its dependencies by package): CPU
// self time and allocated bytes broken down by component.

import { existsSync } from 'node:fs';
import { dirname, join, resolve as resolvePath, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CallFrame, CpuProfile, CpuProfileNode, SamplingHeapProfile, SamplingHeapProfileNode } from './devtools-profile.js';

export type Component =
  | 'http'
  | 'client_auth'
  | 'token_signing'
  | 'oauth'
  | 'storage'
  | 'logging'
  | 'profiler'
  | 'load_generator'
  | 'gc'
  | 'idle'
  | 'other';

export const COMPONENTS: readonly Component[] = [
  'http', 'client_auth', 'token_signing', 'oauth', 'storage', 'logging', 'profiler', 'load_generator', 'gc', 'idle', 'other',
];

export const COMPONENT_LABELS: Readonly<Record<Component, string>> = {
  http: 'HTTP and parsing (node:_http*, fastify, light-my-request, find-my-way; the server\'s http/, oauth/request/)',
  client_auth: 'Client authentication (the server\'s oauth/client-auth/, clients/, trusts/, federation/, ground/bytes)',
  token_signing: 'Token signing (the server\'s keys/, node:crypto sign)',
  oauth: 'OAuth endpoint logic (the server\'s other oauth/, limits/, admin/, ground/, config/, cli/, server)',
  storage: 'Storage (the server\'s storage/ and sync/, better-sqlite3)',
  logging: 'Logging and metrics (pino, sonic-boom; the server\'s observability/)',
  profiler: 'The server\'s own profiler and debug endpoints (its observability/profiles/, admin/pprof-routes)',
  load_generator: 'Load generator (undici, the tools package): runs in another process, so none is expected in the server\'s profile',
  gc: 'Garbage collection',
  idle: 'Idle (waiting for I/O)',
  other: 'Other: VM, Node internals and native code with no attributable caller',
};

/**
 * The server's modules by component: a module path (relative to the server's code folder, without
 * extension) takes the component of its longest listed prefix. Tested against the server package's
 * source tree: every module of it is listed, and every entry names modules that exist, so a move
 * in the server that this table does not follow fails a test instead of changing the reports.
 */
export const SERVER_MODULES: Readonly<Record<string, Component>> = Object.freeze({
  http: 'http',
  'oauth/request': 'http',
  'oauth/client-auth': 'client_auth',
  clients: 'client_auth',
  trusts: 'client_auth',
  federation: 'client_auth',
  'ground/bytes': 'client_auth',
  keys: 'token_signing',
  oauth: 'oauth',
  limits: 'oauth',
  admin: 'oauth',
  ground: 'oauth',
  config: 'oauth',
  cli: 'oauth',
  server: 'oauth',
  index: 'oauth',
  storage: 'storage',
  sync: 'storage',
  observability: 'logging',
  'observability/profiles': 'profiler',
  'admin/pprof-routes': 'profiler',
  // The SDK's entry points, re-exported by the server (m2m-auth/client, m2m-auth/verify).
  client: 'other',
  verify: 'other',
});

/** The component of a server module path (e.g. `oauth/token/reuse`), by its longest listed prefix. */
export function serverModuleComponent(modulePath: string): Component | undefined {
  let key = modulePath;
  for (;;) {
    const c = SERVER_MODULES[key];
    if (c !== undefined && Object.hasOwn(SERVER_MODULES, key)) return c;
    const slash = key.lastIndexOf('/');
    if (slash === -1) return undefined;
    key = key.slice(0, slash);
  }
}

// This package's own code (the tools: load generator and profiler): the folder holding profiling/
// (src/ under vitest, dist/ when compiled).
const OWN_CODE = fileURLToPath(new URL('..', import.meta.url));

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

/** The folder of a module path below `root`, without extension, or undefined when not below it (or in node_modules). */
function below(root: string, path: string): string | undefined {
  if (!path.startsWith(root)) return undefined;
  const rel = path.slice(root.length);
  if (rel.startsWith('node_modules/') || rel.includes('/node_modules/')) return undefined;
  return rel.replace(/\.[cm]?[jt]s$/, '');
}

/**
 * The server's code folder for its command's entry (e.g. `.../m2m-auth/dist/cli/main.js` gives
 * `.../m2m-auth/dist/`): the folder right below the package root (the nearest package.json) that
 * holds the entry.
 */
export function serverCodeRoot(entry: string): string {
  let dir = dirname(resolvePath(entry));
  let child: string | undefined;
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) return `${dirname(resolvePath(entry))}${sep}`;
    child = dir;
    dir = up;
  }
  return `${child ?? dir}${sep}`;
}

const HTTP_PACKAGES = /\/node_modules\/(?:fastify|@fastify\/[^/]+|light-my-request|find-my-way|avvio|fast-json-stringify|secure-json-parse|fast-querystring|fast-decode-uri-component|toad-cache|proxy-addr|forwarded|ipaddr\.js|content-type|process-warning|abstract-logging|safe-regex2|ret|rfdc|fastq|reusify|fast-content-type-parse|fast-uri|json-schema-ref-resolver)\//;
const LOGGING_PACKAGES = /\/node_modules\/(?:pino|sonic-boom|thread-stream|pino-std-serializers|@pinojs\/[^/]+|fast-redact|quick-format-unescaped|fast-safe-stringify|atomic-sleep|on-exit-leak-free|safe-stable-stringify|real-require|prom-client)\//;
const LOAD_GENERATOR_PACKAGES = /\/node_modules\/undici\/|^node:internal\/deps\/undici\//;
const STORAGE_PACKAGES = /\/node_modules\/better-sqlite3\//;

/** Which component a frame, or a stack, belongs to: the server's modules by SERVER_MODULES, its dependencies by package. */
export class Attribution {
  readonly #server: string | undefined;
  /** Where shown paths start: the server's package root. */
  readonly #shownFrom: string | undefined;

  /** `serverCode`: the server's code folder (serverCodeRoot); without it only dependencies and this package are known. */
  constructor(serverCode?: string) {
    this.#server = serverCode === undefined ? undefined : serverCode.endsWith(sep) ? serverCode : `${serverCode}${sep}`;
    this.#shownFrom = this.#server === undefined ? undefined : `${dirname(this.#server)}${sep}`;
  }

  /** The component a single frame names, or undefined for a frame that says nothing by itself. */
  frame(frame: Pick<CallFrame, 'url' | 'functionName'>): Component | undefined {
    const url = frame.url;
    if (url === '') {
      if (frame.functionName === '(garbage collector)') return 'gc';
      if (frame.functionName === '(idle)') return 'idle';
      return undefined;
    }
    const path = filePath(url);
    const server = this.#server === undefined ? undefined : below(this.#server, path);
    const listed = server === undefined ? undefined : serverModuleComponent(server);
    if (listed !== undefined) return listed;
    if (below(OWN_CODE, path) !== undefined) return 'load_generator';
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
  stack(stack: ReadonlyArray<Pick<CallFrame, 'url' | 'functionName'>>): Component {
    let nearest: Component | undefined;
    for (const frame of stack) {
      const c = this.frame(frame);
      if (c === 'load_generator' || c === 'profiler') return c;
      nearest ??= c;
    }
    return nearest ?? 'other';
  }

  /** A frame's place as shown in the report: a path below the server package, or below node_modules. */
  location(frame: CallFrame): string {
    if (frame.url === '') return '(native)';
    const path = filePath(frame.url);
    const shown = this.#shownFrom !== undefined && path.startsWith(this.#shownFrom) && !path.includes('/node_modules/')
      ? path.slice(this.#shownFrom.length)
      : path.replace(/^.*\/node_modules\//, '');
    return `${shown}:${frame.lineNumber + 1}`;
  }
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

/**
 * Time each sample stands for, in microseconds: the delta to the next sample (the last one gets
 * the mean interval). Returns per-node totals.
 */
export function selfTimeByNode(profile: CpuProfile): Map<number, number> {
  const out = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  const n = samples.length;
  const mean = n > 0 ? (profile.endTime - profile.startTime) / n : 0;
  for (let i = 0; i < n; i++) {
    const next = deltas[i + 1];
    const us = next !== undefined && next >= 0 ? next : mean;
    out.set(samples[i]!, (out.get(samples[i]!) ?? 0) + us);
  }
  return out;
}

/** Leaf-first stacks of every node of a CPU profile (the root excluded). */
export function cpuStacks(profile: CpuProfile): Map<number, CpuProfileNode[]> {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const stacks = new Map<number, CpuProfileNode[]>();
  const stackOf = (id: number): CpuProfileNode[] => {
    const known = stacks.get(id);
    if (known) return known;
    const node = byId.get(id)!;
    const up = parent.get(id);
    const stack = node.callFrame.functionName === '(root)' ? [] : [node, ...(up === undefined ? [] : stackOf(up))];
    stacks.set(id, stack);
    return stack;
  };
  for (const n of profile.nodes) stackOf(n.id);
  return stacks;
}

export interface CpuBreakdown {
  totalUs: number;
  /** Total minus idle. */
  busyUs: number;
  components: ComponentShare[];
  /** Functions by self time, largest first. */
  topFunctions: Array<{ name: string; location: string; component: Component; selfUs: number; share: number }>;
}

export function cpuBreakdown(profile: CpuProfile, attribution: Attribution, top = 15): CpuBreakdown {
  const time = selfTimeByNode(profile);
  const stacks = cpuStacks(profile);
  const totals = new Map<Component, number>();
  const functions = new Map<string, { name: string; location: string; component: Component; selfUs: number }>();
  let total = 0;
  for (const [id, us] of time) {
    const stack = stacks.get(id) ?? [];
    const component = attribution.stack(stack.map((n) => n.callFrame));
    totals.set(component, (totals.get(component) ?? 0) + us);
    total += us;
    const frame = stack[0]?.callFrame;
    if (frame === undefined) continue;
    const name = frame.functionName || '(anonymous)';
    const loc = attribution.location(frame);
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
export function heapBreakdown(profile: SamplingHeapProfile, attribution: Attribution): HeapBreakdown {
  const totals = new Map<Component, number>();
  let total = 0;
  const walk = (node: SamplingHeapProfileNode, stack: CallFrame[]): void => {
    const here = node.callFrame.functionName === '(root)' && stack.length === 0 ? stack : [node.callFrame, ...stack];
    if (node.selfSize > 0) {
      const c = attribution.stack(here);
      totals.set(c, (totals.get(c) ?? 0) + node.selfSize);
      total += node.selfSize;
    }
    for (const child of node.children) walk(child, here);
  };
  walk(profile.head, []);
  return { totalBytes: total, components: shares(totals) };
}
