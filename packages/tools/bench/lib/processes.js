// Child processes of a benchmark run: servers pinned to a core, helpers on the other core, and
// their clean-up. Only processes started here (and the workers they fork) are ever signalled.

import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';

const children = new Set();
/** The children spawned detached: each leads a process group. */
const leaders = new WeakSet();

/** Remembers a child so that killAll() ends it; forgets it once it exits. */
export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/** Signals the child's whole process group (it leads one: spawned detached), so workers it forked go too. */
function signalGroup(child, signal) {
  if (!leaders.has(child)) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // the group is gone already
  }
}

/** True when `taskset` (util-linux) is on the PATH. */
export function haveTaskset() {
  return !spawnSync('taskset', ['--version'], { stdio: 'ignore' }).error;
}

/** Moves this process (every thread) to one core; false if that failed. */
export function pinSelf(cpu) {
  const r = spawnSync('taskset', ['-a', '-cp', String(cpu), String(process.pid)], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

/** A TCP port free right now on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/**
 * Starts `node <args>` in its own process group, pinned with taskset when `cpu` is given
 * (taskset execs node, so the pid is node's). stdout goes to `stdout` ('pipe' or a file descriptor).
 */
export function startNode(args, { cpu = null, env = process.env, stdout = 'pipe', cwd } = {}) {
  const [cmd, argv] = cpu === null ? [process.execPath, args] : ['taskset', ['-c', String(cpu), process.execPath, ...args]];
  const child = track(spawn(cmd, argv, { env, cwd, stdio: ['ignore', stdout, 'pipe'], detached: true }));
  leaders.add(child);
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr += d;
    if (stderr.length > 64 * 1024) stderr = stderr.slice(-32 * 1024);
  });
  return { child, pid: child.pid, stderr: () => stderr };
}

/** The first line the child prints on stdout, parsed as JSON. */
export function firstJsonLine(proc, timeoutMs = 20_000) {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: proc.child.stdout });
    const timer = setTimeout(() => reject(new Error(`no start-up line within ${timeoutMs} ms\n${proc.stderr()}`)), timeoutMs);
    rl.once('line', (line) => {
      clearTimeout(timer);
      rl.close();
      proc.child.stdout.resume();
      try {
        resolve(JSON.parse(line));
      } catch {
        reject(new Error(`unexpected start-up line: ${line}`));
      }
    });
    proc.child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited with ${code} before starting\n${proc.stderr()}`));
    });
  });
}

/** Polls `url` until it answers 200. */
export async function waitForHttp(url, proc, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc.child.exitCode !== null) throw new Error(`exited with ${proc.child.exitCode} before ready\n${proc.stderr()}`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${url} not ready within ${timeoutMs} ms\n${proc.stderr()}`);
    await sleep(100);
  }
}

/** VmRSS and VmHWM (peak) of a process in bytes, from /proc (Linux). */
export function readMemory(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1]) * 1024;
    return { rss: kb('VmRSS'), peak: kb('VmHWM') };
  } catch {
    return { rss: NaN, peak: NaN };
  }
}

/**
 * SIGTERM to the child (a graceful stop), SIGKILL to its group after `graceMs`; then SIGKILL to
 * whatever of its group is left (forked workers). Resolves when the child has exited.
 */
export async function stop(proc, graceMs = 5000) {
  const { child } = proc;
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => signalGroup(child, 'SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
  signalGroup(child, 'SIGKILL');
}

/** Kills every child still running, with its group (on an error or Ctrl-C). */
export function killAll() {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    signalGroup(child, 'SIGKILL');
  }
}

/** Runs `node <args>` to completion (pinned when `cpu` is given) and parses its stdout as JSON. */
export function runNodeJson(args, { cpu = null, env = process.env, timeoutMs = 120_000 } = {}) {
  return new Promise((resolve, reject) => {
    const proc = startNode(args, { cpu, env });
    let out = '';
    proc.child.stdout.on('data', (d) => (out += d));
    const timer = setTimeout(() => proc.child.kill('SIGKILL'), timeoutMs);
    proc.child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`node ${args.join(' ')} ended with ${code ?? signal}\n${proc.stderr()}`));
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch {
        reject(new Error(`node ${args.join(' ')} printed no JSON:\n${out}${proc.stderr()}`));
      }
    });
  });
}
