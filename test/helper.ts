/**
 * Builds the app for tests: real inference on the tiny fixture model
 * (test/fixtures/tiny-model, untrained, written by training/), logs captured in memory.
 * Every test file that needs an app uses buildTestApp(); others import the fixture helpers.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm, symlink, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Writable } from 'node:stream';
import type { TestContext } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { buildApp, type AppDeps } from '../src/app.js';
import { loadConfig, type AppConfig } from '../src/config.js';
import type { ValidPatient } from '../src/clinical/types.js';
import { manifestSchema, type Manifest } from '../src/model/manifest.js';
import { createEngine, type Engine } from '../src/inference/engine.js';
import type { ModelFiles } from '../src/model/repository.js';

export const ROOT = resolve(import.meta.dirname, '..');
export const TINY_MODEL_DIR = join(ROOT, 'test', 'fixtures', 'tiny-model');

export async function loadTinyManifest(): Promise<Manifest> {
  return manifestSchema.parse(JSON.parse(await readFile(join(TINY_MODEL_DIR, 'manifest.json'), 'utf8')));
}

/**
 * A temporary models root holding <name>/<version>/ folders. Each version is a symlink to a
 * source folder (default: the tiny fixture), or a copy when `copy` is set (to break it later).
 */
export async function makeModelRoot(
  t: TestContext | undefined,
  versions: Record<string, { from?: string; copy?: boolean }> = { '0.0.0-tiny': {} },
  name = 'icu-mortality',
): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), 'icu-models-'));
  await mkdir(join(root, name));
  for (const [version, spec] of Object.entries(versions)) {
    await addVersion(root, version, spec, name);
  }
  t?.after(() => rm(root, { recursive: true, force: true }));
  return root;
}

/** Adds a version folder; with `copy`, the manifest's version is rewritten to the folder name. */
export async function addVersion(
  root: string,
  version: string,
  spec: { from?: string; copy?: boolean } = {},
  name = 'icu-mortality',
): Promise<string> {
  const from = spec.from ?? TINY_MODEL_DIR;
  const dir = join(root, name, version);
  if (spec.copy) {
    await cp(from, dir, { recursive: true });
    const manifestPath = join(dir, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8')) as Record<string, unknown>;
    manifest.version = version;
    const { writeFile } = await import('node:fs/promises');
    await writeFile(manifestPath, JSON.stringify(manifest, null, 2));
  } else {
    await symlink(from, dir, 'dir');
  }
  return dir;
}

/**
 * The prediction store of this test process's apps: a temporary DATA_DIR, never the repository's
 * ./data (test files run in parallel processes). Tests that read the store back pass their own.
 */
const TEST_DATA_DIR = mkdtempSync(join(tmpdir(), 'icu-test-data-'));
process.on('exit', () => rmSync(TEST_DATA_DIR, { recursive: true, force: true }));

/**
 * Config for tests: one small engine, small batches, authentication and rate limiting off
 * (tests of auth set AUTH_DISABLED: 'false' and their keys); overrides as environment variables.
 */
export function testConfig(modelRoot: string, env: Record<string, string> = {}): AppConfig {
  return loadConfig({
    MODEL_DIR: modelRoot,
    AUTH_DISABLED: 'true',
    RATE_LIMIT_MAX: '0',
    LOG_LEVEL: 'info',
    INTRA_OP_THREADS: '1',
    ENGINE_WORKERS: '1',
    MAX_BATCH_SIZE: '64',
    MAX_QUEUE_DELAY_MS: '1',
    MAX_EVENT_LOOP_DELAY_MS: '0',
    DATA_DIR: TEST_DATA_DIR,
    ...env,
  });
}

export interface CapturedLogs {
  stream: Writable;
  lines: string[];
  text(): string;
}

export function captureLogs(): CapturedLogs {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(line);
      done();
    },
  });
  return { stream, lines, text: () => lines.join('\n') };
}

export interface TestApp {
  app: FastifyInstance;
  logs: CapturedLogs;
  config: AppConfig;
  modelRoot: string;
}

/**
 * The app on the tiny model, ready for app.inject, closed after the test.
 * `env` overrides configuration (e.g. { MAX_QUEUE_SIZE: '4' }); `deps` injects dependencies.
 */
export async function buildTestApp(
  t: TestContext,
  options: { env?: Record<string, string>; deps?: AppDeps; modelRoot?: string } = {},
): Promise<TestApp> {
  const modelRoot = options.modelRoot ?? (await makeModelRoot(t));
  const config = testConfig(modelRoot, options.env);
  const logs = captureLogs();
  const app = await buildApp(config, { logStream: logs.stream, ...options.deps });
  t.after(() => app.close());
  await app.ready();
  return { app, logs, config, modelRoot };
}

/** A patient of `hours` rows with a few plausible values, deterministic from `seed`. */
export function samplePatient(hours: number, seed = 1, id?: string): Record<string, unknown> {
  let s = seed >>> 0 || 1;
  const rand = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  const rows = Array.from({ length: hours }, () => {
    const row: Record<string, number | null> = {};
    if (rand() < 0.9) row.HR = Math.round(60 + rand() * 80);
    if (rand() < 0.7) row.MAP = Math.round(55 + rand() * 50);
    if (rand() < 0.6) row.RespRate = Math.round(10 + rand() * 20);
    if (rand() < 0.4) row.Temp = Math.round((35.5 + rand() * 4) * 10) / 10;
    if (rand() < 0.2) row.Lactate = Math.round((0.5 + rand() * 6) * 10) / 10;
    if (rand() < 0.3) row.SaO2 = Math.round(88 + rand() * 12);
    if (rand() < 0.2) row.GCS = Math.round(3 + rand() * 12);
    if (rand() < 0.1) row.Urine = null;
    return row;
  });
  const patient: Record<string, unknown> = {
    age: 40 + Math.round(rand() * 45),
    sex: rand() < 0.5 ? 'female' : 'male',
    icuType: 1 + Math.floor(rand() * 4),
    hours: rows,
  };
  if (id !== undefined) patient.id = id;
  return patient;
}

/**
 * Engine factory for tests that must hold work in flight: the real ONNX engine on the
 * fixture, but every run after the warm-up waits until `open()` is called.
 */
export function gatedEngine(): { factories: NonNullable<AppDeps['factories']>; open(): void; runs(): number } {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => {
    open = resolve;
  });
  let runs = 0;
  return {
    open: () => open(),
    runs: () => runs,
    factories: {
      createEngine: async (files) => {
        const engine = await oneWorkerEngine(files);
        let warmedUp = false;
        return {
          provider: engine.provider,
          close: () => engine.close(),
          run: async (batch) => {
            if (warmedUp) {
              runs++;
              await gate;
            }
            warmedUp = true;
            return engine.run(batch);
          },
        };
      },
    },
  };
}

/** A valid patient's matrix as one object per hour (null = missing), for assertions written by hour. */
export function hourRows(manifest: Manifest, patient: ValidPatient): Array<Record<string, number | null>> {
  const names = manifest.variables.map((v) => v.name);
  return Array.from({ length: patient.hoursUsed }, (_, t) =>
    Object.fromEntries(
      names.map((name, j) => {
        const value = patient.values[t * names.length + j] as number;
        return [name, Number.isNaN(value) ? null : value];
      }),
    ),
  );
}

/** A ValidPatient from hour objects, written here without the validator (for tests of what reads it). */
export function validPatientOf(
  manifest: Manifest,
  rows: Array<Record<string, number | null>>,
  header: Pick<ValidPatient, 'age' | 'sex' | 'icuType' | 'height'>,
): ValidPatient {
  const names = manifest.variables.map((v) => v.name);
  const values = new Float64Array(rows.length * names.length).fill(Number.NaN);
  const observed = new Uint8Array(names.length);
  rows.forEach((row, t) =>
    names.forEach((name, j) => {
      const value = row[name];
      if (typeof value !== 'number') return;
      values[t * names.length + j] = value;
      observed[j] = 1;
    }),
  );
  return { ...header, hoursReceived: rows.length, hoursUsed: rows.length, values, observed };
}

/** The model version's real engine, one single-threaded CPU worker: what the wrappers of the tests hold. */
export function oneWorkerEngine(files: ModelFiles): Promise<Engine> {
  return createEngine({
    modelPath: files.modelPath,
    inputNames: files.manifest.onnx.inputs,
    outputName: files.manifest.onnx.output,
    providers: ['cpu'],
    intraOpThreads: 1,
    workers: 1,
  });
}

/** POSTs `body` as FHIR JSON to the RiskAssessment $predict operation. */
export function postFhirPredict(app: FastifyInstance, body: unknown) {
  return app.inject({
    method: 'POST',
    url: '/fhir/RiskAssessment/$predict',
    headers: { 'content-type': 'application/fhir+json' },
    payload: JSON.stringify(body),
  });
}
