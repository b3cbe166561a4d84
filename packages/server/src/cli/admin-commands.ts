// `m2m-auth clients ...` and `m2m-auth keys ...`: RFC 7591-style client management and signing key
// rotation through the admin API.

import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import type { KeyWire } from '../admin/key-wire.js';
import type { ClientWire, ClientWireWithSecret } from '../clients/wire.js';
import { TOKEN_ENDPOINT_AUTH_METHODS } from '../ground/names.js';
import { perSecond, trueOrFalse, wholeSeconds } from './flags.js';
import { adminRequest, CliError, resolveAdminTarget, type AdminConnectionOptions } from './admin-client.js';
import { clientDetails, clientsTable, isoTime, keysTable, keyValueLines, SECRET_WARNING, type Output } from './output.js';

export interface CommonFlags extends AdminConnectionOptions {
  json?: boolean;
}

interface MetadataFlags extends CommonFlags {
  clientId?: string;
  name?: string;
  scope?: string;
  audience?: string[];
  defaultScope?: string;
  defaultAudience?: string[];
  authMethod?: string;
  jwks?: string;
  claims?: string;
  ttl?: number;
  grantTypes?: string;
  resourceUri?: string[];
  disabled?: boolean;
  tokenReuse?: boolean;
  dpopBoundAccessTokens?: boolean;
  fapi2?: boolean;
  rateLimit?: number;
  resetRateLimit?: boolean;
  resetDefaultScope?: boolean;
  resetDefaultAudience?: boolean;
  resetTtl?: boolean;
  federatedIssuer?: string;
  federatedSubject?: string;
  federatedClaims?: string;
  tlsClientAuthSubjectDn?: string;
  tlsClientAuthSanDns?: string;
  tlsClientAuthSanUri?: string;
  tlsClientAuthSanIp?: string;
  tlsClientAuthSanEmail?: string;
  tlsBoundTokens?: boolean;
}

/** The RFC 8705 §2.1.2 flags: the metadata field each sets. */
const TLS_NAME_FLAGS = [
  ['tlsClientAuthSubjectDn', 'tls_client_auth_subject_dn', '--tls-client-auth-subject-dn <dn>', 'the subject DN (RFC 4514, e.g. "CN=billing,O=Example,C=US")'],
  ['tlsClientAuthSanDns', 'tls_client_auth_san_dns', '--tls-client-auth-san-dns <name>', 'a subjectAltName DNS name'],
  ['tlsClientAuthSanUri', 'tls_client_auth_san_uri', '--tls-client-auth-san-uri <uri>', 'a subjectAltName URI (a SPIFFE ID, say)'],
  ['tlsClientAuthSanIp', 'tls_client_auth_san_ip', '--tls-client-auth-san-ip <address>', 'a subjectAltName IP address'],
  ['tlsClientAuthSanEmail', 'tls_client_auth_san_email', '--tls-client-auth-san-email <address>', 'a subjectAltName e-mail address'],
] as const;

export function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function withConnection(cmd: Command): Command {
  return cmd
    .option('--admin-url <url>', 'admin API base URL (env M2M_AUTH_ADMIN_URL; default http://<M2M_AUTH_ADMIN_LISTEN or 127.0.0.1:8081>)')
    .option('--admin-token <token>', 'admin bearer token (env M2M_AUTH_ADMIN_TOKEN; default: read <data-dir>/admin-token)')
    .option('--data-dir <dir>', 'data folder holding admin-token (env M2M_AUTH_DATA_DIR; default ./data)')
    .option('--json', 'print the admin API response as JSON');
}

function withMetadata(cmd: Command, forUpdate: boolean): Command {
  cmd
    .option('--name <name>', 'client_name (1 to 200 characters)')
    .option('--scope <scopes>', 'scope: space-delimited scope tokens, e.g. "orders:read orders:write"')
    .option('--audience <uri>', 'audience: a resource URI the client may get tokens for (repeatable)', collect)
    .option('--default-scope <scopes>', 'default_scope: scopes granted when a request names none (subset of --scope)')
    .option('--default-audience <uri>', 'default_audience: audience of tokens whose request names none (repeatable)', collect)
    .addOption(new Option('--auth-method <method>', 'token_endpoint_auth_method').choices(TOKEN_ENDPOINT_AUTH_METHODS))
    .option('--jwks <file-or-json>', 'jwks for private_key_jwt: a file, or inline JSON (a JWK Set or one JWK)')
    .option('--claims <file-or-json>', 'claims: custom claims copied into every access token of the client, a file or inline JSON object, e.g. \'{"tenant":"acme"}\' ({} for none)')
    .option('--ttl <seconds>', 'access_token_ttl in seconds', wholeSeconds)
    .option('--grant-types <types>', 'grant_types, space- or comma-separated: "client_credentials" (default) or "none" for a client that only introspects or revokes')
    .option('--resource-uri <uri>', 'resource_uris: an audience this client answers to when it introspects (repeatable)', collect)
    .option('--token-reuse <true|false>', 'token_reuse: answer a repeated request for the same scope and audience with the last token while it has more than half its lifetime left', trueOrFalse)
    .option('--dpop-bound-access-tokens <true|false>', 'dpop_bound_access_tokens (RFC 9449 §5.2): every token request of the client must carry a DPoP proof, and every token is DPoP-bound', trueOrFalse)
    .option('--fapi2 <true|false>', 'fapi2: the FAPI 2.0 Security Profile for this client (private_key_jwt only, sender-constrained tokens only, PS256, ES256 or EdDSA only)', trueOrFalse)
    .option('--rate-limit <per-second>', 'rate_limit: token requests a second for this client (fractions allowed; 0 = no limit; default the server\'s M2M_AUTH_TOKEN_RATE_LIMIT)', perSecond)
    .option('--federated-issuer <trust>', 'federated_issuer for federated_jwt: the name of a trusted issuer (m2m-auth trusts list)')
    .option('--federated-subject <sub>', 'federated_subject for federated_jwt: the exact sub of the platform token, e.g. system:serviceaccount:payments:billing')
    .option('--federated-claims <file-or-json>', 'federated_claims for federated_jwt: claims the platform token must carry, a file or inline JSON object, e.g. \'{"repository":"acme/billing"}\' ({} for none)');
  for (const [, field, flag, what] of TLS_NAME_FLAGS) {
    cmd.option(flag, `${field}: for --auth-method tls_client_auth, the client certificate carries ${what}; one of the five (it replaces another set before)`);
  }
  cmd.option('--tls-bound-tokens <true|false>', 'tls_client_certificate_bound_access_tokens: bind the client\'s tokens to the TLS client certificate of its token request (RFC 8705 §3)', trueOrFalse);
  if (forUpdate) {
    cmd
      .option('--reset-rate-limit', 'rate_limit back to the server default')
      .option('--reset-default-scope', 'default_scope back to all of scope')
      .option('--reset-default-audience', 'default_audience back to all of audience')
      .option('--reset-ttl', 'access_token_ttl back to the server default');
  } else {
    cmd
      .option('--client-id <id>', 'client_id to register the client under: cl_ and 1 to 64 of A-Z a-z 0-9 _ - (default: the server issues one)')
      .option('--disabled', 'create the client disabled');
  }
  return cmd;
}

/** A flag's JSON: inline when it starts with "{", else the contents of the file it names. */
function readJsonFlag(flag: string, value: string): unknown {
  const text = value.trimStart();
  let source = value;
  if (!text.startsWith('{')) {
    try {
      source = readFileSync(value, 'utf8');
    } catch (err) {
      throw new CliError(`${flag}: cannot read ${value}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  try {
    return JSON.parse(source);
  } catch {
    throw new CliError(`${flag}: ${text.startsWith('{') ? 'the value' : value} is not valid JSON`);
  }
}

function readJwks(value: string): unknown {
  const parsed = readJsonFlag('--jwks', value);
  // A single JWK is accepted for convenience and wrapped into a set.
  if (typeof parsed === 'object' && parsed !== null && 'kty' in parsed && !('keys' in parsed)) return { keys: [parsed] };
  return parsed;
}

function grantTypes(value: string): string[] {
  const list = value.split(/[\s,]+/).filter((t) => t !== '');
  return list.length === 1 && list[0] === 'none' ? [] : list;
}

/** `--x value` sets `field`; `--reset-x` sets it to null (the server default); both at once is an error. */
function setOrReset(body: Record<string, unknown>, field: string, value: unknown, reset: boolean | undefined, flag: string): void {
  if (value !== undefined && reset) throw new CliError(`Use either ${flag} or ${flag.replace('--', '--reset-')}`);
  if (value !== undefined) body[field] = value;
  if (reset) body[field] = null;
}

/** The RFC 7591 metadata a set of flags names. */
function metadataFromFlags(f: MetadataFlags): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (f.clientId !== undefined) body.client_id = f.clientId;
  if (f.name !== undefined) body.client_name = f.name;
  if (f.scope !== undefined) body.scope = f.scope;
  if (f.audience !== undefined) body.audience = f.audience;
  setOrReset(body, 'default_scope', f.defaultScope, f.resetDefaultScope, '--default-scope');
  setOrReset(body, 'default_audience', f.defaultAudience, f.resetDefaultAudience, '--default-audience');
  if (f.authMethod !== undefined) body.token_endpoint_auth_method = f.authMethod;
  if (f.jwks !== undefined) body.jwks = readJwks(f.jwks);
  if (f.claims !== undefined) body.claims = readJsonFlag('--claims', f.claims);
  setOrReset(body, 'access_token_ttl', f.ttl, f.resetTtl, '--ttl');
  if (f.grantTypes !== undefined) body.grant_types = grantTypes(f.grantTypes);
  if (f.resourceUri !== undefined) body.resource_uris = f.resourceUri;
  if (f.tokenReuse !== undefined) body.token_reuse = f.tokenReuse;
  if (f.dpopBoundAccessTokens !== undefined) body.dpop_bound_access_tokens = f.dpopBoundAccessTokens;
  if (f.fapi2 !== undefined) body.fapi2 = f.fapi2;
  setOrReset(body, 'rate_limit', f.rateLimit, f.resetRateLimit, '--rate-limit');
  if (f.federatedIssuer !== undefined) body.federated_issuer = f.federatedIssuer;
  if (f.federatedSubject !== undefined) body.federated_subject = f.federatedSubject;
  if (f.federatedClaims !== undefined) body.federated_claims = readJsonFlag('--federated-claims', f.federatedClaims);
  if (f.disabled) body.disabled = true;
  const names = TLS_NAME_FLAGS.filter(([key]) => f[key] !== undefined);
  if (names.length > 1) throw new CliError(`Give one of ${TLS_NAME_FLAGS.map(([, , flag]) => flag.split(' ')[0]).join(', ')} (RFC 8705 §2.1.2: a client is known by one certificate name)`);
  // The one name given replaces whichever was set: the others are cleared in the same request.
  if (names.length === 1) for (const [key, field] of TLS_NAME_FLAGS) body[field] = f[key] ?? null;
  if (f.tlsBoundTokens !== undefined) body.tls_client_certificate_bound_access_tokens = f.tlsBoundTokens;
  return body;
}

function clientPath(id: string, suffix = ''): string {
  return `/admin/clients/${encodeURIComponent(id)}${suffix}`;
}

export function printJson(io: Output, value: unknown): void {
  io.out(JSON.stringify(value, null, 2));
}

function printClient(io: Output, flags: CommonFlags, client: ClientWire | ClientWireWithSecret): void {
  if (flags.json) printJson(io, client);
  else clientDetails(client).forEach((l) => io.out(l));
  if ('client_secret' in client) io.err(SECRET_WARNING);
}

/** What a `list` subcommand pages through: an admin collection with `limit`, `after` and `next`. */
export interface Listing<T> {
  /** The name of the field pages are ordered and continued by (client_id, name). */
  key: string;
  path: string;
  /** The member of a page holding its items. */
  member: string;
  table: (rows: T[]) => string[];
  /** The line that says there is more, before the next `after`. */
  more: string;
}

/** Adds --limit, --after and --all to `cmd` and makes it print the pages of `listing`, as a table or JSON. */
export function listCommand<T>(io: Output, cmd: Command, listing: Listing<T>): Command {
  return cmd
    .option('--limit <n>', 'items per page (1 to 1000)', (v) => {
      if (!/^\d{1,4}$/.test(v)) throw new InvalidArgumentError('Expected a whole number.');
      return Number(v);
    })
    .option(`--after <${listing.key}>`, `start after this ${listing.key} (the "next" of the previous page)`)
    .option('--all', 'follow every page')
    .action(async (flags: CommonFlags & { limit?: number; after?: string; all?: boolean }) => {
      const target = resolveAdminTarget(flags);
      const all: T[] = [];
      let after = flags.after;
      let next: string | null = null;
      do {
        const query = new URLSearchParams();
        if (flags.limit !== undefined) query.set('limit', String(flags.limit));
        if (after !== undefined) query.set('after', after);
        const qs = query.toString();
        const res = await adminRequest(target, 'GET', `${listing.path}${qs ? `?${qs}` : ''}`);
        const page = res.body as Record<string, unknown> & { next: string | null };
        all.push(...(page[listing.member] as T[]));
        next = page.next;
        after = next ?? undefined;
      } while (flags.all && next !== null);
      if (flags.json) {
        printJson(io, { [listing.member]: all, next });
        return;
      }
      listing.table(all).forEach((l) => io.out(l));
      if (next !== null) io.err(`${listing.more} ${next}`);
    });
}

export function clientsCommand(io: Output): Command {
  const clients = new Command('clients').description('manage OAuth clients through the admin API');

  withMetadata(withConnection(clients.command('create').description('register a client; prints its secret once')), false)
    .action(async (flags: MetadataFlags) => {
      const target = resolveAdminTarget(flags);
      const body = metadataFromFlags(flags);
      const res = await adminRequest(target, 'POST', '/admin/clients', body);
      printClient(io, flags, res.body as ClientWire);
    });

  listCommand<ClientWire>(io, withConnection(clients.command('list').description('list clients, in client_id order')), {
    key: 'client_id', path: '/admin/clients', member: 'clients', table: clientsTable, more: 'More clients: m2m-auth clients list --after',
  });

  withConnection(clients.command('get').description('show one client').argument('<client_id>'))
    .action(async (id: string, flags: CommonFlags) => {
      const res = await adminRequest(resolveAdminTarget(flags), 'GET', clientPath(id));
      printClient(io, flags, res.body as ClientWire);
    });

  withMetadata(withConnection(clients.command('update').description('change client metadata').argument('<client_id>')), true)
    .action(async (id: string, flags: MetadataFlags) => {
      const target = resolveAdminTarget(flags);
      const body = metadataFromFlags(flags);
      if (Object.keys(body).length === 0) throw new CliError('Nothing to update: pass at least one metadata option (see m2m-auth clients update --help)');
      const res = await adminRequest(target, 'PATCH', clientPath(id), body);
      printClient(io, flags, res.body as ClientWire);
    });

  withConnection(clients.command('rotate-secret').description('issue a new client secret; the previous one keeps working for the grace period, any older one stops at once').argument('<client_id>'))
    .option('--grace <seconds>', 'seconds the previous secret keeps working (default: the server\'s M2M_AUTH_SECRET_GRACE_PERIOD; 0 = stops at once)', wholeSeconds)
    .action(async (id: string, flags: CommonFlags & { grace?: number }) => {
      const target = resolveAdminTarget(flags);
      const res = await adminRequest(target, 'POST', clientPath(id, '/secret'), flags.grace === undefined ? {} : { grace_period: flags.grace });
      const body = res.body as ClientWireWithSecret & { previous_secret_expires_at: number | null };
      if (flags.json) printJson(io, body);
      else {
        io.out(keyValueLines([['client_id', body.client_id], ['client_secret', body.client_secret]]).join('\n'));
        io.out(body.previous_secret_expires_at === null
          ? 'There was no previous secret.'
          : `The previous secret works until ${isoTime(body.previous_secret_expires_at)}.`);
      }
      io.err(SECRET_WARNING);
    });

  const simple: Array<[string, string, string, (c: ClientWire) => string]> = [
    ['disable', 'stop a client from getting tokens (reversible)', '/disable', (c) => `Client ${c.client_id} is disabled.`],
    ['enable', 'let a disabled client get tokens again', '/enable', (c) => `Client ${c.client_id} is enabled.`],
    ['revoke-tokens', 'kill switch: every token issued to the client so far becomes inactive', '/revoke-tokens',
      (c) => `Tokens issued to ${c.client_id} before ${isoTime(c.tokens_revoked_at)} are inactive.`],
  ];
  for (const [name, description, suffix, summary] of simple) {
    withConnection(clients.command(name).description(description).argument('<client_id>'))
      .action(async (id: string, flags: CommonFlags) => {
        const res = await adminRequest(resolveAdminTarget(flags), 'POST', clientPath(id, suffix));
        const client = res.body as ClientWire;
        if (flags.json) printJson(io, client);
        else io.out(summary(client));
      });
  }

  withConnection(clients.command('delete').description('delete a client for good').argument('<client_id>'))
    .action(async (id: string, flags: CommonFlags) => {
      await adminRequest(resolveAdminTarget(flags), 'DELETE', clientPath(id));
      if (flags.json) printJson(io, { client_id: id, deleted: true });
      else io.out(`Client ${id} is deleted.`);
    });

  return clients;
}

export function keysCommand(io: Output): Command {
  const keys = new Command('keys').description('signing keys of access tokens');

  withConnection(keys.command('list').description('list signing keys (pending, active, retired, revoked)'))
    .action(async (flags: CommonFlags) => {
      const res = await adminRequest(resolveAdminTarget(flags), 'GET', '/admin/keys');
      const body = res.body as { keys: KeyWire[] };
      if (flags.json) printJson(io, body);
      else keysTable(body.keys).forEach((l) => io.out(l));
    });

  withConnection(keys.command('rotate').description('create a new signing key: published now, signing after the prepublish period (--now: at once)'))
    .option('--now', 'the new key signs at once and the current one retires (a leaked key); verifiers fetch the new key on its unknown kid')
    .action(async (flags: CommonFlags & { now?: boolean }) => {
      const res = await adminRequest(resolveAdminTarget(flags), 'POST', '/admin/keys/rotate', flags.now ? { now: true } : undefined);
      const body = res.body as { key: KeyWire; keys: KeyWire[] };
      if (flags.json) {
        printJson(io, body);
        return;
      }
      io.out(flags.now
        ? `New key ${body.key.kid} (${body.key.alg}) is published and signs from now (${isoTime(body.key.activates_at)}); the previous key is retired.`
        : `New key ${body.key.kid} (${body.key.alg}) is published; it signs from ${isoTime(body.key.activates_at)}.`);
      keysTable(body.keys).forEach((l) => io.out(l));
    });

  withConnection(keys.command('revoke')
    .description('revoke a signing key (it leaked): unpublished at once, never signs again, every token it signed inactive')
    .argument('<kid>'))
    .option('--rotate', 'first create a new key that signs at once (needed to revoke the key that signs now)')
    .action(async (kid: string, flags: CommonFlags & { rotate?: boolean }) => {
      const path = `/admin/keys/${encodeURIComponent(kid)}/revoke`;
      const res = await adminRequest(resolveAdminTarget(flags), 'POST', path, flags.rotate ? { rotate: true } : undefined);
      const body = res.body as { key: KeyWire; replacement: KeyWire | null; keys: KeyWire[] };
      if (flags.json) {
        printJson(io, body);
        return;
      }
      if (body.replacement !== null) io.out(`New key ${body.replacement.kid} (${body.replacement.alg}) signs from now on.`);
      io.out(`Key ${body.key.kid} is revoked: it is no longer published, signs nothing more, and every token it signed is inactive at introspection.`);
      io.out('APIs that verify tokens locally accept its tokens until they refetch the JWKS (the SDK: within its cache age, 10 minutes by default).');
      keysTable(body.keys).forEach((l) => io.out(l));
    });

  return keys;
}
