import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { runRecalibrate } from '../../src/cli/recalibrate.js';
import { runScore, ScoreCommandError } from '../../src/cli/score.js';
import { runValidate } from '../../src/cli/validate.js';
import { seededRandom } from '../../src/evaluation/random.js';
import ort from 'onnxruntime-node';
import type { Manifest } from '../../src/model/manifest.js';
import { buildTestApp, makeModelRoot, ROOT, samplePatient } from '../helper.js';

/**
 * A synthetic site: stays scored by the shipped model, outcomes drawn from a shifted logistic of
 * the model's own probabilities (seeded), so the true recalibration is known. Recalibrated on
 * one half, the other half must come out calibrated, ranked as before, and served as the new version.
 */

const SHIPPED = join(ROOT, 'models', 'icu-mortality', '1.6.0');
const TRUE_INTERCEPT = -0.9;
const TRUE_SLOPE = 0.6;
const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));
const logit = (p: number): number => Math.log(p / (1 - p));

async function tempDir(t: TestContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'icu-recal-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function scores(input: string, modelDir: string, dir: string): Promise<Map<string, number>> {
  const output = join(dir, `scores-${Math.random().toString(36).slice(2)}.ndjson`);
  await runScore({ format: 'ndjson', input, output, modelDir, quiet: true, workers: 1 });
  const rows = (await readFile(output, 'utf8')).trim().split('\n');
  return new Map(
    rows.map((l) => JSON.parse(l) as { id: string; probability: number }).map((r) => [r.id, r.probability]),
  );
}

/** The recalibrated step graph, stepped over a stay, follows the recalibrated model.onnx's per-hour output. */
async function assertStepGraphFollows(dir: string): Promise<void> {
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const step = manifest.onnx.step;
  assert.ok(step);
  const V = manifest.variables.length;
  const hours = 5;
  const values = new Float64Array(hours * V).fill(Number.NaN);
  for (let t = 0; t < hours; t++) values[t * V + (t % V)] = manifest.variables[t % V]?.mean as number;
  const statics = Float64Array.from([70, 175, 1, 3]);
  const model = await ort.InferenceSession.create(join(dir, manifest.onnx.file));
  const stepper = await ort.InferenceSession.create(join(dir, step.file));
  try {
    const whole = await model.run({
      values: new ort.Tensor('float64', values, [1, hours, V]),
      statics: new ort.Tensor('float64', statics, [1, 4]),
      lengths: new ort.Tensor('int32', Int32Array.from([hours]), [1]),
    });
    let state: ort.Tensor = new ort.Tensor(
      'float32',
      new Float32Array((step.stateShape[0] ?? 0) * (step.stateShape[1] ?? 0)),
      [1, ...step.stateShape],
    );
    let carry: ort.Tensor = new ort.Tensor('float32', new Float32Array(2 * V), [1, ...step.carryShape]);
    for (let t = 0; t < hours; t++) {
      const out = await stepper.run({
        values: new ort.Tensor('float64', values.slice(t * V, (t + 1) * V), [1, 1, V]),
        statics: new ort.Tensor('float64', statics, [1, 4]),
        state,
        carry,
      });
      state = out.state_out as ort.Tensor;
      carry = out.carry_out as ort.Tensor;
      const perHour = (whole.probability_per_hour as ort.Tensor).data[t] as number;
      assert.ok(Math.abs(((out.probability as ort.Tensor).data[0] as number) - perHour) <= 1e-5, `hour ${t}`);
    }
    assert.equal((whole.probability_per_hour as ort.Tensor).data[hours - 1], (whole.probability as ort.Tensor).data[0]);
  } finally {
    await model.release();
    await stepper.release();
  }
}

async function site(t: TestContext) {
  const dir = await tempDir(t);
  const root = await makeModelRoot(t, { '1.6.0': { from: SHIPPED } });
  const modelDir = join(root, 'icu-mortality');
  const ids = Array.from({ length: 2400 }, (_, i) => `s${i}`);
  const lines = ids.map((id, i) => JSON.stringify(samplePatient(1 + (i % 36), 7919 * i + 1, id)));
  const all = join(dir, 'all.ndjson');
  await writeFile(all, lines.join('\n'));
  const before = await scores(all, modelDir, dir);
  const random = seededRandom(29);
  const died = ids.map((id) =>
    random.next() < sigmoid(TRUE_INTERCEPT + TRUE_SLOPE * logit(before.get(id) as number)) ? 1 : 0,
  );
  const half = async (name: string, keep: (i: number) => boolean) => {
    const input = join(dir, `${name}.ndjson`);
    const outcomes = join(dir, `${name}.csv`);
    await writeFile(input, lines.filter((_, i) => keep(i)).join('\n'));
    const rows = ids.flatMap((id, i) => (keep(i) ? [`${id},${died[i]}`] : []));
    await writeFile(outcomes, `RecordID,In-hospital_death\n${rows.join('\n')}\n`);
    return { input, outcomes };
  };
  return {
    dir,
    root,
    modelDir,
    before,
    fit: await half('fit', (i) => i % 2 === 0),
    check: await half('check', (i) => i % 2 === 1),
  };
}

test('recalibrated on half a shifted site, the other half is calibrated, ranked as before and served', async (t) => {
  const s = await site(t);
  const result = await runRecalibrate({
    format: 'ndjson',
    ...s.fit,
    modelDir: s.modelDir,
    version: '1.6.0-site',
    quiet: true,
    workers: 1,
  });
  const { intercept, slope } = result.recalibration;
  assert.ok(Math.abs(intercept - TRUE_INTERCEPT) < 0.3 && Math.abs(slope - TRUE_SLOPE) < 0.2, `${intercept}, ${slope}`);

  const reportDir = join(s.dir, 'reports');
  const old = await runValidate({
    format: 'ndjson',
    ...s.check,
    modelDir: s.modelDir,
    modelVersion: '1.6.0',
    report: join(reportDir, 'old'),
    quiet: true,
    workers: 1,
  });
  const recal = await runValidate({
    format: 'ndjson',
    ...s.check,
    modelDir: s.modelDir,
    modelVersion: '1.6.0-site',
    report: join(reportDir, 'new'),
    quiet: true,
    workers: 1,
  });
  assert.equal(recal.model.version, '1.6.0-site');
  t.diagnostic(
    `fit a ${intercept}, b ${slope}; other half before: intercept ${old.calibration.interceptInTheLarge}, slope ${old.calibration.slope}, AUROC ${old.auroc}; after: intercept ${recal.calibration.interceptInTheLarge}, slope ${recal.calibration.slope}, AUROC ${recal.auroc}`,
  );
  // The shift is there before and gone after, on stays the fit did not see.
  assert.ok(Math.abs((old.calibration.slope as number) - 1) > 0.25, `old slope ${old.calibration.slope}`);
  assert.ok(
    Math.abs(recal.calibration.interceptInTheLarge as number) < 0.15,
    `intercept ${recal.calibration.interceptInTheLarge}`,
  );
  assert.ok(Math.abs((recal.calibration.slope as number) - 1) < 0.2, `slope ${recal.calibration.slope}`);
  assert.ok(Math.abs((recal.auroc as number) - (old.auroc as number)) < 1e-9, `${recal.auroc} vs ${old.auroc}`);

  // The new graph's outputs are the old ones recalibrated, stay by stay.
  const after = await scores(s.check.input, join(s.modelDir, '1.6.0-site'), s.dir);
  assert.equal(after.size, 1200);
  for (const [id, p] of after) {
    const expected = sigmoid(intercept + slope * logit(s.before.get(id) as number));
    assert.ok(Math.abs(p - expected) < 1e-5, `${id}: ${p} vs ${expected}`);
  }

  await assertStepGraphFollows(result.dir);

  const manifest = JSON.parse(await readFile(join(result.dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  assert.equal(manifest.version, '1.6.0-site');
  assert.deepEqual(Object.keys(manifest.recalibration as object), ['method', 'intercept', 'slope', 'fittedOn', 'from']);
  assert.deepEqual((manifest.recalibration as { fittedOn: { n: number } }).fittedOn.n, 1200);
  assert.equal((manifest.recalibration as { from: string }).from, '1.6.0');
  assert.match(
    await readFile(join(result.dir, 'model-card.md'), 'utf8'),
    /## Local recalibration: version 1\.6\.0-site/,
  );
  assert.ok((await stat(join(result.dir, 'fitting-cohort', 'report.json'))).isFile());
  assert.ok((await stat(join(result.dir, 'fitting-cohort', 'report.html'))).isFile());
  // The shipped version is untouched.
  assert.equal(JSON.parse(await readFile(join(SHIPPED, 'manifest.json'), 'utf8')).recalibration, undefined);

  const { app } = await buildTestApp(t, { modelRoot: s.root, env: { MODEL_VERSION: '1.6.0-site' } });
  const res = await app.inject({
    method: 'POST',
    url: '/v1/predict',
    payload: { patients: [samplePatient(6, 1, 's1')] },
  });
  assert.equal(res.statusCode, 200);
  const body = res.json<{
    model: { version: string };
    results: Array<{ probability: number; model: { version: string } }>;
  }>();
  assert.equal(body.model.version, '1.6.0-site');
  assert.equal(body.results[0]?.model.version, '1.6.0-site');
});

test('recalibrate refuses a cohort with fewer than 100 deaths, giving the number and its source', async (t) => {
  const dir = await tempDir(t);
  const root = await makeModelRoot(t);
  const input = join(dir, 'c.ndjson');
  const ids = Array.from({ length: 150 }, (_, i) => `s${i}`);
  await writeFile(input, ids.map((id, i) => JSON.stringify(samplePatient(3, i + 1, id))).join('\n'));
  const outcomes = join(dir, 'o.csv');
  await writeFile(outcomes, `id,In-hospital_death\n${ids.map((id, i) => `${id},${i < 20 ? 1 : 0}`).join('\n')}\n`);
  await assert.rejects(
    runRecalibrate({
      format: 'ndjson',
      input,
      outcomes,
      modelDir: join(root, 'icu-mortality'),
      version: '9.9.9',
      quiet: true,
      workers: 1,
    }),
    (error: unknown) =>
      error instanceof ScoreCommandError &&
      /20 deaths/.test(error.message) &&
      /at least 100/.test(error.message) &&
      /Collins GS/.test(error.message),
  );
  await assert.rejects(stat(join(root, 'icu-mortality', '9.9.9')));
});
