// Key-encryption key for signing keys at rest: AES-256-GCM (NIST SP 800-38D) with the kid as
// additional authenticated data, so an encrypted private key only decrypts under the kid it was made for.

import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../ground/errors.js';

export const KEK_BYTES = 32;
export const KEK_FILE_NAME = 'kek';

const FORMAT_VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const BASE64URL = /^[A-Za-z0-9_-]*$/;
const HEX_KEK = /^[0-9a-fA-F]{64}$/;
const BASE64_KEK = /^[A-Za-z0-9+/_-]{43}=?$/;

/**
 * Parses a KEK given as 32 bytes in hex (64 characters) or base64 / base64url (43 or 44
 * characters). `where` names the source in the error; the value itself never appears in it.
 */
export function parseKek(value: string, where = 'M2M_AUTH_KEK'): Buffer {
  const text = value.trim();
  // Hex first: 64 hex digits are also valid base64 (of 48 bytes).
  if (HEX_KEK.test(text)) return Buffer.from(text, 'hex');
  if (BASE64_KEK.test(text)) {
    const bytes = Buffer.from(text, 'base64');
    // Round trip rejects non-canonical encodings (stray trailing bits) that Buffer would accept.
    const canonical = bytes.toString(text.includes('-') || text.includes('_') ? 'base64url' : 'base64');
    if (bytes.length === KEK_BYTES && canonical.replace(/=+$/, '') === text.replace(/=+$/, '')) return bytes;
  }
  throw new ConfigError(
    'KEK_INVALID',
    `${where} must be ${KEK_BYTES} bytes written as base64 (44 characters) or hex (64 characters)`,
  );
}

/**
 * The KEK from configuration, or else from `<dataDir>/kek`, generated on first use (32 random
 * bytes as base64, file mode 0600, folder created 0700). Several processes starting at once
 * on one data folder end up with the same key: the file appears atomically and the loser reads it.
 */
export function loadKek(opts: { kek?: string; dataDir: string }): Buffer {
  if (opts.kek !== undefined && opts.kek !== '') return parseKek(opts.kek);
  const path = join(opts.dataDir, KEK_FILE_NAME);
  const existing = readKekFile(path);
  if (existing) return existing;

  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const kek = randomBytes(KEK_BYTES);
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  writeFileSync(tmp, kek.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  chmodSync(tmp, 0o600);
  try {
    // link() fails when the name exists, so a concurrent first start cannot overwrite a key in use.
    linkSync(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const winner = readKekFile(path);
    if (!winner) throw err;
    return winner;
  } finally {
    unlinkSync(tmp);
  }
  return kek;
}

function readKekFile(path: string): Buffer | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return parseKek(text, `the key-encryption key file ${path}`);
}

function checkKek(kek: Buffer): void {
  if (kek.length !== KEK_BYTES) {
    throw new ConfigError('KEK_INVALID', `the key-encryption key must be ${KEK_BYTES} bytes, got ${kek.length}`);
  }
}

/** Encrypts a PKCS#8 DER private key: `v1.<iv>.<ciphertext>.<tag>`, each part base64url. */
export function encryptPrivateKey(kek: Buffer, pkcs8Der: Buffer, kid: string): string {
  checkKek(kek);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', kek, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(Buffer.from(kid, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(pkcs8Der), cipher.final()]);
  const tag = cipher.getAuthTag();
  return [FORMAT_VERSION, iv.toString('base64url'), ciphertext.toString('base64url'), tag.toString('base64url')].join('.');
}

/**
 * Decrypts what encryptPrivateKey produced for the same kid. Throws ConfigError
 * KEY_DECRYPT_FAILED when the KEK is wrong, the data was altered or belongs to another kid.
 */
export function decryptPrivateKey(kek: Buffer, encrypted: string, kid: string): Buffer {
  checkKek(kek);
  const parts = encrypted.split('.');
  if (parts.length !== 4 || parts[0] !== FORMAT_VERSION || !parts.every((p) => BASE64URL.test(p))) {
    throw new ConfigError('KEY_DECRYPT_FAILED', `signing key ${kid}: the stored private key is not in the ${FORMAT_VERSION} format`);
  }
  const iv = Buffer.from(parts[1] as string, 'base64url');
  const ciphertext = Buffer.from(parts[2] as string, 'base64url');
  const tag = Buffer.from(parts[3] as string, 'base64url');
  if (iv.length !== IV_BYTES || tag.length !== TAG_BYTES || ciphertext.length === 0) {
    throw new ConfigError('KEY_DECRYPT_FAILED', `signing key ${kid}: the stored private key is truncated`);
  }
  try {
    const decipher = createDecipheriv('aes-256-gcm', kek, iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(kid, 'utf8'));
    decipher.setAuthTag(tag);
    return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  } catch (cause) {
    const err = new ConfigError(
      'KEY_DECRYPT_FAILED',
      `signing key ${kid}: cannot decrypt the private key; the key-encryption key (M2M_AUTH_KEK or <data-dir>/kek) ` +
        'is not the one it was encrypted with, or the stored key was altered',
    );
    err.cause = cause;
    throw err;
  }
}

/**
 * A 32-byte key for one purpose (`label`), derived from the KEK with HKDF-SHA256 (RFC 5869): every
 * instance sharing the KEK derives the same key, and the key tells nothing about the KEK.
 */
export function deriveKey(kek: Buffer, label: string): Buffer {
  return Buffer.from(hkdfSync('sha256', kek, Buffer.alloc(0), `m2m-auth ${label}`, KEK_BYTES));
}
