// `m2m-auth loadtest` (concurrent clients against a server, every answer checked) and
// `m2m-auth profile` (the load test against a server of its own, with a report folder). The load
// generator and the profiler are the tools package, loaded only when one of these runs; when they
// need a server, they start this command's own `serve` in a child process.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
// Types only: the tools package itself is loaded when a command that needs it runs.
import type { LoadTestProgress, ServerProcess } from '@m2m-auth/tools';
import { SIGNING_ALGORITHMS, type SigningAlgorithm } from '../ground/names.js';
import { CliError, resolveAdminTarget } from './admin-client.js';
import type { Output } from './output.js';
import { wholeNumber } from './flags.js';

interface LoadFlags {
  clients: number;
  requests: number;
  clientCount: number;
  mode: 'token' | 'introspect' | 'mixed';
  timeout: number;
  durationLimit: number;
  signingAlg?: SigningAlgorithm;
  json?: boolean;
  progress: boolean;
}

interface LoadtestFlags extends LoadFlags {
  url?: string;
  clientId?: string;
  clientSecret?: string;
  adminUrl?: string;
  adminToken?: string;
  dataDir?: string;
  audience?: string;
}

interface ProfileFlags extends LoadFlags {
  out?: string;
  cpuInterval: number;
  url?: string;
  adminUrl?: string;
  adminToken?: string;
  dataDir?: string;
  databaseUrl?: string;
  pin: boolean;
  alertRules?: string;
  compare?: string[];
  phaseSeconds: number;
  openLoopFraction: number;
}

function withLoadOptions(cmd: Command): Command {
  return cmd
    .option('--clients <n>', 'concurrent virtual clients, one keep-alive connection each', wholeNumber(1, 100_000), 1000)
    .option('--requests <n>', 'sequential requests per virtual client', wholeNumber(1, 10_000_000), 100)
    .option('--client-count <n>', 'distinct OAuth clients to register and spread over the virtual clients', wholeNumber(1, 1000), 10)
    .addOption(new Option('--mode <mode>', 'token: client credentials grants; introspect: RFC 7662 introspection; mixed: alternate').choices(['token', 'introspect', 'mixed']).default('token'))
    .option('--timeout <ms>', 'per-request timeout in milliseconds', wholeNumber(1, 3_600_000), 10_000)
    .option('--duration-limit <s>', 'start no request after this many seconds', wholeNumber(1, 86_400), 120)
    .addOption(new Option('--signing-alg <alg>', 'signing algorithm of the server the command starts (no --url)').choices(SIGNING_ALGORITHMS))
    .option('--no-progress', 'no progress on stderr')
    .option('--json', 'print the result as JSON');
}

/** How the tools start a server: this very command (the compiled CLI's entry, beside this module). */
function serverCommand(): string[] {
  return [process.execPath, fileURLToPath(new URL('./main.js', import.meta.url))];
}

/** A fraction above 0 and at most 1. */
function fraction(raw: string): number {
  const x = Number(raw);
  if (!(x > 0 && x <= 1)) throw new InvalidArgumentError('a number above 0 and at most 1, e.g. 0.5');
  return x;
}

/** This build: the package version, and the git commit when run from a clone ("+" when it has changes). */
function buildVersion(): string {
  let version: string | undefined;
  try {
    version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version?: string }).version;
  } catch {
    // a build outside the package (tests)
  }
  const cwd = fileURLToPath(new URL('.', import.meta.url));
  const head = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd, encoding: 'utf8' });
  if (head.status !== 0) return version ?? 'unknown';
  const dirty = spawnSync('git', ['status', '--porcelain', '--untracked-files=no'], { cwd, encoding: 'utf8' }).stdout.trim() !== '';
  return `${version ?? 'unknown'} (git ${head.stdout.trim()}${dirty ? '+' : ''})`;
}

/** The repository's alert rules, when this command runs from a clone of it: deploy/prometheus/alerts.yml in a folder above. */
function defaultAlertRules(): string | undefined {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const file = join(dir, 'deploy', 'prometheus', 'alerts.yml');
    if (existsSync(file)) return file;
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

/** The load test's options from the flags both commands share. */
function loadOptions(flags: LoadFlags) {
  return {
    clients: flags.clients,
    requests: flags.requests,
    clientCount: flags.clientCount,
    mode: flags.mode,
    timeoutMs: flags.timeout,
    durationLimitMs: flags.durationLimit * 1000,
  };
}

/** Progress on stderr: a bar redrawn in place on a terminal, a plain line every 5 s otherwise. */
async function progressReporter(enabled: boolean): Promise<{ update(p: LoadTestProgress): void; done(): void }> {
  const { progressLine } = await import('@m2m-auth/tools');
  const tty = process.stderr.isTTY === true;
  let lastPlain = 0;
  let drawn = false;
  return {
    update(p) {
      if (!enabled) return;
      if (tty) {
        const width = Math.max(10, Math.min(40, (process.stderr.columns ?? 80) - 60));
        process.stderr.write(`\r${progressLine(p, width)}\u001b[K`);
        drawn = true;
      } else if (p.elapsedMs - lastPlain >= 5000 || p.completed === p.planned) {
        lastPlain = p.elapsedMs;
        process.stderr.write(`${progressLine(p, 0)}\n`);
      }
    },
    done() {
      if (drawn) process.stderr.write('\n');
      drawn = false;
    },
  };
}

/** An AbortSignal for Ctrl-C: the first stops sending (results are still printed), the second exits. */
function interruptSignal(io: Output): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
  const onSigint = (): void => {
    if (controller.signal.aborted) process.exit(130);
    io.err('Stopping: waiting for the requests in flight (Ctrl-C again to quit now)');
    controller.abort();
  };
  process.on('SIGINT', onSigint);
  return { signal: controller.signal, dispose: () => process.off('SIGINT', onSigint) };
}

export function loadtestCommand(io: Output): Command {
  const cmd = new Command('loadtest').description(
    'run concurrent OAuth clients against a server and check every answer; without --url, against a server it starts (SQLite in memory)',
  );
  cmd
    .option('--url <issuer>', 'issuer URL of the server under test; the only origin the load goes to (default: a server it starts)')
    .option('--client-id <id>', 'a registered client (client_secret_basic) to send the load as')
    .option('--client-secret <secret>', 'its secret (or env M2M_AUTH_LOADTEST_CLIENT_SECRET)')
    .option('--admin-url <url>', 'admin API to register --client-count load-test clients on (deleted afterwards)')
    .option('--admin-token <token>', 'admin bearer token (env M2M_AUTH_ADMIN_TOKEN; default: read <data-dir>/admin-token)')
    .option('--data-dir <dir>', 'data folder holding admin-token')
    .option('--audience <uri>', 'resource to ask tokens for and to expect in aud');
  withLoadOptions(cmd).action(async (flags: LoadtestFlags) => {
    const { runLoadTest, resultLines } = await import('@m2m-auth/tools');
    const secret = flags.clientSecret ?? (process.env.M2M_AUTH_LOADTEST_CLIENT_SECRET || undefined);
    if (flags.url === undefined && (flags.clientId !== undefined || flags.adminUrl !== undefined)) {
      throw new CliError('--client-id and --admin-url need --url (without --url the load test starts its own server)');
    }
    if (flags.url !== undefined && flags.signingAlg !== undefined) throw new CliError('--signing-alg applies only to the server the command starts (no --url)');
    if (flags.clientId !== undefined && secret === undefined) throw new CliError('--client-id needs --client-secret (or M2M_AUTH_LOADTEST_CLIENT_SECRET)');
    if (flags.clientId !== undefined && flags.adminUrl !== undefined) throw new CliError('Use either --client-id or --admin-url, not both');
    if (flags.url !== undefined && flags.clientId === undefined && flags.adminUrl === undefined) {
      throw new CliError('With --url, give --client-id and --client-secret, or --admin-url (and the admin token) to register load-test clients');
    }

    let own: ServerProcess | undefined;
    const interrupt = interruptSignal(io);
    const progress = await progressReporter(flags.progress);
    try {
      let url: string;
      let access: { credentials: Array<{ clientId: string; clientSecret: string }> } | { admin: { url: string; token: string } };
      if (flags.url === undefined) {
        const { startServerProcess } = await import('@m2m-auth/tools');
        if (flags.progress) io.err('Starting a server (SQLite in memory, ephemeral ports)...');
        own = await startServerProcess({ command: serverCommand(), ...(flags.signingAlg && { env: { M2M_AUTH_SIGNING_ALG: flags.signingAlg } }) });
        url = own.issuer;
        access = { admin: { url: own.adminUrl, token: own.adminToken } };
      } else if (flags.clientId !== undefined) {
        url = flags.url;
        access = { credentials: [{ clientId: flags.clientId, clientSecret: secret! }] };
      } else {
        url = flags.url;
        const target = resolveAdminTarget({
          ...(flags.adminUrl !== undefined && { adminUrl: flags.adminUrl }),
          ...(flags.adminToken !== undefined && { adminToken: flags.adminToken }),
          ...(flags.dataDir !== undefined && { dataDir: flags.dataDir }),
        });
        access = { admin: target };
      }
      let result;
      try {
        result = await runLoadTest({
          url,
          ...access,
          ...loadOptions(flags),
          ...(flags.audience !== undefined && { audience: flags.audience }),
          onProgress: (p) => progress.update(p),
          signal: interrupt.signal,
        });
      } catch (err) {
        if (err instanceof Error && err.name === 'LoadTestError') throw new CliError(err.message);
        throw err;
      } finally {
        progress.done();
      }
      if (flags.json) io.out(JSON.stringify(result, null, 2));
      else resultLines(result, own ? `${url} (own server)` : url).forEach((l) => io.out(l));
      if (result.failures > 0) throw new CliError(`${result.failures} of ${result.totalRequests} requests failed`);
    } finally {
      interrupt.dispose();
      await own?.close();
    }
  });
  return cmd;
}

export function profileCommand(io: Output): Command {
  const cmd = new Command('profile').description(
    'profile a server it starts, under the load test (at most 60 s of it); writes report.md, report.html and CPU and heap profiles (pprof, DevTools) to a folder',
  );
  cmd
    .option('--out <dir>', 'report folder (default ./profile-report-<timestamp>)')
    .option('--cpu-interval <us>', 'CPU profiler sampling interval in microseconds', wholeNumber(50, 100_000), 1000)
    .option('--url <issuer>', 'profile a server already running (started with M2M_AUTH_PPROF=true) at this issuer URL; needs its admin listener')
    .option('--admin-url <url>', 'with --url: that server\'s admin listener (env M2M_AUTH_ADMIN_URL; default from M2M_AUTH_ADMIN_LISTEN)')
    .option('--admin-token <token>', 'with --url: its admin bearer token (env M2M_AUTH_ADMIN_TOKEN; default: read <data-dir>/admin-token)')
    .option('--data-dir <dir>', 'with --url: data folder holding admin-token')
    .option('--database-url <url>', 'database of the server the command starts (default: SQLite in memory), e.g. postgres://...')
    .option('--no-pin', 'do not pin the server and the load generator to separate CPUs')
    .option('--phase-seconds <s>', 'length of the max-rate and the open-loop phases after the profiled load (0: none)', wholeNumber(0, 60), 5)
    .option('--open-loop-fraction <f>', 'rate of the open-loop phase as a fraction of the maximum rate found', fraction, 0.5)
    .option('--compare <dirs...>', 'compare two report folders (A B) instead of running: the KPIs side by side with the change from A to B')
    .option('--alert-rules <file>', 'Prometheus alert rules to evaluate against the run (default: deploy/prometheus/alerts.yml of this repository, when there)');
  withLoadOptions(cmd).action(async (flags: ProfileFlags) => {
    if (flags.compare !== undefined) {
      if (flags.compare.length !== 2) throw new CliError('--compare takes two report folders: --compare A B');
      const { compareResults, comparisonLines, readResults } = await import('@m2m-auth/tools');
      const [a, b] = flags.compare as [string, string];
      let comparison;
      try {
        comparison = compareResults(readResults(a), readResults(b), { a, b });
      } catch (err) {
        if (err instanceof Error && err.name === 'CompareError') throw new CliError(err.message);
        throw err;
      }
      if (flags.json) io.out(JSON.stringify(comparison, null, 2));
      else comparisonLines(comparison).forEach((l) => io.out(l));
      return;
    }
    if (flags.url === undefined && (flags.adminUrl !== undefined || flags.adminToken !== undefined || flags.dataDir !== undefined)) {
      throw new CliError('--admin-url, --admin-token and --data-dir go with --url (without --url the command starts its own server)');
    }
    if (flags.url !== undefined && flags.databaseUrl !== undefined) throw new CliError('--database-url applies only to the server the command starts (no --url)');
    if (flags.url !== undefined && flags.signingAlg !== undefined) throw new CliError('--signing-alg applies only to the server the command starts (no --url)');
    const target = flags.url === undefined ? undefined : {
      url: flags.url,
      ...((t) => ({ adminUrl: t.url, adminToken: t.token }))(resolveAdminTarget({
        ...(flags.adminUrl !== undefined && { adminUrl: flags.adminUrl }),
        ...(flags.adminToken !== undefined && { adminToken: flags.adminToken }),
        ...(flags.dataDir !== undefined && { dataDir: flags.dataDir }),
      })),
    };
    const alertRules = flags.alertRules ?? defaultAlertRules();
    if (alertRules !== undefined && !existsSync(alertRules)) throw new CliError(`--alert-rules: ${alertRules} does not exist`);
    const { runProfile, formatInt, formatMs } = await import('@m2m-auth/tools');
    const interrupt = interruptSignal(io);
    const progress = await progressReporter(flags.progress);
    let result;
    try {
      result = await runProfile({
        ...(target === undefined ? { command: serverCommand() } : { target }),
        ...(flags.databaseUrl !== undefined && { databaseUrl: flags.databaseUrl }),
        pin: flags.pin,
        version: buildVersion(),
        phaseMs: flags.phaseSeconds * 1000,
        openLoopFraction: flags.openLoopFraction,
        ...(alertRules !== undefined && { alertRulesFile: alertRules }),
        ...(flags.out !== undefined && { out: flags.out }),
        ...loadOptions(flags),
        cpuIntervalUs: flags.cpuInterval,
        ...(flags.signingAlg !== undefined && { signingAlg: flags.signingAlg }),
        onProgress: (p) => progress.update(p),
        onPhase: (phase) => {
          progress.done();
          if (flags.progress) io.err(`profile: ${phase}`);
        },
        signal: interrupt.signal,
      });
    } catch (err) {
      if (err instanceof Error && (err.name === 'LoadTestError' || err.name === 'ProfileError')) throw new CliError(err.message);
      throw err;
    } finally {
      progress.done();
      interrupt.dispose();
    }
    const { data, outDir } = result;
    const l = data.load;
    if (flags.json) {
      io.out(JSON.stringify(data, null, 2));
    } else {
      io.out(`Profile report written to ${outDir}`);
      io.out(`  report.html  report.md  ${data.files.map((f) => f.name).join('  ')}`);
      io.out(`  ${formatInt(l.totalRequests)} requests in ${(l.durationMs / 1000).toFixed(2)} s (${formatInt(l.requestsPerSecond)} req/s), ${formatInt(l.failures)} failures, p50 ${formatMs(l.latencyUs.p50)}, p99 ${formatMs(l.latencyUs.p99)}`);
      io.out(`  KPIs met: ${data.kpis.filter((k) => k.met).length} of ${data.kpis.length}; active handles ${data.resources.leaked.length === 0 ? 'back to the baseline' : 'NOT back to the baseline'}`);
    }
    const failed = data.phases.reduce((a, p) => a + p.load.failures, 0);
    const sent = data.phases.reduce((a, p) => a + p.load.totalRequests, 0);
    if (failed > 0) throw new CliError(`${failed} of ${sent} requests failed (see ${outDir}/report.md)`);
  });
  return cmd;
}
