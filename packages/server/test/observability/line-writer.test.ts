// The request line written without pino's per-line work (infoLineWriter + requestLineMembers) is
// the line pino writes for the same members, byte for byte but the time; and the writer declines
// every logger configuration in which pino would write something else.

import { tracingChannel } from 'node:diagnostics_channel';
import pino, { type Logger } from 'pino';
import { describe, expect, it } from 'vitest';
import { createLogger, infoLineWriter } from '../../src/observability/logger.js';
import { requestLineMembers } from '../../src/http/public-app.js';

const KEYS = ['reqId', 'method', 'path', 'status', 'client_id', 'outcome', 'ms', 'ip'] as const;

type Line = Parameters<typeof requestLineMembers>[0];

const LINES: Line[] = [
  { reqId: 'a1b2c3d4-1', method: 'POST', path: '/oauth2/token', status: 200, client_id: 'cl_abcdefghijklmnop', outcome: 'ok', ms: 0.123, ip: '127.0.0.1' },
  // A refusal before the client was known: no client_id; an unmatched route; a whole-number ms.
  { reqId: 'a1b2c3d4-2', method: 'GET', path: 'unmatched', status: 404, client_id: undefined, outcome: undefined, ms: 3, ip: '::1' },
  // What X-Forwarded-For can carry when a proxy is trusted: quotes, backslashes, tabs, non-ASCII,
  // and a value long enough for pino's other string path (over 100 characters).
  { reqId: 'r"\\q', method: 'POST', path: '/oauth2/introspect', status: 400, client_id: 'cl_"x\\', outcome: 'invalid_request', ms: 12.5, ip: '"1.2.3.4\\"\t,\u00e9\u4e2d' },
  { reqId: 'x'.repeat(150), method: 'POST', path: '/oauth2/revoke', status: 200, client_id: 'cl_' + 'y'.repeat(120), outcome: 'ok', ms: 0, ip: 'z"'.repeat(80) },
  { reqId: 'nan', method: 'POST', path: '/oauth2/token', status: 500, client_id: undefined, outcome: 'server_error', ms: Number.NaN, ip: '' },
];

function capture(make: (destination: { write(s: string): void }) => Logger): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: make({ write: (s: string) => void lines.push(s) }), lines };
}

/** The same line with its time set to 0 (each way reads the clock itself). */
const timeless = (line: string): string => line.replace(/,"time":\d+,/, ',"time":0,');

describe('infoLineWriter', () => {
  it('writes, for every request line, exactly what log.info(line, "request") writes (the logger of createLogger and a child of it)', () => {
    for (const make of [
      (d: { write(s: string): void }) => createLogger({ destination: d }),
      (d: { write(s: string): void }) => createLogger({ destination: d }).child({ listener: 'public', n: 2 }),
    ]) {
      const { log, lines } = capture(make);
      const write = infoLineWriter(log, 'request', KEYS);
      expect(write).toBeTypeOf('function');
      for (const line of LINES) {
        log.info(line, 'request');
        write!(requestLineMembers(line), line);
        expect(lines).toHaveLength(2);
        const [byPino, byWriter] = lines.splice(0) as [string, string];
        expect(timeless(byWriter)).toBe(timeless(byPino));
        expect(byWriter.endsWith('}\n')).toBe(true);
        expect(JSON.parse(byWriter)).toMatchObject({ level: 'info', service: 'm2m-auth', msg: 'request', path: line.path, ip: line.ip });
      }
    }
  });

  it('hands the line to pino while something subscribes to pino\'s line channel, so that the subscriber sees it', () => {
    const { log, lines } = capture((d) => createLogger({ destination: d }));
    const write = infoLineWriter(log, 'request', KEYS)!;
    const seen: unknown[] = [];
    const channel = tracingChannel('pino_asJson');
    const none = (): void => undefined;
    const subscriber = { start: (message: object) => void seen.push(message), end: none, asyncStart: none, asyncEnd: none, error: none };
    channel.subscribe(subscriber);
    try {
      write(requestLineMembers(LINES[0]!), LINES[0]!);
    } finally {
      channel.unsubscribe(subscriber);
    }
    expect(seen).toHaveLength(1);
    write(requestLineMembers(LINES[0]!), LINES[0]!);
    expect(seen).toHaveLength(1);
    expect(lines.map(timeless)).toEqual([timeless(lines[1]!), timeless(lines[1]!)]);
  });

  it('declines a logger on which pino would write another line, so that the caller logs through pino', () => {
    const d = { write: () => true };
    const declined: Array<[string, Logger]> = [
      ['mixin', pino({ mixin: () => ({ extra: 1 }) }, d)],
      ['log formatter', pino({ formatters: { log: (o) => ({ ...o, extra: 1 }) } }, d)],
      ['nested key', pino({ nestedKey: 'payload' }, d)],
      ['message prefix', pino({ msgPrefix: '[x] ' }, d)],
      ['stream-write hook', pino({ hooks: { streamWrite: (s) => s } }, d)],
      ['log-method hook', pino({ hooks: { logMethod(args, method) { method.apply(this, args); } } }, d)],
      ['a serializer of one of the keys', pino({ serializers: { ip: () => 'hidden' } }, d)],
      ['redaction of one of the keys', pino({ redact: ['ip'] }, d)],
      ['wildcard redaction', pino({ redact: ['*.secret'] }, d)],
      ['a stream that wants metadata', pino({}, pino.multistream([{ stream: d }]))],
    ];
    for (const [why, log] of declined) expect(infoLineWriter(log, 'request', KEYS), why).toBeUndefined();
    // Redaction of other keys (createLogger's list) and serializers of other keys change nothing here.
    expect(infoLineWriter(pino({ redact: ['token', 'req.token'], serializers: { err: pino.stdSerializers.err } }, d), 'request', KEYS)).toBeTypeOf('function');
  });
});
