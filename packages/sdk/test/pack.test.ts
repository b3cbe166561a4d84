// The SDK installs alone: `npm pack` of this package, installed from the tarball into an empty
// folder, brings nothing but itself and jose, and its two entry points load there.

import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const PACKAGE = fileURLToPath(new URL('..', import.meta.url));
const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';

let work: string;
let app: string;
let tarball: string;

/** Every package folder under node_modules (scoped ones as @scope/name), at any depth. */
function installed(nodeModules: string): string[] {
  if (!existsSync(nodeModules)) return [];
  const out: string[] = [];
  for (const entry of readdirSync(nodeModules, { withFileTypes: true })) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const names = entry.name.startsWith('@')
      ? readdirSync(join(nodeModules, entry.name)).map((n) => `${entry.name}/${n}`)
      : [entry.name];
    for (const name of names) {
      out.push(name);
      out.push(...installed(join(nodeModules, name, 'node_modules')));
    }
  }
  return out.sort();
}

function npm(args: string[], cwd: string): string {
  return execFileSync(NPM, args, { cwd, encoding: 'utf8', timeout: 150_000, env: { ...process.env, npm_config_fund: 'false', npm_config_audit: 'false' } });
}

beforeAll(() => {
  // npm test has built dist/; a run of this file alone builds it if needed.
  if (!existsSync(join(PACKAGE, 'dist/client.js')) || !existsSync(join(PACKAGE, 'dist/verify.js'))) {
    const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
    const r = spawnSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { cwd: PACKAGE, stdio: 'inherit' });
    if (r.status !== 0) throw new Error('build of the SDK failed');
  }
  work = mkdtempSync(join(tmpdir(), 'm2m-sdk-pack-'));
  const packed = JSON.parse(npm(['pack', '--json', '--ignore-scripts', '--pack-destination', work], PACKAGE)) as Array<{ filename: string; files: Array<{ path: string }> }>;
  tarball = join(work, packed[0]!.filename);
  app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'sdk-alone', version: '1.0.0', private: true, type: 'module' }));
  npm(['install', '--prefer-offline', '--no-package-lock', tarball], app);
}, 180_000);

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('@m2m-auth/sdk from its packed tarball, in an empty folder', () => {
  it('brings nothing but itself and jose', () => {
    expect(installed(join(app, 'node_modules'))).toEqual(['@m2m-auth/sdk', 'jose']);
  });

  it('holds the compiled entry points and no source or tests', () => {
    const files = readdirSync(join(app, 'node_modules/@m2m-auth/sdk'), { recursive: true, encoding: 'utf8' });
    expect(files).toEqual(expect.arrayContaining(['package.json', 'README.md', 'dist/client.js', 'dist/client.d.ts', 'dist/verify.js', 'dist/verify.d.ts']));
    expect(files.filter((f) => f.startsWith('src') || f.startsWith('test'))).toEqual([]);
  });

  it('loads @m2m-auth/sdk/client and @m2m-auth/sdk/verify there', () => {
    const script = [
      "const client = await import('@m2m-auth/sdk/client');",
      "const verify = await import('@m2m-auth/sdk/verify');",
      'console.log(JSON.stringify([typeof client.createTokenProvider, typeof client.createAuthFetch, typeof verify.createVerifier, typeof verify.fastifyBearerAuth, typeof verify.expressBearerAuth]));',
    ].join('\n');
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { cwd: app, encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual(['function', 'function', 'function', 'function', 'function']);
  });
});
