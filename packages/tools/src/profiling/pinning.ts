// The server and the load generator on separate CPUs where the machine has them (Linux, taskset):
// the server gets the last CPU this process may run on, the generator (this process) the others,
// and this process's own affinity is put back afterwards.

import { spawnSync } from 'node:child_process';

export interface Pinning {
  /** The server's CPU list (taskset -c), e.g. "1". */
  server: string;
  /** The load generator's (this process's) CPU list, e.g. "0". */
  generator: string;
  /** Puts this process's affinity back as it was. */
  restore(): void;
}

/** CPU numbers of a taskset list such as "0-3,6". */
export function parseCpuList(list: string): number[] {
  const out: number[] = [];
  for (const part of list.trim().split(',')) {
    const [a, b] = part.split('-').map((x) => Number(x.trim()));
    if (a === undefined || !Number.isInteger(a)) continue;
    const end = b !== undefined && Number.isInteger(b) ? b : a;
    for (let i = a; i <= end; i++) out.push(i);
  }
  return out;
}

function affinity(pid: number): number[] | undefined {
  const r = spawnSync('taskset', ['-pc', String(pid)], { encoding: 'utf8' });
  if (r.status !== 0) return undefined;
  const m = /:\s*([0-9,\- ]+)\s*$/.exec(r.stdout.trim());
  return m ? parseCpuList(m[1]!) : undefined;
}

/** Pins this process to all but the last of its CPUs and names that one for the server; undefined where it cannot (one CPU, no taskset, not Linux). */
export function pinApart(): Pinning | undefined {
  if (process.platform !== 'linux') return undefined;
  const mine = affinity(process.pid);
  if (mine === undefined || mine.length < 2) return undefined;
  const server = String(mine[mine.length - 1]);
  const generator = mine.slice(0, -1).join(',');
  const set = spawnSync('taskset', ['-a', '-pc', generator, String(process.pid)], { encoding: 'utf8' });
  if (set.status !== 0) return undefined;
  return {
    server,
    generator,
    restore() {
      spawnSync('taskset', ['-a', '-pc', mine.join(','), String(process.pid)], { encoding: 'utf8' });
    },
  };
}
