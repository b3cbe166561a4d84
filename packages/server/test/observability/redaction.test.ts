// Secrets, client assertions and tokens never reach a log line: the tested redaction list
// (REDACT_PATHS) on its own, then a real server at log level trace driven through every path that
// handles a secret, with every captured line searched for every secret in the forms it travels in.
// Client-supplied values (a scope, a resource, a forwarded address) are bounded and masked at any
// depth of a line (LogSafety, issue 12 part 4).

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import { createLogger, REDACT_CONTAINERS, REDACT_PATHS, SENSITIVE_FIELDS } from '../../src/observability/logger.js';
import { LOG_MASKS, LogSafety, MAX_LOG_VALUE_LENGTH, truncationMarker } from '../../src/observability/log-safety.js';
import { subscribeAuditLog } from '../../src/observability/audit.js';
import { EventBus, type EventMap } from '../../src/observability/events.js';
import { admin, basicAuth, postForm, registerClient, startListening, type ListeningServer } from '../e2e/listening-server.js';
import { basic, startTestServer } from '../helpers/server.js';

const ORDERS = 'https://orders.example.com';
const CENSOR = '[REDACTED]';

function captureLogger(): { logger: ReturnType<typeof createLogger>; lines: string[] } {
  const lines: string[] = [];
  const logger = createLogger({ level: 'trace', destination: { write: (s: string) => void lines.push(s) } });
  return { logger, lines };
}

describe('REDACT_PATHS with createLogger', () => {
  // Every name under which a secret may be handed to the logger, in both spellings.
  const SECRET_KEYS = [
    'client_secret', 'clientSecret', 'authorization', 'cookie', 'token', 'access_token', 'accessToken',
    'client_assertion', 'clientAssertion', 'adminToken', 'admin_token', 'kek', 'secret', 'password',
    'privateKey', 'private_key', 'body', 'params', 'dpop',
  ];
  // Objects a secret may sit in one level down when something is logged.
  const CONTAINERS = ['req', 'request', 'headers', 'body', 'params', 'query', 'client', 'config', 'err', 'error', 'payload', 'input', 'data'];

  it('lists each of them at the top level and one level down in every container', () => {
    for (const key of SECRET_KEYS) {
      expect(SENSITIVE_FIELDS, key).toContain(key);
      expect(REDACT_PATHS, key).toContain(key);
      for (const c of CONTAINERS) expect(REDACT_PATHS, `${c}.${key}`).toContain(`${c}.${key}`);
    }
    for (const c of CONTAINERS) expect(REDACT_CONTAINERS).toContain(c);
    expect(REDACT_PATHS).toContain('req.headers.authorization');
    expect(REDACT_PATHS).toContain('request.headers.authorization');
    expect(REDACT_PATHS).toContain('req.headers.dpop');
    expect(REDACT_PATHS).toContain('request.headers.dpop');
  });

  for (const key of SECRET_KEYS) {
    it(`censors ${key} at the top level and nested one level, and keeps the fields around it`, () => {
      const { logger, lines } = captureLogger();
      const value = `v-${key}-${randomBytes(12).toString('hex')}`;
      logger.info({ client_id: 'cl_visible', [key]: value }, 'top level');
      logger.child({ audit: true }).warn({ type: 'x', [key]: value }, 'child logger');
      // Containers that are themselves sensitive (body, params) are censored whole; skip them here.
      const containers = REDACT_CONTAINERS.filter((c) => !SENSITIVE_FIELDS.includes(c));
      for (const c of containers) logger.info({ client_id: 'cl_visible', [c]: { [key]: value, outcome: 'ok' } }, `nested in ${c}`);
      expect(lines).toHaveLength(2 + containers.length);
      for (const line of lines) expect(line).not.toContain(value);
      const [top, child, ...nested] = lines.map((l) => JSON.parse(l));
      expect(top[key]).toBe(CENSOR);
      expect(top.client_id).toBe('cl_visible');
      expect(child[key]).toBe(CENSOR);
      expect(child.type).toBe('x');
      containers.forEach((c, i) => {
        expect(nested[i][c][key], c).toBe(CENSOR);
        expect(nested[i][c].outcome, c).toBe('ok');
      });
    });
  }

  it('censors a body or params object whole, and request headers (authorization, cookie)', () => {
    const { logger, lines } = captureLogger();
    const auth = `Basic ${randomBytes(24).toString('base64')}`;
    const cookie = `session=${randomBytes(12).toString('hex')}`;
    const secretValue = randomBytes(12).toString('hex');
    logger.info({ req: { method: 'POST', headers: { authorization: auth, cookie } } }, 'req');
    logger.info({ headers: { authorization: auth, cookie }, body: { client_secret: secretValue }, params: { token: secretValue } }, 'headers');
    logger.error({ err: Object.assign(new Error('x'), { body: `client_secret=${secretValue}` }) }, 'error with a body');
    for (const line of lines) {
      expect(line).not.toContain(auth);
      expect(line).not.toContain(cookie);
      expect(line).not.toContain(secretValue);
    }
    const [req, headers, error] = lines.map((l) => JSON.parse(l));
    expect(req.req.headers).toEqual({ authorization: CENSOR, cookie: CENSOR });
    expect(req.req.method).toBe('POST');
    expect(headers.headers).toEqual({ authorization: CENSOR, cookie: CENSOR });
    expect(headers.body).toBe(CENSOR);
    expect(headers.params).toBe(CENSOR);
    expect(error.err).toMatchObject({ type: 'Error', message: 'x', body: CENSOR });
  });

  it('censors the Client-Cert header (RFC 9440) wherever request headers are logged', () => {
    const { logger, lines } = captureLogger();
    const cert = `:${randomBytes(48).toString('base64')}:`;
    logger.info({ req: { method: 'POST', headers: { 'client-cert': cert, host: 'as' } } }, 'req');
    logger.info({ request: { headers: { 'client-cert': cert } } }, 'request');
    logger.info({ headers: { 'client-cert': cert } }, 'headers');
    for (const line of lines) expect(line).not.toContain(cert.slice(1, -1));
    const [req, request, headers] = lines.map((l) => JSON.parse(l));
    expect(req.req.headers).toEqual({ 'client-cert': CENSOR, host: 'as' });
    expect(request.request.headers['client-cert']).toBe(CENSOR);
    expect(headers.headers['client-cert']).toBe(CENSOR);
    expect(REDACT_PATHS).toContain('req.headers["client-cert"]');
  });
});

describe('a real server at log level trace', () => {
  let s: ListeningServer;
  let logs: string[];
  /** Every secret value the server saw, by a name for the failure message. */
  const secrets = new Map<string, string>();
  /** client_ids whose request lines must be there. */
  const ids: Record<'basic' | 'post' | 'jwt', string> = { basic: '', post: '', jwt: '' };

  function secret(name: string, value: string): string {
    expect(value.length, name).toBeGreaterThanOrEqual(16);
    secrets.set(name, value);
    return value;
  }

  async function tokenRequest(form: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
    return postForm(`${s.issuer}/oauth2/token`, { grant_type: 'client_credentials', ...form }, headers);
  }

  async function accessToken(name: string, res: Response): Promise<string> {
    const text = await res.text();
    expect(res.status, text).toBe(200);
    return secret(name, (JSON.parse(text) as { access_token: string }).access_token);
  }

  async function assertion(clientId: string, key: CryptoKey, kid: string, name: string): Promise<string> {
    const jwt = await new SignJWT({ jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256', kid })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(s.issuer)
      .setIssuedAt()
      .setExpirationTime('2m')
      .sign(key);
    return secret(name, jwt);
  }

  beforeAll(async () => {
    // Admin token and KEK generated into the data folder, as in production without configuration.
    // Every audit line, sampled ones included: each is searched for secrets below.
    s = await startListening({ captureLogs: 'trace', overrides: { auditSampleRate: 1 } });
    logs = s.logs;
    secret('admin token', s.adminToken);
    secret('KEK (base64, data/kek)', readFileSync(join(s.dataDir, 'kek'), 'utf8').trim());
    const kekBytes = Buffer.from(secrets.get('KEK (base64, data/kek)')!, 'base64');
    secret('KEK (hex)', kekBytes.toString('hex'));
    secret('KEK (base64url)', kekBytes.toString('base64url'));

    // Admin API: registrations that return a secret.
    const a = await registerClient(s, { client_name: 'basic', scope: 'orders:read', audience: [ORDERS] });
    const b = await registerClient(s, { client_name: 'post', scope: 'orders:read', audience: [ORDERS], token_endpoint_auth_method: 'client_secret_post' });
    const { publicKey, privateKey } = await generateKeyPair('ES256');
    const kid = 'redaction-key';
    const c = await registerClient(s, {
      client_name: 'jwt', scope: 'orders:read', audience: [ORDERS], token_endpoint_auth_method: 'private_key_jwt',
      jwks: { keys: [{ ...(await exportJWK(publicKey)), kid, alg: 'ES256', use: 'sig' }] },
    });
    ids.basic = a.client_id;
    ids.post = b.client_id;
    ids.jwt = c.client_id;
    const aSecret = secret('basic client secret', a.client_secret!);
    const bSecret = secret('post client secret', b.client_secret!);

    // client_secret_basic, client_secret_post, private_key_jwt.
    const tA = await accessToken('token (basic)', await tokenRequest({}, { authorization: basicAuth(a.client_id, aSecret) }));
    const tB = await accessToken('token (post)', await tokenRequest({ client_id: b.client_id, client_secret: bSecret }));
    const tC = await accessToken('token (private_key_jwt)', await tokenRequest({
      client_id: c.client_id,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await assertion(c.client_id, privateKey, kid, 'client assertion 1'),
    }));

    // DPoP (RFC 9449): a proof, the DPoP-bound token, and the same proof replayed (refused).
    const dpopKey = await generateKeyPair('ES256');
    const dpopProof = secret('DPoP proof', await new SignJWT({ htm: 'POST', htu: `${s.issuer}/oauth2/token`, jti: randomUUID() })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: await exportJWK(dpopKey.publicKey) })
      .setIssuedAt()
      .sign(dpopKey.privateKey));
    await accessToken('token (DPoP)', await tokenRequest({}, { authorization: basicAuth(a.client_id, aSecret), dpop: dpopProof }));
    expect((await tokenRequest({}, { authorization: basicAuth(a.client_id, aSecret), dpop: dpopProof })).status).toBe(400);

    // Failures: wrong secrets, a replayed assertion, malformed Basic, repeated secrets, a body too large.
    const wrong1 = secret('wrong secret (basic)', `m2m_cs_${randomBytes(32).toString('base64url')}`);
    const wrong2 = secret('wrong secret (post)', `m2m_cs_${randomBytes(32).toString('base64url')}`);
    expect((await tokenRequest({}, { authorization: basicAuth(a.client_id, wrong1) })).status).toBe(401);
    expect((await tokenRequest({ client_id: b.client_id, client_secret: wrong2 })).status).toBe(401);
    const replayed = await assertion(c.client_id, privateKey, kid, 'client assertion 2');
    const assertionForm = { client_id: c.client_id, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: replayed };
    expect((await tokenRequest(assertionForm)).status).toBe(200);
    expect((await tokenRequest(assertionForm)).status).toBe(401);
    const other = await generateKeyPair('ES256');
    expect((await tokenRequest({ ...assertionForm, client_assertion: await assertion(c.client_id, other.privateKey, kid, 'forged assertion') })).status).toBe(401);
    // Basic credentials without a colon, and a Basic value that is not base64 at all.
    expect((await tokenRequest({}, { authorization: `Basic ${Buffer.from(`${a.client_id}${aSecret}`).toString('base64')}` })).status).toBe(400);
    expect((await tokenRequest({}, { authorization: `Basic ${aSecret}!` })).status).toBe(400);
    // A secret sent twice, a secret with Basic as well (two methods), an unsupported grant type.
    const twice = new URLSearchParams([['grant_type', 'client_credentials'], ['client_id', b.client_id], ['client_secret', bSecret], ['client_secret', bSecret]]);
    expect((await fetch(`${s.issuer}/oauth2/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: twice })).status).toBe(400);
    expect((await tokenRequest({ client_id: b.client_id, client_secret: bSecret }, { authorization: basicAuth(a.client_id, aSecret) })).status).toBe(400);
    expect((await postForm(`${s.issuer}/oauth2/token`, { grant_type: 'password', client_id: b.client_id, client_secret: bSecret })).status).toBe(400);
    expect((await tokenRequest({ scope: 'orders:delete' }, { authorization: basicAuth(a.client_id, aSecret) })).status).toBe(400);
    const big = await postForm(`${s.issuer}/oauth2/token`, { grant_type: 'client_credentials', client_id: b.client_id, client_secret: bSecret, pad: 'x'.repeat(70_000) });
    expect(big.status).toBe(413);

    // Introspection (by each method) and revocation.
    const introspect = async (form: Record<string, string>, headers: Record<string, string> = {}) => {
      const res = await postForm(`${s.issuer}/oauth2/introspect`, form, headers);
      expect(res.status).toBe(200);
      return (await res.json()) as { active: boolean };
    };
    expect((await introspect({ token: tA }, { authorization: basicAuth(a.client_id, aSecret) })).active).toBe(true);
    expect((await introspect({ token: tB, client_id: b.client_id, client_secret: bSecret })).active).toBe(true);
    expect((await introspect({
      token: tC, client_id: c.client_id, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: await assertion(c.client_id, privateKey, kid, 'client assertion 3'),
    })).active).toBe(true);
    expect((await introspect({ token: tA, client_id: b.client_id, client_secret: bSecret })).active).toBe(false);
    expect((await postForm(`${s.issuer}/oauth2/introspect`, { token: tA }, { authorization: basicAuth(a.client_id, wrong1) })).status).toBe(401);
    expect((await postForm(`${s.issuer}/oauth2/revoke`, { token: tA }, { authorization: basicAuth(a.client_id, aSecret) })).status).toBe(200);
    expect((await postForm(`${s.issuer}/oauth2/revoke`, { token: tB, client_id: a.client_id, client_secret: aSecret })).status).toBe(401);
    expect((await postForm(`${s.issuer}/oauth2/revoke`, { token: tC }, { authorization: basicAuth(a.client_id, aSecret) })).status).toBe(400);

    // Secret rotation (the answer carries the new secret), then the new secret in use.
    const rotated = await admin(s, 'POST', `/clients/${a.client_id}/secret`, { grace_period: 60 });
    expect(rotated.status).toBe(200);
    const aSecret2 = secret('rotated secret', rotated.body.client_secret);
    await accessToken('token (rotated secret)', await tokenRequest({}, { authorization: basicAuth(a.client_id, aSecret2) }));

    // Admin authentication failures: a wrong token, and the right token under the wrong scheme.
    const wrongAdmin = secret('wrong admin token', randomBytes(32).toString('base64url'));
    expect((await admin(s, 'GET', '/clients', undefined, wrongAdmin)).status).toBe(401);
    const basicAdmin = await fetch(`${s.adminUrl}/admin/clients`, { headers: { authorization: `Basic ${Buffer.from(`admin:${s.adminToken}`).toString('base64')}` } });
    expect(basicAdmin.status).toBe(401);
    const queryAdmin = await fetch(`${s.adminUrl}/admin/clients?access_token=${encodeURIComponent(s.adminToken)}`);
    expect(queryAdmin.status).toBe(401);

    // A client that mixes up its id and its secret (-u "$CLIENT_SECRET:$CLIENT_ID").
    expect((await tokenRequest({}, { authorization: basicAuth(aSecret2, a.client_id) })).status).toBe(401);
    expect((await tokenRequest({ client_id: bSecret, client_secret: b.client_id })).status).toBe(401);

    // Client-supplied text that reaches the token.denied line and the detail line (issue 12 part 4):
    // a client secret in scope, one in a resource's query, an access token as scope, the admin
    // token in a resource, and a scope of 50,000 characters.
    const inScope = secret('client secret sent as a scope', `m2m_cs_${randomBytes(32).toString('base64url')}`);
    const inResource = secret('client secret in a resource', `m2m_cs_${randomBytes(32).toString('base64url')}`);
    const asBasic = { authorization: basicAuth(a.client_id, aSecret) };
    expect((await tokenRequest({ scope: `orders:read ${inScope}` }, asBasic)).status).toBe(400);
    expect((await tokenRequest({ resource: `https://x.example/?k=${inResource}` }, asBasic)).status).toBe(400);
    expect((await tokenRequest({ scope: tB }, asBasic)).status).toBe(400);
    expect((await tokenRequest({ resource: `https://x.example/${s.adminToken}` }, asBasic)).status).toBe(400);
    expect((await tokenRequest({ scope: `orders:read ${'y'.repeat(50_000)}` }, asBasic)).status).toBe(400);

    // Every request line is written by onResponse; close() waits for them and flushes.
    await s.close();
  }, 60_000);
  afterAll(() => s?.close());

  /** The forms a secret travels in: raw, URL-encoded, base64 (Basic), and a JWT's signature alone. */
  function forms(value: string): string[] {
    const out = new Set([value, encodeURIComponent(value), Buffer.from(value).toString('base64'), Buffer.from(value).toString('base64url')]);
    const parts = value.split('.');
    if (parts.length === 3 && parts[2]!.length > 20) out.add(parts[2]!);
    // A secret's random part, in case the prefix is cut off.
    if (value.startsWith('m2m_cs_')) out.add(value.slice('m2m_cs_'.length));
    return [...out];
  }

  it('never writes a secret, an assertion, a token, the admin token or the KEK, in any form', () => {
    expect(secrets.size).toBeGreaterThanOrEqual(18);
    // Basic headers as sent: base64 of "id:secret".
    const basicValues: string[] = [];
    for (const line of logs) for (const m of line.matchAll(/Basic ([A-Za-z0-9+/=]{16,})/g)) basicValues.push(m[1]!);
    expect(basicValues).toEqual([]);
    const leaks: string[] = [];
    for (const [name, value] of secrets) {
      for (const form of forms(value)) {
        const hit = logs.find((line) => line.includes(form));
        if (hit) leaks.push(`${name} (${form === value ? 'raw' : 'as ' + form.slice(0, 12) + '...'}) in: ${hit.slice(0, 300)}`);
      }
    }
    expect(leaks).toEqual([]);
  });

  it('bounds every line and marks what it cut, and shows where a secret was masked', () => {
    // Before: the 50,000-character scope made a token.denied line of about 50 KB.
    for (const line of logs) expect(line.length, line.slice(0, 200)).toBeLessThan(2048);
    const denied = logs.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.type === 'token.denied' && l.error !== 'invalid_client');
    const reasons = denied.map((l) => String(l.reason));
    expect(reasons).toContain('scope "[REDACTED client secret]" not allowed');
    expect(reasons).toContain('audience "https://x.example/?k=[REDACTED client secret]" not allowed');
    expect(reasons).toContain('scope "[REDACTED JWT]" not allowed');
    expect(reasons).toContain('audience "https://x.example/[REDACTED admin token]" not allowed');
    const long = reasons.find((r) => r.startsWith('scope "yyy'));
    expect(long).toBe(`scope "${'y'.repeat(256 - 'scope "'.length)}...[truncated: ${`scope "${'y'.repeat(50_000)}" not allowed`.length} characters]`);
  });

  it('does write the request lines (client_id, outcome, status, ms) and audit events', () => {
    const parsed = logs.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.length).toBeGreaterThan(30);
    const requests = parsed.filter((l) => l.msg === 'request');
    const has = (match: Record<string, unknown>) => requests.some((l) => Object.entries(match).every(([k, v]) => l[k] === v));
    for (const r of requests) {
      expect(typeof r.ms).toBe('number');
      expect(typeof r.status).toBe('number');
      expect(typeof r.reqId).toBe('string');
    }
    expect(has({ path: '/oauth2/token', status: 200, client_id: ids.basic, outcome: 'ok' })).toBe(true);
    expect(has({ path: '/oauth2/token', status: 200, client_id: ids.post, outcome: 'ok' })).toBe(true);
    expect(has({ path: '/oauth2/token', status: 200, client_id: ids.jwt, outcome: 'ok' })).toBe(true);
    expect(has({ path: '/oauth2/token', status: 401, client_id: ids.basic, outcome: 'invalid_client' })).toBe(true);
    expect(has({ path: '/oauth2/token', status: 401, client_id: ids.post, outcome: 'invalid_client' })).toBe(true);
    expect(has({ path: '/oauth2/token', status: 401, client_id: ids.jwt, outcome: 'invalid_client' })).toBe(true);
    expect(has({ path: '/oauth2/token', status: 400, outcome: 'invalid_request' })).toBe(true);
    // grant_type is checked before the client authenticates (RFC 6749 §5.2 order), so no client_id.
    expect(has({ path: '/oauth2/token', status: 400, client_id: undefined, outcome: 'unsupported_grant_type' })).toBe(true);
    // An id and secret swapped: the 401 lines are there, without the presented "client_id".
    expect(requests.filter((l) => l.status === 401 && l.client_id === undefined && l.outcome === 'invalid_client').length).toBeGreaterThanOrEqual(2);
    expect(has({ path: '/oauth2/token', status: 413, outcome: 'request_too_large' })).toBe(true);
    // Errors after authentication still name the client that made the request.
    expect(has({ path: '/oauth2/token', status: 400, client_id: ids.basic, outcome: 'invalid_scope' })).toBe(true);
    expect(has({ path: '/oauth2/introspect', status: 200, client_id: ids.basic, outcome: 'ok' })).toBe(true);
    expect(has({ path: '/oauth2/introspect', status: 200, client_id: ids.jwt, outcome: 'ok' })).toBe(true);
    expect(has({ path: '/oauth2/revoke', status: 200, client_id: ids.basic, outcome: 'ok' })).toBe(true);
    expect(has({ path: '/oauth2/revoke', status: 400, client_id: ids.basic, outcome: 'invalid_request' })).toBe(true);

    const audit = (type: string) => parsed.filter((l) => l.type === type);
    expect(audit('client.created').map((l) => l.clientId)).toEqual([ids.basic, ids.post, ids.jwt]);
    expect(audit('client.secret_rotated').map((l) => l.clientId)).toEqual([ids.basic]);
    expect(audit('token.revoked').map((l) => l.clientId)).toEqual([ids.basic]);
    expect(audit('admin.auth_failed').length).toBeGreaterThanOrEqual(3);
    expect(audit('token.issued').length).toBeGreaterThanOrEqual(5);
    expect(audit('token.denied').some((l) => l.clientId === ids.jwt && typeof l.reason === 'string')).toBe(true);
    expect(audit('token.denied').some((l) => l.clientId === ids.basic && l.error === 'invalid_scope')).toBe(true);
    // The admin token's path is logged, never its value (checked above).
    expect(parsed.some((l) => typeof l.path === 'string' && l.path.endsWith('admin-token'))).toBe(true);
    // At trace level the private error details are there too.
    expect(parsed.some((l) => l.msg === 'oauth error detail' && l.detail === 'wrong or expired client secret')).toBe(true);
  });
});

describe('client-supplied values, at any depth of a line (LogSafety)', () => {
  const clientSecret = () => `m2m_cs_${randomBytes(32).toString('base64url')}`;
  const adminToken = () => `m2m_at_${randomBytes(32).toString('base64url')}`;
  const jwt = () => ['eyJhbGciOiJFUzI1NiJ9', `eyJ${randomBytes(40).toString('base64url')}`, randomBytes(64).toString('base64url')].join('.');
  const configured = `configured-admin-token-${randomBytes(16).toString('hex')}`;
  const safety = new LogSafety({ secrets: [configured] });

  it('leaves a short ordinary value as it is (the same string)', () => {
    for (const v of ['orders:read orders:write', 'https://orders.example.com', '10.0.0.7', 'cl_aaaaaaaaaaaaaaaa', '', 'eyJ', 'a.eyJb.c']) {
      expect(safety.value(v)).toBe(v);
    }
  });

  it('masks our client secrets, our admin tokens, JWTs and the configured admin token, wherever they sit in the value', () => {
    const cs = clientSecret();
    const at = adminToken();
    const token = jwt();
    const cases: Array<[string, string]> = [
      [`orders:read ${cs}`, `orders:read ${LOG_MASKS.clientSecret}`],
      [`https://x/?k=${cs}&a=1`, `https://x/?k=${LOG_MASKS.clientSecret}&a=1`],
      [`Bearer ${at}`, `Bearer ${LOG_MASKS.adminToken}`],
      [token, LOG_MASKS.jwt],
      [`https://x/?access_token=${token}#f`, `https://x/?access_token=${LOG_MASKS.jwt}#f`],
      // Glued to other base64url characters, or followed by more segments (a JWE has five).
      [`abc${token}`, `abc${LOG_MASKS.jwt}`],
      [`${token}.more.segments`, LOG_MASKS.jwt],
      [`x ${configured} y`, `x ${LOG_MASKS.adminToken} y`],
      [`${cs}${configured}`, `${LOG_MASKS.clientSecret}${LOG_MASKS.adminToken}`],
      [`${configured}${cs}`, `${LOG_MASKS.adminToken}${LOG_MASKS.clientSecret}`],
    ];
    for (const [raw, expected] of cases) expect(safety.value(raw), raw).toBe(expected);
  });

  it('bounds a value to 256 characters with a marker giving its full length, after masking', () => {
    expect(MAX_LOG_VALUE_LENGTH).toBe(256);
    const long = 'a'.repeat(1000);
    expect(safety.value(long)).toBe(`${'a'.repeat(256)}${truncationMarker(1000)}`);
    expect(truncationMarker(1000)).toBe('...[truncated: 1000 characters]');
    // A secret across the cut is masked first: no part of it is left at the end.
    const cs = clientSecret();
    const across = `${'a'.repeat(250)}${cs}${'b'.repeat(100)}`;
    const out = safety.value(across);
    expect(out).toBe(`${'a'.repeat(250)}${LOG_MASKS.clientSecret.slice(0, 6)}${truncationMarker(across.length)}`);
    expect(out).not.toContain(cs.slice(7, 13));
    // Never half of a surrogate pair at the cut.
    const emoji = `${'a'.repeat(255)}😀😀`;
    expect(safety.value(emoji)).toBe(`${'a'.repeat(255)}${truncationMarker(emoji.length)}`);
    // Long runs that look like the start of a JWT but never become one: one pass, bounded.
    expect(safety.value('eyJ'.repeat(100_000))).toBe(`${'eyJ'.repeat(100_000).slice(0, 256)}${truncationMarker(300_000)}`);
  });

  it('makes every value of a line safe at any depth (objects inside arrays inside objects) and censors sensitive members there', () => {
    const cs = clientSecret();
    const token = jwt();
    const plain = `plain-${randomBytes(12).toString('hex')}`;
    const payload = {
      clientId: 'cl_aaaaaaaaaaaaaaaa', count: 3, ok: true, none: null,
      outer: { list: [{ inner: { scope: `orders:read ${cs}`, long: 'z'.repeat(300), client_secret: plain } }, [[token]]] },
    };
    const { logger, lines } = captureLogger();
    logger.info(safety.members(payload, { type: 'x' }), 'nested');
    expect(lines).toHaveLength(1);
    for (const leaked of [cs, token, plain, cs.slice(7)]) expect(lines[0]).not.toContain(leaked);
    const line = JSON.parse(lines[0]!);
    expect(line).toMatchObject({ type: 'x', clientId: 'cl_aaaaaaaaaaaaaaaa', count: 3, ok: true, none: null });
    expect(line.outer.list[0].inner).toEqual({
      scope: `orders:read ${LOG_MASKS.clientSecret}`,
      long: `${'z'.repeat(256)}${truncationMarker(300)}`,
      client_secret: CENSOR,
    });
    expect(line.outer.list[1]).toEqual([[LOG_MASKS.jwt]]);
    // The payload itself is not changed.
    expect(payload.outer.list[0]).toMatchObject({ inner: { client_secret: plain } });
  });

  it('the audit log builds its lines this way: a nested payload comes out bounded and masked', () => {
    const { logger, lines } = captureLogger();
    const events = new EventBus();
    subscribeAuditLog(events, logger, { sampleRate: 1, safety });
    const cs = clientSecret();
    events.emit('token.denied', {
      error: 'invalid_scope', reason: `scope "${configured}" not allowed`, ip: `10.0.0.1, ${cs}`,
      ...{ context: [{ deep: { values: [`${'q'.repeat(400)}`, jwt()] } }] },
    } as EventMap['token.denied']);
    events.emit('token.issued', { clientId: 'cl_aaaaaaaaaaaaaaaa', jti: 'j', scope: `s ${cs}`, aud: [`https://x/${configured}`], exp: 1, kid: 'k' });
    const [denied, issuedLine] = lines.map((l) => JSON.parse(l));
    expect(denied).toMatchObject({
      type: 'token.denied', actor: 'anonymous', reason: `scope "${LOG_MASKS.adminToken}" not allowed`, ip: `10.0.0.1, ${LOG_MASKS.clientSecret}`,
      context: [{ deep: { values: [`${'q'.repeat(256)}${truncationMarker(400)}`, LOG_MASKS.jwt] } }],
    });
    expect(issuedLine).toMatchObject({ type: 'token.issued', scope: `s ${LOG_MASKS.clientSecret}`, aud: [`https://x/${LOG_MASKS.adminToken}`], sample_rate: 1 });
    for (const line of lines) {
      expect(line).not.toContain(configured);
      expect(line).not.toContain(cs);
    }
  });
});

describe('a server with a configured admin token behind a trusted proxy', () => {
  it('masks the configured token by its value and bounds a forwarded address, in the request, audit and detail lines', async () => {
    const configured = `configured-${randomBytes(24).toString('hex')}`;
    const t = await startTestServer({ adminToken: configured, trustProxy: 'loopback' });
    try {
      const { clientId, clientSecret } = await t.client();
      const forwarded = `not-an-address-${configured}-${'f'.repeat(1000)}`;
      const res = await t.post('/oauth2/token', { grant_type: 'client_credentials', resource: `https://x.example/${configured}` }, {
        authorization: basic(clientId, clientSecret), 'x-forwarded-for': forwarded,
      });
      expect(res.statusCode).toBe(400);
      expect((await t.post('/oauth2/token', { grant_type: 'client_credentials' }, { authorization: basic(clientId, 'm2m_cs_wrong'), 'x-forwarded-for': forwarded })).statusCode).toBe(401);
      await t.close();
      const lines = t.logs.map((l) => JSON.parse(l) as Record<string, unknown>);
      for (const line of t.logs) {
        expect(line).not.toContain(configured);
        expect(line.length).toBeLessThan(2048);
      }
      const safeAddress = `not-an-address-${LOG_MASKS.adminToken}-${'f'.repeat(256 - 'not-an-address-'.length - LOG_MASKS.adminToken.length - 1)}${truncationMarker(forwarded.length)}`;
      const requests = lines.filter((l) => l.msg === 'request' && l.path === '/oauth2/token');
      expect(requests.map((l) => l.ip)).toEqual([safeAddress, safeAddress]);
      const denied = lines.filter((l) => l.type === 'token.denied');
      expect(denied.map((l) => l.ip)).toEqual([safeAddress, safeAddress]);
      expect(denied[0]!.reason).toBe(`audience "https://x.example/${LOG_MASKS.adminToken}" not allowed`);
      expect(lines.find((l) => l.msg === 'oauth error detail')!.detail).toBe(`audience "https://x.example/${LOG_MASKS.adminToken}" not allowed`);
    } finally {
      await t.close();
    }
  });
});
