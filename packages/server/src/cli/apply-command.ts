// `m2m-auth apply -f FILE`: brings the trusted issuers and clients of a server to what a client
// file says (trusts created and updated before the clients that name them, deleted after), through
// the admin API (so it works against any deployment). The whole file is checked first; --dry-run
// prints the plan and changes nothing; --prune deletes the clients the file does not name. The
// secrets of created clients are printed once, or written to a new file of mode 0600, never into
// the input file. Applying the same file twice changes nothing the second time.

import { open } from 'node:fs/promises';
import { Command } from 'commander';
import type { ClientWire } from '../clients/wire.js';
import { adminRequest, CliError, resolveAdminTarget, type AdminConnectionOptions, type AdminTarget } from './admin-client.js';
import type { TrustWire } from '../trusts/wire.js';
import { planApply, planTrusts, readClientFile, type PlanStep, type TrustPlanStep } from './client-file.js';
import { SECRET_WARNING, table, type Output } from './output.js';

interface ApplyFlags extends AdminConnectionOptions {
  file: string;
  dryRun?: boolean;
  prune?: boolean;
  secretsFile?: string;
  json?: boolean;
}

/** Most clients a page of the admin API's list holds. */
const PAGE = 1000;

async function allClients(target: AdminTarget): Promise<ClientWire[]> {
  const all: ClientWire[] = [];
  let after: string | null = null;
  do {
    const query: string = after === null ? `limit=${PAGE}` : `limit=${PAGE}&after=${encodeURIComponent(after)}`;
    const page = (await adminRequest(target, 'GET', `/admin/clients?${query}`)).body as { clients: ClientWire[]; next: string | null };
    all.push(...page.clients);
    after = page.next;
  } while (after !== null);
  return all;
}

async function allTrusts(target: AdminTarget): Promise<TrustWire[]> {
  const all: TrustWire[] = [];
  let after: string | null = null;
  do {
    const query: string = after === null ? `limit=${PAGE}` : `limit=${PAGE}&after=${encodeURIComponent(after)}`;
    const page = (await adminRequest(target, 'GET', `/admin/trusted-issuers?${query}`)).body as { trusted_issuers: TrustWire[]; next: string | null };
    all.push(...page.trusted_issuers);
    after = page.next;
  } while (after !== null);
  return all;
}

/** One step of the whole plan: a trust's or a client's. */
type Step = ({ of: 'trust' } & TrustPlanStep) | ({ of: 'client' } & PlanStep);

const idOf = (s: Step): string => (s.of === 'trust' ? s.name : s.clientId);

/** The order changes are made in: trusts before the clients that name them, client deletions before trust deletions. */
function ordered(trusts: TrustPlanStep[], clients: PlanStep[]): Step[] {
  const t: Step[] = trusts.map((s) => ({ of: 'trust', ...s }));
  const c: Step[] = clients.map((s) => ({ of: 'client', ...s }));
  const isDelete = (s: Step): boolean => s.action === 'delete';
  return [...t.filter((s) => !isDelete(s)), ...c, ...t.filter(isDelete)];
}

const VERBS: Record<PlanStep['action'], string> = {
  create: 'create',
  update: 'update',
  unchanged: 'unchanged',
  delete: 'delete',
  keep: 'not in file',
};

function planLines(all: Step[]): string[] {
  const detail = (s: Step): string => (s.action === 'update' ? s.fields.join(', ') : s.action === 'keep' ? 'kept (--prune deletes it)' : '');
  const trusts = all.filter((s) => s.of === 'trust');
  const steps = all.filter((s) => s.of === 'client');
  const lines = trusts.length === 0 ? [] : table(['ACTION', 'TRUST', 'DETAIL'], trusts.map((s) => [VERBS[s.action], idOf(s), detail(s)]));
  if (steps.length === 0) return [...lines, 'The file names no clients and the server has none.'];
  return [...lines, ...table(['ACTION', 'CLIENT_ID', 'DETAIL'], steps.map((s) => [VERBS[s.action], idOf(s), detail(s)]))];
}

function summary(all: Step[], done: boolean): string {
  const trusts = all.filter((s) => s.of === 'trust');
  const steps = all.filter((s) => s.of === 'client');
  const count = (a: PlanStep['action']): number => steps.filter((s) => s.action === a).length;
  const trustCount = (a: PlanStep['action']): number => trusts.filter((s) => s.action === a).length;
  const trustPart = trusts.length === 0 ? '' : done
    ? `Trusted issuers: ${trustCount('create')} created, ${trustCount('update')} updated, ${trustCount('delete')} deleted, ${trustCount('unchanged')} unchanged${trustCount('keep') > 0 ? `, ${trustCount('keep')} not in the file kept` : ''}. Clients: `
    : `Trusted issuers: ${trustCount('create')} to create, ${trustCount('update')} to update, ${trustCount('delete')} to delete, ${trustCount('unchanged')} unchanged${trustCount('keep') > 0 ? `, ${trustCount('keep')} not in the file kept` : ''}. Clients: `;
  const parts = done
    ? [`${count('create')} created`, `${count('update')} updated`, `${count('delete')} deleted`, `${count('unchanged')} unchanged`]
    : [`${count('create')} to create`, `${count('update')} to update`, `${count('delete')} to delete`, `${count('unchanged')} unchanged`];
  if (count('keep') > 0) parts.push(`${count('keep')} not in the file kept`);
  return `${trustPart}${parts.join(', ')}.`;
}

/** A new file only readable by its owner: never overwrites one (it may hold other secrets). */
async function openSecretsFile(path: string) {
  try {
    return await open(path, 'wx', 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CliError(code === 'EEXIST'
      ? `--secrets-file ${path} exists; name a new file (nothing was applied)`
      : `--secrets-file: cannot create ${path}: ${code ?? (err as Error).message} (nothing was applied)`);
  }
}

export function applyCommand(io: Output): Command {
  return new Command('apply')
    .description('create, update (and with --prune delete) trusted issuers and clients so that the server has what a client file says')
    .requiredOption('-f, --file <path>', 'the client file: JSON or YAML, {"version": 1, "trusted_issuers": [...], "clients": [...]}')
    .option('--dry-run', 'print the plan (create, update with the changed fields, unchanged, delete) and change nothing')
    .option('--prune', 'delete the clients the file does not name (and the trusted issuers, when the file has trusted_issuers)')
    .option('--secrets-file <path>', 'write the secrets of created clients to this new file (mode 0600) instead of printing them')
    .option('--admin-url <url>', 'admin API base URL (env M2M_AUTH_ADMIN_URL; default http://<M2M_AUTH_ADMIN_LISTEN or 127.0.0.1:8081>)')
    .option('--admin-token <token>', 'admin bearer token (env M2M_AUTH_ADMIN_TOKEN; default: read <data-dir>/admin-token)')
    .option('--data-dir <dir>', 'data folder holding admin-token (env M2M_AUTH_DATA_DIR; default ./data)')
    .option('--json', 'print the plan and what was done as JSON')
    .action(async (flags: ApplyFlags) => {
      // The whole file first: a bad entry applies nothing, and needs no server to be found.
      const file = await readClientFile(flags.file);
      const target = resolveAdminTarget(flags);
      const trustSteps = planTrusts(file.trusts, file.trusts === undefined ? [] : await allTrusts(target), flags.prune === true);
      const steps = ordered(trustSteps, planApply(file.clients, await allClients(target), flags.prune === true));
      const changes = steps.filter((s) => s.action === 'create' || s.action === 'update' || s.action === 'delete');

      if (flags.dryRun || changes.length === 0) {
        if (flags.json) io.out(JSON.stringify({ dry_run: flags.dryRun === true, plan: steps.map(stepJson) }, null, 2));
        else {
          planLines(steps).forEach((l) => io.out(l));
          io.out(flags.dryRun ? `Dry run, nothing changed: ${summary(steps, false)}` : `Nothing to change: ${summary(steps, true)}`);
        }
        return;
      }

      const secretsFile = flags.secretsFile === undefined ? undefined : await openSecretsFile(flags.secretsFile);
      const secrets: Array<{ client_id: string; client_secret: string }> = [];
      const applied: Step[] = [];
      let failure: { step: Step; err: unknown } | undefined;
      try {
        for (const step of changes) {
          try {
            const secret = step.of === 'trust' ? await applyTrustStep(target, step) : await applyStep(target, step);
            if (secret !== undefined && step.of === 'client') secrets.push({ client_id: step.clientId, client_secret: secret });
            applied.push(step);
          } catch (err) {
            failure = { step, err };
            break;
          }
        }
      } finally {
        // Secrets of what was created are handed over even when a later step failed.
        if (secretsFile !== undefined) {
          await secretsFile.writeFile(`${JSON.stringify({ clients: secrets }, null, 2)}\n`);
          await secretsFile.close();
        }
      }

      const done = steps.filter((s) => !changes.includes(s) || applied.includes(s));
      if (flags.json) {
        io.out(JSON.stringify({
          dry_run: false,
          plan: steps.map(stepJson),
          applied: applied.map(stepJson),
          ...(failure !== undefined && { failed: stepJson(failure.step) }),
          ...(secretsFile === undefined && { secrets }),
        }, null, 2));
      } else {
        planLines(failure === undefined ? steps : done).forEach((l) => io.out(l));
        if (failure === undefined) io.out(`Applied: ${summary(steps, true)}`);
        for (const s of secretsFile === undefined ? secrets : []) io.out(`client_secret of ${s.client_id}: ${s.client_secret}`);
      }
      if (secrets.length > 0) {
        io.err(secretsFile === undefined
          ? SECRET_WARNING
          : `The secrets of ${secrets.length} client${secrets.length === 1 ? '' : 's'} are in ${flags.secretsFile} (mode 0600).`);
      }
      if (failure !== undefined) {
        const what = (a: PlanStep['action']): string[] => applied.filter((s) => s.action === a).map((s) => (s.of === 'trust' ? `trust ${s.name}` : s.clientId));
        const appliedText = applied.length === 0 ? 'nothing'
          : [['created', what('create')], ['updated', what('update')], ['deleted', what('delete')]]
            .filter(([, ids]) => ids!.length > 0).map(([verb, ids]) => `${verb as string} ${(ids as string[]).join(', ')}`).join('; ');
        const left = changes.slice(changes.indexOf(failure.step)).map((s) => (s.of === 'trust' ? `trust ${s.name}` : s.clientId));
        throw new CliError(`${VERBS[failure.step.action]} ${failure.step.of === 'trust' ? `trust ${failure.step.name}` : failure.step.clientId} failed: ${(failure.err as Error).message}. `
          + `Applied before it: ${appliedText}. Not applied: ${left.join(', ')}.`);
      }
    });
}

function stepJson(s: Step): Record<string, unknown> {
  return { action: s.action, ...(s.of === 'trust' ? { trust: s.name } : { client_id: s.clientId }), ...(s.action === 'update' && { fields: s.fields }) };
}

/** One trust change through the admin API. */
async function applyTrustStep(target: AdminTarget, step: TrustPlanStep): Promise<undefined> {
  const path = `/admin/trusted-issuers/${encodeURIComponent(step.name)}`;
  if (step.action === 'create') await adminRequest(target, 'POST', '/admin/trusted-issuers', step.body);
  else if (step.action === 'update') await adminRequest(target, 'PATCH', path, step.body);
  else if (step.action === 'delete') await adminRequest(target, 'DELETE', path);
  return undefined;
}

/** One change through the admin API; the secret it issued, if any. */
async function applyStep(target: AdminTarget, step: PlanStep): Promise<string | undefined> {
  const path = `/admin/clients/${encodeURIComponent(step.clientId)}`;
  switch (step.action) {
    case 'create': {
      const res = await adminRequest(target, 'POST', '/admin/clients', step.body);
      return (res.body as { client_secret?: string }).client_secret;
    }
    case 'update': {
      // A switch to a secret method issues a secret.
      const res = await adminRequest(target, 'PATCH', path, step.body);
      return (res.body as { client_secret?: string }).client_secret;
    }
    case 'delete':
      await adminRequest(target, 'DELETE', path);
      return undefined;
    default:
      return undefined;
  }
}
