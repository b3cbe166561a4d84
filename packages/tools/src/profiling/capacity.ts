// Capacity planning from one profile run: per-core rates from the server's CPU-seconds per request
// (its own process_cpu_seconds_total, the share of its own profiler taken out), the cores and
// instances a table of target loads needs at a stated headroom, memory per instance and per 1,000
// connections, and the database connections that follow.

import type { ProfileData } from './profile-data.js';
import { total } from './server-metrics.js';

/** Plan to keep each core at most this busy (the rest is headroom for bursts, GC and a lost instance). */
export const CPU_HEADROOM_BUSY = 0.5;
/** Target loads of the table, tokens per second. */
export const TARGET_LOADS = [1_000, 10_000, 100_000] as const;
/** Instance size the table counts in: one server process per core (serve --workers). */
export const CORES_PER_INSTANCE = 4;
/** Never fewer instances than this (one can fail or be restarted). */
export const MIN_INSTANCES = 2;
/** PostgreSQL: each server process's pool (POSTGRES_DEFAULTS.maxConnections) and its LISTEN connection. */
export const PG_POOL_PER_PROCESS = 10;
export const PG_LISTEN_PER_PROCESS = 1;

export interface CapacityRow {
  tokensPerSecond: number;
  cores: number;
  instances: number;
  memoryBytes: number;
  postgresConnections: number;
}

export interface Capacity {
  operation: 'token' | 'introspect' | 'mixed';
  /** Server CPU-seconds per request from its metrics (the max-rate phase, no profiler running; else the profiled load with its profiler's share taken out); undefined when not read. */
  cpuSecondsPerRequest?: number;
  /** Where cpuSecondsPerRequest comes from. */
  source: 'max-rate' | 'profiled';
  profilerShare: number;
  /** Requests one core serves at 100 % busy. */
  perCoreRate?: number;
  /** Server RSS after the load (one process). */
  memoryPerProcess: number;
  /** RSS growth from the idle baseline to the peak, per 1,000 open connections. */
  memoryPer1000Connections: number;
  connections: number;
  /** Client-cache misses (database reads on the token path) per request. */
  cacheMissesPerRequest?: number;
  rows: CapacityRow[];
}

export function capacity(d: ProfileData): Capacity {
  const busy = d.cpu.busyUs;
  const profilerUs = d.cpu.components.filter((c) => c.component === 'profiler').reduce((a, c) => a + c.value, 0);
  const profilerShare = busy > 0 ? profilerUs / busy : 0;
  const fromMax = d.phases?.find((p) => p.name === 'max-rate')?.server.cpuSecondsPerRequest;
  const source = fromMax !== undefined && fromMax > 0 ? 'max-rate' : 'profiled';
  const perRequest = source === 'max-rate'
    ? fromMax
    : d.server.cpuSecondsPerRequest !== undefined && d.server.cpuSecondsPerRequest > 0 ? d.server.cpuSecondsPerRequest * (1 - profilerShare) : undefined;
  const perCoreRate = perRequest !== undefined ? 1 / perRequest : undefined;
  const connections = d.load.config.connections;
  const growth = Math.max(0, d.memory.peakRss - d.memory.before.rss);
  const memoryPerProcess = d.memory.after.rss;
  let cacheMissesPerRequest: number | undefined;
  if (d.series !== undefined && d.load.totalRequests > 0) {
    const misses = total(d.series.last.samples, 'm2m_auth_client_cache_misses_total') - total(d.series.first.samples, 'm2m_auth_client_cache_misses_total');
    cacheMissesPerRequest = Math.max(0, misses) / d.load.totalRequests;
  }
  const rows = perRequest === undefined
    ? []
    : TARGET_LOADS.map((target) => {
      const cores = Math.max(1, Math.ceil((target * perRequest) / CPU_HEADROOM_BUSY));
      const instances = Math.max(MIN_INSTANCES, Math.ceil(cores / CORES_PER_INSTANCE));
      const processes = instances * CORES_PER_INSTANCE;
      return {
        tokensPerSecond: target,
        cores,
        instances,
        memoryBytes: processes * memoryPerProcess,
        postgresConnections: processes * (PG_POOL_PER_PROCESS + PG_LISTEN_PER_PROCESS),
      };
    });
  return {
    operation: d.load.mode,
    source,
    ...(perRequest !== undefined && { cpuSecondsPerRequest: perRequest, perCoreRate }),
    profilerShare,
    memoryPerProcess,
    memoryPer1000Connections: connections > 0 ? (growth * 1000) / connections : 0,
    connections,
    ...(cacheMissesPerRequest !== undefined && { cacheMissesPerRequest }),
    rows,
  };
}
