// The OpenAPI 3.1 document of the admin listener, generated from the route table (operations.ts)
// and the schemas the routes validate with (schemas.ts): served at GET /admin/openapi.json and
// committed as docs/openapi.json (`npm run docs:openapi`; a test checks the two are the same).

import { ALL_OPERATIONS, errorAnswers, type AdminOperation, type Answer } from './operations.js';
import { COMPONENTS, type JsonSchema } from './schemas.js';

const ERROR_REF = { $ref: '#/components/schemas/AdminError' };

const ERROR_HEADERS: Record<number, Record<string, unknown>> = {
  401: { 'WWW-Authenticate': { description: 'Bearer realm="m2m-auth admin", with error="invalid_token" for a wrong token (RFC 6750 §3)', schema: { type: 'string' } } },
  503: { 'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'string' } } },
};

/**
 * The version of the admin API (not of the server): its major changes when a change could break a
 * client generated from the document (a member or route removed or renamed, a new required member).
 */
export const ADMIN_API_VERSION = '1.0.0';

/** `schema` with every component inside it (but itself when `self`) replaced by its $ref. */
function withRefs(schema: unknown, names: ReadonlyMap<unknown, string>, self?: unknown): unknown {
  if (typeof schema !== 'object' || schema === null) return schema;
  const name = names.get(schema);
  if (name !== undefined && schema !== self) return { $ref: `#/components/schemas/${name}` };
  if (Array.isArray(schema)) return schema.map((s) => withRefs(s, names));
  return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, withRefs(v, names)]));
}

function answer(a: Answer, ref: (s: JsonSchema) => unknown): Record<string, unknown> {
  const out: Record<string, unknown> = { description: a.description };
  if (a.headers !== undefined) {
    out.headers = Object.fromEntries(Object.entries(a.headers).map(([h, d]) => [h, { description: d, schema: { type: 'string' } }]));
  }
  if (a.schema !== undefined || a.contentType !== undefined) {
    const types = [a.contentType ?? 'application/json'].flat();
    out.content = Object.fromEntries(types.map((type, i) => [type, a.schema === undefined || i > 0 ? {} : { schema: ref(a.schema) }]));
  }
  return out;
}

function operation(op: AdminOperation, ref: (s: JsonSchema) => unknown): Record<string, unknown> {
  const parameters = [
    ...Object.entries(op.params ?? {}).map(([name, p]) => ({ name, in: 'path', required: true, description: p.description, schema: p.schema })),
    ...Object.entries(op.query ?? {}).map(([name, p]) => ({
      name, in: 'query', required: p.required ?? false, description: p.description, schema: p.schema,
    })),
  ];
  const responses: Record<string, unknown> = {};
  for (const [status, a] of Object.entries(op.answers)) responses[status] = answer(a, ref);
  for (const [status, description] of Object.entries(errorAnswers(op))) {
    const headers = ERROR_HEADERS[Number(status)];
    responses[status] = { description, ...(headers ? { headers } : {}), content: { 'application/json': { schema: ERROR_REF } } };
  }
  return {
    operationId: op.operationId,
    tags: [op.tag],
    summary: op.summary,
    ...(op.description !== undefined ? { description: op.description } : {}),
    ...(op.auth === false ? { security: [] } : {}),
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(op.body !== undefined
      ? { requestBody: { required: op.body.required, description: op.body.description, content: { 'application/json': { schema: ref(op.body.schema) } } } }
      : {}),
    responses: Object.fromEntries(Object.entries(responses).sort(([a], [b]) => Number(a) - Number(b))),
  };
}

/** The OpenAPI 3.1 document of every route in ALL_OPERATIONS, as a plain JSON object. */
export function openApiDocument(): Record<string, unknown> {
  const names = new Map<unknown, string>(Object.entries(COMPONENTS).map(([name, schema]) => [schema, name]));
  const ref = (s: JsonSchema): unknown => withRefs(s, names);
  const paths: Record<string, Record<string, unknown>> = {};
  for (const op of ALL_OPERATIONS) {
    const item = (paths[op.path] ??= {});
    item[op.method.toLowerCase()] = operation(op, ref);
  }
  return {
    openapi: '3.1.1',
    info: {
      title: 'm2m-auth admin API',
      version: ADMIN_API_VERSION,
      description: 'The admin listener of m2m-auth (M2M_AUTH_ADMIN_LISTEN; keep it private): clients (RFC 7591 metadata), '
        + 'their secrets and kill switch, signing keys, and, with M2M_AUTH_PPROF=true, profiles. Every route but GET /metrics '
        + 'needs the admin token. Answers carry Cache-Control: no-store; errors are {"error", "message"}.',
      license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    security: [{ adminToken: [] }],
    tags: [
      { name: 'clients', description: 'The client registry' },
      { name: 'keys', description: 'Signing keys: rotation and revocation' },
      { name: 'debug', description: 'CPU and heap profiles and runtime measurements (M2M_AUTH_PPROF=true)' },
      { name: 'meta', description: 'This document and the metrics' },
    ],
    paths,
    components: {
      schemas: Object.fromEntries(Object.entries(COMPONENTS).map(([name, schema]) => [name, withRefs(schema, names, schema)])),
      securitySchemes: {
        adminToken: {
          type: 'http',
          scheme: 'bearer',
          description: 'The admin token (M2M_AUTH_ADMIN_TOKEN, or the one generated into data/admin-token)',
        },
      },
    },
  };
}

/** The document as committed in docs/openapi.json. */
export function openApiJson(): string {
  return `${JSON.stringify(openApiDocument(), null, 2)}\n`;
}
