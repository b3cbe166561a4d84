// loadAdminToken: configured, read from the data folder, or generated there with tight modes.

import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { loadAdminToken } from '../../src/admin/admin-token.js';
import { bearerChecker } from '../../src/admin/bearer.js';
import { ConfigError } from '../../src/ground/errors.js';

let root: string;

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'm2m-admin-token-'));
});

afterEach(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('loadAdminToken', () => {
  it('uses the configured token and writes nothing', () => {
    const dataDir = join(root, 'data');
    const token = 'c'.repeat(40);
    expect(loadAdminToken({ adminToken: token, dataDir })).toEqual({ token, generated: false });
    expect(existsSync(dataDir)).toBe(false);
  });

  it('refuses a configured token shorter than 32 characters', () => {
    expect(() => loadAdminToken({ adminToken: 'short', dataDir: root })).toThrow(ConfigError);
  });

  it('generates a token into <dataDir>/admin-token (file 0600, new folder 0700), then reads it back', () => {
    const dataDir = join(root, 'nested', 'data');
    const first = loadAdminToken({ dataDir });
    expect(first.generated).toBe(true);
    expect(first.path).toBe(join(dataDir, 'admin-token'));
    // The recognisable prefix (issue 12 part 4), then 256 random bits.
    expect(first.token).toMatch(/^m2m_at_[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(first.token.slice('m2m_at_'.length), 'base64url')).toHaveLength(32);
    expect(statSync(first.path!).mode & 0o777).toBe(0o600);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(readFileSync(first.path!, 'utf8').trim()).toBe(first.token);

    const second = loadAdminToken({ dataDir });
    expect(second).toEqual({ token: first.token, path: first.path, generated: false });
    const other = loadAdminToken({ dataDir: join(root, 'other') });
    expect(other.token).not.toBe(first.token);
  });

  it('a token generated before the prefix keeps working: read back as it is, accepted by the bearer check', () => {
    const legacy = randomBytes(32).toString('base64url');
    writeFileSync(join(root, 'admin-token'), `${legacy}\n`, { mode: 0o600 });
    const loaded = loadAdminToken({ dataDir: root });
    expect(loaded).toEqual({ token: legacy, path: join(root, 'admin-token'), generated: false });
    const check = bearerChecker(loaded.token);
    expect(check(`Bearer ${legacy}`)).toBe('ok');
    expect(check(`Bearer m2m_at_${legacy}`)).toBe('invalid_token');
  });

  it('an empty configured value counts as unset', () => {
    expect(loadAdminToken({ adminToken: '', dataDir: root }).generated).toBe(true);
  });

  it('reads an existing file, trimmed, and refuses one that is too short', () => {
    const token = 't'.repeat(32);
    writeFileSync(join(root, 'admin-token'), `${token}\n`, { mode: 0o600 });
    expect(loadAdminToken({ dataDir: root })).toMatchObject({ token, generated: false });
    writeFileSync(join(root, 'admin-token'), 'short\n');
    expect(() => loadAdminToken({ dataDir: root })).toThrow(/shorter than 32 characters/);
  });
});
