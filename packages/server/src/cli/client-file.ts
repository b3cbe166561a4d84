// The client file of `m2m-auth apply` (JSON, or YAML of the same shape):
//   {"version": 1, "trusted_issuers": [{"name": "prod-cluster", "kind": "kubernetes", ...}],
//    "clients": [{"client_id": "cl_billing", ...RFC 7591 metadata and ours}]}
// (trusted_issuers is optional: a file without it leaves the server's trusts alone, even with --prune)
// read and checked whole before anything is applied, and the plan that brings a server's clients
// to what the file says: create what is missing, update what differs, leave the rest, delete
// what the file does not name (only when asked).
//
// A file entry is the whole client: a field it leaves out means that field's default, as on
// create, so removing a line from the file and applying it again takes the setting back.

import { readFile } from 'node:fs/promises';
import { ClientValidationError } from '../clients/metadata.js';
import { draftNewClient } from '../clients/registry.js';
import { clientToWire, type ClientWire } from '../clients/wire.js';
import { CliError } from './admin-client.js';
import { isPlainObject } from '../ground/json.js';
import { draftNewTrust, TrustValidationError } from '../trusts/rules.js';
import { trustToWire, type TrustWire } from '../trusts/wire.js';

/** The one version of the file format this m2m-auth reads. */
export const CLIENT_FILE_VERSION = 1;

/** Wire fields a file entry decides; everything else on the server (times, secrets, kill switch) is left alone. */
export const MANAGED_FIELDS = [
  'client_name', 'scope', 'default_scope', 'audience', 'default_audience', 'grant_types', 'resource_uris',
  'token_endpoint_auth_method', 'jwks', 'access_token_ttl', 'rate_limit', 'token_reuse', 'disabled', 'claims',
  'tls_client_auth_subject_dn', 'tls_client_auth_san_dns', 'tls_client_auth_san_uri', 'tls_client_auth_san_ip', 'tls_client_auth_san_email',
  'tls_client_certificate_bound_access_tokens',
  'dpop_bound_access_tokens', 'fapi2',
  'federated_issuer', 'federated_subject', 'federated_claims',
] as const satisfies ReadonlyArray<keyof ClientWire>;

/** Wire fields a file's trust entry decides (all but its name and times). */
export const MANAGED_TRUST_FIELDS = [
  'kind', 'issuer', 'trust_domain', 'jwks_uri', 'jwks', 'ca_bundle', 'allowed_private_hosts', 'audiences',
  'max_token_lifetime', 'single_use_jti',
] as const satisfies ReadonlyArray<keyof TrustWire>;

export type ManagedTrustField = (typeof MANAGED_TRUST_FIELDS)[number];

export interface FileTrust {
  name: string;
  /** The entry as written (the create body). */
  input: Record<string, unknown>;
  desired: Pick<TrustWire, ManagedTrustField>;
}

export type TrustPlanStep =
  | { action: 'create'; name: string; body: Record<string, unknown> }
  | { action: 'update'; name: string; fields: ManagedTrustField[]; body: Record<string, unknown> }
  | { action: 'unchanged'; name: string }
  | { action: 'delete' | 'keep'; name: string };

/** A client file, checked: its trusts (undefined when it has no trusted_issuers member) and its clients. */
export interface ApplyFile {
  trusts: FileTrust[] | undefined;
  clients: FileClient[];
}

export type ManagedField = (typeof MANAGED_FIELDS)[number];

/** access_token_ttl bounds for checking a file: the server's own bounds are checked by the server. */
const ANY_TTL = { min: 1, max: 100 * 365 * 24 * 3600 };

export interface FileClient {
  clientId: string;
  /** The entry as written (the create body). */
  input: Record<string, unknown>;
  /** What the server should show for each managed field once applied. */
  desired: Pick<ClientWire, ManagedField>;
}

export type PlanStep =
  | { action: 'create'; clientId: string; body: Record<string, unknown> }
  | { action: 'update'; clientId: string; fields: ManagedField[]; body: Record<string, unknown> }
  | { action: 'unchanged'; clientId: string }
  /** On the server, not in the file: deleted with --prune, kept otherwise. */
  | { action: 'delete' | 'keep'; clientId: string };

/** Parses JSON or YAML (YAML 1.2 reads JSON too; unlike JSON.parse it refuses a repeated key). */
export async function parseClientFileText(text: string, name: string): Promise<unknown> {
  const { parseDocument } = await import('yaml');
  // The core schema only: no custom tags, no language-specific types; aliases stay few.
  const doc = parseDocument(text, { schema: 'core', uniqueKeys: true });
  const error = doc.errors[0];
  if (error !== undefined) {
    // The first line: what and where ("... at line 5, column 5"), without the quoted lines of the file.
    throw new CliError(`${name} is not valid JSON or YAML: ${error.message.split('\n')[0]!.replace(/:$/, '')}`);
  }
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    throw new CliError(`${name} cannot be read: ${(err as Error).message.split('\n')[0]}`);
  }
}

/**
 * Every entry of a client file, each checked by the rules the server applies on create; throws a
 * CliError naming each bad client and field (all of them, not only the first), so that an invalid
 * file applies nothing.
 */
export function checkClientFile(doc: unknown, now = Date.now()): ApplyFile {
  if (!isPlainObject(doc)) throw new CliError('The client file must hold an object: {"version": 1, "clients": [...]}');
  const extra = Object.keys(doc).find((k) => k !== 'version' && k !== 'clients' && k !== 'trusted_issuers');
  if (extra !== undefined) throw new CliError(`The client file has an unknown member ${JSON.stringify(extra)} (allowed: version, trusted_issuers, clients)`);
  if (doc.version !== CLIENT_FILE_VERSION) {
    throw new CliError(`The client file's version must be ${CLIENT_FILE_VERSION}, got ${JSON.stringify(doc.version) ?? 'none'}`);
  }
  if (!Array.isArray(doc.clients)) throw new CliError('The client file\'s clients must be a list of clients');
  const problems: string[] = [];
  const trusts = doc.trusted_issuers === undefined ? undefined : checkTrustEntries(doc.trusted_issuers, problems, now);
  const seen = new Map<string, number>();
  const out: FileClient[] = [];
  doc.clients.forEach((entry: unknown, i: number) => {
    const where = `clients[${i}]`;
    if (!isPlainObject(entry)) {
      problems.push(`${where}: must be an object of client metadata`);
      return;
    }
    const id = entry.client_id;
    if (typeof id !== 'string') {
      problems.push(`${where}: field client_id: a client file names every client (apply matches clients by client_id)`);
      return;
    }
    const label = `${where} ${JSON.stringify(id.length > 80 ? `${id.slice(0, 80)}...` : id)}`;
    const first = seen.get(id);
    if (first !== undefined) {
      problems.push(`${label}: field client_id: the same client_id as clients[${first}]`);
      return;
    }
    seen.set(id, i);
    try {
      const { draft } = draftNewClient(entry, ANY_TTL, now);
      const wire = clientToWire({ clientId: id, ...draft });
      const desired = Object.fromEntries(MANAGED_FIELDS.map((f) => [f, wire[f]])) as Pick<ClientWire, ManagedField>;
      out.push({ clientId: id, input: entry, desired });
    } catch (err) {
      if (!(err instanceof ClientValidationError)) throw err;
      problems.push(`${label}: ${err.field === undefined ? '' : `field ${err.field}: `}${err.message}`);
    }
  });
  if (problems.length > 0) {
    throw new CliError(`The client file is invalid; nothing was applied. ${problems.join('; ')}`);
  }
  return { trusts, clients: out };
}

/** The trusted_issuers of a client file, each checked by the rules the server applies on create; problems are added to `problems`. */
function checkTrustEntries(list: unknown, problems: string[], now: number): FileTrust[] {
  if (!Array.isArray(list)) {
    problems.push('trusted_issuers: must be a list of trusted issuers');
    return [];
  }
  const seen = new Map<string, number>();
  const out: FileTrust[] = [];
  list.forEach((entry: unknown, i: number) => {
    const where = `trusted_issuers[${i}]`;
    if (!isPlainObject(entry)) {
      problems.push(`${where}: must be an object`);
      return;
    }
    const label = typeof entry.name === 'string' ? `${where} ${JSON.stringify(entry.name.slice(0, 80))}` : where;
    try {
      // Plain http for a loopback issuer is the server's to allow or refuse (a test setting).
      const trust = draftNewTrust(entry, { allowHttpLoopback: true }, now);
      const first = seen.get(trust.name);
      if (first !== undefined) {
        problems.push(`${label}: field name: the same name as trusted_issuers[${first}]`);
        return;
      }
      seen.set(trust.name, i);
      const wire = trustToWire(trust);
      const desired = Object.fromEntries(MANAGED_TRUST_FIELDS.map((f) => [f, wire[f]])) as Pick<TrustWire, ManagedTrustField>;
      out.push({ name: trust.name, input: entry, desired });
    } catch (err) {
      if (!(err instanceof TrustValidationError)) throw err;
      problems.push(`${label}: ${err.field === undefined ? '' : `field ${err.field}: `}${err.message}`);
    }
  });
  return out;
}

export async function readClientFile(path: string): Promise<ApplyFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new CliError(`Cannot read the client file ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return checkClientFile(await parseClientFileText(text, path));
}

/** JSON with object members sorted: two values compare equal whatever order their members were written in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    isPlainObject(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])) : v);
}

/**
 * The steps that bring `current` (every client on the server) to the file: in file order, then
 * the clients the file does not name (delete with `prune`, keep otherwise), in client_id order.
 */
export function planApply(file: FileClient[], current: ClientWire[], prune: boolean): PlanStep[] {
  const byId = new Map(current.map((c) => [c.client_id, c]));
  const steps: PlanStep[] = [];
  for (const f of file) {
    const now = byId.get(f.clientId);
    if (now === undefined) {
      steps.push({ action: 'create', clientId: f.clientId, body: f.input });
      continue;
    }
    const fields = MANAGED_FIELDS.filter((k) => canonical(now[k]) !== canonical(f.desired[k]));
    if (fields.length === 0) {
      steps.push({ action: 'unchanged', clientId: f.clientId });
      continue;
    }
    const body: Record<string, unknown> = {};
    for (const k of fields) body[k] = f.desired[k];
    steps.push({ action: 'update', clientId: f.clientId, fields, body });
  }
  const named = new Set(file.map((f) => f.clientId));
  const rest = current.map((c) => c.client_id).filter((id) => !named.has(id)).sort();
  for (const id of rest) steps.push({ action: prune ? 'delete' : 'keep', clientId: id });
  return steps;
}

/**
 * The steps that bring the server's trusts to the file's, as planApply does for clients; none when
 * the file has no trusted_issuers member (then its trusts are not the file's to manage).
 */
export function planTrusts(file: FileTrust[] | undefined, current: TrustWire[], prune: boolean): TrustPlanStep[] {
  if (file === undefined) return [];
  const byName = new Map(current.map((t) => [t.name, t]));
  const steps: TrustPlanStep[] = [];
  for (const f of file) {
    const now = byName.get(f.name);
    if (now === undefined) {
      steps.push({ action: 'create', name: f.name, body: f.input });
      continue;
    }
    const fields = MANAGED_TRUST_FIELDS.filter((k) => canonical(now[k]) !== canonical(f.desired[k]));
    if (fields.length === 0) {
      steps.push({ action: 'unchanged', name: f.name });
      continue;
    }
    const body: Record<string, unknown> = {};
    for (const k of fields) body[k] = f.desired[k];
    steps.push({ action: 'update', name: f.name, fields, body });
  }
  const named = new Set(file.map((f) => f.name));
  for (const name of current.map((t) => t.name).filter((n) => !named.has(n)).sort()) {
    steps.push({ action: prune ? 'delete' : 'keep', name });
  }
  return steps;
}
