// The admin API: client registry management (RFC 7591 §2 metadata), trusted issuers (federated
// clients, issue 17) and signing key rotation and revocation, on its own listener, behind the RFC 6750 bearer admin token.
//
// Responses are JSON with Cache-Control: no-store. Client mistakes get 400/404/409/413/414/415
// with { error, message }; a database that does not answer is a 503 (nothing acknowledged, retry
// later); only a fault of the server itself becomes a 500.
//
// Each route is an entry of the route table (openapi/operations.ts), whose schemas validate the
// request before the route's own checks read it, and from which the OpenAPI document is made.

import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { ClientExistsError, ClientNotFoundError, FederatedIdentityTakenError, type ClientRegistry } from '../clients/registry.js';
import { TrustExistsError, TrustInUseError, TrustNotFoundError, type TrustRegistry } from '../trusts/registry.js';
import { MAX_TRUST_LIST_LIMIT, TrustValidationError } from '../trusts/rules.js';
import { trustToWire } from '../trusts/wire.js';
import { ClientValidationError, MAX_LIST_LIMIT } from '../clients/metadata.js';
import { clientToWire, clientToWireWithSecret, epochSeconds, type ClientCreateInput, type ClientMetadataInput } from '../clients/wire.js';
import type { AuditContext, EventBus } from '../observability/events.js';
import { KeyNotFoundError, KeyRevocationRefusedError } from '../keys/keyring.js';
import { isStorageUnavailable } from '../storage/unavailable.js';
import { RETRY_AFTER_SECONDS } from '../ground/errors.js';
import { adminTokenHook } from './bearer.js';
import { keyToWire } from './key-wire.js';
import { AdminRequestError, objectBody, optionalBody, optionalBoolean, optionalSeconds, queryInt, readQuery, refuseReservedMembers } from './request.js';
import { adminRoute, type Act, type AdminOperation } from './openapi/validation.js';
import { ADMIN_OPERATIONS, ADMIN_PREFIX, DEFAULT_LIST_LIMIT } from './openapi/operations.js';
import { MAX_ID_LENGTH } from './openapi/schemas.js';
import { openApiJson } from './openapi/document.js';

/** The key ring as the admin API uses it (KeyRing; a fake in unit tests). */
export interface AdminKeys {
  list(): unknown[];
  /** `activateAt` now: the new key signs at once. */
  rotate(opts?: { activateAt?: number }): Promise<unknown>;
  /** Throws KeyNotFoundError, or KeyRevocationRefusedError for the signing key without `rotate`. */
  revoke(kid: string, opts: { rotate: boolean; audit: AuditContext }): Promise<{ revoked: unknown; replacement: unknown }>;
}

export interface AdminDeps {
  registry: ClientRegistry;
  /** Trusted issuers (issue 17): /admin/trusted-issuers. */
  trusts: TrustRegistry;
  keys: AdminKeys;
  adminToken: string;
  events: EventBus;
}

export { ADMIN_PREFIX, DEFAULT_LIST_LIMIT };

interface IdParams {
  id: string;
}

interface NameParams {
  name: string;
}

interface KidParams {
  kid: string;
}

type AdminErrorCode = 'invalid_request' | 'unauthorized' | 'not_found' | 'conflict' | 'server_error' | 'temporarily_unavailable';

function sendError(reply: FastifyReply, status: number, error: AdminErrorCode, message: string): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send({ error, message });
}

/**
 * Fastify's `frameworkErrors` for the admin listener: a URL the router refuses before any route
 * runs (and so before the admin token is checked) answers in the admin API's error shape. A path
 * parameter over MAX_ID_LENGTH characters is 414 (the id is not echoed: it may be a secret pasted
 * into the wrong place), a path that does not decode is 400.
 */
export function adminFrameworkErrors(err: FastifyError, _req: FastifyRequest, reply: FastifyReply): void {
  const tooLong = err.code === 'FST_ERR_MAX_PARAM_LENGTH';
  void reply.code(tooLong ? 414 : 400).header('cache-control', 'no-store').type('application/json; charset=utf-8').send({
    error: 'invalid_request',
    message: tooLong ? `A path parameter is longer than ${MAX_ID_LENGTH} characters` : 'The request path is not a valid URL',
  });
}

function audit(req: FastifyRequest): AuditContext {
  return { ip: req.ip, requestId: String(req.id) };
}

function clientId(req: FastifyRequest): string {
  const { id } = req.params as IdParams;
  if (id.length === 0 || id.length > MAX_ID_LENGTH) throw new ClientNotFoundError(id);
  return id;
}

/** Registers the admin routes under /admin in an encapsulated context of `app`. */
export async function registerAdminRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  const { registry, trusts, keys, events } = deps;
  const trustName = (req: FastifyRequest): string => {
    const { name } = req.params as NameParams;
    if (name.length === 0 || name.length > MAX_ID_LENGTH) throw new TrustNotFoundError(name);
    return name;
  };

  await app.register(async (admin) => {
    // Only JSON bodies; an empty body reads as no body, so action routes work without one. A
    // member named __proto__, constructor or prototype, at any depth, is refused (400).
    admin.removeAllContentTypeParsers();
    admin.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, body, done) => {
      const text = typeof body === 'string' ? body : body.toString('utf8');
      if (text.trim() === '') {
        done(null, undefined);
        return;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        done(new AdminRequestError(400, 'The request body is not valid JSON'), undefined);
        return;
      }
      try {
        refuseReservedMembers(parsed);
      } catch (err) {
        done(err as AdminRequestError, undefined);
        return;
      }
      done(null, parsed);
    });

    // onRequest runs before the body is read: an unauthenticated caller gets nothing parsed.
    admin.addHook('onRequest', adminTokenHook(deps.adminToken, events, 'The admin API needs the admin token: Authorization: Bearer <token>'));

    admin.addHook('onSend', async (_req, reply, payload) => {
      reply.header('cache-control', 'no-store');
      return payload;
    });

    admin.setNotFoundHandler((req, reply) => {
      sendError(reply, 404, 'not_found', `No admin endpoint ${req.method} ${req.url.split('?')[0]}`);
    });

    admin.setErrorHandler((err: FastifyError, req, reply) => {
      if (err instanceof ClientValidationError) return sendError(reply, 400, 'invalid_request', err.message);
      if (err instanceof ClientNotFoundError) return sendError(reply, 404, 'not_found', err.message);
      if (err instanceof KeyNotFoundError) return sendError(reply, 404, 'not_found', err.message);
      if (err instanceof KeyRevocationRefusedError) return sendError(reply, 409, 'conflict', err.message);
      if (err instanceof ClientExistsError) return sendError(reply, 409, 'conflict', err.message);
      if (err instanceof FederatedIdentityTakenError) return sendError(reply, 409, 'conflict', err.message);
      if (err instanceof TrustValidationError) return sendError(reply, 400, 'invalid_request', err.message);
      if (err instanceof TrustNotFoundError) return sendError(reply, 404, 'not_found', err.message);
      if (err instanceof TrustExistsError || err instanceof TrustInUseError) return sendError(reply, 409, 'conflict', err.message);
      if (err instanceof AdminRequestError) return sendError(reply, err.status, 'invalid_request', err.message);
      switch (err.code) {
        case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
          return sendError(reply, 415, 'invalid_request', 'The request body must be JSON (Content-Type: application/json)');
        case 'FST_ERR_CTP_BODY_TOO_LARGE':
          return sendError(reply, 413, 'invalid_request', 'The request body is too large');
      }
      if (isStorageUnavailable(err)) {
        req.log.warn({ err: err.message }, 'admin request failed: storage unavailable');
        reply.header('retry-after', String(RETRY_AFTER_SECONDS));
        return sendError(reply, 503, 'temporarily_unavailable',
          'The database is not answering: the request could not be completed and nothing was acknowledged. Retry later.');
      }
      const status = err.statusCode;
      if (typeof status === 'number' && status >= 400 && status < 500) {
        return sendError(reply, status, 'invalid_request', err.message);
      }
      req.log.error({ err }, 'admin request failed');
      return sendError(reply, 500, 'server_error', 'The server encountered an unexpected condition');
    });

    const route = <T>(op: AdminOperation, parse: (req: FastifyRequest) => T, act: Act<T>, explain?: (req: FastifyRequest) => void): void =>
      adminRoute(admin, op, parse, act, explain);
    const ops = ADMIN_OPERATIONS;

    route(ops.createClient, (req) => objectBody(req.body), async (body, req, reply) => {
      const { client, clientSecret } = await registry.create(body as ClientCreateInput, audit(req));
      reply.code(201).header('location', `${ADMIN_PREFIX}/clients/${encodeURIComponent(client.clientId)}`);
      return clientSecret === undefined ? clientToWire(client) : clientToWireWithSecret(client, clientSecret);
    }, (req) => registry.checkCreate(objectBody(req.body)));

    route(ops.listClients, (req) => {
      const query = readQuery(req.query, ['limit', 'after']);
      const limit = queryInt(query.limit, 'limit', 1, MAX_LIST_LIMIT, DEFAULT_LIST_LIMIT);
      if (query.after !== undefined && (query.after === '' || query.after.length > MAX_ID_LENGTH)) {
        throw new AdminRequestError(400, `after must be a client_id of 1 to ${MAX_ID_LENGTH} characters`);
      }
      return query.after === undefined ? { limit } : { after: query.after, limit };
    }, async (page) => {
      const { clients, next } = await registry.list(page);
      return { clients: clients.map(clientToWire), next };
    });

    route(ops.getClient, (req) => {
      readQuery(req.query, []);
      return clientId(req);
    }, async (id) => clientToWire(await registry.read(id)));

    route(ops.updateClient, (req) => ({ id: clientId(req), body: objectBody(req.body) }), async ({ id, body }, req) => {
      const { client, clientSecret } = await registry.update(id, body as ClientMetadataInput, audit(req));
      return clientSecret === undefined ? clientToWire(client) : clientToWireWithSecret(client, clientSecret);
    }, (req) => {
      clientId(req);
      registry.checkUpdate(objectBody(req.body));
    });

    route(ops.deleteClient, (req) => {
      const id = clientId(req);
      optionalBody(req.body, []);
      return id;
    }, async (id, req, reply) => {
      await registry.delete(id, audit(req));
      return reply.code(204).send();
    });

    route(ops.rotateClientSecret, (req) => {
      const id = clientId(req);
      const body = optionalBody(req.body, ['grace_period']);
      return { id, grace: optionalSeconds(body.grace_period, 'grace_period') };
    }, async ({ id, grace }, req) => {
      const rotated = await registry.rotateSecret(id, grace, audit(req));
      return {
        ...clientToWireWithSecret(rotated.client, rotated.clientSecret),
        previous_secret_expires_at: rotated.previousExpiresAt === null ? null : epochSeconds(rotated.previousExpiresAt),
      };
    });

    const noBody = (req: FastifyRequest): string => {
      const id = clientId(req);
      optionalBody(req.body, []);
      return id;
    };
    route(ops.revokeClientTokens, noBody, async (id, req) => clientToWire(await registry.revokeTokens(id, audit(req))));
    route(ops.disableClient, noBody, async (id, req) => clientToWire(await registry.setDisabled(id, true, audit(req))));
    route(ops.enableClient, noBody, async (id, req) => clientToWire(await registry.setDisabled(id, false, audit(req))));

    route(ops.listKeys, (req) => readQuery(req.query, []), async () => ({ keys: keys.list().map(keyToWire) }));

    // Trusted issuers (issue 17): the same shape as /clients, named by their name.
    route(ops.createTrust, (req) => objectBody(req.body), async (body, req, reply) => {
      const trust = await trusts.create(body, audit(req));
      reply.code(201).header('location', `${ADMIN_PREFIX}/trusted-issuers/${encodeURIComponent(trust.name)}`);
      return trustToWire(trust);
    }, (req) => trusts.checkCreate(objectBody(req.body)));

    route(ops.listTrusts, (req) => {
      const query = readQuery(req.query, ['limit', 'after']);
      const limit = queryInt(query.limit, 'limit', 1, MAX_TRUST_LIST_LIMIT, DEFAULT_LIST_LIMIT);
      if (query.after !== undefined && (query.after === '' || query.after.length > MAX_ID_LENGTH)) {
        throw new AdminRequestError(400, `after must be a trust name of 1 to ${MAX_ID_LENGTH} characters`);
      }
      return query.after === undefined ? { limit } : { after: query.after, limit };
    }, async (page) => {
      const { trusts: list, next } = await trusts.list(page);
      return { trusted_issuers: list.map(trustToWire), next };
    });

    route(ops.getTrust, (req) => {
      readQuery(req.query, []);
      return trustName(req);
    }, async (name) => trustToWire(await trusts.read(name)));

    route(ops.updateTrust, (req) => ({ name: trustName(req), body: objectBody(req.body) }),
      async ({ name, body }, req) => trustToWire(await trusts.update(name, body, audit(req))), (req) => {
        trustName(req);
        trusts.checkUpdate(objectBody(req.body));
      });

    route(ops.deleteTrust, (req) => {
      const name = trustName(req);
      optionalBody(req.body, []);
      return name;
    }, async (name, req, reply) => {
      await trusts.delete(name, audit(req));
      return reply.code(204).send();
    });

    route(ops.rotateKeys, (req) => {
      const body = optionalBody(req.body, ['now']);
      return optionalBoolean(body.now, 'now') ?? false;
    }, async (now) => {
      // now: the new key signs at once, skipping the pre-publication period (a leaked key).
      const key = await (now ? keys.rotate({ activateAt: 0 }) : keys.rotate());
      return { key: keyToWire(key), keys: keys.list().map(keyToWire) };
    });

    route(ops.revokeKey, (req) => {
      const { kid } = req.params as KidParams;
      if (kid.length === 0 || kid.length > MAX_ID_LENGTH) throw new KeyNotFoundError(kid);
      const body = optionalBody(req.body, ['rotate']);
      return { kid, rotate: optionalBoolean(body.rotate, 'rotate') ?? false };
    }, async ({ kid, rotate }, req) => {
      const { revoked, replacement } = await keys.revoke(kid, { rotate, audit: audit(req) });
      return {
        key: keyToWire(revoked),
        replacement: replacement === undefined ? null : keyToWire(replacement),
        keys: keys.list().map(keyToWire),
      };
    });

    // Built once: the same bytes as docs/openapi.json.
    const document = openApiJson();
    route(ops.openApiDocument, (req) => readQuery(req.query, []), async (_query, _req, reply) =>
      reply.type('application/json; charset=utf-8').send(document));
  }, { prefix: ADMIN_PREFIX });
}
