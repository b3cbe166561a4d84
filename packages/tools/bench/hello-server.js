// The HTTP floor: a Fastify hello-world POST with the same body handling as m2m-auth's public
// listener (every content type read as a Buffer, src/http/public-app.ts) and nothing else: no
// routing logic, no logging, no crypto. Its round trip plus one raw signature is the fastest a
// token endpoint on Fastify can be.
//
//   node bench/hello-server.js [--port 0]
// Prints one JSON line {"url": "http://127.0.0.1:PORT"} once listening; POST /hello answers.

import { parseArgs } from 'node:util';
import Fastify from 'fastify';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } } });

const app = Fastify({ logger: false });
app.removeAllContentTypeParsers();
// As m2m-auth's listener: the form type by name (Fastify remembers its parser by header), every
// other type through the catch-all.
const asBuffer = (_req, body, done) => done(null, body);
app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer' }, asBuffer);
app.addContentTypeParser('*', { parseAs: 'buffer' }, asBuffer);

const BODY = '{"hello":"world"}';
app.post('/hello', async (request, reply) => {
  if (!Buffer.isBuffer(request.body) || request.body.length === 0) return reply.code(400).send('{"error":"invalid_request"}');
  return reply.header('content-type', 'application/json; charset=utf-8').header('cache-control', 'no-store').send(BODY);
});

const url = await app.listen({ host: values.host, port: Number(values.port) });
process.stdout.write(JSON.stringify({ url }) + '\n');

const stop = () => void app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
