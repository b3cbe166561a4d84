// loadAdminToken: configured, read from the data folder, or generated there with tight modes.

import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadAdminToken } from '../../src/admin/admin-token.js';
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
    expect(first.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(first.token, 'base64url')).toHaveLength(32);
    expect(statSync(first.path!).mode & 0o777).toBe(0o600);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(readFileSync(first.path!, 'utf8').trim()).toBe(first.token);

    const second = loadAdminToken({ dataDir });
    expect(second).toEqual({ token: first.token, path: first.path, generated: false });
    const other = loadAdminToken({ dataDir: join(root, 'other') });
    expect(other.token).not.toBe(first.token);
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
