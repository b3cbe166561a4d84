// The orders API: a small Fastify service that only m2m-auth access tokens get into.
// GET /orders needs the scope orders:read, POST /orders needs orders:write.
//
//   M2M_AUTH_ISSUER  the m2m-auth issuer (default http://localhost:8080)
//   ORDERS_URL       where this API listens, and its audience (default http://127.0.0.1:3000)
//   ORDERS_AUDIENCE  the audience tokens must name (default the origin of ORDERS_URL)
//   ORDERS_CLIENT_ID, ORDERS_CLIENT_SECRET
//                    optional: this API's own client (registered with --grant-types none
//                    --resource-uri <audience>); when set, every token is also introspected so
//                    revoked tokens stop working within two seconds
//   ORDERS_DPOP_NONCE 1: DPoP proofs must carry a nonce this API hands out (RFC 9449 §9)
//
// DPoP-bound tokens are accepted with the DPoP scheme and a valid proof only; a Bearer token works
// as before. Tokens bound to a client certificate need this API to listen with TLS (see docs/sdk.md).
//
// Run `npm run build` first: this file uses the compiled SDK (@m2m-auth/sdk, packages/sdk/dist/).

import Fastify from 'fastify';
import { createVerifier, fastifyBearerAuth, requireScope } from '@m2m-auth/sdk/verify';

const issuer = process.env.M2M_AUTH_ISSUER ?? 'http://localhost:8080';
const listenUrl = new URL(process.env.ORDERS_URL ?? 'http://127.0.0.1:3000');
const audience = process.env.ORDERS_AUDIENCE ?? listenUrl.origin;
const introspectionClientId = process.env.ORDERS_CLIENT_ID;
const introspectionClientSecret = process.env.ORDERS_CLIENT_SECRET;
const dpopNonce = process.env.ORDERS_DPOP_NONCE === '1';

const verifier = createVerifier({
  issuer,
  audience,
  ...(introspectionClientId && introspectionClientSecret
    ? { introspection: { clientId: introspectionClientId, clientSecret: introspectionClientSecret, cacheTtlMs: 2000 } }
    : {}),
  // Advertises DPoP in challenges; proofs are checked for DPoP-bound tokens either way.
  dpop: { nonce: dpopNonce },
});

/** @typedef {{ id: number, item: string, quantity: number, created_by: string, created_at: string }} Order */
/** @type {Order[]} */
const orders = [];

const app = Fastify();

app.addHook('onResponse', async (request, reply) => {
  const caller = request.auth?.client_id === undefined ? 'anonymous' : `${request.auth.client_id}${request.auth.cnf?.jkt ? ', DPoP-bound' : ''}`;
  console.log(`[orders] ${request.method} ${request.url} -> ${reply.statusCode} (${caller})`);
});

app.get('/health', async () => ({ ok: true }));

// Everything registered in this scope needs a valid token; /health above stays public.
await app.register(async (api) => {
  // origin: the htu of DPoP proofs is the URL billing calls, whatever Host header arrives.
  await api.register(fastifyBearerAuth(verifier, { realm: 'orders', origin: listenUrl.origin }));

  api.get('/orders', { preHandler: requireScope('orders:read') }, async () => ({ orders }));

  api.post('/orders', { preHandler: requireScope('orders:write') }, async (request, reply) => {
    const body = /** @type {{ item?: unknown, quantity?: unknown }} */ (request.body ?? {});
    if (typeof body.item !== 'string' || !Number.isInteger(body.quantity) || Number(body.quantity) < 1) {
      return reply.code(400).send({ error: 'invalid_order', error_description: 'item (string) and quantity (whole number >= 1) are required' });
    }
    /** @type {Order} */
    const order = {
      id: orders.length + 1,
      item: body.item,
      quantity: Number(body.quantity),
      created_by: request.auth.client_id,
      created_at: new Date().toISOString(),
    };
    orders.push(order);
    return reply.code(201).send(order);
  });
});

await app.listen({ host: listenUrl.hostname, port: Number(listenUrl.port || 80) });
console.log(`[orders] listening on ${listenUrl.origin}; tokens from ${issuer} for ${audience}${introspectionClientId ? ' (introspected)' : ''}`);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    void app.close().then(() => process.exit(0));
  });
}
