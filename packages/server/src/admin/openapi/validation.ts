// Registers a route of the route table (operations.ts) with its request schemas, so that Fastify
// validates its path parameters, query and body (Ajv, JSON Schema 2020-12) before the handler.
//
// A request the schemas refuse gets the words of the route's hand-written checks, which refuse
// it too (the schemas never refuse more than they do): `explain` (the route's checks, by default
// its `parse`) runs and throws its error. Should it not throw, the schema's own message answers a
// 400, so nothing the schema refuses reaches the handler.

import type { FastifyInstance, FastifyReply, FastifyRequest, FastifySchema } from 'fastify';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { AdminOperation } from './operations.js';
import type { JsonSchema } from './schemas.js';
import { AdminRequestError } from '../request.js';

export type { AdminOperation };

/** What a route does with its parsed input; its result is the answer's body. */
export type Act<T> = (input: T, req: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

// Ajv as the schemas mean it: no coercion, no defaults filled in, nothing removed (Fastify's own
// Ajv coerces types and drops unknown members, which would hide the errors the API answers).
const ajv = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: false, coerceTypes: false, useDefaults: false, removeAdditional: false });

function properties(params: Readonly<Record<string, { schema: JsonSchema }>>): Record<string, JsonSchema> {
  return Object.fromEntries(Object.entries(params).map(([name, p]) => [name, p.schema]));
}

// One schema object per operation, so that Ajv (which caches by schema object) compiles each once
// however many apps register the routes.
const built = new WeakMap<AdminOperation, FastifySchema>();

/** The request schemas of `op` in Fastify's form: params, querystring, body. */
export function requestSchemas(op: AdminOperation): FastifySchema {
  let schemas = built.get(op);
  if (schemas === undefined) {
    schemas = buildRequestSchemas(op);
    built.set(op, schemas);
  }
  return schemas;
}

function buildRequestSchemas(op: AdminOperation): FastifySchema {
  const schema: Record<string, unknown> = {};
  if (op.params !== undefined) {
    schema.params = { type: 'object', required: Object.keys(op.params), properties: properties(op.params) };
  }
  if (op.query !== undefined) {
    schema.querystring = { type: 'object', properties: properties(op.query), additionalProperties: op.closedQuery === false };
  }
  if (op.body !== undefined) {
    // Fastify validates an absent body as null; an optional body may be absent.
    schema.body = op.body.required ? op.body.schema : { anyOf: [{ type: 'null' }, op.body.schema] };
  }
  return schema as FastifySchema;
}

/** `op.path` as a Fastify route path under `prefix`: /admin/clients/{id} -> /clients/:id. */
export function fastifyPath(op: AdminOperation, prefix: string): string {
  if (!op.path.startsWith(prefix)) throw new Error(`${op.path} is not under ${prefix}`);
  return op.path.slice(prefix.length).replace(/\{(\w+)\}/g, ':$1');
}

/**
 * Registers `op` on `app` (whose routes live under `prefix`): the schemas validate, then `parse`
 * (the hand-written checks, which give the error words) reads the request and `act` answers it.
 */
export function adminRoute<T>(
  app: FastifyInstance,
  op: AdminOperation,
  parse: (req: FastifyRequest) => T,
  act: Act<T>,
  explain: (req: FastifyRequest) => void = parse,
  prefix = '/admin',
): void {
  app.route({
    ...validatedRoute(op, prefix),
    handler: async (req, reply) => {
      if (req.validationError !== undefined) {
        explain(req);
        throw new AdminRequestError(400, schemaRefusal(req.validationError));
      }
      return act(parse(req), req, reply);
    },
  });
}

/**
 * The route options of `op` but its handler: path, request schemas and their validation, the
 * error left in `req.validationError` for the handler to answer in its own words.
 */
export function validatedRoute(op: AdminOperation, prefix: string) {
  return {
    method: op.method,
    url: fastifyPath(op, prefix),
    schema: requestSchemas(op),
    validatorCompiler: ({ schema }: { schema: unknown }) => ajv.compile(schema as JsonSchema),
    attachValidation: true,
  };
}

/** The message of a request the schemas refused and the route's own checks let through. */
export function schemaRefusal(err: Error): string {
  return `The request does not match the admin API's schema: ${err.message}`;
}
