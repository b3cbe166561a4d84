// The configuration schema: defaults, environment parsing, validation, and the README reference.

import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONFIG_SCHEMA, configReference, loadConfig } from '../../src/config/schema.js';
import { ConfigError } from '../../src/ground/errors.js';
import { buildProgram } from '../../src/cli/program.js';

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
  it('the README configuration table is the one the schema generates', () => {
    const readme = readFileSync(new URL('../../../../README.md', import.meta.url), 'utf8');
    const block = /<!-- config:start -->\n([\s\S]*?)\n<!-- config:end -->/.exec(readme)?.[1];
    expect(block).toBe(configReference());
  });

  it('every key has a serve flag', () => {
    const serve = buildProgram().commands.find((c) => c.name() === 'serve');
    expect(serve).toBeDefined();
    const flags = serve!.options.map((o) => o.long);
    for (const spec of CONFIG_SCHEMA) expect(flags).toContain(spec.flag);
  });
});
