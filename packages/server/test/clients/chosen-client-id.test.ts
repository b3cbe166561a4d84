// Operator-chosen client_ids (issue 16) through the admin API and the token endpoint: accepted in
// the cl_ shape, 409 on a clash, treated as our own by the checks that decide what is logged and
// counted per client; and client_secret_sha256, which keeps an existing secret on create.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { secretDigest } from '../../src/clients/secrets.js';
import { hasIssuedClientIdShape } from '../../src/ground/client-id.js';
import type { EventMap } from '../../src/observability/events.js';
import { ORDERS, startTestServer, type TestServer } from '../helpers/server.js';

let t: TestServer;
const denied: Array<EventMap['token.denied']> = [];

beforeAll(async () => {
  t = await startTestServer();
  t.server.events.on('token.denied', (e) => denied.push(e));
});
afterAll(() => t.close());

const base = { client_name: 'chosen', scope: 'orders:read', audience: [ORDERS] };

function create(body: object) {
  return t.admin({ method: 'POST', url: '/admin/clients', payload: body });
}

describe('the client_id shape', () => {
  it('is cl_ and 1 to 64 of [A-Za-z0-9_-], issued or chosen; a secret never has it', () => {
    for (const id of ['cl_a', 'cl_billing-eu_2', `cl_${'x'.repeat(64)}`, 'cl_AAAAAAAAAAAAAAAA']) expect(hasIssuedClientIdShape(id)).toBe(true);
    for (const id of ['cl_', `cl_${'x'.repeat(65)}`, 'cl_a.b', 'cl_a b', 'xcl_a', 'm2m_cs_abc', 'cl_a\n']) expect(hasIssuedClientIdShape(id)).toBe(false);
  });
});

describe('POST /admin/clients with a client_id', () => {
  it('registers the client under it (Location, body), and the client gets tokens with it as sub and client_id', async () => {
    const res = await create({ ...base, client_id: 'cl_billing' });
    expect(res.statusCode).toBe(201);
    expect(res.headers.location).toBe('/admin/clients/cl_billing');
    expect(res.json()).toMatchObject({ client_id: 'cl_billing', client_secret: expect.stringMatching(/^m2m_cs_/) });
    const tok = await t.token('cl_billing', res.json().client_secret);
    expect(tok.statusCode).toBe(200);
    const payload = JSON.parse(Buffer.from(tok.json().access_token.split('.')[1], 'base64url').toString());
    expect(payload).toMatchObject({ sub: 'cl_billing', client_id: 'cl_billing' });
  });

  it('answers 409 conflict when the client_id is taken, and leaves the client as it was', async () => {
    const first = await create({ ...base, client_id: 'cl_taken' });
    const again = await create({ ...base, client_name: 'intruder', client_id: 'cl_taken' });
    expect(again.statusCode).toBe(409);
    expect(again.json()).toStrictEqual({ error: 'conflict', message: 'A client with client_id "cl_taken" already exists' });
    expect((await t.server.clients.read('cl_taken')).clientName).toBe('chosen');
    expect((await t.token('cl_taken', first.json().client_secret)).statusCode).toBe(200);
  });

  it('answers 400 naming the field for an id of another shape', async () => {
    const res = await create({ ...base, client_id: 'billing' });
    expect(res.statusCode).toBe(400);
    expect(res.json().message).toMatch(/^client_id must be "cl_" followed by 1 to 64/);
    const patch = await t.admin({ method: 'PATCH', url: '/admin/clients/cl_billing', payload: { client_id: 'cl_other' } });
    expect(patch.statusCode).toBe(400);
    expect(patch.json().message).toMatch(/client_id cannot be changed/);
  });

  it('a chosen id of any length in the shape is named in the events that decide logs, throttling and metric labels', async () => {
    const id = `cl_${'Long-Name_'.repeat(6)}1234`;
    expect(id.length).toBe(67);
    expect((await create({ ...base, client_id: id })).statusCode).toBe(201);
    denied.length = 0;
    expect((await t.token(id, 'm2m_cs_wrong')).statusCode).toBe(401);
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ clientId: id, error: 'invalid_client' });
  });
});

describe('client_secret_sha256', () => {
  it('re-creates a client elsewhere with the secret it had: no new secret is shown, the old one authenticates', async () => {
    const original = await create({ ...base, client_id: 'cl_source' });
    const secret = original.json().client_secret as string;
    const copy = await create({ ...base, client_id: 'cl_copy', client_secret_sha256: secretDigest(secret) });
    expect(copy.statusCode).toBe(201);
    expect(copy.json().client_secret).toBeUndefined();
    expect(copy.body).not.toContain(secretDigest(secret));
    expect((await t.token('cl_copy', secret)).statusCode).toBe(200);
    expect((await t.token('cl_copy', `${secret}x`)).statusCode).toBe(401);
  });
});
