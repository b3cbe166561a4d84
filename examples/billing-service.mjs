// The billing service: every few seconds it places an order and lists the orders, with a token
// from m2m-auth that the SDK caches and refreshes before it expires.
//
//   M2M_AUTH_ISSUER        the m2m-auth issuer (default http://localhost:8080)
//   BILLING_CLIENT_ID      billing's client_id (required)
//   BILLING_CLIENT_SECRET  billing's client secret (required)
//   ORDERS_URL             the orders API (default http://127.0.0.1:3000)
//   ORDERS_AUDIENCE        the resource to ask a token for (default the origin of ORDERS_URL)
//   INTERVAL_MS            time between two rounds (default 5000)
//   BILLING_DPOP           1: DPoP-bound tokens (RFC 9449), a key made at start and held in memory;
//                          every call then sends `Authorization: DPoP` and a fresh proof
//
// Run `npm run build` first: this file uses the compiled SDK (@m2m-auth/sdk, packages/sdk/dist/).

import { createAuthFetch, createTokenProvider, DiscoveryError, TokenRequestError } from '@m2m-auth/sdk/client';

const issuer = process.env.M2M_AUTH_ISSUER ?? 'http://localhost:8080';
const clientId = process.env.BILLING_CLIENT_ID;
const clientSecret = process.env.BILLING_CLIENT_SECRET;
const ordersUrl = (process.env.ORDERS_URL ?? 'http://127.0.0.1:3000').replace(/\/+$/, '');
const audience = process.env.ORDERS_AUDIENCE ?? new URL(ordersUrl).origin;
const intervalMs = Number(process.env.INTERVAL_MS ?? 5000);
const dpop = process.env.BILLING_DPOP === '1';

if (!clientId || !clientSecret) {
  console.error('[billing] set BILLING_CLIENT_ID and BILLING_CLIENT_SECRET (see examples/README.md)');
  process.exit(1);
}

// No scope parameter: the server grants the client's registered scopes.
// With dpop, a stolen token is useless without the key: the API checks a proof made with it.
const tokens = createTokenProvider({ issuer, clientId, clientSecret, resource: audience, ...(dpop && { dpop: true }) });
const authFetch = createAuthFetch(tokens);

const items = ['invoice paper', 'stamps', 'envelopes', 'toner'];
let round = 0;

/** @param {string} method @param {unknown} [body] */
async function call(method, body) {
  const res = await authFetch(`${ordersUrl}/orders`, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await res.text();
  console.log(`[billing] ${method} /orders -> ${res.status} ${method === 'GET' && res.status === 200 ? summary(text) : text}`);
}

/** "3 orders, latest #3: 3 x toner by cl_..." for a GET /orders answer. */
function summary(text) {
  const { orders } = /** @type {{ orders: { id: number, item: string, quantity: number, created_by: string }[] }} */ (JSON.parse(text));
  const latest = orders.at(-1);
  return latest === undefined ? '0 orders' : `${orders.length} orders, latest #${latest.id}: ${latest.quantity} x ${latest.item} by ${latest.created_by}`;
}

async function tick() {
  round++;
  try {
    await call('POST', { item: items[round % items.length], quantity: round });
    await call('GET');
  } catch (err) {
    if (err instanceof TokenRequestError) {
      console.error(`[billing] no token: ${err.error}${err.error_description ? ` (${err.error_description})` : ''}, HTTP ${err.status ?? '-'}`);
    } else if (err instanceof DiscoveryError) {
      console.error(`[billing] cannot discover ${issuer}: ${err.message}`);
    } else {
      console.error(`[billing] ${/** @type {Error} */ (err).message}`);
    }
  }
}

console.log(`[billing] calling ${ordersUrl} every ${intervalMs} ms as ${clientId} (issuer ${issuer})${dpop ? `, DPoP key ${await tokens.dpop.thumbprint()}` : ''}`);
await tick();
const timer = setInterval(() => void tick(), intervalMs);
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    clearInterval(timer);
    process.exit(0);
  });
}
