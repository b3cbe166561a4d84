// Go-style pprof endpoints on the admin listener (net/http/pprof's /debug/pprof/profile and
// /debug/pprof/heap), behind the RFC 6750 admin bearer token, registered only when M2M_AUTH_PPROF
// is on: profiles expose function names, file paths and allocation sites of the running server.

import type { FastifyInstance, FastifyReply } from 'fastify';
import { adminTokenHook } from './bearer.js';
import type { EventBus } from '../observability/events.js';
import { ProfilerBusyError, startCpuProfile, startHeapSampling, type HeapSampling } from '../observability/profiles/inspector.js';
import { cpuProfileToPprof, encodePprof, heapProfileToPprof } from '../observability/profiles/pprof.js';

export interface PprofRoutesOptions {
  adminToken: string;
  /** config.pprof; when false nothing is registered and every path answers 404. */
  enabled: boolean;
  /** Where failed admin authentications are reported, as the admin API does. */
  events?: EventBus;
  /** CPU profiler sampling interval. Default 1000 µs. */
  cpuIntervalUs?: number;
  /** Mean bytes between heap samples (Go's MemProfileRate default is 512 KiB). */
  heapSamplingInterval?: number;
}

export const DEBUG_PREFIX = '/debug/pprof';
export const DEFAULT_PROFILE_SECONDS = 10;
export const MAX_PROFILE_SECONDS = 60;
const PPROF_TYPE = 'application/octet-stream';

function sendError(reply: FastifyReply, status: number, error: string, message: string): FastifyReply {
  return reply.code(status).header('cache-control', 'no-store').type('application/json; charset=utf-8').send({ error, message });
}

/** The `seconds` query parameter: a whole number from 1 to 60, 10 when absent. */
export function profileSeconds(query: unknown): number | undefined {
  const raw = (query as Record<string, unknown> | undefined)?.seconds;
  if (raw === undefined) return DEFAULT_PROFILE_SECONDS;
  if (typeof raw !== 'string' || !/^\d{1,2}$/.test(raw)) return undefined;
  const n = Number(raw);
  return n >= 1 && n <= MAX_PROFILE_SECONDS ? n : undefined;
}

function sendPprof(reply: FastifyReply, name: string, body: Buffer): FastifyReply {
  return reply
    .code(200)
    .header('cache-control', 'no-store')
    .header('content-disposition', `attachment; filename="${name}"`)
    .header('x-content-type-options', 'nosniff')
    .type(PPROF_TYPE)
    .send(body);
}

/**
 * Registers GET /debug/pprof/profile?seconds=N (a CPU profile taken for N seconds) and GET
 * /debug/pprof/heap (the sampled live heap since the routes were registered) on `app`, when
 * `options.enabled`. Both answer gzipped pprof protobuf.
 */
export async function registerPprofRoutes(app: FastifyInstance, options: PprofRoutesOptions): Promise<void> {
  if (!options.enabled) return;
  const cpuIntervalUs = options.cpuIntervalUs ?? 1000;
  const heapInterval = options.heapSamplingInterval ?? 512 * 1024;
  // The heap profile answers "what is alive and where was it allocated", so sampling runs from now on.
  let heap: HeapSampling | undefined = await startHeapSampling({ samplingInterval: heapInterval }).catch(() => undefined);
  const running = new Set<{ cancel(): void }>();

  await app.register(async (debug) => {
    debug.addHook('onRequest', adminTokenHook(options.adminToken, options.events, 'The debug endpoints need the admin token: Authorization: Bearer <token>'));

    debug.get('/profile', async (req, reply) => {
      const seconds = profileSeconds(req.query);
      if (seconds === undefined) {
        return sendError(reply, 400, 'invalid_request', `seconds must be a whole number from 1 to ${MAX_PROFILE_SECONDS}`);
      }
      let profiling;
      try {
        profiling = await startCpuProfile(cpuIntervalUs);
      } catch (err) {
        if (err instanceof ProfilerBusyError) return sendError(reply, 409, 'conflict', 'A CPU profile is already being taken; try again when it is done');
        throw err;
      }
      // Ends early when the caller goes away or the server closes.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, seconds * 1000);
        const entry = { cancel: done };
        running.add(entry);
        req.raw.socket.once('close', done);
        function done(): void {
          clearTimeout(timer);
          running.delete(entry);
          req.raw.socket.off('close', done);
          resolve();
        }
      });
      const profile = await profiling.stop();
      const pprof = cpuProfileToPprof(profile, { startedAt: profiling.startedAt, comments: [`m2m-auth CPU profile, ${seconds} s`] });
      return sendPprof(reply, 'profile.pb.gz', encodePprof(pprof));
    });

    debug.get('/heap', async (_req, reply) => {
      heap ??= await startHeapSampling({ samplingInterval: heapInterval }).catch(() => undefined);
      if (heap === undefined) return sendError(reply, 409, 'conflict', 'The heap profiler is in use by something else in this process');
      const profile = await heap.snapshot();
      const pprof = heapProfileToPprof(profile, 'inuse', {
        startedAt: heap.startedAt,
        samplingInterval: heapInterval,
        comments: [`m2m-auth sampled live heap since ${heap.startedAt.toISOString()}`],
      });
      return sendPprof(reply, 'heap.pb.gz', encodePprof(pprof));
    });
  }, { prefix: DEBUG_PREFIX });

  // preClose runs before Fastify waits for in-flight requests: a profile being taken ends now.
  app.addHook('preClose', async () => {
    for (const r of [...running]) r.cancel();
  });
  app.addHook('onClose', async () => {
    await heap?.stop().catch(() => undefined);
    heap = undefined;
  });
}
