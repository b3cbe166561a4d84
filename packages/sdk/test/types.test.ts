// The SDK's public types, checked with the TypeScript compiler API: the usage fixture compiles
// without a diagnostic (its @ts-expect-error lines prove misuses are refused), and misuses written
// here get the diagnostics they should.

import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { beforeAll, describe, expect, it } from 'vitest';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const fixture = join(here, 'fixtures/usage.ts');

function compilerOptions(): ts.CompilerOptions {
  const configPath = join(root, 'tsconfig.json');
  const { config, error } = ts.readConfigFile(configPath, (p) => ts.sys.readFile(p));
  if (error) throw new Error(ts.flattenDiagnosticMessageText(error.messageText, '\n'));
  const parsed = ts.parseJsonConfigFileContent(config, ts.sys, root);
  return { ...parsed.options, noEmit: true };
}

function format(diagnostics: readonly ts.Diagnostic[]): string[] {
  return diagnostics.map((d) => {
    const where = d.file && d.start !== undefined ? `${d.file.fileName}:${d.file.getLineAndCharacterOfPosition(d.start).line + 1}` : '';
    return `${where} TS${d.code}: ${ts.flattenDiagnosticMessageText(d.messageText, ' ')}`;
  });
}

/** Misuses, as virtual files next to the fixture so their relative imports resolve. */
const MISUSES: Record<string, { source: string; expect: RegExp }> = {
  'hmac-verifier.ts': {
    source: `import { createVerifier } from '../../src/verify.js';
createVerifier({ issuer: 'http://localhost:8080', audience: 'https://orders.example.com', algorithms: ['HS256'] });`,
    expect: /TS2(322|820): Type '"HS256"' is not assignable to type '"ES256" \| /,
  },
  'claims-aud.ts': {
    source: `import type { AccessTokenClaims } from '../../src/verify.js';
export function first(claims: AccessTokenClaims): string { return claims.aud; }`,
    expect: /TS2322: Type 'string\[\]' is not assignable to type 'string'/,
  },
  'secret-and-key.ts': {
    source: `import { generateKeyPairSync } from 'node:crypto';
import { createTokenProvider } from '../../src/client.js';
const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
createTokenProvider({ issuer: 'http://localhost:8080', clientId: 'c', clientSecret: 's', privateKey, alg: 'ES256' });`,
    expect: /TS2769|TS2322|TS2345/,
  },
  'get-token-sync.ts': {
    source: `import { createTokenProvider } from '../../src/client.js';
const p = createTokenProvider({ issuer: 'http://localhost:8080', clientId: 'c', clientSecret: 's' });
export const token: string = p.getToken();`,
    expect: /TS2322: Type 'Promise<string>' is not assignable to type 'string'/,
  },
};

describe('SDK public types', () => {
  let options: ts.CompilerOptions;
  beforeAll(() => {
    options = compilerOptions();
  });

  it('compile the usage fixture with zero diagnostics', () => {
    const program = ts.createProgram([fixture], options);
    expect(program.getSourceFile(fixture)).toBeDefined();
    expect(format(ts.getPreEmitDiagnostics(program))).toEqual([]);
  }, 120_000);

  it('refuse each misuse with the expected diagnostic', () => {
    const virtual = new Map(Object.entries(MISUSES).map(([name, m]) => [join(here, 'fixtures', name), m]));
    const host = ts.createCompilerHost(options);
    const { getSourceFile, fileExists, readFile } = host;
    host.fileExists = (f) => virtual.has(f) || fileExists.call(host, f);
    host.readFile = (f) => virtual.get(f)?.source ?? readFile.call(host, f);
    host.getSourceFile = (f, lang, onError, create) => {
      const m = virtual.get(f);
      return m ? ts.createSourceFile(f, m.source, lang) : getSourceFile.call(host, f, lang, onError, create);
    };
    const program = ts.createProgram([...virtual.keys()], options, host);
    for (const [file, m] of virtual) {
      const sourceFile = program.getSourceFile(file);
      expect(sourceFile, file).toBeDefined();
      const found = format([...program.getSyntacticDiagnostics(sourceFile), ...program.getSemanticDiagnostics(sourceFile)]);
      expect(found.length, `${file}: ${found.join('\n')}`).toBe(1);
      expect(found[0]).toMatch(m.expect);
    }
  }, 120_000);
});
