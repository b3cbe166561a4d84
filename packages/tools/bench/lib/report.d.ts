// Types of report.js for the TypeScript tests that import it.

export function formatRate(opsPerSec: number): string;
export function formatDuration(seconds: number): string;
export function formatRatio(ratio: number): string;
export function formatBytes(bytes: number): string;
export function floorRate(helloRate: number, signSeconds: number): number;

export interface Target {
  name: string;
  value: number | null | undefined;
  target: number;
  better: 'higher' | 'lower' | 'at-most';
  format?: (v: number) => string;
  note?: string;
}

export interface CheckedTarget {
  name: string;
  met: boolean;
  value: number | null;
  target: number;
  line: string;
}

export function checkTarget(t: Target): CheckedTarget;
export function table(headers: string[], rows: Array<Array<string | number>>): string;
