// compose.yaml, the full local stack: it parses; every M2M_AUTH_ variable it gives m2m-auth exists
// in the configuration schema; every file it mounts exists; no two services publish the same host
// port, and every port is published on 127.0.0.1 only; Prometheus scrapes exactly the m2m-auth
// instances' admin listeners and loads the alert rules (checked by promtool where installed);
// Grafana's provisioning points at that Prometheus and at the mounted dashboard.

import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { CONFIG_SCHEMA, loadConfig, parseAddress } from '../../src/config/schema.js';
import { REPOSITORY } from '../helpers/process.js';

interface Service {
  image?: string;
  build?: { context: string; dockerfile?: string } | string;
  command?: string[];
  environment?: Record<string, string | number | boolean> | string[];
  volumes?: string[];
  ports?: string[];
  depends_on?: Record<string, { condition: string }> | string[];
  healthcheck?: { test: string[] };
}

const compose = parse(readFileSync(join(REPOSITORY, 'compose.yaml'), 'utf8'), { merge: true }) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
};
const services = Object.entries(compose.services);
/** The services that run our image (built from this repository). */
const ours = services.filter(([, s]) => s.build !== undefined);
const instances = ours.filter(([, s]) => s.command === undefined || s.command[0] === 'serve');

function env(s: Service): Record<string, string> {
  const e = s.environment ?? {};
  if (Array.isArray(e)) return Object.fromEntries(e.map((kv) => [kv.split('=')[0]!, kv.slice(kv.indexOf('=') + 1)]));
  return Object.fromEntries(Object.entries(e).map(([k, v]) => [k, String(v)]));
}

/** The image's own environment (Dockerfile ENV), which compose's adds to. */
function imageEnv(): Record<string, string> {
  const dockerfile = readFileSync(join(REPOSITORY, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const runStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const out: Record<string, string> = {};
  for (const line of runStage.split('\n').filter((l) => l.startsWith('ENV '))) {
    for (const m of line.slice(4).matchAll(/(\w+)=(\S+)/g)) out[m[1]!] = m[2]!;
  }
  return out;
}

interface Mount {
  service: string;
  source: string;
  target: string;
}

function bindMounts(): Mount[] {
  return services.flatMap(([name, s]) =>
    (s.volumes ?? []).filter((v) => v.startsWith('./') || v.startsWith('/')).map((v) => {
      const [source, target] = v.split(':') as [string, string];
      return { service: name, source, target };
    }));
}

describe('compose.yaml', () => {
  it('has the whole stack: two m2m-auth instances, their migration, PostgreSQL, Redis, Prometheus, Grafana', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['grafana', 'm2m-auth-1', 'm2m-auth-2', 'migrate', 'postgres', 'prometheus', 'redis']);
    expect(instances.map(([n]) => n).sort()).toEqual(['m2m-auth-1', 'm2m-auth-2']);
    for (const [name, s] of ours) {
      expect(s.build, name).toEqual({ context: '.', dockerfile: 'Dockerfile' });
      expect(s.image, name).toBe('m2m-auth:local');
    }
    expect(compose.services.migrate!.command).toEqual(['migrate']);
  });

  it('gives m2m-auth only variables of the configuration schema, with values it accepts', () => {
    const known = new Set(CONFIG_SCHEMA.map((k) => k.env));
    for (const [name, s] of ours) {
      const vars = env(s);
      expect(Object.keys(vars).length, name).toBeGreaterThan(0);
      expect(Object.keys(vars).filter((k) => !known.has(k)), name).toEqual([]);
      // The image's environment plus compose's is a configuration that loads.
      expect(() => loadConfig({ ...imageEnv(), ...vars }), name).not.toThrow();
    }
  });

  it('runs every instance on the same PostgreSQL, Redis and issuer, after the migration, without migrating itself', () => {
    const [first, ...rest] = instances.map(([, s]) => env(s));
    for (const e of [first!, ...rest]) {
      expect(e.M2M_AUTH_DATABASE_URL).toMatch(/^postgres:\/\/[^@]+@postgres:5432\//);
      expect(e.M2M_AUTH_REDIS_URL).toBe('redis://redis:6379');
      expect(e.M2M_AUTH_AUTO_MIGRATE).toBe('false');
      expect(e).toEqual(first);
    }
    expect(env(compose.services.migrate!).M2M_AUTH_DATABASE_URL).toBe(first!.M2M_AUTH_DATABASE_URL);
    for (const [name, s] of instances) {
      expect(s.depends_on, name).toMatchObject({
        migrate: { condition: 'service_completed_successfully' },
        postgres: { condition: 'service_healthy' },
      });
    }
    // PostgreSQL's own user, password and database are the ones in the URL.
    const pg = env(compose.services.postgres!);
    const url = new URL(first!.M2M_AUTH_DATABASE_URL!);
    expect([url.username, url.password, url.pathname.slice(1)]).toEqual([pg.POSTGRES_USER, pg.POSTGRES_PASSWORD, pg.POSTGRES_DB]);
  });

  it('checks each instance\'s readiness on the port it listens on', () => {
    const listen = parseAddress(imageEnv().M2M_AUTH_LISTEN!);
    for (const [name, s] of instances) {
      const port = parseAddress(env(s).M2M_AUTH_LISTEN ?? imageEnv().M2M_AUTH_LISTEN!).port;
      expect(port, name).toBe(listen.port);
      expect(s.healthcheck?.test.join(' '), name).toContain(`http://127.0.0.1:${port}/readyz`);
    }
  });

  it('mounts only files and folders that exist, and declares its named volumes', () => {
    const mounts = bindMounts();
    expect(mounts.length).toBeGreaterThanOrEqual(5);
    for (const m of mounts) expect(existsSync(join(REPOSITORY, m.source)), `${m.service}: ${m.source}`).toBe(true);
    const named = services.flatMap(([, s]) => (s.volumes ?? []).filter((v) => !v.startsWith('./') && !v.startsWith('/')).map((v) => v.split(':')[0]!));
    for (const v of named) expect(Object.keys(compose.volumes ?? {}), v).toContain(v);
  });

  it('publishes no host port twice, and every one on 127.0.0.1 only', () => {
    const published = services.flatMap(([name, s]) => (s.ports ?? []).map((p) => ({ name, p })));
    expect(published.length).toBeGreaterThanOrEqual(6);
    const hostPorts = published.map(({ name, p }) => {
      const m = /^127\.0\.0\.1:(\d+):(\d+)$/.exec(p);
      expect(m, `${name}: ${p}`).not.toBeNull();
      return m![1];
    });
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
    // Each instance publishes its public and its admin listener.
    for (const [name, s] of instances) {
      const inside = (s.ports ?? []).map((p) => Number(p.split(':')[2]));
      expect(inside.sort(), name).toEqual([parseAddress(imageEnv().M2M_AUTH_LISTEN!).port, parseAddress(imageEnv().M2M_AUTH_ADMIN_LISTEN!).port]);
    }
  });
});

describe('Prometheus of compose.yaml', () => {
  const mounts = bindMounts().filter((m) => m.service === 'prometheus');
  const configMount = mounts.find((m) => m.target === '/etc/prometheus/prometheus.yml')!;
  const config = parse(readFileSync(join(REPOSITORY, configMount.source), 'utf8')) as {
    rule_files: string[];
    scrape_configs: Array<{ job_name: string; metrics_path: string; static_configs: Array<{ targets: string[] }> }>;
  };

  it('scrapes the admin listener of every m2m-auth instance as job m2m-auth', () => {
    const adminPort = parseAddress(imageEnv().M2M_AUTH_ADMIN_LISTEN!).port;
    expect(config.scrape_configs).toHaveLength(1);
    const job = config.scrape_configs[0]!;
    expect(job.job_name).toBe('m2m-auth');
    expect(job.metrics_path).toBe('/metrics');
    expect(job.static_configs.flatMap((c) => c.targets).sort()).toEqual(instances.map(([n]) => `${n}:${adminPort}`).sort());
    // InstanceDown's expression names the job.
    expect(readFileSync(join(REPOSITORY, 'deploy/prometheus/alerts.yml'), 'utf8')).toContain('up{job="m2m-auth"}');
  });

  it('loads deploy/prometheus/alerts.yml, mounted beside its configuration', () => {
    const rules = mounts.find((m) => m.source === './deploy/prometheus/alerts.yml');
    expect(rules).toBeDefined();
    for (const file of config.rule_files) {
      expect(posix.resolve(posix.dirname(configMount.target), file)).toBe(rules!.target);
    }
  });

  const PROMTOOL = spawnSync('promtool', ['--version'], { encoding: 'utf8' }).status === 0;
  it.skipIf(!PROMTOOL)('is a configuration Prometheus accepts, rules included (promtool; skipped without it)', () => {
    // The container's /etc/prometheus, rebuilt from the mounts.
    const dir = mkdtempSync(join(tmpdir(), 'm2m-auth-compose-prometheus-'));
    try {
      for (const m of mounts.filter((x) => x.target.startsWith('/etc/prometheus/'))) {
        copyFileSync(join(REPOSITORY, m.source), join(dir, posix.basename(m.target)));
      }
      const r = spawnSync('promtool', ['check', 'config', join(dir, 'prometheus.yml')], { encoding: 'utf8', timeout: 60_000 });
      expect(r.status, `${r.stdout}${r.stderr}`).toBe(0);
      expect(`${r.stdout}${r.stderr}`).toMatch(/SUCCESS: 13 rules found/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Grafana of compose.yaml', () => {
  const mounts = bindMounts().filter((m) => m.service === 'grafana');
  const inContainer = (path: string): string => {
    // The host file behind a path in the container, through a file or a folder mount.
    const m = mounts.find((x) => path === x.target || path.startsWith(`${x.target}/`));
    if (!m) throw new Error(`nothing mounted at ${path}`);
    return join(REPOSITORY, m.source, path.slice(m.target.length));
  };

  it('provisions the Prometheus of the stack as the default data source', () => {
    const file = inContainer('/etc/grafana/provisioning/datasources/prometheus.yml');
    const { datasources } = parse(readFileSync(file, 'utf8')) as { datasources: Array<{ type: string; url: string; isDefault: boolean }> };
    expect(datasources).toHaveLength(1);
    expect(datasources[0]).toMatchObject({ type: 'prometheus', url: 'http://prometheus:9090', isDefault: true });
    expect(compose.services.prometheus!.ports).toContain('127.0.0.1:9090:9090');
  });

  it('provisions deploy/grafana/dashboard.json from the folder it is mounted into', () => {
    const file = inContainer('/etc/grafana/provisioning/dashboards/m2m-auth.yml');
    const { providers } = parse(readFileSync(file, 'utf8')) as { providers: Array<{ type: string; options: { path: string } }> };
    expect(providers).toHaveLength(1);
    expect(providers[0]!.type).toBe('file');
    const dashboard = mounts.find((m) => m.source === './deploy/grafana/dashboard.json')!;
    expect(dirname(dashboard.target)).toBe(providers[0]!.options.path);
    expect(statSync(inContainer(dashboard.target)).isFile()).toBe(true);
    expect(env(compose.services.grafana!).GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(dashboard.target);
  });
});
