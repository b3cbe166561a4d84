// Types of wrk.js for the TypeScript tests that import it.

export const FORM_POST_SCRIPT: string;
export const FRESH_POST_SCRIPT: string;
export function haveWrk(): boolean;
export function parseWrkDuration(text: string): number;

export interface WrkSummary {
  requests: number;
  elapsedS: number;
  rate: number;
  latency: { avg: number; max: number; p50: number; p75: number; p90: number; p99: number };
  socketErrors: { connect: number; read: number; write: number; timeout: number };
  non2xx: number;
}

export function parseWrkOutput(text: string): WrkSummary;

export function runWrk(o: {
  url: string;
  body: string;
  authorization?: string;
  connections: number;
  durationS: number;
  timeoutS?: number;
  maxRequests?: number;
  cpu?: number | string | null;
  dpopFile?: string;
  dpopHeader?: string;
  bodyFile?: string;
}): Promise<WrkSummary & { raw: string }>;
