import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, test } from 'node:test';
import { scoreStays, type RowSink } from '../../src/scoring/score-stays.js';
import type { ValidPatient } from '../../src/clinical/types.js';
import { createPatientValidator } from '../../src/clinical/validate.js';
import { QueueFullError } from '../../src/inference/errors.js';
import { buildTestApp, gatedEngine, loadTinyManifest, samplePatient } from '../helper.js';

/**
 * Work is refused before it is expanded: an explained request's engine rows are counted and put
 * to the queue's admission before any row is built, and a caller over its share of the queue is
 * refused while another caller is still served.
 */

/**
 * 5 hours; HR every hour, MAP at hour 2 only; age and sex given, ICU type and height not. By hand:
 * the stay and its 4 shorter prefixes (5), one removal each for HR and MAP (2), for age and sex (2).
 */
const HAND_COUNTED_ROWS = 9;
const patientInput = {
  age: 70,
  sex: 'female',
  hours: [{ HR: 80 }, { HR: 82 }, { HR: 85, MAP: 70 }, { HR: 90 }, { HR: 88 }],
};

async function validPatient(): Promise<ValidPatient> {
  const outcome = createPatientValidator(await loadTinyManifest()).validate(patientInput);
  assert.ok(outcome.ok, 'the fixture patient is valid');
  return outcome.patient;
}

/** The patient with a counter on its hour matrix: reading it is what building the rows starts with. */
function watched(patient: ValidPatient): { patient: ValidPatient; reads: () => number } {
  let reads = 0;
  const copy = { ...patient };
  Object.defineProperty(copy, 'values', {
    get: () => {
      reads++;
      return patient.values;
    },
  });
  return { patient: copy, reads: () => reads };
}

describe('explain admission', () => {
  test('an explained stay whose rows the queue refuses is refused before any of its rows is built', async () => {
    const manifest = await loadTinyManifest();
    const { patient, reads } = watched(await validPatient());
    const admitted: number[] = [];
    let submits = 0;
    const sink: RowSink = {
      admit: (rows) => {
        admitted.push(rows);
        throw new QueueFullError('the prediction queue is full', 1);
      },
      submit: async (rows) => {
        submits++;
        return new Float32Array(rows.length);
      },
    };
    await assert.rejects(scoreStays(manifest, [patient, patient], sink, true), QueueFullError);
    assert.deepEqual(admitted, [2 * HAND_COUNTED_ROWS]);
    assert.equal(submits, 0);
    assert.equal(reads(), 0, 'the hour matrix was read: rows were built before admission');
  });

  test('the rows admitted are the rows submitted', async () => {
    const manifest = await loadTinyManifest();
    const patient = await validPatient();
    const admitted: number[] = [];
    const submitted: number[] = [];
    const sink: RowSink = {
      admit: (rows) => void admitted.push(rows),
      submit: async (rows) => {
        submitted.push(rows.length);
        return new Float32Array(rows.length).fill(0.5);
      },
    };
    const { explanations } = await scoreStays(manifest, [patient], sink, true);
    assert.deepEqual(admitted, [HAND_COUNTED_ROWS]);
    assert.deepEqual(submitted, [HAND_COUNTED_ROWS]);
    assert.deepEqual(explanations?.[0]?.contributions.map((c) => c.variable).sort(), ['HR', 'MAP', 'age', 'sex']);
  });
});

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const KEYS = { flood: 'flooding-caller-key-0123456789', other: 'other-caller-key-0123456789' };

describe('per-caller share of the queue over HTTP', { timeout: 60_000 }, () => {
  test("a caller over its share gets 503 + Retry-After while another caller's request is accepted", async (t) => {
    const gate = gatedEngine();
    const { app } = await buildTestApp(t, {
      env: {
        AUTH_DISABLED: 'false',
        API_KEY_HASHES: `flood:${sha(KEYS.flood)}:predict,other:${sha(KEYS.other)}:predict`,
        MAX_BATCH_SIZE: '4',
        MAX_QUEUE_SIZE: '16',
        CALLER_QUEUE_SHARE: '0.5',
      },
      deps: { factories: gate.factories },
    });
    const post = (key: string, stays: number) =>
      app.inject({
        method: 'POST',
        url: '/v1/predict',
        headers: { 'x-api-key': key },
        payload: { patients: Array.from({ length: stays }, (_, i) => samplePatient(6, i + 1)) },
      });
    // The engine holds the first batch (and one prepared ahead): then 8 of the flooder's stays wait.
    const running = post(KEYS.flood, 8);
    while (gate.runs() < 1) await new Promise((r) => setImmediate(r));
    const queued = post(KEYS.flood, 8);
    const batcher = app.models.active?.batcher;
    while (batcher?.depth !== 8) await new Promise((r) => setImmediate(r));
    let settled = false;
    const answer = post(KEYS.flood, 1).finally(() => (settled = true));
    // Answered at once, or queued behind the gate (the old behaviour): either ends the wait.
    while (!settled && batcher.depth === 8) await new Promise((r) => setImmediate(r));
    const other = post(KEYS.other, 2);
    gate.open();
    const refused = await answer;
    assert.equal(refused.statusCode, 503);
    assert.equal(refused.json().error, 'queue_full');
    assert.match(refused.json().message, /allowed per caller/);
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    assert.equal((await other).statusCode, 200);
    assert.equal((await running).statusCode, 200);
    assert.equal((await queued).statusCode, 200);
  });
});
