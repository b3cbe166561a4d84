// The configuration schema: defaults, environment parsing, validation, and the reference it generates
// (docs/configuration.md, written by scripts/docs-config.js).

import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CONFIG_SCHEMA, configReference, loadConfig } from '../../src/config/schema.js';
import { ConfigError } from '../../src/ground/errors.js';
import { buildProgram } from '../../src/cli/program.js';
import { ensureBuilt } from '../helpers/process.js';

const PAGE = fileURLToPath(new URL('../../../../docs/configuration.md', import.meta.url));
const SCRIPT = fileURLToPath(new URL('../../scripts/docs-config.js', import.meta.url));

describe('loadConfig', () => {
  it('has safe defaults', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({
      issuer: 'http://localhost:8080', listen: '127.0.0.1:8080', adminListen: '127.0.0.1:8081',
      dataDir: './data', databaseUrl: 'sqlite:./data/m2m-auth.db', signingAlg: 'ES256', tokenTtl: 3600,
      keyRotationInterval: 2592000, bodyLimit: 65536, autoMigrate: true,
    });
    expect(c.adminToken).toBeUndefined();
    expect(c.kek).toBeUndefined();
  });

  it('reads M2M_AUTH_ variables and lets overrides win', () => {
    const c = loadConfig(
      { M2M_AUTH_ISSUER: 'https://auth.example.com/', M2M_AUTH_TOKEN_TTL: '600', M2M_AUTH_SIGNING_ALG: 'EdDSA', M2M_AUTH_AUTO_MIGRATE: 'false' },
      { tokenTtl: '900' },
    );
    expect(c.issuer).toBe('https://auth.example.com');
    expect(c.tokenTtl).toBe(900);
    expect(c.signingAlg).toBe('EdDSA');
    expect(c.autoMigrate).toBe(false);
  });

  it.each([
    [{ M2M_AUTH_ISSUER: 'not a url' }],
    [{ M2M_AUTH_ISSUER: 'https://a.example.com/?q=1' }],
    [{ M2M_AUTH_LISTEN: 'localhost' }],
    [{ M2M_AUTH_TOKEN_TTL: '1h' }],
    [{ M2M_AUTH_TOKEN_TTL: '999999' }],
    [{ M2M_AUTH_SIGNING_ALG: 'HS256' }],
    [{ M2M_AUTH_AUTO_MIGRATE: 'maybe' }],
    [{ M2M_AUTH_ADMIN_TOKEN: 'short' }],
    [{ M2M_AUTH_TOKEN_TTL_MIN: '600', M2M_AUTH_TOKEN_TTL_MAX: '60' }],
  ])('rejects %o with a ConfigError naming the variable', (env) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    try {
      loadConfig(env);
    } catch (err) {
      expect((err as Error).message).toMatch(/M2M_AUTH_/);
    }
  });
});

describe('reference', () => {
  it('the configuration table of docs/configuration.md is the one the schema generates', () => {
    const page = readFileSync(PAGE, 'utf8');
    const block = /<!-- config:start -->\n([\s\S]*?)\n<!-- config:end -->/.exec(page)?.[1];
    expect(block).toBe(configReference());
  });

  it('npm run docs:config finds the page up to date, and writes a stale table again from the schema', () => {
    ensureBuilt();
    expect(spawnSync(process.execPath, [SCRIPT, '--check'], { encoding: 'utf8' }).status).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-docs-config-'));
    try {
      const copy = join(dir, 'configuration.md');
      copyFileSync(PAGE, copy);
      const page = readFileSync(PAGE, 'utf8');
      const stale = page.replace('| `M2M_AUTH_ISSUER` |', '| `M2M_AUTH_ISSUER_OLD` |');
      expect(stale).not.toBe(page);
      writeFileSync(copy, stale);
      const check = spawnSync(process.execPath, [SCRIPT, '--check', '--page', copy], { encoding: 'utf8' });
      expect(check.status).toBe(1);
      expect(check.stderr).toMatch(/differs from the schema/);
      expect(readFileSync(copy, 'utf8')).toBe(stale);
      expect(spawnSync(process.execPath, [SCRIPT, '--page', copy], { encoding: 'utf8' }).status).toBe(0);
      expect(readFileSync(copy, 'utf8')).toBe(page);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('every key has a serve flag', () => {
    const serve = buildProgram().commands.find((c) => c.name() === 'serve');
    expect(serve).toBeDefined();
    const flags = serve!.options.map((o) => o.long);
    for (const spec of CONFIG_SCHEMA) expect(flags).toContain(spec.flag);
  });
});
