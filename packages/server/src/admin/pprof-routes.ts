// Go-style pprof endpoints on the admin listener (net/http/pprof's /debug/pprof/profile, /heap and
// /allocs), and a runtime window beside them, behind the RFC 6750 admin bearer token, registered
// only when M2M_AUTH_PPROF is on: profiles expose function names, file paths and allocation sites
// of the running server.
//
// A profile or window taken for `seconds` ends early when DELETE names it (a profiler that drives a
// load of unknown length, such as `m2m-auth profile`, ends it when the load ends) or when the
// server closes; its GET then answers with what was taken so far.

import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { adminTokenHook } from './bearer.js';
import type { EventBus } from '../observability/events.js';
import { ProfilerBusyError, startCpuProfile, startHeapSampling, type HeapSampling } from '../observability/profiles/inspector.js';
import { cpuProfileToPprof, encodePprof, heapProfileToPprof } from '../observability/profiles/pprof.js';
import { RuntimeWindow } from '../observability/profiles/runtime.js';
import {
  ALLOC_INTERVAL_BYTES, CPU_INTERVAL_US, DEBUG_OPERATIONS, DEBUG_PREFIX, DEFAULT_PROFILE_SECONDS, MAX_PROFILE_SECONDS, RUNTIME_PATH,
} from './openapi/operations.js';
import { schemaRefusal, validatedRoute } from './openapi/validation.js';

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

export { DEBUG_PREFIX, DEFAULT_PROFILE_SECONDS, MAX_PROFILE_SECONDS, RUNTIME_PATH };
const PPROF_TYPE = 'application/octet-stream';
/** The allocation profile's default mean bytes between samples (V8's default). */
const DEFAULT_ALLOC_INTERVAL = 32 * 1024;

type Kind = 'profile' | 'allocs' | 'runtime';
const WHAT: Record<Kind, string> = { profile: 'CPU profile', allocs: 'allocation profile', runtime: 'runtime window' };

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

/** The `interval` query parameter within `bounds`, `fallback` when absent; undefined when invalid. */
function interval(query: unknown, bounds: { min: number; max: number }, fallback: number): number | undefined {
  const raw = (query as Record<string, unknown> | undefined)?.interval;
  if (raw === undefined) return fallback;
  if (typeof raw !== 'string' || !/^\d{1,9}$/.test(raw)) return undefined;
  const n = Number(raw);
  return n >= bounds.min && n <= bounds.max ? n : undefined;
}

/** `format=devtools` (V8's own JSON, as Chrome DevTools and speedscope read it) or pprof (default). */
function format(query: unknown): 'pprof' | 'devtools' | undefined {
  const raw = (query as Record<string, unknown> | undefined)?.format;
  if (raw === undefined || raw === 'pprof') return 'pprof';
  return raw === 'devtools' ? 'devtools' : undefined;
}

/** A profile or window being taken: it waits its seconds, or less once end() is called. */
class Recording {
  #ended = false;
  #wake: (() => void) | undefined;
  readonly #release: () => void;

  constructor(release: () => void) {
    this.#release = release;
  }

  /** Ends the wait now, or before it starts; the kind is free again. */
  end(): void {
    this.#ended = true;
    this.#release();
    this.#wake?.();
  }

  /** Resolves after `seconds`, when end() is called, or when the caller goes away. */
  wait(seconds: number, req: FastifyRequest): Promise<void> {
    if (this.#ended) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const socket = req.raw.socket;
      const done = (): void => {
        clearTimeout(timer);
        socket.off('close', done);
        this.#wake = undefined;
        if (!this.#ended) this.end();
        resolve();
      };
      const timer = setTimeout(done, seconds * 1000);
      socket.once('close', done);
      this.#wake = done;
    });
  }
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

function sendJson(reply: FastifyReply, name: string, body: unknown): FastifyReply {
  return reply
    .code(200)
    .header('cache-control', 'no-store')
    .header('content-disposition', `attachment; filename="${name}"`)
    .type('application/json; charset=utf-8')
    .send(JSON.stringify(body));
}

/**
 * Registers, when `options.enabled`, on `app`:
 * - GET /debug/pprof/profile?seconds=N: a CPU profile taken for N seconds;
 * - GET /debug/pprof/heap: the sampled live heap since the routes were registered;
 * - GET /debug/pprof/allocs?seconds=N: every allocation sampled for N seconds (collected ones too);
 * - GET /debug/runtime?seconds=N: memory, GC pauses, event-loop delay and utilisation, and active
 *   handles over N seconds, as JSON;
 * - DELETE on /debug/pprof/profile, /debug/pprof/allocs and /debug/runtime: ends the one being
 *   taken now (204), or 404 when none is.
 * Profiles are gzipped pprof protobuf, or V8's JSON with format=devtools; `interval` sets the CPU
 * sampling interval (µs) or the mean bytes between allocation samples.
 */
export async function registerPprofRoutes(app: FastifyInstance, options: PprofRoutesOptions): Promise<void> {
  if (!options.enabled) return;
  const cpuIntervalUs = options.cpuIntervalUs ?? 1000;
  const heapInterval = options.heapSamplingInterval ?? 512 * 1024;
  // The heap profile answers "what is alive and where was it allocated", so sampling runs from now on.
  let heap: HeapSampling | undefined = await startHeapSampling({ samplingInterval: heapInterval }).catch(() => undefined);
  /** What is being taken now, by kind: ends early (and answers) when cancelled. */
  const running = new Map<Kind, Recording>();

  /** Claims `kind` before anything is awaited, so that a second request at the same time is refused, and a DELETE already ends it. */
  const claim = (kind: Kind): Recording | undefined => {
    if (running.has(kind)) return undefined;
    const recording = new Recording(() => {
      if (running.get(kind) === recording) running.delete(kind);
    });
    running.set(kind, recording);
    return recording;
  };

  await app.register(async (debug) => {
    debug.addHook('onRequest', adminTokenHook(options.adminToken, options.events, 'The debug endpoints need the admin token: Authorization: Bearer <token>'));

    // Errors in the admin API's shape ({ error, message }), as the OpenAPI document says: a body a
    // DELETE cannot read is the caller's (4xx), anything else a fault of the server.
    debug.setErrorHandler((err: FastifyError, req, reply) => {
      const status = err.statusCode;
      if (typeof status === 'number' && status >= 400 && status < 500) return sendError(reply, status, 'invalid_request', err.message);
      req.log.error({ err }, 'debug request failed');
      return sendError(reply, 500, 'server_error', 'The server encountered an unexpected condition');
    });

    debug.route({ ...validatedRoute(DEBUG_OPERATIONS.cpuProfile, ''), handler: async (req, reply) => {
      const seconds = profileSeconds(req.query);
      if (seconds === undefined) {
        return sendError(reply, 400, 'invalid_request', `seconds must be a whole number from 1 to ${MAX_PROFILE_SECONDS}`);
      }
      const us = interval(req.query, CPU_INTERVAL_US, cpuIntervalUs);
      const as = format(req.query);
      if (us === undefined || as === undefined) {
        return sendError(reply, 400, 'invalid_request', `interval must be ${CPU_INTERVAL_US.min} to ${CPU_INTERVAL_US.max} microseconds, format pprof or devtools`);
      }
      if (req.validationError) return sendError(reply, 400, 'invalid_request', schemaRefusal(req.validationError));
      const recording = claim('profile');
      if (recording === undefined) return sendError(reply, 409, 'conflict', 'A CPU profile is already being taken; try again when it is done');
      let profiling;
      try {
        profiling = await startCpuProfile(us);
      } catch (err) {
        recording.end();
        if (err instanceof ProfilerBusyError) return sendError(reply, 409, 'conflict', 'A CPU profile is already being taken; try again when it is done');
        throw err;
      }
      await recording.wait(seconds, req);
      const profile = await profiling.stop();
      if (as === 'devtools') return sendJson(reply, 'profile.cpuprofile', profile);
      const pprof = cpuProfileToPprof(profile, { startedAt: profiling.startedAt, comments: [`m2m-auth CPU profile, ${seconds} s`] });
      return sendPprof(reply, 'profile.pb.gz', encodePprof(pprof));
    } });

    debug.route({ ...validatedRoute(DEBUG_OPERATIONS.heapProfile, ''), handler: async (_req, reply) => {
      heap ??= await startHeapSampling({ samplingInterval: heapInterval }).catch(() => undefined);
      if (heap === undefined) return sendError(reply, 409, 'conflict', 'The heap profiler is in use by something else in this process');
      const profile = await heap.snapshot();
      const pprof = heapProfileToPprof(profile, 'inuse', {
        startedAt: heap.startedAt,
        samplingInterval: heapInterval,
        comments: [`m2m-auth sampled live heap since ${heap.startedAt.toISOString()}`],
      });
      return sendPprof(reply, 'heap.pb.gz', encodePprof(pprof));
    } });

    // V8 has one sampling heap profiler: the live-heap sampling behind /heap pauses while an
    // allocation profile is taken, and starts again after it (/heap then covers the time since).
    debug.route({ ...validatedRoute(DEBUG_OPERATIONS.allocationProfile, ''), handler: async (req, reply) => {
      const seconds = profileSeconds(req.query);
      const bytes = interval(req.query, ALLOC_INTERVAL_BYTES, DEFAULT_ALLOC_INTERVAL);
      const as = format(req.query);
      if (seconds === undefined || bytes === undefined || as === undefined) {
        return sendError(reply, 400, 'invalid_request',
          `seconds must be a whole number from 1 to ${MAX_PROFILE_SECONDS}, interval ${ALLOC_INTERVAL_BYTES.min} to ${ALLOC_INTERVAL_BYTES.max} bytes, format pprof or devtools`);
      }
      if (req.validationError) return sendError(reply, 400, 'invalid_request', schemaRefusal(req.validationError));
      const recording = claim('allocs');
      if (recording === undefined) return sendError(reply, 409, 'conflict', 'An allocation profile is already being taken; try again when it is done');
      let sampling;
      try {
        await heap?.stop().catch(() => undefined);
        heap = undefined;
        sampling = await startHeapSampling({ samplingInterval: bytes, includeCollected: true });
      } catch (err) {
        recording.end();
        heap = await startHeapSampling({ samplingInterval: heapInterval }).catch(() => undefined);
        if (err instanceof ProfilerBusyError) return sendError(reply, 409, 'conflict', 'The heap profiler is in use by something else in this process');
        throw err;
      }
      await recording.wait(seconds, req);
      const profile = await sampling.stop();
      heap = await startHeapSampling({ samplingInterval: heapInterval }).catch(() => undefined);
      if (as === 'devtools') return sendJson(reply, 'allocs.heapprofile', profile);
      const pprof = heapProfileToPprof(profile, 'alloc', {
        startedAt: sampling.startedAt,
        samplingInterval: bytes,
        comments: [`m2m-auth allocations sampled for ${seconds} s`],
      });
      return sendPprof(reply, 'allocs.pb.gz', encodePprof(pprof));
    } });

    debug.route({ ...validatedRoute(DEBUG_OPERATIONS.runtimeWindow, ''), handler: async (req, reply) => {
      const seconds = profileSeconds(req.query);
      if (seconds === undefined) {
        return sendError(reply, 400, 'invalid_request', `seconds must be a whole number from 1 to ${MAX_PROFILE_SECONDS}`);
      }
      if (req.validationError) return sendError(reply, 400, 'invalid_request', schemaRefusal(req.validationError));
      const recording = claim('runtime');
      if (recording === undefined) return sendError(reply, 409, 'conflict', 'A runtime window is already being taken; try again when it is done');
      const measuring = new RuntimeWindow();
      await recording.wait(seconds, req);
      return sendJson(reply, 'runtime.json', await measuring.stop());
    } });

    for (const [kind, path] of [['profile', `${DEBUG_PREFIX}/profile`], ['allocs', `${DEBUG_PREFIX}/allocs`], ['runtime', RUNTIME_PATH]] as const) {
      debug.delete(path, async (_req, reply) => {
        const recording = running.get(kind);
        if (recording === undefined) return sendError(reply, 404, 'not_found', `No ${WHAT[kind]} is being taken`);
        recording.end();
        return reply.code(204).header('cache-control', 'no-store').send();
      });
    }
  });

  // preClose runs before Fastify waits for in-flight requests: a profile being taken ends now.
  app.addHook('preClose', async () => {
    for (const r of [...running.values()]) r.end();
  });
  app.addHook('onClose', async () => {
    await heap?.stop().catch(() => undefined);
    heap = undefined;
  });
}
