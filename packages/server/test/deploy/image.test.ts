// The container image: the real Dockerfile built by buildah (`--isolation chroot`, no registry:
// `--pull=never`) from a stand-in for its base image made here (test/deploy/image-standin.sh,
// cached under ${XDG_CACHE_HOME:-~/.cache}/m2m-auth-ci/ by the hash of that recipe), then the
// server started from the image's filesystem as the image's user, as PID 1, on a read-only root
// with /data bound in: /readyz, a token, non-root, the data in /data, traces exported, a clean
// SIGTERM; and the image's contents: no dev dependencies, tests or sources, its configuration
// (user, volume, ports, environment, labels). Its size is printed (docs/deployment.md quotes it).
//
// Slow (minutes): it runs only with M2M_AUTH_TEST_IMAGE=1, which .ci/run sets in a stage of its
// own, once per CI run. Needs root, buildah, debootstrap, unshare and chroot; skipped with a
// message otherwise.

import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, REPOSITORY, listeningLine, type Listening } from '../helpers/process.js';

const DOCKERFILE = join(REPOSITORY, 'Dockerfile');
const RECIPE = join(REPO, 'test/deploy/image-standin.sh');
const TAG = 'localhost/m2m-auth:test';
const ADMIN_TOKEN = `image-test-admin-token-${randomBytes(16).toString('hex')}`;

const has = (cmd: string, args = ['--version']): boolean => spawnSync(cmd, args, { encoding: 'utf8' }).status === 0;
const isRoot = process.getuid?.() === 0;
const missing = [
  ...(isRoot ? [] : ['root']),
  ...['buildah', 'debootstrap', 'unshare', 'chroot', 'npm'].filter((c) => !has(c)),
];
const ENABLED = process.env.M2M_AUTH_TEST_IMAGE === '1';
const SKIP = !ENABLED
  ? 'skipped: set M2M_AUTH_TEST_IMAGE=1 to build and run the image (minutes; .ci/run does it once per run)'
  : missing.length > 0
    ? `skipped: needs ${missing.join(', ')} (apt-get install buildah debootstrap; .ci/run installs them)`
    : '';
if (SKIP) console.warn(`test/deploy/image.test.ts: ${SKIP}`);

/** A short command, synchronously. */
function run(cmd: string, args: string[], options: { timeout?: number } = {}): string {
  const r: SpawnSyncReturns<string> = spawnSync(cmd, args, {
    encoding: 'utf8', maxBuffer: 256 * 1024 * 1024, timeout: options.timeout ?? 120_000,
  });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}):\n${(r.stdout ?? '').slice(-4000)}\n${(r.stderr ?? '').slice(-4000)}`);
  }
  return r.stdout;
}

/**
 * A long command (minutes), without blocking this process: vitest's worker must keep answering
 * its runner meanwhile (a synchronous wait of minutes ends the run with an RPC timeout).
 */
function runLong(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('error', reject);
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${code ?? signal}):\n${out.slice(-4000)}\n${err.slice(-4000)}`));
    });
  });
}

/** The base image the Dockerfile names: the default of `ARG NODE_IMAGE`. */
function baseImage(): string {
  const m = /^ARG NODE_IMAGE=(\S+)$/m.exec(readFileSync(DOCKERFILE, 'utf8'));
  if (!m) throw new Error('Dockerfile: no ARG NODE_IMAGE=<image> line');
  return m[1]!;
}

/** docker.io/library/node:24-bookworm-slim for node:24-bookworm-slim, as a registry would name it. */
function qualified(image: string): string {
  const first = image.split('/')[0]!;
  if (image.includes('/') && (first.includes('.') || first.includes(':'))) return image;
  return `docker.io/${image.includes('/') ? '' : 'library/'}${image}`;
}

/** The stand-in's root filesystem tarball and its environment, made once per recipe and kept. */
async function standIn(): Promise<{ tar: string; env: string[] }> {
  const cacheDir = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'm2m-auth-ci');
  mkdirSync(cacheDir, { recursive: true });
  const hash = createHash('sha256').update(readFileSync(RECIPE)).update(baseImage()).digest('hex').slice(0, 16);
  const tar = join(cacheDir, `base-image-standin-${hash}.tar`);
  if (!existsSync(tar)) {
    const tmp = `${tar}.${process.pid}.tmp`;
    console.log(`image test: making the stand-in base image (minutes, once per recipe) into ${tar}`);
    await runLong('bash', [RECIPE, tmp], 20 * 60_000);
    renameSync(`${tmp}.env`, `${tar}.env`);
    renameSync(tmp, tar);
  } else {
    console.log(`image test: stand-in base image from the cache: ${tar}`);
  }
  return { tar, env: readFileSync(`${tar}.env`, 'utf8').split('\n').filter(Boolean) };
}

interface ImageConfig {
  User?: string;
  Env?: string[];
  WorkingDir?: string;
  Entrypoint?: string[];
  Cmd?: string[];
  ExposedPorts?: Record<string, object>;
  Volumes?: Record<string, object>;
  Labels?: Record<string, string>;
  StopSignal?: string;
}

interface ImageProcess {
  /** The data folder bound to /data (owned by 1000). */
  data: string;
  output: string;
  /** The process's pid here (1 in its namespace); 0 until it is known. */
  pid: number;
  exited: Promise<number | null>;
  running(): boolean;
}

describe.skipIf(SKIP !== '')('container image (Dockerfile)', () => {
  const processes: ImageProcess[] = [];
  let storage: string;
  let buildah: (args: string[]) => string;
  let config: ImageConfig;
  let mnt: string;
  let size: { disk: number; download: number; appDisk: number; appDownload: number };

  beforeAll(async () => {
    storage = mkdtempSync(join(tmpdir(), 'm2m-auth-image-'));
    // A storage of its own: nothing of the machine's images is read or changed.
    const global = ['--root', join(storage, 'root'), '--runroot', join(storage, 'run'), '--storage-driver', 'overlay'];
    buildah = (args) => run('buildah', [...global, ...args]);

    const base = await standIn();
    const ctr = buildah(['from', 'scratch']).trim();
    const baseMnt = buildah(['mount', ctr]).trim();
    await runLong('tar', ['-xf', base.tar, '-C', baseMnt], 10 * 60_000);
    buildah(['config', ...base.env.flatMap((e) => ['--env', e]), '--cmd', 'node', ctr]);
    buildah(['commit', '--quiet', ctr, qualified(baseImage())]);
    buildah(['rm', ctr]);

    const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
    const started = Date.now();
    await runLong('buildah', [
      ...global, 'build', '--isolation', 'chroot', '--pull=never', '--file', DOCKERFILE, '--tag', TAG,
      '--build-arg', `VERSION=${version}`, '--build-arg', 'REVISION=image-test', REPOSITORY,
    ], 30 * 60_000);
    console.log(`image test: built ${TAG} in ${Math.round((Date.now() - started) / 1000)} s`);

    const inspected = JSON.parse(buildah(['inspect', '--type', 'image', TAG])) as { OCIv1: { config: ImageConfig } };
    config = inspected.OCIv1.config;
    const app = buildah(['from', '--pull=never', TAG]).trim();
    mnt = buildah(['mount', app]).trim();
    // What it weighs: on disk (the unpacked root filesystem) and to download (the layers gzipped,
    // as a registry serves them), the whole image and the part above the base image.
    const oci = join(storage, 'oci');
    await runLong('buildah', [...global, 'push', '--quiet', '--format', 'oci', '--compression-format', 'gzip', TAG, `oci:${oci}`], 10 * 60_000);
    const blob = (digest: string): string => join(oci, 'blobs', ...digest.split(':'));
    const index = JSON.parse(readFileSync(join(oci, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
    const manifest = JSON.parse(readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as { layers: Array<{ size: number }> };
    const baseLayers = (JSON.parse(buildah(['inspect', '--type', 'image', qualified(baseImage())])) as { OCIv1: { rootfs: { diff_ids: string[] } } })
      .OCIv1.rootfs.diff_ids.length;
    const sum = (layers: Array<{ size: number }>): number => layers.reduce((n, l) => n + l.size, 0);
    const du = (path: string): number => Number(run('du', ['-sb', '--one-file-system', path]).split('\t')[0]);
    size = {
      disk: du(mnt), download: sum(manifest.layers),
      appDisk: du(join(mnt, 'app')), appDownload: sum(manifest.layers.slice(baseLayers)),
    };
    const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;
    console.log(`image test: image ${mb(size.disk)} on disk, ${mb(size.download)} to download (stand-in base included); `
      + `above the base: /app ${mb(size.appDisk)} on disk, its layers ${mb(size.appDownload)} gzipped`);
  }, 45 * 60_000);

  afterAll(async () => {
    for (const p of processes) {
      if (p.running() && p.pid > 0) process.kill(p.pid, 'SIGKILL');
      await p.exited;
      rmSync(p.data, { recursive: true, force: true });
    }
    if (!buildah) return;
    for (const args of [['umount', '--all'], ['rm', '--all'], ['rmi', '--all', '--force']]) {
      try {
        buildah(args);
      } catch (err) {
        console.warn(`image test cleanup: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    rmSync(storage, { recursive: true, force: true });
  }, 120_000);

  describe('configuration', () => {
    it('runs as the base image\'s node user (numeric, for runAsNonRoot) from /app, started as node .../cli/main.js serve', () => {
      expect(config.User).toBe('1000:1000');
      expect(config.WorkingDir).toBe('/app');
      expect(config.Entrypoint).toEqual(['node', '/app/dist/cli/main.js']);
      expect(config.Cmd).toEqual(['serve']);
      expect(config.StopSignal).toBe('SIGTERM');
    });

    it('keeps its data in the /data volume and listens on every interface on 8080 and 8081', () => {
      expect(Object.keys(config.Volumes ?? {})).toEqual(['/data']);
      expect(Object.keys(config.ExposedPorts ?? {}).sort()).toEqual(['8080/tcp', '8081/tcp']);
      expect(config.Env).toEqual(expect.arrayContaining([
        'NODE_ENV=production', 'M2M_AUTH_DATA_DIR=/data', 'M2M_AUTH_LISTEN=0.0.0.0:8080', 'M2M_AUTH_ADMIN_LISTEN=0.0.0.0:8081',
      ]));
      const data = statSync(join(mnt, 'data'));
      expect([data.uid, data.gid, data.mode & 0o777]).toEqual([1000, 1000, 0o700]);
    });

    it('carries the OCI labels, the version being package.json\'s', () => {
      const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
      expect(config.Labels).toMatchObject({
        'org.opencontainers.image.title': 'm2m-auth',
        'org.opencontainers.image.version': version,
        'org.opencontainers.image.revision': 'image-test',
        'org.opencontainers.image.licenses': 'Apache-2.0',
        'org.opencontainers.image.base.name': baseImage(),
      });
      expect(config.Labels?.['org.opencontainers.image.description']).toMatch(/OAuth 2\.0/);
      // The Dockerfile's default version is package.json's, so a plain `docker build` is labelled right too.
      expect(readFileSync(DOCKERFILE, 'utf8')).toContain(`ARG VERSION=${version}\n`);
    });
  });

  describe('contents', () => {
    it('holds the compiled server, its production dependencies, package.json and the LICENSE, owned by root', () => {
      expect(readdirSync(join(mnt, 'app')).sort()).toEqual(['LICENSE', 'dist', 'node_modules', 'package.json']);
      for (const f of ['dist/cli/main.js', 'dist/server.js', 'node_modules/fastify/package.json', 'node_modules/better-sqlite3/build/Release/better_sqlite3.node']) {
        expect(existsSync(join(mnt, 'app', f)), f).toBe(true);
      }
      const owners = run('find', [join(mnt, 'app'), '!', '-uid', '0', '-print', '-quit']);
      expect(owners).toBe('');
    });

    it('holds no dev dependency, no test, no TypeScript source, no source map or type declaration', () => {
      const lock = JSON.parse(readFileSync(join(REPOSITORY, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
      const devOnly = Object.entries(lock.packages).filter(([p, v]) => p.startsWith('node_modules/') && v.dev === true).map(([p]) => p);
      expect(devOnly.length).toBeGreaterThan(50);
      expect(devOnly.filter((p) => existsSync(join(mnt, 'app', p)))).toEqual([]);
      for (const name of ['typescript', 'vitest', '@types', 'oauth4webapi', 'openid-client', 'oidc-provider', 'express', 'kubernetes-models', 'esbuild', 'vite']) {
        expect(existsSync(join(mnt, 'app/node_modules', name)), name).toBe(false);
      }
      // No sources or tests anywhere in the app, and nothing of them in the whole image.
      const found = run('find', [join(mnt, 'app'), '-type', 'f', '(', '-name', '*.ts', '-o', '-name', '*.mts', '-o', '-name', '*.cts', '-o', '-name', '*.map',
        '-o', '-name', '*.test.*', '-o', '-name', 'tsconfig*.json', ')', '-print']);
      expect(found.split('\n').filter(Boolean).map((p) => p.slice(mnt.length))).toEqual([]);
      for (const dir of ['app/src', 'app/test', 'app/bench', 'app/examples', 'app/deploy', 'app/.git', 'app/data']) {
        expect(existsSync(join(mnt, dir)), dir).toBe(false);
      }
      // better-sqlite3 keeps its addon, not the SQLite sources and objects of its compile.
      expect(readdirSync(join(mnt, 'app/node_modules/better-sqlite3')).sort()).toEqual(['LICENSE', 'README.md', 'build', 'lib', 'package.json']);
    });

    it('weighs what docs/deployment.md says', () => {
      // The document gives our share, which does not depend on the base image: /app on disk and
      // its layers gzipped, and the whole image as measured on the stand-in base.
      const doc = readFileSync(join(REPOSITORY, 'docs/deployment.md'), 'utf8');
      const quoted = /m2m-auth's own files \(`\/app`\) weigh (\d+) MB on disk, (\d+) MB to download/.exec(doc);
      expect(quoted, 'docs/deployment.md quotes the size of /app').not.toBeNull();
      // Within 20%: dependency updates move it a little; more is a finding to look at and write down.
      const near = (quotedMb: string, bytes: number): boolean => Math.abs(Number(quotedMb) - bytes / 1e6) <= 0.2 * (bytes / 1e6);
      expect(near(quoted![1]!, size.appDisk), `/app weighs ${(size.appDisk / 1e6).toFixed(1)} MB`).toBe(true);
      expect(near(quoted![2]!, size.appDownload), `its layers weigh ${(size.appDownload / 1e6).toFixed(1)} MB gzipped`).toBe(true);
    });
  });

  /**
   * Starts `args` (the image's entrypoint and command by default) from the image's filesystem, in a
   * mount and PID namespace of its own: the image's root read-only with /data (and /proc, /dev)
   * mounted in, then chroot as the image's user with the image's environment and working folder.
   * The process is PID 1 there, as in a container without an init.
   */
  function runFromImage(extraEnv: string[], args = [...config.Entrypoint!, ...config.Cmd!]): ImageProcess {
    const data = mkdtempSync(join(tmpdir(), 'm2m-auth-image-data-'));
    chownSync(data, 1000, 1000);
    const root = mkdtempSync(join(tmpdir(), 'm2m-auth-image-root-'));
    const script = [
      'set -e',
      'mount --make-rprivate /',
      'mount --bind "$1" "$2"',
      'mount -o remount,bind,ro "$2"',
      'mount --bind "$3" "$2/data"',
      'mount -t proc proc "$2/proc"',
      'mount --bind /dev "$2/dev"',
      'root=$2 user=$4 workdir=$5',
      'shift 5',
      'exec chroot --userspec="$user" "$root" /usr/bin/env -i -C "$workdir" "$@"',
    ].join('\n');
    const child = spawn('unshare', [
      '--mount', '--pid', '--fork', '--kill-child', 'sh', '-c', script, 'sh',
      mnt, root, data, config.User!, config.WorkingDir!, ...(config.Env ?? []), ...extraEnv, ...args,
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    const p: ImageProcess = {
      data, output: '', pid: 0,
      exited: new Promise((resolve) => child.once('exit', (code) => {
        rmSync(root, { recursive: true, force: true });
        resolve(code);
      })),
      running: () => child.exitCode === null,
    };
    child.stdout.on('data', (d: Buffer) => (p.output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (p.output += d.toString()));
    child.once('spawn', () => {
      const read = (): void => {
        try {
          p.pid = Number(readFileSync(`/proc/${child.pid}/task/${child.pid}/children`, 'utf8').trim().split(/\s+/)[0]) || 0;
        } catch {
          // unshare has not forked yet
        }
        if (p.pid === 0 && child.exitCode === null) setTimeout(read, 20);
      };
      read();
    });
    processes.push(p);
    return p;
  }

  interface Served {
    server: ImageProcess;
    publicUrl: string;
    adminUrl: string;
  }

  /** `serve` from the image on port 0 (it reports the ports it got), once /readyz answers 200. */
  async function serveFromImage(extraEnv: string[]): Promise<Served> {
    const server = runFromImage([
      'M2M_AUTH_LISTEN=0.0.0.0:0', 'M2M_AUTH_ADMIN_LISTEN=0.0.0.0:0', 'M2M_AUTH_ISSUER=http://127.0.0.1:0',
      `M2M_AUTH_ADMIN_TOKEN=${ADMIN_TOKEN}`, ...extraEnv,
    ]);
    const deadline = Date.now() + 60_000;
    let listening: Listening | undefined;
    for (;;) {
      if (!server.running()) throw new Error(`the server exited (${await server.exited}):\n${server.output}`);
      listening ??= listeningLine(server.output);
      const ready = listening !== undefined && await fetch(`${listening.issuer}/readyz`).then((r) => r.status === 200, () => false);
      if (ready && server.pid > 0) break;
      if (Date.now() > deadline) throw new Error(`not ready in 60 s:\n${server.output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const adminPort = new URL(listening!.adminUrl).port;
    return { server, publicUrl: listening!.issuer, adminUrl: `http://127.0.0.1:${adminPort}` };
  }

  /** A client made through the admin API, a token for it, verified with the JWKS. */
  async function tokenFrom({ publicUrl, adminUrl }: Served): Promise<void> {
    const created = await fetch(`${adminUrl}/admin/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_name: 'image-test', scope: 'orders:read', audience: ['https://orders.example.com'] }),
    });
    expect(created.status).toBe(201);
    const client = (await created.json()) as { client_id: string; client_secret: string };
    const res = await fetch(`${publicUrl}/oauth2/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${client.client_id}:${client.client_secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: 'grant_type=client_credentials',
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { access_token: string; token_type: string };
    expect(body.token_type).toBe('Bearer');
    const { payload } = await jwtVerify(body.access_token, createRemoteJWKSet(new URL(`${publicUrl}/oauth2/jwks`)), {
      issuer: publicUrl, audience: 'https://orders.example.com', typ: 'at+jwt',
    });
    expect(payload.client_id).toBe(client.client_id);
  }

  /** SIGTERM to the server (PID 1 of its namespace): it drains and exits 0, logging each step as JSON. */
  async function stop(server: ImageProcess): Promise<void> {
    process.kill(server.pid, 'SIGTERM');
    const code = await Promise.race([server.exited, new Promise((r) => setTimeout(() => r('still running after 60 s'), 60_000))]);
    expect(code, server.output).toBe(0);
    const lines = server.output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { msg: string });
    expect(lines.map((l) => l.msg)).toEqual(expect.arrayContaining(['m2m-auth listening', 'SIGTERM received: shutting down gracefully', 'shutdown complete']));
    expect(server.output).not.toMatch(/EROFS|read-only file system/i);
  }

  describe('running from the image: the embedded default (SQLite in /data), tracing on', () => {
    let served: Served;
    let collector: Server;
    let traces = 0;

    beforeAll(async () => {
      // An OTLP/HTTP receiver: tracing on proves the pruned OpenTelemetry packages still load.
      collector = createServer((req, res) => {
        if (req.url === '/v1/traces') traces += 1;
        req.resume();
        req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
      });
      await new Promise<void>((resolve) => collector.listen(0, '127.0.0.1', resolve));
      const otlp = `http://127.0.0.1:${(collector.address() as { port: number }).port}`;
      served = await serveFromImage(['M2M_AUTH_OTEL_ENABLED=true', `OTEL_EXPORTER_OTLP_ENDPOINT=${otlp}`]);
    }, 120_000);

    afterAll(() => {
      collector?.close();
    });

    it('answers /readyz and /healthz', async () => {
      expect((await fetch(`${served.publicUrl}/readyz`)).status).toBe(200);
      expect((await fetch(`${served.publicUrl}/healthz`)).status).toBe(200);
    });

    it('issues a token to a client created through the admin API, verifiable with the JWKS', async () => {
      await tokenFrom(served);
    });

    it('runs as uid and gid 1000 with no other group, as PID 1 of its namespace', () => {
      const status = readFileSync(`/proc/${served.server.pid}/status`, 'utf8');
      expect(status).toMatch(/^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
      expect(status).toMatch(/^Gid:\s+1000\s+1000\s+1000\s+1000$/m);
      expect(status).toMatch(/^Groups:\s*(1000\s*)?$/m);
      expect(status).toMatch(/^NSpid:\s+\d+\s+1$/m);
      expect(readFileSync(`/proc/${served.server.pid}/cmdline`, 'utf8').split('\0').filter(Boolean)).toEqual(['node', '/app/dist/cli/main.js', 'serve']);
    });

    it('keeps its database and generated key-encryption key in /data, and writes nowhere else (the root is read-only)', () => {
      const files = readdirSync(served.server.data).sort();
      expect(files).toEqual(expect.arrayContaining(['kek', 'm2m-auth.db']));
      for (const f of files) expect(statSync(join(served.server.data, f)).uid, f).toBe(1000);
      expect(statSync(join(served.server.data, 'kek')).mode & 0o777).toBe(0o600);
    });

    it('drains and exits 0 on SIGTERM, with the shutdown steps logged and the traces exported', async () => {
      await stop(served.server);
      expect(traces).toBeGreaterThan(0);
    }, 90_000);
  });

  const PG_URL = process.env.M2M_AUTH_TEST_DATABASE_URL;
  const REDIS_URL = process.env.M2M_AUTH_TEST_REDIS_URL;
  if (!PG_URL || !REDIS_URL) console.warn('test/deploy/image.test.ts: the PostgreSQL and Redis run is skipped: set M2M_AUTH_TEST_DATABASE_URL and M2M_AUTH_TEST_REDIS_URL');
  describe.skipIf(!PG_URL || !REDIS_URL)('running from the image: PostgreSQL and Redis, migrated first as the Kubernetes init container does', () => {
    const schema = `m2m_image_${randomBytes(6).toString('hex')}`;
    const pgClient = () => new pg.Client({ connectionString: PG_URL });
    let databaseUrl: string;

    beforeAll(async () => {
      const c = pgClient();
      await c.connect();
      await c.query(`CREATE SCHEMA ${schema}`);
      await c.end();
      databaseUrl = `${PG_URL}${PG_URL!.includes('?') ? '&' : '?'}options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    });

    afterAll(async () => {
      const c = pgClient();
      await c.connect();
      await c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
      await c.end();
    });

    it('migrates with `migrate`, then serves tokens without migrating, and stops cleanly', async () => {
      const migrate = runFromImage([`M2M_AUTH_DATABASE_URL=${databaseUrl}`], [...config.Entrypoint!, 'migrate']);
      expect(await migrate.exited, migrate.output).toBe(0);
      expect(migrate.output).toContain('every migration is applied');
      const served = await serveFromImage([
        `M2M_AUTH_DATABASE_URL=${databaseUrl}`, `M2M_AUTH_REDIS_URL=${REDIS_URL}`, `M2M_AUTH_REDIS_KEY_PREFIX=${schema}:`,
        'M2M_AUTH_AUTO_MIGRATE=false', `M2M_AUTH_KEK=${randomBytes(32).toString('base64')}`,
      ]);
      await tokenFrom(served);
      // With the secrets given and the data in PostgreSQL, nothing is written to /data.
      expect(readdirSync(served.server.data)).toEqual([]);
      await stop(served.server);
    }, 180_000);
  });
});
