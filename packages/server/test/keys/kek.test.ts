import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { decryptPrivateKey, encryptPrivateKey, loadKek, parseKek } from '../../src/keys/kek.js';
import { ConfigError } from '../../src/ground/errors.js';

const dirs: string[] = [];
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'm2m-kek-'));
  dirs.push(dir);
  return dir;
}
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('loadKek', () => {
  it('reads 32 bytes given as base64, base64url or hex, ignoring surrounding whitespace', () => {
    const bytes = randomBytes(32);
    const dataDir = join(tempDir(), 'unused');
    expect(loadKek({ kek: bytes.toString('base64'), dataDir })).toEqual(bytes);
    expect(loadKek({ kek: bytes.toString('base64').replace(/=$/, ''), dataDir })).toEqual(bytes);
    expect(loadKek({ kek: bytes.toString('base64url'), dataDir })).toEqual(bytes);
    expect(loadKek({ kek: bytes.toString('hex'), dataDir })).toEqual(bytes);
    expect(loadKek({ kek: bytes.toString('hex').toUpperCase(), dataDir })).toEqual(bytes);
    expect(loadKek({ kek: ` ${bytes.toString('base64')}\n`, dataDir })).toEqual(bytes);
    // A configured KEK never touches the data folder.
    expect(() => statSync(dataDir)).toThrow();
  });

  it('reads hex before base64: 64 hex digits are 32 bytes, not the 48 their base64 reading would give', () => {
    const hex = 'ab'.repeat(32);
    expect(parseKek(hex)).toEqual(Buffer.alloc(32, 0xab));
  });

  it.each([
    ['31 bytes of base64', randomBytes(31).toString('base64')],
    ['33 bytes of base64', randomBytes(33).toString('base64')],
    ['31 bytes of hex', randomBytes(31).toString('hex')],
    ['33 bytes of hex', randomBytes(33).toString('hex')],
    ['a passphrase', 'correct horse battery staple'],
    ['hex with a stray character', 'g' + randomBytes(32).toString('hex').slice(1)],
  ])('rejects %s with a ConfigError that does not echo the value', (_name, value) => {
    const err = configError(() => loadKek({ kek: value, dataDir: tempDir() }));
    expect(err.code).toBe('KEK_INVALID');
    expect(err.message).toMatch(/32 bytes.*base64.*hex/);
    expect(err.message).not.toContain(value);
  });

  it('rejects a non-canonical base64 encoding of 32 bytes', () => {
    const text = randomBytes(32).toString('base64url');
    // The last character carries 2 spare bits; flipping one gives the same bytes in a lenient decoder.
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const last = alphabet.indexOf(text.at(-1) as string);
    const variant = text.slice(0, -1) + alphabet[last ^ 1];
    expect(Buffer.from(variant, 'base64url')).toEqual(Buffer.from(text, 'base64url'));
    expect(configError(() => parseKek(variant)).code).toBe('KEK_INVALID');
  });

  it('generates <dataDir>/kek on first use (mode 0600, folder 0700) and reuses it afterwards', () => {
    const dataDir = join(tempDir(), 'nested', 'data');
    const first = loadKek({ dataDir });
    expect(first).toHaveLength(32);
    expect(statSync(join(dataDir, 'kek')).mode & 0o777).toBe(0o600);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(parseKek(readFileSync(join(dataDir, 'kek'), 'utf8'))).toEqual(first);

    const second = loadKek({ dataDir });
    expect(second).toEqual(first);
    // An empty configured value means "not configured" (an empty environment variable).
    expect(loadKek({ kek: '', dataDir })).toEqual(first);
    // Another data folder gets another key.
    expect(loadKek({ dataDir: tempDir() })).not.toEqual(first);
  });

  it('uses an operator-provided kek file and rejects a corrupt one naming the file', () => {
    const dataDir = tempDir();
    const bytes = randomBytes(32);
    writeFileSync(join(dataDir, 'kek'), bytes.toString('hex') + '\n', { mode: 0o600 });
    expect(loadKek({ dataDir })).toEqual(bytes);

    writeFileSync(join(dataDir, 'kek'), 'truncated');
    const err = configError(() => loadKek({ dataDir }));
    expect(err.code).toBe('KEK_INVALID');
    expect(err.message).toContain(join(dataDir, 'kek'));
  });
});

describe('encryptPrivateKey / decryptPrivateKey', () => {
  const kek = randomBytes(32);
  const der = randomBytes(138);
  const kid = 'kid-1';

  it('round-trips in the v1.<iv>.<ciphertext>.<tag> format with a fresh IV each time', () => {
    const a = encryptPrivateKey(kek, der, kid);
    const b = encryptPrivateKey(kek, der, kid);
    expect(a).toMatch(/^v1\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    expect(a).not.toBe(b);
    expect(decryptPrivateKey(kek, a, kid)).toEqual(der);
    expect(decryptPrivateKey(kek, b, kid)).toEqual(der);
    expect(a).not.toContain(der.toString('base64url').slice(0, 20));
  });

  function tamper(encrypted: string, part: number): string {
    const parts = encrypted.split('.');
    const bytes = Buffer.from(parts[part] as string, 'base64url');
    bytes[0] = (bytes[0] as number) ^ 0x01;
    parts[part] = bytes.toString('base64url');
    return parts.join('.');
  }

  it.each([
    ['a wrong KEK', (e: string) => ({ kek: randomBytes(32), encrypted: e, kid })],
    ['another kid (the AAD)', (e: string) => ({ kek, encrypted: e, kid: 'kid-2' })],
    ['a tampered IV', (e: string) => ({ kek, encrypted: tamper(e, 1), kid })],
    ['a tampered ciphertext', (e: string) => ({ kek, encrypted: tamper(e, 2), kid })],
    ['a tampered tag', (e: string) => ({ kek, encrypted: tamper(e, 3), kid })],
  ])('fails with KEY_DECRYPT_FAILED on %s', (_name, make) => {
    const args = make(encryptPrivateKey(kek, der, kid));
    const err = configError(() => decryptPrivateKey(args.kek, args.encrypted, args.kid));
    expect(err.code).toBe('KEY_DECRYPT_FAILED');
    expect(err.message).toMatch(/key-encryption key/);
  });

  it.each([
    ['an unknown version', (e: string) => 'v2' + e.slice(2)],
    ['a missing part', (e: string) => e.split('.').slice(0, 3).join('.')],
    ['a truncated tag', (e: string) => e.slice(0, -4)],
    ['characters outside base64url', (e: string) => e.replace('.', '.+')],
  ])('fails with KEY_DECRYPT_FAILED on %s', (_name, mangle) => {
    const err = configError(() => decryptPrivateKey(kek, mangle(encryptPrivateKey(kek, der, kid)), kid));
    expect(err.code).toBe('KEY_DECRYPT_FAILED');
  });

  it('refuses a KEK that is not 32 bytes', () => {
    expect(configError(() => encryptPrivateKey(randomBytes(16), der, kid)).code).toBe('KEK_INVALID');
  });
});
