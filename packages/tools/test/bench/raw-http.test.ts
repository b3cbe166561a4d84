// The benchmark's minimal HTTP/1.1 client (bench/lib/raw-http.js): its response parsing, and one
// request against a real Fastify server.

import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// @ts-expect-error plain JavaScript without types
import { formPost, parseResponse, RawConnection } from '../../bench/lib/raw-http.js';

const ok = 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nContent-Length: 11\r\n\r\n{"a":"bcd"}';

describe('parseResponse', () => {
  it('waits for the end of the headers and then for Content-Length bytes of body', () => {
    expect(parseResponse(Buffer.from(ok.slice(0, 30)))).toBeUndefined();
    expect(parseResponse(Buffer.from(ok.slice(0, -1)))).toBeUndefined();
    const r = parseResponse(Buffer.from(ok + 'HTTP/1.1'));
    expect(r.status).toBe(200);
    expect(r.closes).toBe(false);
    expect(r.rest.toString()).toBe('HTTP/1.1');
  });

  it('sees Connection: close and refuses what it cannot read', () => {
    expect(parseResponse(Buffer.from('HTTP/1.1 429 Too Many\r\nConnection: close\r\nContent-Length: 0\r\n\r\n')))
      .toMatchObject({ status: 429, closes: true });
    expect(() => parseResponse(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n'))).toThrow(/Content-Length/);
    expect(() => parseResponse(Buffer.from('SSH-2.0-OpenSSH\r\n\r\n'))).toThrow(/not an HTTP/);
  });
});

describe('RawConnection', () => {
  const app = Fastify();
  let url: string;
  const seen: { body: unknown; auth?: string }[] = [];
  beforeAll(async () => {
    app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_r, body, done) => done(null, body));
    app.post('/t', async (req, reply) => {
      seen.push({ body: req.body, auth: req.headers.authorization });
      return reply.code(201).send({ n: seen.length });
    });
    url = `${await app.listen({ host: '127.0.0.1', port: 0 })}/t`;
  });
  afterAll(() => app.close());

  it('sends the same form POST again and again on one keep-alive connection', async () => {
    const conn = new RawConnection(formPost({ url, body: 'a=1&b=2', authorization: 'Basic eDp5' }));
    expect(await conn.send()).toBe(201);
    expect(await conn.send()).toBe(201);
    conn.close();
    expect(seen).toEqual([{ body: 'a=1&b=2', auth: 'Basic eDp5' }, { body: 'a=1&b=2', auth: 'Basic eDp5' }]);
  });
});
