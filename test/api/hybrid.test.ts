import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from '../../src/app.js';
import { runScore } from '../../src/cli/score.js';
import { createEngine, type Engine } from '../../src/inference/engine.js';
import { manifestSchema } from '../../src/model/manifest.js';
import { buildTestApp, makeModelRoot, oneWorkerEngine, ROOT, samplePatient, postFhirPredict } from '../helper.js';
import { INPUT_NAMES, type Stay, buildBatch, reference } from '../inference/helpers.js';
import { entry, LOINC, observation } from '../fixtures/fhir/physionet-to-fhir.js';

/**
 * The hybrid model (training/model.py HybridClinicalModel): the engine against PyTorch on the
 * fixture's own reference (training/make_fixtures.py, random weights), and every entry point
 * carrying each patient's note embedding to its own row of the batch.
 */

const HYBRID_DIR = join(ROOT, 'test', 'fixtures', 'tiny-hybrid-model');
const DIMENSION = 768;

type Patient = Record<string, unknown>;
interface Scored {
  id?: string;
  probability: number;
}

/** A deterministic embedding of DIMENSION numbers, a different one per seed. */
function embedding(seed: number): number[] {
  let s = seed >>> 0 || 1;
  return Array.from({ length: DIMENSION }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return Math.round((s / 2 ** 32 - 0.5) * 2e4) / 1e4;
  });
}

/** null: no noteEmbedding at all. */
function patient(seed: number, hours: number, note: number[] | null = embedding(seed)): Patient {
  return { ...samplePatient(hours, seed, `h${seed}`), ...(note === null ? {} : { noteEmbedding: note }) };
}

async function predict(app: FastifyInstance, patients: Patient[]) {
  return app.inject({ method: 'POST', url: '/v1/predict', payload: { patients } });
}

function probabilities(body: string): number[] {
  return (JSON.parse(body) as { results: Scored[] }).results.map((r) => r.probability);
}

describe('the hybrid engine against PyTorch', () => {
  let engine: Engine;
  const ref = reference(`${HYBRID_DIR}/`);
  const batchOf = (stays: number[], time: number) =>
    buildBatch(
      stays.map((i) => ref.stays[i] as Stay),
      time,
    );
  const lengths = ref.stays.map((s) => s.length);
  before(async () => {
    engine = await createEngine({
      modelPath: join(HYBRID_DIR, 'model.onnx'),
      inputNames: { ...INPUT_NAMES, note: 'note' },
      outputName: 'probability',
      providers: ['cpu'],
      intraOpThreads: 1,
      workers: 1,
    });
  });
  after(() => engine.close());

  test('matches PyTorch pack_padded_sequence probabilities with each stay’s embedding to 1e-6', async () => {
    const all = lengths.map((_, i) => i);
    const out = await engine.run(batchOf(all, 48));
    all.forEach((i) => assert.ok(Math.abs((out[i] as number) - (ref.probability[i] as number)) <= 1e-6, `stay ${i}`));
  });

  test('a mixed-length batch scores each stay as it scores that stay alone', async () => {
    const all = lengths.map((_, i) => i);
    const mixed = await engine.run(batchOf(all, Math.max(...lengths)));
    for (const i of all.slice(0, 20)) {
      const alone = await engine.run(batchOf([i], lengths[i] as number));
      assert.ok(Math.abs((alone[0] as number) - (mixed[i] as number)) <= 1e-6, `stay ${i}`);
    }
  });
});

test('a manifest declares the note embedding and the graph input together, or neither', async () => {
  const manifest = JSON.parse(await readFile(join(HYBRID_DIR, 'manifest.json'), 'utf8')) as {
    onnx: { inputs: Record<string, string> };
    noteEmbedding?: unknown;
  };
  assert.ok(manifestSchema.safeParse(manifest).success);
  const { note: _note, ...inputs } = manifest.onnx.inputs;
  const half = manifestSchema.safeParse({ ...manifest, onnx: { ...manifest.onnx, inputs } });
  assert.match(half.error?.issues[0]?.message ?? '', /noteEmbedding and onnx.inputs.note go together/);
});

describe('a hybrid model served', () => {
  test('GET /v1/models declares the embedding; each patient is scored with its own', async (t) => {
    const { app } = await buildTestApp(t, {
      modelRoot: await makeModelRoot(t, { '0.0.0-tiny': { from: HYBRID_DIR } }),
    });
    const models = (await app.inject({ method: 'GET', url: '/v1/models' })).json() as {
      models: Array<{ noteEmbedding?: { dimension: number; encoder: string } }>;
    };
    assert.equal(models.models[0]?.noteEmbedding?.dimension, DIMENSION);
    assert.match(models.models[0]?.noteEmbedding?.encoder ?? '', /768-wide encoder/);

    const patients = [patient(1, 3), patient(2, 12), patient(3, 30)];
    const together = await predict(app, patients);
    assert.equal(together.statusCode, 200, together.body);
    const batched = probabilities(together.body);
    for (const [i, p] of patients.entries()) {
      const alone = probabilities((await predict(app, [p])).body)[0] as number;
      assert.ok(
        Math.abs(alone - (batched[i] as number)) <= 1e-6,
        `patient ${i}: alone ${alone}, batched ${batched[i]}`,
      );
    }
    // The embedding is read, and it follows its patient: swapped embeddings give other scores.
    const swapped = probabilities(
      (await predict(app, [{ ...patients[0], noteEmbedding: patients[2]?.noteEmbedding }])).body,
    )[0] as number;
    assert.ok(Math.abs(swapped - (batched[0] as number)) > 1e-4);
  });

  test('a missing, short, long or non-numeric embedding is a 400 naming noteEmbedding; the other patients are scored', async (t) => {
    const { app } = await buildTestApp(t, {
      modelRoot: await makeModelRoot(t, { '0.0.0-tiny': { from: HYBRID_DIR } }),
    });
    const cases: Array<[number[] | null, string, RegExp]> = [
      [
        null,
        'patients.0.noteEmbedding',
        /model icu-mortality 0\.0\.0-tiny needs noteEmbedding: 768 numbers from any 768-wide encoder/,
      ],
      [
        embedding(5).slice(0, 10),
        'patients.0.noteEmbedding',
        /noteEmbedding has 10 numbers; model icu-mortality 0\.0\.0-tiny needs 768/,
      ],
      [[...embedding(5), 1], 'patients.0.noteEmbedding', /768/],
      [Object.assign(embedding(5), { 3: 'x' }) as number[], 'patients.0.noteEmbedding.3', /number/],
    ];
    for (const [note, path, message] of cases) {
      const res = await predict(app, [patient(5, 4, note)]);
      assert.equal(res.statusCode, 400, res.body);
      const detail = (res.json() as { details: Array<{ path: string; message: string }> }).details.find(
        (d) => d.path === path,
      );
      assert.ok(detail, `${path} in ${res.body}`);
      assert.match(detail.message, message);
    }
    const mixed = await predict(app, [patient(6, 4), patient(7, 4, null)]);
    assert.equal(mixed.statusCode, 200);
    const [ok, bad] = (mixed.json() as { results: Array<Scored | { error: { details: Array<{ path: string }> } }> })
      .results;
    assert.ok(ok && 'probability' in ok);
    assert.ok(bad && 'error' in bad && bad.error.details.some((d) => d.path === 'noteEmbedding'), JSON.stringify(bad));
  });

  test('explained, every prefix and removal keeps the stay’s embedding', async (t) => {
    const { app } = await buildTestApp(t, {
      modelRoot: await makeModelRoot(t, { '0.0.0-tiny': { from: HYBRID_DIR } }),
    });
    const p = patient(21, 6);
    const res = await app.inject({ method: 'POST', url: '/v1/predict', payload: { patients: [p], explain: true } });
    assert.equal(res.statusCode, 200, res.body);
    const [result] = (
      res.json() as { results: Array<Scored & { trajectory: Array<{ hour: number; probability: number }> }> }
    ).results;
    // The first hour alone, scored as an independent request, with the same embedding.
    const first = { ...p, hours: (p.hours as unknown[]).slice(0, 1) };
    const alone = probabilities((await predict(app, [first])).body)[0] as number;
    assert.ok(Math.abs((result?.trajectory[0]?.probability as number) - alone) <= 1e-6);
  });

  test('FHIR, which carries no embedding, answers 422 naming noteEmbedding; a CDS hook answers no card', async (t) => {
    const { app } = await buildTestApp(t, {
      modelRoot: await makeModelRoot(t, { '0.0.0-tiny': { from: HYBRID_DIR } }),
    });
    const patient = { resourceType: 'Patient', id: 'p1', birthDate: '1960-01-01', gender: 'female' };
    const hr = observation('hr', [{ system: LOINC, code: '8867-4' }], 80, '/min', '2026-01-04T10:00:00Z');
    const bundle = { resourceType: 'Bundle', type: 'collection', entry: [entry(patient), entry(hr)] };
    const fhir = await postFhirPredict(app, bundle);
    assert.equal(fhir.statusCode, 422, fhir.body);
    assert.match(fhir.body, /OperationOutcome.*needs noteEmbedding: 768 numbers/);
    const prefetch = {
      patient,
      vitals: { resourceType: 'Bundle', type: 'searchset', entry: [entry(hr)] },
      labs: { resourceType: 'Bundle', type: 'searchset', entry: [] },
    };
    const cds = await app.inject({
      method: 'POST',
      url: '/cds-services/icu-mortality',
      payload: {
        hook: 'patient-view',
        hookInstance: 'd1eec0c5-6e1a-4f3c-9d0a-6d1e8b2c1a11',
        context: { userId: 'Practitioner/1', patientId: 'p1' },
        prefetch,
      },
    });
    assert.equal(cds.statusCode, 200, cds.body);
    assert.deepEqual(cds.json(), { cards: [] });
  });

  test('a model without a note input refuses an embedding by name', async (t) => {
    const { app } = await buildTestApp(t);
    const res = await predict(app, [patient(8, 3)]);
    assert.equal(res.statusCode, 400);
    const detail = (res.json() as { details: Array<{ path: string; message: string }> }).details.find(
      (d) => d.path === 'patients.0.noteEmbedding',
    );
    assert.match(detail?.message ?? '', /reads no note embedding/);
  });

  test('the stream and the CLI (NDJSON and long-form CSV) carry the embedding to the same probability', async (t) => {
    const modelRoot = await makeModelRoot(t, { '0.0.0-tiny': { from: HYBRID_DIR } });
    const { app } = await buildTestApp(t, { modelRoot });
    const patients = [patient(11, 5), patient(12, 9)];
    const api = probabilities((await predict(app, patients)).body);

    const stream = await app.inject({
      method: 'POST',
      url: '/v1/predict/stream',
      headers: { 'content-type': 'application/x-ndjson' },
      payload: [...patients, patient(13, 2, null)].map((p) => JSON.stringify(p)).join('\n'),
    });
    const lines = stream.body
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as Scored & { error?: { details: Array<{ path: string }> } });
    lines.slice(0, 2).forEach((line, i) => assert.ok(Math.abs(line.probability - (api[i] as number)) <= 1e-6));
    assert.ok(
      lines[2]?.error?.details.some((d) => d.path === 'noteEmbedding'),
      JSON.stringify(lines[2]),
    );

    const dir = await mkdtemp(join(tmpdir(), 'hybrid-cli-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    await writeFile(join(dir, 'in.ndjson'), patients.map((p) => JSON.stringify(p)).join('\n'));
    // The same patients as long-form CSV, written here from the requests: values at hh:30 of their hour.
    const csv = ['id,time,variable,value'];
    for (const p of patients) {
      csv.push(`${p.id},0:00,Age,${p.age}`, `${p.id},0:00,Sex,${p.sex}`, `${p.id},0:00,ICUType,${p.icuType}`);
      csv.push(`${p.id},,noteEmbedding,${(p.noteEmbedding as number[]).join(' ')}`);
      (p.hours as Array<Record<string, number | null>>).forEach((row, h) => {
        for (const [name, value] of Object.entries(row))
          if (value !== null) csv.push(`${p.id},${h}:30,${name},${value}`);
      });
    }
    await writeFile(join(dir, 'in.csv'), `${csv.join('\n')}\n`);
    const common = { quiet: true, modelDir: join(modelRoot, 'icu-mortality'), threads: 1 };
    await runScore({ ...common, format: 'ndjson', input: join(dir, 'in.ndjson'), output: join(dir, 'a.ndjson') });
    await runScore({ ...common, format: 'csv', input: join(dir, 'in.csv'), output: join(dir, 'b.ndjson') });
    for (const out of ['a.ndjson', 'b.ndjson']) {
      const rows = (await readFile(join(dir, out), 'utf8'))
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Scored);
      rows.forEach((r, i) => assert.ok(Math.abs(r.probability - (api[i] as number)) <= 1e-6, `${out} row ${i}`));
    }
  });
});

/** The first number of an embedding that makes poisonedEngine() answer NaN for that stay's rows. */
const POISON = 0.4242;

/**
 * The fixture's real engine, except that every row whose note embedding starts with POISON gets
 * NaN: a non-finite output whatever its cause (values within float32 only saturate this graph).
 */
function poisonedEngine(): NonNullable<AppDeps['factories']> {
  return {
    createEngine: async (files) => {
      const engine = await oneWorkerEngine(files);
      return {
        provider: engine.provider,
        close: () => engine.close(),
        run: async (batch) => {
          const dim = batch.noteDim ?? 0;
          // Read before the run: the batch's buffers may be handed to the worker.
          const poisoned = Array.from({ length: batch.batch }, (_, i) => batch.note?.[i * dim] === Math.fround(POISON));
          const out = Float32Array.from(await engine.run(batch));
          poisoned.forEach((p, i) => {
            if (p) out[i] = Number.NaN;
          });
          return out;
        },
      };
    },
  };
}

function poisoned(seed: number, hours: number): Patient {
  const note = embedding(seed);
  note[0] = POISON;
  return patient(seed, hours, note);
}

describe('a non-finite model output', () => {
  test('a noteEmbedding number beyond float32 is a 400 naming that element', async (t) => {
    const { app } = await buildTestApp(t, {
      modelRoot: await makeModelRoot(t, { '0.0.0-tiny': { from: HYBRID_DIR } }),
    });
    // 3.5e38 and -1e39 overflow float32 (largest finite 3.4028234663852886e38); 3.4e38 does not.
    const note = embedding(40);
    note[3] = 3.5e38;
    note[700] = -1e39;
    note[5] = 3.4e38;
    const res = await predict(app, [patient(40, 4, note)]);
    assert.equal(res.statusCode, 400, res.body);
    const paths = (res.json() as { details: Array<{ path: string; message: string }> }).details;
    assert.deepEqual(
      paths.map((d) => d.path),
      ['patients.0.noteEmbedding.3', 'patients.0.noteEmbedding.700'],
    );
    assert.match(paths[0]?.message ?? '', /float32/);
  });

  test('/v1/predict fails only that patient as inference_failed; the others are scored', async (t) => {
    const { app } = await buildTestApp(t, {
      modelRoot: await makeModelRoot(t, { '0.0.0-tiny': { from: HYBRID_DIR } }),
      deps: { factories: poisonedEngine() },
    });
    const res = await predict(app, [patient(31, 4), poisoned(32, 4), patient(33, 6)]);
    assert.equal(res.statusCode, 200, res.body);
    const results = (res.json() as { results: Array<Record<string, unknown>> }).results;
    assert.equal(results.length, 3);
    for (const i of [0, 2]) assert.equal(typeof results[i]?.probability, 'number', JSON.stringify(results[i]));
    assert.deepEqual(Object.keys(results[1] ?? {}).sort(), ['error', 'id', 'index']);
    assert.equal(results[1]?.id, 'h32');
    assert.equal((results[1]?.error as { error: string }).error, 'inference_failed');
    // Alone, it is still a per-patient answer: not a 400 (the patient is valid), not a 500.
    const alone = await predict(app, [poisoned(34, 3)]);
    assert.equal(alone.statusCode, 200, alone.body);
    assert.equal(
      (alone.json() as { results: Array<{ error?: { error: string } }> }).results[0]?.error?.error,
      'inference_failed',
    );
  });

  test('the explained stream answers that line with an error and goes on to its end', async (t) => {
    const { app } = await buildTestApp(t, {
      modelRoot: await makeModelRoot(t, { '0.0.0-tiny': { from: HYBRID_DIR } }),
      deps: { factories: poisonedEngine() },
      env: { STREAM_MAX_ERROR_LINES: '2' },
    });
    const send = (patients: Patient[]) =>
      app.inject({
        method: 'POST',
        url: '/v1/predict/stream?explain=true',
        headers: { 'content-type': 'application/x-ndjson' },
        payload: patients.map((p) => JSON.stringify(p)).join('\n'),
      });
    const parse = (body: string) =>
      body
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    const res = await send([patient(35, 3), poisoned(36, 4), patient(37, 5)]);
    assert.equal(res.statusCode, 200);
    const lines = parse(res.body);
    assert.deepEqual(
      lines.map((l) => l.line),
      [1, 2, 3],
    );
    assert.ok(Array.isArray(lines[0]?.trajectory) && Array.isArray(lines[2]?.trajectory), res.body);
    assert.deepEqual(lines[1], {
      line: 2,
      id: 'h36',
      error: {
        error: 'inference_failed',
        message:
          'the model gave no usable probability for this patient (its output was not a finite number from 0 to 1)',
        details: [],
      },
    });
    // Over the error limit the stream is cut and says so in its end line, after answering every line before it.
    const cut = parse((await send([poisoned(38, 2), poisoned(39, 2), poisoned(40, 2), patient(41, 2)])).body);
    assert.deepEqual(
      cut.map((l) => (l.error as { error?: string } | undefined)?.error ?? Object.keys(l)[0]),
      ['inference_failed', 'inference_failed', 'end'],
    );
    assert.deepEqual((cut[2]?.end as { reason: string; afterLine: number }).reason, 'error_limit');
  });

  test('the CLI reports that record in the errors file, writes the others and exits non-zero', async (t) => {
    const modelRoot = await makeModelRoot(t, { '0.0.0-tiny': { from: HYBRID_DIR } });
    const dir = await mkdtemp(join(tmpdir(), 'hybrid-nan-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const patients = [patient(51, 3), poisoned(52, 4), patient(53, 2)];
    await writeFile(join(dir, 'in.ndjson'), patients.map((p) => JSON.stringify(p)).join('\n'));
    const summary = await runScore({
      quiet: true,
      modelDir: join(modelRoot, 'icu-mortality'),
      threads: 1,
      format: 'ndjson',
      input: join(dir, 'in.ndjson'),
      output: join(dir, 'out.csv'),
      factories: poisonedEngine(),
    });
    assert.equal(summary.exitCode, 1);
    assert.deepEqual([summary.scored, summary.failed], [2, 1]);
    const rows = (await readFile(join(dir, 'out.csv'), 'utf8')).trimEnd().split('\n');
    assert.deepEqual(
      rows.slice(1).map((r) => r.split(',')[0]),
      ['h51', 'h53'],
    );
    assert.doesNotMatch(rows.join('\n'), /null|NaN/);
    const errors = (await readFile(join(dir, 'out.csv.errors.ndjson'), 'utf8'))
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; line: number; error: string });
    assert.deepEqual(
      errors.map((e) => [e.id, e.line, e.error]),
      [['h52', 2, 'inference_failed']],
    );
  });
});
