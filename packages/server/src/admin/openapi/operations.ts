// Every route of the admin listener, as data: its path and method, parameters, body, answers and
// error answers. routes.ts registers the /admin routes from these entries (their schemas validate
// the requests); document.ts turns the whole table into the OpenAPI 3.1 document.
//
// Adding a route: an entry in ADMIN_OPERATIONS (or a table beside it, listed in ALL_OPERATIONS),
// registered with `adminRoute` in routes.ts; then `npm run docs:openapi`. test/admin/openapi.test.ts
// fails while a route of the admin listener, or a status it answers, is not in the document.

import { MAX_LIST_LIMIT } from '../../clients/metadata.js';
import {
  ADMIN_ERROR, CLIENT, CLIENT_CREATE, CLIENT_LIST, CLIENT_MAYBE_WITH_SECRET, CLIENT_SECRET_ROTATED, CLIENT_UPDATE,
  KEY_LIST, KEY_REVOCATION, KEY_REVOKED, KEY_ROTATED, KEY_ROTATION, MAX_ID_LENGTH, NO_MEMBERS, SECRET_ROTATION,
  TRUST, TRUST_CREATE, TRUST_LIST, TRUST_UPDATE, type JsonSchema,
} from './schemas.js';
import { MAX_TRUST_LIST_LIMIT } from '../../trusts/rules.js';

export type HttpMethod = 'GET' | 'POST' | 'PATCH' | 'DELETE';

export interface Parameter {
  readonly schema: JsonSchema;
  readonly description: string;
  readonly required?: boolean;
}

export interface Answer {
  readonly description: string;
  /** JSON unless said otherwise; no schema and no content type: an empty body (204). */
  readonly schema?: JsonSchema;
  /** The media types of the body (the schema, if any, is that of the first). */
  readonly contentType?: string | readonly string[];
  readonly headers?: Readonly<Record<string, string>>;
}

export interface AdminOperation {
  readonly operationId: string;
  readonly method: HttpMethod;
  /** The full path, with {name} parameters (OpenAPI's form). */
  readonly path: string;
  readonly tag: string;
  readonly summary: string;
  readonly description?: string;
  /** false: answered without the admin token (GET /metrics). */
  readonly auth?: boolean;
  readonly params?: Readonly<Record<string, Parameter>>;
  readonly query?: Readonly<Record<string, Parameter>>;
  /** Whether unknown query parameters are refused (400); true unless said otherwise. */
  readonly closedQuery?: boolean;
  readonly body?: { readonly schema: JsonSchema; readonly required: boolean; readonly description: string };
  /** The answers that are not errors, by status. */
  readonly answers: Readonly<Record<number, Answer>>;
  /** The error answers, by status, each with the admin error body; 401 and 500 are added to every route with `auth`. */
  readonly errors: Readonly<Record<number, string>>;
}

export const ADMIN_PREFIX = '/admin';
export const DEFAULT_LIST_LIMIT = 100;

/** The paths of the pprof and runtime routes (pprof-routes.ts). */
export const DEBUG_PREFIX = '/debug/pprof';
export const RUNTIME_PATH = '/debug/runtime';
export const DEFAULT_PROFILE_SECONDS = 10;
export const MAX_PROFILE_SECONDS = 60;
/** `interval` bounds: CPU sampling in microseconds, allocation sampling in bytes. */
export const CPU_INTERVAL_US = { min: 50, max: 100_000 } as const;
export const ALLOC_INTERVAL_BYTES = { min: 1024, max: 16 * 1024 * 1024 } as const;

const CLIENT_ID_PARAM: Parameter = {
  schema: { type: 'string', minLength: 1, maxLength: MAX_ID_LENGTH },
  description: `The client_id (one over ${MAX_ID_LENGTH} characters: 414)`,
};
const TRUST_NAME_PARAM: Parameter = {
  schema: { type: 'string', minLength: 1, maxLength: MAX_ID_LENGTH },
  description: `The trusted issuer's name (one over ${MAX_ID_LENGTH} characters: 414)`,
};
const KID_PARAM: Parameter = {
  schema: { type: 'string', minLength: 1, maxLength: MAX_ID_LENGTH },
  description: `The key id (one over ${MAX_ID_LENGTH} characters: 414)`,
};
/** What the router answers before any route runs (routes.ts, adminFrameworkErrors), for a route with a path parameter. */
const TOO_LONG = { 414: `invalid_request: a path parameter over ${MAX_ID_LENGTH} characters (answered before the token is checked)` } as const;

// The error answers that recur, in the words the routes use.
const BAD = 'invalid_request: a query parameter, a path parameter or the body is wrong; the message names it';
const BAD_QUERY = 'invalid_request: an unknown or repeated query parameter';
const BAD_BODY = 'invalid_request: the body is not a JSON object of the members this route takes, or has a member named __proto__, constructor or prototype';
const NO_CLIENT = 'not_found: no client with this client_id';
const NO_TRUST = 'not_found: no trusted issuer with this name';
const TOO_LARGE = 'invalid_request: the body is over M2M_AUTH_BODY_LIMIT';
const NOT_JSON = 'invalid_request: a body that is not Content-Type application/json';
const UNAVAILABLE = 'temporarily_unavailable: the database did not answer; nothing was done or acknowledged (Retry-After)';

/** The errors of any route that reads a body (every method but GET). */
const BODY_ERRORS = { 413: TOO_LARGE, 415: NOT_JSON } as const;

const clientAction = (action: string, operationId: string, summary: string, description: string): AdminOperation => ({
  operationId,
  method: 'POST',
  path: `${ADMIN_PREFIX}/clients/{id}/${action}`,
  tag: 'clients',
  summary,
  description,
  params: { id: CLIENT_ID_PARAM },
  body: { schema: NO_MEMBERS, required: false, description: 'No members: no body, or {}' },
  answers: { 200: { description: 'The client', schema: CLIENT } },
  errors: { 400: BAD_BODY, 404: NO_CLIENT, ...BODY_ERRORS, ...TOO_LONG, 503: UNAVAILABLE },
});

/** The routes under /admin (routes.ts). */
export const ADMIN_OPERATIONS = {
  createClient: {
    operationId: 'createClient',
    method: 'POST',
    path: `${ADMIN_PREFIX}/clients`,
    tag: 'clients',
    summary: 'Register a client',
    description: 'RFC 7591 §2 metadata. A client with a secret method gets its client_secret in this answer only '
      + '(unless it brings client_secret_sha256). The default token of a client_credentials client (every scope and audience, '
      + 'or the defaults, and the claims) must fit in an access token.',
    body: { schema: CLIENT_CREATE, required: true, description: 'The new client' },
    answers: {
      201: { description: 'Registered', schema: CLIENT_MAYBE_WITH_SECRET, headers: { location: 'The path of the new client' } },
    },
    errors: { 400: BAD, 409: 'conflict: the chosen client_id is taken, or another client has this federated_issuer and federated_subject', ...BODY_ERRORS, 503: UNAVAILABLE },
  },
  listClients: {
    operationId: 'listClients',
    method: 'GET',
    path: `${ADMIN_PREFIX}/clients`,
    tag: 'clients',
    summary: 'A page of clients, in client_id order',
    query: {
      limit: {
        schema: { type: 'string', pattern: '^\\d{1,9}$' },
        description: `Most clients in the page: a whole number from 1 to ${MAX_LIST_LIMIT}, default ${DEFAULT_LIST_LIMIT}`,
      },
      after: {
        schema: { type: 'string', minLength: 1, maxLength: MAX_ID_LENGTH },
        description: 'The next of the previous page: the page starts after this client_id',
      },
    },
    answers: { 200: { description: 'The page, and next (null on the last page)', schema: CLIENT_LIST } },
    errors: { 400: BAD, 503: UNAVAILABLE },
  },
  getClient: {
    operationId: 'getClient',
    method: 'GET',
    path: `${ADMIN_PREFIX}/clients/{id}`,
    tag: 'clients',
    summary: 'Read a client',
    params: { id: CLIENT_ID_PARAM },
    query: {},
    answers: { 200: { description: 'The client', schema: CLIENT } },
    errors: { 400: BAD_QUERY, 404: NO_CLIENT, ...TOO_LONG, 503: UNAVAILABLE },
  },
  updateClient: {
    operationId: 'updateClient',
    method: 'PATCH',
    path: `${ADMIN_PREFIX}/clients/{id}`,
    tag: 'clients',
    summary: 'Change a client',
    description: 'The fields sent change, the others stay. Switching to a secret method issues a secret (in this answer only) '
      + 'and drops jwks; switching to private_key_jwt needs jwks and drops the secrets. An update that changes nothing writes nothing.',
    params: { id: CLIENT_ID_PARAM },
    body: { schema: CLIENT_UPDATE, required: true, description: 'The fields to change' },
    answers: { 200: { description: 'The client, with client_secret when one was issued', schema: CLIENT_MAYBE_WITH_SECRET } },
    errors: { 400: BAD, 404: NO_CLIENT, 409: 'conflict: another client has this federated_issuer and federated_subject', ...BODY_ERRORS, ...TOO_LONG, 503: UNAVAILABLE },
  },
  deleteClient: {
    operationId: 'deleteClient',
    method: 'DELETE',
    path: `${ADMIN_PREFIX}/clients/{id}`,
    tag: 'clients',
    summary: 'Delete a client',
    params: { id: CLIENT_ID_PARAM },
    body: { schema: NO_MEMBERS, required: false, description: 'No members: no body, or {}' },
    answers: { 204: { description: 'Deleted' } },
    errors: { 400: BAD_BODY, 404: NO_CLIENT, ...BODY_ERRORS, ...TOO_LONG, 503: UNAVAILABLE },
  },
  rotateClientSecret: {
    operationId: 'rotateClientSecret',
    method: 'POST',
    path: `${ADMIN_PREFIX}/clients/{id}/secret`,
    tag: 'clients',
    summary: 'Issue a new secret',
    description: 'The previous secret keeps working for grace_period seconds; at most one previous secret is kept.',
    params: { id: CLIENT_ID_PARAM },
    body: { schema: SECRET_ROTATION, required: false, description: 'Optional: grace_period' },
    answers: { 200: { description: 'The client with its new secret, shown once', schema: CLIENT_SECRET_ROTATED } },
    errors: { 400: BAD, 404: NO_CLIENT, ...BODY_ERRORS, ...TOO_LONG, 503: UNAVAILABLE },
  },
  revokeClientTokens: clientAction('revoke-tokens', 'revokeClientTokens', 'Kill switch: every token issued to the client before now becomes inactive',
    'Sets tokens_revoked_at to now; the client keeps getting new tokens.'),
  disableClient: clientAction('disable', 'disableClient', 'Stop the client: no token, and its tokens inactive', 'Sets disabled to true.'),
  enableClient: clientAction('enable', 'enableClient', 'Restore a disabled client', 'Sets disabled to false.'),
  createTrust: {
    operationId: 'createTrust',
    method: 'POST',
    path: `${ADMIN_PREFIX}/trusted-issuers`,
    tag: 'trusted-issuers',
    summary: 'Register a trusted issuer',
    description: 'A platform whose signed workload identities authenticate federated_jwt clients: kubernetes (issuer), '
      + 'spiffe (trust_domain and a bundle endpoint or a static bundle) or oidc (issuer with OIDC discovery).',
    body: { schema: TRUST_CREATE, required: true, description: 'The new trusted issuer' },
    answers: { 201: { description: 'Registered', schema: TRUST, headers: { location: 'The path of the new trusted issuer' } } },
    errors: { 400: BAD, 409: 'conflict: a trusted issuer with this name exists', ...BODY_ERRORS, 503: UNAVAILABLE },
  },
  listTrusts: {
    operationId: 'listTrusts',
    method: 'GET',
    path: `${ADMIN_PREFIX}/trusted-issuers`,
    tag: 'trusted-issuers',
    summary: 'A page of trusted issuers, in name order',
    query: {
      limit: {
        schema: { type: 'string', pattern: '^\\d{1,9}$' },
        description: `Most trusted issuers in the page: a whole number from 1 to ${MAX_TRUST_LIST_LIMIT}, default ${DEFAULT_LIST_LIMIT}`,
      },
      after: {
        schema: { type: 'string', minLength: 1, maxLength: MAX_ID_LENGTH },
        description: 'The next of the previous page: the page starts after this name',
      },
    },
    answers: { 200: { description: 'The page, and next (null on the last page)', schema: TRUST_LIST } },
    errors: { 400: BAD, 503: UNAVAILABLE },
  },
  getTrust: {
    operationId: 'getTrust',
    method: 'GET',
    path: `${ADMIN_PREFIX}/trusted-issuers/{name}`,
    tag: 'trusted-issuers',
    summary: 'Read a trusted issuer',
    params: { name: TRUST_NAME_PARAM },
    query: {},
    answers: { 200: { description: 'The trusted issuer', schema: TRUST } },
    errors: { 400: BAD_QUERY, 404: NO_TRUST, ...TOO_LONG, 503: UNAVAILABLE },
  },
  updateTrust: {
    operationId: 'updateTrust',
    method: 'PATCH',
    path: `${ADMIN_PREFIX}/trusted-issuers/{name}`,
    tag: 'trusted-issuers',
    summary: 'Change a trusted issuer',
    description: 'The fields sent change, the others stay; null clears a nullable field. The name cannot change; '
      + 'a trust that clients name keeps its kind and trust domain.',
    params: { name: TRUST_NAME_PARAM },
    body: { schema: TRUST_UPDATE, required: true, description: 'The fields to change' },
    answers: { 200: { description: 'The trusted issuer', schema: TRUST } },
    errors: { 400: BAD, 404: NO_TRUST, 409: 'conflict: clients name this trust, so its kind and trust domain stay', ...BODY_ERRORS, ...TOO_LONG, 503: UNAVAILABLE },
  },
  deleteTrust: {
    operationId: 'deleteTrust',
    method: 'DELETE',
    path: `${ADMIN_PREFIX}/trusted-issuers/{name}`,
    tag: 'trusted-issuers',
    summary: 'Delete a trusted issuer that no client names',
    params: { name: TRUST_NAME_PARAM },
    body: { schema: NO_MEMBERS, required: false, description: 'No members: no body, or {}' },
    answers: { 204: { description: 'Deleted' } },
    errors: { 400: BAD_BODY, 404: NO_TRUST, 409: 'conflict: clients name this trust (the message names them)', ...BODY_ERRORS, ...TOO_LONG, 503: UNAVAILABLE },
  },
  listKeys: {
    operationId: 'listKeys',
    method: 'GET',
    path: `${ADMIN_PREFIX}/keys`,
    tag: 'keys',
    summary: 'The signing keys, newest first',
    query: {},
    answers: { 200: { description: 'Every key, with its status and times', schema: KEY_LIST } },
    errors: { 400: BAD_QUERY },
  },
  rotateKeys: {
    operationId: 'rotateKeys',
    method: 'POST',
    path: `${ADMIN_PREFIX}/keys/rotate`,
    tag: 'keys',
    summary: 'Start a key rotation',
    description: 'A new key, published at once, signing after M2M_AUTH_KEY_PREPUBLISH; with now, at once.',
    body: { schema: KEY_ROTATION, required: false, description: 'Optional: now' },
    answers: { 200: { description: 'The new key and every key', schema: KEY_ROTATED } },
    errors: { 400: BAD_BODY, ...BODY_ERRORS, 503: UNAVAILABLE },
  },
  revokeKey: {
    operationId: 'revokeKey',
    method: 'POST',
    path: `${ADMIN_PREFIX}/keys/{kid}/revoke`,
    tag: 'keys',
    summary: 'Revoke a leaked key',
    description: 'It leaves the JWKS at once, never signs again, and every token it signed is inactive. '
      + 'Revoking a revoked key again changes nothing.',
    params: { kid: KID_PARAM },
    body: { schema: KEY_REVOCATION, required: false, description: 'Optional: rotate' },
    answers: { 200: { description: 'The revoked key, its replacement (null without rotate) and every key', schema: KEY_REVOKED } },
    errors: {
      400: BAD_BODY,
      404: 'not_found: no key with this kid',
      409: 'conflict: the key signs now; revoke it with {"rotate": true}',
      ...BODY_ERRORS,
      ...TOO_LONG,
      503: UNAVAILABLE,
    },
  },
  openApiDocument: {
    operationId: 'getOpenApiDocument',
    method: 'GET',
    path: `${ADMIN_PREFIX}/openapi.json`,
    tag: 'meta',
    summary: 'This document',
    description: 'The OpenAPI 3.1 document of the admin listener, generated from the schemas the routes validate with '
      + '(also committed as docs/openapi.json).',
    query: {},
    answers: {
      200: {
        description: 'The OpenAPI document',
        schema: { type: 'object', required: ['openapi', 'paths'], properties: { openapi: { type: 'string' }, paths: { type: 'object' } } },
      },
    },
    errors: { 400: BAD_QUERY },
  },
} as const satisfies Record<string, AdminOperation>;

const PPROF_NOTE = 'Only with M2M_AUTH_PPROF=true (404 otherwise).';
const SECONDS: Parameter = {
  schema: { type: 'string', pattern: '^\\d{1,2}$' },
  description: `Seconds to take it for: a whole number from 1 to ${MAX_PROFILE_SECONDS}, default ${DEFAULT_PROFILE_SECONDS}; it ends early when DELETE names it`,
};
const FORMAT: Parameter = {
  schema: { type: 'string', enum: ['pprof', 'devtools'] },
  description: 'pprof (gzipped protobuf, the default) or devtools (V8\'s JSON, as Chrome DevTools and speedscope read it)',
};
const PPROF: Answer = {
  description: 'A gzipped pprof profile, or V8\'s JSON with format=devtools',
  contentType: ['application/octet-stream', 'application/json'],
};
const PPROF_OR_JSON = { 200: PPROF } as const;

const stopRoute = (path: string, operationId: string, what: string): AdminOperation => ({
  operationId,
  method: 'DELETE',
  path,
  tag: 'debug',
  summary: `End the ${what} being taken now; its GET answers with what was taken so far`,
  description: PPROF_NOTE,
  closedQuery: false,
  answers: { 204: { description: 'Ended' } },
  errors: { 400: 'invalid_request: a body that is not valid JSON', 404: `not_found: no ${what} is being taken`, ...BODY_ERRORS },
});

/** The pprof and runtime routes (pprof-routes.ts); unknown query parameters are ignored there. */
export const DEBUG_OPERATIONS = {
  cpuProfile: {
    operationId: 'getCpuProfile',
    method: 'GET',
    path: `${DEBUG_PREFIX}/profile`,
    tag: 'debug',
    summary: 'A CPU profile taken for `seconds`',
    description: PPROF_NOTE,
    closedQuery: false,
    query: {
      seconds: SECONDS,
      interval: { schema: { type: 'string', pattern: '^\\d{1,9}$' }, description: `Sampling interval in microseconds, ${CPU_INTERVAL_US.min} to ${CPU_INTERVAL_US.max}` },
      format: FORMAT,
    },
    answers: PPROF_OR_JSON,
    errors: { 400: BAD, 409: 'conflict: a CPU profile is already being taken' },
  },
  heapProfile: {
    operationId: 'getHeapProfile',
    method: 'GET',
    path: `${DEBUG_PREFIX}/heap`,
    tag: 'debug',
    summary: 'The sampled live heap',
    description: PPROF_NOTE,
    closedQuery: false,
    answers: { 200: { description: 'A gzipped pprof profile', contentType: 'application/octet-stream' } },
    errors: { 409: 'conflict: the heap profiler is in use by something else in this process' },
  },
  allocationProfile: {
    operationId: 'getAllocationProfile',
    method: 'GET',
    path: `${DEBUG_PREFIX}/allocs`,
    tag: 'debug',
    summary: 'Every allocation sampled for `seconds`, collected ones too',
    description: PPROF_NOTE,
    closedQuery: false,
    query: {
      seconds: SECONDS,
      interval: {
        schema: { type: 'string', pattern: '^\\d{1,9}$' },
        description: `Mean bytes between samples, ${ALLOC_INTERVAL_BYTES.min} to ${ALLOC_INTERVAL_BYTES.max}`,
      },
      format: FORMAT,
    },
    answers: PPROF_OR_JSON,
    errors: { 400: BAD, 409: 'conflict: an allocation profile is already being taken' },
  },
  runtimeWindow: {
    operationId: 'getRuntimeWindow',
    method: 'GET',
    path: RUNTIME_PATH,
    tag: 'debug',
    summary: 'Memory, GC pauses, event-loop delay and utilisation, and active handles over `seconds`',
    description: PPROF_NOTE,
    closedQuery: false,
    query: { seconds: SECONDS },
    answers: { 200: { description: 'The measurements', schema: { type: 'object' } } },
    errors: { 400: BAD, 409: 'conflict: a runtime window is already being taken' },
  },
  stopCpuProfile: stopRoute(`${DEBUG_PREFIX}/profile`, 'stopCpuProfile', 'CPU profile'),
  stopAllocationProfile: stopRoute(`${DEBUG_PREFIX}/allocs`, 'stopAllocationProfile', 'allocation profile'),
  stopRuntimeWindow: stopRoute(RUNTIME_PATH, 'stopRuntimeWindow', 'runtime window'),
} as const satisfies Record<string, AdminOperation>;

/** GET /metrics (observability/metrics.ts), outside the admin token: scrapers carry none. */
export const METRICS_OPERATION: AdminOperation = {
  operationId: 'getMetrics',
  method: 'GET',
  path: '/metrics',
  tag: 'meta',
  summary: 'Prometheus metrics',
  auth: false,
  closedQuery: false,
  answers: {
    200: { description: 'The Prometheus text exposition format', contentType: 'text/plain' },
    503: { description: 'With --workers: the primary did not answer (a failed scrape shows as up == 0)', contentType: 'text/plain' },
  },
  errors: {},
};

/** Every route of the admin listener. */
export const ALL_OPERATIONS: readonly AdminOperation[] = [
  ...Object.values(ADMIN_OPERATIONS),
  ...Object.values(DEBUG_OPERATIONS),
  METRICS_OPERATION,
];

/** The error answers of `op` (each with the admin error body), with 401 and 500 for a route behind the admin token. */
export function errorAnswers(op: AdminOperation): Record<number, string> {
  const out: Record<number, string> = { ...op.errors };
  // The router refuses a path whose parameter does not decode (routes.ts, adminFrameworkErrors).
  if (op.params !== undefined) out[400] = `${out[400] ?? 'invalid_request'}; or a path parameter that does not decode`;
  if (op.auth !== false) {
    out[401] = 'unauthorized: no admin token, or not this one (WWW-Authenticate: Bearer)';
    out[500] = 'server_error: a fault of the server itself';
  }
  return out;
}

export { ADMIN_ERROR };
