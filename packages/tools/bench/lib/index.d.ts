// Types of index.js (@m2m-auth/tools/bench) for the TypeScript tests that import it.

import type { ChildProcess } from 'node:child_process';

export * from './report.js';
export const ALGS: readonly string[];
export function rawSignSeconds(alg?: string, options?: Record<string, unknown>): Promise<number>;
export function median(values: number[]): number;
/** Starts `node args` (piped stdout unless told otherwise), tracked so that it is killed when this process exits. */
export function startNode(args: string[], options?: { cpu?: number | null; env?: NodeJS.ProcessEnv; stdout?: 'pipe' | number; cwd?: string }): ChildProcess;
/** The first line of the child's stdout that is a JSON object. */
export function firstJsonLine(proc: ChildProcess, timeoutMs?: number): Promise<unknown>;
/** SIGTERM, then SIGKILL after `graceMs`. */
export function stop(proc: ChildProcess, graceMs?: number): Promise<void>;
