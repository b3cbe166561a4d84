// The admin API bearer token (RFC 6750 §2.1): configured, or generated once into the data folder.

import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ADMIN_TOKEN_PREFIX } from '../ground/client-id.js';
import { ConfigError } from '../ground/errors.js';

export const ADMIN_TOKEN_FILE = 'admin-token';
export const MIN_ADMIN_TOKEN_LENGTH = 32;

export interface LoadedAdminToken {
  token: string;
  /** The file the token came from or went to; absent when it was configured. */
  path?: string;
  /** True when this call created the token. */
  generated: boolean;
}

/** The token file of a data folder. */
export function adminTokenPath(dataDir: string): string {
  return join(dataDir, ADMIN_TOKEN_FILE);
}

function readTokenFile(path: string): string {
  const token = readFileSync(path, 'utf8').trim();
  if (token.length < MIN_ADMIN_TOKEN_LENGTH) {
    throw new ConfigError('ADMIN_TOKEN_INVALID', `The admin token in ${path} is shorter than ${MIN_ADMIN_TOKEN_LENGTH} characters; delete the file to generate a new one`);
  }
  return token;
}

/**
 * The configured token, else the one in `<dataDir>/admin-token` (whatever its form: a token
 * generated before the prefix keeps working), else a new one (`m2m_at_` and 32 random bytes as
 * base64url, a shape secret scanners and the log lines' masking recognise) written there with
 * mode 0600 in a folder created with mode 0700. The caller may log the path; it must never log
 * the token.
 */
export function loadAdminToken(opts: { adminToken?: string | undefined; dataDir: string }): LoadedAdminToken {
  if (opts.adminToken !== undefined && opts.adminToken !== '') {
    if (opts.adminToken.length < MIN_ADMIN_TOKEN_LENGTH) {
      throw new ConfigError('ADMIN_TOKEN_INVALID', `The admin token must be at least ${MIN_ADMIN_TOKEN_LENGTH} characters`);
    }
    return { token: opts.adminToken, generated: false };
  }
  const path = adminTokenPath(opts.dataDir);
  try {
    return { token: readTokenFile(path), path, generated: false };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
  const token = ADMIN_TOKEN_PREFIX + randomBytes(32).toString('base64url');
  try {
    // 'wx' fails if another process created the file meanwhile; then that one's token wins.
    writeFileSync(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return { token: readTokenFile(path), path, generated: false };
    throw err;
  }
  return { token, path, generated: true };
}
