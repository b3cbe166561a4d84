// `runProfile` against a server already running (--url): refused in one line naming M2M_AUTH_PPROF
// when the server's pprof routes are off, or when its admin token is wrong; profiled through its
// admin listener when they are on.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProfileError, runProfile, serverCodeRootFromProfile } from '../../src/profiling/profile-run.js';
import type { CpuProfile } from '../../src/profiling/devtools-profile.js';
import type { ServerProcess } from '../../src/loadtest/server-process.js';
import { startServer } from '../helpers/server.js';

let off: ServerProcess;
let on: ServerProcess;
let work: string;

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), 'm2m-profile-target-'));
  [off, on] = await Promise.all([startServer(), startServer({ M2M_AUTH_PPROF: 'true' })]);
}, 60_000);

afterAll(async () => {
  await Promise.all([off?.close(), on?.close()]);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('a server elsewhere', () => {
  it('with its pprof routes off: a one-line error naming M2M_AUTH_PPROF, before any load', async () => {
    const phases: string[] = [];
    const err = await runProfile({
      target: { url: off.issuer, adminUrl: off.adminUrl, adminToken: off.adminToken },
      out: '/nonexistent/never-written', clients: 1, requests: 1, onPhase: (p) => phases.push(p),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProfileError);
    const message = (err as Error).message;
    expect(message).toContain('M2M_AUTH_PPROF');
    expect(message).not.toContain('\n');
    expect(phases.some((p) => p.includes('load'))).toBe(false);
  });

  it('with a wrong admin token: refused, the token not repeated', async () => {
    const wrong = `${on.adminToken}x`;
    const err = await runProfile({
      target: { url: on.issuer, adminUrl: on.adminUrl, adminToken: wrong },
      out: '/nonexistent/never-written', clients: 1, requests: 1,
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ProfileError);
    expect((err as Error).message).toMatch(/refused the admin token/);
    expect((err as Error).message).not.toContain(wrong);
  });

  it('with its pprof routes on: profiled through its admin listener, its own frames attributed', async () => {
    const { data } = await runProfile({
      target: { url: on.issuer, adminUrl: on.adminUrl, adminToken: on.adminToken },
      out: join(work, 'report'), clients: 4, requests: 5, clientCount: 2, baselineMs: 100, phaseMs: 0,
    });
    expect(data.load).toMatchObject({ totalRequests: 20, failures: 0 });
    expect(data.server.startedByProfiler).toBe(false);
    expect(data.server.pid).toBeUndefined();
    expect(data.server.cpuSeconds).toBeGreaterThan(0);
    // The server's code folder, found from its frames, is what attributes its modules to components.
    const profile = JSON.parse(readFileSync(join(work, 'report', 'cpu.cpuprofile'), 'utf8')) as CpuProfile;
    expect(serverCodeRootFromProfile(profile)).toMatch(/\/packages\/server\/dist\/$/);
  }, 60_000);
});
