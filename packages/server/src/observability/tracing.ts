// OpenTelemetry tracing (OTLP over HTTP), off by default. Off, nothing from OpenTelemetry is
// loaded and the code below hands back the very handlers and stores it was given, so a request
// pays nothing. On, each OAuth endpoint gets a SERVER span that continues the caller's W3C trace
// context (`traceparent`, `tracestate`), and the storage calls made for it get child spans.
//
// Attributes name the client, the grant, the outcome and the status, never a secret, an
// assertion or a token: the request body is read only for grant_type.

import { AsyncLocalStorage } from 'node:async_hooks';
import { performance } from 'node:perf_hooks';
import type { Attributes, Context } from '@opentelemetry/api';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-node';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ChangeLog, ClientStore, ReplayStore, RevocationStore, Storage } from '../storage/types.js';

export type EndpointKind = 'token' | 'introspection' | 'revocation';

/** A Fastify route handler of an OAuth endpoint. */
export type EndpointHandler = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

/** The storage parts the server hands to its components. */
export type TracedStorage = Pick<Storage, 'clients' | 'keys' | 'revocations' | 'replay' | 'changes'>;

export interface Tracing {
  readonly enabled: boolean;
  /** The handler inside a SERVER span named `POST <route>`; the handler itself when tracing is off. */
  endpoint(kind: EndpointKind, route: string, handler: EndpointHandler): EndpointHandler;
  /** The storage parts with spans around the calls worth tracing; the same objects when tracing is off. */
  storage(storage: TracedStorage, system: string): TracedStorage;
  /** Exports what is buffered and stops. */
  shutdown(): Promise<void>;
}

/** Attribute names (OpenTelemetry semantic conventions where one exists). */
export const TRACE_ATTRIBUTES = {
  endpoint: 'oauth.endpoint',
  clientId: 'oauth.client_id',
  grantType: 'oauth.grant_type',
  outcome: 'oauth.outcome',
  method: 'http.request.method',
  route: 'http.route',
  status: 'http.response.status_code',
  protocol: 'network.protocol.version',
  errorType: 'error.type',
  dbSystem: 'db.system.name',
  dbOperation: 'db.operation.name',
  changes: 'm2m_auth.changes',
} as const;

/**
 * Storage calls a request can make, by store: a client lookup (on a cache miss), a revocation,
 * an assertion's jti (RFC 7523 replay check). They get spans only inside a traced request.
 */
const TRACED_CALLS = {
  clients: ['getClient'],
  revocations: ['revokeToken'],
  replay: ['consumeOnce'],
} as const;

export const TRACING_OFF: Tracing = Object.freeze({
  enabled: false,
  endpoint: (_kind: EndpointKind, _route: string, handler: EndpointHandler) => handler,
  storage: (storage: TracedStorage) => storage,
  shutdown: async () => undefined,
});

export interface StartTracingOptions {
  /** Span processors to use instead of a batch processor with the OTLP/HTTP exporter (tests). */
  spanProcessors?: SpanProcessor[];
  /** service.name when neither OTEL_SERVICE_NAME nor OTEL_RESOURCE_ATTRIBUTES names one; default "m2m-auth". */
  serviceName?: string;
}

/**
 * Loads the OpenTelemetry SDK and returns tracing that exports with OTLP over HTTP to
 * OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT), as service
 * OTEL_SERVICE_NAME. The other standard OTEL_* variables (sampler, batch sizes, headers,
 * resource attributes) apply as the SDK defines them. Nothing is registered globally.
 */
export async function startTracing(options: StartTracingOptions = {}): Promise<Tracing> {
  const [api, core, sdk, resources] = await Promise.all([
    import('@opentelemetry/api'),
    import('@opentelemetry/core'),
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/resources'),
  ]);
  let spanProcessors = options.spanProcessors;
  if (spanProcessors === undefined) {
    const { OTLPTraceExporter } = await import('@opentelemetry/exporter-trace-otlp-http');
    spanProcessors = [new sdk.BatchSpanProcessor(new OTLPTraceExporter())];
  }
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES (the env detector) win over our default name.
  const resource = resources.defaultResource()
    .merge(resources.resourceFromAttributes({ 'service.name': options.serviceName ?? 'm2m-auth' }))
    .merge(resources.detectResources({ detectors: [resources.envDetector] }));
  const provider = new sdk.NodeTracerProvider({ resource, spanProcessors });
  const tracer = provider.getTracer('m2m-auth');
  const propagator = new core.W3CTraceContextPropagator();

  // The span of the request being handled. Our own store, not the global context manager, so
  // that nothing is registered process-wide and several servers in one process stay apart.
  const active = new AsyncLocalStorage<Context>();
  const { SpanKind, SpanStatusCode, ROOT_CONTEXT, defaultTextMapGetter } = api;
  const A = TRACE_ATTRIBUTES;
  const epochMs = () => performance.timeOrigin + performance.now();

  function endpoint(kind: EndpointKind, route: string, handler: EndpointHandler): EndpointHandler {
    const name = `POST ${route}`;
    return async (request, reply) => {
      const parent = propagator.extract(ROOT_CONTEXT, request.headers, defaultTextMapGetter);
      const span = tracer.startSpan(name, {
        kind: SpanKind.SERVER,
        // From the moment Fastify saw the request, so the span covers reading the body too.
        startTime: epochMs() - reply.elapsedTime,
        attributes: {
          [A.endpoint]: kind, [A.method]: request.method, [A.route]: route, [A.protocol]: request.raw.httpVersionMajor === 2 ? '2' : request.raw.httpVersion,
        },
      }, parent);
      try {
        return await active.run(api.trace.setSpan(parent, span), () => handler(request, reply));
      } catch (err) {
        span.setAttribute(A.errorType, err instanceof Error ? err.name : 'unknown');
        throw err;
      } finally {
        const status = reply.statusCode;
        const attributes: Attributes = { [A.status]: status };
        if (request.oauthClientId !== undefined) attributes[A.clientId] = request.oauthClientId;
        if (request.oauthOutcome !== undefined) {
          attributes[A.outcome] = request.oauthOutcome;
          if (request.oauthOutcome !== 'ok') attributes[A.errorType] = request.oauthOutcome;
        }
        if (kind === 'token') {
          const grantType = grantTypeOf(request.oauthGrantType);
          if (grantType !== undefined) attributes[A.grantType] = grantType;
        }
        span.setAttributes(attributes);
        // Server spans: a 4xx is the client's mistake, not a failure of this span.
        if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
      }
    };
  }

  /** A child span of the request's span; background work outside a request is not traced. */
  async function inSpan<T>(name: string, attributes: Attributes, call: () => Promise<T>): Promise<T> {
    const parent = active.getStore();
    if (parent === undefined) return call();
    const span = tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, parent);
    try {
      return await call();
    } catch (err) {
      span.setStatus({ code: SpanStatusCode.ERROR });
      span.setAttribute(A.errorType, err instanceof Error ? err.name : 'unknown');
      throw err;
    } finally {
      span.end();
    }
  }

  function wrapMethods<T extends object>(target: T, area: string, methods: readonly string[], system: string): T {
    const wrapped = new Map<PropertyKey, unknown>();
    for (const method of methods) {
      const fn = (target as Record<string, unknown>)[method];
      if (typeof fn !== 'function') continue;
      const attributes = { [A.dbSystem]: system, [A.dbOperation]: method };
      const name = `storage.${area}.${method}`;
      wrapped.set(method, (...args: unknown[]) => inSpan(name, attributes, () => fn.apply(target, args) as Promise<unknown>));
    }
    // Everything else goes to the store itself, bound to it (backends keep private state).
    return new Proxy(target, {
      get(t, property) {
        const w = wrapped.get(property);
        if (w !== undefined) return w;
        const v = Reflect.get(t, property, t) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v;
      },
    });
  }

  /**
   * Change-log reads. Inside a request they are ordinary child spans. The background poll runs
   * every sync interval and mostly finds nothing; it is recorded, as a `sync.poll` span with the
   * read as its child, only when it found changes or failed.
   */
  function tracedChanges(changes: ChangeLog, system: string): ChangeLog {
    const attributes = { [A.dbSystem]: system, [A.dbOperation]: 'since' };
    const record = (start: number, found: number, err?: unknown) => {
      const poll = tracer.startSpan('sync.poll', { kind: SpanKind.INTERNAL, startTime: start, attributes: { [A.changes]: found } }, ROOT_CONTEXT);
      const read = tracer.startSpan('storage.changes.since', { kind: SpanKind.CLIENT, startTime: start, attributes }, api.trace.setSpan(ROOT_CONTEXT, poll));
      if (err !== undefined) {
        for (const s of [read, poll]) {
          s.setStatus({ code: SpanStatusCode.ERROR });
          s.setAttribute(A.errorType, err instanceof Error ? err.name : 'unknown');
        }
      }
      const end = epochMs();
      read.end(end);
      poll.end(end);
    };
    return {
      head: () => changes.head(),
      async since(after, limit) {
        if (active.getStore() !== undefined) return inSpan('storage.changes.since', attributes, () => changes.since(after, limit));
        const start = epochMs();
        let result: Awaited<ReturnType<ChangeLog['since']>>;
        try {
          result = await changes.since(after, limit);
        } catch (err) {
          record(start, 0, err);
          throw err;
        }
        if (result.changes.length > 0 || !result.complete) record(start, result.changes.length);
        return result;
      },
    };
  }

  return {
    enabled: true,
    endpoint,
    storage: (s, system) => ({
      clients: wrapMethods<ClientStore>(s.clients, 'clients', TRACED_CALLS.clients, system),
      revocations: wrapMethods<RevocationStore>(s.revocations, 'revocations', TRACED_CALLS.revocations, system),
      replay: wrapMethods<ReplayStore>(s.replay, 'replay', TRACED_CALLS.replay, system),
      keys: s.keys,
      changes: tracedChanges(s.changes, system),
    }),
    shutdown: () => provider.shutdown(),
  };
}

/**
 * Grant types registered with IANA (RFC 6749, 7522, 7523, 8628, 8693, OpenID CIBA). Any other
 * value is recorded as "other": the caller chose it, and it could be a misplaced secret.
 */
const KNOWN_GRANT_TYPES = new Set([
  'client_credentials', 'authorization_code', 'refresh_token', 'password', 'implicit',
  'urn:ietf:params:oauth:grant-type:jwt-bearer', 'urn:ietf:params:oauth:grant-type:saml2-bearer',
  'urn:ietf:params:oauth:grant-type:device_code', 'urn:ietf:params:oauth:grant-type:token-exchange',
  'urn:openid:params:grant-type:ciba',
]);

/** grant_type of a token request (parsed by the HTTP layer), as recorded. */
function grantTypeOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  return KNOWN_GRANT_TYPES.has(value) ? value : 'other';
}

/** The database system name of a database URL (`db.system.name`). */
export function databaseSystem(databaseUrl: string): string {
  return databaseUrl.startsWith('sqlite:') ? 'sqlite' : 'postgresql';
}
