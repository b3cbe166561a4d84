// Micro-benchmarks of the token endpoint's steps, each beside the raw node:crypto floor.
//
//   npm run bench                       (builds, then runs this file)
//   node bench/micro.js [--alg ES256|EdDSA|PS256|RS256] [--quick] [--duration ms] [--json]
//
// Each line: warm-up, then timed batches for about --duration ms (default 1000), median of the
// batch rates. Minting and verification are compared with a raw node:crypto sign / verify of the
// same signing input with the same key type; the other steps are shown as a fraction of one raw
// signature, the cost every token pays anyway.

import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { generateSigningKeyPair } from '../dist/keys/algorithms.js';
import { KeyRing } from '../dist/keys/keyring.js';
import { parseForm } from '../dist/oauth/request/form.js';
import { verifyClientSecret } from '../dist/clients/secrets.js';
import { ClientRegistry } from '../dist/clients/registry.js';
import { openStorage } from '../dist/storage/open.js';
import { EventBus } from '../dist/observability/events.js';
import { auditActor, subscribeAuditLog } from '../dist/observability/audit.js';
import { LogSafety } from '../dist/observability/log-safety.js';
import { createLogger } from '../dist/observability/logger.js';
import { Limits } from '../dist/limits/limits.js';
import { makeRoom } from '../dist/ground/bounded-map.js';
import pino from 'pino';
import { ALGS, measureAsync, measureSync, measureSyncInterleaved, formatDuration, formatRate, formatRatio, rawCrypto, table } from '@m2m-auth/tools/bench';

/** The body of a typical token request (client_secret_basic: the credentials are in the header). */
const TOKEN_REQUEST_BODY =
  'grant_type=client_credentials&scope=orders%3Aread+orders%3Awrite&resource=https%3A%2F%2Forders.example.com';

/** Claims as the token endpoint builds them (src/oauth/token/token-endpoint.ts). */
function realisticClaims(clientId) {
  const iat = Math.floor(Date.now() / 1000);
  return {
    iss: 'https://auth.example.com',
    sub: clientId,
    aud: 'https://orders.example.com',
    exp: iat + 3600,
    iat,
    jti: randomBytes(16).toString('base64url'),
    client_id: clientId,
    scope: 'orders:read orders:write',
  };
}

async function main() {
  const startedAt = new Date();
  const { values } = parseArgs({
    options: {
      alg: { type: 'string', default: 'ES256' },
      quick: { type: 'boolean', default: false },
      duration: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log('usage: node bench/micro.js [--alg ES256|EdDSA|PS256|RS256] [--quick] [--duration ms] [--json]');
    return;
  }
  const alg = values.alg;
  if (!ALGS.includes(alg)) throw new Error(`--alg must be one of ${ALGS.join(', ')}, got ${alg}`);
  const durationMs = values.duration !== undefined ? Number(values.duration) : values.quick ? 150 : 1000;
  if (!(durationMs > 0)) throw new Error('--duration must be a positive number of milliseconds');
  const opts = { durationMs, warmupMs: values.quick ? 50 : Math.min(300, durationMs / 2) };

  const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-bench-'));
  // A file database, as in production: the storage line measures SQLite, not an in-memory map.
  const storage = await openStorage(`sqlite:${join(dir, 'bench.db')}`);
  try {
    const events = new EventBus();
    const keys = await KeyRing.open(storage.keys, {
      kek: randomBytes(32), alg, prepublishMs: 0, rotationIntervalMs: 0, maxTokenTtlMs: 86_400_000, events,
    });
    const registry = new ClientRegistry(storage.clients, events, { tokenTtlMin: 60, tokenTtlMax: 86_400, secretGracePeriod: 86_400 });
    const { client, clientSecret } = await registry.create({
      client_name: 'billing', scope: 'orders:read orders:write', audience: ['https://orders.example.com'],
    });
    const clientId = client.clientId;

    const claims = realisticClaims(clientId);
    // As the token endpoint mints (src/oauth/token/token-endpoint.ts): the claims all tokens of a
    // grant share, as JSON written once, and exp, iat and jti appended for each token.
    const { exp, iat, jti, ...leading } = claims;
    const leadingJson = JSON.stringify(leading).slice(0, -1);
    const mint = () => {
      const now = Math.floor(Date.now() / 1000);
      return keys.sign(`${leadingJson},"exp":${now + (exp - iat)},"iat":${now},"jti":"${jti}"}`);
    };
    const { token } = mint();
    if (keys.verify(token) === null) throw new Error('KeyRing.verify rejected a token KeyRing.sign just minted');
    const signingInput = Buffer.from(token.slice(0, token.lastIndexOf('.')), 'utf8');

    // The floor: a separate key pair of the same type, signing the same bytes.
    const pair = await generateSigningKeyPair(alg);
    const raw = rawCrypto(alg, pair.privateKey, pair.publicKey);
    const rawSignature = raw.sign(signingInput);
    if (!raw.verify(signingInput, rawSignature)) throw new Error('raw node:crypto verify failed');

    if (!verifyClientSecret(await registry.get(clientId), clientSecret, Date.now())) {
      throw new Error('verifyClientSecret rejected the secret the registry just issued');
    }
    if ((await storage.clients.getClient(clientId))?.clientId !== clientId) throw new Error('getClient did not find the client');
    const body = Buffer.from(TOKEN_REQUEST_BODY, 'latin1');
    if (parseForm(body).get('grant_type')?.[0] !== 'client_credentials') throw new Error('parseForm misread the body');

    const results = [];
    const add = (name, m, compare) => results.push({ name, ...m, compare });

    // Each pair runs interleaved, so that load from other processes hits both sides of the ratio.
    const [rawSign, ringSign] = measureSyncInterleaved([() => raw.sign(signingInput), mint], opts);
    add(`raw node:crypto sign (${alg})`, rawSign, { label: 'floor' });
    add('KeyRing.sign (mint a token)', ringSign, { of: rawSign, label: 'raw sign' });

    const [rawVerify, ringVerify] = measureSyncInterleaved([() => raw.verify(signingInput, rawSignature), () => keys.verify(token)], opts);
    add(`raw node:crypto verify (${alg})`, rawVerify, { label: 'floor' });
    add('KeyRing.verify (check a token)', ringVerify, { of: rawVerify, label: 'raw verify' });

    add(
      'client auth (registry.get + verifyClientSecret)',
      await measureAsync(async () => verifyClientSecret(await registry.get(clientId), clientSecret, Date.now()), opts),
      { of: rawSign, label: 'raw sign', share: true },
    );
    add(
      'storage getClient (SQLite file, uncached)',
      await measureAsync(() => storage.clients.getClient(clientId), opts),
      { of: rawSign, label: 'raw sign', share: true },
    );
    add('parseForm (token request body)', measureSync(() => parseForm(body), opts), { of: rawSign, label: 'raw sign', share: true });
    // The per-process rate limit of a client already tracked (the token endpoint's check), at a rate
    // no loop reaches, so that every check is allowed: a clock read, a Map lookup and a few flops.
    const limits = new Limits(
      { tokenRateLimit: 1e9, introspectionRateLimit: 0, rateLimitBurst: 1, authFailuresPerAddress: 0, authFailuresPerClient: 0, authFailureWindow: 60, redisUrl: undefined, redisKeyPrefix: '' },
      { logger: pino({ level: 'silent' }) },
    );
    add('rate limit check (Limits.tokenRequest)', measureSync(() => limits.tokenRequest(client), opts), { of: rawSign, label: 'raw sign', share: true });
    // For scale: the SHA-256 inside verifyClientSecret alone.
    add('sha256 of a client secret (for scale)', measureSync(() => createHash('sha256').update(clientSecret).digest(), opts), {
      of: rawSign, label: 'raw sign', share: true,
    });

    // The audit line of a denial (src/observability/audit.ts), built member by member through
    // LogSafety (bounded, secrets masked), beside the line built as before it (the payload spread
    // as it came), each through an EventBus to a logger whose lines go nowhere.
    const nowhere = createLogger({ level: 'info', format: 'json', destination: { write: () => true } });
    const safety = new LogSafety({ secrets: [randomBytes(32).toString('base64url')] });
    const before = new EventBus();
    const spreadAudit = nowhere.child({ audit: true });
    before.onAny((type, payload) => spreadAudit.info({ type, actor: auditActor(type, payload), ...payload }, type));
    const after = new EventBus();
    subscribeAuditLog(after, nowhere, { sampleRate: 0, safety });
    const denial = { clientId, error: 'invalid_scope', reason: 'scope "orders:delete" not allowed', ip: '10.0.0.7', requestId: '1f2e3d4c-5b' };
    const [spreadLine, safeLine] = measureSyncInterleaved([
      () => before.emit('token.denied', denial),
      () => after.emit('token.denied', denial),
    ], opts);
    add('audit token.denied line, payload spread (before)', spreadLine, { of: rawSign, label: 'raw sign', share: true });
    add('audit token.denied line, through LogSafety', safeLine, { of: spreadLine, label: 'spread line' });
    // What a denial that sends 50,000 characters of scope pays to bound it (masking checked too).
    const longScope = `scope "${'orders:read '.repeat(4_500)}" not allowed`;
    add('LogSafety.value (50,000-character scope)', measureSync(() => safety.value(longScope), opts), { of: rawSign, label: 'raw sign', share: true });

    // A cache at its bound taking a new entry per request (a platform token seen for the first time,
    // a new DPoP jti at the SDK): makeRoom, which drops the oldest sixteenth at once, beside
    // dropping the oldest one per insertion as the caches did before (keys().next() walks every
    // slot deleted since the Map's last rehash; src/ground/bounded-map.ts).
    const mapKeys = Array.from({ length: 1 << 16 }, (_, i) => `jti-${i}-${'x'.repeat(40)}`);
    let nextKey = 0;
    const oneByOneMap = new Map();
    const roomyMap = new Map();
    const [oneByOne, roomy] = measureSyncInterleaved([
      () => {
        if (oneByOneMap.size >= 5000) oneByOneMap.delete(oneByOneMap.keys().next().value);
        oneByOneMap.set(mapKeys[nextKey++ & 0xffff], 1);
      },
      () => {
        makeRoom(roomyMap, 5000);
        roomyMap.set(mapKeys[nextKey++ & 0xffff], 1);
      },
    ], opts);
    add('Map insert at a bound of 5,000, oldest dropped one by one (before)', oneByOne, { of: rawSign, label: 'raw sign', share: true });
    add('Map insert at a bound of 5,000 (makeRoom)', roomy, { of: oneByOne, label: 'one by one' });

    if (values.json) {
      console.log(JSON.stringify({ startedAt: startedAt.toISOString(), alg, node: process.version, cpus: cpus().length, durationMs, results }, null, 2));
      return;
    }
    console.log(`m2m-auth micro-benchmarks: ${alg}, Node ${process.version}, ${cpus().length} cores, ${startedAt.toISOString()}`);
    console.log(`(warm-up, then batches for ~${durationMs} ms per line; median batch rate)\n`);
    const rows = results.map((r) => [r.name, formatRate(r.opsPerSec), formatDuration(r.nsPerOp / 1e9), compareText(r)]);
    console.log(table(['benchmark', 'ops/s', 'time/op', 'vs floor'], rows));
    console.log('\n"x1.10 raw sign": 10% slower than the raw signature; "0.05 raw sign": costs 5% of one raw signature.');
  } finally {
    await storage.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

function compareText(r) {
  if (!r.compare.of) return r.compare.label;
  const ratio = r.nsPerOp / r.compare.of.nsPerOp;
  return r.compare.share ? `${formatRatio(ratio)} ${r.compare.label}` : `x${formatRatio(ratio)} ${r.compare.label}`;
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack ?? err.message : err);
  process.exitCode = 1;
});
