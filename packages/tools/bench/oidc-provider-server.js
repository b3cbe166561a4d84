// node-oidc-provider (9.x) set up for the same job as m2m-auth: the client credentials grant,
// client_secret_basic, and RFC 9068 JWT access tokens signed with ES256 (a resource indicator
// whose resource server asks for accessTokenFormat 'jwt'). JWT access tokens are not written to
// its adapter, so neither server writes anything per token.
//
//   NODE_ENV=production node bench/oidc-provider-server.js [--port 0]
// Prints one JSON line once listening:
//   {"url", "issuer", "client_id", "client_secret", "resource", "scope", "token_endpoint", "version"}

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import Provider from 'oidc-provider';

const { values } = parseArgs({ options: { port: { type: 'string', default: '0' }, host: { type: 'string', default: '127.0.0.1' } } });

const RESOURCE = 'https://orders.example.com';
const SCOPE = 'orders:read orders:write';

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingJwk = { ...privateKey.export({ format: 'jwk' }), kid: 'bench-es256', alg: 'ES256', use: 'sig' };
const client = {
  client_id: 'bench-client',
  client_secret: randomBytes(32).toString('base64url'),
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  token_endpoint_auth_method: 'client_secret_basic',
  scope: SCOPE,
};

let handler = (_req, res) => {
  res.statusCode = 503;
  res.end();
};
const server = createServer((req, res) => handler(req, res));
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(Number(values.port), values.host, resolve);
});
const { port } = server.address();
const issuer = `http://${values.host}:${port}`;

const provider = new Provider(issuer, {
  clients: [client],
  jwks: { keys: [signingJwk] },
  clientDefaults: { id_token_signed_response_alg: 'ES256' },
  scopes: SCOPE.split(' '),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (_ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) throw new Provider.errors.InvalidTarget();
        return {
          scope: SCOPE,
          audience: RESOURCE,
          accessTokenTTL: 3600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
  },
  ttl: { ClientCredentials: 3600 },
});
handler = provider.callback();

const require = createRequire(import.meta.url);
const version = JSON.parse(readFileSync(require.resolve('oidc-provider/package.json'), 'utf8')).version;
process.stdout.write(JSON.stringify({
  url: issuer,
  issuer,
  client_id: client.client_id,
  client_secret: client.client_secret,
  resource: RESOURCE,
  scope: SCOPE,
  token_endpoint: `${issuer}/token`,
  version,
}) + '\n');

const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
