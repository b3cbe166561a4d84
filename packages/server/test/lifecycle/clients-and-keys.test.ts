// Client and signing key life cycles seen from the protocol side: secret rotation with a grace
// period, disable/enable, delete, and key rotation with pre-publication and retirement. Each test
// gets its own server, because each one moves the injected clock.

import type { LightMyRequestResponse } from 'fastify';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { ORDERS, basic, startTestServer, type TestServer } from '../helpers/server.js';

const INTROSPECT = '/oauth2/introspect';

let t: TestServer;
/** A resource server that may introspect every ORDERS token, whatever happens to their client. */
let rs: { clientId: string; clientSecret: string };

beforeEach(async () => {
  t = await startTestServer();
  rs = await t.client({ grant_types: [], audience: [], resource_uris: [ORDERS] });
});
afterEach(() => t.close());

async function issue(clientId: string, clientSecret: string): Promise<string> {
  const res = await t.token(clientId, clientSecret);
  expect(res.statusCode).toBe(200);
  return res.json().access_token as string;
}

async function active(token: string): Promise<boolean> {
  const res = await t.post(INTROSPECT, { token }, { authorization: basic(rs.clientId, rs.clientSecret) });
  expect(res.statusCode).toBe(200);
  return res.json().active as boolean;
}

function expectInvalidClient(res: LightMyRequestResponse) {
  expect(res.statusCode).toBe(401);
  expect(res.json().error).toBe('invalid_client');
}

async function rotateSecret(clientId: string, body?: Record<string, unknown>) {
  const res = await t.admin({ method: 'POST', url: `/admin/clients/${clientId}/secret`, ...(body && { payload: body }) });
  expect(res.statusCode).toBe(200);
  return res.json() as { client_secret: string; previous_secret_expires_at: number | null };
}

async function jwks(): Promise<Array<Record<string, unknown>>> {
  const res = await t.inject({ method: 'GET', url: '/oauth2/jwks' });
  expect(res.statusCode).toBe(200);
  return (res.json() as { keys: Array<Record<string, unknown>> }).keys;
}

async function kids(): Promise<string[]> {
  return (await jwks()).map((k) => k.kid as string);
}

function kidOf(token: string): string {
  return decodeProtectedHeader(token).kid!;
}

describe('client secret rotation', () => {
  it('the old secret works during the grace period and stops when it ends; the new one works', async () => {
    const c = await t.client();
    const tokenBefore = await issue(c.clientId, c.clientSecret);
    const rotated = await rotateSecret(c.clientId, { grace_period: 600 });
    expect(rotated.client_secret).not.toBe(c.clientSecret);
    expect(rotated.previous_secret_expires_at).toBe(Math.floor((t.clock.now() + 600_000) / 1000));

    expect((await t.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
    expect((await t.token(c.clientId, rotated.client_secret)).statusCode).toBe(200);
    t.clock.advance(599_999);
    expect((await t.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
    t.clock.advance(1);
    expectInvalidClient(await t.token(c.clientId, c.clientSecret));
    expect((await t.token(c.clientId, rotated.client_secret)).statusCode).toBe(200);
    // Rotating a secret does not revoke the tokens it obtained.
    expect(await active(tokenBefore)).toBe(true);
  });

  it('the old secret also stops at the other endpoints when the grace period ends', async () => {
    const c = await t.client();
    const token = await issue(c.clientId, c.clientSecret);
    await rotateSecret(c.clientId, { grace_period: 60 });
    const introspect = () => t.post(INTROSPECT, { token }, { authorization: basic(c.clientId, c.clientSecret) });
    expect((await introspect()).json().active).toBe(true);
    t.clock.advance(60_000);
    expectInvalidClient(await introspect());
  });

  it('grace period 0 stops the old secret at once', async () => {
    const c = await t.client();
    const rotated = await rotateSecret(c.clientId, { grace_period: 0 });
    expectInvalidClient(await t.token(c.clientId, c.clientSecret));
    expect((await t.token(c.clientId, rotated.client_secret)).statusCode).toBe(200);
  });

  it('without a grace period uses the configured default (one day)', async () => {
    const c = await t.client();
    const rotated = await rotateSecret(c.clientId);
    expect(rotated.previous_secret_expires_at).toBe(Math.floor((t.clock.now() + 86_400_000) / 1000));
    t.clock.advance(86_399_000);
    expect((await t.token(c.clientId, c.clientSecret)).statusCode).toBe(200);
    t.clock.advance(1_000);
    expectInvalidClient(await t.token(c.clientId, c.clientSecret));
  });

  it('keeps at most one previous secret: after two rotations the first secret stops at once', async () => {
    const c = await t.client();
    const first = await rotateSecret(c.clientId, { grace_period: 3600 });
    t.clock.advance(100_000);
    const second = await rotateSecret(c.clientId, { grace_period: 3600 });
    expect(second.previous_secret_expires_at).toBe(Math.floor((t.clock.now() + 3_600_000) / 1000));
    // The original secret had 3,500 s of grace left; the second rotation ended it.
    expectInvalidClient(await t.token(c.clientId, c.clientSecret));
    expect((await t.token(c.clientId, first.client_secret)).statusCode).toBe(200);
    expect((await t.token(c.clientId, second.client_secret)).statusCode).toBe(200);
  });

  it('grace period 0 after a rotation with a grace leaves only the newest secret working', async () => {
    const c = await t.client();
    const first = await rotateSecret(c.clientId, { grace_period: 3600 });
    const second = await rotateSecret(c.clientId, { grace_period: 0 });
    expectInvalidClient(await t.token(c.clientId, c.clientSecret));
    expectInvalidClient(await t.token(c.clientId, first.client_secret));
    expect((await t.token(c.clientId, second.client_secret)).statusCode).toBe(200);
  });
});

describe('disabling and deleting a client', () => {
  it('disabling rejects token requests and makes its tokens inactive at once; enabling restores them', async () => {
    const c = await t.client();
    const token = await issue(c.clientId, c.clientSecret);
    expect(await active(token)).toBe(true);

    const off = await t.admin({ method: 'POST', url: `/admin/clients/${c.clientId}/disable` });
    expect(off.statusCode).toBe(200);
    expect(off.json().disabled).toBe(true);
    expectInvalidClient(await t.token(c.clientId, c.clientSecret));
    expect(await active(token)).toBe(false);

    const on = await t.admin({ method: 'POST', url: `/admin/clients/${c.clientId}/enable` });
    expect(on.statusCode).toBe(200);
    expect(on.json().disabled).toBe(false);
    expect(await active(token)).toBe(true);
    expect(await active(await issue(c.clientId, c.clientSecret))).toBe(true);
  });

  it('disabling through PATCH has the same effect', async () => {
    const c = await t.client();
    const token = await issue(c.clientId, c.clientSecret);
    const res = await t.admin({ method: 'PATCH', url: `/admin/clients/${c.clientId}`, payload: { disabled: true } });
    expect(res.statusCode).toBe(200);
    expectInvalidClient(await t.token(c.clientId, c.clientSecret));
    expect(await active(token)).toBe(false);
  });

  it('deleting does the same, permanently', async () => {
    const c = await t.client();
    const token = await issue(c.clientId, c.clientSecret);
    expect(await active(token)).toBe(true);

    const res = await t.admin({ method: 'DELETE', url: `/admin/clients/${c.clientId}` });
    expect(res.statusCode).toBe(204);
    expectInvalidClient(await t.token(c.clientId, c.clientSecret));
    expect(await active(token)).toBe(false);

    expect((await t.admin({ method: 'POST', url: `/admin/clients/${c.clientId}/enable` })).statusCode).toBe(404);
    expect((await t.admin({ method: 'GET', url: `/admin/clients/${c.clientId}` })).statusCode).toBe(404);
    expectInvalidClient(await t.token(c.clientId, c.clientSecret));
    expect(await active(token)).toBe(false);
  });
});

describe('signing key rotation through the admin API', () => {
  it('publishes the new key at once, signs with it only after the pre-publication delay, retires the old one', async () => {
    const c = await t.client();
    const [oldKid] = await kids();
    expect(oldKid).toBeDefined();
    const beforeRotation = await issue(c.clientId, c.clientSecret);
    expect(kidOf(beforeRotation)).toBe(oldKid);

    const res = await t.admin({ method: 'POST', url: '/admin/keys/rotate' });
    expect(res.statusCode).toBe(200);
    const newKid = res.json().key.kid as string;
    expect(newKid).not.toBe(oldKid);
    expect(res.json().key.status).toBe('pending');
    const pending = t.server.keys.list().find((k) => k.kid === newKid)!;
    expect(pending.activatesAt).toBe(t.clock.now() + 3600_000);

    // Published at once...
    expect((await kids()).sort()).toEqual([oldKid, newKid].sort());
    // ...but not used to sign until activatesAt.
    expect(kidOf(await issue(c.clientId, c.clientSecret))).toBe(oldKid);
    t.clock.set(pending.activatesAt - 1);
    const lastOld = await issue(c.clientId, c.clientSecret);
    expect(kidOf(lastOld)).toBe(oldKid);

    t.clock.set(pending.activatesAt);
    const firstNew = await issue(c.clientId, c.clientSecret);
    expect(kidOf(firstNew)).toBe(newKid);
    expect(kidOf(await issue(c.clientId, c.clientSecret))).toBe(newKid);

    // Tokens of the old key still verify against the JWKS and introspect active.
    const set = createLocalJWKSet({ keys: (await jwks()) as never });
    await expect(jwtVerify(lastOld, set, { issuer: 'http://localhost:8080', audience: ORDERS })).resolves.toBeDefined();
    await expect(jwtVerify(firstNew, set, { issuer: 'http://localhost:8080', audience: ORDERS })).resolves.toBeDefined();
    expect(await active(lastOld)).toBe(true);
    expect(await active(firstNew)).toBe(true);

    const old = t.server.keys.list().find((k) => k.kid === oldKid)!;
    expect(old.status).toBe('retired');
    expect(old.retiredAt).toBe(pending.activatesAt);
    // Kept published for the longest token lifetime (token_ttl_max, one day) plus clock skew.
    expect(old.expiresAt).toBe(pending.activatesAt + 86_400_000 + 60_000);

    // lastOld expires an hour after it was issued; the old key stays published until its expiry.
    t.clock.set(old.expiresAt! - 1);
    await t.server.keys.refresh();
    expect(await kids()).toContain(oldKid);
    expect(await active(lastOld)).toBe(false);

    t.clock.set(old.expiresAt!);
    // Gone from the JWKS at its expiry; refresh() then deletes it for good.
    expect(await kids()).toEqual([newKid]);
    await t.server.keys.refresh();
    expect(await kids()).toEqual([newKid]);
    expect(t.server.keys.list().map((k) => k.kid)).toEqual([newKid]);
    const listed = await t.admin({ method: 'GET', url: '/admin/keys' });
    expect(listed.json().keys.map((k: { kid: string }) => k.kid)).toEqual([newKid]);
    // New tokens still verify and introspect.
    expect(await active(await issue(c.clientId, c.clientSecret))).toBe(true);
  });

  it('a token of the old key stays active across the switch until its own exp', async () => {
    const c = await t.client({ access_token_ttl: 7200 });
    const oldToken = await issue(c.clientId, c.clientSecret);
    const oldKid = kidOf(oldToken);
    const res = await t.admin({ method: 'POST', url: '/admin/keys/rotate' });
    const newKid = res.json().key.kid as string;
    t.clock.advance(3600_000);
    expect(kidOf(await issue(c.clientId, c.clientSecret))).toBe(newKid);
    await t.server.keys.refresh();
    expect(await kids()).toContain(oldKid);
    expect(await active(oldToken)).toBe(true);
    t.clock.advance(3600_000);
    expect(await active(oldToken)).toBe(false);
  });

  it('a second rotation while one is pending: the newest pending key wins and the first never signs', async () => {
    const c = await t.client();
    const oldKid = kidOf(await issue(c.clientId, c.clientSecret));
    const first = (await t.admin({ method: 'POST', url: '/admin/keys/rotate' })).json().key.kid as string;
    t.clock.advance(1000);
    const second = (await t.admin({ method: 'POST', url: '/admin/keys/rotate' })).json().key.kid as string;
    expect(kidOf(await issue(c.clientId, c.clientSecret))).toBe(oldKid);
    t.clock.advance(3600_000);
    expect(kidOf(await issue(c.clientId, c.clientSecret))).toBe(second);
    expect(t.server.keys.list().find((k) => k.kid === first)?.status).toBe('retired');
  });
});

describe('a leaked signing key', () => {
  async function audited(type: string): Promise<Array<Record<string, unknown>>> {
    // The audit line is written by a listener of the event, in the same turn as the admin answer.
    await new Promise((resolve) => setImmediate(resolve));
    return t.logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.audit === true && l.type === type);
  }

  it('rotate with {"now": true}: the new key signs at once and the old one retires; its tokens stay active', async () => {
    const c = await t.client();
    const oldToken = await issue(c.clientId, c.clientSecret);
    const oldKid = kidOf(oldToken);
    // Same millisecond as the first key's activation: the frozen clock has not moved.
    const res = await t.admin({ method: 'POST', url: '/admin/keys/rotate', payload: { now: true } });
    expect(res.statusCode).toBe(200);
    const newKid = res.json().key.kid as string;
    expect(res.json().key).toMatchObject({ status: 'active', activates_at: Math.floor(t.clock.now() / 1000) });
    expect(kidOf(await issue(c.clientId, c.clientSecret))).toBe(newKid);
    expect(t.server.keys.list().find((k) => k.kid === oldKid)).toMatchObject({ status: 'retired', retiredAt: t.clock.now() });
    expect((await kids()).sort()).toEqual([oldKid, newKid].sort());
    expect(await active(oldToken)).toBe(true);
  });

  it('revoke: refused for the key that signs without rotate; with rotate it leaves the JWKS, its tokens are inactive at once, a new key signs', async () => {
    const c = await t.client();
    const reuse = await t.client({ token_reuse: true });
    const leakedToken = await issue(c.clientId, c.clientSecret);
    const reusedToken = await issue(reuse.clientId, reuse.clientSecret);
    const leaked = kidOf(leakedToken);
    t.clock.advance(1000);

    const refused = await t.admin({ method: 'POST', url: `/admin/keys/${leaked}/revoke` });
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toEqual({
      error: 'conflict',
      message: `Signing key "${leaked}" is the key that signs tokens now; revoking it alone would stop every token request. `
        + 'Revoke it with a replacement that signs at once: {"rotate": true} (m2m-auth keys revoke KID --rotate).',
    });
    expect(await kids()).toEqual([leaked]);
    expect(await active(leakedToken)).toBe(true);

    const res = await t.admin({ method: 'POST', url: `/admin/keys/${leaked}/revoke`, payload: { rotate: true } });
    expect(res.statusCode).toBe(200);
    const replacement = res.json().replacement.kid as string;
    expect(res.json().key).toMatchObject({ kid: leaked, status: 'revoked', revoked_at: Math.floor(t.clock.now() / 1000) });
    expect(res.json().replacement).toMatchObject({ status: 'active', activates_at: Math.floor(t.clock.now() / 1000) });

    // At once: unpublished, every token it signed inactive, never signs again.
    expect(await kids()).toEqual([replacement]);
    expect(await active(leakedToken)).toBe(false);
    expect(await active(reusedToken)).toBe(false);
    const fresh = await issue(c.clientId, c.clientSecret);
    expect(kidOf(fresh)).toBe(replacement);
    expect(await active(fresh)).toBe(true);
    // A client with token reuse gets a new token, not the one the revoked key signed.
    const again = await issue(reuse.clientId, reuse.clientSecret);
    expect(again).not.toBe(reusedToken);
    expect(kidOf(again)).toBe(replacement);
    const set = createLocalJWKSet({ keys: (await jwks()) as never });
    await expect(jwtVerify(leakedToken, set)).rejects.toThrow();

    const listed = (await t.admin({ method: 'GET', url: '/admin/keys' })).json().keys as Array<{ kid: string; status: string }>;
    expect(listed.map((k) => [k.kid, k.status])).toEqual([[replacement, 'active'], [leaked, 'revoked']]);
    expect(await audited('key.revoked')).toEqual([expect.objectContaining({ kid: leaked, actor: 'admin', ip: '127.0.0.1' })]);
    // A second revocation changes nothing.
    expect((await t.admin({ method: 'POST', url: `/admin/keys/${leaked}/revoke` })).statusCode).toBe(200);
    expect(await audited('key.revoked')).toHaveLength(1);
  });

  it('revoking a retired key ends its tokens before their exp; an unknown kid is 404', async () => {
    const c = await t.client();
    const oldToken = await issue(c.clientId, c.clientSecret);
    const oldKid = kidOf(oldToken);
    t.clock.advance(1000);
    const newKid = (await t.admin({ method: 'POST', url: '/admin/keys/rotate', payload: { now: true } })).json().key.kid as string;
    expect(await active(oldToken)).toBe(true);
    const res = await t.admin({ method: 'POST', url: `/admin/keys/${oldKid}/revoke` });
    expect(res.statusCode).toBe(200);
    expect(res.json().replacement).toBeNull();
    expect(await active(oldToken)).toBe(false);
    expect(await kids()).toEqual([newKid]);
    expect(kidOf(await issue(c.clientId, c.clientSecret))).toBe(newKid);

    const missing = await t.admin({ method: 'POST', url: '/admin/keys/no-such-kid/revoke' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toEqual({ error: 'not_found', message: 'Signing key "no-such-kid" not found' });
  });
});
