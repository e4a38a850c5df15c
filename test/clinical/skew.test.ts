/**
 * Training/serving skew: the same challenge records through training/ (PyTorch pipeline,
 * written to test/fixtures/skew/expected.json by training/make_fixtures.py) and through the
 * service (record reader, validation, batch building, engine; and the CLI end to end) must
 * give the same cleaned rows, the same input tensor (read back from the graph's x output)
 * and the same probability.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import { runScore } from '../../src/cli/score.js';
import { physionetRecordToPatient } from '../../src/clinical/physionet.js';
import { buildBatch, type EngineBatch } from '../../src/clinical/preprocess.js';
import { createPatientValidator } from '../../src/clinical/validate.js';
import { createEngine } from '../../src/inference/engine.js';
import { manifestSchema, type Manifest } from '../../src/model/manifest.js';

const ROOT = new URL('../../', import.meta.url).pathname;
const SKEW_DIR = join(ROOT, 'test/fixtures/skew');
const EXPECTED = join(SKEW_DIR, 'expected.json');

interface ExpectedRecord {
  file: string;
  /** The RecordID (older fixtures call it recordId). */
  id?: string;
  recordId?: string;
  statics: Record<string, number | null>;
  rows: Array<Record<string, number | null>>;
  x: number[][];
  probability: number;
}

interface Expected {
  /** `dir`: the model's folder, relative to the project root. */
  model: { name: string; version: string; dir?: string };
  tolerance?: { x?: number; probability?: number };
  records: ExpectedRecord[];
}

const fixture = existsSync(EXPECTED);
const skip = fixture ? false : 'test/fixtures/skew/expected.json has not been generated (training/make_fixtures.py)';

async function load(): Promise<{ expected: Expected; manifest: Manifest; modelDir: string; texts: string[] }> {
  const expected = JSON.parse(await readFile(EXPECTED, 'utf8')) as Expected;
  const modelDir = join(ROOT, expected.model.dir ?? join('models', expected.model.name, expected.model.version));
  const manifest = manifestSchema.parse(JSON.parse(await readFile(join(modelDir, 'manifest.json'), 'utf8')));
  const texts = await Promise.all(expected.records.map((r) => readFile(join(SKEW_DIR, r.file), 'utf8')));
  return { expected, manifest, modelDir, texts };
}

function idOf(record: ExpectedRecord): string | undefined {
  return record.id ?? record.recordId;
}

function rowsWithoutNulls(rows: Array<Record<string, number | null | undefined>>): Array<Record<string, number>> {
  return rows.map((row) =>
    Object.fromEntries(Object.entries(row).filter((e): e is [string, number] => typeof e[1] === 'number')),
  );
}

test('the record reader cleans and bins every record exactly as training does', { skip }, async () => {
  const { expected, manifest, texts } = await load();
  assert.ok(expected.records.length >= 10);
  expected.records.forEach((record, i) => {
    const patient = physionetRecordToPatient(texts[i]!, manifest, basename(record.file, '.txt'));
    assert.equal(patient.id, idOf(record));
    const gender = manifest.statics.find((s) => s.name === 'Gender');
    const sexCode =
      patient.sex === null || patient.sex === undefined || gender?.kind !== 'categorical'
        ? null
        : gender.categories[gender.labels.indexOf(patient.sex)];
    assert.deepEqual(
      {
        Age: patient.age ?? null,
        Height: patient.height ?? null,
        Gender: sexCode ?? null,
        ICUType: patient.icuType ?? null,
      },
      {
        Age: record.statics.Age ?? null,
        Height: record.statics.Height ?? null,
        Gender: record.statics.Gender ?? null,
        ICUType: record.statics.ICUType ?? null,
      },
      `statics of ${record.file}`,
    );
    const rows = patient.hours.slice(-manifest.maxHours);
    assert.deepEqual(rowsWithoutNulls(rows), rowsWithoutNulls(record.rows), `rows of ${record.file}`);
  });
});

test('validation and the graph give training’s input tensor, and the engine its probability', { skip }, async () => {
  const { expected, manifest, modelDir, texts } = await load();
  const validator = createPatientValidator(manifest);
  const valid = expected.records.map((record, i) => {
    const outcome = validator.validate(physionetRecordToPatient(texts[i]!, manifest, basename(record.file, '.txt')));
    assert.ok(outcome.ok, `${record.file} must be valid: ${JSON.stringify(outcome.ok ? [] : outcome.issues)}`);
    return outcome.patient;
  });
  const batch = buildBatch(manifest, valid);
  const x = await inputTensorOf(join(modelDir, manifest.onnx.file), batch);
  const width = x.dims[2] as number;
  expected.records.forEach((record, b) => {
    assert.equal(batch.lengths[b], record.x.length, `hours of ${record.file}`);
    let worst = 0;
    record.x.forEach((row, t) => {
      assert.equal(row.length, width);
      row.forEach((value, k) => {
        worst = Math.max(worst, Math.abs((x.data[(b * batch.time + t) * width + k] as number) - value));
      });
    });
    assert.ok(worst <= (expected.tolerance?.x ?? 1e-5), `tensor of ${record.file} differs by ${worst}`);
  });
  const engine = await createEngine({
    modelPath: join(modelDir, manifest.onnx.file),
    inputNames: manifest.onnx.inputs,
    outputName: manifest.onnx.output,
    providers: ['cpu'],
    workers: 1,
    intraOpThreads: 1,
  });
  try {
    const probabilities = await engine.run(batch);
    expected.records.forEach((record, b) => {
      assert.ok(
        Math.abs((probabilities[b] as number) - record.probability) <= (expected.tolerance?.probability ?? 1e-5),
        `${record.file}: service ${probabilities[b]} vs PyTorch ${record.probability}`,
      );
    });
  } finally {
    await engine.close();
  }
});

/** The input tensor the graph computes from this batch: its second output, which the service never fetches. */
async function inputTensorOf(
  modelPath: string,
  batch: EngineBatch,
): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const session = await ort.InferenceSession.create(modelPath);
  try {
    const { batch: n, time, nVariables, nStatics } = batch;
    const out = await session.run(
      {
        values: new ort.Tensor('float64', batch.values.slice(), [n, time, nVariables]),
        statics: new ort.Tensor('float64', batch.statics.slice(), [n, nStatics]),
        lengths: new ort.Tensor('int32', batch.lengths.slice(), [n]),
      },
      ['x'],
    );
    const x = out.x as ort.Tensor;
    return { data: x.data as Float32Array, dims: x.dims };
  } finally {
    await session.release();
  }
}

test('the score CLI reading the records directly gives PyTorch’s probabilities', { skip }, async (t) => {
  const { expected, modelDir } = await load();
  const out = await mkdtemp(join(tmpdir(), 'icu-skew-'));
  t.after(() => rm(out, { recursive: true, force: true }));
  // The CLI finds a version as <name>/<version>/: lay the model out so wherever it lives.
  await mkdir(join(out, expected.model.name));
  await symlink(modelDir, join(out, expected.model.name, expected.model.version), 'dir');
  const summary = await runScore({
    format: 'physionet2012',
    input: SKEW_DIR,
    output: join(out, 'scores.csv'),
    modelDir: join(out, expected.model.name, expected.model.version),
    quiet: true,
    threads: 1,
  });
  assert.equal(summary.failed, 0);
  const lines = (await readFile(join(out, 'scores.csv'), 'utf8')).trim().split('\n').slice(1);
  const byId = new Map(
    lines.map((l) => l.split(',')).map(([id, p, name, version]) => [id, { p: Number(p), name, version }]),
  );
  for (const record of expected.records) {
    const row = byId.get(idOf(record) ?? '');
    assert.ok(row, `no row for ${idOf(record)}`);
    assert.deepEqual([row.name, row.version], [expected.model.name, expected.model.version]);
    assert.ok(
      Math.abs(row.p - record.probability) <= (expected.tolerance?.probability ?? 1e-5),
      `${idOf(record)}: CLI ${row.p} vs PyTorch ${record.probability}`,
    );
  }
});
