// `npx m2m-auth ...` from the repository root, as the README's walkthrough writes it, runs the
// server package's command: the root declares it as its bin (npx runs a bin of the project it is
// in), so it works on a fresh clone too, where npm has not linked the workspace's bin (its target
// is built after the links are made).

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('npx m2m-auth from the repository root', () => {
  it('runs the server package\'s command', () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, 'packages/server/package.json'), 'utf8')) as { version: string };
    const out = execFileSync('npx', ['--no-install', 'm2m-auth', '--version'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    expect(out.trim()).toBe(version);
    const help = execFileSync('npx', ['--no-install', 'm2m-auth', '--help'], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    for (const command of ['serve', 'migrate', 'clients', 'keys', 'loadtest', 'profile']) expect(help).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
  }, 120_000);
});
