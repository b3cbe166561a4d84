// ClientRegistry: RFC 7591 metadata validation, secrets and rotation, cache write-through.

import { beforeEach, describe, expect, it } from 'vitest';
import { ClientExistsError, ClientNotFoundError, ClientRegistry, type ClientRegistryOptions } from '../../src/clients/registry.js';
import { ClientValidationError, MAX_GRACE_PERIOD } from '../../src/clients/metadata.js';
import { SECRET_PREFIX } from '../../src/ground/client-id.js';
import { secretDigest, verifyClientSecret } from '../../src/clients/secrets.js';
import type { ClientMetadataInput } from '../../src/clients/wire.js';
import { EVENT_NAMES, EventBus, type EventMap, type EventName } from '../../src/observability/events.js';
import type { ClientRecord } from '../../src/ground/records.js';
import { keyPair } from './keys.js';
import { MemoryClientStore } from './memory-client-store.js';

const T0 = 1_700_000_000_000;
const API = 'https://api.example.com';

let store: MemoryClientStore;
let events: EventBus;
let seen: Array<{ name: EventName; payload: unknown }>;
let now: number;
let registry: ClientRegistry;

function makeRegistry(opts: Partial<ClientRegistryOptions> = {}): ClientRegistry {
  return new ClientRegistry(store, events, {
    tokenTtlMin: 60,
    tokenTtlMax: 86_400,
    secretGracePeriod: 3600,
    now: () => now,
    ...opts,
  });
}

beforeEach(() => {
  store = new MemoryClientStore();
  events = new EventBus();
  seen = [];
  events.onAny((name, payload) => seen.push({ name, payload }));
  now = T0;
  registry = makeRegistry();
});

function named<E extends EventName>(name: E): EventMap[E][] {
  return seen.filter((e) => e.name === name).map((e) => e.payload as EventMap[E]);
}

const base: ClientMetadataInput = { client_name: 'billing', scope: 'read write', audience: [API] };

async function invalid(p: Promise<unknown>, pattern: RegExp): Promise<ClientValidationError> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(ClientValidationError);
  expect((err as Error).message).toMatch(pattern);
  return err as ClientValidationError;
}

async function createBasic(extra: ClientMetadataInput = {}): Promise<{ client: ClientRecord; secret: string }> {
  const { client, clientSecret } = await registry.create({ ...base, ...extra });
  expect(clientSecret).toBeDefined();
  return { client, secret: clientSecret! };
}

describe('create', () => {
  it('issues a client_id and a secret stored only as its digest', async () => {
    const { client, clientSecret } = await registry.create({ ...base, access_token_ttl: 600 });
    expect(client.clientId).toMatch(/^cl_[A-Za-z0-9_-]{16}$/);
    expect(clientSecret).toMatch(new RegExp(`^${SECRET_PREFIX}[A-Za-z0-9_-]{43}$`));
    expect(client).toMatchObject({
      clientName: 'billing',
      scope: ['read', 'write'],
      defaultScope: null,
      audience: [API],
      defaultAudience: null,
      grantTypes: ['client_credentials'],
      resourceUris: [],
      tokenEndpointAuthMethod: 'client_secret_basic',
      jwks: null,
      accessTokenTtl: 600,
      tokenReuse: false,
      disabled: false,
      tokensRevokedAt: null,
      createdAt: T0,
      updatedAt: T0,
    });
    const row = store.rows.get(client.clientId)!;
    expect(row.secrets).toEqual([{ digest: secretDigest(clientSecret!), createdAt: T0, expiresAt: null }]);
    expect(JSON.stringify(row)).not.toContain(clientSecret);
    expect(verifyClientSecret(row, clientSecret!, now)).toBe(true);
    expect(verifyClientSecret(row, `${clientSecret}x`, now)).toBe(false);
    expect(named('client.created')).toEqual([{ clientId: client.clientId }]);
  });

  it('gives every client its own id and secret', async () => {
    const a = await createBasic();
    const b = await createBasic();
    expect(a.client.clientId).not.toBe(b.client.clientId);
    expect(a.secret).not.toBe(b.secret);
  });

  it('issues a secret for client_secret_post too', async () => {
    const { client, clientSecret } = await registry.create({ ...base, token_endpoint_auth_method: 'client_secret_post' });
    expect(client.tokenEndpointAuthMethod).toBe('client_secret_post');
    expect(verifyClientSecret(client, clientSecret!, now)).toBe(true);
  });

  it('registers a private_key_jwt client with public keys and no secret', async () => {
    const ec = keyPair('ec').publicJwk;
    const rsa = keyPair('rsa').publicJwk;
    const ed = keyPair('ed25519').publicJwk;
    const jwks = { keys: [{ ...ec, kid: 'a', alg: 'ES256', use: 'sig' }, { ...rsa, kid: 'b', alg: 'PS256' }, { ...ed, kid: 'c', alg: 'EdDSA' }] };
    const result = await registry.create({ ...base, token_endpoint_auth_method: 'private_key_jwt', jwks });
    expect(result.clientSecret).toBeUndefined();
    expect('clientSecret' in result).toBe(false);
    expect(result.client.secrets).toEqual([]);
    expect(result.client.jwks).toEqual(jwks);
  });

  it('records the audit context in the event', async () => {
    const { client } = await registry.create(base, { ip: '10.0.0.1', requestId: 'r1' });
    expect(named('client.created')).toEqual([{ clientId: client.clientId, ip: '10.0.0.1', requestId: 'r1' }]);
  });

  it('accepts a client that only introspects, without audience', async () => {
    const { client } = await registry.create({ client_name: 'rs', grant_types: [], resource_uris: [API] });
    expect(client.grantTypes).toEqual([]);
    expect(client.audience).toEqual([]);
    expect(client.resourceUris).toEqual([API]);
  });

  it('keeps defaults that are subsets', async () => {
    const { client } = await createBasic({ audience: [API, 'urn:example:other'], default_audience: ['urn:example:other'], default_scope: 'read' });
    expect(client.defaultScope).toEqual(['read']);
    expect(client.defaultAudience).toEqual(['urn:example:other']);
    const none = await createBasic({ default_scope: '' });
    expect(none.client.defaultScope).toEqual([]);
  });
});

describe('validation', () => {
  it('never accepts a chosen secret, nor a client_id of another shape', async () => {
    const err = await invalid(registry.create({ ...base, client_secret: 'hunter2hunter2' } as ClientMetadataInput), /client_secret cannot be chosen.*generates/);
    expect(err.field).toBe('client_secret');
    for (const id of ['mine', 'cl_', `cl_${'a'.repeat(65)}`, 'cl_a.b', 'cl_a b', 'CL_abc', ' cl_abc', 'cl_é', 'm2m_cs_abc']) {
      const e = await invalid(registry.create({ ...base, client_id: id }), /^client_id must be "cl_" followed by 1 to 64 letters, digits, "_" or "-" \(leave it out/);
      expect(e.field).toBe('client_id');
    }
    // A secret pasted into the wrong field is not echoed.
    const pasted = 'm2m_cs_' + 'z'.repeat(43);
    expect((await invalid(registry.create({ ...base, client_id: pasted }), /client_id must be/)).message).not.toContain('zzzz');
    await invalid(registry.create({ ...base, client_id: 42 } as unknown as ClientMetadataInput), /client_id must be .*, got a number/);
    expect(store.rows.size).toBe(0);
  });

  it('registers a client under a chosen client_id; a clash is a ClientExistsError that changes nothing', async () => {
    const longest = `cl_${'A9_-'.repeat(16)}`;
    for (const id of ['cl_billing', 'cl_x', longest]) {
      const { client, clientSecret } = await registry.create({ ...base, client_id: id });
      expect(client.clientId).toBe(id);
      expect(verifyClientSecret(store.rows.get(id), clientSecret!, now)).toBe(true);
    }
    const before = store.rows.get('cl_billing');
    const clash = await registry.create({ ...base, client_name: 'other', client_id: 'cl_billing' }).then(() => undefined, (e: unknown) => e);
    expect(clash).toBeInstanceOf(ClientExistsError);
    expect((clash as Error).message).toBe('A client with client_id "cl_billing" already exists');
    expect(store.rows.get('cl_billing')).toStrictEqual(before);
    expect(named('client.created').map((e) => e.clientId)).toEqual(['cl_billing', 'cl_x', longest]);
    // A client_id cannot be changed afterwards.
    await invalid(registry.update('cl_billing', { client_id: 'cl_other' } as ClientMetadataInput), /client_id cannot be changed/);
  });

  it('keeps an existing secret given as client_secret_sha256 on create, and returns no secret', async () => {
    const secret = 'm2m_cs_' + 'k'.repeat(43);
    const { client, clientSecret } = await registry.create({ ...base, client_id: 'cl_moved', client_secret_sha256: secretDigest(secret) });
    expect(clientSecret).toBeUndefined();
    expect(client.secrets).toEqual([{ digest: secretDigest(secret), createdAt: T0, expiresAt: null }]);
    expect(verifyClientSecret(client, secret, now)).toBe(true);
    for (const bad of ['A'.repeat(64), 'a'.repeat(63), secret, 7]) {
      await invalid(registry.create({ ...base, client_secret_sha256: bad } as ClientMetadataInput), /client_secret_sha256 must be the SHA-256 digest .* 64 lowercase hex digits/);
    }
    const { publicJwk } = keyPair('ec');
    await invalid(registry.create({ ...base, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [publicJwk] }, client_secret_sha256: 'a'.repeat(64) } as ClientMetadataInput),
      /client_secret_sha256 is only for the secret methods/);
    await invalid(registry.update('cl_moved', { client_secret_sha256: 'b'.repeat(64) } as ClientMetadataInput), /client_secret_sha256 is accepted on create only/);
    expect(store.rows.size).toBe(1);
  });

  it('rejects unknown and read-only fields and non-objects', async () => {
    await invalid(registry.create({ ...base, colour: 'red' } as ClientMetadataInput), /Unknown field "colour"/);
    await invalid(registry.create({ ...base, created_at: 1 } as ClientMetadataInput), /created_at is read-only/);
    await invalid(registry.create({ ...base, jwks_uri: 'https://x' } as ClientMetadataInput), /jwks_uri is not supported/);
    await invalid(registry.create(null as unknown as ClientMetadataInput), /must be a JSON object, got null/);
    await invalid(registry.create([] as unknown as ClientMetadataInput), /must be a JSON object, got an array/);
  });

  it('checks token_reuse: a boolean, false unless set, changed by update', async () => {
    await invalid(registry.create({ ...base, token_reuse: 'yes' } as unknown as ClientMetadataInput), /token_reuse must be true or false, got a string/);
    await invalid(registry.create({ ...base, token_reuse: null } as unknown as ClientMetadataInput), /token_reuse must be true or false/);
    const { client } = await registry.create({ ...base, token_reuse: true });
    expect(client.tokenReuse).toBe(true);
    const off = await registry.update(client.clientId, { token_reuse: false });
    expect(off.client.tokenReuse).toBe(false);
    expect(named('client.updated').at(-1)).toMatchObject({ clientId: client.clientId, fields: ['token_reuse'] });
    expect((await registry.read(client.clientId)).tokenReuse).toBe(false);
  });

  it('checks client_name', async () => {
    await invalid(registry.create({ scope: 'a', audience: [API] }), /client_name is required/);
    await invalid(registry.create({ ...base, client_name: '' }), /client_name must not be empty/);
    await invalid(registry.create({ ...base, client_name: '   ' }), /client_name must not be empty/);
    await invalid(registry.create({ ...base, client_name: 'x'.repeat(201) }), /at most 200 characters/);
    await invalid(registry.create({ ...base, client_name: 'a\nb' }), /control characters/);
    await invalid(registry.create({ ...base, client_name: 5 as unknown as string }), /client_name must be a string, got a number/);
    // 200 characters, counted as characters and not UTF-16 units.
    const { client } = await registry.create({ ...base, client_name: '😀'.repeat(200) });
    expect([...client.clientName]).toHaveLength(200);
  });

  it('checks scope syntax (RFC 6749 §3.3)', async () => {
    await invalid(registry.create({ ...base, scope: ['a'] as unknown as string }), /scope must be a space-delimited string, got an array/);
    await invalid(registry.create({ ...base, scope: 'a  b' }), /single spaces/);
    await invalid(registry.create({ ...base, scope: ' a' }), /single spaces/);
    await invalid(registry.create({ ...base, scope: 'a\tb' }), /"a\\tb" is not a valid scope token/);
    await invalid(registry.create({ ...base, scope: 'say"hi"' }), /not a valid scope token/);
    await invalid(registry.create({ ...base, scope: 'back\\slash' }), /not a valid scope token/);
    await invalid(registry.create({ ...base, scope: 'café' }), /not a valid scope token/);
    await invalid(registry.create({ ...base, scope: 'a b a' }), /lists "a" more than once/);
    const { client } = await createBasic({ scope: 'orders:read https://x/y!#$%&\'()*+,-./:;<=>?@[]^_`{|}~' });
    expect(client.scope).toHaveLength(2);
    const empty = await createBasic({ scope: '' });
    expect(empty.client.scope).toEqual([]);
    const omitted = await registry.create({ client_name: 'x', audience: [API] });
    expect(omitted.client.scope).toEqual([]);
  });

  it('checks audience: required, absolute URIs without fragment', async () => {
    await invalid(registry.create({ client_name: 'x', scope: 'a' }), /audience is required/);
    await invalid(registry.create({ ...base, audience: [] }), /audience is required/);
    await invalid(registry.create({ ...base, audience: API as unknown as string[] }), /audience must be an array of absolute URIs, got a string/);
    await invalid(registry.create({ ...base, audience: ['/relative'] }), /audience\[0\] "\/relative" is not an absolute URI/);
    await invalid(registry.create({ ...base, audience: ['api.example.com'] }), /not an absolute URI/);
    await invalid(registry.create({ ...base, audience: ['https://a b'] }), /not an absolute URI/);
    await invalid(registry.create({ ...base, audience: [API, 'https://x/#frag'] }), /audience\[1\] .* must not have a fragment/);
    await invalid(registry.create({ ...base, audience: [3 as unknown as string] }), /audience\[0\] must be a string, got a number/);
    await invalid(registry.create({ ...base, audience: [API, API] }), /more than once/);
    const { client } = await createBasic({ audience: ['urn:example:resource', 'https://api.example.com/v1?x=1'] });
    expect(client.audience).toEqual(['urn:example:resource', 'https://api.example.com/v1?x=1']);
  });

  it('checks default_scope and default_audience against scope and audience', async () => {
    await invalid(registry.create({ ...base, default_scope: 'admin' }), /default_scope "admin" is not in scope/);
    await invalid(registry.create({ ...base, default_audience: ['https://other.example.com'] }), /default_audience "https:\/\/other.example.com" is not in audience/);
    await invalid(registry.create({ ...base, default_audience: [] }), /default_audience must name at least one/);
    await invalid(registry.create({ ...base, default_scope: 7 as unknown as string }), /default_scope must be a space-delimited string/);
  });

  it('refuses a client whose default token would be too long, and accepts it with smaller defaults', async () => {
    // 9 audiences of about 1,930 characters: any one fits in a token, all of them do not.
    const audience = Array.from({ length: 9 }, (_, i) => `https://api${i}.example.com/${'p'.repeat(1900)}`);
    await invalid(registry.create({ ...base, audience }), /names no scope and no resource gets every scope and every audience, and these take \d+ characters, more than the 10000/);
    await invalid(registry.create({ ...base, audience, default_audience: audience.slice(0, 6) }), /gets every scope and default_audience/);
    const { client } = await createBasic({ audience, default_audience: audience.slice(0, 1) });
    expect(client.audience).toHaveLength(9);
    // An update that takes the default away is refused too; the client is left as it was.
    await invalid(registry.update(client.clientId, { default_audience: null }), /every audience/);
    expect((await registry.get(client.clientId))?.defaultAudience).toEqual(audience.slice(0, 1));
    // A client that only introspects gets no tokens: its audiences are not its tokens'.
    await createBasic({ audience, grant_types: [] });

    // A client stored before this check (no default audience) can still be renamed; a change to
    // what its default token is made of is checked.
    store.rows.set(client.clientId, { ...store.rows.get(client.clientId)!, defaultAudience: null });
    registry.invalidate(client.clientId);
    expect((await registry.update(client.clientId, { client_name: 'renamed' })).client.clientName).toBe('renamed');
    await invalid(registry.update(client.clientId, { scope: 'read' }), /every audience/);
  });

  it('checks grant_types and resource_uris', async () => {
    await invalid(registry.create({ ...base, grant_types: ['authorization_code'] }), /grant_types may only contain "client_credentials"/);
    await invalid(registry.create({ ...base, grant_types: 'client_credentials' as unknown as string[] }), /grant_types must be an array/);
    await invalid(registry.create({ ...base, grant_types: ['client_credentials', 'client_credentials'] }), /more than once/);
    await invalid(registry.create({ ...base, resource_uris: ['not a uri'] }), /resource_uris\[0\] .* is not an absolute URI/);
  });

  it('checks access_token_ttl against the configured bounds', async () => {
    await invalid(registry.create({ ...base, access_token_ttl: 59 }), /between 60 and 86400/);
    await invalid(registry.create({ ...base, access_token_ttl: 86_401 }), /between 60 and 86400/);
    await invalid(registry.create({ ...base, access_token_ttl: 90.5 }), /whole number/);
    await invalid(registry.create({ ...base, access_token_ttl: '600' as unknown as number }), /access_token_ttl must be a whole number/);
    expect((await createBasic({ access_token_ttl: 60 })).client.accessTokenTtl).toBe(60);
    expect((await createBasic({ access_token_ttl: null })).client.accessTokenTtl).toBeNull();
  });

  it('checks the auth method and disabled', async () => {
    await invalid(registry.create({ ...base, token_endpoint_auth_method: 'none' as 'private_key_jwt' }), /token_endpoint_auth_method must be one of client_secret_basic, client_secret_post, private_key_jwt/);
    await invalid(registry.create({ ...base, disabled: 'yes' as unknown as boolean }), /disabled must be true or false, got a string/);
    expect((await createBasic({ disabled: true })).client.disabled).toBe(true);
  });

  it('checks jwks: public asymmetric signing keys only', async () => {
    const pk = { ...base, token_endpoint_auth_method: 'private_key_jwt' as const };
    const ec = keyPair('ec');
    await invalid(registry.create(pk), /jwks with at least one public key is required/);
    await invalid(registry.create({ ...pk, jwks: null }), /jwks with at least one public key is required/);
    await invalid(registry.create({ ...pk, jwks: { keys: [] } }), /at least one public key/);
    await invalid(registry.create({ ...pk, jwks: [ec.publicJwk] as unknown as { keys: [] } }), /jwks must be a JSON Web Key Set object/);
    await invalid(registry.create({ ...pk, jwks: { keys: [ec.privateJwk] } }), /jwks.keys\[0\] contains the private key member "d"/);
    const rsaPrivate = keyPair('rsa').privateJwk;
    const { d: _d, ...rsaNoD } = rsaPrivate;
    await invalid(registry.create({ ...pk, jwks: { keys: [rsaNoD] } }), /private key member "p"/);
    await invalid(registry.create({ ...pk, jwks: { keys: [{ kty: 'oct', k: 'c2VjcmV0' }] } }), /symmetric key/);
    await invalid(registry.create({ ...pk, jwks: { keys: [keyPair('rsa1024').publicJwk] } }), /at least 2048 bits/);
    await invalid(registry.create({ ...pk, jwks: { keys: [keyPair('x25519').publicJwk] } }), /unsupported crv "X25519"/);
    await invalid(registry.create({ ...pk, jwks: { keys: [{ ...ec.publicJwk, x: 'AAAA' }] } }), /jwks.keys\[0\] is not a valid EC public key/);
    await invalid(registry.create({ ...pk, jwks: { keys: [{ ...ec.publicJwk, alg: 'RS256' }] } }), /alg RS256 does not fit a EC key/);
    await invalid(registry.create({ ...pk, jwks: { keys: [{ ...ec.publicJwk, alg: 'HS256' }] } }), /alg must be one of/);
    await invalid(registry.create({ ...pk, jwks: { keys: [{ ...ec.publicJwk, use: 'enc' }] } }), /use must be "sig"/);
    await invalid(registry.create({ ...pk, jwks: { keys: [{ ...ec.publicJwk, kid: 'k' }, { ...keyPair('ec').publicJwk, kid: 'k' }] } }), /kid\) must be unique/);
    await invalid(registry.create({ ...pk, jwks: { keys: [ec.publicJwk], extra: 1 } as unknown as { keys: [] } }), /unknown member "extra"/);
    await invalid(registry.create({ ...pk, jwks: { keys: ['x'] } as unknown as { keys: [] } }), /jwks.keys\[0\] must be a JSON object, got a string/);
    await invalid(registry.create({ ...base, jwks: { keys: [ec.publicJwk] } }), /jwks is only for token_endpoint_auth_method private_key_jwt/);
    expect(store.rows.size).toBe(0);
  });
});

describe('update', () => {
  it('applies a partial patch, validates the result and emits the changed fields', async () => {
    const { client } = await createBasic({ default_scope: 'read' });
    now = T0 + 5000;
    const { client: updated, clientSecret } = await registry.update(client.clientId, { client_name: 'billing-2', access_token_ttl: 120 }, { ip: '10.0.0.2' });
    expect(clientSecret).toBeUndefined();
    expect(updated).toMatchObject({ clientName: 'billing-2', accessTokenTtl: 120, scope: ['read', 'write'], updatedAt: T0 + 5000, createdAt: T0 });
    expect(named('client.updated')).toEqual([{ clientId: client.clientId, fields: ['client_name', 'access_token_ttl'], ip: '10.0.0.2' }]);
    // Removing the scope that default_scope names is refused unless default_scope changes too.
    await invalid(registry.update(client.clientId, { scope: 'write' }), /default_scope "read" is not in scope/);
    const both = await registry.update(client.clientId, { scope: 'write', default_scope: null });
    expect(both.client).toMatchObject({ scope: ['write'], defaultScope: null });
    await invalid(registry.update(client.clientId, { audience: [] }), /audience is required/);
    await invalid(registry.update(client.clientId, { client_name: null as unknown as string }), /client_name must be a string, got null/);
    await invalid(registry.update(client.clientId, { client_secret: 'x' } as ClientMetadataInput), /client_secret cannot be chosen/);
    expect(store.rows.get(client.clientId)!.scope).toEqual(['write']);
  });

  it('writes nothing when nothing changes', async () => {
    const { client } = await createBasic();
    const before = store.calls.update;
    now = T0 + 1000;
    const result = await registry.update(client.clientId, { client_name: 'billing', scope: 'read write' });
    expect(result.client.updatedAt).toBe(T0);
    expect(store.calls.update).toBe(before);
    expect(named('client.updated')).toEqual([]);
  });

  it('switching to private_key_jwt needs jwks and drops the secrets', async () => {
    const { client, secret } = await createBasic();
    await invalid(registry.update(client.clientId, { token_endpoint_auth_method: 'private_key_jwt' }), /jwks with at least one public key is required/);
    const jwks = { keys: [keyPair('ec').publicJwk] };
    const { client: pk, clientSecret } = await registry.update(client.clientId, { token_endpoint_auth_method: 'private_key_jwt', jwks });
    expect(clientSecret).toBeUndefined();
    expect(pk.secrets).toEqual([]);
    expect(pk.jwks).toEqual(jwks);
    expect(verifyClientSecret(store.rows.get(client.clientId), secret, now)).toBe(false);
    await invalid(registry.update(client.clientId, { jwks: null }), /jwks with at least one public key is required/);
  });

  it('switching to a secret method issues a secret and drops jwks', async () => {
    const { client } = await registry.create({ ...base, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [keyPair('ec').publicJwk] } });
    await invalid(registry.update(client.clientId, { token_endpoint_auth_method: 'client_secret_post', jwks: { keys: [keyPair('ec').publicJwk] } }), /jwks is only for/);
    const { client: secretClient, clientSecret } = await registry.update(client.clientId, { token_endpoint_auth_method: 'client_secret_post' });
    expect(clientSecret).toMatch(/^m2m_cs_/);
    expect(secretClient.jwks).toBeNull();
    expect(verifyClientSecret(store.rows.get(client.clientId), clientSecret!, now)).toBe(true);
    expect(named('client.updated').at(-1)!.fields).toEqual(['token_endpoint_auth_method', 'jwks', 'client_secret']);
  });

  it('switching between the secret methods keeps the secret', async () => {
    const { client, secret } = await createBasic();
    const { client: post, clientSecret } = await registry.update(client.clientId, { token_endpoint_auth_method: 'client_secret_post' });
    expect(clientSecret).toBeUndefined();
    expect(verifyClientSecret(post, secret, now)).toBe(true);
  });

  it('emits client.disabled when the patch disables', async () => {
    const { client } = await createBasic();
    await registry.update(client.clientId, { disabled: true });
    expect(named('client.disabled')).toEqual([{ clientId: client.clientId }]);
  });

  it('throws ClientNotFoundError for an unknown client', async () => {
    await expect(registry.update('cl_missing', { client_name: 'x' })).rejects.toBeInstanceOf(ClientNotFoundError);
    await expect(registry.setDisabled('cl_missing', true)).rejects.toBeInstanceOf(ClientNotFoundError);
    await expect(registry.rotateSecret('cl_missing')).rejects.toBeInstanceOf(ClientNotFoundError);
    await expect(registry.revokeTokens('cl_missing')).rejects.toBeInstanceOf(ClientNotFoundError);
    await expect(registry.delete('cl_missing')).rejects.toBeInstanceOf(ClientNotFoundError);
    await expect(registry.read('cl_missing')).rejects.toThrow(/Client "cl_missing" not found/);
  });
});

describe('rotateSecret', () => {
  it('keeps the previous secret for the configured grace period, then only the new one works', async () => {
    const { client, secret: first } = await createBasic();
    now = T0 + 10_000;
    const rotated = await registry.rotateSecret(client.clientId);
    const stored = store.rows.get(client.clientId)!;
    expect(stored.secrets).toEqual([
      { digest: secretDigest(rotated.clientSecret), createdAt: T0 + 10_000, expiresAt: null },
      { digest: secretDigest(first), createdAt: T0, expiresAt: T0 + 10_000 + 3_600_000 },
    ]);
    expect(rotated.previousExpiresAt).toBe(T0 + 10_000 + 3_600_000);
    expect(named('client.secret_rotated')).toEqual([{ clientId: client.clientId, previousExpiresAt: T0 + 10_000 + 3_600_000 }]);
    expect(verifyClientSecret(stored, first, T0 + 10_000 + 3_599_999)).toBe(true);
    expect(verifyClientSecret(stored, first, T0 + 10_000 + 3_600_000)).toBe(false);
    expect(verifyClientSecret(stored, rotated.clientSecret, T0 + 10_000 + 3_600_000)).toBe(true);
  });

  it('grace 0 ends the old secret at once', async () => {
    const { client, secret: first } = await createBasic();
    const rotated = await registry.rotateSecret(client.clientId, 0);
    const stored = store.rows.get(client.clientId)!;
    expect(stored.secrets).toHaveLength(1);
    expect(verifyClientSecret(stored, first, now)).toBe(false);
    expect(verifyClientSecret(stored, rotated.clientSecret, now)).toBe(true);
    expect(rotated.previousExpiresAt).toBe(now);
    // Through the cache as well: the very next lookup refuses the old secret.
    expect(verifyClientSecret(await registry.get(client.clientId), first, now)).toBe(false);
  });

  it('keeps at most one previous secret: a second rotation ends the first one at once', async () => {
    const { client, secret: s1 } = await createBasic();
    now = T0 + 1000;
    const r2 = await registry.rotateSecret(client.clientId, 3600);
    now = T0 + 2000;
    const r3 = await registry.rotateSecret(client.clientId, 3600);
    const stored = store.rows.get(client.clientId)!;
    expect(stored.secrets.map((s) => s.digest)).toEqual([secretDigest(r3.clientSecret), secretDigest(r2.clientSecret)]);
    expect(stored.secrets.map((s) => s.expiresAt)).toEqual([null, T0 + 2000 + 3_600_000]);
    expect(r3.previousExpiresAt).toBe(T0 + 2000 + 3_600_000);
    // Of the three secrets only the two newest work, though s1's grace had most of an hour left.
    expect(verifyClientSecret(stored, s1, now)).toBe(false);
    expect(verifyClientSecret(stored, r2.clientSecret, now)).toBe(true);
    expect(verifyClientSecret(stored, r3.clientSecret, now)).toBe(true);
    expect(verifyClientSecret(await registry.get(client.clientId), s1, now)).toBe(false);
  });

  it('a rotation with grace 0 after one with a grace leaves only the new secret', async () => {
    const { client, secret: s1 } = await createBasic();
    now = T0 + 1000;
    const r2 = await registry.rotateSecret(client.clientId, 3600);
    now = T0 + 2000;
    const r3 = await registry.rotateSecret(client.clientId, 0);
    const stored = store.rows.get(client.clientId)!;
    expect(stored.secrets.map((s) => s.digest)).toEqual([secretDigest(r3.clientSecret)]);
    expect(r3.previousExpiresAt).toBe(T0 + 2000);
    expect(verifyClientSecret(stored, s1, now)).toBe(false);
    expect(verifyClientSecret(stored, r2.clientSecret, now)).toBe(false);
    expect(verifyClientSecret(stored, r3.clientSecret, now)).toBe(true);
  });

  it('validates the grace period and refuses private_key_jwt clients', async () => {
    const { client } = await createBasic();
    await invalid(registry.rotateSecret(client.clientId, -1), /grace_period must be a whole number of seconds between 0 and/);
    await invalid(registry.rotateSecret(client.clientId, 1.5), /grace_period/);
    await invalid(registry.rotateSecret(client.clientId, MAX_GRACE_PERIOD + 1), /grace_period/);
    const pk = await registry.create({ ...base, token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [keyPair('ec').publicJwk] } });
    await invalid(registry.rotateSecret(pk.client.clientId), /private_key_jwt and has no secret to rotate/);
  });

  it('does not lose a secret when two rotations race', async () => {
    const { client } = await createBasic();
    const [a, b] = await Promise.all([registry.rotateSecret(client.clientId), registry.rotateSecret(client.clientId)]);
    const stored = store.rows.get(client.clientId)!;
    expect(verifyClientSecret(stored, a.clientSecret, now)).toBe(true);
    expect(verifyClientSecret(stored, b.clientSecret, now)).toBe(true);
    expect(stored.secrets).toHaveLength(2);
  });
});

describe('revokeTokens, setDisabled, delete, list', () => {
  it('revokeTokens sets the kill switch instant', async () => {
    const { client } = await createBasic();
    now = T0 + 42_000;
    const revoked = await registry.revokeTokens(client.clientId, { requestId: 'r9' });
    expect(revoked.tokensRevokedAt).toBe(T0 + 42_000);
    expect(store.rows.get(client.clientId)!.tokensRevokedAt).toBe(T0 + 42_000);
    expect(named('client.tokens_revoked')).toEqual([{ clientId: client.clientId, before: T0 + 42_000, requestId: 'r9' }]);
  });

  it('setDisabled flips the flag and emits only on change', async () => {
    const { client } = await createBasic();
    expect((await registry.setDisabled(client.clientId, true)).disabled).toBe(true);
    expect((await registry.setDisabled(client.clientId, true)).disabled).toBe(true);
    expect((await registry.setDisabled(client.clientId, false)).disabled).toBe(false);
    expect(seen.filter((e) => e.name === 'client.disabled' || e.name === 'client.enabled').map((e) => e.name)).toEqual(['client.disabled', 'client.enabled']);
  });

  it('delete removes the client', async () => {
    const { client } = await createBasic();
    await registry.delete(client.clientId);
    expect(store.rows.has(client.clientId)).toBe(false);
    expect(named('client.deleted')).toEqual([{ clientId: client.clientId }]);
    await expect(registry.delete(client.clientId)).rejects.toBeInstanceOf(ClientNotFoundError);
  });

  it('list pages through clients in client_id order', async () => {
    for (let i = 0; i < 5; i++) await createBasic();
    const ids = [...store.rows.keys()].sort();
    const p1 = await registry.list({ limit: 2 });
    expect(p1.clients.map((c) => c.clientId)).toEqual(ids.slice(0, 2));
    expect(p1.next).toBe(ids[1]);
    const p2 = await registry.list({ after: p1.next!, limit: 2 });
    expect(p2.clients.map((c) => c.clientId)).toEqual(ids.slice(2, 4));
    const p3 = await registry.list({ after: p2.next!, limit: 2 });
    expect(p3.clients.map((c) => c.clientId)).toEqual(ids.slice(4));
    expect(p3.next).toBeNull();
    const exact = await registry.list({ limit: 5 });
    expect(exact.next).toBeNull();
    await invalid(registry.list({ limit: 0 }), /limit must be a whole number between 1 and 1000/);
    await invalid(registry.list({ limit: 1001 }), /limit/);
    await invalid(registry.list({ after: '', limit: 1 }), /after must be a non-empty client_id/);
  });
});

describe('cache', () => {
  it('serves repeated lookups from memory and returns frozen records', async () => {
    const { client } = await createBasic();
    registry.clear();
    const reads = store.calls.get;
    const a = await registry.get(client.clientId);
    const b = await registry.get(client.clientId);
    expect(store.calls.get).toBe(reads + 1);
    expect(a).toBe(b);
    expect(Object.isFrozen(a)).toBe(true);
    expect(Object.isFrozen(a!.secrets[0])).toBe(true);
    expect(() => a!.scope.push('admin')).toThrow(TypeError);
  });

  it('never caches unknown ids', async () => {
    const reads = store.calls.get;
    for (let i = 0; i < 50; i++) expect(await registry.get(`cl_nope${i}`)).toBeUndefined();
    expect(await registry.get('cl_nope0')).toBeUndefined();
    expect(registry.cacheSize).toBe(0);
    expect(store.calls.get).toBe(reads + 51);
  });

  it('is bounded and evicts the least recently used', async () => {
    registry = makeRegistry({ cacheSize: 3 });
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await createBasic()).client.clientId);
    registry.clear();
    await registry.get(ids[0]!);
    await registry.get(ids[1]!);
    await registry.get(ids[2]!);
    await registry.get(ids[0]!); // ids[1] is now the least recently used
    await registry.get(ids[3]!);
    expect(registry.cacheSize).toBe(3);
    const reads = store.calls.get;
    await registry.get(ids[0]!);
    await registry.get(ids[2]!);
    await registry.get(ids[3]!);
    expect(store.calls.get).toBe(reads);
    await registry.get(ids[1]!);
    expect(store.calls.get).toBe(reads + 1);

    // A run of hits on one client leaves it the most recent; a hit after another client's keeps
    // the order exact.
    registry.clear();
    for (const i of [0, 0, 0, 1, 2, 0, 0]) await registry.get(ids[i]!); // recency: 1, 2, 0
    await registry.get(ids[3]!); // evicts 1
    const before = store.calls.get;
    for (const i of [0, 2, 3]) await registry.get(ids[i]!);
    expect(store.calls.get).toBe(before);
    await registry.get(ids[1]!);
    expect(store.calls.get).toBe(before + 1);
  });

  it('every write through the registry takes effect on the next lookup', async () => {
    const { client, secret } = await createBasic();
    const id = client.clientId;
    await registry.get(id);

    await registry.setDisabled(id, true);
    expect((await registry.get(id))!.disabled).toBe(true);
    await registry.update(id, { disabled: false, scope: 'read' });
    expect(await registry.get(id)).toMatchObject({ disabled: false, scope: ['read'] });
    const rotated = await registry.rotateSecret(id, 0);
    expect(verifyClientSecret(await registry.get(id), secret, now)).toBe(false);
    expect(verifyClientSecret(await registry.get(id), rotated.clientSecret, now)).toBe(true);
    now = T0 + 7000;
    await registry.revokeTokens(id);
    expect((await registry.get(id))!.tokensRevokedAt).toBe(T0 + 7000);
    await registry.delete(id);
    expect(await registry.get(id)).toBeUndefined();
  });

  it('sees a change made elsewhere only after invalidate() or clear()', async () => {
    const { client } = await createBasic();
    const id = client.clientId;
    await registry.get(id);
    store.rows.set(id, { ...store.rows.get(id)!, disabled: true });
    expect((await registry.get(id))!.disabled).toBe(false);
    registry.invalidate(id);
    expect((await registry.get(id))!.disabled).toBe(true);
    store.rows.set(id, { ...store.rows.get(id)!, disabled: false });
    registry.clear();
    expect((await registry.get(id))!.disabled).toBe(false);
  });

  it('a lookup racing a write does not cache the old record', async () => {
    const { client } = await createBasic();
    const id = client.clientId;
    registry.clear();
    let release!: () => void;
    const gate = new Promise<void>((r) => { release = r; });
    const getClient = store.getClient.bind(store);
    let held = false;
    store.getClient = async (clientId) => {
      const row = await getClient(clientId);
      if (!held) {
        held = true;
        await gate;
      }
      return row;
    };
    const pending = registry.get(id); // reads the enabled record, then waits
    await registry.setDisabled(id, true);
    release();
    expect((await pending)!.disabled).toBe(false);
    expect((await registry.get(id))!.disabled).toBe(true);
  });

  it('drops the cached record when a store write fails', async () => {
    const { client } = await createBasic();
    await registry.get(client.clientId);
    store.updateClient = async () => { throw new Error('disk full'); };
    await expect(registry.setDisabled(client.clientId, true)).rejects.toThrow('disk full');
    expect(registry.cacheSize).toBe(0);
  });
});

describe('events', () => {
  it('never carry a secret', async () => {
    const { client, secret } = await createBasic();
    const rotated = await registry.rotateSecret(client.clientId);
    await registry.update(client.clientId, { token_endpoint_auth_method: 'client_secret_post' });
    const all = JSON.stringify(seen);
    expect(all).not.toContain(secret);
    expect(all).not.toContain(rotated.clientSecret);
    expect(all).not.toContain(secretDigest(secret));
    expect(EVENT_NAMES).toContain('client.secret_rotated');
  });
});
