// deploy/kubernetes, the kustomize base: rendered by kustomize (`kubectl kustomize`, or a
// standalone `kustomize build`; skipped with a message when neither is installed), every object
// validated against the Kubernetes schemas (kubernetes-models) and the Prometheus Operator's
// (@kubernetes-models/prometheus-operator), which a broken manifest fails; then what the base
// promises: probes, shutdown timing, resources, security context, migrations, Services and the
// admin NetworkPolicy, PodDisruptionBudget, HorizontalPodAutoscaler, the ServiceMonitor's job name,
// alert rules equal to deploy/prometheus/alerts.yml, and only variables of the configuration schema.
// The schemas do not reject unknown fields, so the fields that matter are asserted by name below.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { CONFIG_SCHEMA, loadConfig, parseAddress } from '../../src/config/schema.js';
import { parseKek } from '../../src/keys/kek.js';
import { REPOSITORY } from '../helpers/process.js';

const BASE = join(REPOSITORY, 'deploy/kubernetes');

/** The kustomize at hand: kubectl's built-in one, else a standalone kustomize. */
function kustomizeCommand(): string[] | undefined {
  if (spawnSync('kubectl', ['kustomize', '--help'], { encoding: 'utf8' }).status === 0) return ['kubectl', 'kustomize'];
  if (spawnSync('kustomize', ['version'], { encoding: 'utf8' }).status === 0) return ['kustomize', 'build'];
  return undefined;
}
const KUSTOMIZE = kustomizeCommand();
if (!KUSTOMIZE) console.warn('test/deploy/kubernetes.test.ts: skipped: neither kubectl (with kustomize) nor kustomize was found');

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;

/** A model class of each kind the base may contain: validate() checks an object against the schema. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'autoscaling/v2/HorizontalPodAutoscaler': HorizontalPodAutoscaler,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
};

function validate(o: Obj): void {
  const Model = MODELS[`${o.apiVersion}/${o.kind}`];
  if (!Model) throw new Error(`no schema for ${o.apiVersion} ${o.kind}`);
  new Model(o).validate();
}

/** The image's environment (Dockerfile ENV of the last stage). */
function imageEnv(): Record<string, string> {
  const dockerfile = readFileSync(join(REPOSITORY, 'Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const runStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '));
  const out: Record<string, string> = {};
  for (const line of runStage.split('\n').filter((l) => l.startsWith('ENV '))) {
    for (const m of line.slice(4).matchAll(/(\w+)=(\S+)/g)) out[m[1]!] = m[2]!;
  }
  return out;
}

const matches = (selector: Record<string, string>, labels: Record<string, string>): boolean =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

describe.skipIf(!KUSTOMIZE)('deploy/kubernetes (kustomize base)', () => {
  let objects: Obj[];
  const one = (kind: string, name?: string): Obj => {
    const found = objects.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
    expect(found, `${kind} ${name ?? ''}`).toHaveLength(1);
    return found[0]!;
  };
  let deployment: Obj;
  let pod: Obj;
  let server: Obj;
  let config: Record<string, string>;
  let secret: Record<string, string>;

  beforeAll(() => {
    const r = spawnSync(KUSTOMIZE![0]!, [...KUSTOMIZE!.slice(1), BASE], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    objects = parseAllDocuments(r.stdout).map((d) => d.toJS() as Obj).filter(Boolean);
    deployment = one('Deployment', 'm2m-auth');
    pod = deployment.spec.template;
    server = pod.spec.containers.find((c: Obj) => c.name === 'm2m-auth');
    config = one('ConfigMap', 'm2m-auth').data;
    secret = one('Secret', 'm2m-auth').stringData;
  });

  it('renders the objects of a production deployment', () => {
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual([
      'ConfigMap/m2m-auth', 'Deployment/m2m-auth', 'HorizontalPodAutoscaler/m2m-auth', 'NetworkPolicy/m2m-auth',
      'PodDisruptionBudget/m2m-auth', 'PrometheusRule/m2m-auth', 'Secret/m2m-auth', 'Service/m2m-auth', 'Service/m2m-auth-admin',
      'ServiceMonitor/m2m-auth',
    ]);
  });

  it('passes the Kubernetes and Prometheus Operator schemas, which catch a broken manifest', () => {
    for (const o of objects) expect(() => validate(o), `${o.kind}/${o.metadata.name}`).not.toThrow();
    const broken = structuredClone(deployment);
    broken.spec.template.spec.containers[0].ports[0].containerPort = '8080/tcp';
    expect(() => validate(broken)).toThrow(/containerPort must be integer/);
    const noContainers = structuredClone(deployment);
    delete noContainers.spec.template.spec.containers;
    expect(() => validate(noContainers)).toThrow(/must have required property '?containers'?/);
    const badRule = structuredClone(one('PrometheusRule'));
    badRule.spec.groups[0].rules[0].for = 'five minutes';
    expect(() => validate(badRule)).toThrow(/for must match pattern/);
    const badMonitor = structuredClone(one('ServiceMonitor'));
    badMonitor.spec.endpoints = 'admin';
    expect(() => validate(badMonitor)).toThrow(/endpoints must be array/);
  });

  it('sets only variables of the configuration schema, and with the Secret filled in the configuration loads', () => {
    const known = new Set(CONFIG_SCHEMA.map((k) => k.env));
    const names = [...Object.keys(config), ...Object.keys(secret),
      ...[...pod.spec.containers, ...pod.spec.initContainers].flatMap((c: Obj) => (c.env ?? []).map((e: Obj) => e.name))];
    expect(names.length).toBeGreaterThan(5);
    expect(names.filter((n) => !known.has(n))).toEqual([]);
    for (const c of [...pod.spec.containers, ...pod.spec.initContainers]) {
      for (const source of c.envFrom ?? []) {
        const ref = source.configMapRef?.name ?? source.secretRef?.name;
        expect(objects.some((o) => (o.kind === 'ConfigMap' || o.kind === 'Secret') && o.metadata.name === ref), `${c.name}: ${ref}`).toBe(true);
      }
    }
    const filled = {
      M2M_AUTH_KEK: Buffer.alloc(32, 7).toString('base64'),
      M2M_AUTH_ADMIN_TOKEN: 'a'.repeat(40),
      M2M_AUTH_DATABASE_URL: 'postgres://m2m:pw@db:5432/m2m',
    };
    expect(Object.keys(secret).sort()).toEqual(Object.keys(filled).sort());
    const loaded = loadConfig({ ...imageEnv(), ...config, ...filled });
    expect(parseKek(loaded.kek!)).toHaveLength(32);
    expect(loaded.databaseUrl).toMatch(/^postgres:/);
    expect(loaded.autoMigrate).toBe(false);
    expect(loaded.logFormat).toBe('json');
  });

  it('ships a Secret template whose placeholders the server refuses (never a usable secret)', () => {
    expect(() => parseKek(secret.M2M_AUTH_KEK!)).toThrow(/M2M_AUTH_KEK must be 32 bytes/);
    expect(() => loadConfig({ ...imageEnv(), ...config, ...secret, M2M_AUTH_KEK: Buffer.alloc(32).toString('base64') })).toThrow(/M2M_AUTH_ADMIN_TOKEN/);
    for (const v of Object.values(secret)) expect(v).toMatch(/REPLACE-ME/);
  });

  it('probes /healthz (startup, liveness) and /readyz (readiness) on the public listener', () => {
    const http = server.ports.find((p: Obj) => p.name === 'http');
    expect(http.containerPort).toBe(parseAddress(imageEnv().M2M_AUTH_LISTEN!).port);
    expect(server.ports.find((p: Obj) => p.name === 'admin').containerPort).toBe(parseAddress(imageEnv().M2M_AUTH_ADMIN_LISTEN!).port);
    expect(server.startupProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(server.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
    expect(server.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
    // Readiness notices a draining pod well within the shutdown delay.
    expect(server.readinessProbe.periodSeconds * server.readinessProbe.failureThreshold).toBeLessThanOrEqual(Number(config.M2M_AUTH_SHUTDOWN_DELAY));
    expect(server.args).toEqual(['serve']);
  });

  it('gives the drain its time: the grace period is above M2M_AUTH_SHUTDOWN_DELAY + M2M_AUTH_SHUTDOWN_TIMEOUT', () => {
    const delay = Number(config.M2M_AUTH_SHUTDOWN_DELAY);
    const timeout = Number(config.M2M_AUTH_SHUTDOWN_TIMEOUT);
    expect(delay).toBeGreaterThan(0);
    expect(pod.spec.terminationGracePeriodSeconds).toBeGreaterThan(delay + timeout);
    // The server delays by itself after SIGTERM; a preStop sleep would add to it unseen.
    expect(server.lifecycle?.preStop).toBeUndefined();
    expect(deployment.spec.strategy.rollingUpdate).toEqual({ maxSurge: 1, maxUnavailable: 0 });
    // The HorizontalPodAutoscaler owns the replica count.
    expect(deployment.spec.replicas).toBeUndefined();
  });

  it('sizes the server from BENCHMARKS.md: memory above the HighMemory alert, no CPU limit', () => {
    const mi = (q: string): number => {
      const m = /^(\d+)(Mi|Gi)$/.exec(q);
      if (!m) throw new Error(`unexpected quantity ${q}`);
      return Number(m[1]) * (m[2] === 'Gi' ? 1024 : 1);
    };
    const alert = /m2m_auth_process_resident_memory_bytes > (\d+) \* 1024 \* 1024/.exec(readFileSync(join(REPOSITORY, 'deploy/prometheus/alerts.yml'), 'utf8'));
    expect(alert).not.toBeNull();
    // The alert fires before the kernel's OOM kill, and the request holds a server under load (about 150 MB).
    expect(mi(server.resources.limits.memory)).toBeGreaterThan(Number(alert![1]));
    expect(mi(server.resources.requests.memory)).toBeGreaterThanOrEqual(150);
    expect(server.resources.requests.cpu).toBe('500m');
    expect(server.resources.limits.cpu).toBeUndefined();
  });

  it('runs every container non-root, read-only, without capabilities or privilege escalation, under RuntimeDefault seccomp', () => {
    expect(pod.spec.securityContext).toEqual({ runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod.spec.automountServiceAccountToken).toBe(false);
    for (const c of [...pod.spec.containers, ...pod.spec.initContainers]) {
      expect(c.securityContext, c.name).toEqual({
        allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true, capabilities: { drop: ['ALL'] },
      });
      expect(c.volumeMounts, c.name).toBeUndefined();
      expect(c.resources?.limits?.memory, c.name).toBeDefined();
    }
  });

  it('migrates in an init container of the same image, and the server does not migrate itself', () => {
    expect(pod.spec.initContainers).toHaveLength(1);
    const migrate = pod.spec.initContainers[0];
    expect(migrate.args).toEqual(['migrate']);
    expect(migrate.image).toBe(server.image);
    expect(migrate.envFrom).toEqual([{ secretRef: { name: 'm2m-auth' } }]);
    expect(config.M2M_AUTH_AUTO_MIGRATE).toBe('false');
  });

  it('serves the public listener on a Service, and the admin listener on a ClusterIP Service of its own behind a NetworkPolicy', () => {
    const labels = pod.metadata.labels;
    const pub = one('Service', 'm2m-auth');
    const admin = one('Service', 'm2m-auth-admin');
    for (const s of [pub, admin]) expect(matches(s.spec.selector, labels), s.metadata.name).toBe(true);
    expect(pub.spec.ports).toEqual([{ name: 'http', port: 80, targetPort: 'http' }]);
    expect(admin.spec.type).toBe('ClusterIP');
    expect(admin.spec.ports).toEqual([{ name: 'admin', port: 8081, targetPort: 'admin' }]);
    expect(admin.spec.ports.some((p: Obj) => p.nodePort !== undefined)).toBe(false);

    const policy = one('NetworkPolicy');
    expect(matches(policy.spec.podSelector.matchLabels, labels)).toBe(true);
    expect(policy.spec.policyTypes).toEqual(['Ingress']);
    const rules = policy.spec.ingress as Obj[];
    // The public port from anywhere; the admin port only from the listed peers.
    expect(rules.find((r) => r.ports.some((p: Obj) => p.port === 'http'))?.from).toBeUndefined();
    const adminRule = rules.find((r) => r.ports.some((p: Obj) => p.port === 'admin'))!;
    expect(adminRule.from.length).toBeGreaterThan(0);
    for (const peer of adminRule.from) expect(peer.podSelector ?? peer.namespaceSelector).toBeDefined();
    expect(rules.every((r) => r.ports.every((p: Obj) => p.port === 'http' || p.port === 'admin'))).toBe(true);
  });

  it('keeps at least one pod through disruptions and scales between two and ten pods on CPU', () => {
    const pdb = one('PodDisruptionBudget');
    expect(matches(pdb.spec.selector.matchLabels, pod.metadata.labels)).toBe(true);
    expect(pdb.spec.maxUnavailable).toBe(1);
    const hpa = one('HorizontalPodAutoscaler');
    expect(hpa.spec.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
    expect(hpa.spec.minReplicas).toBeGreaterThanOrEqual(2);
    expect(hpa.spec.maxReplicas).toBeGreaterThan(hpa.spec.minReplicas);
    expect(hpa.spec.metrics[0].resource).toMatchObject({ name: 'cpu', target: { type: 'Utilization' } });
    expect(matches(deployment.spec.selector.matchLabels, pod.metadata.labels)).toBe(true);
  });

  it('scrapes the admin listener of every pod as job "m2m-auth", which InstanceDown expects', () => {
    const monitor = one('ServiceMonitor');
    const admin = one('Service', 'm2m-auth-admin');
    const pub = one('Service', 'm2m-auth');
    expect(matches(monitor.spec.selector.matchLabels, admin.metadata.labels)).toBe(true);
    expect(matches(monitor.spec.selector.matchLabels, pub.metadata.labels)).toBe(false);
    expect(monitor.spec.endpoints).toEqual([{ port: 'admin', path: '/metrics', interval: '15s' }]);
    expect(admin.metadata.labels[monitor.spec.jobLabel]).toBe('m2m-auth');
    expect(readFileSync(join(REPOSITORY, 'deploy/prometheus/alerts.yml'), 'utf8')).toContain('up{job="m2m-auth"}');
  });

  it('carries exactly the alert rules of deploy/prometheus/alerts.yml', () => {
    const rules = parse(readFileSync(join(REPOSITORY, 'deploy/prometheus/alerts.yml'), 'utf8')) as { groups: unknown[] };
    expect(one('PrometheusRule').spec).toEqual({ groups: rules.groups });
    expect((rules.groups[0] as { rules: unknown[] }).rules.length).toBe(13);
  });

  it('names one image for the init container and the server, which an overlay sets with images:', () => {
    expect(server.image).toBe('m2m-auth');
    expect(readFileSync(join(BASE, 'kustomization.yaml'), 'utf8')).toMatch(/images: \[\{ name: m2m-auth, newName: /);
  });
});
