// The admin API: client registry management (RFC 7591 §2 metadata), trusted issuers (federated
// clients, issue 17) and signing key rotation and revocation, on its own listener, behind the RFC 6750 bearer admin token.
//
// Responses are JSON with Cache-Control: no-store. Client mistakes get 400/404/409/413/415 with
// { error, message }; a database that does not answer is a 503 (nothing acknowledged, retry
// later); only a fault of the server itself becomes a 500.

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

export const ADMIN_PREFIX = '/admin';
export const DEFAULT_LIST_LIMIT = 100;
// Fastify's default maxParamLength; longer path parameters never reach a route (414).
const MAX_ID_LENGTH = 100;

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

function audit(req: FastifyRequest): AuditContext {
  return { ip: req.ip, requestId: String(req.id) };
}

function clientId(req: FastifyRequest<{ Params: IdParams }>): string {
  const { id } = req.params;
  if (id.length === 0 || id.length > MAX_ID_LENGTH) throw new ClientNotFoundError(id);
  return id;
}

/** Registers the admin routes under /admin in an encapsulated context of `app`. */
export async function registerAdminRoutes(app: FastifyInstance, deps: AdminDeps): Promise<void> {
  const { registry, trusts, keys, events } = deps;
  const trustName = (req: FastifyRequest<{ Params: NameParams }>): string => {
    const { name } = req.params;
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

    admin.post('/clients', async (req, reply) => {
      const body = objectBody(req.body);
      const { client, clientSecret } = await registry.create(body as ClientCreateInput, audit(req));
      reply.code(201).header('location', `${ADMIN_PREFIX}/clients/${encodeURIComponent(client.clientId)}`);
      return clientSecret === undefined ? clientToWire(client) : clientToWireWithSecret(client, clientSecret);
    });

    admin.get('/clients', async (req) => {
      const query = readQuery(req.query, ['limit', 'after']);
      const limit = queryInt(query.limit, 'limit', 1, MAX_LIST_LIMIT, DEFAULT_LIST_LIMIT);
      if (query.after !== undefined && (query.after === '' || query.after.length > MAX_ID_LENGTH)) {
        throw new AdminRequestError(400, `after must be a client_id of 1 to ${MAX_ID_LENGTH} characters`);
      }
      const page = await registry.list(query.after === undefined ? { limit } : { after: query.after, limit });
      return { clients: page.clients.map(clientToWire), next: page.next };
    });

    admin.get<{ Params: IdParams }>('/clients/:id', async (req) => {
      readQuery(req.query, []);
      return clientToWire(await registry.read(clientId(req)));
    });

    admin.patch<{ Params: IdParams }>('/clients/:id', async (req) => {
      const id = clientId(req);
      const body = objectBody(req.body);
      const { client, clientSecret } = await registry.update(id, body as ClientMetadataInput, audit(req));
      return clientSecret === undefined ? clientToWire(client) : clientToWireWithSecret(client, clientSecret);
    });

    admin.delete<{ Params: IdParams }>('/clients/:id', async (req, reply) => {
      const id = clientId(req);
      optionalBody(req.body, []);
      await registry.delete(id, audit(req));
      return reply.code(204).send();
    });

    admin.post<{ Params: IdParams }>('/clients/:id/secret', async (req) => {
      const id = clientId(req);
      const body = optionalBody(req.body, ['grace_period']);
      const grace = optionalSeconds(body.grace_period, 'grace_period');
      const rotated = await registry.rotateSecret(id, grace, audit(req));
      return {
        ...clientToWireWithSecret(rotated.client, rotated.clientSecret),
        previous_secret_expires_at: rotated.previousExpiresAt === null ? null : epochSeconds(rotated.previousExpiresAt),
      };
    });

    admin.post<{ Params: IdParams }>('/clients/:id/revoke-tokens', async (req) => {
      const id = clientId(req);
      optionalBody(req.body, []);
      return clientToWire(await registry.revokeTokens(id, audit(req)));
    });

    for (const [action, disabled] of [['disable', true], ['enable', false]] as const) {
      admin.post<{ Params: IdParams }>(`/clients/:id/${action}`, async (req) => {
        const id = clientId(req);
        optionalBody(req.body, []);
        return clientToWire(await registry.setDisabled(id, disabled, audit(req)));
      });
    }

    // Trusted issuers (issue 17): the same shape as /clients, named by their name.
    admin.post('/trusted-issuers', async (req, reply) => {
      const trust = await trusts.create(objectBody(req.body), audit(req));
      reply.code(201).header('location', `${ADMIN_PREFIX}/trusted-issuers/${encodeURIComponent(trust.name)}`);
      return trustToWire(trust);
    });

    admin.get('/trusted-issuers', async (req) => {
      const query = readQuery(req.query, ['limit', 'after']);
      const limit = queryInt(query.limit, 'limit', 1, MAX_TRUST_LIST_LIMIT, DEFAULT_LIST_LIMIT);
      if (query.after !== undefined && (query.after === '' || query.after.length > MAX_ID_LENGTH)) {
        throw new AdminRequestError(400, `after must be a trust name of 1 to ${MAX_ID_LENGTH} characters`);
      }
      const page = await trusts.list(query.after === undefined ? { limit } : { after: query.after, limit });
      return { trusted_issuers: page.trusts.map(trustToWire), next: page.next };
    });

    admin.get<{ Params: NameParams }>('/trusted-issuers/:name', async (req) => {
      readQuery(req.query, []);
      return trustToWire(await trusts.read(trustName(req)));
    });

    admin.patch<{ Params: NameParams }>('/trusted-issuers/:name', async (req) => {
      const name = trustName(req);
      return trustToWire(await trusts.update(name, objectBody(req.body), audit(req)));
    });

    admin.delete<{ Params: NameParams }>('/trusted-issuers/:name', async (req, reply) => {
      const name = trustName(req);
      optionalBody(req.body, []);
      await trusts.delete(name, audit(req));
      return reply.code(204).send();
    });

    admin.get('/keys', async (req) => {
      readQuery(req.query, []);
      return { keys: keys.list().map(keyToWire) };
    });

    admin.post('/keys/rotate', async (req) => {
      const body = optionalBody(req.body, ['now']);
      // now: the new key signs at once, skipping the pre-publication period (a leaked key).
      const now = optionalBoolean(body.now, 'now') ?? false;
      const key = await (now ? keys.rotate({ activateAt: 0 }) : keys.rotate());
      return { key: keyToWire(key), keys: keys.list().map(keyToWire) };
    });

    admin.post<{ Params: KidParams }>('/keys/:kid/revoke', async (req) => {
      const { kid } = req.params;
      if (kid.length === 0 || kid.length > MAX_ID_LENGTH) throw new KeyNotFoundError(kid);
      const body = optionalBody(req.body, ['rotate']);
      const rotate = optionalBoolean(body.rotate, 'rotate') ?? false;
      const { revoked, replacement } = await keys.revoke(kid, { rotate, audit: audit(req) });
      return {
        key: keyToWire(revoked),
        replacement: replacement === undefined ? null : keyToWire(replacement),
        keys: keys.list().map(keyToWire),
      };
    });
  }, { prefix: ADMIN_PREFIX });
}
