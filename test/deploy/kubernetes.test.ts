import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { HorizontalPodAutoscaler } from 'kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import YAML from 'yaml';
import { buildProgram } from '../../src/cli/main.js';
import { parseShard } from '../../src/cli/shard.js';
import { envSchema, loadConfig } from '../../src/config.js';
import { referencedServiceMetrics, readYaml, repoPath } from './files.js';

/**
 * The example Kubernetes manifests, validated against the Kubernetes OpenAPI schemas (as
 * compiled by the kubernetes-models package: types, enums and required fields; it does not
 * flag unknown fields) and cross-checked with the code they configure.
 */

const dir = (...p: string[]) => ['deploy', 'kubernetes', ...p];

const deployment = readYaml<Deployment>(...dir('deployment.yaml'));
const service = readYaml<Service>(...dir('service.yaml'));
const hpa = readYaml<HorizontalPodAutoscaler>(...dir('hpa.yaml'));
const pdb = readYaml<PodDisruptionBudget>(...dir('pdb.yaml'));
const configMap = readYaml<ConfigMap>(...dir('configmap.yaml'));
const adapter = readYaml<ConfigMap>(...dir('prometheus-adapter.yaml'));
const job = readYaml<Job>(...dir('job-score-cohort.yaml'));
const secret = readYaml<Secret>(...dir('secret.example.yaml'));

describe('deploy/kubernetes', () => {
  it('validates every manifest against the Kubernetes API schema', () => {
    new Deployment(deployment).validate();
    new Service(service).validate();
    new HorizontalPodAutoscaler(hpa).validate();
    new PodDisruptionBudget(pdb).validate();
    new ConfigMap(configMap).validate();
    new ConfigMap(adapter).validate();
    new Job(job).validate();
    new Secret(secret).validate();
  });

  it('lists in kustomization.yaml only files that exist', () => {
    const k = readYaml<{ resources: string[] }>(...dir('kustomization.yaml'));
    for (const r of k.resources) assert.ok(existsSync(repoPath(...dir(r))), `${r} is missing`);
    assert.ok(k.resources.includes('hpa.yaml') && k.resources.includes('deployment.yaml'));
  });

  it('routes the Service and the PodDisruptionBudget to the Deployment pods', () => {
    const podLabels = deployment.spec?.template.metadata?.labels ?? {};
    for (const [k, v] of Object.entries(service.spec?.selector ?? {}))
      assert.equal(podLabels[k], v, `service selector ${k}`);
    for (const [k, v] of Object.entries(pdb.spec?.selector?.matchLabels ?? {}))
      assert.equal(podLabels[k], v, `pdb selector ${k}`);
    const port = deployment.spec?.template.spec?.containers[0]?.ports?.[0];
    assert.equal(service.spec?.ports?.[0]?.targetPort, port?.name);
    assert.equal(String(port?.containerPort), configMap.data?.PORT);
  });

  it('probes liveness on /health/live and readiness on /health/ready', () => {
    const c = deployment.spec?.template.spec?.containers[0];
    assert.equal(c?.livenessProbe?.httpGet?.path, '/health/live');
    assert.equal(c?.readinessProbe?.httpGet?.path, '/health/ready');
  });

  it('drains within the termination grace period', () => {
    const grace = deployment.spec?.template.spec?.terminationGracePeriodSeconds ?? 30;
    const drainMs = Number(configMap.data?.SHUTDOWN_GRACE_MS);
    const preStop = deployment.spec?.template.spec?.containers[0]?.lifecycle?.preStop?.exec?.command?.join(' ') ?? '';
    const preStopMs = Number(/setTimeout\([^,]+,\s*(\d+)\)/.exec(preStop)?.[1] ?? 0);
    assert.ok(
      preStopMs + drainMs < grace * 1000,
      `preStop ${preStopMs} ms + drain ${drainMs} ms must fit in ${grace} s`,
    );
  });

  it('configures the service only with variables src/config.ts reads, and values it accepts', () => {
    const env = { ...configMap.data, ...secret.stringData };
    const refs = deployment.spec?.template.spec?.containers[0]?.envFrom ?? [];
    assert.ok(
      refs.some((r) => r.secretRef?.name === secret.metadata?.name),
      'the Deployment does not read the auth Secret',
    );
    const known = new Set(Object.keys(envSchema.shape));
    for (const k of Object.keys(env)) assert.ok(known.has(k), `${k} is not read by src/config.ts`);
    const config = loadConfig(env);
    const cpus = Number(deployment.spec?.template.spec?.containers[0]?.resources?.requests?.cpu);
    assert.ok(config.intraOpThreads * config.engineWorkers <= cpus, 'inference threads exceed the CPUs requested');
  });

  it('autoscales the Deployment on the batcher queue depth the service exposes', () => {
    assert.equal(hpa.spec?.scaleTargetRef.kind, 'Deployment');
    assert.equal(hpa.spec?.scaleTargetRef.name, deployment.metadata?.name);
    const pods = hpa.spec?.metrics?.find((m) => m.type === 'Pods');
    assert.equal(pods?.pods?.metric.name, 'batcher_queue_depth');
    assert.ok(
      referencedServiceMetrics().has('batcher_queue_depth'),
      'the dashboard/alerts should show what the HPA scales on',
    );
    const rules = YAML.parse(adapter.data?.['config.yaml'] ?? '') as {
      rules: Array<{ seriesQuery: string; name: { as: string } }>;
    };
    const rule = rules.rules.find((r) => r.name.as === 'batcher_queue_depth');
    assert.ok(rule, 'prometheus-adapter does not serve batcher_queue_depth');
    assert.match(rule.seriesQuery, /^batcher_queue_depth\{/);
    assert.ok((hpa.spec?.minReplicas ?? 1) >= 2, 'keep at least two replicas for availability');
  });

  it('scores a cohort as an Indexed Job whose pods each take shard <index>/<completions>', () => {
    assert.equal(job.spec?.completionMode, 'Indexed');
    const n = job.spec?.completions ?? 0;
    assert.ok(n > 1);
    const c = job.spec?.template.spec?.containers[0];
    assert.ok(c);
    const indexVar = c.env?.find(
      (e) => e.valueFrom?.fieldRef?.fieldPath === "metadata.annotations['batch.kubernetes.io/job-completion-index']",
    );
    assert.ok(indexVar, 'the pod index is not exposed to the container');
    const argv = c.args ?? [];
    const shard = argv[argv.indexOf('--shard') + 1] ?? '';
    assert.equal(shard, `$(${indexVar.name})/${n}`);
    // Every pod's argument, with its index substituted, is a shard the CLI accepts.
    for (let i = 0; i < n; i++)
      assert.deepEqual(parseShard(shard.replace(`$(${indexVar.name})`, String(i))), { index: i, count: n });
    const output = argv[argv.indexOf('--output') + 1] ?? '';
    assert.ok(output.includes(`$(${indexVar.name})`), 'each shard must write its own output file');
    assert.ok(argv.includes('--resume'), 'a retried pod should resume its shard');
    // The CLI's engine defaults follow the node's cores, not the pod's CPU request: the Job must say.
    const workers = Number(argv[argv.indexOf('--workers') + 1]);
    const threads = Number(argv[argv.indexOf('--threads') + 1]);
    const cpus = Number(c.resources?.requests?.cpu);
    assert.ok(argv.includes('--workers') && argv.includes('--threads'), 'the Job must set --workers and --threads');
    assert.ok(workers * threads <= cpus, `the Job asks for ${workers} x ${threads} inference threads on ${cpus} CPUs`);
  });

  it('passes the Job only options the CLI score command defines', () => {
    const c = job.spec?.template.spec?.containers[0];
    assert.deepEqual(c?.command, ['node', 'bin/icu-mortality.js']);
    assert.ok(existsSync(repoPath('bin', 'icu-mortality.js')));
    const argv = c?.args ?? [];
    assert.equal(argv[0], 'score');
    const score = buildProgram().commands.find((cmd) => cmd.name() === 'score');
    assert.ok(score);
    const longs = new Set(score.options.map((o) => o.long));
    for (const a of argv.filter((x) => x.startsWith('--'))) assert.ok(longs.has(a), `the CLI has no ${a} option`);
    for (const o of score.options.filter((x) => x.mandatory || x.required)) {
      if (o.mandatory) assert.ok(argv.includes(o.long ?? ''), `the Job misses the mandatory ${o.long}`);
    }
  });
});
