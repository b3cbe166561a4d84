// The audit log: one line per event with type, actor, time and source; sampling of the
// high-volume successes (M2M_AUTH_AUDIT_SAMPLE_RATE) and never of failures or admin events; no
// secret or token in any line. Unit tests on an EventBus, then a real server driven over inject.

import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/schema.js';
import { ConfigError } from '../../src/ground/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { EventBus } from '../../src/observability/events.js';
import { DEFAULT_AUDIT_SAMPLE_RATE, subscribeAuditLog } from '../../src/observability/audit.js';
import { basic, startTestServer } from '../helpers/server.js';

type Line = Record<string, unknown> & { type?: string; level?: string; msg?: string };

function capture(): { logger: ReturnType<typeof createLogger>; lines: () => Line[] } {
  const raw: string[] = [];
  const logger = createLogger({ level: 'debug', destination: { write: (s: string) => void raw.push(s) } });
  return { logger, lines: () => raw.map((l) => JSON.parse(l) as Line) };
}

const issued = (clientId = 'cl_aaaaaaaaaaaaaaaa') =>
  ({ clientId, jti: 'jti-1', scope: 'orders:read', aud: ['https://orders.example.com'], exp: 1, kid: 'k1', ip: '10.0.0.7', requestId: 'r1' });

function emitEveryOtherEvent(events: EventBus): void {
  events.emit('token.denied', { clientId: 'cl_aaaaaaaaaaaaaaaa', error: 'invalid_client', reason: 'wrong or expired client secret', ip: '10.0.0.7', requestId: 'r2' });
  events.emit('token.revoked', { clientId: 'cl_aaaaaaaaaaaaaaaa', jti: 'jti-1', ip: '10.0.0.7', requestId: 'r3' });
  events.emit('token.introspected', { callerClientId: 'cl_bbbbbbbbbbbbbbbb', active: false, ip: '10.0.0.8', requestId: 'r4' });
  events.emit('client.created', { clientId: 'cl_cccccccccccccccc', ip: '10.0.0.9', requestId: 'r5' });
  events.emit('client.tokens_revoked', { clientId: 'cl_cccccccccccccccc', before: 5, ip: '10.0.0.9', requestId: 'r6' });
  events.emit('key.created', { kid: 'k2', alg: 'ES256', activatesAt: 10 });
  events.emit('key.revoked', { kid: 'k1', ip: '10.0.0.9', requestId: 'r8' });
  events.emit('key.rotation_failed', { error: 'database is locked' });
  events.emit('admin.auth_failed', { reason: 'invalid_token', ip: '10.0.0.66', requestId: 'r7' });
}

describe('subscribeAuditLog', () => {
  it('writes one line per event with type, actor, time and source', () => {
    const { logger, lines } = capture();
    const events = new EventBus();
    subscribeAuditLog(events, logger, { sampleRate: 1 });
    events.emit('token.issued', issued());
    emitEveryOtherEvent(events);
    const got = lines();
    expect(got.map((l) => l.type)).toEqual([
      'token.issued', 'token.denied', 'token.revoked', 'token.introspected', 'client.created', 'client.tokens_revoked',
      'key.created', 'key.revoked', 'key.rotation_failed', 'admin.auth_failed',
    ]);
    for (const l of got) {
      expect(l.audit).toBe(true);
      expect(l.msg).toBe(l.type);
      expect(typeof l.time).toBe('number');
      expect(typeof l.actor).toBe('string');
    }
    const by = (type: string) => got.find((l) => l.type === type)!;
    expect(by('token.issued')).toMatchObject({ actor: 'cl_aaaaaaaaaaaaaaaa', clientId: 'cl_aaaaaaaaaaaaaaaa', jti: 'jti-1', ip: '10.0.0.7', requestId: 'r1', level: 'info' });
    expect(by('token.denied')).toMatchObject({ actor: 'cl_aaaaaaaaaaaaaaaa', error: 'invalid_client', ip: '10.0.0.7', level: 'info' });
    expect(by('token.introspected')).toMatchObject({ actor: 'cl_bbbbbbbbbbbbbbbb', active: false, level: 'info' });
    expect(by('client.created')).toMatchObject({ actor: 'admin', clientId: 'cl_cccccccccccccccc', ip: '10.0.0.9', level: 'info' });
    expect(by('key.created')).toMatchObject({ actor: 'system', kid: 'k2', level: 'info' });
    expect(by('key.revoked')).toMatchObject({ actor: 'admin', kid: 'k1', ip: '10.0.0.9', requestId: 'r8', level: 'info' });
    expect(by('key.rotation_failed')).toMatchObject({ actor: 'system', level: 'warn' });
    expect(by('admin.auth_failed')).toMatchObject({ actor: 'anonymous', ip: '10.0.0.66', level: 'warn' });
  });

  it('rate 0 writes no token.issued or active token.introspected line, and still every other event', () => {
    const { logger, lines } = capture();
    const events = new EventBus();
    subscribeAuditLog(events, logger, { sampleRate: 0, random: () => 0 });
    for (let i = 0; i < 50; i++) {
      events.emit('token.issued', issued());
      events.emit('token.introspected', { callerClientId: 'cl_bbbbbbbbbbbbbbbb', active: true });
    }
    emitEveryOtherEvent(events);
    const got = lines();
    expect(got.filter((l) => l.type === 'token.issued')).toEqual([]);
    expect(got.filter((l) => l.type === 'token.introspected').map((l) => l.active)).toEqual([false]);
    expect(got.length).toBe(9);
  });

  it('rate 1 writes every token.issued line at info, marked with the rate', () => {
    const { logger, lines } = capture();
    const events = new EventBus();
    subscribeAuditLog(events, logger, { sampleRate: 1, random: () => 0.999999 });
    for (let i = 0; i < 50; i++) events.emit('token.issued', issued());
    const got = lines();
    expect(got).toHaveLength(50);
    for (const l of got) expect(l).toMatchObject({ type: 'token.issued', level: 'info', sample_rate: 1 });
  });

  it('a rate in between keeps the events whose draw falls under it', () => {
    const { logger, lines } = capture();
    const events = new EventBus();
    const draws = [0.05, 0.5, 0.24, 0.25, 0.99, 0.1];
    let i = 0;
    subscribeAuditLog(events, logger, { sampleRate: 0.25, random: () => draws[i++]! });
    draws.forEach((_, n) => events.emit('token.issued', issued(`cl_${String(n).repeat(16)}`)));
    expect(lines().map((l) => l.clientId)).toEqual(['cl_0000000000000000', 'cl_2222222222222222', 'cl_5555555555555555']);
    expect(lines().every((l) => l.sample_rate === 0.25)).toBe(true);
  });

  it('failures are never sampled, whatever the draw', () => {
    const { logger, lines } = capture();
    const events = new EventBus();
    subscribeAuditLog(events, logger, { sampleRate: 0.01, random: () => 0.99 });
    for (let n = 0; n < 20; n++) events.emit('token.denied', { error: 'invalid_client', reason: 'unknown client', ip: '10.0.0.1' });
    expect(lines().filter((l) => l.type === 'token.denied')).toHaveLength(20);
  });

  it('refuses a rate outside 0..1 and defaults to a small one', () => {
    const { logger } = capture();
    for (const bad of [-0.1, 1.5, Number.NaN]) expect(() => subscribeAuditLog(new EventBus(), logger, { sampleRate: bad })).toThrow(RangeError);
    expect(DEFAULT_AUDIT_SAMPLE_RATE).toBeGreaterThan(0);
    expect(DEFAULT_AUDIT_SAMPLE_RATE).toBeLessThanOrEqual(0.1);
  });

  it('the unsubscribe function stops the lines', () => {
    const { logger, lines } = capture();
    const events = new EventBus();
    const off = subscribeAuditLog(events, logger);
    off();
    emitEveryOtherEvent(events);
    expect(lines()).toEqual([]);
  });
});

describe('M2M_AUTH_AUDIT_SAMPLE_RATE', () => {
  it('reads a fraction from 0 to 1 and defaults to the documented rate', () => {
    expect(loadConfig({}).auditSampleRate).toBe(DEFAULT_AUDIT_SAMPLE_RATE);
    expect(loadConfig({ M2M_AUTH_AUDIT_SAMPLE_RATE: '0.25' }).auditSampleRate).toBe(0.25);
    expect(loadConfig({ M2M_AUTH_AUDIT_SAMPLE_RATE: '1' }).auditSampleRate).toBe(1);
    expect(loadConfig({ M2M_AUTH_AUDIT_SAMPLE_RATE: '0' }).auditSampleRate).toBe(0);
    expect(loadConfig({}, { auditSampleRate: '.5' }).auditSampleRate).toBe(0.5);
  });

  it.each(['1.5', '-0.1', 'abc', '1e-2', '0.5x'])('refuses %s naming the variable', (raw) => {
    expect(() => loadConfig({ M2M_AUTH_AUDIT_SAMPLE_RATE: raw })).toThrow(ConfigError);
    expect(() => loadConfig({ M2M_AUTH_AUDIT_SAMPLE_RATE: raw })).toThrow(/M2M_AUTH_AUDIT_SAMPLE_RATE/);
  });
});

describe('audit lines of a real server', () => {
  async function traffic(sampleRate: number) {
    const t = await startTestServer({ auditSampleRate: sampleRate });
    try {
      const created = await t.admin({ method: 'POST', url: '/admin/clients', payload: { client_name: 'billing', scope: 'orders:read', audience: ['https://orders.example.com'] } });
      expect(created.statusCode).toBe(201);
      const { client_id: clientId, client_secret: clientSecret } = JSON.parse(created.body) as { client_id: string; client_secret: string };
      const tokens: string[] = [];
      for (let i = 0; i < 5; i++) {
        const res = await t.token(clientId, clientSecret);
        expect(res.statusCode).toBe(200);
        tokens.push(JSON.parse(res.body).access_token);
      }
      expect((await t.token(clientId, 'm2m_cs_wrong')).statusCode).toBe(401);
      const auth = { authorization: basic(clientId, clientSecret) };
      expect((await t.post('/oauth2/introspect', { token: tokens[0]! }, auth)).statusCode).toBe(200);
      expect((await t.post('/oauth2/revoke', { token: tokens[1]! }, auth)).statusCode).toBe(200);
      expect((await t.server.adminApp.inject({ method: 'GET', url: '/admin/clients', headers: { authorization: 'Bearer nope' } })).statusCode).toBe(401);
      const lines = t.logs.map((l) => JSON.parse(l) as Line);
      return { lines, audit: lines.filter((l) => l.audit === true), clientId, clientSecret, tokens, adminToken: t.config.adminToken! };
    } finally {
      await t.close();
    }
  }

  it('rate 0: no token.issued line; denials, revocations, client and admin events are there with their source', async () => {
    const { audit, clientId } = await traffic(0);
    const types = audit.map((l) => l.type);
    expect(types).not.toContain('token.issued');
    expect(types).not.toContain('token.introspected');
    const denied = audit.filter((l) => l.type === 'token.denied');
    expect(denied).toHaveLength(1);
    expect(denied[0]).toMatchObject({ actor: clientId, clientId, error: 'invalid_client', level: 'info' });
    expect(typeof denied[0]!.ip).toBe('string');
    expect(typeof denied[0]!.requestId).toBe('string');
    expect(audit.find((l) => l.type === 'token.revoked')).toMatchObject({ actor: clientId, level: 'info' });
    expect(audit.find((l) => l.type === 'client.created')).toMatchObject({ actor: 'admin', clientId, level: 'info' });
    expect(typeof audit.find((l) => l.type === 'client.created')!.ip).toBe('string');
    expect(audit.find((l) => l.type === 'admin.auth_failed')).toMatchObject({ actor: 'anonymous', reason: 'invalid_token', level: 'warn' });
  });

  it('rate 1: one token.issued line per token, with its jti and never the token or the secret', async () => {
    const { lines, audit, clientId, clientSecret, tokens, adminToken } = await traffic(1);
    const issuedLines = audit.filter((l) => l.type === 'token.issued');
    expect(issuedLines).toHaveLength(tokens.length);
    const jtis = tokens.map((tok) => JSON.parse(Buffer.from(tok.split('.')[1]!, 'base64url').toString()).jti as string);
    expect(issuedLines.map((l) => l.jti)).toEqual(jtis);
    for (const l of issuedLines) expect(l).toMatchObject({ actor: clientId, level: 'info', sample_rate: 1 });
    expect(audit.filter((l) => l.type === 'token.introspected')).toHaveLength(1);
    const all = lines.map((l) => JSON.stringify(l)).join('\n');
    expect(all).not.toContain(clientSecret);
    expect(all).not.toContain(adminToken);
    for (const tok of tokens) {
      expect(all).not.toContain(tok);
      expect(all).not.toContain(tok.split('.')[2]!);
    }
  });
});
