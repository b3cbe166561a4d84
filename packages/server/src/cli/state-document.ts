// The export document of `m2m-auth export` and `import`: the whole state of a database in one
// versioned JSON document, read from and written to the storage directly (not the admin API).
//
// It holds the clients as stored (secret digests, grace secrets, the kill switch), every signing
// key still in the database (retired ones too) with its private key still encrypted under the
// KEK, the revocations and the replay entries still in force. It is sealed with an HMAC-SHA256
// under a key derived from the KEK, so an import refuses a document that was truncated or changed,
// and tells a document made under another KEK (whose keys the target could not open) apart.
// Later features add their state with a version bump: version 2 adds the trusted issuers (and the
// clients' federation); version 1 documents are still read (no trusts, no federated clients).

import { createHmac, hkdfSync } from 'node:crypto';
import { sameBytes } from '../ground/bytes.js';
import type { ClientRecord, RevocationRecord, SigningKeyRecord } from '../ground/records.js';
import type { TrustedIssuerRecord } from '../ground/trusts.js';
import { decryptPrivateKey } from '../keys/kek.js';
import { StorageConflictError, type ReplayRecord, type Storage } from '../storage/types.js';
import { CliError } from './admin-client.js';
import { isPlainObject } from '../ground/json.js';

export const STATE_FORMAT = 'm2m-auth-state';
export const STATE_VERSION = 2;
/** The versions an import reads: 1 (before trusted issuers) and this one. */
const READABLE_VERSIONS: readonly number[] = [1, STATE_VERSION];

export interface StateBody {
  format: typeof STATE_FORMAT;
  version: number;
  /** Epoch ms. */
  exported_at: number;
  /** Version 2 on; a version 1 document reads as []. Imported before the clients that name them. */
  trusted_issuers: TrustedIssuerRecord[];
  clients: ClientRecord[];
  signing_keys: SigningKeyRecord[];
  revocations: RevocationRecord[];
  replay: ReplayRecord[];
}

/** The body and its seal: base64url HMAC-SHA256 of the body's JSON under sealKey(kek). */
export interface StateDocument extends StateBody {
  mac: string;
}

function sealKey(kek: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', kek, Buffer.alloc(0), 'm2m-auth state document v1', 32));
}

function seal(kek: Buffer, body: StateBody): string {
  return createHmac('sha256', sealKey(kek)).update(JSON.stringify(body)).digest('base64url');
}

const PAGE = 1000;

/** Everything the storage holds that a server needs, as of `now`. */
export async function exportState(storage: Storage, kek: Buffer, now: number): Promise<StateDocument> {
  const clients: ClientRecord[] = [];
  let after: string | undefined;
  for (;;) {
    const page = await storage.clients.listClients(after === undefined ? { limit: PAGE } : { after, limit: PAGE });
    clients.push(...page);
    if (page.length < PAGE) break;
    after = page[page.length - 1]!.clientId;
  }
  const trusts: TrustedIssuerRecord[] = [];
  let afterTrust: string | undefined;
  for (;;) {
    const page = await storage.trusts.listTrusts(afterTrust === undefined ? { limit: PAGE } : { after: afterTrust, limit: PAGE });
    trusts.push(...page);
    if (page.length < PAGE) break;
    afterTrust = page[page.length - 1]!.name;
  }
  const body: StateBody = {
    format: STATE_FORMAT,
    version: STATE_VERSION,
    exported_at: now,
    trusted_issuers: trusts,
    clients,
    signing_keys: await storage.keys.listKeys(),
    revocations: await storage.revocations.listRevocations(now),
    replay: await storage.replay.listReplay(now),
  };
  return { ...body, mac: seal(kek, body) };
}

function opens(kek: Buffer, key: SigningKeyRecord): boolean {
  try {
    decryptPrivateKey(kek, key.privateKeyEncrypted, key.kid);
    return true;
  } catch {
    return false;
  }
}

/**
 * The document in `text`, after checking that it is whole, unchanged since export and made under
 * `kek` (every signing key opens); throws a CliError that says which of these failed.
 */
export function readStateDocument(text: string, kek: Buffer, name: string): StateBody {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new CliError(`${name} is not a whole JSON document (truncated, or not an m2m-auth export); nothing was imported`);
  }
  if (!isPlainObject(doc) || doc.format !== STATE_FORMAT) {
    throw new CliError(`${name} is not an m2m-auth export (no "format": "${STATE_FORMAT}"); nothing was imported`);
  }
  if (typeof doc.version !== 'number' || !READABLE_VERSIONS.includes(doc.version)) {
    throw new CliError(`${name} is version ${JSON.stringify(doc.version)} of the export format; this m2m-auth reads versions ${READABLE_VERSIONS.join(' and ')}; nothing was imported`);
  }
  const { mac, ...rest } = doc;
  const body = rest as unknown as StateBody;
  const lists = doc.version === 1
    ? ['clients', 'signing_keys', 'revocations', 'replay'] as const
    : ['trusted_issuers', 'clients', 'signing_keys', 'revocations', 'replay'] as const;
  const intact = typeof mac === 'string' && typeof body.exported_at === 'number' && lists.every((k) => Array.isArray(body[k]))
    && Object.keys(rest).length === 3 + lists.length
    && sameBytes(Buffer.from(mac), Buffer.from(seal(kek, body)));
  const keys = Array.isArray(body.signing_keys) ? body.signing_keys : [];
  const closed = keys.filter((k) => !isPlainObject(k) || typeof k.kid !== 'string' || typeof k.privateKeyEncrypted !== 'string' || !opens(kek, k));
  if (!intact) {
    if (keys.length > 0 && closed.length === keys.length) {
      throw new CliError(`${name} was exported under another key-encryption key: this KEK cannot open its signing keys; nothing was imported`);
    }
    throw new CliError(`${name} was changed after it was exported (its seal does not match), or exported under another key-encryption key; nothing was imported`);
  }
  if (closed.length > 0) {
    throw new CliError(`${name}: this key-encryption key cannot open signing key ${closed[0]!.kid}; nothing was imported`);
  }
  if (doc.version === 1) {
    // Sealed as written; read as this version's shape: no trusts, no federated clients.
    return { ...body, trusted_issuers: [], clients: body.clients.map((c) => ({ ...c, federation: null })) };
  }
  return body;
}

export interface ImportCounts {
  trustedIssuers: number;
  clients: number;
  signingKeys: number;
  revocations: number;
  replay: number;
  /** Trusts, clients and keys already in the database (--merge): left as they were. */
  kept: number;
}

/** True when the storage holds nothing an import could clash with. */
export async function isEmpty(storage: Storage, now: number): Promise<boolean> {
  return (await storage.clients.listClients({ limit: 1 })).length === 0
    && (await storage.trusts.listTrusts({ limit: 1 })).length === 0
    && (await storage.keys.listKeys()).length === 0
    && (await storage.revocations.listRevocations(now)).length === 0
    && (await storage.replay.listReplay(now)).length === 0;
}

/**
 * Writes a checked document into the storage. Into an empty database unless `merge`, which adds
 * what is missing and keeps the clients and keys already there. Revocations and replay entries
 * that expired since the export are left out.
 */
export async function importState(storage: Storage, body: StateBody, options: { merge: boolean; now: number }): Promise<ImportCounts> {
  const { merge, now } = options;
  if (!merge && !(await isEmpty(storage, now))) {
    throw new CliError('The target database is not empty: import into an empty one, or pass --merge to add what is missing; nothing was imported');
  }
  const counts: ImportCounts = { trustedIssuers: 0, clients: 0, signingKeys: 0, revocations: 0, replay: 0, kept: 0 };
  const kept = async (write: () => Promise<void>): Promise<boolean> => {
    try {
      await write();
      return true;
    } catch (err) {
      // A client kept for its id is kept; one whose federation clashes with a client already there is too.
      if (merge && err instanceof StorageConflictError && err.reason !== 'unknown_trust') {
        counts.kept++;
        return false;
      }
      throw err;
    }
  };
  // Keys first: a server started on a database with clients and no keys would make a new one.
  for (const key of body.signing_keys) if (await kept(() => storage.keys.insertKey(key))) counts.signingKeys++;
  // Trusts before the clients that name them.
  for (const trust of body.trusted_issuers) if (await kept(() => storage.trusts.createTrust(trust))) counts.trustedIssuers++;
  for (const client of body.clients) if (await kept(() => storage.clients.createClient(client))) counts.clients++;
  for (const r of body.revocations) {
    if (r.expiresAt <= now) continue;
    await storage.revocations.revokeToken(r);
    counts.revocations++;
  }
  for (const r of body.replay) {
    if (r.expiresAt <= now) continue;
    await storage.replay.consumeOnce(r.key, r.expiresAt, now);
    counts.replay++;
  }
  return counts;
}
