// A reference, not a rival: the least a token endpoint on Fastify can do. It reads the request like
// m2m-auth's public listener (every body as a Buffer), batches by event-loop turn like it
// (dist/http/batch.js), and answers every POST with a fresh RFC 9068 access token signed by one raw
// node:crypto ES256 signature. No client authentication, no grant, no logging, no metrics, no audit
// events. m2m-auth's token rate divided by this one is the share of the best possible it reaches on
// this machine; this one divided by the floor is the most any real server could score there. The
// jti comes from randomUUID (which draws its randomness in batches), as m2m-auth's from a pool.
//
//   node bench/sign-only-server.js [--port 0]   (after npm run build)
// Prints one JSON line {"url", "issuer"} once listening; POST /token answers, the JWKS is at /jwks
// and named by /.well-known/openid-configuration.

import { generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import { parseArgs } from 'node:util';
import Fastify from 'fastify';
import { afterReads, beforeWrites, connectionAccepted } from '../dist/http/batch.js';
import { JSON_NO_STORE } from '../dist/oauth/request/context.js';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } } });

const AUDIENCE = 'https://orders.example.com';
const SCOPE = 'orders:read orders:write';
const CLIENT = 'cl_signonlyreference';
const TTL = 3600;

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const kid = randomBytes(16).toString('base64url');
const signOptions = { key: privateKey, dsaEncoding: 'ieee-p1363' };
const header = Buffer.from(JSON.stringify({ alg: 'ES256', typ: 'at+jwt', kid })).toString('base64url');
const jwks = JSON.stringify({ keys: [{ ...publicKey.export({ format: 'jwk' }), kid, alg: 'ES256', use: 'sig' }] });

const app = Fastify({ logger: false });
app.removeAllContentTypeParsers();
// As m2m-auth's listener: the form type by name (Fastify remembers its parser by header), every
// other type through the catch-all.
const asBuffer = (_req, body, done) => done(null, body);
app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer' }, asBuffer);
app.addContentTypeParser('*', { parseAs: 'buffer' }, asBuffer);

// As m2m-auth's listener does: smaller batches in turns that accept a connection.
app.server.on('connection', connectionAccepted);

let issuer = '';

app.post('/token', async (_request, reply) => {
  await afterReads();
  const iat = Math.floor(Date.now() / 1000);
  const claims = { iss: issuer, sub: CLIENT, aud: AUDIENCE, exp: iat + TTL, iat, jti: randomUUID(), client_id: CLIENT, scope: SCOPE };
  const input = header + '.' + Buffer.from(JSON.stringify(claims)).toString('base64url');
  const token = input + '.' + sign('sha256', Buffer.from(input), signOptions).toString('base64url');
  const body = `{"access_token":"${token}","token_type":"Bearer","expires_in":${TTL},"scope":"${SCOPE}"}`;
  const writes = beforeWrites();
  if (writes) await writes;
  return reply.headers(JSON_NO_STORE).send(body);
});
app.get('/.well-known/openid-configuration', async () => ({ issuer, jwks_uri: `${issuer}/jwks`, token_endpoint: `${issuer}/token` }));
app.get('/jwks', async (_request, reply) => reply.header('content-type', 'application/json').send(jwks));

issuer = await app.listen({ host: values.host, port: Number(values.port) });
process.stdout.write(JSON.stringify({ url: issuer, issuer }) + '\n');

const stop = () => void app.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
