// `m2m-auth apply -f FILE` against a real admin API on a real socket: the plan, --dry-run,
// --prune, secrets printed once or written to a 0600 file, a second apply that changes nothing,
// whole-file validation before anything is applied, and a failure midway that says what was applied.

import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { registerAdminRoutes } from '../../src/admin/routes.js';
import { ClientRegistry } from '../../src/clients/registry.js';
import { TrustRegistry } from '../../src/trusts/registry.js';
import { secretDigest, verifyClientSecret } from '../../src/clients/secrets.js';
import { run } from '../../src/cli/program.js';
import { EventBus } from '../../src/observability/events.js';
import { openStorage } from '../../src/storage/open.js';
import type { Storage } from '../../src/storage/types.js';
import { keyPair } from '../clients/keys.js';

const TOKEN = randomBytes(32).toString('base64url');
const API = 'https://orders.example.com';

let work: string;
let storage: Storage;
let registry: ClientRegistry;
let trusts: TrustRegistry;
let app: FastifyInstance;
let adminUrl: string;

interface Run {
  code: number;
  out: string[];
  err: string[];
}

async function apply(file: string, ...flags: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await run(['node', 'm2m-auth', 'apply', '-f', file, '--admin-url', adminUrl, '--admin-token', TOKEN, ...flags],
    { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out, err };
}

function write(name: string, text: string): string {
  const path = join(work, name);
  writeFileSync(path, text);
  return path;
}

async function ids(): Promise<string[]> {
  return (await registry.list({ limit: 1000 })).clients.map((c) => c.clientId);
}

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'm2m-apply-'));
  storage = await openStorage('sqlite::memory:');
  const events = new EventBus();
  trusts = new TrustRegistry(storage.trusts, events);
  registry = new ClientRegistry(storage.clients, events, { tokenTtlMin: 60, tokenTtlMax: 86_400, secretGracePeriod: 3600, trusts });
  app = Fastify({ logger: false });
  // apply never touches the signing keys.
  await registerAdminRoutes(app, { registry, trusts, keys: { list: () => [], rotate: () => Promise.reject(new Error('not in this test')), revoke: () => Promise.reject(new Error('not in this test')) }, adminToken: TOKEN, events });
  adminUrl = await app.listen({ host: '127.0.0.1', port: 0 });
});

afterAll(async () => {
  await app?.close();
  await storage?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

beforeEach(async () => {
  for (const id of await ids()) await registry.delete(id);
});

const YAML_FILE = `# clients of the orders team
version: 1
clients:
  - client_id: cl_billing
    client_name: Billing
    scope: orders:read orders:write
    default_scope: orders:read
    audience: [${API}]
    claims:
      tenant: acme
      roles: [reader, writer]
  - client_id: cl_audit
    client_name: Audit
    scope: orders:read
    audience: [${API}]
    token_reuse: true
    access_token_ttl: 600
`;

describe('apply', () => {
  it('--dry-run prints the plan and creates nothing', async () => {
    const r = await apply(write('dry.yaml', YAML_FILE), '--dry-run');
    expect(r.code, r.err.join('\n')).toBe(0);
    expect(r.out).toEqual([
      'ACTION  CLIENT_ID   DETAIL',
      'create  cl_billing',
      'create  cl_audit',
      'Dry run, nothing changed: 2 to create, 0 to update, 0 to delete, 0 unchanged.',
    ]);
    const json = await apply(join(work, 'dry.yaml'), '--dry-run', '--json');
    expect(JSON.parse(json.out.join('\n'))).toStrictEqual({
      dry_run: true,
      plan: [{ action: 'create', client_id: 'cl_billing' }, { action: 'create', client_id: 'cl_audit' }],
    });
    expect(await ids()).toEqual([]);
  });

  it('creates what is missing and prints each new secret once; a second apply changes nothing', async () => {
    const file = write('clients.yaml', YAML_FILE);
    const first = await apply(file);
    expect(first.code, first.err.join('\n')).toBe(0);
    expect(first.out.slice(0, 4)).toEqual([
      'ACTION  CLIENT_ID   DETAIL',
      'create  cl_billing',
      'create  cl_audit',
      'Applied: 2 created, 0 updated, 0 deleted, 0 unchanged.',
    ]);
    const secrets = first.out.slice(4).map((l) => /^client_secret of (cl_\w+): (m2m_cs_\S+)$/.exec(l)!.slice(1));
    expect(secrets.map(([id]) => id)).toEqual(['cl_billing', 'cl_audit']);
    for (const [id, secret] of secrets) expect(verifyClientSecret(await registry.read(id!), secret!, Date.now())).toBe(true);
    expect(first.err.join('\n')).toMatch(/secret/i);
    expect(readFileSync(file, 'utf8')).toBe(YAML_FILE);

    const billing = await registry.read('cl_billing');
    expect(billing).toMatchObject({ clientName: 'Billing', scope: ['orders:read', 'orders:write'], defaultScope: ['orders:read'], claims: { tenant: 'acme', roles: ['reader', 'writer'] } });
    expect(await registry.read('cl_audit')).toMatchObject({ tokenReuse: true, accessTokenTtl: 600 });

    const second = await apply(file);
    expect(second.code).toBe(0);
    expect(second.out).toEqual([
      'ACTION     CLIENT_ID   DETAIL',
      'unchanged  cl_billing',
      'unchanged  cl_audit',
      'Nothing to change: 0 created, 0 updated, 0 deleted, 2 unchanged.',
    ]);
    expect(second.err).toEqual([]);
    expect((await registry.read('cl_billing')).updatedAt).toBe(billing.updatedAt);
  });

  it('updates only the fields that differ; a field left out of the file goes back to its default', async () => {
    await apply(write('v1.yaml', YAML_FILE));
    const secretsBefore = (await registry.read('cl_audit')).secrets;
    const v2 = YAML_FILE
      .replace('      tenant: acme', '      tenant: globex')
      .replace('    token_reuse: true\n', '')
      .replace('client_name: Audit', 'client_name: Audit v2');
    const file = write('v2.yaml', v2);
    const dry = await apply(file, '--dry-run');
    expect(dry.out).toEqual([
      'ACTION  CLIENT_ID   DETAIL',
      'update  cl_billing  claims',
      'update  cl_audit    client_name, token_reuse',
      'Dry run, nothing changed: 0 to create, 2 to update, 0 to delete, 0 unchanged.',
    ]);
    expect((await registry.read('cl_audit')).tokenReuse).toBe(true);
    const r = await apply(file);
    expect(r.code, r.err.join('\n')).toBe(0);
    expect(r.out.at(-1)).toBe('Applied: 0 created, 2 updated, 0 deleted, 0 unchanged.');
    expect(await registry.read('cl_audit')).toMatchObject({ clientName: 'Audit v2', tokenReuse: false, accessTokenTtl: 600, secrets: secretsBefore });
    expect((await registry.read('cl_billing')).claims).toStrictEqual({ tenant: 'globex', roles: ['reader', 'writer'] });
    expect((await apply(file)).out.at(-1)).toBe('Nothing to change: 0 created, 0 updated, 0 deleted, 2 unchanged.');
  });

  it('keeps clients the file does not name, and deletes them only with --prune', async () => {
    await registry.create({ client_id: 'cl_legacy', client_name: 'Legacy', audience: [API] });
    const file = write('prune.yaml', YAML_FILE);
    const kept = await apply(file);
    expect(kept.out).toContain('not in file  cl_legacy   kept (--prune deletes it)');
    expect(kept.out).toContain('Applied: 2 created, 0 updated, 0 deleted, 0 unchanged, 1 not in the file kept.');
    expect(await ids()).toContain('cl_legacy');

    const dry = await apply(file, '--prune', '--dry-run');
    expect(dry.out).toContain('delete     cl_legacy');
    expect(dry.out.at(-1)).toBe('Dry run, nothing changed: 0 to create, 0 to update, 1 to delete, 2 unchanged.');
    expect(await ids()).toContain('cl_legacy');

    const pruned = await apply(file, '--prune');
    expect(pruned.code).toBe(0);
    expect(await ids()).toEqual(['cl_audit', 'cl_billing']);
  });

  it('--secrets-file writes the new secrets to a new file of mode 0600 and prints none; an existing file applies nothing', async () => {
    const file = write('secrets-src.yaml', YAML_FILE);
    const out = join(work, `secrets-${randomBytes(4).toString('hex')}.json`);
    const r = await apply(file, '--secrets-file', out);
    expect(r.code, r.err.join('\n')).toBe(0);
    expect(r.out.join('\n')).not.toMatch(/m2m_cs_/);
    expect(r.err).toEqual([`The secrets of 2 clients are in ${out} (mode 0600).`]);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const written = JSON.parse(readFileSync(out, 'utf8')) as { clients: Array<{ client_id: string; client_secret: string }> };
    expect(written.clients.map((c) => c.client_id)).toEqual(['cl_billing', 'cl_audit']);
    for (const c of written.clients) expect(verifyClientSecret(await registry.read(c.client_id), c.client_secret, Date.now())).toBe(true);

    await registry.delete('cl_audit');
    const again = await apply(file, '--secrets-file', out);
    expect(again.code).toBe(1);
    expect(again.err).toEqual([`m2m-auth: --secrets-file ${out} exists; name a new file (nothing was applied)`]);
    expect(await ids()).toEqual(['cl_billing']);
    expect(JSON.parse(readFileSync(out, 'utf8'))).toStrictEqual(written);
  });

  it('reads JSON as well, carries client_secret_sha256 (the credential kept, no secret shown) and private_key_jwt keys', async () => {
    const secret = 'm2m_cs_' + 'q'.repeat(43);
    const jwk = keyPair('ec').publicJwk;
    const doc = {
      version: 1,
      clients: [
        { client_id: 'cl_moved', client_name: 'Moved', audience: [API], client_secret_sha256: secretDigest(secret) },
        { client_id: 'cl_signer', client_name: 'Signer', audience: [API], token_endpoint_auth_method: 'private_key_jwt', jwks: { keys: [jwk] } },
      ],
    };
    const file = write('clients.json', JSON.stringify(doc));
    const r = await apply(file);
    expect(r.code, r.err.join('\n')).toBe(0);
    expect(r.out.join('\n')).not.toMatch(/client_secret of/);
    expect(r.err).toEqual([]);
    expect(verifyClientSecret(await registry.read('cl_moved'), secret, Date.now())).toBe(true);
    expect((await registry.read('cl_signer')).jwks).toStrictEqual({ keys: [jwk] });
    // Members of a key written in another order are the same key.
    const reordered = { ...doc, clients: [doc.clients[0], { ...doc.clients[1], jwks: { keys: [Object.fromEntries(Object.entries(jwk).reverse())] } }] };
    expect((await apply(write('again.json', JSON.stringify(reordered)))).out.at(-1)).toBe('Nothing to change: 0 created, 0 updated, 0 deleted, 2 unchanged.');
  });
});

describe('a bad file applies nothing', () => {
  async function refused(text: string, pattern: RegExp): Promise<void> {
    const before = await ids();
    const r = await apply(write(`bad-${randomBytes(4).toString('hex')}.yaml`, text), '--prune');
    expect(r.code).toBe(1);
    expect(r.out).toEqual([]);
    expect(r.err).toHaveLength(1);
    expect(r.err[0]).toMatch(pattern);
    expect(await ids()).toEqual(before);
  }

  it('names the client and the field of every bad entry', async () => {
    await registry.create({ client_id: 'cl_existing', client_name: 'Existing', audience: [API] });
    const entry = (extra: string) => `  - client_id: cl_ok\n    client_name: ok\n    audience: [${API}]\n${extra}`;
    await refused(`version: 1\nclients:\n${entry('')}  - client_id: cl_ok\n    client_name: twice\n    audience: [${API}]\n`,
      /^m2m-auth: The client file is invalid; nothing was applied\. clients\[1\] "cl_ok": field client_id: the same client_id as clients\[0\]$/);
    await refused(`version: 1\nclients:\n${entry('    colour: red\n')}`, /clients\[0\] "cl_ok": field colour: Unknown field "colour"/);
    await refused(`version: 1\nclients:\n${entry('    token_reuse: "yes"\n')}`, /clients\[0\] "cl_ok": field token_reuse: token_reuse must be true or false, got a string/);
    await refused(`version: 1\nclients:\n${entry('    claims: {sub: x, tenant: a}\n')}`, /clients\[0\] "cl_ok": field claims: claims may not set "sub"/);
    await refused(`version: 1\nclients:\n${entry('    client_secret: hunter2\n')}`, /field client_secret: client_secret cannot be chosen/);
    await refused(`version: 1\nclients:\n${entry('')}  - client_id: billing\n    client_name: b\n    audience: [${API}]\n  - client_name: nameless\n`,
      /clients\[1\] "billing": field client_id: client_id must be "cl_".*; clients\[2\]: field client_id: a client file names every client/);
    await refused(`version: 1\nclients:\n${entry('    claims: {n: .inf}\n')}`, /field claims: claims\.n holds a number that does not fit in JSON/);
  });

  it('refuses a wrong version, an unknown member, a repeated key, and what is not JSON or YAML', async () => {
    await refused(`version: 2\nclients: []\n`, /version must be 1, got 2/);
    await refused(`clients: []\n`, /version must be 1, got none/);
    await refused(`version: 1\nclients: []\nextra: 1\n`, /unknown member "extra"/);
    await refused(`version: 1\nclients: {}\n`, /clients must be a list of clients/);
    await refused(`version: 1\nclients:\n  - client_id: cl_a\n    client_name: a\n    client_name: b\n`, /is not valid JSON or YAML: Map keys must be unique at line 5, column 5$/);
    await refused('{"version": 1, "clients": [', /is not valid JSON or YAML/);
    await refused('- 1\n- 2\n', /must hold an object/);
  });

  it('says so when the file cannot be read', async () => {
    const r = await apply(join(work, 'missing.yaml'));
    expect(r.err).toEqual([`m2m-auth: Cannot read the client file ${join(work, 'missing.yaml')}: ENOENT`]);
  });
});

describe('a failure midway', () => {
  it('stops, says which clients were applied and which were not, and still hands over the secrets of those created', async () => {
    // 100000 s passes the file check but not this server's M2M_AUTH_TOKEN_TTL_MAX of 86400.
    const text = `version: 1
clients:
  - {client_id: cl_first, client_name: first, audience: ["${API}"]}
  - {client_id: cl_second, client_name: second, audience: ["${API}"], access_token_ttl: 100000}
  - {client_id: cl_third, client_name: third, audience: ["${API}"]}
`;
    const r = await apply(write('midway.yaml', text));
    expect(r.code).toBe(1);
    expect(r.out.find((l) => l.startsWith('client_secret of cl_first: m2m_cs_'))).toBeDefined();
    expect(r.err.at(-1)).toMatch(/^m2m-auth: create cl_second failed: access_token_ttl must be .* \(HTTP 400\)\. Applied before it: created cl_first\. Not applied: cl_second, cl_third\.$/);
    expect(await ids()).toEqual(['cl_first']);
    expect(existsSync(join(work, 'midway.yaml'))).toBe(true);
  });
});

describe('docs/clients-as-code.md', () => {
  it('shows a client file and the very plan apply --prune --dry-run prints for the state it describes', async () => {
    const page = readFileSync(resolve(dirname(fileURLToPath(import.meta.url)), '../../../../docs/clients-as-code.md'), 'utf8');
    const yamlBlock = /```yaml\n([\s\S]*?)```/.exec(page)![1]!;
    const shown = /```text\n\$ m2m-auth apply -f clients.yaml --prune --dry-run\n([\s\S]*?)```/.exec(page)![1]!.trimEnd().split('\n');
    // "a server that has cl_billing from an earlier version of the file (with only orders:read and
    // no claims) and a client cl_legacy the file does not name"
    await registry.create({ client_id: 'cl_billing', client_name: 'Billing', scope: 'orders:read', audience: [API] });
    await registry.create({ client_id: 'cl_legacy', client_name: 'Legacy', audience: [API] });
    const file = write('clients.yaml', yamlBlock);
    const r = await apply(file, '--prune', '--dry-run');
    expect(r.code, r.err.join('\n')).toBe(0);
    expect(r.out).toEqual(shown);
    // And the line shown for the same plan without --prune.
    expect((await apply(file, '--dry-run')).out).toContain('not in file  cl_legacy   kept (--prune deletes it)');
    expect(page).toContain('`not in file  cl_legacy   kept (--prune deletes\nit)`');
    // Applied twice, the second changes nothing.
    expect((await apply(file, '--prune')).code).toBe(0);
    expect((await apply(file, '--prune')).out.at(-1)).toBe('Nothing to change: 0 created, 0 updated, 0 deleted, 2 unchanged.');
  });
});

describe('apply with trusted issuers (issue 17)', () => {
  const FEDERATED_FILE = `version: 1
trusted_issuers:
  - name: prod-cluster
    kind: kubernetes
    issuer: https://kubernetes.default.svc.cluster.local
    max_token_lifetime: 7200
  - name: gha
    kind: oidc
    issuer: https://token.actions.githubusercontent.com
clients:
  - client_id: cl_billing
    client_name: Billing
    audience: [${API}]
    token_endpoint_auth_method: federated_jwt
    federated_issuer: prod-cluster
    federated_subject: system:serviceaccount:payments:billing
  - client_id: cl_deploy
    client_name: Deploy
    audience: [${API}]
    token_endpoint_auth_method: federated_jwt
    federated_issuer: gha
    federated_subject: repo:acme/billing:environment:production
    federated_claims: {repository: acme/billing, environment: production}
`;

  async function names(): Promise<string[]> {
    return (await trusts.list({ limit: 1000 })).trusts.map((t) => t.name);
  }

  beforeEach(async () => {
    for (const name of await names()) await trusts.delete(name);
  });

  it('creates trusts before the clients that name them, shows them in the plan, and is idempotent', async () => {
    const file = write('federated.yaml', FEDERATED_FILE);
    const dry = await apply(file, '--dry-run');
    expect(dry.code, dry.err.join('\n')).toBe(0);
    expect(dry.out).toEqual([
      'ACTION  TRUST         DETAIL',
      'create  prod-cluster',
      'create  gha',
      'ACTION  CLIENT_ID   DETAIL',
      'create  cl_billing',
      'create  cl_deploy',
      'Dry run, nothing changed: Trusted issuers: 2 to create, 0 to update, 0 to delete, 0 unchanged. Clients: 2 to create, 0 to update, 0 to delete, 0 unchanged.',
    ]);
    expect(await names()).toEqual([]);
    const first = await apply(file);
    expect(first.code, first.err.join('\n')).toBe(0);
    // Federated clients get no secret: nothing to print.
    expect(first.out.some((l) => l.startsWith('client_secret of'))).toBe(false);
    expect(await names()).toEqual(['gha', 'prod-cluster']);
    expect((await registry.read('cl_deploy')).federation).toEqual({ trust: 'gha', subject: 'repo:acme/billing:environment:production', claims: { repository: 'acme/billing', environment: 'production' } });
    const again = await apply(file, '--json');
    expect(JSON.parse(again.out.join('\n'))).toStrictEqual({
      dry_run: false,
      plan: [
        { action: 'unchanged', trust: 'prod-cluster' }, { action: 'unchanged', trust: 'gha' },
        { action: 'unchanged', client_id: 'cl_billing' }, { action: 'unchanged', client_id: 'cl_deploy' },
      ],
    });
  });

  it('updates a changed trust and a moved subject; --prune deletes the clients, then the trusts, the file no longer names', async () => {
    await apply(write('federated.yaml', FEDERATED_FILE));
    const changed = FEDERATED_FILE
      .replace('    max_token_lifetime: 7200\n', '    max_token_lifetime: 3600\n    audiences: [m2m-auth]\n')
      .replace(/  - name: gha[\s\S]*?(?=clients:)/, '')
      .replace(/  - client_id: cl_deploy[\s\S]*$/, '')
      .replace('system:serviceaccount:payments:billing', 'system:serviceaccount:payments:billing-v2');
    const kept = await apply(write('changed.yaml', changed), '--dry-run');
    expect(kept.out).toEqual([
      'ACTION       TRUST         DETAIL',
      'update       prod-cluster  audiences, max_token_lifetime',
      'not in file  gha           kept (--prune deletes it)',
      'ACTION       CLIENT_ID   DETAIL',
      'update       cl_billing  federated_subject',
      'not in file  cl_deploy   kept (--prune deletes it)',
      'Dry run, nothing changed: Trusted issuers: 0 to create, 1 to update, 0 to delete, 0 unchanged, 1 not in the file kept. Clients: 0 to create, 1 to update, 0 to delete, 0 unchanged, 1 not in the file kept.',
    ]);
    const pruned = await apply(join(work, 'changed.yaml'), '--prune', '--json');
    expect(pruned.code, pruned.err.join('\n')).toBe(0);
    // gha is deleted after cl_deploy, which named it.
    expect(JSON.parse(pruned.out.join('\n')).applied).toStrictEqual([
      { action: 'update', trust: 'prod-cluster', fields: ['audiences', 'max_token_lifetime'] },
      { action: 'update', client_id: 'cl_billing', fields: ['federated_subject'] },
      { action: 'delete', client_id: 'cl_deploy' },
      { action: 'delete', trust: 'gha' },
    ]);
    expect(await names()).toEqual(['prod-cluster']);
    expect(await ids()).toEqual(['cl_billing']);
    expect((await trusts.read('prod-cluster')).maxTokenLifetime).toBe(3600);
  });

  it('a file without trusted_issuers leaves the server\'s trusts alone, even with --prune', async () => {
    await apply(write('federated.yaml', FEDERATED_FILE));
    const r = await apply(write('none.yaml', `version: 1\nclients: []\n`), '--prune');
    expect(r.code, r.err.join('\n')).toBe(0);
    expect(await ids()).toEqual([]);
    expect(await names()).toEqual(['gha', 'prod-cluster']);
  });

  it('refuses a bad trust entry, naming it, and applies nothing', async () => {
    const bad = `version: 1
trusted_issuers:
  - name: prod-cluster
    kind: kubernetes
    issuer: http://kubernetes.example
  - name: prod-cluster
    kind: oidc
    issuer: https://a.example
  - name: Mesh
    kind: spiffe
clients: []
`;
    const r = await apply(write('bad.yaml', bad));
    expect(r.code).toBe(1);
    expect(r.err).toHaveLength(1);
    expect(r.err[0]).toMatch(/trusted_issuers\[0\] "prod-cluster": field issuer: issuer must be an https URL/);
    expect(r.err[0]).toMatch(/trusted_issuers\[2\] "Mesh": field name: name must be 1 to 64/);
    expect(await names()).toEqual([]);
    const notList = await apply(write('bad2.yaml', 'version: 1\ntrusted_issuers: {}\nclients: []\n'));
    expect(notList.err[0]).toMatch(/trusted_issuers: must be a list of trusted issuers/);
  });
});
