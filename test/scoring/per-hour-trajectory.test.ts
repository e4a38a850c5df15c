import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { explainPlan, rowCost } from '../../src/clinical/explain.js';
import { buildBatch } from '../../src/clinical/preprocess.js';
import type { ValidPatient } from '../../src/clinical/types.js';
import { createPatientValidator } from '../../src/clinical/validate.js';
import { Batcher } from '../../src/inference/batcher.js';
import { createEngine, type Engine, type EngineBatch } from '../../src/inference/engine.js';
import { manifestSchema, type Manifest } from '../../src/model/manifest.js';
import { batcherSink, scoreStays, type RowSink } from '../../src/scoring/score-stays.js';
import { samplePatient } from '../helper.js';

/**
 * The one-pass trajectory (the graph's probability_per_hour, models/README.md) against the
 * prefixes scored alone (the prefix-row path, one engine row per hour), for the LSTM, GRU and
 * hybrid fixtures; and the per-hour output's last hour against PyTorch's probability.
 */

const FIXTURES = ['tiny-model', 'tiny-gru-model', 'tiny-hybrid-model'] as const;
const dirOf = (name: string): string => fileURLToPath(new URL(`../fixtures/${name}/`, import.meta.url));
const manifestOf = (name: string): Manifest =>
  manifestSchema.parse(JSON.parse(readFileSync(`${dirOf(name)}manifest.json`, 'utf8')));

async function engineFor(name: string, perHour: boolean): Promise<Engine> {
  const manifest = manifestOf(name);
  const perHourName = manifest.onnx.outputs?.perHour;
  assert.equal(perHourName, 'probability_per_hour');
  return createEngine({
    modelPath: `${dirOf(name)}model.onnx`,
    inputNames: manifest.onnx.inputs,
    outputName: manifest.onnx.output,
    ...(perHour ? { perHourOutputName: perHourName } : {}),
    providers: ['cpu'],
    intraOpThreads: 1,
    workers: 1,
  });
}

/** Counts the engine rows run: the one-pass path must not run prefix rows. */
function counted(engine: Engine): { engine: Engine; rows: () => number } {
  let rows = 0;
  const wrapped: Engine = {
    provider: engine.provider,
    close: () => engine.close(),
    run: (batch: EngineBatch) => {
      rows += batch.batch;
      return engine.run(batch);
    },
    ...(engine.runPerHour === undefined
      ? {}
      : {
          runPerHour: (batch: EngineBatch) => {
            rows += batch.batch;
            return (engine.runPerHour as NonNullable<Engine['runPerHour']>).call(engine, batch);
          },
        }),
  };
  return { engine: wrapped, rows: () => rows };
}

function batcherOf(manifest: Manifest, engine: Engine): Batcher<ValidPatient> {
  return new Batcher<ValidPatient>({
    engine,
    buildBatch: (patients) => buildBatch(manifest, patients),
    lengthOf: (p) => p.hoursUsed,
    maxBatchSize: 64,
    maxQueueDelayMs: 0,
    maxQueueSize: 10_000,
  });
}

function patients(manifest: Manifest, count: number): ValidPatient[] {
  const validator = createPatientValidator(manifest);
  const note = manifest.noteEmbedding
    ? { noteEmbedding: Array.from({ length: manifest.noteEmbedding.dimension }, (_, i) => Math.sin(i) / 2) }
    : {};
  return Array.from({ length: count }, (_, i) => {
    // Lengths 1..48 and a few empty hours: a trajectory point is owed for every hour.
    const base = samplePatient(1 + ((i * 7) % 48), 100 + i, `p${i}`);
    const hours = base.hours as Array<Record<string, number | null>>;
    const input = { ...base, height: 172, weight: 80, ...note };
    if (hours.length > 3) hours[2] = {};
    const outcome = validator.validate(input);
    assert.ok(outcome.ok);
    return outcome.patient;
  });
}

describe('one-pass trajectories', () => {
  for (const name of FIXTURES) {
    test(`${name}: each point equals the prefix scored alone, at one engine row per stay plus the removals`, async () => {
      const manifest = manifestOf(name);
      const stays = patients(manifest, 12);
      const onePass = counted(await engineFor(name, true));
      const prefixRows = counted(await engineFor(name, true));
      try {
        const sink = batcherSink(batcherOf(manifest, onePass.engine));
        assert.ok(sink.submitPerHour, 'the per-hour path is offered when the engine has the output');
        // The reference: a sink without the per-hour path scores one prefix row per hour.
        const batcher = batcherOf(manifest, prefixRows.engine);
        const reference: RowSink = { submit: (rows) => batcher.submit(rows) };
        const got = await scoreStays(manifest, stays, sink, true);
        const want = await scoreStays(manifest, stays, reference, true);
        let points = 0;
        stays.forEach((stay, k) => {
          const a = got.explanations?.[k];
          const b = want.explanations?.[k];
          assert.ok(a && b);
          assert.equal(got.probabilities[k], want.probabilities[k]);
          assert.deepEqual(
            a.trajectory.map((p) => p.hour),
            Array.from({ length: stay.hoursUsed }, (_, h) => h + 1),
          );
          a.trajectory.forEach((point, h) => {
            const alone = b.trajectory[h]?.probability as number;
            assert.ok(Math.abs(point.probability - alone) <= 1e-6, `${name} stay ${k} hour ${h + 1}`);
            points++;
          });
          assert.equal(a.trajectory.at(-1)?.probability, got.probabilities[k]);
          assert.deepEqual(a.contributions, b.contributions);
        });
        assert.ok(points > 200);
        const cost = (perHour: boolean): number =>
          stays.reduce((sum, p) => sum + rowCost(manifest, p, true, perHour), 0);
        assert.equal(onePass.rows(), cost(true));
        assert.equal(prefixRows.rows(), cost(false));
        assert.equal(
          cost(false) - cost(true),
          stays.reduce((sum, p) => sum + p.hoursUsed - 1, 0),
        );
        assert.equal(explainPlan(manifest, stays[1] as ValidPatient, true).prefixes, 0);
      } finally {
        await onePass.engine.close();
        await prefixRows.engine.close();
      }
    });
  }

  test("the per-hour output's last hour is PyTorch's probability, and NaN past each length", async () => {
    for (const name of FIXTURES) {
      const manifest = manifestOf(name);
      const ref = JSON.parse(readFileSync(`${dirOf(name)}pytorch-reference.json`, 'utf8')) as {
        lengths: number[];
        values: Array<Array<Array<number | null>>>;
        statics: Array<Array<number | null>>;
        probability: number[];
        note?: number[][];
      };
      const engine = await engineFor(name, true);
      try {
        const n = ref.lengths.length;
        const time = 48;
        const V = manifest.variables.length;
        const result = await (engine.runPerHour as NonNullable<Engine['runPerHour']>)({
          values: Float64Array.from(ref.values.flat(2), (v) => v ?? Number.NaN),
          statics: Float64Array.from(ref.statics.flat(), (v) => v ?? Number.NaN),
          lengths: Int32Array.from(ref.lengths),
          batch: n,
          time,
          nVariables: V,
          nStatics: manifest.statics.length,
          ...(ref.note ? { note: Float32Array.from(ref.note.flat()), noteDim: ref.note[0]?.length ?? 0 } : {}),
        });
        ref.lengths.forEach((length, b) => {
          const last = result.perHour[b * time + length - 1] as number;
          assert.ok(Math.abs(last - (ref.probability[b] as number)) <= 1e-5, `${name} stay ${b}`);
          assert.equal(last, result.probabilities[b]);
          for (let h = length; h < time; h++) assert.ok(Number.isNaN(result.perHour[b * time + h]));
        });
      } finally {
        await engine.close();
      }
    }
  });

  test('a stay over maxHours: points are prefixes of the 48-hour window, not the stay cut from admission', async () => {
    // models/README.md: the window is the caller's; the graph's hour t is the window's first t + 1 rows.
    const manifest = manifestOf('tiny-model');
    const validator = createPatientValidator(manifest);
    const base = samplePatient(60, 7, 'long');
    const hours = base.hours as Array<Record<string, number | null>>;
    const input = { ...base, height: 172 };
    const valid = (rows: Array<Record<string, number | null>>): ValidPatient => {
      const outcome = validator.validate({ ...input, hours: rows });
      assert.ok(outcome.ok);
      return outcome.patient;
    };
    const engine = await engineFor('tiny-model', true);
    try {
      const batcher = batcherOf(manifest, engine);
      const stay = valid(hours);
      assert.equal(stay.hoursUsed, 48);
      const [explained] = (await scoreStays(manifest, [stay], batcherSink(batcher), true)).explanations ?? [];
      const cut = await batcher.submit(
        [10, 30].flatMap((h) => [valid(hours.slice(12, 12 + h)), valid(hours.slice(0, h))]),
      );
      for (const [k, h] of [10, 30].entries()) {
        const point = explained?.trajectory[h - 1]?.probability as number;
        assert.ok(Math.abs(point - (cut[2 * k] as number)) <= 1e-6, `window hour ${h}`);
        assert.ok(Math.abs(point - (cut[2 * k + 1] as number)) > 1e-6, `stay from admission, hour ${h}`);
      }
    } finally {
      await engine.close();
    }
  });

  test('without the per-hour output, explanations fall back to prefix rows; batches mix both kinds', async () => {
    const manifest = manifestOf('tiny-gru-model');
    const stays = patients(manifest, 6);
    const plain = counted(await engineFor('tiny-gru-model', false));
    const both = await engineFor('tiny-gru-model', true);
    try {
      const batcher = batcherOf(manifest, plain.engine);
      assert.equal(batcher.perHour, false);
      assert.equal(batcherSink(batcher).submitPerHour, undefined);
      await assert.rejects(batcher.submitPerHour(stays), /no per-hour output/);
      const explained = await scoreStays(manifest, stays, batcherSink(batcher), true);
      assert.equal(
        plain.rows(),
        stays.reduce((sum, p) => sum + rowCost(manifest, p, true, false), 0),
      );
      // Same tick: one batch holds a plain request and a per-hour one; each gets what it asked for.
      const mixed = batcherOf(manifest, both);
      const [probabilities, withHours] = await Promise.all([mixed.submit(stays), mixed.submitPerHour(stays)]);
      assert.deepEqual(probabilities, withHours.probabilities);
      stays.forEach((stay, k) => {
        const hours = withHours.perHour[k] as Float32Array;
        assert.equal(hours.length, stay.hoursUsed);
        assert.equal(hours.at(-1), probabilities[k]);
        const trajectory = explained.explanations?.[k]?.trajectory ?? [];
        hours.forEach((p, h) => assert.ok(Math.abs(p - (trajectory[h]?.probability as number)) <= 1e-6));
      });
    } finally {
      await plain.engine.close();
      await both.close();
    }
  });
});
