// `m2m-auth trusts ...`: the trusted issuers of federated clients (issue 17) through the admin API
// (/admin/trusted-issuers), like `m2m-auth clients ...`.

import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { TRUST_KINDS } from '../ground/trusts.js';
import type { TrustWire } from '../trusts/wire.js';
import { adminRequest, CliError, resolveAdminTarget } from './admin-client.js';
import { collect, listCommand, printJson, withConnection, type CommonFlags } from './admin-commands.js';
import { wholeSeconds } from './flags.js';
import { trustDetails, trustsTable, type Output } from './output.js';

interface TrustFlags extends CommonFlags {
  kind?: string;
  issuer?: string;
  trustDomain?: string;
  jwksUri?: string;
  jwksFile?: string;
  caFile?: string;
  allowedPrivateHost?: string[];
  audience?: string[];
  maxTokenLifetime?: number;
  singleUseJti?: boolean | null;
  reset?: string[];
}

/** The nullable fields `update --reset` may clear. */
const RESETTABLE = ['issuer', 'trust_domain', 'jwks_uri', 'jwks', 'ca_bundle', 'single_use_jti', 'allowed_private_hosts', 'audiences', 'max_token_lifetime'];

function trueFalseOrDefault(value: string): boolean | null {
  const v = value.trim().toLowerCase();
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (v === 'default') return null;
  throw new InvalidArgumentError('Expected true, false or default.');
}

function readTextFile(flag: string, path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new CliError(`${flag}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function withTrustFields(cmd: Command, forUpdate: boolean): Command {
  cmd
    .option('--issuer <url>', 'issuer (kubernetes, oidc): the https URL its tokens carry in iss')
    .option('--trust-domain <domain>', 'trust_domain (spiffe): e.g. prod.example.org')
    .option('--jwks-uri <url>', 'jwks_uri: where keys are fetched (spiffe: the bundle endpoint); default: the issuer\'s OIDC discovery')
    .option('--jwks-file <file>', 'jwks: static public keys from a JWKS file (or a SPIFFE bundle), e.g. kubectl get --raw /openid/v1/jwks')
    .option('--ca-file <file>', 'ca_bundle: PEM CA certificates to trust when fetching keys (an in-cluster API server)')
    .option('--allowed-private-host <host>', 'allowed_private_hosts: a host this trust may fetch from although it is private (repeatable)', collect)
    .option('--audience <aud>', 'audiences: an audience accepted besides this server\'s issuer and token endpoint (repeatable; not for spiffe)', collect)
    .option('--max-token-lifetime <seconds>', 'max_token_lifetime: longest lifetime of a platform token, 60 to 604800 (default 86400)', wholeSeconds)
    .option('--single-use-jti <true|false|default>', 'single_use_jti: refuse a platform token\'s jti seen before (default: off for kubernetes and spiffe, on for oidc when the token has a jti)', trueFalseOrDefault);
  if (forUpdate) {
    cmd.addOption(new Option('--reset <field>', 'clear a field back to its default (repeatable)').choices(RESETTABLE).argParser((v, prev: string[] | undefined) => {
      if (!RESETTABLE.includes(v)) throw new InvalidArgumentError(`Expected one of ${RESETTABLE.join(', ')}.`);
      return [...(prev ?? []), v];
    }));
  } else {
    cmd.addOption(new Option('--kind <kind>', 'kind of the trusted issuer').choices(TRUST_KINDS).makeOptionMandatory());
  }
  return cmd;
}

const DEFAULTS: Record<string, unknown> = { allowed_private_hosts: [], audiences: [], max_token_lifetime: 86_400 };

function trustBody(f: TrustFlags): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (f.kind !== undefined) body.kind = f.kind;
  if (f.issuer !== undefined) body.issuer = f.issuer;
  if (f.trustDomain !== undefined) body.trust_domain = f.trustDomain;
  if (f.jwksUri !== undefined) body.jwks_uri = f.jwksUri;
  if (f.jwksFile !== undefined) body.jwks = readJsonFile('--jwks-file', f.jwksFile);
  if (f.caFile !== undefined) body.ca_bundle = readTextFile('--ca-file', f.caFile);
  if (f.allowedPrivateHost !== undefined) body.allowed_private_hosts = f.allowedPrivateHost;
  if (f.audience !== undefined) body.audiences = f.audience;
  if (f.maxTokenLifetime !== undefined) body.max_token_lifetime = f.maxTokenLifetime;
  if (f.singleUseJti !== undefined) body.single_use_jti = f.singleUseJti;
  for (const field of f.reset ?? []) {
    if (Object.hasOwn(body, field)) throw new CliError(`--reset ${field} and a value for ${field} at once`);
    body[field] = Object.hasOwn(DEFAULTS, field) ? DEFAULTS[field] : null;
  }
  return body;
}

function readJsonFile(flag: string, path: string): unknown {
  const text = readTextFile(flag, path);
  try {
    return JSON.parse(text);
  } catch {
    throw new CliError(`${flag}: ${path} is not valid JSON`);
  }
}

function trustPath(name: string): string {
  return `/admin/trusted-issuers/${encodeURIComponent(name)}`;
}

function printTrust(io: Output, flags: CommonFlags, trust: TrustWire): void {
  if (flags.json) printJson(io, trust);
  else trustDetails(trust).forEach((l) => io.out(l));
}

export function trustsCommand(io: Output): Command {
  const trusts = new Command('trusts').description('manage trusted issuers: the platforms whose workload tokens authenticate federated_jwt clients');

  withTrustFields(withConnection(trusts.command('create').description('add a trusted issuer (kubernetes, spiffe or oidc)').argument('<name>', 'the trust\'s name: 1 to 64 of a-z 0-9 -, starting with a letter')), false)
    .action(async (name: string, flags: TrustFlags) => {
      const res = await adminRequest(resolveAdminTarget(flags), 'POST', '/admin/trusted-issuers', { name, ...trustBody(flags) });
      printTrust(io, flags, res.body as TrustWire);
    });

  listCommand<TrustWire>(io, withConnection(trusts.command('list').description('list trusted issuers, in name order')), {
    key: 'name', path: '/admin/trusted-issuers', member: 'trusted_issuers', table: trustsTable,
    more: 'More trusted issuers: m2m-auth trusts list --after',
  });

  withConnection(trusts.command('get').description('show one trusted issuer').argument('<name>'))
    .action(async (name: string, flags: CommonFlags) => {
      const res = await adminRequest(resolveAdminTarget(flags), 'GET', trustPath(name));
      printTrust(io, flags, res.body as TrustWire);
    });

  withTrustFields(withConnection(trusts.command('update').description('change a trusted issuer').argument('<name>')), true)
    .action(async (name: string, flags: TrustFlags) => {
      const body = trustBody(flags);
      if (Object.keys(body).length === 0) throw new CliError('Nothing to update: pass at least one option (see m2m-auth trusts update --help)');
      const res = await adminRequest(resolveAdminTarget(flags), 'PATCH', trustPath(name), body);
      printTrust(io, flags, res.body as TrustWire);
    });

  withConnection(trusts.command('delete').description('delete a trusted issuer (refused while clients name it)').argument('<name>'))
    .action(async (name: string, flags: CommonFlags) => {
      await adminRequest(resolveAdminTarget(flags), 'DELETE', trustPath(name));
      if (flags.json) printJson(io, { name, deleted: true });
      else io.out(`Trusted issuer ${name} is deleted.`);
    });

  return trusts;
}
