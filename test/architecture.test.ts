// The nevers of .dependency-cruiser.cjs catch what they forbid: a small repository of the same
// layout, written here with one violating import per rule, cruised by the same configuration that
// `npm test` runs on the real packages (which must be clean: the depcruise step of npm test).

import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const DEPCRUISE = join(ROOT, 'node_modules/.bin/depcruise');

/** Files of the fixture repository: a clean module per floor, then the violations (file -> source). */
const CLEAN: Record<string, string> = {
  'packages/server/src/ground/errors.ts': 'export const ground = 1;\n',
  'packages/server/src/config/schema.ts': "import { ground } from '../ground/errors.js';\nexport const config = ground;\n",
  'packages/server/src/storage/types.ts': "import { ground } from '../ground/errors.js';\nexport const storage = ground;\n",
  'packages/server/src/sync/sync.ts': "import { storage } from '../storage/types.js';\nexport const sync = storage;\n",
  'packages/server/src/keys/keyring.ts': "import { storage } from '../storage/types.js';\nexport const keys = storage;\n",
  'packages/server/src/observability/events.ts': 'export const observability = 1;\n',
  'packages/server/src/clients/registry.ts': "import { storage } from '../storage/types.js';\nexport const clients = storage;\n",
  'packages/server/src/limits/limits.ts': "import { ground } from '../ground/errors.js';\nexport const limits = ground;\n",
  'packages/server/src/trusts/registry.ts': "import { clients } from '../clients/registry.js';\nexport const trusts = clients;\n",
  'packages/server/src/oauth/token.ts': "import { clients } from '../clients/registry.js';\nimport { keys } from '../keys/keyring.js';\nexport const oauth = clients + keys;\n",
  'packages/server/src/http/app.ts': "import { oauth } from '../oauth/token.js';\nexport const http = oauth;\n",
  'packages/server/src/admin/routes.ts': "import { clients } from '../clients/registry.js';\nexport const admin = clients;\n",
  'packages/server/src/server.ts': "import { http } from './http/app.js';\nimport { admin } from './admin/routes.js';\nexport const server = http + admin;\n",
  'packages/server/src/index.ts': "export { server } from './server.js';\n",
  'packages/server/src/cli/main.ts': "import { server } from '../server.js';\nexport const cli = server;\n",
  'packages/sdk/src/client.ts': 'export const sdk = 1;\n',
  'packages/tools/src/index.ts': 'export const tools = 1;\n',
};

/** Rule name -> the files that break it (added to the clean repository one rule at a time). */
const VIOLATIONS: Record<string, Record<string, string>> = {
  'ground-imports-nothing-of-ours': { 'packages/server/src/ground/bad.ts': "import { oauth } from '../oauth/token.js';\nexport const bad = oauth;\n" },
  'storage-stays-below': { 'packages/server/src/storage/bad.ts': "import { clients } from '../clients/registry.js';\nexport const bad = clients;\n" },
  'keys-below-the-core': { 'packages/server/src/keys/bad.ts': "import { oauth } from '../oauth/token.js';\nexport const bad = oauth;\n" },
  'config-imports-only-ground': { 'packages/server/src/config/bad.ts': "import { limits } from '../limits/limits.js';\nexport const bad = limits;\n" },
  'observability-knows-no-feature': { 'packages/server/src/observability/bad.ts': "import { clients } from '../clients/registry.js';\nexport const bad = clients;\n" },
  'clients-imports-no-oauth': { 'packages/server/src/clients/bad.ts': "import { oauth } from '../oauth/token.js';\nexport const bad = oauth;\n" },
  'trusts-below-the-core': { 'packages/server/src/trusts/bad.ts': "import { oauth } from '../oauth/token.js';\nexport const bad = oauth;\n" },
  'clients-imports-no-trusts': { 'packages/server/src/clients/trusted.ts': "import { trusts } from '../trusts/registry.js';\nexport const bad = trusts;\n" },
  'sync-imports-no-oauth': { 'packages/server/src/sync/bad.ts': "import { oauth } from '../oauth/token.js';\nexport const bad = oauth;\n" },
  'limits-below-the-core': { 'packages/server/src/limits/bad.ts': "import { oauth } from '../oauth/token.js';\nexport const bad = oauth;\n" },
  'federation-below-the-core': { 'packages/server/src/federation/bad.ts': "import { oauth } from '../oauth/token.js';\nexport const bad = oauth;\n" },
  'oauth-knows-no-transport': { 'packages/server/src/oauth/bad.ts': "import { http } from '../http/app.js';\nexport const bad = http;\n" },
  'http-imports-no-storage': { 'packages/server/src/http/bad.ts': "import { storage } from '../storage/types.js';\nexport const bad = storage;\n" },
  'admin-imports-no-public-listener': { 'packages/server/src/admin/bad.ts': "import { http } from '../http/app.js';\nexport const bad = http;\n" },
  'tools-only-from-the-cli': { 'packages/server/src/http/tools.ts': "import { tools } from '../../../tools/src/index.js';\nexport const bad = tools;\n" },
  'server-ts-only-from-cli': { 'packages/server/src/admin/boot.ts': "import { server } from '../server.js';\nexport const bad = server;\n" },
  'cli-is-the-top-floor': { 'packages/server/src/http/cli.ts': "import { cli } from '../cli/main.js';\nexport const bad = cli;\n" },
  'sdk-stands-alone': { 'packages/sdk/src/bad.ts': "import { tools } from '../../tools/src/index.js';\nexport const bad = tools;\n" },
  'tools-import-no-server': { 'packages/tools/src/bad.ts': "import { ground } from '../../server/src/ground/errors.js';\nexport const bad = ground;\n" },
  'no-import-past-exports': { 'packages/server/src/cli/sdk.ts': "import { sdk } from '../../../sdk/src/client.js';\nexport const bad = sdk;\n" },
  'not-to-unresolvable': { 'packages/server/src/oauth/typo.ts': "import { nothing } from './no-such-module.js';\nexport const bad = nothing;\n" },
  'no-circular': {
    'packages/server/src/oauth/cycle.ts': "import { back } from './cycle-back.js';\nexport const cycle = () => back;\n",
    'packages/server/src/oauth/cycle-back.ts': "import { cycle } from './cycle.js';\nexport const back = () => cycle;\n",
  },
  // Folder to folder, with no file cycle: token/a -> grants/b, grants/c -> token/d.
  'no-circular-folders': {
    'packages/server/src/oauth/token/a.ts': "import { b } from '../grants/b.js';\nexport const a = b;\n",
    'packages/server/src/oauth/grants/b.ts': 'export const b = 1;\n',
    'packages/server/src/oauth/grants/c.ts': "import { d } from '../token/d.js';\nexport const c = d;\n",
    'packages/server/src/oauth/token/d.ts': 'export const d = 1;\n',
  },
};

let work: string;

function write(repo: string, files: Record<string, string>): void {
  for (const [path, source] of Object.entries(files)) {
    mkdirSync(dirname(join(repo, path)), { recursive: true });
    writeFileSync(join(repo, path), source);
  }
}

interface Violation {
  from: string;
  rule: string;
}

/** What depcruise reports on `repo`, run with the repository's configuration as npm test runs it. */
function cruise(repo: string): Violation[] {
  let out: string;
  try {
    out = execFileSync(process.execPath, [DEPCRUISE, 'packages', '--config', '.dependency-cruiser.cjs', '--output-type', 'json'], { cwd: repo, encoding: 'utf8', maxBuffer: 16 * 1024 * 1024 });
  } catch (err) {
    // depcruise exits with the number of errors; its report is on stdout all the same.
    out = (err as { stdout?: string }).stdout ?? '';
  }
  const result = JSON.parse(out) as { summary: { violations: Array<{ from: string; rule: { name: string } }> } };
  return result.summary.violations.map((v) => ({ from: v.from, rule: v.rule.name }));
}

function repository(extra: Record<string, string> = {}): string {
  const repo = mkdtempSync(join(work, 'repo-'));
  copyFileSync(join(ROOT, '.dependency-cruiser.cjs'), join(repo, '.dependency-cruiser.cjs'));
  copyFileSync(join(ROOT, 'tsconfig.base.json'), join(repo, 'tsconfig.base.json'));
  write(repo, { ...CLEAN, ...extra });
  return repo;
}

beforeAll(() => {
  work = mkdtempSync(join(tmpdir(), 'm2m-architecture-'));
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('.dependency-cruiser.cjs', () => {
  let broken: Violation[];
  beforeAll(() => {
    // Every rule's violating files in one repository: each rule must be reported from its own files.
    broken = cruise(repository(Object.assign({}, ...Object.values(VIOLATIONS)) as Record<string, string>));
  }, 60_000);

  it('finds nothing wrong in a house that keeps every never', () => {
    expect(cruise(repository())).toEqual([]);
  }, 60_000);

  it.each(Object.entries(VIOLATIONS))('%s fails on its violating import', (rule, files) => {
    const from = broken.filter((v) => v.rule === rule).map((v) => v.from);
    // A file rule names the violating file; the folder rule, its folder.
    const own = Object.keys(files).flatMap((f) => (rule === 'no-circular-folders' ? [dirname(f)] : [f]));
    expect(from.some((f) => own.includes(f)), `${rule} reported from ${JSON.stringify(from)}`).toBe(true);
  });

  it('every rule of the configuration has its violation here', async () => {
    const config = (await import(join(ROOT, '.dependency-cruiser.cjs'))) as { default: { forbidden: Array<{ name: string }> } };
    expect(config.default.forbidden.map((r) => r.name).sort()).toEqual(Object.keys(VIOLATIONS).sort());
  });
});
